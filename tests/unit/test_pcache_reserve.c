/* test_pcache_reserve.c: the page cache's reservation (pcache_reserve):
 * exactly the bytes it says, in a few blocks; no allocation after it, also
 * through resizes within it; growing it keeps the pages; its failure
 * changes nothing and leaks nothing; clear; destroy of mixed entries. A
 * counting allocator (pcache_testlib.h) checks every byte. */
#include "pcache_testlib.h"

/* pcache_reserve takes exactly pcache_reserve_bytes, in a few blocks, on
 * a cache of budget 0 (no bucket array yet) and on one of the same
 * budget (whose bucket array it may reuse), around each size boundary. */
static void test_reserve_bytes(void **state)
{
	static const size_t sizes[] = {0, 1, 2, 3, 5, 8, 9, 100};

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (long delta = -1; delta <= 1; delta++) {
			size_t budget = cost(sizes[s]) + (size_t)delta;
			size_t want = sizes[s] - (delta < 0 && sizes[s]);
			size_t rb = pcache_reserve_bytes(budget, PAGE);
			char name[64];

			if ((long)cost(sizes[s]) + delta < 0)
				continue;
			snprintf(name, sizeof(name), "reserve budget %zu", budget);
			EXPECT_INT(name, "reserve_bytes", want ? cost(want) + PCACHE_SLAB_OVERHEAD : 0,
				   rb);
			for (int same = 0; same < 2; same++) {
				struct counter c;
				struct pcache *pc = make(&c, same ? budget : 0);
				size_t nallocs = c.nallocs;

				EXPECT_INT(name, "reserve", 0, pcache_reserve(pc, budget));
				EXPECT_INT(name, "bytes held", rb, held(&c));
				EXPECT_INT(name, "bytes reserved", rb, pcache_bytes_reserved(pc));
				EXPECT_INT(name, "at most 2 allocations", 1, c.nallocs - nallocs <= 2);
				check_accounting(name, pc, &c);
				pcache_destroy(pc);
				EXPECT_INT(name, "bytes leaked", 0, c.live_bytes);
			}
		}
	}
	EXPECT_INT("reserve_bytes", "page size 0", 0, pcache_reserve_bytes(cost(4), 0));
}

/* After reserving, filling past capacity, updating and removing never
 * call the allocator: it refuses everything, and nothing fails. */
static void test_reserve_no_alloc(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(8));
	struct pcache_stats st;
	uint8_t page[PAGE];
	size_t nallocs;

	(void)state;
	EXPECT_INT("reserve 8", "reserve", 0, pcache_reserve(pc, cost(8)));
	EXPECT_INT("reserve 8", "bytes reserved", cost(8) + PCACHE_SLAB_OVERHEAD,
		   pcache_bytes_reserved(pc));
	EXPECT_INT("reserve 8", "bytes used: the bucket array", cost(8) - 8 * ESIZE,
		   pcache_bytes_used(pc));
	c.refuse = true;
	nallocs = c.nallocs;
	for (uint64_t p = 0; p < 20; p++) {
		fill(page, p, 0);
		EXPECT_INT("reserve 8: fill 20", "insert", 0, pcache_insert(pc, p, page));
	}
	check_order("reserve 8: fill 20", pc, (uint64_t[]){19, 18, 17, 16, 15, 14, 13, 12}, 8);
	for (uint64_t p = 12; p < 20; p++)
		check_page("reserve 8: fill 20", pcache_lookup(pc, p), p, 0);
	fill(page, 13, 1);
	EXPECT_INT("reserve 8: update", "insert", 0, pcache_insert(pc, 13, page));
	check_page("reserve 8: update", pcache_lookup(pc, 13), 13, 1);
	EXPECT_INT("reserve 8: remove", "was cached", 1, pcache_remove(pc, 15));
	fill(page, 30, 0);
	EXPECT_INT("reserve 8: refill", "insert", 0, pcache_insert(pc, 30, page));
	fill(page, 31, 0);
	EXPECT_INT("reserve 8: refill", "insert", 0, pcache_insert(pc, 31, page));
	check_order("reserve 8: refill", pc, (uint64_t[]){31, 30, 13, 19, 18, 17, 16, 14}, 8);
	EXPECT_INT("reserve 8", "allocator calls after reserve", 0, c.nallocs - nallocs);
	EXPECT_INT("reserve 8", "bytes held == reserved", pcache_bytes_reserved(pc), held(&c));
	EXPECT_INT("reserve 8", "bytes used when full", cost(8), pcache_bytes_used(pc));
	pcache_stats(pc, &st);
	EXPECT_INT("reserve 8", "inserts", 22, st.inserts);
	EXPECT_INT("reserve 8", "evictions", 13, st.evictions);
	check_accounting("reserve 8", pc, &c);
	pcache_destroy(pc);
	EXPECT_INT("reserve 8", "bytes leaked", 0, c.live_bytes);
	EXPECT_INT("reserve 8", "blocks leaked", 0, c.live_blocks);
}

/* Within the reservation, resizing down and back up keeps the most
 * recent pages and calls no allocator. */
static void test_reserve_resize(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(4));
	uint8_t page[PAGE];
	size_t nallocs;

	(void)state;
	EXPECT_INT("reserve 16", "reserve", 0, pcache_reserve(pc, cost(16)));
	c.refuse = true;
	nallocs = c.nallocs;
	EXPECT_INT("up to 16", "resize", 0, pcache_resize(pc, cost(16)));
	for (uint64_t p = 0; p < 16; p++) {
		fill(page, p, 0);
		EXPECT_INT("up to 16", "insert", 0, pcache_insert(pc, p, page));
	}
	pcache_lookup(pc, 3);
	pcache_lookup(pc, 7);
	EXPECT_INT("down to 5", "resize", 0, pcache_resize(pc, cost(5)));
	check_order("down to 5", pc, (uint64_t[]){7, 3, 15, 14, 13}, 5);
	EXPECT_INT("down to 5", "bytes used", cost(5), pcache_bytes_used(pc));
	check_page("down to 5", pcache_lookup(pc, 14), 14, 0); /* 14 7 3 15 13 */
	EXPECT_INT("down to 2", "resize", 0, pcache_resize(pc, cost(2)));
	check_order("down to 2", pc, (uint64_t[]){14, 7}, 2);
	EXPECT_INT("up to 16 again", "resize", 0, pcache_resize(pc, cost(16)));
	check_order("up to 16 again", pc, (uint64_t[]){14, 7}, 2);
	for (uint64_t p = 20; p < 34; p++) {
		fill(page, p, 0);
		EXPECT_INT("refill", "insert", 0, pcache_insert(pc, p, page));
	}
	EXPECT_INT("refill", "pages", 16, pcache_count(pc));
	check_page("refill keeps 7", pcache_lookup(pc, 7), 7, 0); /* 14 is now least recent */
	fill(page, 34, 0);
	EXPECT_INT("refill past 16", "insert", 0, pcache_insert(pc, 34, page));
	EXPECT_INT("refill past 16", "14 evicted", 0, pcache_lookup(pc, 14) != NULL);
	check_page("refill past 16", pcache_lookup(pc, 20), 20, 0);
	check_page("refill past 16", pcache_lookup(pc, 34), 34, 0);
	EXPECT_INT("down to 0", "resize", 0, pcache_resize(pc, 0));
	EXPECT_INT("down to 0", "pages", 0, pcache_count(pc));
	EXPECT_INT("down to 0", "bytes used", 0, pcache_bytes_used(pc));
	EXPECT_INT("up from 0", "resize", 0, pcache_resize(pc, cost(16)));
	fill(page, 40, 0);
	EXPECT_INT("up from 0", "insert", 0, pcache_insert(pc, 40, page));
	check_page("up from 0", pcache_lookup(pc, 40), 40, 0);
	EXPECT_INT("reserve 16", "allocator calls after reserve", 0, c.nallocs - nallocs);
	EXPECT_INT("reserve 16", "bytes held == reserved", pcache_bytes_reserved(pc), held(&c));
	check_accounting("reserve 16", pc, &c);
	pcache_destroy(pc);
	EXPECT_INT("reserve 16", "bytes leaked", 0, c.live_bytes);
}

/* Growing the reservation allocates only what is added, keeps the pages;
 * a reservation already large enough allocates nothing. */
static void test_reserve_grow(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(5));
	struct pcache_stats st;
	uint8_t page[PAGE];
	size_t before, nallocs;

	(void)state;
	EXPECT_INT("reserve 5", "reserve", 0, pcache_reserve(pc, cost(5)));
	for (uint64_t p = 0; p < 5; p++) {
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	/* 7 pages need the same 8 buckets: only a slab of 2 entries. */
	before = held(&c);
	EXPECT_INT("grow to 7", "reserve", 0, pcache_reserve(pc, cost(7)));
	EXPECT_INT("grow to 7", "bytes added", 2 * ESIZE + PCACHE_SLAB_OVERHEAD, held(&c) - before);
	EXPECT_INT("grow to 7", "bytes reserved", cost(7) + 2 * PCACHE_SLAB_OVERHEAD,
		   pcache_bytes_reserved(pc));
	/* 40 pages: a slab of 33, and 64 buckets replacing the 8. */
	before = held(&c);
	EXPECT_INT("grow to 40", "reserve", 0, pcache_reserve(pc, cost(40)));
	EXPECT_INT("grow to 40", "bytes added",
		   33 * ESIZE + PCACHE_SLAB_OVERHEAD + (64 - 8) * sizeof(void *), held(&c) - before);
	EXPECT_INT("grow to 40", "bytes reserved", cost(40) + 3 * PCACHE_SLAB_OVERHEAD,
		   pcache_bytes_reserved(pc));
	EXPECT_INT("grow to 40", "bytes held == reserved", pcache_bytes_reserved(pc), held(&c));
	check_order("grow to 40", pc, (uint64_t[]){4, 3, 2, 1, 0}, 5);
	for (uint64_t p = 0; p < 5; p++)
		check_page("grow to 40", pcache_lookup(pc, p), p, 0);
	pcache_stats(pc, &st);
	EXPECT_INT("grow to 40", "budget kept", cost(5), st.budget);
	EXPECT_INT("grow to 40", "capacity kept", 5, st.capacity);
	EXPECT_INT("grow to 40", "stats reserved", pcache_bytes_reserved(pc), st.reserved);
	/* Smaller or equal: nothing happens. */
	nallocs = c.nallocs;
	EXPECT_INT("reserve 10", "reserve", 0, pcache_reserve(pc, cost(10)));
	EXPECT_INT("reserve 40 again", "reserve", 0, pcache_reserve(pc, cost(40)));
	EXPECT_INT("reserve 10 and 40 again", "allocator calls", 0, c.nallocs - nallocs);
	EXPECT_INT("reserve 10 and 40 again", "bytes reserved", cost(40) + 3 * PCACHE_SLAB_OVERHEAD,
		   pcache_bytes_reserved(pc));
	/* All three slabs serve: 40 pages with the allocator refusing. */
	c.refuse = true;
	EXPECT_INT("fill 40", "resize", 0, pcache_resize(pc, cost(40)));
	for (uint64_t p = 5; p < 41; p++) {
		fill(page, p, 0);
		EXPECT_INT("fill 40", "insert", 0, pcache_insert(pc, p, page));
	}
	EXPECT_INT("fill 40", "pages", 40, pcache_count(pc));
	EXPECT_INT("fill 40", "0 evicted", 0, pcache_lookup(pc, 0) != NULL);
	check_page("fill 40", pcache_lookup(pc, 1), 1, 0);
	check_page("fill 40", pcache_lookup(pc, 40), 40, 0);
	EXPECT_INT("fill 40", "allocator calls", 0, c.nallocs - nallocs);
	check_accounting("fill 40", pc, &c);
	pcache_destroy(pc);
	EXPECT_INT("grow", "bytes leaked", 0, c.live_bytes);
	EXPECT_INT("grow", "blocks leaked", 0, c.live_blocks);
}

/* A reserve that fails (at its first or second allocation; on a cache
 * with or without a reservation, and asking for more than exists) leaves
 * everything as it was and leaks nothing. */
static void test_reserve_failure(void **state)
{
	uint8_t page[PAGE];

	(void)state;
	for (int grow = 0; grow < 2; grow++) {
		for (size_t k = 1; k <= 2; k++) {
			struct counter c;
			struct pcache *pc = make(&c, cost(4));
			struct pcache_stats st0, st;
			size_t before, reserved;
			char name[64];

			snprintf(name, sizeof(name), "reserve%s fails at %zu", grow ? " more" : "", k);
			if (grow)
				EXPECT_INT(name, "first reserve", 0, pcache_reserve(pc, cost(4)));
			for (uint64_t p = 0; p < 3; p++) {
				fill(page, p, 0);
				pcache_insert(pc, p, page);
			}
			pcache_lookup(pc, 0);
			pcache_stats(pc, &st0);
			before = held(&c);
			reserved = pcache_bytes_reserved(pc);
			c.fail_at = c.nallocs + k;
			EXPECT_INT(name, "reserve", PCACHE_ENOMEM, pcache_reserve(pc, cost(64)));
			EXPECT_INT(name, "the failure was seen", 1, c.nallocs >= c.fail_at);
			EXPECT_INT(name, "bytes held", before, held(&c));
			EXPECT_INT(name, "bytes reserved", reserved, pcache_bytes_reserved(pc));
			pcache_stats(pc, &st);
			EXPECT_INT(name, "capacity", st0.capacity, st.capacity);
			EXPECT_INT(name, "budget", st0.budget, st.budget);
			check_order(name, pc, (uint64_t[]){0, 2, 1}, 3);
			for (uint64_t p = 0; p < 3; p++)
				check_page(name, pcache_lookup(pc, p), p, 0);
			check_accounting(name, pc, &c);
			/* No entries were left behind: a fourth page needs the
			 * allocator unless the first reservation holds it. */
			c.refuse = true;
			fill(page, 3, 0);
			EXPECT_INT(name, "insert with the allocator refusing",
				   grow ? 0 : PCACHE_ENOMEM, pcache_insert(pc, 3, page));
			pcache_destroy(pc);
			EXPECT_INT(name, "bytes leaked", 0, c.live_bytes);
			EXPECT_INT(name, "blocks leaked", 0, c.live_blocks);
		}
	}
	{
		struct counter c;
		struct pcache *pc = make(&c, cost(2));

		fill(page, 1, 0);
		pcache_insert(pc, 1, page);
		EXPECT_INT("reserve SIZE_MAX", "reserve", PCACHE_ENOMEM, pcache_reserve(pc, SIZE_MAX));
		EXPECT_INT("reserve SIZE_MAX", "bytes reserved", 0, pcache_bytes_reserved(pc));
		check_page("reserve SIZE_MAX", pcache_lookup(pc, 1), 1, 0);
		check_accounting("reserve SIZE_MAX", pc, &c);
		pcache_destroy(pc);
		EXPECT_INT("reserve SIZE_MAX", "bytes leaked", 0, c.live_bytes);
	}
}

/* Clear drops the pages, nothing else: counters, budget, policy and
 * reservation stay. */
static void test_clear(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(4));
	struct pcache_stats st0, st;
	uint8_t page[PAGE];
	size_t before, nallocs;

	(void)state;
	EXPECT_INT("clear", "reserve", 0, pcache_reserve(pc, cost(4)));
	pcache_set_policy(pc, PCACHE_LRU_AGED);
	for (uint64_t p = 1; p <= 5; p++) { /* 5 is rejected: all are young */
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	pcache_insert(pc, 2, page); /* update */
	pcache_lookup(pc, 3);
	pcache_lookup(pc, 9);
	pcache_stats(pc, &st0);
	before = held(&c);
	pcache_clear(pc);
	pcache_stats(pc, &st);
	EXPECT_INT("clear", "pages", 0, st.pages);
	EXPECT_INT("clear", "bytes used: the bucket array", cost(4) - 4 * ESIZE, st.bytes_used);
	EXPECT_INT("clear", "hits", st0.hits, st.hits);
	EXPECT_INT("clear", "misses", st0.misses, st.misses);
	EXPECT_INT("clear", "inserts", st0.inserts, st.inserts);
	EXPECT_INT("clear", "updates", st0.updates, st.updates);
	EXPECT_INT("clear", "evictions", st0.evictions, st.evictions);
	EXPECT_INT("clear", "rejected", st0.rejected, st.rejected);
	EXPECT_INT("clear", "capacity", st0.capacity, st.capacity);
	EXPECT_INT("clear", "budget", st0.budget, st.budget);
	EXPECT_INT("clear", "reserved", st0.reserved, st.reserved);
	EXPECT_INT("clear", "bytes held (entries kept for reuse)", before, held(&c));
	for (uint64_t p = 1; p <= 4; p++)
		EXPECT_INT("clear", "page gone", 0, pcache_lookup(pc, p) != NULL);
	/* The reservation serves the refill; the policy still rejects. */
	c.refuse = true;
	nallocs = c.nallocs;
	for (uint64_t p = 11; p <= 14; p++) {
		fill(page, p, 0);
		EXPECT_INT("refill after clear", "insert", 0, pcache_insert(pc, p, page));
	}
	fill(page, 15, 0);
	pcache_insert(pc, 15, page);
	check_order("refill after clear", pc, (uint64_t[]){14, 13, 12, 11}, 4);
	pcache_stats(pc, &st);
	EXPECT_INT("refill after clear", "rejected", st0.rejected + 1, st.rejected);
	EXPECT_INT("refill after clear", "allocator calls", 0, c.nallocs - nallocs);
	pcache_destroy(pc);
	EXPECT_INT("clear", "bytes leaked", 0, c.live_bytes);

	/* Without a reservation the entries go back to the allocator. */
	pc = make(&c, cost(4));
	for (uint64_t p = 1; p <= 3; p++) {
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	pcache_clear(pc);
	EXPECT_INT("clear unreserved", "pages", 0, pcache_count(pc));
	EXPECT_INT("clear unreserved", "bytes held: the bucket array", cost(4) - 4 * ESIZE, held(&c));
	check_accounting("clear unreserved", pc, &c);
	fill(page, 2, 0);
	EXPECT_INT("clear unreserved", "insert", 0, pcache_insert(pc, 2, page));
	check_order("clear unreserved", pc, (uint64_t[]){2}, 1);
	pcache_destroy(pc);
	EXPECT_INT("clear unreserved", "bytes leaked", 0, c.live_bytes);
}

/* Above the reservation the cache allocates entries and a bucket array of
 * its own; those go back to the allocator as pages leave or the cache
 * shrinks, slab entries to the reservation, and destroy frees each kind
 * the right way. */
static void test_reserve_mixed(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(4));
	size_t reserved;
	uint8_t page[PAGE];

	(void)state;
	EXPECT_INT("mixed", "reserve", 0, pcache_reserve(pc, cost(4)));
	reserved = pcache_bytes_reserved(pc);
	for (uint64_t p = 0; p < 4; p++) { /* 0..3 from the slab */
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	EXPECT_INT("above", "resize", 0, pcache_resize(pc, cost(12)));
	EXPECT_INT("above", "bytes held", reserved + 16 * sizeof(void *), held(&c));
	for (uint64_t p = 4; p < 12; p++) { /* 4..11 of their own */
		fill(page, p, 0);
		EXPECT_INT("above", "insert", 0, pcache_insert(pc, p, page));
	}
	EXPECT_INT("above", "bytes held", reserved + 16 * sizeof(void *) + 8 * ESIZE, held(&c));
	check_accounting("above", pc, &c);
	pcache_lookup(pc, 1);
	pcache_lookup(pc, 6);
	EXPECT_INT("remove 9", "was cached", 1, pcache_remove(pc, 9));
	EXPECT_INT("remove 9", "bytes held", reserved + 16 * sizeof(void *) + 7 * ESIZE, held(&c));
	EXPECT_INT("remove 2", "was cached", 1, pcache_remove(pc, 2));
	EXPECT_INT("remove 2", "bytes held", reserved + 16 * sizeof(void *) + 7 * ESIZE, held(&c));
	/* Back within: 6 1 11 10 stay, of which 6 11 10 are not from the slab. */
	EXPECT_INT("back to 4", "resize", 0, pcache_resize(pc, cost(4)));
	check_order("back to 4", pc, (uint64_t[]){6, 1, 11, 10}, 4);
	EXPECT_INT("back to 4", "bytes held", reserved + 3 * ESIZE, held(&c));
	check_accounting("back to 4", pc, &c);
	/* Within the reservation again: freeing one of its own, then a
	 * refill from the slab, with the allocator refusing. */
	c.refuse = true;
	EXPECT_INT("remove 11", "was cached", 1, pcache_remove(pc, 11));
	EXPECT_INT("remove 11", "bytes held", reserved + 2 * ESIZE, held(&c));
	fill(page, 20, 0);
	EXPECT_INT("insert 20", "insert", 0, pcache_insert(pc, 20, page));
	check_order("insert 20", pc, (uint64_t[]){20, 6, 1, 10}, 4);
	check_page("insert 20", pcache_lookup(pc, 20), 20, 0);
	check_page("insert 20", pcache_lookup(pc, 10), 10, 0);
	pcache_destroy(pc);
	EXPECT_INT("mixed", "bytes leaked", 0, c.live_bytes);
	EXPECT_INT("mixed", "blocks leaked", 0, c.live_blocks);

	/* Destroy while above the reservation, with its own bucket array. */
	pc = make(&c, cost(4));
	pcache_reserve(pc, cost(4));
	pcache_resize(pc, cost(12));
	for (uint64_t p = 0; p < 12; p++) {
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	EXPECT_INT("mixed above", "pages", 12, pcache_count(pc));
	pcache_destroy(pc);
	EXPECT_INT("mixed above", "bytes leaked", 0, c.live_bytes);
	EXPECT_INT("mixed above", "blocks leaked", 0, c.live_blocks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserve_bytes),
		cmocka_unit_test(test_reserve_no_alloc),
		cmocka_unit_test(test_reserve_resize),
		cmocka_unit_test(test_reserve_grow),
		cmocka_unit_test(test_reserve_failure),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_reserve_mixed),
	};

	return cmocka_run_group_tests_name("pcache reserve", tests, NULL, NULL);
}
