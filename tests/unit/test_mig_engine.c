/* test_mig_engine.c: the migration engine (kernel/mig/) on the host,
 * between two simulated ends (tests/sim/): a migration that completes
 * moves every byte and the CPU state; under a bandwidth cap it converges
 * with XBZRLE and keeps to the cap; auto decides; the cache grows and is
 * resized mid-run; the throttle brings in a guest that outruns the link;
 * the switch-over's failure paths never leave two running copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

#define MiB (1ull << 20)
#define MS 1000000ull
#define SEC 1000000000ull

static struct sim_cfg base_cfg(uint64_t guest_mib, uint64_t rate, uint64_t hot_pages)
{
	return (struct sim_cfg){
		.guest = { .bytes = guest_mib * MiB, .rate = rate, .hot_pages = hot_pages, .zero_pct = 20, .seed = 7 },
		.link = { .rate = 100 * MiB, .latency_ns = 100000, .window = 1 * MiB },
		.cost = { .send = 400, .hash = 300, .write = 400, .encode = 1500, .harvest = 1 },
		.limit_ns = 120 * SEC,
	};
}

static void assert_completed(struct sim *s)
{
	assert_int_equal(s->end[0].stats->status, MIG_COMPLETED);
	assert_int_equal(s->end[1].stats->status, MIG_COMPLETED);
	assert_false(s->end[0].has_guest);              /* the source dropped its copy */
	assert_true(s->end[1].has_guest);
	assert_int_equal(s->end[1].vm.state, HV_VM_RUNNING);
	assert_int_equal(s->both_running, 0);
	assert_int_equal(sim_pages_differ(s), 0); /* every page arrived */
	assert_int_equal(s->end[1].cpu_rip, 0x100000 + s->end[0].writes); /* the CPU where it stopped */
}

static void test_idle_guest_moves_whole(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(16, 0, 0);
	struct sim *s = sim_new(&c);
	assert_non_null(s);
	assert_int_equal(sim_migrate(s), 0);
	assert_completed(s);
	assert_int_equal(s->end[0].stats->rounds, 0);
	sim_free(s);
}

/* The busiest second on the link, source to destination, sampled each
 * 100 ms. */
struct rate_probe {
	uint64_t at[10], next_t, max_second;
	unsigned n;
};

static void probe_rate(struct sim *s, void *arg)
{
	struct rate_probe *r = arg;
	if (s->now < r->next_t)
		return;
	r->next_t = s->now + 100 * MS;
	uint64_t moved = sim_pipe_moved(s->pipe[0]);
	if (r->n >= 10 && moved - r->at[r->n % 10] > r->max_second)
		r->max_second = moved - r->at[r->n % 10];
	r->at[r->n++ % 10] = moved;
}

static bool logged(const struct mig_stats *m, const char *what)
{
	uint64_t n = m->nlog < MIG_LOG_KEPT ? m->nlog : MIG_LOG_KEPT;
	for (uint64_t i = 0; i < n; i++)
		if (strstr(m->log[i], what))
			return true;
	return false;
}

static void print_run(const struct sim *s, const char *what)
{
	const struct mig_stats *m = s->end[0].stats;
	printf("  %s: %s, %.2f s, downtime %.1f ms, %llu rounds, %.1f MB, throttle %u%%, %s\n", what,
	       s->end[0].status_name(m->status), (double)(m->end_ns - m->start_ns) / 1e9, (double)m->downtime_ns / 1e6,
	       (unsigned long long)m->rounds, (double)m->transferred / 1e6, m->throttle,
	       m->stop_reason ? m->stop_reason : "-");
	printf("    stop: %llu pages, final %llu pages %llu bytes written +%.1f ms, acked +%.1f ms, ready +%.1f, go +%.1f, "
	       "expected %.1f ms\n",
	       (unsigned long long)m->stop_pages, (unsigned long long)m->final_pages,
	       (unsigned long long)m->final_bytes, m->final_written_ns / 1e6, m->acked_ns / 1e6, m->ready_ns / 1e6,
	       m->go_ns / 1e6, m->expected_downtime_ns / 1e6);
	uint64_t n = m->nlog < MIG_LOG_KEPT ? m->nlog : MIG_LOG_KEPT;
	for (uint64_t i = 0; i < n; i++)
		printf("    %s\n", m->log[i]);
}

/* sparse: 20,000 single-word writes a second over 64 MiB, at 8 MiB/s. */
static struct sim_cfg capped_cfg(enum mig_xbzrle_mode x)
{
	struct sim_cfg c = base_cfg(64, 20000, 0);
	(void)x;
	return c;
}

static struct sim *capped(enum mig_xbzrle_mode x, struct rate_probe *r)
{
	struct sim_cfg c = capped_cfg(x);
	struct sim *s = sim_new(&c);
	assert_non_null(s);
	s->end[0].params->max_bandwidth = 8 * MiB;
	s->end[0].params->xbzrle = x;
	if (r) {
		s->hook = probe_rate;
		s->hook_arg = r;
	}
	return s;
}

static void test_converges_under_cap_with_xbzrle(void **st)
{
	(void)st;
	struct rate_probe r = { 0 };
	struct sim *s = capped(MIG_XBZRLE_ON, &r);
	assert_int_equal(sim_migrate(s), 0);
	print_run(s, "sparse 64M at 8 MiB/s, xbzrle on");
	assert_completed(s);
	const struct mig_stats *m = s->end[0].stats;
	assert_string_equal(m->stop_reason, "converged");
	assert_true(m->downtime_ns <= 300 * MS);
	assert_true(m->xbzrle_pages > 0);
	/* the cap held over every second (5%: a burst's worth) */
	printf("  busiest second %.2f MiB\n", (double)r.max_second / MiB);
	assert_true(r.max_second > 7 * MiB);
	assert_true(r.max_second <= 8 * MiB * 105 / 100);
	sim_free(s);
}

static void test_auto_turns_xbzrle_on(void **st)
{
	(void)st;
	struct sim *s = capped(MIG_XBZRLE_AUTO, NULL);
	assert_int_equal(sim_migrate(s), 0);
	print_run(s, "sparse 64M at 8 MiB/s, xbzrle auto");
	assert_completed(s);
	assert_true(logged(s->end[0].stats, "xbzrle on"));
	assert_true(s->end[0].stats->xbzrle_used);
	assert_true(s->end[0].stats->downtime_ns <= 300 * MS);
	sim_free(s);
}

/* Without XBZRLE the same guest cannot converge: with no-convergence
 * fail the source keeps its guest, running, and the destination drops
 * its copy. */
static void test_unconverged_fails_and_keeps_guest(void **st)
{
	(void)st;
	struct sim *s = capped(MIG_XBZRLE_OFF, NULL);
	s->end[0].params->fail_unconverged = 1;
	s->end[0].params->max_iterations = 6;
	sim_migrate(s);
	print_run(s, "sparse 64M at 8 MiB/s, xbzrle off, fail");
	assert_int_equal(s->end[0].stats->status, MIG_FAILED);
	assert_true(s->end[0].has_guest);
	assert_int_equal(s->end[0].vm.state, HV_VM_RUNNING);
	assert_false(s->end[1].has_guest && s->end[1].vm.state == HV_VM_RUNNING);
	assert_int_equal(s->both_running, 0);
	sim_free(s);
}

/* Mid-run, xbzrle-cache-size goes from 8 to 64 MiB: the live cache is
 * resized keeping what it holds, and the hit rate rises. */
struct resize {
	uint64_t at_ns;
	int rc;
	bool done;
};

static void resize_hook(struct sim *s, void *arg)
{
	struct resize *r = arg;
	if (r->done || s->now < r->at_ns)
		return;
	char why[200] = "";
	s->end[0].params->xbzrle_cache_bytes = 64 * MiB;
	SIM_AS(s, 0, r->rc = s->end[0].src_retune(why, sizeof(why)));
	r->done = true;
}

/* The hit rate of the last pass run with this cache budget (-1: none). */
static double row_hits(const struct mig_stats *m, uint64_t cache)
{
	double h = -1;
	for (uint64_t i = 1; i < m->nrows && i < MIG_ROWS_KEPT; i++) {
		const struct mig_row *w = &m->rows[i];
		if (w->cache == cache && w->lookups > 256)
			h = 100.0 * (double)w->hits / (double)w->lookups;
	}
	return h;
}

static void test_cache_resized_mid_run(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(64, 20000, 8192); /* hotset: 32 MiB */
	struct sim *s = sim_new(&c);
	assert_non_null(s);
	s->end[0].params->max_bandwidth = 8 * MiB;
	s->end[0].params->xbzrle = MIG_XBZRLE_ON;
	s->end[0].params->xbzrle_cache_bytes = 8 * MiB;
	struct resize r = { .at_ns = 12 * SEC };
	s->hook = resize_hook;
	s->hook_arg = &r;
	assert_int_equal(sim_migrate(s), 0);
	print_run(s, "hotset 32M at 8 MiB/s, cache 8 -> 64 MiB at 12 s");
	assert_true(r.done);
	assert_int_equal(r.rc, 0);
	assert_completed(s);
	const struct mig_stats *m = s->end[0].stats;
	assert_true(logged(m, "(set during the migration)"));
	assert_int_equal(m->cache_size, 64 * MiB);
	double before = row_hits(m, 8 * MiB), after = row_hits(m, 64 * MiB);
	printf("  hit rate %.0f%% with 8 MiB, %.0f%% with 64 MiB\n", before, after);
	assert_true(before >= 0 && after >= 0);
	assert_true(after > before + 20);
	sim_free(s);
}

/* auto sizes the cache to the dirty set and doubles it while each step
 * gains hit rate: a 48 MiB hot set, dirtied a sixth at a time. */
static void test_auto_grows_cache(void **st)
{
	(void)st;
	struct sim_cfg c = base_cfg(64, 5000, 12288);
	struct sim *s = sim_new(&c);
	assert_non_null(s);
	s->end[0].params->max_bandwidth = 32 * MiB;
	s->end[0].params->downtime_ms = 50;
	assert_int_equal(s->end[0].params->xbzrle, MIG_XBZRLE_AUTO); /* the default */
	assert_int_equal(sim_migrate(s), 0);
	print_run(s, "hot 48M, 5000 writes/s at 32 MiB/s, xbzrle auto");
	assert_completed(s);
	const struct mig_stats *m = s->end[0].stats;
	assert_true(logged(m, "xbzrle on: dirty"));
	assert_true(logged(m, "xbzrle cache "));
	uint64_t first = 0, most = 0;
	for (uint64_t i = 0; i < m->nrows && i < MIG_ROWS_KEPT; i++) {
		if (!first && m->rows[i].cache)
			first = m->rows[i].cache;
		most = m->rows[i].cache > most ? m->rows[i].cache : most;
	}
	printf("  cache %llu MiB first, %llu MiB at most\n", (unsigned long long)(first >> 20),
	       (unsigned long long)(most >> 20));
	assert_true(first > 0 && first < 64 * MiB);
	assert_true(most > first);
	sim_free(s);
}

/* Hot 8 MiB at 6,000 writes a second (24 MB/s) behind an 8 MiB/s cap,
 * XBZRLE off. */
static struct sim *outrunning(bool auto_converge)
{
	struct sim_cfg c = base_cfg(32, 6000, 2048);
	struct sim *s = sim_new(&c);
	assert_non_null(s);
	s->end[0].params->max_bandwidth = 8 * MiB;
	s->end[0].params->xbzrle = MIG_XBZRLE_OFF;
	s->end[0].params->auto_converge = auto_converge;
	s->end[0].params->max_iterations = 100;
	s->end[0].params->fail_unconverged = 1;
	return s;
}

/* auto-converge alone brings in a guest that outruns the link: the
 * throttle rises in steps, the switch-over fits, the throttle is lifted. */
static void test_throttle_brings_guest_in(void **st)
{
	(void)st;
	struct sim *s = outrunning(true);
	assert_int_equal(sim_migrate(s), 0);
	print_run(s, "hot 8M, 6000 writes/s at 8 MiB/s, xbzrle off, auto-converge");
	assert_completed(s);
	const struct mig_stats *m = s->end[0].stats;
	assert_true(logged(m, "throttle "));
	uint32_t most = 0;
	for (uint64_t i = 0; i < m->nrows && i < MIG_ROWS_KEPT; i++)
		most = m->rows[i].throttle > most ? m->rows[i].throttle : most;
	assert_true(most >= 20);
	assert_int_equal(m->throttle, 0); /* lifted */
	/* the switch-over decision is an estimate: within 10% of the limit */
	assert_true(m->downtime_ns <= 330 * MS);
	sim_free(s);
}

/* The same guest without auto-converge stalls and, with no-convergence
 * fail, keeps running at the source: the throttle made the difference. */
static void test_without_throttle_it_stalls(void **st)
{
	(void)st;
	struct sim *s = outrunning(false);
	sim_migrate(s);
	print_run(s, "the same without auto-converge");
	assert_int_equal(s->end[0].stats->status, MIG_FAILED);
	assert_false(logged(s->end[0].stats, "throttle "));
	assert_int_equal(s->end[0].vm.state, HV_VM_RUNNING);
	assert_int_equal(s->both_running, 0);
	sim_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_guest_moves_whole),
		cmocka_unit_test(test_converges_under_cap_with_xbzrle),
		cmocka_unit_test(test_auto_turns_xbzrle_on),
		cmocka_unit_test(test_unconverged_fails_and_keeps_guest),
		cmocka_unit_test(test_cache_resized_mid_run),
		cmocka_unit_test(test_auto_grows_cache),
		cmocka_unit_test(test_throttle_brings_guest_in),
		cmocka_unit_test(test_without_throttle_it_stalls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
