/* test_mig_policy.c: the source's migration decisions (mig_policy.h) as
 * tables of named cases: convergence against bandwidth x downtime, the
 * round limit, stall detection, avail-switchover-bandwidth and
 * max-bandwidth in the estimate, auto-converge's throttle, the
 * max-bandwidth rate limiter on a synthetic clock, and the bandwidth
 * average. XBZRLE's policy is in test_mig_xbzrle.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mig_policy.h"
#include "mig_policy_testlib.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define MIB (1ull << 20)

static struct mig_bw bw_of(double bytes_per_s)
{
	struct mig_bw bw = { 0 };
	if (bytes_per_s > 0)
		mig_bw_sample(&bw, (uint64_t)bytes_per_s, 1000 * MS); /* one second's worth */
	return bw;
}

/* ---- when to stop pre-copying ---- */

/* A sequence of rounds: dirty bytes found by each harvest, and the verdict
 * expected after the last one (every earlier one must be a plain CONTINUE,
 * with an empty why). why: the parts the last verdict's reason must hold
 * ('|'-separated); NULL: it must be empty (a plain CONTINUE). */
struct judge_case {
	const char *name;
	double bw;             /* measured, bytes/s, 0 = unknown */
	uint64_t switch_bw;    /* avail-switchover-bandwidth, 0 = none */
	uint64_t cap_bw;       /* max-bandwidth, 0 = none */
	uint64_t downtime_ns;
	uint64_t fixed_ns;
	uint32_t max_rounds;
	uint32_t stall_rounds;
	uint64_t dirty[12];
	int n;
	enum mig_verdict want;
	const char *why;
};

static const struct judge_case judge_cases[] = {
	{ "nothing dirty converges at once", 0, 0, 0, 300 * MS, 0, 0, 0, { 0 }, 1, MIG_CONVERGED, "nothing" },
	{ "fits 25 MB/s x 300 ms", 25e6, 0, 0, 300 * MS, 0, 0, 0, { 7000000 }, 1, MIG_CONVERGED,
	  "fits|7.0 MB|25.0 MB/s|300 ms" },
	{ "just over does not", 25e6, 0, 0, 300 * MS, 0, 0, 0, { 7500001, 7000000 }, 2, MIG_CONVERGED, "fits" },
	{ "just over: a plain continue with no reason", 25e6, 0, 0, 300 * MS, 0, 0, 0, { 7500001 }, 1,
	  MIG_CONTINUE, NULL },
	{ "exactly at the limit converges", 10e6, 0, 0, 100 * MS, 0, 0, 0, { 1000000 }, 1, MIG_CONVERGED, "fits" },
	{ "unknown bandwidth never converges on size", 0, 0, 0, 300 * MS, 0, 3, 0, { 4096, 4096, 4096, 4096 }, 4,
	  MIG_MAX_ROUNDS, "max-iterations|3" },
	{ "round limit: the bulk pass and 4 rounds", 1e6, 0, 0, 1 * MS, 0, 4, 0,
	  { 90 * MIB, 80 * MIB, 70 * MIB, 60 * MIB, 50 * MIB }, 5, MIG_MAX_ROUNDS,
	  "max-iterations|4" },
	{ "max_rounds 1: the first round is the last", 1e6, 0, 0, 1 * MS, 0, 1, 0, { 90 * MIB, 80 * MIB }, 2,
	  MIG_MAX_ROUNDS,
	  "max-iterations" },
	{ "max_rounds 3: the last round may still converge", 25e6, 0, 0, 300 * MS, 0, 3, 0,
	  { 90 * MIB, 80 * MIB, 1000000 }, 3, MIG_CONVERGED, "fits" },
	{ "stall after 5 rounds without a new low", 1e6, 0, 0, 1 * MS, 0, 0, 0,
	  { 50 * MIB, 40 * MIB, 41 * MIB, 45 * MIB, 40 * MIB, 42 * MIB, 43 * MIB }, 7, MIG_STALLED,
	  "stalled|5 rounds" },
	{ "a new low resets the stall count", 1e6, 0, 0, 1 * MS, 0, 9, 0,
	  { 50 * MIB, 51 * MIB, 52 * MIB, 53 * MIB, 49 * MIB, 50 * MIB, 51 * MIB, 52 * MIB, 53 * MIB, 48 * MIB }, 10,
	  MIG_MAX_ROUNDS, "max-iterations" },
	{ "stall_rounds 3: stalled on the 3rd round without a new low", 1e6, 0, 0, 1 * MS, 0, 0, 3,
	  { 50 * MIB, 40 * MIB, 41 * MIB, 40 * MIB, 45 * MIB }, 5, MIG_STALLED, "stalled|3 rounds" },
	{ "stall_rounds 3: a new low on the 3rd round resets the count", 1e6, 0, 0, 1 * MS, 0, 0, 3,
	  { 50 * MIB, 51 * MIB, 52 * MIB, 49 * MIB, 50 * MIB, 51 * MIB, 52 * MIB }, 7, MIG_STALLED, "stalled" },
	{ "stall_rounds 1: the first round without a new low stalls", 1e6, 0, 0, 1 * MS, 0, 0, 1,
	  { 50 * MIB, 50 * MIB }, 2, MIG_STALLED, "stalled|1 rounds" },
	{ "stall_rounds 8: 5 rounds without a new low are not a stall", 1e6, 0, 0, 1 * MS, 0, 0, 8,
	  { 50 * MIB, 51 * MIB, 52 * MIB, 53 * MIB, 54 * MIB, 55 * MIB, 56 * MIB, 57 * MIB, 58 * MIB }, 9,
	  MIG_STALLED, "stalled|8 rounds" },
	{ "fixed cost shrinks the budget", 25e6, 0, 0, 300 * MS, 200 * MS, 0, 0, { 3000000, 2500000 }, 2,
	  MIG_CONVERGED, "fits|100 ms" },
	{ "fixed cost over the limit: only zero converges", 25e6, 0, 0, 300 * MS, 400 * MS, 3, 0, { 4096, 4096, 0 },
	  3, MIG_CONVERGED, "nothing" },
	{ "fixed cost at the limit: one byte on a 10 GB/s link does not fit", 0, 10000000000ull, 0, 300 * MS,
	  300 * MS, 0, 0, { 1, 0 }, 2, MIG_CONVERGED, "nothing" },
	{ "shrinking dirty set converges", 25e6, 0, 0, 300 * MS, 0, 0, 0, { 64 * MIB, 32 * MIB, 16 * MIB, 6 * MIB },
	  4, MIG_CONVERGED, "fits" },
	/* avail-switchover-bandwidth and max-bandwidth */
	{ "1 MB/s measured: 20 MB does not fit 300 ms", 1e6, 0, 0, 300 * MS, 0, 0, 0, { 20000000 }, 1, MIG_CONTINUE,
	  NULL },
	{ "avail-switchover-bandwidth 100 MB/s: 20 MB fits where 1 MB/s measured would not", 1e6, 100000000, 0,
	  300 * MS, 0, 0, 0, { 20000000 }, 1, MIG_CONVERGED, "fits|100 MB/s|avail-switchover-bandwidth" },
	{ "avail-switchover-bandwidth with nothing measured converges", 0, 100000000, 0, 300 * MS, 0, 0, 0,
	  { 20000000 }, 1, MIG_CONVERGED, "fits|avail-switchover-bandwidth" },
	{ "avail-switchover-bandwidth lower than measured is used", 100e6, 10000000, 0, 300 * MS, 0, 0, 0,
	  { 20000000 }, 1, MIG_CONTINUE, NULL },
	{ "max-bandwidth caps avail-switchover-bandwidth", 0, 100000000, 10000000, 300 * MS, 0, 0, 0, { 20000000 },
	  1, MIG_CONTINUE, NULL },
	{ "max-bandwidth caps it, what fits the cap converges", 0, 100000000, 10000000, 300 * MS, 0, 0, 0,
	  { 20000000, 3000000 }, 2, MIG_CONVERGED, "fits|10.0 MB/s" },
	{ "max-bandwidth caps the measured link", 100e6, 0, 10000000, 300 * MS, 0, 0, 0, { 20000000 }, 1,
	  MIG_CONTINUE, NULL },
	{ "max-bandwidth above the link changes nothing", 25e6, 0, 100000000, 300 * MS, 0, 0, 0, { 7000000 }, 1,
	  MIG_CONVERGED, "fits|25.0 MB/s" },
	{ "max-bandwidth alone is no bandwidth: unknown stays unknown", 0, 0, 10000000, 300 * MS, 0, 2, 0,
	  { 4096, 4000, 3900 }, 3, MIG_MAX_ROUNDS, "max-iterations" },
};

static void test_judge(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(judge_cases) / sizeof(judge_cases[0]); c++) {
		const struct judge_case *k = &judge_cases[c];
		struct mig_policy p = { .downtime_ns = k->downtime_ns, .fixed_ns = k->fixed_ns,
					.switch_bw = k->switch_bw, .cap_bw = k->cap_bw,
					.max_rounds = k->max_rounds, .stall_rounds = k->stall_rounds };
		struct mig_bw bw = bw_of(k->bw);
		for (int i = 0; i < k->n; i++) {
			strcpy(p.why, "stale");
			enum mig_verdict v = mig_policy_judge(&p, &bw, k->dirty[i]);
			bool last = i == k->n - 1;
			enum mig_verdict want = last ? k->want : MIG_CONTINUE;
			const char *why = last ? k->why : NULL;
			if (v != want) {
				print_error("case '%s' round %d: expected %s, got %s (%s)\n", k->name, i,
					    mig_verdict_name(want), mig_verdict_name(v), p.why);
				fail();
			}
			if (why ? !p.why[0] || !why_has(p.why, why) : p.why[0] != 0) {
				print_error("case '%s' round %d: expected why %s%s%s, got '%s'\n", k->name, i,
					    why ? "holding '" : "empty", why ? why : "", why ? "'" : "", p.why);
				fail();
			}
			if (p.rounds != (uint32_t)i + 1) {
				print_error("case '%s' round %d: rounds counted %u\n", k->name, i, p.rounds);
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
	assert_int_equal(r, MIG_POLICY_MAX_ROUNDS + 1); /* after the bulk pass and each round */
	assert_non_null(strstr(p.why, "max-iterations"));
}

static void test_default_stall_rounds(void **state)
{
	(void)state;
	struct mig_policy p = { .downtime_ns = 1 };
	struct mig_bw bw = bw_of(1e6);
	enum mig_verdict v = MIG_CONTINUE;
	uint32_t r = 0;
	/* Never a new low after the first. */
	while (v == MIG_CONTINUE && r < 1000) {
		v = mig_policy_judge(&p, &bw, 1ull << 30);
		r++;
	}
	assert_int_equal(v, MIG_STALLED);
	assert_int_equal(r, 1 + MIG_POLICY_STALL_ROUNDS);
}

static void test_verdict_names(void **state)
{
	(void)state;
	assert_string_equal(mig_verdict_name(MIG_CONTINUE), "continue");
	assert_string_equal(mig_verdict_name(MIG_CONVERGED), "converged");
	assert_string_equal(mig_verdict_name(MIG_MAX_ROUNDS), "max-iterations");
	assert_string_equal(mig_verdict_name(MIG_STALLED), "stalled");
}

/* ---- the bandwidth the switch-over uses ---- */

struct swbw_case {
	const char *name;
	double measured;       /* 0 = nothing measured */
	uint64_t switch_bw, cap_bw;
	double want_bw;
	uint64_t want_ns;      /* the downtime for 10 MB with a 5 ms fixed cost */
};

static const struct swbw_case swbw_cases[] = {
	{ "nothing measured, no override: unknown", 0, 0, 0, 0, UINT64_MAX },
	{ "measured only", 25e6, 0, 0, 25e6, 405 * MS },
	{ "avail-switchover-bandwidth over a slower measurement", 25e6, 100000000, 0, 100e6, 105 * MS },
	{ "avail-switchover-bandwidth under a faster measurement", 100e6, 10000000, 0, 10e6, 1005 * MS },
	{ "avail-switchover-bandwidth with nothing measured", 0, 50000000, 0, 50e6, 205 * MS },
	{ "max-bandwidth caps the measured link", 100e6, 0, 40000000, 40e6, 255 * MS },
	{ "max-bandwidth caps avail-switchover-bandwidth", 0, 100000000, 40000000, 40e6, 255 * MS },
	{ "max-bandwidth above the link changes nothing", 25e6, 0, 100000000, 25e6, 405 * MS },
	{ "max-bandwidth above avail-switchover-bandwidth changes nothing", 1e6, 50000000, 100000000, 50e6,
	  205 * MS },
	{ "max-bandwidth alone: still unknown", 0, 0, 40000000, 0, UINT64_MAX },
};

static void test_switchover_bandwidth(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(swbw_cases) / sizeof(swbw_cases[0]); c++) {
		const struct swbw_case *k = &swbw_cases[c];
		struct mig_policy p = { .downtime_ns = 300 * MS, .fixed_ns = 5 * MS, .switch_bw = k->switch_bw,
					.cap_bw = k->cap_bw };
		struct mig_bw bw = bw_of(k->measured);
		double got = mig_policy_bandwidth(&p, &bw);
		uint64_t ns = mig_policy_downtime_ns(&p, &bw, 10000000);
		if (got < k->want_bw * 0.9999 || got > k->want_bw * 1.0001 || ns != k->want_ns) {
			print_error("case '%s': expected %.0f B/s and %llu ns, got %.0f B/s and %llu ns\n", k->name,
				    k->want_bw, (unsigned long long)k->want_ns, got, (unsigned long long)ns);
			fail();
		}
	}
}

/* ---- auto-converge ---- */

#define T_INITIAL 20
#define T_INCREMENT 10
#define T_MAX 40

/* A stall inside mig_policy_judge with a throttle (initial 20, increment
 * 10, max 40) or without; stall_rounds 2, and nothing ever fits. */
struct judge_step {
	uint64_t dirty;
	enum mig_verdict want;
	uint32_t pct;          /* the throttle after the verdict */
	const char *why;       /* parts the reason must hold; "": empty; NULL ends the steps */
};

struct throttle_judge_case {
	const char *name;
	bool throttle;         /* false: p->throttle is NULL */
	bool enabled;
	uint32_t pct;          /* the throttle before the first round */
	struct judge_step steps[12];
};

static const struct throttle_judge_case throttle_judge_cases[] = {
	{ "each stall raises the throttle, 20 then 30 then 40, then stalled at the maximum", true, true, 0,
	  { { 50 * MIB, MIG_CONTINUE, 0, "" },
	    { 50 * MIB, MIG_CONTINUE, 0, "" },
	    { 50 * MIB, MIG_CONTINUE, 20, "throttle 20%" },
	    { 50 * MIB, MIG_CONTINUE, 20, "" }, /* the count started over */
	    { 50 * MIB, MIG_CONTINUE, 30, "throttle 30%" },
	    { 49 * MIB, MIG_CONTINUE, 30, "" }, /* a new low */
	    { 49 * MIB, MIG_CONTINUE, 30, "" },
	    { 49 * MIB, MIG_CONTINUE, 40, "throttle 40%" },
	    { 49 * MIB, MIG_CONTINUE, 40, "" },
	    { 49 * MIB, MIG_STALLED, 40, "stalled|maximum|40%" } } },
	{ "the dirty bytes at the throttle step are the new mark to beat", true, true, 0,
	  { { 50 * MIB, MIG_CONTINUE, 0, "" },
	    { 60 * MIB, MIG_CONTINUE, 0, "" },
	    { 70 * MIB, MIG_CONTINUE, 20, "throttle 20%" },
	    { 65 * MIB, MIG_CONTINUE, 20, "" }, /* under 70: a new low, though over 50 */
	    { 66 * MIB, MIG_CONTINUE, 20, "" },
	    { 66 * MIB, MIG_CONTINUE, 30, "throttle 30%" } } },
	{ "throttle disabled: stalled as without one", true, false, 0,
	  { { 50 * MIB, MIG_CONTINUE, 0, "" },
	    { 50 * MIB, MIG_CONTINUE, 0, "" },
	    { 50 * MIB, MIG_STALLED, 0, "stalled|no new low for 2 rounds" } } },
	{ "no throttle (NULL): stalled", false, false, 0,
	  { { 50 * MIB, MIG_CONTINUE, 0, "" },
	    { 50 * MIB, MIG_CONTINUE, 0, "" },
	    { 50 * MIB, MIG_STALLED, 0, "stalled|no new low for 2 rounds" } } },
	{ "throttle already at its maximum: stalled at the first stall", true, true, T_MAX,
	  { { 50 * MIB, MIG_CONTINUE, T_MAX, "" },
	    { 50 * MIB, MIG_CONTINUE, T_MAX, "" },
	    { 50 * MIB, MIG_STALLED, T_MAX, "stalled|maximum|40%" } } },
	{ "throttle raised by auto-converge before: the stall takes the next step", true, true, 30,
	  { { 50 * MIB, MIG_CONTINUE, 30, "" },
	    { 50 * MIB, MIG_CONTINUE, 30, "" },
	    { 50 * MIB, MIG_CONTINUE, 40, "throttle 40%" } } },
};

static void test_judge_throttle(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(throttle_judge_cases) / sizeof(throttle_judge_cases[0]); c++) {
		const struct throttle_judge_case *k = &throttle_judge_cases[c];
		struct mig_throttle t = { .enabled = k->enabled, .initial = T_INITIAL, .increment = T_INCREMENT,
					  .max = T_MAX, .pct = k->pct };
		struct mig_policy p = { .downtime_ns = 1 * MS, .stall_rounds = 2, .throttle = k->throttle ? &t : NULL };
		struct mig_bw bw = bw_of(1e6);
		for (int i = 0; i < 12 && k->steps[i].why; i++) {
			const struct judge_step *s = &k->steps[i];
			strcpy(p.why, "stale");
			enum mig_verdict v = mig_policy_judge(&p, &bw, s->dirty);
			if (v != s->want || t.pct != s->pct) {
				print_error("case '%s' round %d: expected %s at %u%%, got %s at %u%% (%s)\n", k->name, i,
					    mig_verdict_name(s->want), s->pct, mig_verdict_name(v), t.pct, p.why);
				fail();
			}
			if (s->why[0] ? !why_has(p.why, s->why) : p.why[0] != 0) {
				print_error("case '%s' round %d: expected why '%s', got '%s'\n", k->name, i, s->why,
					    p.why);
				fail();
			}
		}
	}
}

/* mig_policy_throttle: a round that dirtied dirtied of sent. */
struct throttle_step {
	uint64_t dirtied, sent;
	bool changed;
	uint32_t pct;
	const char *why;       /* parts the reason must hold when changed; NULL ends the steps */
};

struct throttle_case {
	const char *name;
	bool enabled;
	uint32_t initial, increment, max;
	struct throttle_step steps[16];
};

#define HIGH { 60, 100, false, 0, "" }

static const struct throttle_case throttle_cases[] = {
	{ "one round over 50% does nothing", true, 20, 10, 45, { HIGH, { 10, 100, false, 0, "" } } },
	{ "two rounds in a row over 50% raise it to the initial", true, 20, 10, 45,
	  { HIGH, { 60, 100, true, 20, "throttle 20%" } } },
	{ "exactly 50% is not over", true, 20, 10, 45,
	  { { 50, 100, false, 0, "" }, { 50, 100, false, 0, "" }, { 50, 100, false, 0, "" } } },
	{ "a round at 51% is over", true, 20, 10, 45, { { 51, 100, false, 0, "" }, { 51, 100, true, 20, "20%" } } },
	{ "a low round in between starts the count over", true, 20, 10, 45,
	  { HIGH, { 40, 100, false, 0, "" }, HIGH, { 60, 100, true, 20, "throttle 20%" } } },
	{ "the round that raised it starts the count over", true, 20, 10, 45,
	  { HIGH, { 60, 100, true, 20, "20%" }, { 60, 100, false, 20, "" }, { 60, 100, true, 30, "30%" } } },
	{ "steps by the increment and stops at the maximum", true, 20, 10, 45,
	  { HIGH, { 60, 100, true, 20, "throttle 20%" },
	    { 60, 100, false, 20, "" }, { 60, 100, true, 30, "throttle 30%" },
	    { 60, 100, false, 30, "" }, { 60, 100, true, 40, "throttle 40%" },
	    { 60, 100, false, 40, "" }, { 60, 100, true, 45, "throttle 45%" },
	    { 60, 100, false, 45, "" }, { 60, 100, false, 45, "" }, { 60, 100, false, 45, "" } } },
	{ "an initial above the maximum is clamped to it", true, 50, 10, 40,
	  { HIGH, { 60, 100, true, 40, "throttle 40%" }, { 60, 100, false, 40, "" }, { 60, 100, false, 40, "" } } },
	{ "nothing sent but something dirtied is over", true, 20, 10, 45,
	  { { 1, 0, false, 0, "" }, { 1, 0, true, 20, "20%" } } },
	{ "large rounds: 3 GB dirtied of 4 GB sent", true, 20, 10, 45,
	  { { 3000000000ull, 4000000000ull, false, 0, "" }, { 3000000000ull, 4000000000ull, true, 20, "20%" } } },
	{ "disabled: never changes", false, 20, 10, 45, { HIGH, HIGH, HIGH, HIGH, HIGH } },
};

static void test_throttle(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(throttle_cases) / sizeof(throttle_cases[0]); c++) {
		const struct throttle_case *k = &throttle_cases[c];
		struct mig_throttle t = { .enabled = k->enabled, .initial = k->initial, .increment = k->increment,
					  .max = k->max };
		for (int i = 0; i < 16 && k->steps[i].why; i++) {
			const struct throttle_step *s = &k->steps[i];
			char why[MIG_POLICY_WHY] = "stale";
			bool changed = mig_policy_throttle(&t, s->dirtied, s->sent, why, sizeof(why));
			if (changed != s->changed || t.pct != s->pct) {
				print_error("case '%s' round %d: expected changed=%d at %u%%, got changed=%d at %u%%\n",
					    k->name, i, s->changed, s->pct, changed, t.pct);
				fail();
			}
			if (changed && (!why[0] || !why_has(why, s->why))) {
				print_error("case '%s' round %d: expected why '%s', got '%s'\n", k->name, i, s->why,
					    why);
				fail();
			}
		}
	}
	char why[MIG_POLICY_WHY] = "";
	for (int i = 0; i < 4; i++)
		assert_false(mig_policy_throttle(NULL, 60, 100, why, sizeof(why)));
}

/* ---- max-bandwidth ---- */

static void test_rate_unlimited(void **state)
{
	(void)state;
	struct mig_rate r = { 0 };
	size_t wants[] = { 0, 1, 1448, 64 << 10, 1u << 30, SIZE_MAX };
	for (uint64_t t = 0; t < 3; t++) {
		for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
			assert_true(mig_rate_allow(&r, t * MS, wants[i]) == wants[i]);
			mig_rate_spend(&r, wants[i]);
		}
	}
	/* A cap lifted with mig_rate_set(0) is unlimited at once, even in debt. */
	mig_rate_set(&r, 1000000, 10 * MS);
	assert_true(mig_rate_allow(&r, 20 * MS, 1u << 30) == 10000);
	mig_rate_spend(&r, 10000);
	mig_rate_set(&r, 0, 20 * MS);
	assert_true(mig_rate_allow(&r, 20 * MS, SIZE_MAX) == SIZE_MAX);
	assert_true(mig_rate_allow(&r, 20 * MS, 5) == 5);
}

/* The bucket starts empty, fills at the cap, holds MIG_RATE_BURST_NS worth. */
static void test_rate_bucket(void **state)
{
	(void)state;
	struct mig_rate r = { 0 };
	mig_rate_set(&r, 1000000, 5 * SEC);
	assert_true(mig_rate_allow(&r, 5 * SEC, 1u << 30) == 0);
	assert_true(mig_rate_allow(&r, 5 * SEC + 1 * MS, 1u << 30) == 1000);
	assert_true(mig_rate_allow(&r, 5 * SEC + 1 * MS, 300) == 300); /* never more than asked */
	mig_rate_spend(&r, 300);
	assert_true(mig_rate_allow(&r, 5 * SEC + 1 * MS, 1u << 30) == 700);
	/* Idle for long: no more than the burst. */
	assert_true(mig_rate_allow(&r, 60 * SEC, 1u << 30) == 1000000 * MIG_RATE_BURST_NS / SEC);
	/* The smallest cap's burst still holds a full segment. */
	mig_rate_set(&r, MIG_RATE_MIN, 0);
	assert_true(mig_rate_allow(&r, 10 * SEC, 1448) == 1448);
}

/* A sender on a synthetic clock: asks for want every every_ns while busy
 * (busy_ms on, idle_ms off; idle_ms 0: always busy), hands TCP what it is
 * allowed (spend 1), half of it (2), or only a whole want (0: segments
 * that cannot be split). */
struct rate_case {
	const char *name;
	uint64_t cap;
	uint64_t every_ns;
	uint32_t busy_ms, idle_ms;
	size_t want;
	int spend;
};

static const struct rate_case rate_cases[] = {
	{ "as much as it can every 1 ms, 10 MB/s", 10000000, 1 * MS, 0, 0, 1u << 30, 1 },
	{ "as much as it can every 1 ms, 1 Gbit/s", 125000000, 1 * MS, 0, 0, SIZE_MAX, 1 },
	{ "64 KiB asks every 1 ms, 10 MB/s", 10000000, 1 * MS, 0, 0, 64 << 10, 1 },
	{ "every 7 ms, 10 MB/s", 10000000, 7 * MS, 0, 0, 1u << 30, 1 },
	{ "every 250 us, an odd cap", 3333333, 250000, 0, 0, 1u << 30, 1 },
	{ "every 8 ms (under the burst), 1 MB/s", 1000000, 8 * MS, 0, 0, 1u << 30, 1 },
	{ "bursts of 200 ms after 300 ms idle", 10000000, 1 * MS, 200, 300, 1u << 30, 1 },
	{ "bursts of 5 ms after 995 ms idle", 10000000, 1 * MS, 5, 995, 1u << 30, 1 },
	{ "bursts of 1.5 s after 1.7 s idle", 10000000, 1 * MS, 1500, 1700, 1u << 30, 1 },
	{ "TCP takes half of what is allowed", 10000000, 1 * MS, 0, 0, 1u << 30, 2 },
	{ "small asks under the cap get them all", 1000000, 1 * MS, 0, 0, 500, 1 },
	{ "whole 1448-byte segments at the smallest cap", MIG_RATE_MIN, 1 * MS, 0, 0, 1448, 0 },
	{ "whole 64 KiB segments at 10 MB/s", 10000000, 1 * MS, 0, 0, 64 << 10, 0 },
	{ "whole 64 KiB segments every 7 ms after idle", 10000000, 7 * MS, 300, 700, 64 << 10, 0 },
};

#define RUN_MS 10000

/* The sent bytes in every 1-second window of sent[from..to) (1 ms
 * buckets, slid by 1 ms) within 5% of cap; false with the first that is not. */
static bool windows_ok(const char *name, const uint64_t *sent, uint32_t from, uint32_t to, uint64_t cap)
{
	uint64_t sum = 0;
	for (uint32_t i = from; i < to; i++) {
		sum += sent[i];
		if (i >= from + 1000)
			sum -= sent[i - 1000];
		if (i + 1 >= from + 1000 && (double)sum > 1.05 * (double)cap) {
			print_error("case '%s': %llu bytes in the second ending at %u ms, cap %llu B/s\n", name,
				    (unsigned long long)sum, i + 1, (unsigned long long)cap);
			return false;
		}
	}
	return true;
}

static void test_rate_limit(void **state)
{
	(void)state;
	static uint64_t sent[RUN_MS];
	for (size_t c = 0; c < sizeof(rate_cases) / sizeof(rate_cases[0]); c++) {
		const struct rate_case *k = &rate_cases[c];
		struct mig_rate r = { 0 };
		mig_rate_set(&r, k->cap, 0);
		memset(sent, 0, sizeof(sent));
		uint64_t total = 0, demand = 0;
		for (uint64_t t = 0; t < RUN_MS * MS; t += k->every_ns) {
			uint32_t ms = (uint32_t)(t / MS);
			if (k->idle_ms && ms % (k->busy_ms + k->idle_ms) >= k->busy_ms)
				continue;
			size_t a = mig_rate_allow(&r, t, k->want);
			if (a > k->want) {
				print_error("case '%s' at %llu ns: allowed %zu of %zu\n", k->name, (unsigned long long)t,
					    a, k->want);
				fail();
			}
			size_t s = k->spend == 0 ? (a == k->want ? a : 0) : a / (size_t)k->spend;
			mig_rate_spend(&r, s);
			sent[ms] += s;
			total += s;
			demand += k->want > k->cap ? k->cap : k->want; /* saturating: want can be SIZE_MAX */
		}
		if (!windows_ok(k->name, sent, 0, RUN_MS, k->cap))
			fail();
		/* It does not starve: the cap for the time it was busy, or all it
		 * asked for when that is less. */
		uint32_t busy = 0;
		for (uint32_t ms = 0; ms < RUN_MS; ms++)
			busy += !k->idle_ms || ms % (k->busy_ms + k->idle_ms) < k->busy_ms;
		double could = (double)k->cap * busy / 1000;
		if ((double)demand < could)
			could = (double)demand;
		if ((double)total < 0.95 * could) {
			print_error("case '%s': %llu bytes in %u busy ms, expected at least 95%% of %.0f\n", k->name,
				    (unsigned long long)total, busy, could);
			fail();
		}
	}
}

/* A new cap takes effect at once: down, up, off and on again. The sender
 * asks for up to 256 KiB (a TCP window) half a millisecond into each ms
 * and TCP takes half of what it hands at once, the rest at the start of
 * the next ms: across a mig_rate_set, after the new cap. */
static void test_rate_set(void **state)
{
	(void)state;
	static uint64_t sent[RUN_MS];
	static const struct {
		uint32_t at_ms;
		uint64_t cap; /* 0: unlimited */
	} caps[] = { { 0, 100000000 }, { 2000, 1000000 }, { 4000, 50000000 }, { 6000, 0 }, { 7000, 2000000 },
		     { 9000, 20000000 } };
	const size_t ncaps = sizeof(caps) / sizeof(caps[0]);
	const size_t want = 256 << 10;
	struct mig_rate r = { 0 };
	memset(sent, 0, sizeof(sent));
	size_t next = 0, pending = 0;
	for (uint32_t ms = 0; ms < RUN_MS; ms++) {
		uint64_t t = ms * MS;
		if (next < ncaps && caps[next].at_ms == ms) {
			mig_rate_set(&r, caps[next].cap, t);
			/* at once: an empty bucket (or no limit) */
			assert_true(mig_rate_allow(&r, t, want) == (caps[next].cap ? 0 : want));
			next++;
		}
		mig_rate_spend(&r, pending);
		size_t a = mig_rate_allow(&r, t + MS / 2, want);
		if (a > want) {
			print_error("at %u.5 ms: allowed %zu of %zu\n", ms, a, want);
			fail();
		}
		sent[ms] += a; /* counted when allowed */
		mig_rate_spend(&r, a / 2);
		pending = a - a / 2;
	}
	for (size_t i = 0; i < ncaps; i++) {
		uint32_t from = caps[i].at_ms, to = i + 1 < ncaps ? caps[i + 1].at_ms : RUN_MS;
		if (!caps[i].cap)
			continue;
		if (!windows_ok("mig_rate_set", sent, from, to, caps[i].cap))
			fail();
		/* the new cap from its first second on, neither more nor starved */
		uint64_t first = 0;
		for (uint32_t ms = from; ms < from + 1000; ms++)
			first += sent[ms];
		if ((double)first > 1.05 * (double)caps[i].cap || (double)first < 0.9 * (double)caps[i].cap) {
			print_error("cap %llu B/s set at %u ms: %llu bytes in its first second\n",
				    (unsigned long long)caps[i].cap, from, (unsigned long long)first);
			fail();
		}
	}
	/* unlimited between 6 and 7 s: all it asked for */
	for (uint32_t ms = 6000; ms < 7000; ms++)
		assert_true(sent[ms] == want);
}

/* ---- the bandwidth average ---- */

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
		cmocka_unit_test(test_default_stall_rounds),
		cmocka_unit_test(test_verdict_names),
		cmocka_unit_test(test_switchover_bandwidth),
		cmocka_unit_test(test_judge_throttle),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_rate_unlimited),
		cmocka_unit_test(test_rate_bucket),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_rate_set),
		cmocka_unit_test(test_bandwidth),
		cmocka_unit_test(test_downtime_estimate),
		cmocka_unit_test(test_expected_bytes),
	};
	return cmocka_run_group_tests_name("mig_policy", tests, NULL, NULL);
}
