/* pcache_testlib.h: what test_pcache.c and test_pcache_reserve.c share: a
 * counting allocator (it can refuse), page patterns, and checks of the
 * LRU order and of the byte accounting. */
#ifndef FERRY_PCACHE_TESTLIB_H
#define FERRY_PCACHE_TESTLIB_H

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

static inline void *count_alloc(size_t size, void *ctx)
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

static inline void count_free(void *p, size_t size, void *ctx)
{
	struct counter *c = ctx;

	c->live_bytes -= size;
	c->live_blocks--;
	free(p);
}

static inline struct pcache *make(struct counter *c, size_t budget)
{
	struct pcache_allocator a = {count_alloc, count_free, c};

	memset(c, 0, sizeof(*c));
	return pcache_create_with(budget, PAGE, &a);
}

/* Page contents derived from pfn and a version, to check copies. */
static inline void fill(uint8_t *p, uint64_t pfn, unsigned ver)
{
	for (size_t i = 0; i < PAGE; i += 8) {
		uint64_t v = pfn * 0x100000001b3ull + i + ((uint64_t)ver << 48);

		memcpy(p + i, &v, 8);
	}
}

static inline void check_page(const char *name, const uint8_t *got, uint64_t pfn, unsigned ver)
{
	uint8_t want[PAGE];

	fill(want, pfn, ver);
	if (!got || memcmp(got, want, PAGE))
		fail_msg("%s: page %llu version %u: %s", name, (unsigned long long)pfn,
			 ver, got ? "wrong contents" : "not cached");
}

static inline void check_order(const char *name, struct pcache *pc, const uint64_t *want,
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
static inline size_t held(const struct counter *c)
{
	return c->live_bytes - c->handle_size;
}

/* Without a reservation the bytes held are exactly the bytes used. With
 * one, they are the reservation plus some of the bytes used (entries from
 * outside it, a bucket array larger than it): see pcache.h. */
static inline void check_accounting(const char *name, struct pcache *pc, struct counter *c)
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

static inline size_t pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* Bytes n full pages take: entries plus a power-of-two bucket array. */
static inline size_t cost(size_t n)
{
	return n ? pow2_at_least(n) * sizeof(void *) + n * ESIZE : 0;
}

#endif
