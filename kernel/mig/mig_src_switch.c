/* mig_src_switch.c: the source past GO, the point of no return
 * (docs/migration.md): hash its stopped copy region by region for the
 * destination's verification, and act on the verdict. VERIFIED frees the
 * guest here, a NACK resumes it, anything else leaves it in-doubt, stopped
 * until migrate_resolve; never a timer. */
#include <stdio.h>

#include "mig_src_priv.h"
#include "mig_tcp.h"

static struct src_state *const s = &mig_src;

/* Past the point of no return and the destination cannot be heard: keep
 * the stopped guest, say what is known, wait for migrate_resolve. */
void src_in_doubt(const char *why)
{
	mig_tcp_abort();
	src_release(false);
	s->phase = S_INDOUBT;
	mig_in_doubt(why);
}

/* The destination runs the guest and its memory matched ours: done. */
void src_handed_over(const char *how)
{
	s->we_stopped = false;
	mig_tcp_close();
	menv_guest_destroy();
	src_release(false);
	mig_finish(MIG_COMPLETED, "guest handed over to %s%s", mig_stats.peer, how);
}

/* The destination said it does not run the guest (a NACK after GO, a
 * CANCEL or ERROR before its COMMIT): it runs here again. */
void src_taken_back(const char *why)
{
	mig_tcp_close();
	src_resume_guest();
	src_release(false);
	mig_finish(MIG_FAILED, "%s; the guest runs here again", why);
}

void src_send_go(void)
{
	if (stream_write_go(&s->out.w) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s->out.w));
	mig_out_push(&s->out);
	mig_stats.go_ns = menv_now_ns() - mig_stats.stop_ns;
	s->phase = S_COMMITTING;
	s->phase_t0 = menv_now_ns();
	if (s->live && mig_regions_begin(&s->rg, s->vm, false) < 0)
		src_in_doubt("out of memory for the region hashes after GO");
}

/* Hash this copy's regions and send their REGION_DIGESTs as they come. */
void src_send_regions(void)
{
	int rc = mig_regions_step(&s->rg, MIG_POLL_BUDGET_NS);
	if (rc < 0)
		return src_in_doubt("a guest page is missing for the region hashes");
	uint64_t n, room;
	/* As many as the buffer has room for (16 bytes each, 64 of framing). */
	while ((n = mig_regions_ready(&s->rg, s->rg_sent)) > 0 &&
	       (room = (SRC_OBUF_BYTES - stream_writer_buffered(&s->out.w)) / 16) > 4) {
		uint64_t k = n < STREAM_MAX_REGIONS ? n : STREAM_MAX_REGIONS;
		k = k < room - 4 ? k : room - 4;
		if (stream_write_region_digest(&s->out.w, s->rg_sent, (uint32_t)k, &s->rg.h[s->rg_sent]) < 0)
			return src_in_doubt(stream_writer_error(&s->out.w));
		s->rg_sent += k;
	}
	mig_out_push(&s->out);
	if (rc == 1) {
		mig_stats.verify_hash_ns = s->rg.hash_ns;
		mig_stats.regions = s->rg.n;
	}
}

/* After GO: every REGION_DIGEST went and was acknowledged, so all the
 * destination still does is hash its own copy, about as long as ours took
 * (it shares its CPU with its guest): a verdict later than 30 s plus 8
 * times our hashing will not come (a link cut in its direction only
 * leaves nothing unacknowledged here, so the stall check cannot tell). */
bool src_verdict_overdue(uint64_t now)
{
	if (!s->live || s->rg_sent < s->rg.n || !s->rg.n || mig_out_pending(&s->out) || mig_tcp_unacked()) {
		s->all_acked_t = 0;
		return false;
	}
	if (!s->all_acked_t)
		s->all_acked_t = now;
	return now - s->all_acked_t > SRC_VERDICT_SLACK_NS + 8 * s->rg.hash_ns;
}
