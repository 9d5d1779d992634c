/* bench_xbzrle.c: XBZRLE encode and decode throughput per workload, as
 * ratios to memcmp and memcpy of the same page pairs measured in the same
 * run, on a cold set (64 MiB of page pairs, larger than the last-level
 * cache) and a warm set (64 pairs).
 *
 * Throughput counts page bytes (4096 per pair). Each figure is the best
 * and the median of RUNS runs; ratios divide best by best and median by
 * median. Encode writes into one reused buffer (as QEMU's sender does);
 * decode applies precomputed streams to a copy of the old pages. The
 * streams lie back to back, as a receiver holds them (ferry's XBZRLE
 * record keeps its pages' streams end to end; QEMU reads each into one
 * reused buffer); --slots puts each in its own 4 KiB slot instead, which
 * gives every stream a cold page of its own that no receiver has.
 *
 * The memcmp baseline compares each old page with an identical copy of
 * itself held in a third array of the same size: memcmp of the pair itself
 * stops at the first difference (offset 0 for the synthetic load), which
 * measures nothing. So memcmp here is the cost of comparing a whole page
 * pair from the same kind of memory (cold or warm); memcpy copies each new
 * page over its own copy of the old page.
 *
 * Usage: bench_xbzrle [--all-impls] [--runs N] [--only SUBSTR] [--set cold|warm]
 *                     [--slots]
 * --all-impls repeats the encode measurement on every SIMD path. */
#define _GNU_SOURCE /* sched_setaffinity, sched_getcpu */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xbzrle.h"

#define PAGE 4096
#define COLD_BYTES (64u << 20) /* old + new pages of the cold set */
#define WARM_PAIRS 64
#define WARM_TARGET (256u << 20) /* page bytes per warm run */
#define MAX_RUNS 15

static int runs = 5;
static const char *only;   /* --only: workloads whose name contains this */
static const char *sets = "cold,warm"; /* --set */
static bool slots;         /* --slots: one stream per 4 KiB slot */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void flip(uint8_t *p, size_t i)
{
	p[i] ^= (uint8_t)(next() % 255 + 1);
}

enum kind { SYNTH, SPARSE, CLUSTER, IDENT, RANDOM };

struct workload {
	const char *name;
	enum kind kind;
	unsigned n; /* bytes changed (sparse) or run length (cluster) */
};

static const struct workload workloads[] = {
	{"synthetic (4 x +1)", SYNTH, 4},
	{"sparse 1", SPARSE, 1},
	{"sparse 8", SPARSE, 8},
	{"sparse 64", SPARSE, 64},
	{"sparse 512", SPARSE, 512},
	{"cluster 16", CLUSTER, 16},
	{"cluster 256", CLUSTER, 256},
	{"cluster 2048", CLUSTER, 2048},
	{"identical", IDENT, 0},
	{"random", RANDOM, 0},
};

static void make_pair(const struct workload *w, uint8_t *old, uint8_t *new)
{
	for (size_t i = 0; i < PAGE; i += 8) {
		uint64_t x = next();

		/* Pages half full of zeros, like real memory. */
		if (i % 64 >= 32)
			x = 0;
		memcpy(old + i, &x, 8);
	}
	memcpy(new, old, PAGE);
	switch (w->kind) {
	case SYNTH:
		for (size_t off = 0; off < PAGE; off += 1024)
			new[off]++;
		break;
	case SPARSE: /* n distinct positions */
		for (unsigned k = 0; k < w->n;) {
			size_t at = next() % PAGE;

			if (new[at] == old[at]) {
				flip(new, at);
				k++;
			}
		}
		break;
	case CLUSTER: {
		size_t at = next() % (PAGE - w->n + 1);

		for (size_t j = at; j < at + w->n; j++)
			flip(new, j);
		break;
	}
	case IDENT:
		break;
	case RANDOM:
		for (size_t i = 0; i < PAGE; i += 8) {
			uint64_t x = next();

			memcpy(new + i, &x, 8);
		}
		break;
	}
}

static double now(void)
{
	struct timespec ts;

	/* CPU time of this thread: the machine is shared, and time spent
	 * descheduled is not the code's. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct result {
	double best, median; /* GB/s of page bytes */
};

static struct result summarise(double *gbps, int n)
{
	struct result r;

	qsort(gbps, (size_t)n, sizeof(*gbps), cmp_double);
	r.best = gbps[n - 1];
	r.median = gbps[n / 2];
	return r;
}

/* The set of pairs under test. */
struct set {
	size_t npairs, reps;
	uint8_t *old, *new, *dst, *streams, *encbuf;
	int *slen;
	size_t *soff; /* where pair i's stream starts in streams */
};

static volatile long sink;

enum op { OP_MEMCMP, OP_MEMCPY, OP_ENCODE, OP_DECODE };

static double run_once(struct set *s, enum op op)
{
	long acc = 0;
	double t0 = now(), t;

	for (size_t r = 0; r < s->reps; r++) {
		for (size_t i = 0; i < s->npairs; i++) {
			const uint8_t *o = s->old + i * PAGE, *n = s->new + i * PAGE;

			switch (op) {
			case OP_MEMCMP: /* full page: see the top of the file */
				acc += memcmp(o, s->dst + i * PAGE, PAGE);
				break;
			case OP_MEMCPY:
				memcpy(s->dst + i * PAGE, n, PAGE);
				acc += s->dst[i * PAGE];
				break;
			case OP_ENCODE:
				acc += xbzrle_encode(o, n, PAGE, s->encbuf, PAGE);
				break;
			case OP_DECODE:
				if (s->slen[i] > 0)
					acc += xbzrle_decode(s->streams + s->soff[i],
							     (size_t)s->slen[i],
							     s->dst + i * PAGE, PAGE);
				break;
			}
		}
	}
	t = now() - t0;
	sink += acc;
	return (double)(s->npairs * s->reps * PAGE) / t / 1e9;
}

static struct result measure(struct set *s, enum op op)
{
	double gbps[MAX_RUNS];

	run_once(s, op); /* warm-up (and page-in) */
	for (int k = 0; k < runs; k++)
		gbps[k] = run_once(s, op);
	return summarise(gbps, runs);
}

/* Stream length QEMU's maximal-run encoder would produce (-1 if it would
 * not fit a page, by our exact count, not QEMU's conservative one). */
static long qemu_len(const uint8_t *a, const uint8_t *b)
{
	size_t i = 0, n = 0;

	while (i < PAGE) {
		size_t z = 0, nz = 0;

		while (i < PAGE && a[i] == b[i])
			i++, z++;
		if (i == PAGE)
			break;
		while (i < PAGE && a[i] != b[i])
			i++, nz++;
		n += (z < 128 ? 1 : 2) + (nz < 128 ? 1 : 2) + nz;
	}
	return n > PAGE ? -1 : (long)n;
}

static void bench_set(const char *label, size_t npairs, size_t reps, bool all_impls)
{
	struct set s = {.npairs = npairs, .reps = reps};

	s.old = aligned_alloc(64, npairs * PAGE);
	s.new = aligned_alloc(64, npairs * PAGE);
	s.dst = aligned_alloc(64, npairs * PAGE);
	s.streams = aligned_alloc(64, npairs * PAGE);
	s.encbuf = aligned_alloc(64, PAGE);
	s.slen = calloc(npairs, sizeof(*s.slen));
	s.soff = calloc(npairs, sizeof(*s.soff));
	if (!s.old || !s.new || !s.dst || !s.streams || !s.encbuf || !s.slen || !s.soff) {
		fprintf(stderr, "bench_xbzrle: out of memory\n");
		exit(1);
	}
	printf("\n%s set: %zu pairs (%zu KiB of old+new pages), %d runs, impl %s, "
	       "streams %s\n", label, npairs, npairs * 2 * PAGE >> 10, runs,
	       xbzrle_impl_name(xbzrle_get_impl()),
	       slots ? "in 4 KiB slots" : "back to back");
	printf("%-19s %8s %8s %6s | %7s %7s | %7s %7s | %12s %12s | %12s %12s\n",
	       "workload", "mean B", "qemu B", "ovfl%", "cmpGB/s", "cpyGB/s",
	       "encGB/s", "decGB/s", "enc/memcmp", "(median)", "dec/memcpy",
	       "(median)");
	for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++) {
		struct result cmp, cpy, enc, dec = {0, 0};

		if (only && !strstr(workloads[w].name, only))
			continue;
		{
		double total = 0, qtotal = 0;
		size_t encoded = 0, qn = 0, ovfl = 0;
		bool any_stream = false;
		size_t at = 0; /* end of the streams so far */

		for (size_t i = 0; i < npairs; i++) {
			long q;

			make_pair(&workloads[w], s.old + i * PAGE, s.new + i * PAGE);
			s.soff[i] = slots ? i * PAGE : at;
			s.slen[i] = xbzrle_encode(s.old + i * PAGE, s.new + i * PAGE, PAGE,
						  s.streams + s.soff[i], PAGE);
			if (s.slen[i] > 0)
				at += (size_t)s.slen[i];
			q = qemu_len(s.old + i * PAGE, s.new + i * PAGE);
			if (s.slen[i] >= 0) {
				total += s.slen[i];
				encoded++;
			} else {
				ovfl++;
			}
			if (q >= 0) {
				qtotal += (double)q;
				qn++;
			}
			any_stream |= s.slen[i] > 0;
		}
		memcpy(s.dst, s.old, npairs * PAGE); /* memcmp needs equal pages */
		cmp = measure(&s, OP_MEMCMP);
		cpy = measure(&s, OP_MEMCPY);
		memcpy(s.dst, s.old, npairs * PAGE);
		enc = measure(&s, OP_ENCODE);
		if (any_stream)
			dec = measure(&s, OP_DECODE);
		printf("%-19s %8.1f %8.1f %6.1f | %7.2f %7.2f | %7.2f %7.2f | "
		       "%11.3fx %11.3fx | ",
		       workloads[w].name, encoded ? total / (double)encoded : 0,
		       qn ? qtotal / (double)qn : 0, 100.0 * (double)ovfl / (double)npairs,
		       cmp.best, cpy.best, enc.best, dec.best, enc.best / cmp.best,
		       enc.median / cmp.median);
		if (any_stream)
			printf("%11.3fx %11.3fx\n", dec.best / cpy.best,
			       dec.median / cpy.median);
		else
			printf("%12s %12s\n", "-", "-");
		if (all_impls) {
			for (int k = XBZRLE_IMPL_SCALAR; k < XBZRLE_IMPL_COUNT; k++) {
				struct result e;

				if (xbzrle_set_impl((enum xbzrle_impl)k) != 0)
					continue;
				e = measure(&s, OP_ENCODE);
				printf("    encode %-9s %7.2f GB/s  %6.3fx memcmp (median %6.3fx)\n",
				       xbzrle_impl_name((enum xbzrle_impl)k), e.best,
				       e.best / cmp.best, e.median / cmp.median);
			}
			xbzrle_set_impl(XBZRLE_IMPL_AUTO);
		}
		}
	}
	free(s.old);
	free(s.new);
	free(s.dst);
	free(s.streams);
	free(s.encbuf);
	free(s.slen);
	free(s.soff);
}

/* Stay on the CPU we started on. A move to another core mid-run leaves
 * the warm set's pages in the old core's caches and the cold set's lines
 * half fetched; on a shared 2-CPU VM the scheduler moves us often enough
 * to swing a run's ratios by 10-20%. Best effort: a failure is reported
 * and the run goes on. */
static void pin_to_this_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set) != 0)
		fprintf(stderr, "bench_xbzrle: not pinned to a CPU; results may be noisier\n");
}

int main(int argc, char **argv)
{
	bool all_impls = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all-impls")) {
			all_impls = true;
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = atoi(argv[++i]);
			if (runs < 1 || runs > MAX_RUNS) {
				fprintf(stderr, "bench_xbzrle: --runs 1..%d\n", MAX_RUNS);
				return 2;
			}
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
			sets = argv[++i];
		} else if (!strcmp(argv[i], "--slots")) {
			slots = true;
		} else {
			fprintf(stderr, "usage: bench_xbzrle [--all-impls] [--runs N] "
				"[--only SUBSTR] [--set cold|warm] [--slots]\n");
			return 2;
		}
	}
	pin_to_this_cpu();
	printf("bench_xbzrle: page %d bytes; GB/s of page bytes; 'mean B' is our "
	       "mean stream length over encodable pages, 'qemu B' QEMU's (maximal "
	       "runs)\n", PAGE);
	if (strstr(sets, "cold"))
		bench_set("cold", COLD_BYTES / (2 * PAGE), 1, all_impls);
	if (strstr(sets, "warm"))
		bench_set("warm", WARM_PAIRS, WARM_TARGET / (WARM_PAIRS * PAGE), all_impls);
	return 0;
}
