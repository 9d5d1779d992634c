/* pcache.c: page cache with exact byte budget and true LRU; see
 * include/pcache.h.
 *
 * Layout: each cached page is one entry (header + page), found through a
 * chained hash table of 2^k buckets (k chosen so buckets >= capacity, load
 * factor <= 1) and kept on a circular doubly-linked LRU list whose head is
 * the most recent page. A full cache recycles its least recently used
 * entry for the incoming page, so steady-state inserts never allocate and
 * cannot fail.
 *
 * Without a reservation, each entry is its own allocation, made by the
 * insert that needs it and freed when its page leaves. pcache_reserve()
 * allocates capacity_for(bytes) entries in one slab (a header, then the
 * entries back to back), marks them in_slab and puts them on a free list
 * linked through hnext; growing the reservation adds a slab for the extra
 * entries only. A slab entry whose page leaves goes back to the free list,
 * an entry of its own to the allocator, and slabs are freed only by
 * pcache_destroy(). Inserts take a free slab entry before allocating: every
 * slab entry is either cached or free, so while the capacity is within the
 * reservation an insert below capacity always finds one. The reservation
 * also holds a bucket array for its capacity, and a smaller table is a
 * prefix of it rehashed in place; only a table larger than that is
 * allocated (and freed when the cache shrinks back).
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
	struct pcache_entry *hnext; /* hash chain, or the free list */
	uint64_t pfn;
	uint64_t used : 63;   /* round of the last hit or insert (< 2^63) */
	uint64_t in_slab : 1; /* from a slab: returns to the free list */
	uint8_t data[];
};

_Static_assert(sizeof(struct pcache_entry) + sizeof(struct pcache_entry *) ==
	       PCACHE_ENTRY_OVERHEAD, "PCACHE_ENTRY_OVERHEAD is out of date");
_Static_assert(offsetof(struct pcache_entry, lru) == 0, "lru must be first");

/* A block of reserved entries; the entries follow the header. */
struct pcache_slab {
	struct pcache_slab *next;
	size_t size; /* bytes, header included */
};

_Static_assert(sizeof(struct pcache_slab) == PCACHE_SLAB_OVERHEAD,
	       "PCACHE_SLAB_OVERHEAD is out of date");
_Static_assert(sizeof(struct pcache_slab) % _Alignof(struct pcache_entry) == 0,
	       "entries in a slab must be aligned");

struct pcache {
	struct pcache_allocator a;
	size_t page_size;
	size_t budget;   /* bytes */
	size_t capacity; /* pages */
	size_t count;    /* pages cached */
	size_t nbuckets; /* 0 or a power of two >= capacity */
	unsigned shift;  /* 64 - log2(nbuckets) */
	struct pcache_entry **buckets; /* rbuckets if nbuckets <= nrbuckets */
	struct pcache_entry **rbuckets; /* the reservation's table, or NULL */
	size_t nrbuckets;
	struct pcache_slab *slabs;
	struct pcache_entry *free; /* slab entries not cached */
	size_t slab_entries;       /* in all slabs, cached or free */
	size_t reserved;           /* bytes: the slabs plus rbuckets */
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

static bool page_size_ok(size_t page_size)
{
	return page_size && page_size <= SIZE_MAX / 2 - sizeof(struct pcache_entry);
}

/* Rounded up so that entries packed in a slab stay aligned; allocated
 * one by one they take the same size, so a page costs the same either
 * way. */
static size_t esize_for(size_t page_size)
{
	const size_t align = _Alignof(struct pcache_entry);

	return (sizeof(struct pcache_entry) + page_size + align - 1) & ~(align - 1);
}

static size_t entry_size(const struct pcache *pc)
{
	return esize_for(pc->page_size);
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

/* An entry for a new page: a free slab entry, else a new allocation. */
static struct pcache_entry *get_entry(struct pcache *pc)
{
	struct pcache_entry *e = pc->free;

	if (e) {
		pc->free = e->hnext;
		return e;
	}
	e = pc->a.alloc(entry_size(pc), pc->a.ctx);
	if (e)
		e->in_slab = 0;
	return e;
}

/* Release an entry that is in neither the list nor the table. */
static void put_entry(struct pcache *pc, struct pcache_entry *e)
{
	if (e->in_slab) {
		e->hnext = pc->free;
		pc->free = e;
	} else {
		pc->a.free(e, entry_size(pc), pc->a.ctx);
	}
}

static void free_buckets(struct pcache *pc, struct pcache_entry **b, size_t n)
{
	if (b)
		pc->a.free(b, n * sizeof(*b), pc->a.ctx);
}

struct pcache *pcache_create_with(size_t budget_bytes, size_t page_size,
				  const struct pcache_allocator *a)
{
	struct pcache *pc;

	if (!page_size_ok(page_size) || !a || !a->alloc || !a->free)
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
	struct pcache_slab *slab;

	if (!pc)
		return;
	pcache_clear(pc); /* frees the entries that are not in a slab */
	while ((slab = pc->slabs)) {
		pc->slabs = slab->next;
		pc->a.free(slab, slab->size, pc->a.ctx);
	}
	if (pc->buckets != pc->rbuckets)
		free_buckets(pc, pc->buckets, pc->nbuckets);
	free_buckets(pc, pc->rbuckets, pc->nrbuckets);
	pc->a.free(pc, sizeof(*pc), pc->a.ctx);
}

void pcache_clear(struct pcache *pc)
{
	struct pcache_link *l = pc->lru.next;

	while (l != &pc->lru) {
		struct pcache_entry *e = (struct pcache_entry *)l;

		l = l->next;
		put_entry(pc, e);
	}
	pc->lru.prev = pc->lru.next = &pc->lru;
	if (pc->nbuckets)
		memset(pc->buckets, 0, pc->nbuckets * sizeof(*pc->buckets));
	pc->count = 0;
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
		e = get_entry(pc);
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
	put_entry(pc, e);
	return 1;
}

int pcache_resize(struct pcache *pc, size_t budget_bytes)
{
	size_t cap = capacity_for(budget_bytes, entry_size(pc));
	size_t nb = buckets_for(cap);
	struct pcache_entry **nbk = pc->rbuckets;
	struct pcache_link *l;

	/* Allocate first, so that failure changes nothing. A table that fits
	 * the reserved one is a prefix of it (NULL without a reservation, as
	 * wanted for no table at all). */
	if (nb != pc->nbuckets && nb > pc->nrbuckets) {
		nbk = pc->a.alloc(nb * sizeof(*nbk), pc->a.ctx);
		if (!nbk)
			return PCACHE_ENOMEM;
	}
	while (pc->count > cap) {
		put_entry(pc, take_lru(pc));
		pc->evictions++;
	}
	if (nb != pc->nbuckets) {
		/* Only now: nbk may be the table the evictions just used. */
		if (nb)
			memset(nbk, 0, nb * sizeof(*nbk));
		if (pc->buckets != pc->rbuckets)
			free_buckets(pc, pc->buckets, pc->nbuckets);
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

int pcache_reserve(struct pcache *pc, size_t bytes)
{
	size_t esize = entry_size(pc);
	size_t cap = capacity_for(bytes, esize);
	size_t nb = buckets_for(cap);
	struct pcache_entry **nbk = NULL;
	struct pcache_slab *slab;
	size_t n, size;

	if (cap <= pc->slab_entries)
		return 0; /* and nb <= nrbuckets: buckets_for grows with cap */
	n = cap - pc->slab_entries;
	/* n * esize <= bytes (capacity_for), so only the header can overflow. */
	if (n * esize > SIZE_MAX - sizeof(*slab))
		return PCACHE_ENOMEM;
	size = sizeof(*slab) + n * esize;
	slab = pc->a.alloc(size, pc->a.ctx);
	if (!slab)
		return PCACHE_ENOMEM;
	if (nb > pc->nrbuckets) {
		/* A table in use of just that size (pcache_create's, typically)
		 * becomes the reserved one; otherwise allocate it. */
		if (pc->nbuckets == nb)
			nbk = pc->buckets;
		else
			nbk = pc->a.alloc(nb * sizeof(*nbk), pc->a.ctx);
		if (!nbk) {
			pc->a.free(slab, size, pc->a.ctx);
			return PCACHE_ENOMEM;
		}
	}

	/* Nothing fails from here on. */
	if (nbk) {
		/* A smaller table in use moves in: same size, same hash, so its
		 * chains are copied as they are. A larger one stays. */
		if (pc->nbuckets < nb) {
			if (pc->nbuckets)
				memcpy(nbk, pc->buckets, pc->nbuckets * sizeof(*nbk));
			if (pc->buckets != pc->rbuckets)
				free_buckets(pc, pc->buckets, pc->nbuckets);
			pc->buckets = nbk;
		}
		free_buckets(pc, pc->rbuckets, pc->nrbuckets);
		pc->reserved += (nb - pc->nrbuckets) * sizeof(*nbk);
		pc->rbuckets = nbk;
		pc->nrbuckets = nb;
	}
	slab->size = size;
	slab->next = pc->slabs;
	pc->slabs = slab;
	/* Pushed last to first, so inserts take them in address order. */
	for (size_t i = n; i-- > 0;) {
		struct pcache_entry *e = (struct pcache_entry *)((uint8_t *)(slab + 1) + i * esize);

		e->in_slab = 1;
		e->hnext = pc->free;
		pc->free = e;
	}
	pc->slab_entries = cap;
	pc->reserved += size;
	return 0;
}

size_t pcache_reserve_bytes(size_t budget, size_t page_size)
{
	size_t esize, cap, full;

	if (!page_size_ok(page_size))
		return 0;
	esize = esize_for(page_size);
	cap = capacity_for(budget, esize);
	if (!cap)
		return 0;
	full = buckets_for(cap) * sizeof(struct pcache_entry *) + cap * esize; /* <= budget */
	if (full > SIZE_MAX - sizeof(struct pcache_slab))
		return SIZE_MAX;
	return full + sizeof(struct pcache_slab);
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

size_t pcache_bytes_reserved(const struct pcache *pc)
{
	return pc->reserved;
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
	st->reserved = pc->reserved;
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
