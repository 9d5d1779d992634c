/* test_mig_policy.c: the source's migration decisions (mig_policy.h) as
 * tables of named cases: convergence against bandwidth x downtime, the
 * round limit, stall detection, XBZRLE auto on/off, and the bandwidth
 * average. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mig_policy.h"

#define MS 1000000ull
#define MIB (1ull << 20)

static struct mig_bw bw_of(double bytes_per_s)
{
	struct mig_bw bw = { 0 };
	if (bytes_per_s > 0)
		mig_bw_sample(&bw, (uint64_t)bytes_per_s, 1000 * MS); /* one second's worth */
	return bw;
}

/* A sequence of rounds: dirty bytes found by each harvest, and the verdict
 * expected after the last one (every earlier one must be CONTINUE). */
struct judge_case {
	const char *name;
	double bw;             /* bytes/s, 0 = unknown */
	uint64_t downtime_ns;
	uint64_t fixed_ns;
	uint32_t max_rounds;
	uint64_t dirty[12];
	int n;
	enum mig_verdict want;
};

static const struct judge_case judge_cases[] = {
	{ "nothing dirty converges at once", 0, 300 * MS, 0, 0, { 0 }, 1, MIG_CONVERGED },
	{ "fits 25 MB/s x 300 ms", 25e6, 300 * MS, 0, 0, { 7000000 }, 1, MIG_CONVERGED },
	{ "just over does not", 25e6, 300 * MS, 0, 0, { 7500001, 7000000 }, 2, MIG_CONVERGED },
	{ "exactly at the limit converges", 10e6, 100 * MS, 0, 0, { 1000000 }, 1, MIG_CONVERGED },
	{ "unknown bandwidth never converges on size", 0, 300 * MS, 0, 3, { 4096, 4096, 4096 }, 3, MIG_MAX_ROUNDS },
	{ "round limit", 1e6, 1 * MS, 0, 4, { 90 * MIB, 80 * MIB, 70 * MIB, 60 * MIB }, 4, MIG_MAX_ROUNDS },
	{ "stall after 5 rounds without a new low", 1e6, 1 * MS, 0, 0,
	  { 50 * MIB, 40 * MIB, 41 * MIB, 45 * MIB, 40 * MIB, 42 * MIB, 43 * MIB }, 7, MIG_STALLED },
	{ "a new low resets the stall count", 1e6, 1 * MS, 0, 9,
	  { 50 * MIB, 51 * MIB, 52 * MIB, 53 * MIB, 49 * MIB, 50 * MIB, 51 * MIB, 52 * MIB, 53 * MIB }, 9,
	  MIG_MAX_ROUNDS },
	{ "fixed cost shrinks the budget", 25e6, 300 * MS, 200 * MS, 0, { 3000000, 2500000 }, 2, MIG_CONVERGED },
	{ "fixed cost over the limit: only zero converges", 25e6, 300 * MS, 400 * MS, 3, { 4096, 4096, 0 }, 3,
	  MIG_CONVERGED },
	{ "shrinking dirty set converges", 25e6, 300 * MS, 0, 0, { 64 * MIB, 32 * MIB, 16 * MIB, 6 * MIB }, 4,
	  MIG_CONVERGED },
};

static void test_judge(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(judge_cases) / sizeof(judge_cases[0]); c++) {
		const struct judge_case *k = &judge_cases[c];
		struct mig_policy p = { .downtime_ns = k->downtime_ns, .fixed_ns = k->fixed_ns,
					.max_rounds = k->max_rounds };
		struct mig_bw bw = bw_of(k->bw);
		for (int i = 0; i < k->n; i++) {
			enum mig_verdict v = mig_policy_judge(&p, &bw, k->dirty[i]);
			enum mig_verdict want = i == k->n - 1 ? k->want : MIG_CONTINUE;
			if (v != want) {
				print_error("case '%s' round %d: expected %s, got %s\n", k->name, i,
					    mig_verdict_name(want), mig_verdict_name(v));
				fail();
			}
		}
	}
}

static void test_default_round_limit(void **state)
{
	(void)state;
	struct mig_policy p = { .downtime_ns = 1 };
	struct mig_bw bw = bw_of(1.0);
	enum mig_verdict v = MIG_CONTINUE;
	uint32_t r = 0;
	/* Always a new low, so only the limit can stop it. */
	while (v == MIG_CONTINUE && r < 1000)
		v = mig_policy_judge(&p, &bw, (1ull << 40) - r++);
	assert_int_equal(v, MIG_MAX_ROUNDS);
	assert_int_equal(r, MIG_POLICY_MAX_ROUNDS);
}

struct xb_case {
	const char *name;
	enum mig_xbzrle_mode mode;
	bool on, latched;
	double dirty_rate, bw;
	uint64_t hits, lookups;
	bool want, want_latched;
};

static const struct xb_case xb_cases[] = {
	{ "off stays off", MIG_XBZRLE_OFF, false, false, 1e9, 1e6, 0, 0, false, false },
	{ "on stays on with no hits", MIG_XBZRLE_ON, true, false, 1e9, 1e6, 0, 100000, true, false },
	{ "auto: link keeps up, stays off", MIG_XBZRLE_AUTO, false, false, 5e6, 25e6, 0, 0, false, false },
	{ "auto: link too slow, turns on", MIG_XBZRLE_AUTO, false, false, 50e6, 25e6, 0, 0, true, false },
	{ "auto: unknown bandwidth, stays off", MIG_XBZRLE_AUTO, false, false, 50e6, 0, 0, 0, false, false },
	{ "auto: good hit rate keeps it", MIG_XBZRLE_AUTO, true, false, 50e6, 25e6, 900, 1000, true, false },
	{ "auto: hit rate 9% turns it off for good", MIG_XBZRLE_AUTO, true, false, 50e6, 25e6, 90, 1000, false,
	  true },
	{ "auto: hit rate 10% keeps it", MIG_XBZRLE_AUTO, true, false, 50e6, 25e6, 100, 1000, true, false },
	{ "auto: too few lookups to judge", MIG_XBZRLE_AUTO, true, false, 50e6, 25e6, 0, 255, true, false },
	{ "auto: latched off stays off", MIG_XBZRLE_AUTO, false, true, 500e6, 25e6, 0, 0, false, true },
};

static void test_xbzrle(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(xb_cases) / sizeof(xb_cases[0]); c++) {
		const struct xb_case *k = &xb_cases[c];
		struct mig_bw bw = bw_of(k->bw);
		bool latched = k->latched;
		bool got = mig_policy_xbzrle(k->mode, k->on, &latched, k->dirty_rate, &bw, k->hits, k->lookups);
		if (got != k->want || latched != k->want_latched) {
			print_error("case '%s': expected on=%d latched=%d, got on=%d latched=%d\n", k->name, k->want,
				    k->want_latched, got, latched);
			fail();
		}
	}
}

static void test_bandwidth(void **state)
{
	(void)state;
	struct mig_bw bw = { 0 };
	mig_bw_sample(&bw, 1000, 5 * MS); /* too short: ignored */
	assert_int_equal(bw.samples, 0);
	mig_bw_sample(&bw, 20000000, 1000 * MS);
	assert_true(bw.bytes_per_s > 19.99e6 && bw.bytes_per_s < 20.01e6);
	mig_bw_sample(&bw, 10000000, 1000 * MS); /* newest weighs one half */
	assert_true(bw.bytes_per_s > 14.99e6 && bw.bytes_per_s < 15.01e6);
	mig_bw_sample(&bw, 100000, 100 * MS); /* a round too small to fill the link: ignored */
	assert_int_equal(bw.samples, 2);
	mig_bw_sample(&bw, 1000000, 1000 * MS); /* a slow link pulls it down */
	assert_true(bw.bytes_per_s > 7.99e6 && bw.bytes_per_s < 8.01e6);
	assert_int_equal(bw.samples, 3);
}

/* The estimate the verdict and `info migrate` share. */
static void test_downtime_estimate(void **state)
{
	(void)state;
	struct mig_policy p = { .downtime_ns = 300 * MS, .fixed_ns = 20 * MS };
	struct mig_bw none = bw_of(0), bw = bw_of(25e6);
	assert_true(mig_policy_downtime_ns(&p, &none, 4096) == UINT64_MAX);
	assert_true(mig_policy_downtime_ns(&p, &bw, 7000000) == 300 * MS); /* 280 ms + 20 ms */
	assert_true(mig_policy_downtime_ns(&p, &bw, 0) == 20 * MS);
	assert_true(mig_policy_downtime_ns(&p, &bw, 1) == 20 * MS + 40); /* 40 ns a byte, never 0 */
	assert_int_equal(mig_policy_judge(&p, &bw, 7000000), MIG_CONVERGED);
	assert_int_equal(mig_policy_judge(&p, &bw, 7000001), MIG_CONTINUE);
}

struct exp_case {
	const char *name;
	uint64_t dirty, last_bytes, last_pages, want;
};

static const struct exp_case exp_cases[] = {
	{ "no history: raw pages", 10, 0, 0, 40960 },
	{ "raw history", 10, 4112 * 100, 100, 41120 },
	{ "xbzrle history: a few bytes a page", 4096, 94208, 4096, 94208 },
	{ "rounded up", 3, 10, 4, 8 },
	{ "nothing dirty", 0, 1000, 10, 0 },
};

static void test_expected_bytes(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(exp_cases) / sizeof(exp_cases[0]); c++) {
		const struct exp_case *k = &exp_cases[c];
		uint64_t got = mig_policy_expected_bytes(k->dirty, k->last_bytes, k->last_pages, 4096);
		if (got != k->want) {
			print_error("case '%s': expected %llu, got %llu\n", k->name, (unsigned long long)k->want,
				    (unsigned long long)got);
			fail();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_default_round_limit),
		cmocka_unit_test(test_xbzrle),
		cmocka_unit_test(test_bandwidth),
		cmocka_unit_test(test_downtime_estimate),
		cmocka_unit_test(test_expected_bytes),
	};
	return cmocka_run_group_tests_name("mig_policy", tests, NULL, NULL);
}
