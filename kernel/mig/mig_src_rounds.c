/* mig_src_rounds.c: the source between its pre-copy passes
 * (docs/migration.md): harvest the dirty log, judge convergence, turn
 * XBZRLE on or off or resize its cache, throttle a guest that outruns the
 * link (auto-converge), record each decision with its reason and a row
 * per pass; and the parameters that take effect during a migration. The
 * decisions themselves are mig_policy.h's pure functions. */
#include <stdio.h>
#include <string.h>

#include "mig_src_priv.h"
#include "mig_tcp.h"

static struct src_state *const s = &mig_src;

/* The guest gets pct per cent less of the CPU (auto-converge; 0 lifts it). */
void src_set_throttle(uint32_t pct)
{
	s->thr.pct = pct;
	mig_stats.throttle = pct;
	struct hv_vm *vm = menv_guest();
	if (vm && vm == s->vm)
		menv_set_throttle(vm, pct);
}

/* The row of `info migrate iterations` for the pass just ended. */
struct mig_row *src_add_row(void)
{
	struct mig_row *r = &mig_stats.rows[mig_stats.nrows++ % MIG_ROWS_KEPT];
	*r = (struct mig_row){
		.round = s->it.iteration, .throttle = s->thr.pct, .dirty = s->it.pages_dirty, .zero = s->it.pages_zero,
		.raw = s->it.pages_raw, .xbzrle = s->it.pages_xbzrle, .skipped = s->it.pages_skipped,
		.bytes = s->it.bytes, .ns = s->it.duration_ns, .expected_ns = UINT64_MAX,
		.cache = s->xon ? s->xbz.size : 0,
	};
	return r;
}

/* Pre-copy ends (verdict v, p->why says why): stop the guest, or, when
 * it did not converge and no-convergence says fail, give up. */
static void final_phase(enum mig_verdict v)
{
	struct hv_vm *vm = s->vm;
	if (v != MIG_CONVERGED) {
		char over[80] = "expected downtime unknown";
		if (mig_stats.expected_downtime_ns != UINT64_MAX)
			snprintf(over, sizeof(over), "expected downtime %llu ms, over the %llu ms limit",
				 (unsigned long long)(mig_stats.expected_downtime_ns / 1000000),
				 (unsigned long long)mig_params.downtime_ms);
		if (mig_params.fail_unconverged) {
			char why[240];
			mig_decide("fail: %s; %s (no-convergence fail)", s->pol.why, over);
			snprintf(why, sizeof(why), "cannot converge: %s; %s", s->pol.why, over);
			return src_end_badly(MIG_FAILED, 0, true, why);
		}
		mig_decide("switch-over: %s; %s", s->pol.why, over);
	} else {
		mig_decide("switch-over: %s", s->pol.why);
	}
	mig_stats.stop_reason = mig_verdict_name(v);
	mig_stats.downtime_limit_ms = mig_params.downtime_ms;
	if (vm->state == HV_VM_RUNNING) {
		vm->state = HV_VM_STOPPED;
		s->we_stopped = true;
	}
	mig_stats.stop_ns = menv_now_ns();
	/* Last harvest with the guest stopped: joins the pages the judged
	 * harvest left in the bitmap. */
	uint64_t more = menv_dirty_harvest(vm, s->bitmap);
	mig_stats.dirty_sync_count++;
	/* No pcache_next_round: the judged harvest began the cache's round
	 * for this pass. A second would age every page of the last pass past
	 * PCACHE_LRU_AGED's guard, and a scan of it in page order then evicts,
	 * at each miss, the very page it looks up next: from the first miss
	 * on, the whole final pass went raw (a Linux guest's 64 MiB stamp,
	 * 66 MB in the pause at 8 MiB/s: 8.2 s of downtime, in 1 of 3 runs). */
	src_start_pass((uint32_t)(mig_stats.rounds + 1), s->pending + more);
	mig_stats.stop_pages = s->pending;
	s->phase = S_FINAL;
}

/* The cache's record since the last harvest into the row, and for the
 * policy (nothing for a cache turned on for the last pass: it started
 * empty and missed by construction; it is judged from the pass after). */
static void cache_round(struct mig_xbz_round *xr, struct mig_row *row)
{
	if (!s->xon)
		return;
	struct pcache_stats st;
	pcache_stats(s->cache, &st);
	uint64_t lookups = st.hits + st.misses, full = st.evictions + st.rejected;
	row->hits = st.hits - s->cache_hits0;
	row->lookups = lookups - s->cache_lookups0;
	if (!s->cache_fresh) {
		xr->hits = row->hits;
		xr->lookups = row->lookups;
		xr->full = full != s->cache_full0;
	}
	s->cache_hits0 = st.hits;
	s->cache_lookups0 = lookups;
	s->cache_full0 = full;
	s->cache_fresh = false;
	pcache_next_round(s->cache);
}

/* Carry out an XBZRLE decision. The cache was reserved at `migrate`:
 * resizing within the reservation allocates nothing. */
static void apply_xbzrle(enum mig_xbz_action a)
{
	if (a == MIG_XBZ_ON || a == MIG_XBZ_RESIZE) {
		if (pcache_resize(s->cache, s->xbz.size) < 0) {
			mig_decide("xbzrle off: the cache could not be resized to %llu MiB",
				   (unsigned long long)(s->xbz.size >> 20));
			s->xbz.on = false;
			a = MIG_XBZ_OFF;
		}
	}
	if (a == MIG_XBZ_ON) {
		pcache_clear(s->cache);
		s->xon = true;
		s->cache_fresh = true;
	} else if (a == MIG_XBZ_OFF) {
		pcache_clear(s->cache);
		s->xon = false;
	}
	mig_stats.xbzrle_on = s->xon;
	mig_stats.xbzrle_used |= s->xon;
	mig_stats.cache_now = s->xon ? s->xbz.size : 0;
}

/* Harvest, decide, and start the next pass (or the final one). */
void src_next_round(void)
{
	uint64_t now = menv_now_ns();
	uint64_t acked = mig_tcp_acked();
	mig_bw_sample(&s->bw, acked - s->bw_acked, now - s->bw_t);
	s->bw_t = now;
	s->bw_acked = acked;
	mig_stats.mbps = s->bw.bytes_per_s * 8 / 1e6;

	if (s->vm->state != HV_VM_RUNNING && s->vm->state != HV_VM_STOPPED)
		return src_fail(STREAM_WERR_INTERNAL, "the guest exited or faulted during the migration");
	uint64_t dirty = menv_dirty_harvest(s->vm, s->bitmap);
	mig_stats.dirty_sync_count++;
	double dt = (double)(now - s->harvest_t) / 1e9;
	s->harvest_t = now;
	mig_stats.dirty_pages_rate = dt > 0 ? (uint64_t)((double)dirty / dt) : 0;

	struct mig_row *row = src_add_row();
	struct mig_xbz_round xr = { .dirty_bytes_per_s = dt > 0 ? (double)dirty * PAGE / dt : 0,
				    .dirty_bytes = dirty * PAGE, .overflows = s->it.xbzrle_overflow };
	cache_round(&xr, row);
	/* What the dirty pages will cost on the wire, from what the pass just
	 * ended cost per page (XBZRLE and ZERO pages are far below a page).
	 * Not from the bulk pass: its zero pages say nothing about pages the
	 * guest is writing; assume raw pages after it. */
	uint64_t expect = mig_policy_expected_bytes(dirty, s->it.bytes, s->it.iteration ? s->it.pages_dirty : 0, PAGE);
	/* The pass just written is still in our buffer and TCP's (up to 4
	 * MiB): the final pass would queue behind it, so it counts too. */
	uint64_t backlog = stream_writer_buffered(&s->out.w) - s->out.sent + mig_tcp_unacked();
	mig_stats.expected_downtime_ns = mig_policy_downtime_ns(&s->pol, &s->bw, expect + backlog);
	row->bw = mig_policy_bandwidth(&s->pol, &s->bw);
	row->expected_ns = mig_stats.expected_downtime_ns;

	uint32_t pct = s->thr.pct;
	enum mig_verdict v = mig_policy_judge(&s->pol, &s->bw, expect + backlog);
	s->pending = dirty;
	mig_stats.remaining = expect;
	if (v != MIG_CONTINUE)
		return final_phase(v); /* never a new cache for the final pass: it would only miss */
	char why[MIG_POLICY_WHY];
	if (s->thr.pct != pct) { /* a stall raised it */
		src_set_throttle(s->thr.pct);
		mig_decide("%s", s->pol.why);
	} else if (s->it.iteration && mig_policy_throttle(&s->thr, expect, s->it.bytes, why, sizeof(why))) {
		src_set_throttle(s->thr.pct);
		mig_decide("%s", why);
	}
	if (s->cache) {
		/* The link as measured (no more than max-bandwidth): not
		 * avail-switchover-bandwidth, which is the switch-over's alone. */
		double link = s->bw.samples ? s->bw.bytes_per_s : 0;
		if (s->pol.cap_bw && link > (double)s->pol.cap_bw)
			link = (double)s->pol.cap_bw;
		enum mig_xbz_action a = mig_policy_xbzrle(&s->xbz, &xr, link, why, sizeof(why));
		if (a != MIG_XBZ_KEEP) {
			mig_decide("%s", why);
			apply_xbzrle(a);
		}
	}
	mig_stats.rounds++;
	src_start_pass((uint32_t)mig_stats.rounds, dirty);
	s->phase = S_ROUND;
}

/* The parameters the policy reads, as they are now (at the HELLO_ACK and
 * at every change during the migration). */
void src_apply_params(void)
{
	s->pol.downtime_ns = mig_params.downtime_ms * 1000000ull;
	s->pol.switch_bw = mig_params.avail_switchover_bw;
	s->pol.cap_bw = mig_params.max_bandwidth;
	s->pol.max_rounds = (uint32_t)mig_params.max_iterations;
	s->pol.stall_rounds = (uint32_t)mig_params.stall_iterations;
	s->pol.throttle = &s->thr;
	s->thr.initial = (uint32_t)mig_params.throttle_initial;
	s->thr.increment = (uint32_t)mig_params.throttle_increment;
	s->thr.max = (uint32_t)mig_params.throttle_max;
	if (s->thr.enabled != mig_params.auto_converge || s->thr.pct > s->thr.max) {
		uint32_t pct = mig_params.auto_converge ? (s->thr.pct > s->thr.max ? s->thr.max : s->thr.pct) : 0;
		if (pct != s->thr.pct) {
			mig_decide(pct ? "throttle %u%%: max-cpu-throttle" : "throttle lifted: auto-converge off", pct);
			src_set_throttle(pct);
		}
		s->thr.enabled = mig_params.auto_converge;
	}
	if (s->rate.bytes_per_s != mig_params.max_bandwidth)
		mig_rate_set(&s->rate, mig_params.max_bandwidth, menv_now_ns());
	s->xbz.mode = mig_params.xbzrle;
	s->xbz.fit = mig_params.xbzrle_auto_fit;
	s->xbz.budget = s->cache ? mig_params.xbzrle_cache_bytes : 0;
}

/* The cache holds at least budget bytes' worth of reservation; the
 * error says what it needed. */
int src_reserve_cache(uint64_t budget, char *why, size_t n)
{
	if (!s->cache)
		s->cache = pcache_create(0, PAGE);
	if (s->cache && pcache_reserve(s->cache, budget) == 0) {
		pcache_set_policy(s->cache, PCACHE_LRU_AGED);
		return 0;
	}
	snprintf(why, n, "cannot reserve the XBZRLE cache: xbzrle-cache-size %llu MiB needs %llu KiB, %llu KiB free; "
		 "lower xbzrle-cache-size or turn xbzrle off", (unsigned long long)(budget >> 20),
		 (unsigned long long)(pcache_reserve_bytes(budget, PAGE) >> 10),
		 (unsigned long long)(menv_free_bytes() >> 10));
	return -1;
}

int mig_src_retune(char *why, size_t n)
{
	if (!mig_src_active())
		return 0;
	if (s->phase >= S_FINAL) {
		/* Stopped: only the rate of what is still to send matters (and
		 * max-downtime, read where it is checked). */
		if (s->rate.bytes_per_s != mig_params.max_bandwidth)
			mig_rate_set(&s->rate, mig_params.max_bandwidth, menv_now_ns());
		return 0;
	}
	bool reserve = s->cache && mig_params.xbzrle != MIG_XBZRLE_OFF;
	if (reserve && src_reserve_cache(mig_params.xbzrle_cache_bytes, why, n) < 0)
		return -1;
	if (reserve)
		mig_stats.cache_size = mig_params.xbzrle_cache_bytes;
	if (s->phase < S_BULK)
		return 0; /* read at the HELLO_ACK */
	src_apply_params();
	if (!s->cache)
		return 0;
	/* The xbzrle mode and xbzrle-cache-size take effect now. */
	char w[MIG_POLICY_WHY];
	enum mig_xbz_action a = mig_policy_xbzrle_retune(&s->xbz, w, sizeof(w));
	if (a != MIG_XBZ_KEEP) {
		mig_decide("%s (set during the migration)", w);
		apply_xbzrle(a);
	}
	return 0;
}
