/* mig_policy.c: when to stop pre-copying, whether XBZRLE pays and how
 * large its cache should be, when to throttle the guest, the bandwidth
 * estimate and the max-bandwidth rate limiter (mig_policy.h). */
#include <stdio.h>

#include "mig_policy.h"

/* bytes as decimal megabytes, "%.1f" under 100 (so "2.1 MB", "210 MB") */
static const char *mb(char *buf, size_t n, double bytes)
{
	double v = bytes / 1e6;
	snprintf(buf, n, v < 100 ? "%.1f MB" : "%.0f MB", v);
	return buf;
}

void mig_bw_sample(struct mig_bw *bw, uint64_t bytes, uint64_t ns)
{
	if (ns < MIG_POLICY_BW_MIN_NS || bytes < MIG_POLICY_BW_MIN_BYTES)
		return;
	double rate = (double)bytes * 1e9 / (double)ns;
	bw->bytes_per_s = bw->samples ? (bw->bytes_per_s + rate) / 2 : rate;
	bw->samples++;
}

/* ---- max-bandwidth ---- */

void mig_rate_set(struct mig_rate *r, uint64_t bytes_per_s, uint64_t now_ns)
{
	r->bytes_per_s = bytes_per_s;
	r->t = now_ns;
	r->tokens = 0;
}

size_t mig_rate_allow(struct mig_rate *r, uint64_t now_ns, size_t want)
{
	if (!r->bytes_per_s)
		return want;
	double burst = (double)r->bytes_per_s * (double)MIG_RATE_BURST_NS / 1e9;
	if (now_ns > r->t) {
		r->tokens += (double)(now_ns - r->t) * (double)r->bytes_per_s / 1e9;
		if (r->tokens > burst)
			r->tokens = burst;
		r->t = now_ns;
	}
	if (r->tokens <= 0)
		return 0; /* in debt: bytes allowed before a mig_rate_set, spent after it */
	return r->tokens < (double)want ? (size_t)r->tokens : want;
}

bool mig_rate_queue_full(const struct mig_rate *r, size_t queued)
{
	return r->bytes_per_s && (double)queued > (double)r->bytes_per_s * (double)MIG_RATE_QUEUE_NS / 1e9;
}

void mig_rate_spend(struct mig_rate *r, size_t bytes)
{
	if (r->bytes_per_s)
		r->tokens -= (double)bytes;
}

/* ---- convergence ---- */

double mig_policy_bandwidth(const struct mig_policy *p, const struct mig_bw *bw)
{
	double b = p->switch_bw ? (double)p->switch_bw : bw->samples ? bw->bytes_per_s : 0;
	if (p->cap_bw && b > (double)p->cap_bw)
		b = (double)p->cap_bw;
	return b;
}

uint64_t mig_policy_downtime_ns(const struct mig_policy *p, const struct mig_bw *bw, uint64_t bytes)
{
	double b = mig_policy_bandwidth(p, bw);
	if (b <= 0)
		return UINT64_MAX;
	double q = (double)bytes * 1e9 / b + (double)p->fixed_ns;
	if (q >= 1.8e19)
		return UINT64_MAX;
	uint64_t ns = (uint64_t)q;
	return (double)ns < q ? ns + 1 : ns; /* rounded up */
}

/* Raise the throttle one step; false at its maximum already. */
static bool throttle_up(struct mig_throttle *t)
{
	if (t->pct >= t->max)
		return false;
	uint32_t pct = t->pct ? t->pct + t->increment : t->initial;
	t->pct = pct > t->max ? t->max : pct;
	t->high = 0;
	return true;
}

enum mig_verdict mig_policy_judge(struct mig_policy *p, const struct mig_bw *bw, uint64_t dirty_bytes)
{
	uint32_t max = p->max_rounds ? p->max_rounds : MIG_POLICY_MAX_ROUNDS;
	uint32_t stall = p->stall_rounds ? p->stall_rounds : MIG_POLICY_STALL_ROUNDS;
	char a[24], b[24];
	p->rounds++;
	p->why[0] = 0;
	if (dirty_bytes == 0) {
		snprintf(p->why, sizeof(p->why), "nothing left to send");
		return MIG_CONVERGED;
	}
	uint64_t dt = mig_policy_downtime_ns(p, bw, dirty_bytes);
	if (dt <= p->downtime_ns) {
		snprintf(p->why, sizeof(p->why), "%s fits %s/s x %llu ms%s", mb(a, sizeof(a), (double)dirty_bytes),
			 mb(b, sizeof(b), mig_policy_bandwidth(p, bw)),
			 (unsigned long long)((p->downtime_ns - p->fixed_ns) / 1000000),
			 p->switch_bw ? " (avail-switchover-bandwidth)" : "");
		return MIG_CONVERGED;
	}
	if (p->rounds > max) { /* judged after the bulk pass and after each of max rounds */
		snprintf(p->why, sizeof(p->why), "max-iterations %u reached; %s left", max,
			 mb(a, sizeof(a), (double)dirty_bytes));
		return MIG_MAX_ROUNDS;
	}
	if (!p->best_bytes || dirty_bytes < p->best_bytes) {
		p->best_bytes = dirty_bytes;
		p->since_best = 0;
		return MIG_CONTINUE;
	}
	if (++p->since_best < stall)
		return MIG_CONTINUE;
	struct mig_throttle *t = p->throttle;
	if (t && t->enabled && throttle_up(t)) {
		/* A fresh look at the dirty bytes under the new throttle. */
		p->best_bytes = dirty_bytes;
		p->since_best = 0;
		snprintf(p->why, sizeof(p->why), "throttle %u%%: no new low for %u rounds", t->pct, stall);
		return MIG_CONTINUE;
	}
	if (t && t->enabled)
		snprintf(p->why, sizeof(p->why), "stalled: no new low for %u rounds at the maximum throttle %u%%",
			 stall, t->pct);
	else
		snprintf(p->why, sizeof(p->why), "stalled: no new low for %u rounds", stall);
	return MIG_STALLED;
}

bool mig_policy_throttle(struct mig_throttle *t, uint64_t dirtied_bytes, uint64_t sent_bytes, char *why,
			 size_t n)
{
	char a[24], b[24];
	if (!t || !t->enabled)
		return false;
	if ((double)dirtied_bytes * 100 <= (double)sent_bytes * MIG_POLICY_THROTTLE_PCT) {
		t->high = 0;
		return false;
	}
	if (++t->high < MIG_POLICY_THROTTLE_ROUNDS || !throttle_up(t))
		return false;
	snprintf(why, n, "throttle %u%%: %s dirtied to send again, over %u%% of the %s sent, %u rounds in a row",
		 t->pct,
		 mb(a, sizeof(a), (double)dirtied_bytes), MIG_POLICY_THROTTLE_PCT, mb(b, sizeof(b), (double)sent_bytes),
		 MIG_POLICY_THROTTLE_ROUNDS);
	return true;
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
	case MIG_MAX_ROUNDS: return "max-iterations";
	case MIG_STALLED: return "stalled";
	}
	return "?";
}

/* ---- XBZRLE ---- */

/* A cache for a dirty set: its bytes and a quarter more for the pages
 * that join it, in whole MiB, at least MIG_POLICY_MIN_CACHE, at most the
 * budget. */
static uint64_t size_for(const struct mig_xbz *x, uint64_t dirty_bytes)
{
	uint64_t want = dirty_bytes + dirty_bytes / 4;
	want = (want + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	if (want < MIG_POLICY_MIN_CACHE)
		want = MIG_POLICY_MIN_CACHE;
	return want < x->budget ? want : x->budget;
}

static enum mig_xbz_action turn_off(struct mig_xbz *x)
{
	x->on = false;
	x->size = 0;
	x->off_rounds = 0;
	x->backoff = x->backoff ? x->backoff * 2 : 2;
	x->low = 0;
	x->grown = x->grow_done = false;
	return MIG_XBZ_OFF;
}

/* ON mode: on, with the whole budget. */
static enum mig_xbz_action on_at_budget(struct mig_xbz *x, char *why, size_t n)
{
	if (x->on && x->size == x->budget)
		return MIG_XBZ_KEEP;
	bool was = x->on;
	x->on = true;
	x->size = x->budget;
	if (was)
		snprintf(why, n, "xbzrle cache %llu MiB: xbzrle-cache-size", (unsigned long long)(x->budget >> 20));
	else
		snprintf(why, n, "xbzrle on: capability on, %llu MiB cache", (unsigned long long)(x->budget >> 20));
	return was ? MIG_XBZ_RESIZE : MIG_XBZ_ON;
}

enum mig_xbz_action mig_policy_xbzrle_retune(struct mig_xbz *x, char *why, size_t n)
{
	why[0] = 0;
	if (x->mode == MIG_XBZRLE_OFF && x->on) {
		x->on = false; /* the operator's: no backoff, which is auto's */
		x->size = 0;
		x->low = 0;
		x->grown = x->grow_done = false;
		snprintf(why, n, "xbzrle off: capability off");
		return MIG_XBZ_OFF;
	}
	if (x->mode == MIG_XBZRLE_ON)
		return on_at_budget(x, why, n);
	if (x->mode == MIG_XBZRLE_AUTO && x->on && x->size > x->budget) {
		x->size = x->budget;
		snprintf(why, n, "xbzrle cache %llu MiB: xbzrle-cache-size", (unsigned long long)(x->size >> 20));
		return MIG_XBZ_RESIZE;
	}
	return MIG_XBZ_KEEP;
}

enum mig_xbz_action mig_policy_xbzrle(struct mig_xbz *x, const struct mig_xbz_round *r, double bw_bytes_per_s,
				      char *why, size_t n)
{
	char a[24], b[24], c[24];
	why[0] = 0;
	if (x->mode == MIG_XBZRLE_OFF || !x->budget) {
		if (!x->on)
			return MIG_XBZ_KEEP;
		snprintf(why, n, "xbzrle off: %s", x->budget ? "capability off" : "xbzrle-cache-size 0");
		return turn_off(x);
	}
	if (x->mode == MIG_XBZRLE_ON)
		return on_at_budget(x, why, n);
	double dirty = r->dirty_bytes_per_s;
	if (!x->on) {
		if (x->backoff && ++x->off_rounds < x->backoff)
			return MIG_XBZ_KEEP;
		if (bw_bytes_per_s <= 0 || dirty * 100 <= bw_bytes_per_s * MIG_POLICY_XBZRLE_ON_PCT)
			return MIG_XBZ_KEEP;
		x->on = true;
		x->size = x->fit ? size_for(x, r->dirty_bytes) : x->budget;
		x->low = 0;
		snprintf(why, n, "xbzrle on: dirty %s/s > %u%% of the link's %s/s; %llu MiB cache%s%s%s",
			 mb(a, sizeof(a), dirty), MIG_POLICY_XBZRLE_ON_PCT, mb(b, sizeof(b), bw_bytes_per_s),
			 (unsigned long long)(x->size >> 20), x->fit ? " for a " : "",
			 x->fit ? mb(c, sizeof(c), (double)r->dirty_bytes) : "", x->fit ? " dirty set" : "");
		return MIG_XBZ_ON;
	}
	if (x->size > x->budget) {
		x->size = x->budget;
		snprintf(why, n, "xbzrle cache %llu MiB: xbzrle-cache-size", (unsigned long long)(x->size >> 20));
		return MIG_XBZ_RESIZE;
	}
	if (r->lookups < MIG_POLICY_MIN_LOOKUPS)
		return MIG_XBZ_KEEP;
	uint32_t hit = (uint32_t)(r->hits * 100 / r->lookups);
	if (r->hits && r->overflows * 2 > r->hits) {
		snprintf(why, n, "xbzrle off: overflows dominate (%llu of %llu hits did not fit a page)",
			 (unsigned long long)r->overflows, (unsigned long long)r->hits);
		return turn_off(x);
	}
	if (x->grown && hit < x->hit_at_grow + MIG_POLICY_GROW_GAIN_PCT) {
		x->grow_done = true; /* the last step did not pay: no more */
		x->grown = false;
	}
	bool can_grow = r->full && x->size < x->budget && !x->grow_done;
	if (hit < MIG_POLICY_MIN_HIT_PCT && !can_grow) {
		if (++x->low < 2)
			return MIG_XBZ_KEEP;
		snprintf(why, n, "xbzrle off: hit rate %u%% < %u%% for 2 rounds with a %llu MiB cache", hit,
			 MIG_POLICY_MIN_HIT_PCT, (unsigned long long)(x->size >> 20));
		return turn_off(x);
	}
	x->low = 0;
	if (!can_grow)
		return MIG_XBZ_KEEP;
	uint64_t old = x->size;
	x->size = old * 2 < x->budget ? old * 2 : x->budget;
	snprintf(why, n, "xbzrle cache %llu -> %llu MiB: hit rate %u%% with a full cache%s",
		 (unsigned long long)(old >> 20), (unsigned long long)(x->size >> 20), hit,
		 x->grown ? ", up from the last step" : "");
	x->grown = true;
	x->hit_at_grow = hit;
	return MIG_XBZ_RESIZE;
}
