/* gdt.c: GDT, TSS and the dedicated stacks for faults that cannot trust
 * the current one (SDM Vol. 3A 3.4.5, 7.7). */
#include <string.h>

#include "gdt.h"
#include "x86.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss64) == 104, "TSS size");

/* Descriptor bits (SDM Vol. 3A 3.4.5): P, DPL, S, type, L, G. */
#define SEG_CODE64 0x00209a0000000000ull /* P S code exec/read L */
#define SEG_DATA 0x0000920000000000ull   /* P S data read/write */
#define SEG_DPL3 0x0000600000000000ull

#define IST_STACK_BYTES 8192

static uint64_t gdt[7] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static uint8_t ist_stacks[2][IST_STACK_BYTES] __attribute__((aligned(16)));

void gdt_init(void)
{
	gdt[0] = 0;
	gdt[GDT_KERNEL_CS >> 3] = SEG_CODE64;
	gdt[GDT_KERNEL_DS >> 3] = SEG_DATA;
	gdt[GDT_USER_DS >> 3] = SEG_DATA | SEG_DPL3;
	gdt[GDT_USER_CS >> 3] = SEG_CODE64 | SEG_DPL3;

	memset(&tss, 0, sizeof(tss));
	tss.ist[GDT_IST_DOUBLE_FAULT - 1] = (uint64_t)(uintptr_t)(ist_stacks[0] + IST_STACK_BYTES);
	tss.ist[GDT_IST_NMI - 1] = (uint64_t)(uintptr_t)(ist_stacks[1] + IST_STACK_BYTES);
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */

	/* 16-byte available 64-bit TSS descriptor (type 9). */
	uint64_t base = (uint64_t)(uintptr_t)&tss, limit = sizeof(tss) - 1;
	gdt[GDT_TSS >> 3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			    (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[(GDT_TSS >> 3) + 1] = base >> 32;

	struct x86_dtr d = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
	x86_lgdt(&d);
	/* Reload CS with a far return, then the data segments. */
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
			 "pushq %0\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "mov %1, %%ax\n\t"
			 "mov %%ax, %%ds\n\t"
			 "mov %%ax, %%es\n\t"
			 "mov %%ax, %%ss\n\t"
			 "xor %%eax, %%eax\n\t"
			 "mov %%ax, %%fs\n\t"
			 "mov %%ax, %%gs\n\t"
			 :
			 : "i"(GDT_KERNEL_CS), "i"(GDT_KERNEL_DS)
			 : "rax", "memory");
	x86_ltr(GDT_TSS);
}

void gdt_set_kernel_stack(uint64_t rsp0)
{
	tss.rsp[0] = rsp0;
}
