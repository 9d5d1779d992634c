/* mig_verify.c: the memory check after the switch-over (docs/migration.md,
 * "Verification after the switch-over"). Both ends hash guest memory region
 * by region (REGION_DIGEST: XXH3-128 of each 2 MiB) and the destination
 * compares:
 *
 *   - the source hashes its stopped copy, which nothing changes any more;
 *   - the destination hashes the memory it resumed with while its guest
 *     already runs. At GO every region is write-protected in the stage-2
 *     tables (one page-directory entry each); a region is hashed in the
 *     background, or at the guest's first write into it (the write exits,
 *     the region is hashed as it still is, then made writable and the
 *     write retried), so each hash is of the memory as it was at GO.
 *
 * Independent of the dirty log: a write the log missed on the source left
 * the destination with an old page, and its region's hashes differ. */
#include <stdio.h>
#include <string.h>

#include "mig_priv.h"

#define PAGE 4096u

/* The one set whose regions are protected (the destination's). */
static struct mig_regions *protected_set;

static uint8_t *region_page(void *ctx, uint64_t pfn)
{
	struct hv_vm *vm = ctx;
	return menv_page(vm, pfn, MENV_HASH);
}

static bool is_done(const struct mig_regions *m, uint64_t r)
{
	return (m->done[r / 64] >> (r % 64)) & 1;
}

/* Hash region r now; unprotect it if protected. */
static int hash_region(struct mig_regions *m, uint64_t r)
{
	uint64_t t = menv_now_ns();
	if (stream_region_hash(region_page, m->vm, m->vm->npages, r, &m->h[r]) < 0)
		return -1;
	m->hash_ns += menv_now_ns() - t;
	m->done[r / 64] |= 1ull << (r % 64);
	m->ndone++;
	if (m->protect)
		menv_protect(m->vm, r, 1, false);
	return 0;
}

static int on_write(struct hv_vm *vm, gpa_t gpa)
{
	struct mig_regions *m = protected_set;
	if (!m || m->vm != vm)
		return -1;
	uint64_t r = (gpa >> 12) / HV_REGION_PAGES;
	if (!is_done(m, r)) {
		uint64_t t = menv_now_ns();
		if (hash_region(m, r) < 0)
			return -1;
		m->at_write++;
		m->at_write_ns += menv_now_ns() - t;
	}
	/* Hashed before (a stale read-only translation): the flush below
	 * drops it, and the retried write goes through. */
	menv_flush(vm);
	return 0;
}

static size_t hashes_pages(uint64_t n)
{
	return (n * sizeof(struct stream_region_hash) + PAGE - 1) / PAGE;
}

static size_t bitmap_pages(uint64_t n)
{
	return ((n + 63) / 64 * 8 + PAGE - 1) / PAGE;
}

int mig_regions_begin(struct mig_regions *m, struct hv_vm *vm, bool protect)
{
	memset(m, 0, sizeof(*m));
	m->vm = vm;
	m->n = stream_region_count(vm->npages);
	m->h = menv_alloc(hashes_pages(m->n), true);
	m->done = menv_alloc(bitmap_pages(m->n), true);
	if (!m->h || !m->done) {
		mig_regions_end(m);
		return -1;
	}
	m->t0 = menv_now_ns();
	if (protect) {
		m->protect = true;
		protected_set = m;
		vm->write_fault = on_write;
		menv_protect(vm, 0, m->n, true);
		menv_flush(vm);
	}
	return 0;
}

int mig_regions_step(struct mig_regions *m, uint64_t budget_ns)
{
	uint64_t t0 = menv_now_ns();
	while (m->ndone < m->n && menv_now_ns() - t0 < budget_ns) {
		while (m->next < m->n && is_done(m, m->next))
			m->next++;
		if (m->next >= m->n)
			break;
		if (hash_region(m, m->next) < 0)
			return -1;
	}
	if (m->ndone < m->n)
		return 0;
	if (!m->done_ns)
		m->done_ns = menv_now_ns() - m->t0;
	if (m->protect) {
		/* Every region is writable again; let the guest see it. */
		menv_flush(m->vm);
		m->vm->write_fault = NULL;
		protected_set = NULL;
		m->protect = false;
	}
	return 1;
}

uint64_t mig_regions_ready(const struct mig_regions *m, uint64_t from)
{
	uint64_t r = from;
	while (r < m->n && is_done(m, r))
		r++;
	return r - from;
}

void mig_regions_end(struct mig_regions *m)
{
	if (m->protect && m->vm) {
		menv_protect(m->vm, 0, m->n, false);
		menv_flush(m->vm);
		m->vm->write_fault = NULL;
	}
	if (protected_set == m)
		protected_set = NULL;
	if (m->h)
		menv_free(m->h, hashes_pages(m->n));
	if (m->done)
		menv_free(m->done, bitmap_pages(m->n));
	memset(m, 0, sizeof(*m));
}

void mig_regions_forget(struct mig_regions *m)
{
	/* The guest (and its tables) went away under us: nothing to unprotect. */
	m->protect = false;
	m->vm = NULL;
	mig_regions_end(m);
}
