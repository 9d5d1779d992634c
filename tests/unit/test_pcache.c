/* test_pcache.c: the page cache's LRU order, exact budget, resize in use,
 * counters, budget 0, allocation failure at every allocation, reservation
 * (no allocation after it, growing it, its failure, clear, destroy of
 * mixed entries), and long random runs against a reference LRU model. A
 * counting allocator checks that pcache_bytes_used() equals the bytes
 * actually held, and with a reservation how they relate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pcache.h"

#define PAGE 4096
#define ESIZE (PCACHE_ENTRY_OVERHEAD - sizeof(void *) + PAGE) /* entry block */

#define EXPECT_INT(name, what, want, got)                                     \
	do {                                                                  \
		long long w_ = (long long)(want), g_ = (long long)(got);      \
		if (w_ != g_)                                                 \
			fail_msg("%s: %s: expected %lld, got %lld", (name),   \
				 (what), w_, g_);                             \
	} while (0)

/* Counting allocator: live bytes and blocks; fails allocation number
 * fail_at (1-based) when fail_at != 0, and every allocation while refuse
 * is set. */
struct counter {
	size_t live_bytes, live_blocks, nallocs, fail_at;
	size_t handle_size; /* first allocation: the handle */
	bool refuse;
};

static void *count_alloc(size_t size, void *ctx)
{
	struct counter *c = ctx;
	void *p;

	c->nallocs++;
	if (c->refuse || (c->fail_at && c->nallocs == c->fail_at))
		return NULL;
	p = malloc(size);
	if (p) {
		c->live_bytes += size;
		c->live_blocks++;
		if (!c->handle_size)
			c->handle_size = size;
	}
	return p;
}

static void count_free(void *p, size_t size, void *ctx)
{
	struct counter *c = ctx;

	c->live_bytes -= size;
	c->live_blocks--;
	free(p);
}

static struct pcache *make(struct counter *c, size_t budget)
{
	struct pcache_allocator a = {count_alloc, count_free, c};

	memset(c, 0, sizeof(*c));
	return pcache_create_with(budget, PAGE, &a);
}

/* Page contents derived from pfn and a version, to check copies. */
static void fill(uint8_t *p, uint64_t pfn, unsigned ver)
{
	for (size_t i = 0; i < PAGE; i += 8) {
		uint64_t v = pfn * 0x100000001b3ull + i + ((uint64_t)ver << 48);

		memcpy(p + i, &v, 8);
	}
}

static void check_page(const char *name, const uint8_t *got, uint64_t pfn, unsigned ver)
{
	uint8_t want[PAGE];

	fill(want, pfn, ver);
	if (!got || memcmp(got, want, PAGE))
		fail_msg("%s: page %llu version %u: %s", name, (unsigned long long)pfn,
			 ver, got ? "wrong contents" : "not cached");
}

static void check_order(const char *name, struct pcache *pc, const uint64_t *want,
			size_t n)
{
	EXPECT_INT(name, "pages cached", n, pcache_count(pc));
	for (size_t i = 0; i < n; i++) {
		uint64_t pfn = ~0ull;

		EXPECT_INT(name, "nth_recent", 0, pcache_nth_recent(pc, i, &pfn));
		if (pfn != want[i])
			fail_msg("%s: LRU position %zu: expected page %llu, got %llu", name,
				 i, (unsigned long long)want[i], (unsigned long long)pfn);
	}
}

/* Bytes the cache holds for its contents (all but the handle). */
static size_t held(const struct counter *c)
{
	return c->live_bytes - c->handle_size;
}

/* Without a reservation the bytes held are exactly the bytes used. With
 * one, they are the reservation plus some of the bytes used (entries from
 * outside it, a bucket array larger than it): see pcache.h. */
static void check_accounting(const char *name, struct pcache *pc, struct counter *c)
{
	struct pcache_stats st;

	pcache_stats(pc, &st);
	if (!pcache_bytes_reserved(pc)) {
		EXPECT_INT(name, "bytes_used == bytes held", held(c), pcache_bytes_used(pc));
	} else if (held(c) < st.reserved || held(c) > st.reserved + st.bytes_used) {
		fail_msg("%s: %zu bytes held, not within reserved %llu + used %llu", name,
			 held(c), (unsigned long long)st.reserved, (unsigned long long)st.bytes_used);
	}
	EXPECT_INT(name, "stats bytes_used", pcache_bytes_used(pc), st.bytes_used);
	EXPECT_INT(name, "stats reserved", pcache_bytes_reserved(pc), st.reserved);
	if (st.bytes_used > st.budget)
		fail_msg("%s: %llu bytes used over a budget of %llu", name,
			 (unsigned long long)st.bytes_used, (unsigned long long)st.budget);
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* Bytes n full pages take: entries plus a power-of-two bucket array. */
static size_t cost(size_t n)
{
	return n ? pow2_at_least(n) * sizeof(void *) + n * ESIZE : 0;
}

static void test_lru_order(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(4));
	uint8_t page[PAGE];

	(void)state;
	for (uint64_t p = 1; p <= 4; p++) {
		fill(page, p, 0);
		EXPECT_INT("fill 4", "insert", 0, pcache_insert(pc, p, page));
	}
	check_order("after inserts 1..4", pc, (uint64_t[]){4, 3, 2, 1}, 4);
	check_page("lookup 2", pcache_lookup(pc, 2), 2, 0);
	check_order("after lookup 2", pc, (uint64_t[]){2, 4, 3, 1}, 4);
	EXPECT_INT("lookup 9", "miss", 0, pcache_lookup(pc, 9) != NULL);
	check_order("miss changes nothing", pc, (uint64_t[]){2, 4, 3, 1}, 4);
	fill(page, 5, 0);
	pcache_insert(pc, 5, page); /* evicts 1, the least recent */
	check_order("insert 5 evicts 1", pc, (uint64_t[]){5, 2, 4, 3}, 4);
	EXPECT_INT("lookup 1", "evicted", 0, pcache_lookup(pc, 1) != NULL);
	fill(page, 3, 1);
	pcache_insert(pc, 3, page); /* update: no eviction, becomes MRU */
	check_order("update 3", pc, (uint64_t[]){3, 5, 2, 4}, 4);
	check_page("updated 3", pcache_lookup(pc, 3), 3, 1);
	EXPECT_INT("remove 2", "was cached", 1, pcache_remove(pc, 2));
	EXPECT_INT("remove 2 again", "not cached", 0, pcache_remove(pc, 2));
	check_order("remove 2", pc, (uint64_t[]){3, 5, 4}, 3);
	check_accounting("lru order", pc, &c);
	pcache_destroy(pc);
	EXPECT_INT("destroy", "bytes leaked", 0, c.live_bytes);
}

static void test_counters(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(2));
	struct pcache_stats st;
	uint8_t page[PAGE];

	(void)state;
	fill(page, 0, 0);
	pcache_lookup(pc, 1);      /* miss */
	pcache_insert(pc, 1, page); /* insert */
	pcache_lookup(pc, 1);      /* hit */
	pcache_insert(pc, 2, page); /* insert */
	pcache_insert(pc, 1, page); /* update */
	pcache_insert(pc, 3, page); /* insert, evicts 2 */
	pcache_lookup(pc, 2);      /* miss */
	pcache_lookup(pc, 3);      /* hit */
	pcache_remove(pc, 3);      /* not an eviction */
	pcache_stats(pc, &st);
	EXPECT_INT("counters", "hits", 2, st.hits);
	EXPECT_INT("counters", "misses", 2, st.misses);
	EXPECT_INT("counters", "inserts", 3, st.inserts);
	EXPECT_INT("counters", "updates", 1, st.updates);
	EXPECT_INT("counters", "evictions", 1, st.evictions);
	EXPECT_INT("counters", "pages", 1, st.pages);
	EXPECT_INT("counters", "capacity", 2, st.capacity);
	EXPECT_INT("counters", "budget", cost(2), st.budget);
	pcache_resize(pc, 0); /* evicts the one left */
	pcache_stats(pc, &st);
	EXPECT_INT("counters after resize 0", "evictions", 2, st.evictions);
	pcache_destroy(pc);
}

/* For budgets around each size boundary: capacity is the largest n whose
 * cost fits, and filling never goes over. */
static void test_budget_exact(void **state)
{
	static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100, 1000};
	uint8_t page[PAGE];

	(void)state;
	fill(page, 0, 0);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (long delta = -9; delta <= 9; delta++) {
			size_t budget = cost(sizes[s]) + (size_t)delta;
			struct counter c;
			struct pcache *pc;
			struct pcache_stats st;
			size_t want = 0;
			char name[64];

			if ((long)cost(sizes[s]) + delta < 0)
				continue;
			snprintf(name, sizeof(name), "budget %zu", budget);
			while (cost(want + 1) <= budget)
				want++;
			pc = make(&c, budget);
			pcache_stats(pc, &st);
			EXPECT_INT(name, "capacity", want, st.capacity);
			for (uint64_t p = 0; p < want + 3; p++)
				EXPECT_INT(name, "insert", 0, pcache_insert(pc, p, page));
			EXPECT_INT(name, "pages after overfilling", want, pcache_count(pc));
			EXPECT_INT(name, "bytes used when full", cost(want), pcache_bytes_used(pc));
			check_accounting(name, pc, &c);
			pcache_destroy(pc);
			EXPECT_INT(name, "bytes leaked", 0, c.live_bytes);
		}
	}
}

static void test_budget_zero(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, 0);
	struct pcache_stats st;
	uint8_t page[PAGE];

	(void)state;
	fill(page, 7, 0);
	EXPECT_INT("budget 0", "create", 1, pc != NULL);
	EXPECT_INT("budget 0", "insert", 0, pcache_insert(pc, 7, page));
	EXPECT_INT("budget 0", "lookup", 0, pcache_lookup(pc, 7) != NULL);
	EXPECT_INT("budget 0", "bytes used", 0, pcache_bytes_used(pc));
	EXPECT_INT("budget 0", "blocks held besides the handle", 1, c.live_blocks);
	pcache_stats(pc, &st);
	EXPECT_INT("budget 0", "inserts", 0, st.inserts);
	EXPECT_INT("budget 0", "misses", 1, st.misses);
	/* Enabling later works. */
	EXPECT_INT("budget 0 -> 1 page", "resize", 0, pcache_resize(pc, cost(1)));
	pcache_insert(pc, 7, page);
	check_page("budget 0 -> 1 page", pcache_lookup(pc, 7), 7, 0);
	pcache_destroy(pc);
	EXPECT_INT("budget 0", "bytes leaked", 0, c.live_bytes);
	EXPECT_INT("page size 0", "create", 1, pcache_create(4096, 0) == NULL);
}

/* Budgets the allocator cannot meet: create fails, resize fails and
 * leaves the cache as it was. */
static void test_budget_huge(void **state)
{
	struct counter c;
	struct pcache *pc;
	struct pcache_stats st;
	uint8_t page[PAGE];

	(void)state;
	EXPECT_INT("SIZE_MAX budget", "create", 1, pcache_create(SIZE_MAX, PAGE) == NULL);
	pc = make(&c, cost(2));
	fill(page, 1, 0);
	pcache_insert(pc, 1, page);
	EXPECT_INT("resize to SIZE_MAX", "result", PCACHE_ENOMEM,
		   pcache_resize(pc, SIZE_MAX));
	pcache_stats(pc, &st);
	EXPECT_INT("resize to SIZE_MAX", "budget kept", cost(2), st.budget);
	check_page("resize to SIZE_MAX", pcache_lookup(pc, 1), 1, 0);
	check_accounting("resize to SIZE_MAX", pc, &c);
	pcache_destroy(pc);
	EXPECT_INT("huge", "bytes leaked", 0, c.live_bytes);
}

static void test_resize_in_use(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(8));
	uint8_t page[PAGE];

	(void)state;
	for (uint64_t p = 0; p < 8; p++) {
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	pcache_lookup(pc, 0); /* order now 0 7 6 5 4 3 2 1 */
	/* Grow to 100 pages (new bucket array): all 8 kept, order kept. */
	EXPECT_INT("grow", "resize", 0, pcache_resize(pc, cost(100)));
	check_order("grow", pc, (uint64_t[]){0, 7, 6, 5, 4, 3, 2, 1}, 8);
	for (uint64_t p = 0; p < 8; p++)
		check_page("grow keeps", pcache_lookup(pc, p), p, 0);
	/* lookups made order 7 6 .. 0 */
	check_accounting("grow", pc, &c);
	/* Shrink to 3: the three most recent stay. */
	EXPECT_INT("shrink", "resize", 0, pcache_resize(pc, cost(3)));
	check_order("shrink to 3", pc, (uint64_t[]){7, 6, 5}, 3);
	check_page("shrink keeps 5", pcache_lookup(pc, 5), 5, 0);
	check_accounting("shrink", pc, &c);
	/* Same bucket count, smaller budget: one page. */
	EXPECT_INT("shrink 1", "resize", 0, pcache_resize(pc, cost(1)));
	check_order("shrink to 1", pc, (uint64_t[]){5}, 1);
	/* Grow again and refill past the old size. */
	EXPECT_INT("grow 2", "resize", 0, pcache_resize(pc, cost(20)));
	for (uint64_t p = 100; p < 130; p++) {
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	EXPECT_INT("refill", "pages", 20, pcache_count(pc));
	check_page("refill newest", pcache_lookup(pc, 129), 129, 0);
	EXPECT_INT("refill", "oldest gone", 0, pcache_lookup(pc, 109) != NULL);
	check_page("refill oldest kept", pcache_lookup(pc, 110), 110, 0);
	check_accounting("refill", pc, &c);
	pcache_destroy(pc);
	EXPECT_INT("resize", "bytes leaked", 0, c.live_bytes);
}

/* Fail each allocation in turn during a scripted sequence: every failure
 * is reported, leaves the cache as it was, and nothing leaks. */
static void test_alloc_failure(void **state)
{
	uint8_t page[PAGE];

	(void)state;
	for (size_t fail_at = 1; fail_at <= 12; fail_at++) {
		struct counter c;
		struct pcache_allocator a = {count_alloc, count_free, &c};
		struct pcache *pc;
		char name[64];
		int failures = 0;

		snprintf(name, sizeof(name), "fail allocation %zu", fail_at);
		memset(&c, 0, sizeof(c));
		c.fail_at = fail_at;
		pc = pcache_create_with(cost(4), PAGE, &a);
		if (!pc) {
			EXPECT_INT(name, "create failed only when asked", 1, fail_at <= 2);
			EXPECT_INT(name, "bytes leaked by failed create", 0, c.live_bytes);
			continue;
		}
		for (uint64_t p = 0; p < 6; p++) {
			size_t before = pcache_count(pc);
			int r;

			fill(page, p, 0);
			r = pcache_insert(pc, p, page);
			if (r == PCACHE_ENOMEM) {
				failures++;
				EXPECT_INT(name, "count unchanged on failure", before,
					   pcache_count(pc));
				EXPECT_INT(name, "not cached after failure", 0,
					   pcache_lookup(pc, p) != NULL);
			} else {
				EXPECT_INT(name, "insert", 0, r);
			}
			check_accounting(name, pc, &c);
		}
		if (pcache_count(pc) >= 2) {
			uint64_t mru, lru;
			size_t n = pcache_count(pc);
			int r;

			pcache_nth_recent(pc, 0, &mru);
			pcache_nth_recent(pc, n - 1, &lru);
			r = pcache_resize(pc, cost(64));
			if (r == PCACHE_ENOMEM) {
				struct pcache_stats st;

				failures++;
				pcache_stats(pc, &st);
				EXPECT_INT(name, "budget unchanged on failed resize", cost(4),
					   st.budget);
				EXPECT_INT(name, "pages unchanged on failed resize", n,
					   pcache_count(pc));
			}
			check_page(name, pcache_lookup(pc, lru), lru, 0);
			check_accounting(name, pc, &c);
		}
		pcache_destroy(pc);
		EXPECT_INT(name, "bytes leaked", 0, c.live_bytes);
		EXPECT_INT(name, "the failure was seen", 1,
			   failures > 0 || c.nallocs < fail_at);
	}
}

/* PCACHE_LRU_AGED: the LRU page is evicted only after two idle rounds. */
static void test_policy_aged(void **state)
{
	struct counter c;
	struct pcache *pc = make(&c, cost(3));
	struct pcache_stats st;
	uint8_t page[PAGE];

	(void)state;
	EXPECT_INT("aged", "bad policy", PCACHE_EINVAL,
		   pcache_set_policy(pc, (enum pcache_policy)7));
	EXPECT_INT("aged", "set policy", 0, pcache_set_policy(pc, PCACHE_LRU_AGED));
	pcache_next_round(pc); /* round 1 */
	for (uint64_t p = 1; p <= 3; p++) {
		fill(page, p, 0);
		pcache_insert(pc, p, page);
	}
	fill(page, 4, 0);
	EXPECT_INT("aged round 1", "insert 4", 0, pcache_insert(pc, 4, page));
	check_order("aged round 1: 4 rejected", pc, (uint64_t[]){3, 2, 1}, 3);
	pcache_next_round(pc); /* round 2: page 1 idle for 1 round */
	pcache_insert(pc, 4, page);
	check_order("aged round 2: 4 rejected", pc, (uint64_t[]){3, 2, 1}, 3);
	check_page("aged round 2: hit 2", pcache_lookup(pc, 2), 2, 0);
	pcache_next_round(pc); /* round 3: 1 and 3 idle for 2 rounds, 2 for 1 */
	pcache_insert(pc, 4, page);
	check_order("aged round 3: 4 evicts 1", pc, (uint64_t[]){4, 2, 3}, 3);
	fill(page, 5, 0);
	pcache_insert(pc, 5, page);
	check_order("aged round 3: 5 evicts 3", pc, (uint64_t[]){5, 4, 2}, 3);
	fill(page, 6, 0);
	pcache_insert(pc, 6, page); /* 2 used in round 2: too young */
	check_order("aged round 3: 6 rejected", pc, (uint64_t[]){5, 4, 2}, 3);
	/* Updates of cached pages are never rejected. */
	fill(page, 2, 1);
	pcache_insert(pc, 2, page);
	check_page("aged update", pcache_lookup(pc, 2), 2, 1);
	pcache_stats(pc, &st);
	EXPECT_INT("aged", "rejected", 3, st.rejected);
	EXPECT_INT("aged", "evictions", 2, st.evictions);
	EXPECT_INT("aged", "round", 3, st.round);
	EXPECT_INT("aged", "updates", 1, st.updates);
	/* Back to plain LRU: the next miss evicts at once. */
	pcache_set_policy(pc, PCACHE_LRU);
	fill(page, 6, 0);
	pcache_insert(pc, 6, page);
	check_order("plain LRU again", pc, (uint64_t[]){6, 2, 5}, 3);
	check_accounting("aged", pc, &c);
	pcache_destroy(pc);
	EXPECT_INT("aged", "bytes leaked", 0, c.live_bytes);
}

/* Random operations against a reference LRU (an array, most recent
 * first), with resizes and clears. With reserve pages reserved, the
 * allocator refuses everything while the capacity is within the
 * reservation: no operation may then fail. */
static void run_random(const char *name, size_t reserve)
{
	enum { MAXCAP = 64, OPS = 200000 };
	uint64_t model[MAXCAP];
	size_t n = 0, cap = 16;
	struct counter c;
	struct pcache *pc = make(&c, cost(cap));
	uint64_t x = 12345;
	uint8_t page[PAGE];

	memset(page, 0x11, PAGE);
	if (reserve)
		EXPECT_INT(name, "reserve", 0, pcache_reserve(pc, cost(reserve)));
	for (int op = 0; op < OPS; op++) {
		uint64_t pfn, r;
		size_t i;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		pfn = (x >> 8) % 96;
		r = x % 100;
		c.refuse = cap <= reserve;
		for (i = 0; i < n && model[i] != pfn; i++)
			;
		if (r < 45) { /* lookup */
			bool hit = pcache_lookup(pc, pfn) != NULL;

			if (hit != (i < n))
				fail_msg("%s: op %d lookup %llu: expected %s", name, op,
					 (unsigned long long)pfn, i < n ? "hit" : "miss");
			if (i < n) {
				memmove(model + 1, model, i * sizeof(*model));
				model[0] = pfn;
			}
		} else if (r < 93) { /* insert */
			EXPECT_INT(name, "insert", 0, pcache_insert(pc, pfn, page));
			if (cap == 0)
				continue;
			if (i == n && n == cap)
				n--; /* the least recent is evicted */
			if (i >= n)
				i = n++; /* new entry: shift everything */
			memmove(model + 1, model, i * sizeof(*model));
			model[0] = pfn;
		} else if (r < 97) { /* remove */
			EXPECT_INT(name, "remove", i < n, pcache_remove(pc, pfn));
			if (i < n) {
				memmove(model + i, model + i + 1, (n - i - 1) * sizeof(*model));
				n--;
			}
		} else if (r < 99 || (x >> 40) % 4) { /* resize */
			cap = (x >> 20) % (MAXCAP + 1);
			c.refuse = cap <= reserve;
			EXPECT_INT(name, "resize", 0, pcache_resize(pc, cost(cap)));
			if (n > cap)
				n = cap;
		} else { /* clear, one op in 400 */
			pcache_clear(pc);
			n = 0;
		}
		if (op % 97 == 0 || op == OPS - 1) {
			char what[64];

			snprintf(what, sizeof(what), "%s op %d", name, op);
			check_order(what, pc, model, n);
			check_accounting(what, pc, &c);
		}
	}
	pcache_destroy(pc);
	EXPECT_INT(name, "bytes leaked", 0, c.live_bytes);
	EXPECT_INT(name, "blocks leaked", 0, c.live_blocks);
}

static void test_random_vs_model(void **state)
{
	(void)state;
	run_random("random", 0);
}

/* Resizes cross the reservation both ways, so entries from slabs and of
 * their own mix in the cache. */
static void test_random_reserved(void **state)
{
	(void)state;
	run_random("random reserved 32", 32);
}

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
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_budget_exact),
		cmocka_unit_test(test_budget_zero),
		cmocka_unit_test(test_budget_huge),
		cmocka_unit_test(test_resize_in_use),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_policy_aged),
		cmocka_unit_test(test_random_vs_model),
		cmocka_unit_test(test_reserve_bytes),
		cmocka_unit_test(test_reserve_no_alloc),
		cmocka_unit_test(test_reserve_resize),
		cmocka_unit_test(test_reserve_grow),
		cmocka_unit_test(test_reserve_failure),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_reserve_mixed),
		cmocka_unit_test(test_random_reserved),
	};

	return cmocka_run_group_tests_name("pcache", tests, NULL, NULL);
}
