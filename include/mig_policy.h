/* mig_policy.h: the source's decisions during a live migration, as pure
 * functions of what it measured: when to stop pre-copying (converged,
 * round limit, stalled), whether XBZRLE is worth it and how large its
 * cache should be (auto mode), when to throttle the guest
 * (auto-converge), the link bandwidth estimate they use, and the rate
 * limiter that holds the stream to max-bandwidth. Every decision comes
 * with its reason in words, for `info migrate`.
 *
 * Portable C (codec/mig_policy.c): no clock, no I/O; the caller passes
 * times in nanoseconds and byte counts. Built into the kernel and hosted
 * for tests/unit/test_mig_policy.c. */
#ifndef FERRY_MIG_POLICY_H
#define FERRY_MIG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_POLICY_MAX_ROUNDS 30          /* max-iterations: pre-copy rounds after the bulk pass */
#define MIG_POLICY_STALL_ROUNDS 5         /* stall-iterations: rounds without a new low = stalled */
#define MIG_POLICY_MIN_HIT_PCT 10         /* auto XBZRLE: a hit rate below this is low, % */
#define MIG_POLICY_MIN_LOOKUPS 256        /* ... judged over at least this many lookups */
#define MIG_POLICY_XBZRLE_ON_PCT 50     /* auto XBZRLE: on when the guest dirties more than this
					  * share of what the link moves (each round then shrinks
					  * the dirty set by less than half, if at all) */
#define MIG_POLICY_GROW_GAIN_PCT 5        /* auto XBZRLE: a cache step must gain this many points of hit rate */
#define MIG_POLICY_MIN_CACHE (4ull << 20) /* auto XBZRLE: the smallest cache it starts with */
#define MIG_POLICY_THROTTLE_PCT 50        /* auto-converge: a round dirtying more than this share of
					   * what it sent made no progress (QEMU's threshold) */
#define MIG_POLICY_THROTTLE_ROUNDS 2      /* ... this many rounds in a row: throttle one step */
#define MIG_POLICY_BW_MIN_NS 10000000ull  /* a bandwidth sample shorter than 10 ms is ignored */
#define MIG_POLICY_BW_MIN_BYTES (512u << 10) /* ... and one under 512 KiB: a round that small
					      * leaves the link idle and says nothing of its capacity */
#define MIG_POLICY_WHY 120                /* room for a decision's reason */

/* Bandwidth: an exponentially weighted average of samples (bytes the
 * peer acknowledged over an interval), weight 1/2 for the newest. */
struct mig_bw {
	double bytes_per_s; /* 0 until the first sample */
	uint64_t samples;
};

/* Add a sample of bytes acknowledged in ns nanoseconds. Samples shorter
 * than MIG_POLICY_BW_MIN_NS (too noisy) or smaller than
 * MIG_POLICY_BW_MIN_BYTES (the link was mostly idle) are ignored. */
void mig_bw_sample(struct mig_bw *bw, uint64_t bytes, uint64_t ns);

/* ---- max-bandwidth: a token bucket on the bytes handed to TCP ---- */

/* Tokens accrue at bytes_per_s up to MIG_RATE_BURST_NS worth, so over any
 * interval of t ns at most bytes_per_s x (t + MIG_RATE_BURST_NS) / 1e9
 * bytes are handed to TCP. What reaches the wire can bunch up behind a
 * closed receive window, so the caller also holds back while TCP has more
 * than MIG_RATE_QUEUE_NS worth queued unsent (mig_rate_queue_full): the
 * wire then carries at most bytes_per_s x (t + 2 x MIG_RATE_BURST_NS +
 * MIG_RATE_QUEUE_NS) / 1e9 over any t: 3% over the cap in the busiest
 * second, which leaves room for the emulator's jitter under the 5% the
 * operator is promised. */
#define MIG_RATE_BURST_NS 10000000ull
#define MIG_RATE_QUEUE_NS 10000000ull
#define MIG_RATE_MIN (256ull << 10)       /* the smallest cap, bytes/s: its burst holds a 1448-byte segment */

struct mig_rate {
	uint64_t bytes_per_s; /* 0: unlimited */
	uint64_t t;           /* when tokens were last added */
	double tokens;
};

/* Set the cap (0: unlimited; else at least MIG_RATE_MIN, the caller's
 * check) from now on. A new cap starts with an empty bucket; bytes allowed
 * before and spent after are owed to it. */
void mig_rate_set(struct mig_rate *r, uint64_t bytes_per_s, uint64_t now_ns);

/* How many of want bytes may go at now_ns (all of them when unlimited).
 * The caller hands at most that many to TCP and spends what it handed,
 * and asks at least every MIG_RATE_BURST_NS (or gets less than the cap:
 * ferry's main loop comes by every millisecond or so). */
size_t mig_rate_allow(struct mig_rate *r, uint64_t now_ns, size_t want);
void mig_rate_spend(struct mig_rate *r, size_t bytes);
/* With queued bytes handed to TCP and not yet sent, must the caller wait?
 * (Never when unlimited.) */
bool mig_rate_queue_full(const struct mig_rate *r, size_t queued);

/* ---- when to stop pre-copying ---- */

enum mig_xbzrle_mode {
	MIG_XBZRLE_OFF = 0,
	MIG_XBZRLE_ON = 1,
	MIG_XBZRLE_AUTO = 2,
};

enum mig_verdict {
	MIG_CONTINUE = 0,  /* another pre-copy round */
	MIG_CONVERGED,     /* what is left fits in the downtime limit */
	MIG_MAX_ROUNDS,    /* round limit reached */
	MIG_STALLED,       /* dirty bytes stopped shrinking (at the throttle's maximum, if throttling) */
};

/* auto-converge: the guest's share of the CPU taken away, in steps. */
struct mig_throttle {
	bool enabled;         /* the auto-converge capability */
	uint32_t initial, increment, max; /* cpu-throttle-initial, -increment, max-cpu-throttle, % */
	uint32_t pct;         /* now (0: not throttled) */
	uint32_t high;        /* rounds in a row that dirtied over MIG_POLICY_THROTTLE_PCT of what they sent */
};

/* State the convergence test keeps between rounds. Zero it, then set the
 * limits, to start. */
struct mig_policy {
	uint64_t downtime_ns;   /* downtime limit */
	uint64_t fixed_ns;      /* switch-over time that does not depend on the dirty
				 * bytes (whole-memory digests, the verdict): taken
				 * off the limit before comparing */
	uint64_t switch_bw;     /* avail-switchover-bandwidth, bytes/s: used instead
				 * of the measured bandwidth when set (0: measured) */
	uint64_t cap_bw;        /* max-bandwidth, bytes/s (0: none): the switch-over
				 * cannot send faster */
	uint32_t max_rounds;    /* rounds after the bulk pass (0: MIG_POLICY_MAX_ROUNDS): the
				 * judgment after the bulk pass and one after each round */
	uint32_t stall_rounds;  /* 0: MIG_POLICY_STALL_ROUNDS */
	struct mig_throttle *throttle; /* NULL: no auto-converge */
	uint32_t rounds;        /* rounds judged so far */
	uint64_t best_bytes;    /* lowest dirty bytes seen (0: none yet) */
	uint32_t since_best;    /* rounds since best_bytes went down */
	char why[MIG_POLICY_WHY]; /* the reason for the last verdict or throttle step */
};

/* The bandwidth the switch-over decision uses, bytes/s: switch_bw when
 * set, else the measured bandwidth, no more than cap_bw either way; 0
 * while unknown. */
double mig_policy_bandwidth(const struct mig_policy *p, const struct mig_bw *bw);

/* The downtime that sending bytes at the switch-over would take: bytes
 * over mig_policy_bandwidth plus the fixed cost, rounded up to a whole
 * nanosecond. UINT64_MAX while the bandwidth is unknown. */
uint64_t mig_policy_downtime_ns(const struct mig_policy *p, const struct mig_bw *bw, uint64_t bytes);

/* After a harvest found dirty_bytes to send: stop pre-copying? Converged
 * when dirty_bytes == 0, or when mig_policy_downtime_ns(dirty_bytes) is
 * within the limit (so a fixed cost at or above the limit leaves only
 * dirty_bytes == 0; an unknown bandwidth leaves the round limit and stall
 * detection). Stalled after stall_rounds rounds without a new low; with
 * a throttle below its maximum, a stall instead raises the throttle one
 * step (and the count starts over). Counts the round; p->why says why
 * for anything but a plain MIG_CONTINUE (then it is empty). */
enum mig_verdict mig_policy_judge(struct mig_policy *p, const struct mig_bw *bw, uint64_t dirty_bytes);

/* auto-converge after a round that sent sent_bytes and left dirtied_bytes
 * to send again (stream bytes, as mig_policy_expected_bytes estimates
 * them): the second round in a row (MIG_POLICY_THROTTLE_ROUNDS) that
 * left more than MIG_POLICY_THROTTLE_PCT of what it sent raises
 * the throttle (to initial, then by increment, at most max). Returns true
 * when it changed, with why. Nothing when t is NULL or not enabled. */
bool mig_policy_throttle(struct mig_throttle *t, uint64_t dirtied_bytes, uint64_t sent_bytes, char *why,
			 size_t n);

/* Stream bytes that sending dirty_pages will take, from what the last
 * pass cost: last_bytes for last_pages pages (ZERO and XBZRLE pages cost
 * far less than a raw page). With no last pass (last_pages 0), a raw
 * page each: page_size bytes. */
uint64_t mig_policy_expected_bytes(uint64_t dirty_pages, uint64_t last_bytes, uint64_t last_pages,
				   uint32_t page_size);

/* "converged", "max-iterations", "stalled", "continue". */
const char *mig_verdict_name(enum mig_verdict v);

/* ---- XBZRLE: on, off, and the cache's size ---- */

/* The XBZRLE state the source keeps between rounds. Zero it and set mode
 * and budget to start. */
struct mig_xbz {
	enum mig_xbzrle_mode mode;
	uint64_t budget;      /* xbzrle-cache-size: the most the cache may hold, bytes */
	bool fit;             /* auto: start with a cache sized to the dirty set and grow it (else the
			       * whole budget at once: x-xbzrle-auto-fit off) */
	bool on;
	uint64_t size;        /* the cache's budget while on, bytes */
	uint32_t low;         /* auto: rounds in a row with a low hit rate and no room to grow */
	bool grown;           /* auto: the cache grew at least once (hit_at_grow is valid) */
	bool grow_done;       /* auto: a step did not pay; no more growth */
	uint32_t hit_at_grow; /* auto: hit rate, %, in the round before the last step */
	uint32_t off_rounds;  /* auto: rounds since it turned XBZRLE off */
	uint32_t backoff;     /* auto: rounds it stays off before it may turn it on again */
};

/* What a round told about XBZRLE: the guest's dirty rate and the bytes
 * its last harvest found, and the cache's record over the round (0
 * lookups for a round whose cache was new: it missed by construction). */
struct mig_xbz_round {
	double dirty_bytes_per_s;
	uint64_t dirty_bytes;
	uint64_t hits, lookups, overflows; /* overflows: hits whose delta did not fit a page */
	bool full;            /* the cache evicted or turned away a page */
};

enum mig_xbz_action {
	MIG_XBZ_KEEP = 0,
	MIG_XBZ_ON,           /* start a cache of x->size */
	MIG_XBZ_OFF,          /* drop the cache; raw pages */
	MIG_XBZ_RESIZE,       /* the cache becomes x->size, keeping its pages */
};

/* Decide for the next round; x->on and x->size say the outcome, why the
 * reason (empty for KEEP). ON mode: on at once at the full budget. OFF:
 * never. AUTO: on (with fit, a cache sized to the dirty set, at least
 * MIG_POLICY_MIN_CACHE, at most the budget; else the budget) when the
 * guest dirties more than MIG_POLICY_XBZRLE_ON_PCT of what the link
 * moves; while on, a full cache doubles while its hit rate
 * improves by MIG_POLICY_GROW_GAIN_PCT points a step; off when
 * overflows are most of the hits, or the hit rate stays under
 * MIG_POLICY_MIN_HIT_PCT for two rounds in which the cache could not
 * grow (at the budget, not full, or its last step did not pay); on again
 * when the guest outruns the link after staying off for a backoff that
 * doubles each time (2, 4, 8 ... rounds). A budget that changed (a live
 * xbzrle-cache-size) caps the size at once. bw_bytes_per_s: the link
 * (mig_policy_bandwidth; 0 unknown). */
enum mig_xbz_action mig_policy_xbzrle(struct mig_xbz *x, const struct mig_xbz_round *r, double bw_bytes_per_s,
				      char *why, size_t n);

/* The operator changed the mode or the budget during a migration: what
 * must change now, without counting a round (auto's backoff and growth
 * are left as they are). OFF turns it off (no backoff), ON turns it on or
 * resizes it to the budget, AUTO only shrinks a cache above the budget;
 * the next round decides the rest. */
enum mig_xbz_action mig_policy_xbzrle_retune(struct mig_xbz *x, char *why, size_t n);

#endif
