/* pci.c: PCI enumeration through ECAM (ACPI MCFG) or CF8/CFC, BAR sizing,
 * capabilities, and the `info pci` command. */
#include <stdio.h>
#include <string.h>

#include "acpi.h"
#include "console.h"
#include "paging.h"
#include "pci.h"
#include "x86.h"

#define PCI_CF8_ADDR 0xcf8
#define PCI_CF8_DATA 0xcfc

/* MCFG (PCI Firmware 3.0, 4.1.2): the ACPI header, 8 reserved bytes, then
 * one allocation per segment group. */
struct mcfg_alloc {
	uint64_t base;
	uint16_t segment;
	uint8_t bus_start, bus_end;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct mcfg_alloc) == 16, "MCFG allocation");

static uintptr_t ecam_base; /* 0: use CF8/CFC; else the address of bus 0 (MCFG's base) */
static uint8_t ecam_bus_start, ecam_bus_end;
static struct pci_dev devs[PCI_MAX_DEVS];
static size_t ndevs, nskipped;

static uintptr_t ecam_addr(const struct pci_dev *d, unsigned off)
{
	/* MCFG's base address is that of bus 0 even when bus_start is not 0
	 * (PCI Firmware 3.0, 4.1.2; Linux and FreeBSD read it so): the window
	 * is base + (bus_start << 20) up to base + ((bus_end + 1) << 20), and
	 * use_ecam keeps d->bus inside it. */
	return ecam_base + (((uintptr_t)d->bus << 20) | ((uintptr_t)d->dev << 15) | ((uintptr_t)d->fn << 12) | off);
}

static int use_ecam(const struct pci_dev *d)
{
	return ecam_base && d->bus >= ecam_bus_start && d->bus <= ecam_bus_end;
}

static void cf8_select(const struct pci_dev *d, unsigned off)
{
	x86_outl(PCI_CF8_ADDR, 0x80000000u | ((uint32_t)d->bus << 16) | ((uint32_t)d->dev << 11) |
				       ((uint32_t)d->fn << 8) | (off & 0xfc));
}

uint32_t pci_read32(const struct pci_dev *d, unsigned off)
{
	if (use_ecam(d))
		return x86_mmio_read32(ecam_addr(d, off));
	cf8_select(d, off);
	return x86_inl(PCI_CF8_DATA);
}

uint16_t pci_read16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(pci_read32(d, off & ~3u) >> (8 * (off & 2)));
}

uint8_t pci_read8(const struct pci_dev *d, unsigned off)
{
	return (uint8_t)(pci_read32(d, off & ~3u) >> (8 * (off & 3)));
}

void pci_write32(const struct pci_dev *d, unsigned off, uint32_t v)
{
	if (use_ecam(d)) {
		x86_mmio_write32(ecam_addr(d, off), v);
		return;
	}
	cf8_select(d, off);
	x86_outl(PCI_CF8_DATA, v);
}

void pci_write16(const struct pci_dev *d, unsigned off, uint16_t v)
{
	if (use_ecam(d)) {
		*(volatile uint16_t *)ecam_addr(d, off) = v;
		return;
	}
	cf8_select(d, off);
	x86_outw((uint16_t)(PCI_CF8_DATA + (off & 2)), v);
}

void pci_enable(const struct pci_dev *d, uint16_t cmd_bits)
{
	pci_write16(d, PCI_COMMAND, pci_read16(d, PCI_COMMAND) | cmd_bits);
}

unsigned pci_find_cap(const struct pci_dev *d, uint8_t id, unsigned after)
{
	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS))
		return 0;
	unsigned off = after ? pci_read8(d, after + 1) : pci_read8(d, PCI_CAP_PTR);
	for (int n = 0; n < PCI_CAP_WALK_MAX && off >= 0x40; n++) {
		off &= 0xfc;
		if (pci_read8(d, off) == id)
			return off;
		off = pci_read8(d, off + 1);
	}
	return 0;
}

/* Size BAR i by writing all ones with decoding off (PCI 3.0, 6.2.5.1).
 * Returns how many BAR slots it used (2 for a 64-bit BAR). */
static int size_bar(struct pci_dev *d, int i)
{
	unsigned off = PCI_BAR0 + 4 * i;
	uint32_t lo = pci_read32(d, off);
	struct pci_bar *b = &d->bar[i];
	pci_write32(d, off, 0xffffffffu);
	uint32_t mlo = pci_read32(d, off);
	pci_write32(d, off, lo);
	if (lo & 1) {
		b->kind = PCI_BAR_IO;
		b->addr = lo & ~3u;
		uint32_t m = mlo & ~3u & 0xffff;
		b->size = m ? (~m & 0xffff) + 1 : 0;
		return 1;
	}
	b->prefetch = (lo >> 3) & 1;
	uint64_t addr = lo & ~0xfu, mask = (uint64_t)(mlo & ~0xfu) | 0xffffffff00000000ull;
	int used = 1;
	if (((lo >> 1) & 3) == 2 && i < 5) {
		uint32_t hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, 0xffffffffu);
		uint32_t mhi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, hi);
		addr |= (uint64_t)hi << 32;
		mask = ((uint64_t)mhi << 32) | (mlo & ~0xfu);
		b->kind = PCI_BAR_MEM64;
		used = 2;
	} else {
		b->kind = PCI_BAR_MEM32;
		if (!(mlo & ~0xfu))
			mask = 0; /* no bits stuck at one: BAR not implemented */
	}
	b->addr = addr;
	b->size = (mask & ~0xfull) ? ~(mask & ~0xfull) + 1 : 0;
	if (!b->size)
		b->kind = PCI_BAR_NONE;
	return used;
}

static void record(uint8_t bus, uint8_t dev, uint8_t fn)
{
	if (ndevs == PCI_MAX_DEVS) {
		nskipped++;
		return;
	}
	struct pci_dev *d = &devs[ndevs];
	memset(d, 0, sizeof(*d));
	d->bus = bus;
	d->dev = dev;
	d->fn = fn;
	d->vendor = pci_read16(d, PCI_VENDOR_ID);
	d->device = pci_read16(d, PCI_DEVICE_ID);
	uint32_t cr = pci_read32(d, PCI_CLASS_REV);
	d->rev = (uint8_t)cr;
	d->progif = (uint8_t)(cr >> 8);
	d->subclass = (uint8_t)(cr >> 16);
	d->class = (uint8_t)(cr >> 24);
	d->header_type = pci_read8(d, PCI_HEADER_TYPE) & 0x7f;
	if (d->header_type == 0) {
		uint16_t cmd = pci_read16(d, PCI_COMMAND);
		pci_write16(d, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEM));
		for (int i = 0; i < 6;)
			i += size_bar(d, i);
		pci_write16(d, PCI_COMMAND, cmd);
	}
	ndevs++;
}

static void scan(void)
{
	unsigned first = ecam_base ? ecam_bus_start : 0, last = ecam_base ? ecam_bus_end : 255;
	for (unsigned bus = first; bus <= last; bus++)
		for (uint8_t dev = 0; dev < 32; dev++) {
			struct pci_dev probe = { .bus = (uint8_t)bus, .dev = dev };
			if (pci_read16(&probe, PCI_VENDOR_ID) == 0xffff)
				continue;
			int nfn = (pci_read8(&probe, PCI_HEADER_TYPE) & 0x80) ? 8 : 1;
			for (uint8_t fn = 0; fn < nfn; fn++) {
				probe.fn = fn;
				if (pci_read16(&probe, PCI_VENDOR_ID) != 0xffff)
					record((uint8_t)bus, dev, fn);
			}
		}
}

static void find_ecam(void)
{
	const struct acpi_header *mcfg = acpi_find("MCFG");
	if (!mcfg || mcfg->length < sizeof(*mcfg) + 8 + sizeof(struct mcfg_alloc))
		return;
	struct mcfg_alloc a;
	memcpy(&a, (const uint8_t *)mcfg + sizeof(*mcfg) + 8, sizeof(a));
	if (a.segment != 0 || a.bus_end < a.bus_start || !a.base)
		return;
	uint64_t start = a.base + ((uint64_t)a.bus_start << 20), len = (uint64_t)(a.bus_end - a.bus_start + 1) << 20;
	if (start < a.base || start + len < start)
		return; /* the window wraps the address space: a broken table */
	if (start + len > (4ull << 30) && !paging_map_mmio(start, len))
		return;
	ecam_base = (uintptr_t)a.base;
	ecam_bus_start = a.bus_start;
	ecam_bus_end = a.bus_end;
}

volatile void *pci_map_bar(const struct pci_dev *d, int i)
{
	if (i < 0 || i > 5)
		return NULL;
	const struct pci_bar *b = &d->bar[i];
	if (b->kind != PCI_BAR_MEM32 && b->kind != PCI_BAR_MEM64)
		return NULL;
	if (b->addr + b->size <= (4ull << 30))
		return (volatile void *)(uintptr_t)b->addr;
	return paging_map_mmio(b->addr, b->size);
}

const char *pci_access_method(void)
{
	return ecam_base ? "ECAM" : "CF8/CFC";
}

size_t pci_count(void)
{
	return ndevs;
}

struct pci_dev *pci_get(size_t i)
{
	return i < ndevs ? &devs[i] : NULL;
}

static void print_size(uint64_t n)
{
	if (n >= (1ull << 30) && !(n & ((1ull << 30) - 1)))
		printf("%llu GiB", (unsigned long long)(n >> 30));
	else if (n >= (1ull << 20) && !(n & ((1ull << 20) - 1)))
		printf("%llu MiB", (unsigned long long)(n >> 20));
	else if (n >= 1024 && !(n & 1023))
		printf("%llu KiB", (unsigned long long)(n >> 10));
	else
		printf("%llu B", (unsigned long long)n);
}

static int cmd_info_pci(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("pci: %zu functions (%s)%s\n", ndevs, pci_access_method(),
	       nskipped ? ", more not recorded" : "");
	for (size_t i = 0; i < ndevs; i++) {
		const struct pci_dev *d = &devs[i];
		printf("%02x:%02x.%x %04x:%04x class %02x.%02x.%02x rev %02x\n", d->bus, d->dev, d->fn,
		       d->vendor, d->device, d->class, d->subclass, d->progif, d->rev);
		for (int b = 0; b < 6; b++) {
			const struct pci_bar *bar = &d->bar[b];
			if (bar->kind == PCI_BAR_NONE)
				continue;
			static const char *kinds[] = { "", "io", "mem32", "mem64" };
			printf("    BAR%d %s%s 0x%llx (", b, kinds[bar->kind], bar->prefetch ? " prefetch" : "",
			       (unsigned long long)bar->addr);
			print_size(bar->size);
			printf(")\n");
		}
	}
	return 0;
}

static const struct console_cmd pci_cmds[] = {
	{ "info pci", "", "PCI functions with their ids, classes and BARs", cmd_info_pci },
};

void pci_init(void)
{
	find_ecam();
	scan();
	console_register(pci_cmds, sizeof(pci_cmds) / sizeof(pci_cmds[0]));
}
