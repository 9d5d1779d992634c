/* mig_policy.c: when to stop pre-copying, whether XBZRLE pays, and the
 * bandwidth estimate (mig_policy.h). */
#include "mig_policy.h"

void mig_bw_sample(struct mig_bw *bw, uint64_t bytes, uint64_t ns)
{
	if (ns < MIG_POLICY_BW_MIN_NS || bytes < MIG_POLICY_BW_MIN_BYTES)
		return;
	double rate = (double)bytes * 1e9 / (double)ns;
	bw->bytes_per_s = bw->samples ? (bw->bytes_per_s + rate) / 2 : rate;
	bw->samples++;
}

uint64_t mig_policy_downtime_ns(const struct mig_policy *p, const struct mig_bw *bw, uint64_t bytes)
{
	if (!bw->samples || bw->bytes_per_s <= 0)
		return UINT64_MAX;
	double q = (double)bytes * 1e9 / bw->bytes_per_s + (double)p->fixed_ns;
	if (q >= 1.8e19)
		return UINT64_MAX;
	uint64_t ns = (uint64_t)q;
	return (double)ns < q ? ns + 1 : ns; /* rounded up */
}

enum mig_verdict mig_policy_judge(struct mig_policy *p, const struct mig_bw *bw, uint64_t dirty_bytes)
{
	uint32_t max = p->max_rounds ? p->max_rounds : MIG_POLICY_MAX_ROUNDS;
	p->rounds++;
	if (dirty_bytes == 0)
		return MIG_CONVERGED;
	if (mig_policy_downtime_ns(p, bw, dirty_bytes) <= p->downtime_ns)
		return MIG_CONVERGED;
	if (p->rounds >= max)
		return MIG_MAX_ROUNDS;
	if (!p->best_bytes || dirty_bytes < p->best_bytes) {
		p->best_bytes = dirty_bytes;
		p->since_best = 0;
	} else if (++p->since_best >= MIG_POLICY_STALL_ROUNDS) {
		return MIG_STALLED;
	}
	return MIG_CONTINUE;
}

uint64_t mig_policy_expected_bytes(uint64_t dirty_pages, uint64_t last_bytes, uint64_t last_pages,
				   uint32_t page_size)
{
	if (!last_pages)
		return dirty_pages * page_size;
	/* Rounded up: a pass that cost anything predicts at least a byte a page. */
	return (uint64_t)(((double)dirty_pages * (double)last_bytes + (double)last_pages - 1) / (double)last_pages);
}

const char *mig_verdict_name(enum mig_verdict v)
{
	switch (v) {
	case MIG_CONTINUE: return "continue";
	case MIG_CONVERGED: return "converged";
	case MIG_MAX_ROUNDS: return "max-rounds";
	case MIG_STALLED: return "stalled";
	}
	return "?";
}

bool mig_policy_xbzrle(enum mig_xbzrle_mode mode, bool on, bool *latched, double dirty_bytes_per_s,
		       const struct mig_bw *bw, uint64_t hits, uint64_t lookups)
{
	if (mode == MIG_XBZRLE_ON)
		return true;
	if (mode != MIG_XBZRLE_AUTO || *latched)
		return false;
	if (on && lookups >= MIG_POLICY_MIN_LOOKUPS && hits * 100 < lookups * MIG_POLICY_MIN_HIT_PCT) {
		*latched = true; /* the working set does not fit: stop paying for the cache */
		return false;
	}
	if (on)
		return true;
	/* Off so far: on when the guest dirties faster than the link moves. */
	return bw->samples && dirty_bytes_per_s > bw->bytes_per_s;
}
