/* ioapic.h: routing one device interrupt line through the I/O APIC (82093AA
 * datasheet 3.2; ACPI MADT for where it is). ferry takes no interrupt from
 * the I/O APIC except the ones routed here; the 8259s stay masked. */
#ifndef FERRY_IOAPIC_H
#define FERRY_IOAPIC_H

#include <stdint.h>

/* Route the PCI INTx line that firmware left in a function's Interrupt Line
 * register (an ISA IRQ number, through the chipset's PIRQ router) to
 * vector on this CPU, level-triggered, unmasked. An ISA override in the
 * MADT moves the IRQ to another GSI. Returns 0, or -1 (no I/O APIC, line
 * 0xff, or a GSI out of the I/O APIC's range) after printing why. With
 * no I/O APIC in the MADT (OVMF on Bochs lists none) the architectural
 * default address 0xfec00000 is used when a version register answers. */
int ioapic_route_pci_line(uint8_t line, uint8_t vector, const char *who);

/* Route ISA IRQ irq (a legacy device: COM1 is 4) to vector on this CPU,
 * edge-triggered and active high unless the MADT overrides it. Returns 0,
 * or -1 after printing why. */
int ioapic_route_isa_irq(uint8_t irq, uint8_t vector, const char *who);

#endif
