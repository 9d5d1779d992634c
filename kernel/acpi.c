/* acpi.c: RSDP -> XSDT/RSDT -> tables (ACPI 6.x, 5.2). Read-only. */
#include <string.h>

#include "acpi.h"

struct rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length; /* revision >= 2 from here */
	uint64_t xsdt;
	uint8_t xchecksum;
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct rsdp) == 36, "RSDP size");

static const struct rsdp *rsdp;

static int sum_ok(const void *p, uint32_t n)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < n; i++)
		s += ((const uint8_t *)p)[i];
	return s == 0;
}

void acpi_init(const struct boot_info *bi)
{
	const struct rsdp *r = (const void *)(uintptr_t)bi->rsdp;
	if (r && memcmp(r->signature, "RSD PTR ", 8) == 0 && sum_ok(r, 20))
		rsdp = r;
}

const struct acpi_header *acpi_find(const char sig[4])
{
	if (!rsdp)
		return NULL;
	int x = rsdp->revision >= 2 && rsdp->xsdt && sum_ok(rsdp, rsdp->length);
	const struct acpi_header *root = (const void *)(uintptr_t)(x ? rsdp->xsdt : rsdp->rsdt);
	if (!root || !sum_ok(root, root->length))
		return NULL;
	uint32_t width = x ? 8 : 4;
	uint32_t n = (root->length - sizeof(*root)) / width;
	const uint8_t *ents = (const uint8_t *)(root + 1);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = 0;
		memcpy(&a, ents + i * width, width);
		const struct acpi_header *t = (const void *)(uintptr_t)a;
		if (t && memcmp(t->signature, sig, 4) == 0 && sum_ok(t, t->length))
			return t;
	}
	return NULL;
}

unsigned acpi_count_cpus(void)
{
	const struct acpi_header *madt = acpi_find("APIC");
	if (!madt)
		return 0;
	/* Entries start after the header plus local APIC address and flags. */
	const uint8_t *p = (const uint8_t *)madt + sizeof(*madt) + 8, *end = (const uint8_t *)madt + madt->length;
	unsigned n = 0;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		uint32_t flags;
		if (p[0] == 0 && p[1] >= 8) { /* processor local APIC */
			memcpy(&flags, p + 4, 4);
			n += (flags & 3) != 0;
		} else if (p[0] == 9 && p[1] >= 16) { /* processor local x2APIC */
			memcpy(&flags, p + 8, 4);
			n += (flags & 3) != 0;
		}
		p += p[1];
	}
	return n;
}
