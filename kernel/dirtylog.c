/* dirtylog.c: dirty logging over the stage-2 tables of any backend (the
 * formats differ only in which bits mean accessed and dirty: hv_stage2),
 * the `dirtylog` and `info dirty` commands, and the exactness test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "dirtylog.h"
#include "hypercall.h"
#include "pmm.h"
#include "trap.h"

static struct dirtylog_stats st;

static inline int test_and_clear(uint64_t *e, uint64_t bit)
{
	/* Plain read first: most entries are clean, and a locked RMW on each
	 * would cost more than the walk. The clear itself must be atomic: on
	 * a CPU running the guest concurrently, the hardware sets A/D with
	 * locked operations of its own, and a plain store could undo them. */
	if (!(__atomic_load_n(e, __ATOMIC_RELAXED) & bit))
		return 0;
	return (__atomic_fetch_and(e, ~bit, __ATOMIC_SEQ_CST) & bit) != 0;
}

static void clear_all(struct hv_vm *vm)
{
	struct hv_stage2 *s = &vm->s2;
	uint64_t ad = s->accessed | s->dirty;
	for (size_t d = 0; d < s->npds; d++)
		__atomic_fetch_and(&s->pdpt[d], ~s->accessed, __ATOMIC_SEQ_CST);
	for (size_t t = 0; t < s->npts; t++) {
		__atomic_fetch_and(&s->pds[t / 512][t % 512], ~s->accessed, __ATOMIC_SEQ_CST);
		for (size_t i = 0; i < 512; i++)
			if (s->pts[t][i] & ad)
				__atomic_fetch_and(&s->pts[t][i], ~ad, __ATOMIC_SEQ_CST);
	}
	vm->ops->flush(vm);
}

void dirtylog_start(struct hv_vm *vm)
{
	clear_all(vm);
	memset(vm->host_dirty, 0, (vm->npages + 63) / 64 * 8);
	vm->host_dirty_lo = 1;
	vm->host_dirty_hi = 0;
	memset(&st, 0, sizeof(st));
	st.active = 1;
	st.last_at_ns = clock_ns();
}

void dirtylog_stop(struct hv_vm *vm)
{
	(void)vm;
	st.active = 0;
}

void dirtylog_note_host_write(struct hv_vm *vm, uint64_t pfn)
{
	if (pfn >= vm->npages)
		return;
	vm->host_dirty[pfn / 64] |= 1ull << (pfn % 64);
	if (vm->host_dirty_lo > vm->host_dirty_hi) {
		vm->host_dirty_lo = vm->host_dirty_hi = pfn / 64;
	} else {
		vm->host_dirty_lo = pfn / 64 < vm->host_dirty_lo ? pfn / 64 : vm->host_dirty_lo;
		vm->host_dirty_hi = pfn / 64 > vm->host_dirty_hi ? pfn / 64 : vm->host_dirty_hi;
	}
}

/* The harvest, level by level, with a flush between levels:
 *
 *   1. test-and-clear A in every PDPT entry; the PDs of those that had it
 *      are the only ones anything was walked through since last time;
 *      flush.
 *   2. in those PDs, test-and-clear A in every PDE; flush.
 *   3. in the PTs of the PDEs that had A, test-and-clear D in every leaf,
 *      setting the page's bit; flush.
 *
 * Why the flushes sit where they do. A translation cached in the TLB or
 * a paging-structure cache is used without re-reading the entry, so after
 * a bit is cleared in memory the CPU (or emulator) will not set it again
 * while the cached copy lives:
 *  - a leaf cached as dirty takes further writes without setting D: the
 *    flush after step 3 ends that, and it comes before the caller reads
 *    any page, so every write either set a D bit this harvest found, set
 *    one after the flush (found next time), or happened before the flush
 *    and is in the contents the caller reads now;
 *  - an upper entry cached while its A is being cleared lets new walks
 *    below it skip setting A, which would make the next harvest skip a
 *    subtree with dirty leaves. Each level is read only after the flush
 *    that followed clearing the level above, so a walk either went through
 *    memory after that flush (and set A again: seen next time) or happened
 *    before it, when the level above still had A set and is being scanned
 *    now.
 * Neither emulator catches a missing flush (both flush on every VM entry),
 * so this order is correct by construction, not by test.
 *
 * Skipping clean subtrees makes the cost follow what the guest touched:
 * a 1 GiB guest that wrote 16 MiB costs 512 PDEs + 8 PTs, about what a
 * 16 MiB guest that wrote all of itself costs. */
uint64_t dirtylog_harvest(struct hv_vm *vm, uint64_t *bitmap)
{
	if (!st.active)
		return 0;
	uint64_t t0 = clock_ns(), entries = 0, found = 0;
	struct hv_stage2 *s = &vm->s2;
	uint64_t pd_live = 0; /* bit d: PD d had A (npds <= 8: HV_SIZE_MAX) */
	_Static_assert(HV_SIZE_MAX >> 30 <= 64, "pd_live holds one bit per PD");

	for (size_t d = 0; d < s->npds; d++, entries++)
		if (test_and_clear(&s->pdpt[d], s->accessed))
			pd_live |= 1ull << d;
	vm->ops->flush(vm);

	/* PT numbers to scan, in place in a small array per PD pass. */
	for (size_t d = 0; d < s->npds; d++) {
		if (!(pd_live & (1ull << d)))
			continue;
		uint64_t live[512 / 64] = { 0 };
		size_t first = d * 512, last = first + 512 < s->npts ? first + 512 : s->npts;
		for (size_t t = first; t < last; t++, entries++)
			if (test_and_clear(&s->pds[d][t - first], s->accessed))
				live[(t - first) / 64] |= 1ull << ((t - first) % 64);
		/* The flush between the PD and PT levels: once per PD, cheap. */
		vm->ops->flush(vm);
		for (size_t t = first; t < last; t++) {
			if (!(live[(t - first) / 64] & (1ull << ((t - first) % 64))))
				continue;
			uint64_t *pt = s->pts[t];
			for (size_t i = 0; i < 512; i++, entries++) {
				if (!test_and_clear(&pt[i], s->dirty))
					continue;
				uint64_t pfn = t * 512 + i, m = 1ull << (pfn % 64);
				if (!(bitmap[pfn / 64] & m)) {
					bitmap[pfn / 64] |= m;
					found++;
				}
			}
		}
	}
	vm->ops->flush(vm);

	/* Pages ferry wrote itself (only the words that hold any: a scan
	 * of the whole bitmap would make the cost follow the guest's size). */
	for (uint64_t w = vm->host_dirty_lo; w <= vm->host_dirty_hi; w++) {
		uint64_t h = vm->host_dirty[w];
		if (!h)
			continue;
		found += (uint64_t)__builtin_popcountll(h & ~bitmap[w]);
		bitmap[w] |= h;
		vm->host_dirty[w] = 0;
	}
	vm->host_dirty_lo = 1;
	vm->host_dirty_hi = 0;
	uint64_t now = clock_ns();
	st.harvests++;
	st.last_pages = found;
	st.last_ns = now - t0;
	st.last_entries = entries;
	st.prev_at_ns = st.last_at_ns;
	st.last_at_ns = now;
	return found;
}

void dirtylog_get_stats(struct dirtylog_stats *s)
{
	*s = st;
}
