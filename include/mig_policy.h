/* mig_policy.h: the source's decisions during a live migration, as pure
 * functions of what it measured: when to stop pre-copying (converged,
 * round limit, stalled), whether XBZRLE is worth it (auto mode), and the
 * link bandwidth estimate they both use.
 *
 * Portable C (codec/mig_policy.c): no clock, no I/O; the caller passes
 * times in nanoseconds and byte counts. Built into the kernel and hosted
 * for tests/unit/test_mig_policy.c. */
#ifndef FERRY_MIG_POLICY_H
#define FERRY_MIG_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#define MIG_POLICY_MAX_ROUNDS 30          /* pre-copy rounds after the bulk pass */
#define MIG_POLICY_STALL_ROUNDS 5         /* rounds without a new low of dirty bytes = stalled */
#define MIG_POLICY_MIN_HIT_PCT 10         /* auto XBZRLE: off below this cache hit rate, % */
#define MIG_POLICY_MIN_LOOKUPS 256        /* ... judged over at least this many lookups */
#define MIG_POLICY_BW_MIN_NS 10000000ull  /* a bandwidth sample shorter than 10 ms is ignored */
#define MIG_POLICY_BW_MIN_BYTES (512u << 10) /* ... and one under 512 KiB: a round that small
					      * leaves the link idle and says nothing of its capacity */

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

enum mig_xbzrle_mode {
	MIG_XBZRLE_OFF = 0,
	MIG_XBZRLE_ON = 1,
	MIG_XBZRLE_AUTO = 2,
};

enum mig_verdict {
	MIG_CONTINUE = 0,  /* another pre-copy round */
	MIG_CONVERGED,     /* what is left fits in the downtime limit */
	MIG_MAX_ROUNDS,    /* round limit reached */
	MIG_STALLED,       /* dirty bytes stopped shrinking */
};

/* State the convergence test keeps between rounds. Zero it to start. */
struct mig_policy {
	uint64_t downtime_ns;   /* downtime limit */
	uint64_t fixed_ns;      /* switch-over time that does not depend on the dirty
				 * bytes (whole-memory digests, the verdict): taken
				 * off the limit before comparing */
	uint32_t max_rounds;    /* 0: MIG_POLICY_MAX_ROUNDS */
	uint32_t rounds;        /* rounds judged so far */
	uint64_t best_bytes;    /* lowest dirty bytes seen (0: none yet) */
	uint32_t since_best;    /* rounds since best_bytes went down */
};

/* The downtime that sending bytes at the switch-over would take: bytes
 * over the bandwidth plus the fixed cost, rounded up to a whole
 * nanosecond. UINT64_MAX while the bandwidth is unknown (no sample yet). */
uint64_t mig_policy_downtime_ns(const struct mig_policy *p, const struct mig_bw *bw, uint64_t bytes);

/* After a harvest found dirty_bytes to send: stop pre-copying? Converged
 * when dirty_bytes == 0, or when mig_policy_downtime_ns(dirty_bytes) is
 * within the limit (so a fixed cost at or above the limit leaves only
 * dirty_bytes == 0; an unknown bandwidth leaves the round limit and stall
 * detection). Counts the round. */
enum mig_verdict mig_policy_judge(struct mig_policy *p, const struct mig_bw *bw, uint64_t dirty_bytes);

/* Stream bytes that sending dirty_pages will take, from what the last
 * pass cost: last_bytes for last_pages pages (ZERO and XBZRLE pages cost
 * far less than a raw page). With no last pass (last_pages 0), a raw
 * page each: page_size bytes. */
uint64_t mig_policy_expected_bytes(uint64_t dirty_pages, uint64_t last_bytes, uint64_t last_pages,
				   uint32_t page_size);

/* "converged", "max-rounds", "stalled", "continue". */
const char *mig_verdict_name(enum mig_verdict v);

/* Auto XBZRLE. Given the current choice, the guest's dirty rate (bytes
 * per second, measured over the last round), the bandwidth, and the
 * cache's hits and lookups over the last round: should XBZRLE be on for
 * the next round? ON/OFF modes return themselves. AUTO turns it on when
 * the link cannot keep up with the dirty rate, and off (for good: *latched
 * is set, and stays set) when the hit rate over at least
 * MIG_POLICY_MIN_LOOKUPS lookups fell below MIG_POLICY_MIN_HIT_PCT. */
bool mig_policy_xbzrle(enum mig_xbzrle_mode mode, bool on, bool *latched, double dirty_bytes_per_s,
		       const struct mig_bw *bw, uint64_t hits, uint64_t lookups);

#endif
