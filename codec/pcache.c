/* pcache.c: page cache with exact byte budget and true LRU; see
 * include/pcache.h.
 *
 * Layout: one allocation per cached page (header + page), found through a
 * chained hash table of 2^k buckets (k chosen so buckets >= capacity, load
 * factor <= 1) and kept on a circular doubly-linked LRU list whose head is
 * the most recent page. A full cache recycles its least recently used
 * entry for the incoming page, so steady-state inserts never allocate and
 * cannot fail.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pcache.h"

struct pcache_link {
	struct pcache_link *prev, *next;
};

struct pcache_entry {
	struct pcache_link lru; /* first: a link pointer is an entry pointer */
	struct pcache_entry *hnext;
	uint64_t pfn;
	uint64_t used; /* round of the last hit or insert */
	uint8_t data[];
};

_Static_assert(sizeof(struct pcache_entry) + sizeof(struct pcache_entry *) ==
	       PCACHE_ENTRY_OVERHEAD, "PCACHE_ENTRY_OVERHEAD is out of date");
_Static_assert(offsetof(struct pcache_entry, lru) == 0, "lru must be first");

struct pcache {
	struct pcache_allocator a;
	size_t page_size;
	size_t budget;   /* bytes */
	size_t capacity; /* pages */
	size_t count;    /* pages cached */
	size_t nbuckets; /* 0 or a power of two >= capacity */
	unsigned shift;  /* 64 - log2(nbuckets) */
	struct pcache_entry **buckets;
	struct pcache_link lru; /* lru.next: most recent; lru.prev: least */
	enum pcache_policy policy;
	uint64_t round;
	uint64_t hits, misses, inserts, updates, evictions, rejected;
};

/* PCACHE_LRU_AGED: rounds a page must go unused before eviction. */
#define PCACHE_AGE_ROUNDS 2

static void *std_alloc(size_t size, void *ctx)
{
	(void)ctx;
	return malloc(size);
}

static void std_free(void *p, size_t size, void *ctx)
{
	(void)size;
	(void)ctx;
	free(p);
}

static size_t entry_size(const struct pcache *pc)
{
	return sizeof(struct pcache_entry) + pc->page_size;
}

/* Smallest power of two >= n, for n >= 1 (and small enough). */
static size_t pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static size_t buckets_for(size_t capacity)
{
	return capacity ? pow2_at_least(capacity) : 0;
}

/* Most pages a budget holds with their buckets: the largest n with
 * 8 * pow2_at_least(n) + n * esize <= budget. For each power of two B
 * (the bucket count) the most pages are min(B, (budget - 8B) / esize);
 * the best B wins. At most 64 steps, whatever the budget. */
static size_t capacity_for(size_t budget, size_t esize)
{
	size_t best = 0;

	for (size_t b = 1; b <= budget / sizeof(void *); b <<= 1) {
		size_t n = (budget - b * sizeof(void *)) / esize;

		if (n > b)
			n = b;
		if (n > best)
			best = n;
		if (b > SIZE_MAX / 2)
			break;
	}
	return best;
}

static unsigned shift_for(size_t nbuckets)
{
	unsigned bits = 0;

	while (((size_t)1 << bits) < nbuckets)
		bits++;
	return 64 - bits;
}

/* Fibonacci hashing: the top bits of pfn * 2^64/phi spread sequential page
 * numbers evenly. shift is 64 for one bucket, where the shift would be
 * undefined. */
static inline size_t bucket_of(const struct pcache *pc, uint64_t pfn)
{
	if (pc->shift >= 64)
		return 0;
	return (size_t)((pfn * 0x9e3779b97f4a7c15ull) >> pc->shift);
}

static inline void lru_unlink(struct pcache_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
}

static inline void lru_push_front(struct pcache *pc, struct pcache_link *l)
{
	l->prev = &pc->lru;
	l->next = pc->lru.next;
	pc->lru.next->prev = l;
	pc->lru.next = l;
}

static struct pcache_entry *find(const struct pcache *pc, uint64_t pfn)
{
	struct pcache_entry *e;

	if (!pc->nbuckets)
		return NULL;
	for (e = pc->buckets[bucket_of(pc, pfn)]; e; e = e->hnext)
		if (e->pfn == pfn)
			return e;
	return NULL;
}

static void hash_add(struct pcache *pc, struct pcache_entry *e)
{
	struct pcache_entry **b = &pc->buckets[bucket_of(pc, e->pfn)];

	e->hnext = *b;
	*b = e;
}

static void hash_del(struct pcache *pc, struct pcache_entry *e)
{
	struct pcache_entry **p = &pc->buckets[bucket_of(pc, e->pfn)];

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
}

/* Take the least recently used entry out of the list and the table
 * without freeing it. */
static struct pcache_entry *take_lru(struct pcache *pc)
{
	struct pcache_entry *e = (struct pcache_entry *)pc->lru.prev;

	lru_unlink(&e->lru);
	hash_del(pc, e);
	pc->count--;
	return e;
}

struct pcache *pcache_create_with(size_t budget_bytes, size_t page_size,
				  const struct pcache_allocator *a)
{
	struct pcache *pc;

	if (!page_size || !a || !a->alloc || !a->free ||
	    page_size > SIZE_MAX / 2 - sizeof(struct pcache_entry))
		return NULL;
	pc = a->alloc(sizeof(*pc), a->ctx);
	if (!pc)
		return NULL;
	memset(pc, 0, sizeof(*pc));
	pc->a = *a;
	pc->page_size = page_size;
	pc->lru.prev = pc->lru.next = &pc->lru;
	pc->shift = 64;
	if (pcache_resize(pc, budget_bytes) < 0) {
		a->free(pc, sizeof(*pc), a->ctx);
		return NULL;
	}
	return pc;
}

struct pcache *pcache_create(size_t budget_bytes, size_t page_size)
{
	static const struct pcache_allocator std = {std_alloc, std_free, NULL};

	return pcache_create_with(budget_bytes, page_size, &std);
}

void pcache_destroy(struct pcache *pc)
{
	if (!pc)
		return;
	while (pc->count)
		pc->a.free(take_lru(pc), entry_size(pc), pc->a.ctx);
	if (pc->buckets)
		pc->a.free(pc->buckets, pc->nbuckets * sizeof(*pc->buckets), pc->a.ctx);
	pc->a.free(pc, sizeof(*pc), pc->a.ctx);
}

const uint8_t *pcache_lookup(struct pcache *pc, uint64_t pfn)
{
	struct pcache_entry *e = find(pc, pfn);

	if (!e) {
		pc->misses++;
		return NULL;
	}
	pc->hits++;
	e->used = pc->round;
	lru_unlink(&e->lru);
	lru_push_front(pc, &e->lru);
	return e->data;
}

int pcache_insert(struct pcache *pc, uint64_t pfn, const uint8_t *page)
{
	struct pcache_entry *e = find(pc, pfn);

	if (e) {
		if (page != e->data)
			memcpy(e->data, page, pc->page_size);
		e->used = pc->round;
		lru_unlink(&e->lru);
		lru_push_front(pc, &e->lru);
		pc->updates++;
		return 0;
	}
	if (!pc->capacity)
		return 0;
	if (pc->count < pc->capacity) {
		e = pc->a.alloc(entry_size(pc), pc->a.ctx);
		if (!e)
			return PCACHE_ENOMEM;
	} else {
		const struct pcache_entry *lru = (const struct pcache_entry *)pc->lru.prev;

		if (pc->policy == PCACHE_LRU_AGED &&
		    pc->round - lru->used < PCACHE_AGE_ROUNDS) {
			pc->rejected++;
			return 0;
		}
		e = take_lru(pc);
		pc->evictions++;
	}
	e->pfn = pfn;
	e->used = pc->round;
	memcpy(e->data, page, pc->page_size);
	hash_add(pc, e);
	lru_push_front(pc, &e->lru);
	pc->count++;
	pc->inserts++;
	return 0;
}

int pcache_remove(struct pcache *pc, uint64_t pfn)
{
	struct pcache_entry *e = find(pc, pfn);

	if (!e)
		return 0;
	lru_unlink(&e->lru);
	hash_del(pc, e);
	pc->count--;
	pc->a.free(e, entry_size(pc), pc->a.ctx);
	return 1;
}

int pcache_resize(struct pcache *pc, size_t budget_bytes)
{
	size_t cap = capacity_for(budget_bytes, entry_size(pc));
	size_t nb = buckets_for(cap);
	struct pcache_entry **nbk = NULL;
	struct pcache_link *l;

	/* Allocate first, so that failure changes nothing. */
	if (nb != pc->nbuckets && nb) {
		nbk = pc->a.alloc(nb * sizeof(*nbk), pc->a.ctx);
		if (!nbk)
			return PCACHE_ENOMEM;
		memset(nbk, 0, nb * sizeof(*nbk));
	}
	while (pc->count > cap) {
		pc->a.free(take_lru(pc), entry_size(pc), pc->a.ctx);
		pc->evictions++;
	}
	if (nb != pc->nbuckets) {
		if (pc->buckets)
			pc->a.free(pc->buckets, pc->nbuckets * sizeof(*pc->buckets),
				   pc->a.ctx);
		pc->buckets = nbk;
		pc->nbuckets = nb;
		pc->shift = shift_for(nb);
		for (l = pc->lru.next; l != &pc->lru; l = l->next)
			hash_add(pc, (struct pcache_entry *)l);
	}
	pc->budget = budget_bytes;
	pc->capacity = cap;
	return 0;
}

int pcache_set_policy(struct pcache *pc, enum pcache_policy policy)
{
	if (policy != PCACHE_LRU && policy != PCACHE_LRU_AGED)
		return PCACHE_EINVAL;
	pc->policy = policy;
	return 0;
}

void pcache_next_round(struct pcache *pc)
{
	pc->round++;
}

size_t pcache_bytes_used(const struct pcache *pc)
{
	return pc->nbuckets * sizeof(*pc->buckets) + pc->count * entry_size(pc);
}

size_t pcache_count(const struct pcache *pc)
{
	return pc->count;
}

void pcache_stats(const struct pcache *pc, struct pcache_stats *st)
{
	st->hits = pc->hits;
	st->misses = pc->misses;
	st->inserts = pc->inserts;
	st->updates = pc->updates;
	st->evictions = pc->evictions;
	st->rejected = pc->rejected;
	st->round = pc->round;
	st->pages = pc->count;
	st->capacity = pc->capacity;
	st->budget = pc->budget;
	st->bytes_used = pcache_bytes_used(pc);
}

int pcache_nth_recent(const struct pcache *pc, size_t i, uint64_t *pfn)
{
	const struct pcache_link *l = pc->lru.next;

	if (i >= pc->count)
		return PCACHE_EINVAL;
	while (i--)
		l = l->next;
	*pfn = ((const struct pcache_entry *)l)->pfn;
	return 0;
}
