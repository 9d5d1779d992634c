/* pmm.h: the physical page allocator, over the UEFI memory map.
 *
 * RAM is identity mapped (paging.h), so a physical page's address is also
 * the pointer to it. Pages are 4 KiB. Single-threaded: ferry runs on the
 * boot CPU with interrupts off outside its idle halt. */
#ifndef FERRY_PMM_H
#define FERRY_PMM_H

#include <stddef.h>
#include <stdint.h>

#include "boot_info.h"

#define PAGE_SIZE 4096ull
#define PAGE_SHIFT 12

struct pmm_stats {
	uint64_t total_pages;    /* RAM the firmware reported, every kind */
	uint64_t free_pages;     /* available to pmm_alloc now */
	uint64_t used_pages;     /* handed out by pmm_alloc, plus ferry's image */
	uint64_t reserved_pages; /* firmware runtime, ACPI, unusable, not yet released */
};

/* Phase 1: build the allocator from bi's map, with only conventional
 * memory free; firmware boot-services memory (still holding the page
 * tables and GDT ferry runs on) stays reserved. ferry's image is never
 * free. Panics if the map is malformed or no room for the bitmap exists. */
void pmm_init(const struct boot_info *bi);

/* Phase 2: after ferry runs on its own page tables, GDT, IDT and stack,
 * hand boot-services and loader-data memory to the allocator too. */
void pmm_release_boot_memory(void);

#define PMM_ZERO 1u /* flag: zero the pages */

/* Allocate npages physically contiguous pages, 4 KiB aligned. Returns the
 * identity-mapped pointer, or NULL when no run that long is free (nothing
 * is changed then). */
void *pmm_alloc(size_t npages, unsigned flags);

/* Return pages from pmm_alloc. Panics on a double free or on pages pmm
 * never handed out (a kernel bug). */
void pmm_free(void *p, size_t npages);

void pmm_get_stats(struct pmm_stats *s);

/* Highest RAM address + 1 (for the identity map). */
uint64_t pmm_ram_end(void);

#endif
