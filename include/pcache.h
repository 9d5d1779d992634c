/* pcache.h: the source side's page cache for XBZRLE: copies of the pages
 * the destination holds, keyed by guest page number, with a byte budget
 * and true least-recently-used replacement.
 *
 * Portable C (codec/pcache.c), built into the kernel and hosted for tests.
 * Not thread-safe: one owner (the migration engine) at a time.
 *
 * Budget accounting is exact: pcache_bytes_used() is the sum of the sizes
 * of every block the cache holds from its allocator for its contents: the
 * hash bucket array and, per cached page, one entry (PCACHE_ENTRY_OVERHEAD
 * bytes of header plus the page). It never exceeds the budget. The handle
 * itself (struct pcache, of fixed size, allocated by pcache_create) is
 * not counted, so a budget of 0 uses 0 bytes.
 *
 * All operations are O(1) (expected: one hash bucket per cached page at
 * most); pcache_resize() is O(pages cached) when the bucket array changes.
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
	uint64_t bytes_used;/* bytes held now (see the top of this file) */
};

/* Bytes of bookkeeping per cached page on top of the page itself: the
 * entry header plus its share (one pointer) of a fully used bucket array.
 * For sizing budgets; the exact figure is pcache_bytes_used(). */
#define PCACHE_ENTRY_OVERHEAD 48u

/* Create a cache of budget_bytes for pages of page_size bytes (> 0).
 * Returns NULL if page_size is 0 or memory runs out. A budget too small
 * for one page (0 included) gives a cache that stores nothing: lookups
 * miss, inserts succeed without storing. */
struct pcache *pcache_create(size_t budget_bytes, size_t page_size);

/* As pcache_create, with the given allocator (copied; alloc and free must
 * be non-NULL). */
struct pcache *pcache_create_with(size_t budget_bytes, size_t page_size,
				  const struct pcache_allocator *a);

/* Free the cache and every page in it. NULL is allowed. */
void pcache_destroy(struct pcache *pc);

/* The cached copy of page pfn, or NULL. Counts a hit or a miss; a hit
 * makes the page most recently used. The pointer (page_size bytes) stays
 * valid until the next pcache_insert, pcache_remove, pcache_resize or
 * pcache_destroy on this cache. */
const uint8_t *pcache_lookup(struct pcache *pc, uint64_t pfn);

/* Store a copy of page (page_size bytes) as pfn, most recently used. If
 * pfn is cached its copy is overwritten; otherwise the least recently used
 * page is evicted when the cache is full (PCACHE_LRU_AGED: if it is old
 * enough; else nothing is stored). Returns 0 (also when nothing is stored:
 * budget too small, or rejected by the policy), or PCACHE_ENOMEM, with the
 * cache as it was. page must not point into this cache. */
int pcache_insert(struct pcache *pc, uint64_t pfn, const uint8_t *page);

/* Drop page pfn if cached (not counted as an eviction). Returns 1 if it
 * was cached, 0 if not. */
int pcache_remove(struct pcache *pc, uint64_t pfn);

/* Change the budget while pages are cached. Shrinking evicts least
 * recently used pages until the rest fit; growing keeps every page.
 * Returns 0, or PCACHE_ENOMEM if a new bucket array could not be
 * allocated (the cache, budget included, is then unchanged). */
int pcache_resize(struct pcache *pc, size_t budget_bytes);

/* Choose the replacement policy (any time; PCACHE_LRU by default).
 * Returns 0 or PCACHE_EINVAL. */
int pcache_set_policy(struct pcache *pc, enum pcache_policy policy);

/* Start a new round: call once per dirty-log sync. A page's age is the
 * number of rounds since it was last looked up (hit) or inserted. */
void pcache_next_round(struct pcache *pc);

/* Counters and sizes, copied into *st. */
void pcache_stats(const struct pcache *pc, struct pcache_stats *st);

/* Bytes held for the contents now; always <= the budget. */
size_t pcache_bytes_used(const struct pcache *pc);

/* Pages the cache holds now. */
size_t pcache_count(const struct pcache *pc);

/* The page number of the i-th most recently used page (0 = most recent),
 * walking the LRU list; for tests and diagnostics (O(i)). Returns 0 and
 * sets *pfn, or PCACHE_EINVAL if i >= pcache_count(). */
int pcache_nth_recent(const struct pcache *pc, size_t i, uint64_t *pfn);

#endif /* FERRY_PCACHE_H */
