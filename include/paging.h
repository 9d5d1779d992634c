/* paging.h: ferry's own page tables.
 *
 * Layout: every byte of RAM (and the first 4 GiB, for MMIO) identity
 * mapped with 2 MiB pages, write-back for RAM and uncached elsewhere, NX
 * everywhere but ferry's text. ferry's image is mapped with 4 KiB pages:
 * text read+execute, rodata read-only, data and bss read-write (W^X). Page
 * 0 and the page under the boot stack are not mapped, so a NULL access or a
 * stack overflow faults. The heap lives above RAM at PAGING_HEAP_BASE. */
#ifndef FERRY_PAGING_H
#define FERRY_PAGING_H

#include <stdint.h>

#include "boot_info.h"

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_G (1ull << 8)
#define PTE_NX (1ull << 63)
#define PTE_ADDR_MASK 0x000ffffffffff000ull

#define PAGING_HEAP_BASE 0x0000400000000000ull /* 64 TiB, above any RAM */
#define PAGING_HEAP_MAX (16ull << 30)          /* bytes of heap address space */

/* Build the tables and switch CR3 to them. Requires pmm_init (phase 1)
 * and cpu_init (NX). Panics when out of memory for the tables. */
void paging_init(const struct boot_info *bi);

/* Map one 4 KiB page va -> pa with flags (PTE_*; PTE_P implied) in
 * ferry's tables, allocating intermediate tables as needed. va must not be
 * covered by a 2 MiB identity mapping. Returns 0, or -1 when out of
 * memory for a table. Flushes the TLB entry. */
int paging_map_page(uint64_t va, uint64_t pa, uint64_t flags);

/* Remove the 4 KiB mapping of va (mapped by paging_map_page) and flush
 * its TLB entry. Returns the physical address it mapped, or 0 if none. */
uint64_t paging_unmap_page(uint64_t va);

/* Make [pa, pa+len) reachable at the same address, uncached (for MMIO
 * above the initial identity map, e.g. 64-bit BARs). Returns the pointer,
 * or NULL when out of memory for tables. */
void *paging_map_mmio(uint64_t pa, uint64_t len);

/* The PML4's physical address (what CR3 holds). */
uint64_t paging_root(void);

#endif
