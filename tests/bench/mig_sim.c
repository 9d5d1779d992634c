/* mig_sim.c: what this machine cannot run, answered by the engine on the
 * simulator (tests/sim/): a 1 TiB guest at 10 and 100 Gbit/s, with this
 * CPU's measured per-page costs, one core per end as ferry has.
 *
 * A simulated page stands for SCALE pages (the engine's scaled build:
 * one-page batches, a 16 KiB stream buffer), so the 1 TiB guest is 1 GiB
 * here; sizes, rates and the cache budget are divided by SCALE, costs
 * multiplied. Every row prints its time against the reference the same
 * run defines: the guest's bytes over the link's rate (1.00 = one copy
 * of memory at line rate).
 *
 * Usage: mig_sim [--quick] [-v]   (--quick: the 10 Gbit/s rows only; -v:
 * where each pause went) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define SEC 1000000000ull
#define SCALE 1024ull

static bool verbose;

struct row {
	const char *name;
	uint64_t hot_bytes;    /* real bytes the writes land in */
	uint64_t writes;       /* real page writes a second */
	enum mig_xbzrle_mode x;
	bool verify_after;
	bool auto_converge;
};

static const char *xname(enum mig_xbzrle_mode x)
{
	return x == MIG_XBZRLE_ON ? "on" : x == MIG_XBZRLE_AUTO ? "auto" : "off";
}

static void run(const struct sim_costs *cost, uint64_t gbit, const struct row *r)
{
	uint64_t guest = 1024 * GiB, rate = gbit * 1000000000ull / 8;
	struct sim_cfg c = {
		.guest = { .bytes = guest / SCALE, .rate = r->writes / SCALE, .hot_pages = r->hot_bytes / 4096 / SCALE,
			   .zero_pct = 10, .seed = 11 },
		/* 50 us each way; TCP's window 64 MiB, more than the bandwidth-delay product */
		.link = { .rate = rate / SCALE, .latency_ns = 50000, .window = 64 * MiB / SCALE },
		.cost = *cost,
		.scale = SCALE,
		.step_ns = 200000,
		.limit_ns = 7200 * SEC,
		.engine = "libmigengine-scaled",
	};
	struct sim *s = sim_new(&c);
	if (!s)
		exit(1);
	struct mig_params *p = s->end[0].params;
	p->xbzrle = r->x;
	p->xbzrle_cache_bytes = 16 * GiB / SCALE;
	p->verify_after = r->verify_after;
	s->end[1].params->verify_after = r->verify_after;
	p->max_iterations = 30;
	p->auto_converge = r->auto_converge;
	int rc = sim_migrate(s);
	const struct mig_stats *m = s->end[0].stats;
	uint64_t end = m->end_ns ? m->end_ns : s->now;
	double total = (double)(end - m->start_ns) / 1e9, ideal = (double)guest / (double)rate;
	double busy = s->end[0].work_ns / (double)(end - m->start_ns);
	double dbusy = s->end[1].work_ns / (double)(end - m->start_ns);
	/* The pause: the guest ran nowhere, from its stop here to its first
	 * slice there. (The source's own count ends when it reads COMMIT,
	 * which a scaled run delays: a region it hashes meanwhile stands for
	 * 2 GiB.) */
	double pause = s->dst_resumed_at && m->stop_ns ? (double)(s->dst_resumed_at - m->stop_ns) / 1e6 : 0;
	double moved = m->stop_ns ? (double)(m->stop_ns - m->start_ns) / 1e9 : 0;
	printf("| %3llu Gbit/s | %-24s | %-4s%s | %-5s | %5.0f s | %5.0f s | %5.2f | %8.1f ms | %3llu | %7.0f GB | %3.0f%% | %3.0f%% | "
	       "%s%s\n",
	       (unsigned long long)gbit, r->name, xname(r->x), r->auto_converge ? " +ac" : "",
	       r->verify_after ? "after" : "pause", moved, total, total / ideal, pause, (unsigned long long)m->rounds, (double)m->transferred * SCALE / 1e9,
	       100 * busy, 100 * dbusy, rc == 0 ? s->end[0].status_name(m->status) : "did not end in 2 h",
	       m->stop_reason ? (strcmp(m->stop_reason, "converged") ? " (stalled)" : "") : "");
	if (m->status != MIG_COMPLETED)
		printf("|   | why: %s |\n", m->why);
	if (verbose)
		printf("|   | the pause: %llu pages dirty at the stop; last page written +%.1f ms, acknowledged +%.1f ms, "
		       "READY +%.1f ms, GO +%.1f ms, COMMIT read +%.1f ms; expected %.1f ms |\n",
		       (unsigned long long)m->stop_pages * SCALE, m->final_written_ns / 1e6, m->acked_ns / 1e6,
		       m->ready_ns / 1e6, m->go_ns / 1e6, m->downtime_ns / 1e6, m->expected_downtime_ns / 1e6);
	fflush(stdout);
	sim_free(s);
}

int main(int argc, char **argv)
{
	bool quick = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "-v") == 0)
			verbose = true;
		else {
			fprintf(stderr, "usage: mig_sim [--quick] [-v]\n");
			return 2;
		}
	}
	struct sim_costs cost;
	sim_costs_measure(&cost);
	printf("this CPU, ns per 4 KiB page on one core: send (zero check, copy, CRC32C) %.0f, hash (XXH3-128) %.0f,\n"
	       "destination write (CRC32C, copy) %.0f, XBZRLE encode %.0f, dirty-log test-and-clear %.1f\n",
	       cost.send, cost.hash, cost.write, cost.encode, cost.harvest);
	printf("a 1 TiB guest (simulated at 1/%llu), downtime-limit 300 ms, xbzrle-cache-size 16 GiB, 50 us each way;\n"
	       "stop at: when the guest stopped here; pause: from there to its first slice at the destination;\n"
	       "total: to the verdict, against one copy of memory at line rate (x line); +ac: auto-converge\n\n",
	       SCALE);
	printf("| link | guest writes | xbzrle | digest | stop at | total | x line | pause | rounds | sent | src CPU | dst CPU | end\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	const struct row rows[] = {
		{ "idle", 0, 0, MIG_XBZRLE_AUTO, true, false },
		{ "idle", 0, 0, MIG_XBZRLE_AUTO, false, false },
		{ "1 GB/s over 64 GiB", 64 * GiB, 256000, MIG_XBZRLE_OFF, true, false },
		{ "1 GB/s over 64 GiB", 64 * GiB, 256000, MIG_XBZRLE_AUTO, true, false },
		{ "4 GB/s over 64 GiB", 64 * GiB, 1000000, MIG_XBZRLE_OFF, true, false },
		{ "4 GB/s over 64 GiB", 64 * GiB, 1000000, MIG_XBZRLE_AUTO, true, false },
		{ "4 GB/s over 64 GiB", 64 * GiB, 1000000, MIG_XBZRLE_AUTO, true, true },
	};
	const uint64_t links[] = { 10, 100 };
	for (size_t l = 0; l < (quick ? 1 : 2); l++)
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			run(&cost, links[l], &rows[i]);
	return 0;
}
