/* test_mig_xbzrle.c: XBZRLE's policy (mig_policy.h) as sequences of
 * rounds: on, off and auto; auto turning on past half the link with a
 * cache sized to the dirty set, growing while it pays, off on low hits or
 * overflows, on again after a backoff; a budget changed on the way; the
 * whole budget at once (x-xbzrle-auto-fit off); and the operator's
 * changes during a migration (mig_policy_xbzrle_retune). */
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

#define MIB (1ull << 20)

#define LINK 25e6              /* the link, bytes/s */
#define ZERO_BUDGET UINT64_MAX /* a step's budget: set xbzrle-cache-size 0 */
#define SET_MODE(m) ((int)(m) + 1)

/* One round: what it told, the link, and the decision expected after it.
 * why: parts the reason must hold for an action other than KEEP. budget:
 * a new xbzrle-cache-size before the round (0: unchanged); mode: a new
 * mode, SET_MODE(m) (0: unchanged). */
struct xb_step {
	bool valid;
	struct mig_xbz_round r;
	double bw;
	enum mig_xbz_action want;
	bool on;
	uint64_t size;
	const char *why;
	uint64_t budget;
	int mode;
};

#define STEP(round, bw, act, on, size, why) { true, round, bw, act, on, size, why, 0, 0 }
#define STEP_BUDGET(budget, round, bw, act, on, size, why) { true, round, bw, act, on, size, why, budget, 0 }
#define STEP_MODE(mode, round, bw, act, on, size, why) { true, round, bw, act, on, size, why, 0, SET_MODE(mode) }

/* The guest's dirty rate and its dirty set; the cache's record over the round. */
#define ROUND(rate, dirty) { .dirty_bytes_per_s = (rate), .dirty_bytes = (dirty) }
#define OUTRUN(dirty) ROUND(50e6, dirty)           /* twice the link */
#define KEEPUP ROUND(5e6, 10000000)                  /* a fifth of it */
#define CACHE(h, l, o, f) { .dirty_bytes_per_s = 50e6, .dirty_bytes = 10000000, .hits = (h), .lookups = (l), \
			    .overflows = (o), .full = (f) }
#define FRESH CACHE(0, 0, 0, false)                  /* the round after the cache was made */

/* The first round of many cases: 10 MB dirty, twice the link: on with
 * 12 MiB (10 MB + 25% = 12.5 MB, in whole MiB). */
#define ON_12 STEP(OUTRUN(10000000), LINK, MIG_XBZ_ON, true, 12 * MIB, "xbzrle on")
/* ... 1 MiB dirty: on with MIG_POLICY_MIN_CACHE. */
#define ON_4 STEP(OUTRUN(1 * MIB), LINK, MIG_XBZ_ON, true, 4 * MIB, "xbzrle on")
#define KEEP_OFF(round) { true, round, LINK, MIG_XBZ_KEEP, false, 0, NULL, 0, 0 }

struct xb_case {
	const char *name;
	enum mig_xbzrle_mode mode;
	uint64_t budget;
	struct xb_step steps[24];
};

static const struct xb_case xb_cases[] = {
	/* OFF */
	{ "off: never on, even when the guest outruns the link", MIG_XBZRLE_OFF, 64 * MIB,
	  { KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(100 * MIB)), KEEP_OFF(CACHE(0, 100000, 0, true)),
	    KEEP_OFF(OUTRUN(10000000)) } },
	{ "off: turning the capability off drops a cache that is on", MIG_XBZRLE_ON, 64 * MIB,
	  { STEP(KEEPUP, LINK, MIG_XBZ_ON, true, 64 * MIB, "xbzrle on"),
	    STEP_MODE(MIG_XBZRLE_OFF, CACHE(900, 1000, 0, true), LINK, MIG_XBZ_OFF, false, 0, "capability off"),
	    KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)) } },
	/* ON */
	{ "on: on at once at the full budget, whatever the link", MIG_XBZRLE_ON, 64 * MIB,
	  { STEP(KEEPUP, 0, MIG_XBZ_ON, true, 64 * MIB, "xbzrle on|64 MiB"),
	    STEP(FRESH, 0, MIG_XBZ_KEEP, true, 64 * MIB, NULL),
	    STEP(KEEPUP, LINK, MIG_XBZ_KEEP, true, 64 * MIB, NULL) } },
	{ "on: never off, even with no hits or all overflows", MIG_XBZRLE_ON, 64 * MIB,
	  { STEP(OUTRUN(10000000), LINK, MIG_XBZ_ON, true, 64 * MIB, "xbzrle on"),
	    STEP(CACHE(0, 100000, 0, true), LINK, MIG_XBZ_KEEP, true, 64 * MIB, NULL),
	    STEP(CACHE(0, 100000, 0, true), LINK, MIG_XBZ_KEEP, true, 64 * MIB, NULL),
	    STEP(CACHE(0, 100000, 0, true), LINK, MIG_XBZ_KEEP, true, 64 * MIB, NULL),
	    STEP(CACHE(1000, 100000, 1000, true), LINK, MIG_XBZ_KEEP, true, 64 * MIB, NULL),
	    STEP(CACHE(1000, 100000, 1000, true), LINK, MIG_XBZ_KEEP, true, 64 * MIB, NULL) } },
	{ "on: a lowered budget resizes to it at once, a raised one too", MIG_XBZRLE_ON, 64 * MIB,
	  { STEP(OUTRUN(10000000), LINK, MIG_XBZ_ON, true, 64 * MIB, "xbzrle on"),
	    STEP_BUDGET(32 * MIB, FRESH, LINK, MIG_XBZ_RESIZE, true, 32 * MIB, "32 MiB|xbzrle-cache-size"),
	    STEP(CACHE(0, 100000, 0, true), LINK, MIG_XBZ_KEEP, true, 32 * MIB, NULL),
	    STEP_BUDGET(128 * MIB, CACHE(0, 100000, 0, true), LINK, MIG_XBZ_RESIZE, true, 128 * MIB, "128 MiB"),
	    STEP(CACHE(0, 100000, 0, true), LINK, MIG_XBZ_KEEP, true, 128 * MIB, NULL) } },
	{ "on: xbzrle-cache-size 0 turns it off", MIG_XBZRLE_ON, 64 * MIB,
	  { STEP(OUTRUN(10000000), LINK, MIG_XBZ_ON, true, 64 * MIB, "xbzrle on"),
	    STEP_BUDGET(ZERO_BUDGET, FRESH, LINK, MIG_XBZ_OFF, false, 0, "xbzrle-cache-size 0"),
	    KEEP_OFF(OUTRUN(10000000)) } },
	/* AUTO: turning on */
	{ "auto: stays off while the guest dirties at most half of what the link moves", MIG_XBZRLE_AUTO, 64 * MIB,
	  { KEEP_OFF(KEEPUP), KEEP_OFF(KEEPUP), KEEP_OFF(ROUND(12.5e6, 10000000)), /* exactly half the link */
	    KEEP_OFF(KEEPUP) } },
	{ "auto: on just over half the link", MIG_XBZRLE_AUTO, 64 * MIB,
	  { KEEP_OFF(ROUND(12.5e6, 10000000)),
	    STEP(ROUND(12.6e6, 10000000), LINK, MIG_XBZ_ON, true, 12 * MIB, "xbzrle on|50% of the link") } },
	{ "auto: stays off while the bandwidth is unknown", MIG_XBZRLE_AUTO, 64 * MIB,
	  { STEP(OUTRUN(10000000), 0, MIG_XBZ_KEEP, false, 0, NULL),
	    STEP(OUTRUN(10000000), 0, MIG_XBZ_KEEP, false, 0, NULL),
	    STEP(OUTRUN(10000000), 0, MIG_XBZ_KEEP, false, 0, NULL), ON_12 } },
	{ "auto: on when the guest outruns the link, 10 MB dirty: 12 MiB", MIG_XBZRLE_AUTO, 64 * MIB,
	  { KEEP_OFF(KEEPUP),
	    STEP(OUTRUN(10000000), LINK, MIG_XBZ_ON, true, 12 * MIB,
		 "xbzrle on|dirty 50.0 MB/s|50% of the link's 25.0 MB/s|12 MiB cache|10.0 MB dirty set"),
	    STEP(FRESH, LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL) } },
	{ "auto: 8 MiB dirty: exactly 10 MiB", MIG_XBZRLE_AUTO, 64 * MIB,
	  { STEP(OUTRUN(8 * MIB), LINK, MIG_XBZ_ON, true, 10 * MIB, "10 MiB") } },
	{ "auto: 8 MiB + 4 bytes dirty: 25% more is over 10 MiB, 11 MiB", MIG_XBZRLE_AUTO, 64 * MIB,
	  { STEP(OUTRUN(8 * MIB + 4), LINK, MIG_XBZ_ON, true, 11 * MIB, "11 MiB") } },
	{ "auto: a small dirty set gets MIG_POLICY_MIN_CACHE", MIG_XBZRLE_AUTO, 64 * MIB,
	  { STEP(OUTRUN(1 * MIB), LINK, MIG_XBZ_ON, true, MIG_POLICY_MIN_CACHE, "xbzrle on") } },
	{ "auto: a dirty set over the budget gets the budget", MIG_XBZRLE_AUTO, 64 * MIB,
	  { STEP(OUTRUN(200 * MIB), LINK, MIG_XBZ_ON, true, 64 * MIB, "64 MiB") } },
	{ "auto: a budget under MIG_POLICY_MIN_CACHE is still the most", MIG_XBZRLE_AUTO, 2 * MIB,
	  { STEP(OUTRUN(1 * MIB), LINK, MIG_XBZ_ON, true, 2 * MIB, "2 MiB") } },
	/* AUTO: judging the cache */
	{ "auto: fewer than MIG_POLICY_MIN_LOOKUPS lookups: keep, whatever they say", MIG_XBZRLE_AUTO, 12 * MIB,
	  { ON_12, STEP(FRESH, LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(0, MIG_POLICY_MIN_LOOKUPS - 1, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(0, MIG_POLICY_MIN_LOOKUPS - 1, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(200, MIG_POLICY_MIN_LOOKUPS - 1, 200, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(0, MIG_POLICY_MIN_LOOKUPS, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(0, MIG_POLICY_MIN_LOOKUPS, 0, true), LINK, MIG_XBZ_OFF, false, 0, "hit rate 0%") } },
	{ "auto: a full cache doubles while each step gains MIG_POLICY_GROW_GAIN_PCT points", MIG_XBZRLE_AUTO,
	  64 * MIB,
	  { ON_4, STEP(FRESH, LINK, MIG_XBZ_KEEP, true, 4 * MIB, NULL),
	    STEP(CACHE(300, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB|hit rate 30%"),
	    STEP(CACHE(360, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 16 * MIB, "8 -> 16 MiB|36%"),   /* +6 */
	    STEP(CACHE(410, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 32 * MIB, "16 -> 32 MiB|41%"), /* +5 */
	    STEP(CACHE(440, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 32 * MIB, NULL),                   /* +3 */
	    STEP(CACHE(600, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 32 * MIB, NULL),
	    STEP(CACHE(900, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 32 * MIB, NULL) } },
	{ "auto: a first step that did not pay stops growth for good", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_4, STEP(CACHE(300, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB"),
	    STEP(CACHE(349, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL), /* +4.9: 34% */
	    STEP(CACHE(500, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL),
	    STEP(CACHE(800, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL) } },
	{ "auto: a step is judged on the next round with enough lookups", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_4, STEP(CACHE(300, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB"),
	    STEP(CACHE(0, 100, 0, true), LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL),
	    STEP(CACHE(360, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 16 * MIB, "8 -> 16 MiB") } },
	{ "auto: growth stops at the budget", MIG_XBZRLE_AUTO, 20 * MIB,
	  { ON_4, STEP(CACHE(300, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB"),
	    STEP(CACHE(400, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 16 * MIB, "8 -> 16 MiB"),
	    STEP(CACHE(500, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 20 * MIB, "16 -> 20 MiB"),
	    STEP(CACHE(600, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 20 * MIB, NULL),
	    STEP(CACHE(700, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 20 * MIB, NULL) } },
	{ "auto: a cache that is not full does not grow", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_4, STEP(CACHE(500, 1000, 0, false), LINK, MIG_XBZ_KEEP, true, 4 * MIB, NULL),
	    STEP(CACHE(500, 1000, 0, false), LINK, MIG_XBZ_KEEP, true, 4 * MIB, NULL),
	    STEP(CACHE(800, 1000, 0, false), LINK, MIG_XBZ_KEEP, true, 4 * MIB, NULL) } },
	{ "auto: a budget lowered while growing caps the next step", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_4, STEP(CACHE(300, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB"),
	    STEP_BUDGET(12 * MIB, CACHE(400, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 12 * MIB, "8 -> 12 MiB"),
	    STEP(CACHE(500, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL) } },
	{ "auto: a low hit rate with a full cache under the budget grows rather than turning off",
	  MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_4, STEP(CACHE(50, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB|hit rate 5%"),
	    STEP(CACHE(60, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL) /* +1: did not pay */,
	    STEP(CACHE(60, 1000, 0, true), LINK, MIG_XBZ_OFF, false, 0, "hit rate 6%") } },
	{ "auto: low hit rates that keep paying keep growing", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_4, STEP(CACHE(10, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB|hit rate 1%"),
	    STEP(CACHE(60, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 16 * MIB, "8 -> 16 MiB|hit rate 6%"),
	    STEP(CACHE(110, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 32 * MIB, "16 -> 32 MiB") } },
	{ "auto: a low hit rate for 2 rounds at the budget turns off", MIG_XBZRLE_AUTO, 12 * MIB,
	  { ON_12, STEP(CACHE(90, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(90, 1000, 0, true), LINK, MIG_XBZ_OFF, false, 0, "xbzrle off|hit rate 9%|12 MiB") } },
	{ "auto: a good round between low ones starts the count over", MIG_XBZRLE_AUTO, 12 * MIB,
	  { ON_12, STEP(CACHE(90, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(500, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(90, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(90, 1000, 0, true), LINK, MIG_XBZ_OFF, false, 0, "hit rate 9%") } },
	{ "auto: a hit rate of exactly MIG_POLICY_MIN_HIT_PCT is not low", MIG_XBZRLE_AUTO, 12 * MIB,
	  { ON_12, STEP(CACHE(100, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(100, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(100, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL) } },
	{ "auto: a low hit rate in a cache that is not full turns off after 2 rounds", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_12, STEP(CACHE(0, 1000, 0, false), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(0, 1000, 0, false), LINK, MIG_XBZ_OFF, false, 0, "hit rate 0%") } },
	{ "auto: overflows over half of the hits turn it off", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_12, STEP(CACHE(500, 1000, 251, false), LINK, MIG_XBZ_OFF, false, 0, "overflows|251 of 500") } },
	{ "auto: overflows over half of the hits turn off even a full cache that would grow", MIG_XBZRLE_AUTO,
	  64 * MIB, { ON_4, STEP(CACHE(500, 1000, 300, true), LINK, MIG_XBZ_OFF, false, 0, "overflows") } },
	{ "auto: overflows at exactly half of the hits keep it", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_12, STEP(CACHE(500, 1000, 250, false), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(500, 1000, 250, false), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL) } },
	/* AUTO: back on after a backoff */
	{ "auto: off for 2 rounds, then 4, then 8, each time on again when the guest outruns the link",
	  MIG_XBZRLE_AUTO, 12 * MIB,
	  { ON_12, STEP(CACHE(0, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(0, 1000, 0, true), LINK, MIG_XBZ_OFF, false, 0, "xbzrle off"),
	    KEEP_OFF(OUTRUN(10000000)), /* off 1 of 2 */
	    ON_12,                      /* the round after it ran without: 2 of 2 */
	    STEP(CACHE(500, 1000, 400, false), LINK, MIG_XBZ_OFF, false, 0, "overflows"),
	    KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)), ON_12,
	    STEP(CACHE(500, 1000, 400, false), LINK, MIG_XBZ_OFF, false, 0, "overflows"),
	    KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)),
	    KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)), KEEP_OFF(OUTRUN(10000000)),
	    KEEP_OFF(OUTRUN(10000000)), ON_12 } },
	{ "auto: after the backoff it stays off while the link keeps up", MIG_XBZRLE_AUTO, 12 * MIB,
	  { ON_12, STEP(CACHE(500, 1000, 400, false), LINK, MIG_XBZ_OFF, false, 0, "overflows"),
	    KEEP_OFF(KEEPUP), KEEP_OFF(KEEPUP), KEEP_OFF(KEEPUP), KEEP_OFF(KEEPUP),
	    STEP(OUTRUN(10000000), 0, MIG_XBZ_KEEP, false, 0, NULL), ON_12 } },
	{ "auto: after turning off, growth starts afresh", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_4, STEP(CACHE(300, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB"),
	    STEP(CACHE(310, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL), /* did not pay */
	    STEP(CACHE(500, 1000, 400, true), LINK, MIG_XBZ_OFF, false, 0, "overflows"),
	    KEEP_OFF(OUTRUN(1 * MIB)), ON_4, STEP(FRESH, LINK, MIG_XBZ_KEEP, true, 4 * MIB, NULL),
	    STEP(CACHE(300, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "4 -> 8 MiB"),
	    STEP(CACHE(400, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 16 * MIB, "8 -> 16 MiB") } },
	{ "auto: after turning off, the low count starts afresh", MIG_XBZRLE_AUTO, 12 * MIB,
	  { ON_12, STEP(CACHE(0, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(500, 1000, 400, true), LINK, MIG_XBZ_OFF, false, 0, "overflows"),
	    KEEP_OFF(OUTRUN(10000000)), ON_12, STEP(CACHE(0, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 12 * MIB, NULL),
	    STEP(CACHE(0, 1000, 0, true), LINK, MIG_XBZ_OFF, false, 0, "hit rate 0%") } },
	/* AUTO: xbzrle-cache-size changed */
	{ "auto: a budget lowered below the size resizes at once", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_12, STEP_BUDGET(8 * MIB, FRESH, LINK, MIG_XBZ_RESIZE, true, 8 * MIB, "8 MiB|xbzrle-cache-size"),
	    STEP(FRESH, LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL),
	    STEP_BUDGET(10 * MIB, CACHE(900, 1000, 0, false), LINK, MIG_XBZ_KEEP, true, 8 * MIB, NULL) } },
	{ "auto: a budget lowered below the size resizes even with a good full cache", MIG_XBZRLE_AUTO, 64 * MIB,
	  { ON_12, STEP_BUDGET(4 * MIB, CACHE(900, 1000, 0, true), LINK, MIG_XBZ_RESIZE, true, 4 * MIB, "4 MiB"),
	    STEP(CACHE(900, 1000, 0, true), LINK, MIG_XBZ_KEEP, true, 4 * MIB, NULL) } },
	{ "auto: a budget lowered while off caps the next cache", MIG_XBZRLE_AUTO, 64 * MIB,
	  { KEEP_OFF(KEEPUP), STEP_BUDGET(6 * MIB, OUTRUN(10000000), LINK, MIG_XBZ_ON, true, 6 * MIB, "6 MiB") } },
};

static void test_xbzrle(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(xb_cases) / sizeof(xb_cases[0]); c++) {
		const struct xb_case *k = &xb_cases[c];
		struct mig_xbz x = { .mode = k->mode, .budget = k->budget, .fit = true };
		for (int i = 0; i < 24 && k->steps[i].valid; i++) {
			const struct xb_step *s = &k->steps[i];
			if (s->budget)
				x.budget = s->budget == ZERO_BUDGET ? 0 : s->budget;
			if (s->mode)
				x.mode = (enum mig_xbzrle_mode)(s->mode - 1);
			char why[MIG_POLICY_WHY] = "stale";
			enum mig_xbz_action a = mig_policy_xbzrle(&x, &s->r, s->bw, why, sizeof(why));
			if (a != s->want || x.on != s->on || x.size != s->size) {
				print_error("case '%s' round %d: expected action %d on=%d %llu MiB, got action %d on=%d "
					    "%llu MiB (%s)\n",
					    k->name, i, s->want, s->on, (unsigned long long)(s->size >> 20), a, x.on,
					    (unsigned long long)(x.size >> 20), why);
				fail();
			}
			if (a == MIG_XBZ_KEEP ? why[0] != 0 : !why[0] || (s->why && !why_has(why, s->why))) {
				print_error("case '%s' round %d: expected why %s'%s', got '%s'\n", k->name, i,
					    a == MIG_XBZ_KEEP ? "empty " : "", s->why ? s->why : "", why);
				fail();
			}
			if (x.on && (x.size > x.budget || x.size == 0)) {
				print_error("case '%s' round %d: on with %llu bytes, budget %llu\n", k->name, i,
					    (unsigned long long)x.size, (unsigned long long)x.budget);
				fail();
			}
		}
	}
}


/* x-xbzrle-auto-fit off: auto takes the whole budget at once, never grows. */
static void test_xbzrle_no_fit(void **state)
{
	(void)state;
	struct mig_xbz x = { .mode = MIG_XBZRLE_AUTO, .budget = 64 * MIB };
	char why[MIG_POLICY_WHY];
	struct mig_xbz_round out = OUTRUN(10000000), fresh = FRESH, full = CACHE(500, 1000, 0, true);
	assert_int_equal(mig_policy_xbzrle(&x, &out, LINK, why, sizeof(why)), MIG_XBZ_ON);
	assert_true(x.on && x.size == 64 * MIB);
	assert_null(strstr(why, "dirty set"));
	assert_int_equal(mig_policy_xbzrle(&x, &fresh, LINK, why, sizeof(why)), MIG_XBZ_KEEP);
	assert_int_equal(mig_policy_xbzrle(&x, &full, LINK, why, sizeof(why)), MIG_XBZ_KEEP); /* at the budget */
	assert_true(x.size == 64 * MIB);
}

/* The operator's changes during a migration: acted on at once, without
 * counting a round of auto's backoff. */
static void test_xbzrle_retune(void **state)
{
	(void)state;
	char why[MIG_POLICY_WHY];
	struct mig_xbz x = { .mode = MIG_XBZRLE_AUTO, .budget = 64 * MIB, .fit = true };
	/* auto and off: nothing to do now */
	assert_int_equal(mig_policy_xbzrle_retune(&x, why, sizeof(why)), MIG_XBZ_KEEP);
	assert_string_equal(why, "");
	/* on: on at the budget now */
	x.mode = MIG_XBZRLE_ON;
	assert_int_equal(mig_policy_xbzrle_retune(&x, why, sizeof(why)), MIG_XBZ_ON);
	assert_true(x.on && x.size == 64 * MIB);
	assert_non_null(strstr(why, "xbzrle on"));
	assert_int_equal(mig_policy_xbzrle_retune(&x, why, sizeof(why)), MIG_XBZ_KEEP);
	x.budget = 16 * MIB;
	assert_int_equal(mig_policy_xbzrle_retune(&x, why, sizeof(why)), MIG_XBZ_RESIZE);
	assert_true(x.size == 16 * MIB);
	/* off: off now, and no backoff (the operator's, not auto's) */
	x.mode = MIG_XBZRLE_OFF;
	assert_int_equal(mig_policy_xbzrle_retune(&x, why, sizeof(why)), MIG_XBZ_OFF);
	assert_true(!x.on && x.size == 0 && x.backoff == 0);
	assert_non_null(strstr(why, "capability off"));
	/* auto again: the next round decides, and may turn it on at once */
	x.mode = MIG_XBZRLE_AUTO;
	assert_int_equal(mig_policy_xbzrle_retune(&x, why, sizeof(why)), MIG_XBZ_KEEP);
	struct mig_xbz_round out = OUTRUN(10000000);
	assert_int_equal(mig_policy_xbzrle(&x, &out, LINK, why, sizeof(why)), MIG_XBZ_ON);
	/* auto, on, a budget lowered under its size: shrunk now */
	x.budget = 4 * MIB;
	assert_int_equal(mig_policy_xbzrle_retune(&x, why, sizeof(why)), MIG_XBZ_RESIZE);
	assert_true(x.size == 4 * MIB);
	/* auto's backoff is not a round of the operator's */
	struct mig_xbz y = { .mode = MIG_XBZRLE_AUTO, .budget = 64 * MIB, .fit = true, .backoff = 4, .off_rounds = 1 };
	for (int i = 0; i < 10; i++)
		mig_policy_xbzrle_retune(&y, why, sizeof(why));
	assert_int_equal(y.off_rounds, 1);
	assert_int_equal(y.backoff, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xbzrle),
		cmocka_unit_test(test_xbzrle_no_fit),
		cmocka_unit_test(test_xbzrle_retune),
	};
	return cmocka_run_group_tests_name("mig_xbzrle", tests, NULL, NULL);
}
