/* gdt.h: ferry's own GDT and TSS (64-bit flat segments). */
#ifndef FERRY_GDT_H
#define FERRY_GDT_H

#include <stdint.h>

/* Selectors. The user pair sits in SYSRET order (data, then code). */
#define GDT_KERNEL_CS 0x08
#define GDT_KERNEL_DS 0x10
#define GDT_USER_DS (0x18 | 3)
#define GDT_USER_CS (0x20 | 3)
#define GDT_TSS 0x28

/* Interrupt stack table slots (IST index as used in IDT gates). */
#define GDT_IST_DOUBLE_FAULT 1
#define GDT_IST_NMI 2

/* Load the GDT and TSS, reload every segment register. Call once, before
 * trap_init (the IDT's gates name GDT_KERNEL_CS and IST slots). */
void gdt_init(void);

/* Set the stack the CPU switches to on an interrupt from ring 3 (TSS.RSP0). */
void gdt_set_kernel_stack(uint64_t rsp0);

#endif
