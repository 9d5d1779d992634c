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

/* Walk the MADT's entries (after the header, the local APIC address and
 * flags), calling fn on each whole one until it returns non-zero. Returns
 * that value, 0 after the last entry, or -1 without MADT. */
static int madt_walk(int (*fn)(const uint8_t *e, void *arg), void *arg)
{
	const struct acpi_header *madt = acpi_find("APIC");
	if (!madt)
		return -1;
	const uint8_t *p = (const uint8_t *)madt + sizeof(*madt) + 8, *end = (const uint8_t *)madt + madt->length;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		int r = fn(p, arg);
		if (r)
			return r;
		p += p[1];
	}
	return 0;
}

struct ioapic_find {
	uint64_t addr;
	uint32_t gsi_base;
};

static int find_ioapic(const uint8_t *e, void *arg)
{
	struct ioapic_find *f = arg;
	if (e[0] != 1 || e[1] < 12) /* I/O APIC entry (ACPI 5.2.12.3) */
		return 0;
	uint32_t a;
	memcpy(&a, e + 4, 4);
	memcpy(&f->gsi_base, e + 8, 4);
	f->addr = a;
	return 1;
}

int acpi_ioapic(uint64_t *addr, uint32_t *gsi_base)
{
	struct ioapic_find f;
	if (madt_walk(find_ioapic, &f) != 1)
		return -1;
	*addr = f.addr;
	*gsi_base = f.gsi_base;
	return 0;
}

struct override_find {
	uint8_t irq;
	uint32_t gsi;
	uint16_t flags;
};

static int find_override(const uint8_t *e, void *arg)
{
	struct override_find *f = arg;
	if (e[0] != 2 || e[1] < 10 || e[2] != 0 || e[3] != f->irq) /* ISA override (5.2.12.5) */
		return 0;
	memcpy(&f->gsi, e + 4, 4);
	memcpy(&f->flags, e + 8, 2);
	return 1;
}

int acpi_isa_override(uint8_t irq, uint32_t *gsi, uint16_t *flags)
{
	struct override_find f = { .irq = irq };
	if (madt_walk(find_override, &f) != 1)
		return -1;
	*gsi = f.gsi;
	*flags = f.flags;
	return 0;
}

static int count_cpu(const uint8_t *e, void *arg)
{
	uint32_t flags;
	if (e[0] == 0 && e[1] >= 8) { /* processor local APIC */
		memcpy(&flags, e + 4, 4);
		*(unsigned *)arg += (flags & 3) != 0;
	} else if (e[0] == 9 && e[1] >= 16) { /* processor local x2APIC */
		memcpy(&flags, e + 8, 4);
		*(unsigned *)arg += (flags & 3) != 0;
	}
	return 0;
}

unsigned acpi_count_cpus(void)
{
	unsigned n = 0;
	madt_walk(count_cpu, &n);
	return n;
}
