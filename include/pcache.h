/* pcache.h: the source side's page cache for XBZRLE: copies of the pages
 * the destination holds, keyed by guest page number, with a byte budget
 * and true least-recently-used replacement.
 *
 * Portable C (codec/pcache.c), built into the kernel and hosted for tests.
 * Not thread-safe: one owner (the migration engine) at a time.
 *
 * Budget accounting is exact: pcache_bytes_used() is the bytes the cache
 * needs for its contents: the hash bucket array in use (a pointer per
 * bucket) and, per cached page, one entry (PCACHE_ENTRY_OVERHEAD bytes of
 * header plus the page, rounded up to a multiple of 8). It never exceeds
 * the budget. Without a reservation it is also exactly the sum of the
 * blocks the cache holds from its allocator for its contents. The handle
 * itself (struct pcache, of fixed size, allocated by pcache_create) is
 * not counted, so a budget of 0 uses 0 bytes.
 *
 * Reservation: by default an entry is allocated when a page is first
 * inserted into a cache that is not full, and freed when the page leaves.
 * pcache_reserve(pc, bytes) instead takes up front all that a budget of
 * bytes needs: one slab (a block of PCACHE_SLAB_OVERHEAD bytes of header
 * plus that budget's capacity in entries) and a bucket array for that
 * capacity. While the budget is at most bytes, pcache_insert, pcache_remove,
 * pcache_clear and pcache_resize never call the allocator and so cannot
 * fail: entries come from the slabs and go back to them, and a smaller
 * bucket array is a part of the reserved one. Above it, the cache works
 * as without a reservation (once the slab entries are all in use), and
 * gives back what it allocated there as it shrinks or pages leave.
 *
 * pcache_bytes_reserved() is the size of the reserved blocks: every slab
 * and the reserved bucket array, held until pcache_destroy whatever the
 * budget and however much of them is in use. pcache_bytes_used() keeps its
 * meaning: it counts a cached page's entry the same wherever it lives, and
 * does not count free slab entries or reserved buckets beyond the array
 * in use. What the cache holds from its allocator for its contents is
 *	held = reserved + X * entry size + (the bucket array in use, if it
 *	       is larger than the reserved one)
 * where X counts the cached pages whose entries are not from a slab: pages
 * inserted when no slab entry was free (before pcache_reserve, or with the
 * budget above the reservation) that have not left since. So with the
 * budget within the reservation and X = 0, used <= reserved == held; with
 * no reservation, reserved == 0 and used == held.
 *
 * All operations are O(1) (expected: one hash bucket per cached page at
 * most); pcache_resize() is O(pages cached) when the bucket array changes,
 * pcache_clear() O(pages cached), pcache_reserve() O(pages it adds).
 */
#ifndef FERRY_PCACHE_H
#define FERRY_PCACHE_H

#include <stddef.h>
#include <stdint.h>

struct pcache;

enum pcache_err {
	PCACHE_ENOMEM = -1, /* the allocator failed; the cache is unchanged */
	PCACHE_EINVAL = -2, /* bad argument */
};

/* Replacement policy. Both keep pages in exact LRU order.
 * PCACHE_LRU: a miss insert into a full cache evicts the least recently
 *   used page. The default.
 * PCACHE_LRU_AGED: as PCACHE_LRU, but the least recently used page is
 *   evicted only if it went unused for two rounds (pcache_next_round);
 *   otherwise the new page is not cached (counted as rejected). Every page
 *   in the cache was then used in the last two rounds, so the cache keeps
 *   them rather than churning: a working set larger than the cache (a
 *   scan) then still hits on the part that fits, as QEMU's age rule does,
 *   where plain LRU hits on none of it. The caller must call
 *   pcache_next_round at every dirty-log sync, or a full cache stops
 *   admitting pages. */
enum pcache_policy {
	PCACHE_LRU = 0,
	PCACHE_LRU_AGED = 1,
};

/* Where the cache's memory comes from. alloc returns NULL on failure; free
 * receives the size that was allocated. pcache_create uses malloc/free. */
struct pcache_allocator {
	void *(*alloc)(size_t size, void *ctx);
	void (*free)(void *p, size_t size, void *ctx);
	void *ctx;
};

struct pcache_stats {
	uint64_t hits;      /* lookups that found the page */
	uint64_t misses;    /* lookups that did not */
	uint64_t inserts;   /* pages added (not counting updates) */
	uint64_t updates;   /* inserts of a page already cached (copied over) */
	uint64_t evictions; /* pages dropped as least recently used (by insert
			     * or by shrinking resize) */
	uint64_t rejected;  /* inserts not cached (PCACHE_LRU_AGED) */
	uint64_t round;     /* rounds counted by pcache_next_round */
	uint64_t pages;     /* pages cached now */
	uint64_t capacity;  /* most pages the budget holds */
	uint64_t budget;    /* bytes, as last set */
	uint64_t bytes_used;/* bytes used now (see the top of this file) */
	uint64_t reserved;  /* bytes reserved (pcache_bytes_reserved) */
};

/* Bytes of bookkeeping per cached page on top of the page itself: the
 * entry header plus its share (one pointer) of a fully used bucket array.
 * For sizing budgets; the exact figure is pcache_bytes_used(). */
#define PCACHE_ENTRY_OVERHEAD 48u

/* Bytes of header per slab of reserved entries. */
#define PCACHE_SLAB_OVERHEAD 16u

/* Create a cache of budget_bytes for pages of page_size bytes (> 0).
 * Returns NULL if page_size is 0 or memory runs out. A budget too small
 * for one page (0 included) gives a cache that stores nothing: lookups
 * miss, inserts succeed without storing. */
struct pcache *pcache_create(size_t budget_bytes, size_t page_size);

/* As pcache_create, with the given allocator (copied; alloc and free must
 * be non-NULL). */
struct pcache *pcache_create_with(size_t budget_bytes, size_t page_size,
				  const struct pcache_allocator *a);

/* Free the cache, every page in it and its reservation. NULL is allowed. */
void pcache_destroy(struct pcache *pc);

/* Reserve, up front, all a budget of bytes needs (see the top of this
 * file): from then on, with the budget at most bytes, nothing else is
 * allocated. Independent of the budget, which it does not change. Pages
 * cached stay cached. If a reservation exists, only what the larger one
 * needs is added (a slab for the extra entries, and a larger bucket array
 * in place of the reserved one if the capacity needs one); if it already
 * covers bytes (capacity at least that budget's), nothing happens.
 * Returns 0, or PCACHE_ENOMEM with the cache unchanged. */
int pcache_reserve(struct pcache *pc, size_t bytes);

/* What pcache_reserve(pc, budget) takes from the allocator on a cache of
 * page_size pages that has no reservation: the bytes a full cache of that
 * budget uses (pcache_bytes_used) plus PCACHE_SLAB_OVERHEAD, or 0 if the
 * budget holds no page (or page_size would make pcache_create fail);
 * SIZE_MAX if that does not fit a size_t. For sizing and for messages. */
size_t pcache_reserve_bytes(size_t budget, size_t page_size);

/* Drop every cached page (not counted as evictions). The budget, the
 * policy, the reservation and the counters other than pages and
 * bytes_used stay as they are. */
void pcache_clear(struct pcache *pc);

/* The cached copy of page pfn, or NULL. Counts a hit or a miss; a hit
 * makes the page most recently used. The pointer (page_size bytes) stays
 * valid until the next pcache_insert, pcache_remove, pcache_resize,
 * pcache_clear or pcache_destroy on this cache. */
const uint8_t *pcache_lookup(struct pcache *pc, uint64_t pfn);

/* Store a copy of page (page_size bytes) as pfn, most recently used. If
 * pfn is cached its copy is overwritten; otherwise the least recently used
 * page is evicted when the cache is full (PCACHE_LRU_AGED: if it is old
 * enough; else nothing is stored). Returns 0 (also when nothing is stored:
 * budget too small, or rejected by the policy), or PCACHE_ENOMEM, with the
 * cache as it was (never with the budget within the reservation). page
 * must not point into this cache. */
int pcache_insert(struct pcache *pc, uint64_t pfn, const uint8_t *page);

/* Drop page pfn if cached (not counted as an eviction). Returns 1 if it
 * was cached, 0 if not. */
int pcache_remove(struct pcache *pc, uint64_t pfn);

/* Change the budget while pages are cached. Shrinking evicts least
 * recently used pages until the rest fit; growing keeps every page.
 * Returns 0, or PCACHE_ENOMEM if a new bucket array could not be
 * allocated (the cache, budget included, is then unchanged); never
 * within the reservation. */
int pcache_resize(struct pcache *pc, size_t budget_bytes);

/* Choose the replacement policy (any time; PCACHE_LRU by default).
 * Returns 0 or PCACHE_EINVAL. */
int pcache_set_policy(struct pcache *pc, enum pcache_policy policy);

/* Start a new round: call once per dirty-log sync. A page's age is the
 * number of rounds since it was last looked up (hit) or inserted. */
void pcache_next_round(struct pcache *pc);

/* Counters and sizes, copied into *st. */
void pcache_stats(const struct pcache *pc, struct pcache_stats *st);

/* Bytes held for the contents now: the bucket array in use and the cached
 * pages' entries, reserved or not (see the top of this file); always <=
 * the budget. */
size_t pcache_bytes_used(const struct pcache *pc);

/* Bytes of the reservation (0 without one); see the top of this file. */
size_t pcache_bytes_reserved(const struct pcache *pc);

/* Pages the cache holds now. */
size_t pcache_count(const struct pcache *pc);

/* The page number of the i-th most recently used page (0 = most recent),
 * walking the LRU list; for tests and diagnostics (O(i)). Returns 0 and
 * sets *pfn, or PCACHE_EINVAL if i >= pcache_count(). */
int pcache_nth_recent(const struct pcache *pc, size_t i, uint64_t *pfn);

#endif /* FERRY_PCACHE_H */
