/* acpi.h: finding ACPI tables from the RSDP the firmware handed over. */
#ifndef FERRY_ACPI_H
#define FERRY_ACPI_H

#include <stdint.h>

#include "boot_info.h"

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "ACPI SDT header");

/* Remember the RSDP (validated lazily). Call once. */
void acpi_init(const struct boot_info *bi);

/* The first table with this 4-character signature whose checksum is
 * right, or NULL (no RSDP, no such table, or a corrupt one). */
const struct acpi_header *acpi_find(const char sig[4]);

/* Processors the MADT lists as enabled or online-capable; 0 without MADT. */
unsigned acpi_count_cpus(void);

/* The MADT's first I/O APIC: its MMIO address and first GSI. Returns 0,
 * or -1 without MADT or I/O APIC. */
int acpi_ioapic(uint64_t *addr, uint32_t *gsi_base);

/* The MADT's interrupt source override for ISA IRQ irq, if any: its GSI
 * and MPS INTI flags (polarity bits 1:0, trigger bits 3:2). Returns 0 when
 * one exists, -1 otherwise (the IRQ is then GSI irq). */
int acpi_isa_override(uint8_t irq, uint32_t *gsi, uint16_t *flags);

#endif
