/* paging.c: ferry's page tables (Intel SDM Vol. 3A 4.5, 4-level paging). */
#include <string.h>

#include "boot_info.h"
#include "cpu.h"
#include "paging.h"
#include "pmm.h"
#include "trap.h"
#include "x86.h"

extern uint8_t _ferry_image_start[], _ferry_image_end[];
extern uint8_t _ferry_text_start[], _ferry_text_end[];
extern uint8_t _ferry_rodata_start[], _ferry_rodata_end[];
extern uint8_t boot_stack[];

#define SZ_2M (2ull << 20)
#define SZ_1G (1ull << 30)
#define IDX(va, level) (((va) >> (12 + 9 * (level))) & 511) /* level 0 = PT */

static uint64_t *pml4;
static uint64_t nx; /* PTE_NX when the CPU has it, else 0 (reserved bit) */
static uint64_t ident_end; /* identity map covers [0, ident_end) */

static uint64_t *table_new(void)
{
	uint64_t *t = pmm_alloc(1, PMM_ZERO);
	if (!t)
		panic("paging: out of memory for page tables");
	return t;
}

/* The entry for va at `level` (0 = PT ... 3 = PML4), creating tables on
 * the way down; NULL when a table cannot be allocated. */
static uint64_t *walk(uint64_t va, int level)
{
	uint64_t *t = pml4;
	for (int l = 3; l > level; l--) {
		uint64_t *e = &t[IDX(va, l)];
		if (!(*e & PTE_P)) {
			uint64_t *n = pmm_alloc(1, PMM_ZERO);
			if (!n)
				return NULL;
			*e = (uint64_t)(uintptr_t)n | PTE_P | PTE_RW;
		}
		if (*e & PTE_PS)
			panic("paging: 0x%llx is inside a large page", (unsigned long long)va);
		t = (uint64_t *)(uintptr_t)(*e & PTE_ADDR_MASK);
	}
	return &t[IDX(va, level)];
}

/* Does any RAM lie in [a, a + len)? */
static int range_has_ram(const struct boot_info *bi, uint64_t a, uint64_t len)
{
	for (uint32_t i = 0; i < bi->mmap_count; i++) {
		const struct boot_mem_range *r = &bi->mmap[i];
		if (r->type == BOOT_MEM_MMIO || r->type == BOOT_MEM_MMIO_PORT || r->type == BOOT_MEM_RESERVED)
			continue;
		if (r->phys < a + len && r->phys + r->pages * PAGE_SIZE > a)
			return 1;
	}
	return 0;
}

/* Replace the 2 MiB mapping around va with a page table of 512 4 KiB
 * entries with the same attributes, so parts of it can differ. */
static void split_2m(uint64_t va)
{
	uint64_t *pde = walk(va, 1);
	KASSERT(pde && (*pde & PTE_PS));
	uint64_t base = *pde & PTE_ADDR_MASK & ~(SZ_2M - 1), attr = *pde & ~PTE_ADDR_MASK & ~PTE_PS;
	uint64_t *pt = table_new();
	for (int i = 0; i < 512; i++)
		pt[i] = (base + (uint64_t)i * PAGE_SIZE) | attr;
	*pde = (uint64_t)(uintptr_t)pt | PTE_P | PTE_RW;
}

static void set_4k(uint64_t va, uint64_t entry)
{
	uint64_t *pte = walk(va, 0);
	KASSERT(pte);
	*pte = entry;
}

static void map_identity(const struct boot_info *bi)
{
	ident_end = pmm_ram_end();
	if (ident_end < 4 * SZ_1G)
		ident_end = 4 * SZ_1G;
	ident_end = (ident_end + SZ_1G - 1) & ~(SZ_1G - 1);
	for (uint64_t a = 0; a < ident_end; a += SZ_2M) {
		uint64_t *pde = walk(a, 1);
		if (!pde)
			panic("paging: out of memory for page tables");
		uint64_t cache = range_has_ram(bi, a, SZ_2M) ? 0 : (PTE_PCD | PTE_PWT);
		*pde = a | PTE_P | PTE_RW | PTE_PS | cache | nx;
	}
}

/* W^X for ferry's image, plus the NULL page and stack guard page. */
static void map_image(void)
{
	uint64_t start = (uint64_t)(uintptr_t)_ferry_image_start, end = (uint64_t)(uintptr_t)_ferry_image_end;
	for (uint64_t a = start & ~(SZ_2M - 1); a < end; a += SZ_2M)
		split_2m(a);
	for (uint64_t a = start; a < end; a += PAGE_SIZE) {
		uint64_t flags;
		if (a >= (uint64_t)(uintptr_t)_ferry_text_start && a < (uint64_t)(uintptr_t)_ferry_text_end)
			flags = PTE_P; /* read + execute */
		else if (a >= (uint64_t)(uintptr_t)_ferry_rodata_start && a < (uint64_t)(uintptr_t)_ferry_rodata_end)
			flags = PTE_P | nx;
		else
			flags = PTE_P | PTE_RW | nx;
		set_4k(a, a | flags);
	}
	set_4k((uint64_t)(uintptr_t)boot_stack, 0); /* guard: lowest stack page */
	split_2m(0);
	set_4k(0, 0); /* NULL */
}

void paging_init(const struct boot_info *bi)
{
	nx = cpu_info.nx ? PTE_NX : 0;
	pml4 = table_new();
	map_identity(bi);
	map_image();
	x86_write_cr0(x86_read_cr0() | CR0_WP); /* ring 0 honours read-only too */
	x86_write_cr3((uint64_t)(uintptr_t)pml4);
}

int paging_map_page(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *pte = walk(va, 0);
	if (!pte)
		return -1;
	*pte = (pa & PTE_ADDR_MASK) | flags | PTE_P;
	x86_invlpg((void *)(uintptr_t)va);
	return 0;
}

uint64_t paging_unmap_page(uint64_t va)
{
	uint64_t *t = pml4;
	for (int l = 3; l > 0; l--) {
		uint64_t e = t[IDX(va, l)];
		if (!(e & PTE_P) || (e & PTE_PS))
			return 0;
		t = (uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK);
	}
	uint64_t e = t[IDX(va, 0)];
	if (!(e & PTE_P))
		return 0;
	t[IDX(va, 0)] = 0;
	x86_invlpg((void *)(uintptr_t)va);
	return e & PTE_ADDR_MASK;
}

void *paging_map_mmio(uint64_t pa, uint64_t len)
{
	for (uint64_t a = pa & ~(PAGE_SIZE - 1); a < pa + len; a += PAGE_SIZE) {
		if (a < ident_end)
			continue;
		if (paging_map_page(a, a, PTE_RW | PTE_PCD | PTE_PWT | nx) < 0)
			return NULL;
	}
	return (void *)(uintptr_t)pa;
}

uint64_t paging_root(void)
{
	return (uint64_t)(uintptr_t)pml4;
}
