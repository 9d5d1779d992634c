/* ioapic.c: one I/O APIC redirection entry per routed device line. The
 * registers are reached through IOREGSEL (offset 0) and IOWIN (0x10);
 * redirection entry n is registers 0x10 + 2n (low) and 0x11 + 2n (high). */
#include <stdio.h>

#include "acpi.h"
#include "clock.h"
#include "ioapic.h"
#include "paging.h"
#include "x86.h"

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REG_VER 0x01
#define IOAPIC_MMIO_LEN 0x20 /* IOREGSEL and IOWIN */
#define IOAPIC_DEFAULT_BASE 0xfec00000u
#define IOAPIC_REDTBL(n) (0x10 + 2 * (n))

#define RED_LEVEL (1u << 15) /* trigger mode: level */
#define RED_LOW (1u << 13)   /* polarity: active low */

static uintptr_t base;

static uint32_t ioapic_read(uint32_t reg)
{
	x86_mmio_write32(base + IOAPIC_REGSEL, reg);
	return x86_mmio_read32(base + IOAPIC_WIN);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	x86_mmio_write32(base + IOAPIC_REGSEL, reg);
	x86_mmio_write32(base + IOAPIC_WIN, v);
}

static int route(uint8_t line, uint8_t vector, uint32_t flags, const char *who);

int ioapic_route_pci_line(uint8_t line, uint8_t vector, const char *who)
{
	/* PCI lines are level-triggered; an override may say otherwise. */
	return route(line, vector, RED_LEVEL, who);
}

int ioapic_route_isa_irq(uint8_t irq, uint8_t vector, const char *who)
{
	/* ISA lines are edge-triggered, active high, unless overridden. */
	return route(irq, vector, 0, who);
}

static int route(uint8_t line, uint8_t vector, uint32_t flags, const char *who)
{
	uint64_t addr;
	uint32_t gsi_base;
	if (acpi_ioapic(&addr, &gsi_base) != 0) {
		/* Some firmware (OVMF on Bochs) lists none: fall back to the
		 * architectural default, checked below by its version register. */
		addr = IOAPIC_DEFAULT_BASE;
		gsi_base = 0;
	}
	if (line == 0xff || line >= 16) {
		printf("%s: firmware left no ISA interrupt line (0x%02x); interrupt not routed\n", who, line);
		return -1;
	}
	if (!base) {
		void *p = paging_map_mmio(addr, IOAPIC_MMIO_LEN);
		if (!p) {
			printf("%s: cannot map the I/O APIC at 0x%llx\n", who, (unsigned long long)addr);
			return -1;
		}
		base = (uintptr_t)p;
	}
	/* An override may change the trigger and polarity. The polarity QEMU
	 * and Bochs model is "asserted = 1" whatever the bit says; active high
	 * is what QEMU's own ACPI tables declare. */
	uint32_t gsi = line;
	uint16_t inti;
	if (acpi_isa_override(line, &gsi, &inti) == 0) {
		if ((inti & 3) == 3)
			flags |= RED_LOW;
		if ((inti >> 2 & 3) == 1)
			flags &= ~RED_LEVEL; /* the override says edge */
		else if ((inti >> 2 & 3) == 3)
			flags |= RED_LEVEL;  /* ... or level */
	}
	uint32_t ver = ioapic_read(IOAPIC_REG_VER), pins = (ver >> 16 & 0xff) + 1;
	if (ver == 0xffffffffu || (ver & 0xff) < 0x10) { /* nothing there, or not an APIC (82093AA: 0x1X) */
		printf("%s: no I/O APIC at 0x%llx (version 0x%x); interrupt not routed\n", who,
		       (unsigned long long)addr, ver);
		return -1;
	}
	if (gsi < gsi_base || gsi - gsi_base >= pins) {
		printf("%s: GSI %u is not on the I/O APIC (GSIs %u-%u)\n", who, gsi, gsi_base, gsi_base + pins - 1);
		return -1;
	}
	uint32_t pin = gsi - gsi_base;
	ioapic_write(IOAPIC_REDTBL(pin) + 1, clock_lapic_id() << 24);
	ioapic_write(IOAPIC_REDTBL(pin), flags | vector); /* fixed delivery, physical, unmasked */
	return 0;
}
