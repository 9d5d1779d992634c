/* pmm.c: a bitmap page allocator (1 bit per 4 KiB page; set = not free).
 *
 * A bitmap rather than free lists: guest memory allocations want many
 * single frames, DMA rings and the heap want contiguous runs, and the bitmap
 * serves both with a next-fit hint at a cost of 32 KiB per GiB of RAM. */
#include <string.h>

#include "pmm.h"
#include "trap.h"

extern uint8_t _ferry_image_start[], _ferry_image_end[];

static uint64_t *bitmap;     /* 1 = allocated or reserved */
static uint64_t npages_all;  /* pages covered by the bitmap */
static uint64_t hint;        /* next-fit start */
static uint64_t ram_end;
static struct pmm_stats stats;
static const struct boot_info *boot;

static inline int bit_test(uint64_t pfn) { return (bitmap[pfn >> 6] >> (pfn & 63)) & 1; }
static inline void bit_set(uint64_t pfn) { bitmap[pfn >> 6] |= 1ull << (pfn & 63); }
static inline void bit_clear(uint64_t pfn) { bitmap[pfn >> 6] &= ~(1ull << (pfn & 63)); }

static int is_ram(uint32_t type)
{
	switch (type) {
	case BOOT_MEM_LOADER_CODE: case BOOT_MEM_LOADER_DATA: case BOOT_MEM_BOOT_CODE:
	case BOOT_MEM_BOOT_DATA: case BOOT_MEM_RUNTIME_CODE: case BOOT_MEM_RUNTIME_DATA:
	case BOOT_MEM_CONVENTIONAL: case BOOT_MEM_ACPI_RECLAIM: case BOOT_MEM_ACPI_NVS:
	case BOOT_MEM_UNUSABLE: case BOOT_MEM_PERSISTENT:
		return 1;
	}
	return 0;
}

static int in_image(uint64_t pfn)
{
	uint64_t a = pfn << PAGE_SHIFT;
	return a >= (uint64_t)(uintptr_t)_ferry_image_start && a < (uint64_t)(uintptr_t)_ferry_image_end;
}

/* Mark [first, first+n) free, skipping ferry's image and page 0 (NULL
 * must never be a valid allocation). */
static void free_range(uint64_t first, uint64_t n)
{
	for (uint64_t p = first; p < first + n && p < npages_all; p++) {
		if (p == 0 || in_image(p) || !bit_test(p))
			continue;
		bit_clear(p);
		stats.free_pages++;
		stats.reserved_pages--;
	}
}

void pmm_init(const struct boot_info *bi)
{
	boot = bi;
	for (uint32_t i = 0; i < bi->mmap_count; i++) {
		const struct boot_mem_range *r = &bi->mmap[i];
		if (!is_ram(r->type))
			continue;
		uint64_t end = r->phys + r->pages * PAGE_SIZE;
		if (end > ram_end)
			ram_end = end;
		stats.total_pages += r->pages;
	}
	npages_all = ram_end >> PAGE_SHIFT;
	uint64_t bm_bytes = ((npages_all + 63) / 64) * 8;
	uint64_t bm_pages = (bm_bytes + PAGE_SIZE - 1) / PAGE_SIZE;

	/* The bitmap lives in the first conventional range big enough. */
	for (uint32_t i = 0; i < bi->mmap_count && !bitmap; i++) {
		const struct boot_mem_range *r = &bi->mmap[i];
		if (r->type == BOOT_MEM_CONVENTIONAL && r->pages > bm_pages && r->phys >= PAGE_SIZE)
			bitmap = (uint64_t *)(uintptr_t)r->phys;
	}
	if (!bitmap)
		panic("pmm: no conventional range holds a %llu-page bitmap", (unsigned long long)bm_pages);
	memset(bitmap, 0xff, bm_pages * PAGE_SIZE);
	stats.reserved_pages = npages_all;

	for (uint32_t i = 0; i < bi->mmap_count; i++) {
		const struct boot_mem_range *r = &bi->mmap[i];
		if (r->type == BOOT_MEM_CONVENTIONAL)
			free_range(r->phys >> PAGE_SHIFT, r->pages);
	}
	/* Claim the bitmap's own pages. */
	uint64_t first = (uint64_t)(uintptr_t)bitmap >> PAGE_SHIFT;
	for (uint64_t p = first; p < first + bm_pages; p++) {
		bit_set(p);
		stats.free_pages--;
		stats.used_pages++;
	}
	uint64_t img = ((uint64_t)(uintptr_t)_ferry_image_end - (uint64_t)(uintptr_t)_ferry_image_start) >> PAGE_SHIFT;
	stats.used_pages += img;
	/* Holes in the map (MMIO, gaps) are not RAM: count only RAM as reserved. */
	stats.reserved_pages = stats.total_pages - stats.free_pages - stats.used_pages;
}

void pmm_release_boot_memory(void)
{
	for (uint32_t i = 0; i < boot->mmap_count; i++) {
		const struct boot_mem_range *r = &boot->mmap[i];
		if (r->type == BOOT_MEM_BOOT_CODE || r->type == BOOT_MEM_BOOT_DATA ||
		    r->type == BOOT_MEM_LOADER_DATA)
			free_range(r->phys >> PAGE_SHIFT, r->pages);
	}
}

void *pmm_alloc(size_t n, unsigned flags)
{
	if (n == 0 || n > stats.free_pages)
		return NULL;
	/* Next-fit: scan from the hint, then wrap once. Whole free words are
	 * skipped 64 pages at a time. */
	for (int pass = 0; pass < 2; pass++) {
		uint64_t p = pass ? 1 : hint, stop = pass ? hint + n : npages_all;
		if (stop > npages_all)
			stop = npages_all;
		while (p + n <= stop) {
			if ((p & 63) == 0 && bitmap[p >> 6] == ~0ull) {
				p += 64;
				continue;
			}
			uint64_t run = 0;
			while (run < n && !bit_test(p + run))
				run++;
			if (run == n) {
				for (uint64_t q = p; q < p + n; q++)
					bit_set(q);
				stats.free_pages -= n;
				stats.used_pages += n;
				hint = p + n;
				void *ptr = (void *)(uintptr_t)(p << PAGE_SHIFT);
				if (flags & PMM_ZERO)
					memset(ptr, 0, n * PAGE_SIZE);
				return ptr;
			}
			p += run + 1;
		}
	}
	return NULL;
}

void pmm_free(void *ptr, size_t n)
{
	uint64_t a = (uint64_t)(uintptr_t)ptr;
	if (a & (PAGE_SIZE - 1))
		panic("pmm_free: unaligned %p", ptr);
	uint64_t first = a >> PAGE_SHIFT;
	for (uint64_t p = first; p < first + n; p++) {
		if (p >= npages_all || !bit_test(p) || in_image(p))
			panic("pmm_free: page 0x%llx was not allocated", (unsigned long long)p);
		bit_clear(p);
	}
	stats.free_pages += n;
	stats.used_pages -= n;
	if (first < hint)
		hint = first;
}

void pmm_get_stats(struct pmm_stats *s)
{
	*s = stats;
}

uint64_t pmm_ram_end(void)
{
	return ram_end;
}
