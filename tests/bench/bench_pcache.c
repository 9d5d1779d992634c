/* bench_pcache.c: hit rates of ferry's LRU page cache against a model of
 * QEMU's XBZRLE cache with the same byte budget, on page-access traces.
 *
 * A trace is a sequence of dirty-sync rounds; in each round every dirty
 * page is sent once: look it up (a hit means XBZRLE can encode against the
 * cached copy), then store the page just sent. The QEMU-style model, from
 * the description in issue 6: a direct-mapped table of pow2floor(budget /
 * page size) slots (QEMU counts only page data), slot = page number masked
 * to the table size; a hit refreshes the slot's age to the current round;
 * a miss replaces the resident page only if it went unused for two rounds
 * (otherwise the new page is not cached). Ferry's cache counts its
 * metadata in the same budget, so it holds slightly fewer pages. It runs
 * twice: plain LRU (PCACHE_LRU) and LRU with QEMU's two-round age rule for
 * the victim (PCACHE_LRU_AGED, pcache_next_round at every round). Both
 * reserve their budget up front (pcache_reserve), so the timed inserts
 * never allocate.
 *
 * Usage: bench_pcache [budget_MiB]   (default 32)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pcache.h"

#define PAGE 4096

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- QEMU-style direct-mapped, age-based cache (model) ----------------- */

struct dm_slot {
	uint64_t pfn;
	uint64_t age; /* round of last use */
	bool used;
};

struct dmcache {
	struct dm_slot *slot;
	uint64_t mask, hits, lookups;
};

static void dm_init(struct dmcache *c, size_t budget)
{
	size_t n = 1;

	while (n * 2 <= budget / PAGE)
		n *= 2;
	c->slot = calloc(n, sizeof(*c->slot));
	c->mask = n - 1;
	c->hits = c->lookups = 0;
}

static void dm_access(struct dmcache *c, uint64_t pfn, uint64_t round)
{
	struct dm_slot *s = &c->slot[pfn & c->mask];

	c->lookups++;
	if (s->used && s->pfn == pfn) {
		c->hits++;
		s->age = round;
		return;
	}
	if (!s->used || round - s->age >= 2) {
		s->used = true;
		s->pfn = pfn;
		s->age = round;
	}
}

/* ---- Traces ------------------------------------------------------------- */

enum trace { UNIFORM, ZIPF, SCAN, SYNTHETIC, HOTCOLD, NTRACES };

struct trace_desc {
	const char *name;
	const char *shape;
};

static const struct trace_desc traces[NTRACES] = {
	{"uniform", "each round C/2 random pages of 4C"},
	{"zipf 1.0", "each round C draws, zipf over 8C"},
	{"scan 1.5C", "each round all of 1.5C in order"},
	{"synthetic 0.75C", "XBZRLE patch load: every page of 0.75C"},
	{"hot/cold", "each round C draws: 90% of C/2 hot, 10% of 16C"},
};

/* Zipf (exponent 1: weight 1/rank, so no libm) over n ranks by inverse
 * CDF; ranks shuffled over page numbers so hot pages are scattered, not
 * clustered at low numbers. */
struct zipf {
	double *cdf;
	uint64_t *perm;
	size_t n;
};

static void zipf_init(struct zipf *z, size_t n)
{
	double sum = 0;

	z->n = n;
	z->cdf = malloc(n * sizeof(*z->cdf));
	z->perm = malloc(n * sizeof(*z->perm));
	for (size_t i = 0; i < n; i++) {
		sum += 1.0 / (double)(i + 1);
		z->cdf[i] = sum;
		z->perm[i] = i;
	}
	for (size_t i = 0; i < n; i++)
		z->cdf[i] /= sum;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = next() % (i + 1);
		uint64_t t = z->perm[i];

		z->perm[i] = z->perm[j];
		z->perm[j] = t;
	}
}

static uint64_t zipf_draw(const struct zipf *z)
{
	double u = (double)(next() >> 11) / 9007199254740992.0;
	size_t lo = 0, hi = z->n - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return z->perm[lo];
}

/* Fill out[] with one round's dirty pages (distinct); returns how many. */
static size_t make_round(enum trace t, size_t cap, const struct zipf *z,
			 uint8_t *seen, size_t universe, uint64_t *out)
{
	size_t n = 0, draws;

	memset(seen, 0, universe);
	switch (t) {
	case UNIFORM:
		for (draws = 0; draws < cap / 2; draws++) {
			uint64_t p = next() % (4 * cap);

			if (!seen[p]++)
				out[n++] = p;
		}
		break;
	case ZIPF:
		for (draws = 0; draws < cap; draws++) {
			uint64_t p = zipf_draw(z);

			if (!seen[p]++)
				out[n++] = p;
		}
		break;
	case SCAN:
		for (uint64_t p = 0; p < cap + cap / 2; p++)
			out[n++] = p;
		break;
	case SYNTHETIC: /* a guest buffer at 256 MiB */
		for (uint64_t p = 0; p < cap * 3 / 4; p++)
			out[n++] = 0x10000 + p;
		break;
	case HOTCOLD:
		for (draws = 0; draws < cap; draws++) {
			uint64_t p = next() % 10 ? next() % (cap / 2)
						 : cap / 2 + next() % (16 * cap);

			if (!seen[p]++)
				out[n++] = p;
		}
		break;
	case NTRACES:
		break;
	}
	return n;
}

static double now(void)
{
	struct timespec ts;

	/* CPU time of this thread: the machine is shared, and time spent
	 * descheduled is not the code's. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	size_t budget = (size_t)(argc > 1 ? atoi(argv[1]) : 32) << 20;
	struct pcache *probe = pcache_create(budget, PAGE);
	struct pcache_stats st;
	size_t cap, universe;
	uint8_t page[PAGE], *seen;
	uint64_t *round_pages;
	struct zipf z;
	const int rounds = 30;

	if (!probe || budget == 0) {
		fprintf(stderr, "bench_pcache: bad budget\n");
		return 1;
	}
	pcache_stats(probe, &st);
	pcache_destroy(probe);
	cap = (size_t)st.capacity;
	universe = 0x10000 + 17 * cap;
	seen = malloc(universe);
	round_pages = malloc(universe * sizeof(*round_pages));
	zipf_init(&z, 8 * cap);
	memset(page, 0x3c, PAGE);

	{
		struct dmcache dm;

		dm_init(&dm, budget);
		printf("bench_pcache: budget %zu MiB; ferry LRU holds C = %zu pages "
		       "(metadata counted), QEMU-style model %llu slots (data only); "
		       "%d rounds per trace\n", budget >> 20, cap,
		       (unsigned long long)dm.mask + 1, rounds);
		free(dm.slot);
	}
	printf("%-16s %-48s %9s %9s %9s %9s %9s\n", "trace", "shape (C = LRU capacity)",
	       "accesses", "LRU hit%", "aged hit%", "QEMU hit%", "ns/acc*");
	for (int t = 0; t < NTRACES; t++) {
		struct pcache *pc = pcache_create(budget, PAGE);
		struct pcache *aged = pcache_create(budget, PAGE);
		struct pcache_stats sa;
		struct dmcache dm;
		uint64_t accesses = 0;
		double elapsed = 0;

		dm_init(&dm, budget);
		if (!pc || !aged || pcache_reserve(pc, budget) < 0 ||
		    pcache_reserve(aged, budget) < 0) {
			fprintf(stderr, "bench_pcache: cannot reserve %zu bytes\n",
				pcache_reserve_bytes(budget, PAGE));
			return 1;
		}
		pcache_set_policy(aged, PCACHE_LRU_AGED);
		rng = 0x853c49e6748fea9bull + (uint64_t)t; /* same trace for all */
		for (int r = 1; r <= rounds; r++) {
			size_t n = make_round((enum trace)t, cap, &z, seen, universe,
					      round_pages);
			double t0 = now();

			for (size_t i = 0; i < n; i++) {
				pcache_lookup(pc, round_pages[i]);
				if (pcache_insert(pc, round_pages[i], page) < 0) {
					fprintf(stderr, "bench_pcache: insert failed\n");
					return 1;
				}
			}
			elapsed += now() - t0;
			pcache_next_round(aged);
			for (size_t i = 0; i < n; i++) {
				pcache_lookup(aged, round_pages[i]);
				if (pcache_insert(aged, round_pages[i], page) < 0)
					return 1;
				dm_access(&dm, round_pages[i], (uint64_t)r);
			}
			accesses += n;
		}
		pcache_stats(pc, &st);
		pcache_stats(aged, &sa);
		printf("%-16s %-48s %9llu %8.1f%% %8.1f%% %8.1f%% %9.1f\n", traces[t].name,
		       traces[t].shape, (unsigned long long)accesses,
		       100.0 * (double)st.hits / (double)(st.hits + st.misses),
		       100.0 * (double)sa.hits / (double)(sa.hits + sa.misses),
		       100.0 * (double)dm.hits / (double)dm.lookups,
		       elapsed * 1e9 / (double)accesses);
		pcache_destroy(pc);
		pcache_destroy(aged);
		free(dm.slot);
	}
	printf("* ns/acc: plain LRU, lookup plus insert (a 4 KiB copy), thread CPU "
	       "time, first-touch page faults of the reservation included\n");
	free(seen);
	free(round_pages);
	free(z.cdf);
	free(z.perm);
	return 0;
}
