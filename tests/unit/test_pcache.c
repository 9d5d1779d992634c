/* test_pcache.c: the page cache's LRU order, exact budget, resize in use,
 * counters, budget 0, allocation failure at every allocation, and long
 * random runs against a reference LRU model, also across a reservation
 * (the reservation's own cases: test_pcache_reserve.c). A counting
 * allocator (pcache_testlib.h) checks that pcache_bytes_used() equals the
 * bytes actually held, and with a reservation how they relate. */
#include "pcache_testlib.h"

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
		cmocka_unit_test(test_random_reserved),
	};

	return cmocka_run_group_tests_name("pcache", tests, NULL, NULL);
}
