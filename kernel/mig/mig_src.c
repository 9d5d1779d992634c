/* mig_src.c: the source of a live migration (docs/migration.md):
 * negotiate, bulk pass, pre-copy rounds over the pages the guest dirtied
 * (ZERO, XBZRLE against the page cache, or raw), then stop the guest,
 * send what is left, its CPU state and END, and wait for READY. Until GO
 * leaves, any failure, a cancel or the downtime budget resumes the guest
 * here (the destination never runs it without GO). After GO the guest
 * stays stopped here until the destination's verdict: VERIFIED (its
 * memory matched this copy's region hashes) frees it, NACK (it does not
 * run the guest) resumes it, and anything else leaves it in-doubt, paused
 * until the operator resolves it (migrate_resolve), never by a timer.
 *
 * The decisions between passes are in mig_src_rounds.c, the steps past GO
 * in mig_src_switch.c; the state they share in mig_src_priv.h.
 *
 * A state machine advanced by mig_src_poll from the main loop, a bounded
 * slice of work per pass, so the guest keeps running and the console
 * keeps answering. The guest runs only between passes, never inside one:
 * a page read during a pass is a consistent snapshot, and pages are read
 * only after the harvest that cleared their dirty bits (mig_env.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mig_priv.h"
#include "mig_src_priv.h"
#include "mig_tcp.h"
#include "pcache.h"
#include "stream.h"
#include "xbzrle.h"

struct src_state mig_src;
static struct src_state *const s = &mig_src;

/* A failure inside a step ended the migration (the guest runs again,
 * the last record may still be draining): the step must stop there. */
bool src_ended(void)
{
	return s->phase == S_IDLE || s->phase == S_DRAIN;
}

static bool room_to_produce(void)
{
	return stream_writer_buffered(&s->out.w) + SRC_CHUNK_MAX <= SRC_OBUF_BYTES;
}

/* ---- ending ---- */

/* Free the migration's state; keep_out keeps the stream buffer for S_DRAIN. */
void src_release(bool keep_out)
{
	if (s->thr.pct)
		src_set_throttle(0);
	mig_regions_end(&s->rg);
	if (s->cache)
		pcache_destroy(s->cache);
	s->cache = NULL;
	stream_reader_free(s->r);
	s->r = NULL;
	if (s->out.buf && !keep_out)
		menv_free(s->out.buf, SRC_OBUF_BYTES / PAGE);
	if (s->snap)
		menv_free(s->snap, SRC_BATCH);
	if (s->enc)
		menv_free(s->enc, SRC_BATCH);
	if (s->bitmap)
		menv_free(s->bitmap, (s->bitmap_bytes + PAGE - 1) / PAGE);
	if (!keep_out)
		s->out.buf = NULL;
	s->xon = false;
	s->snap = s->enc = NULL;
	s->bitmap = NULL;
	s->phase = S_IDLE;
}

/* Give the guest back: logging off, running again if we paused it. */
void src_resume_guest(void)
{
	struct hv_vm *vm = menv_guest();
	if (vm && vm == s->vm) {
		menv_dirty_stop(vm);
		if (s->we_stopped && vm->state == HV_VM_STOPPED)
			vm->state = HV_VM_RUNNING;
	}
	s->we_stopped = false;
}

/* Fail (or cancel): tell the peer with an ERROR (werr) or CANCEL record
 * when the link still works, resume the guest, report. The record, and
 * any stream bytes queued ahead of it, must all reach TCP before the
 * close: what TCP cannot take yet is handed over from S_DRAIN. */
void src_end_badly(enum mig_status st, uint32_t werr, bool cancel, const char *why)
{
	bool drain = false;
	if (mig_tcp_state() == MIG_TCP_OPEN && (werr || cancel) && s->out.buf) {
		/* Drop what is buffered: the verdict record replaces it. */
		if (s->out.sent == 0)
			stream_writer_set_buf(&s->out.w, s->out.buf, SRC_OBUF_BYTES);
		if (cancel)
			stream_write_cancel(&s->out.w);
		else
			stream_write_error(&s->out.w, werr, why);
		mig_out_push(&s->out);
		drain = mig_out_pending(&s->out);
		if (!drain)
			mig_tcp_close(); /* lwIP still sends what it queued */
	} else {
		mig_tcp_abort();
	}
	src_resume_guest();
	src_release(drain);
	mig_finish(st, "%s", why);
	if (drain) {
		s->phase = S_DRAIN;
		s->phase_t0 = menv_now_ns();
	}
}

/* S_DRAIN: the rest goes to TCP, then the connection ends. */
static int src_drain(void)
{
	bool moved;
	if (mig_out_drain(&s->out, s->phase_t0, &moved))
		return moved; /* idle while TCP waits for ACKs */
	menv_free(s->out.buf, SRC_OBUF_BYTES / PAGE);
	s->out.buf = NULL;
	s->phase = S_IDLE;
	return 1;
}

void src_fail(uint32_t werr, const char *why)
{
	src_end_badly(MIG_FAILED, werr, false, why);
}

static uint8_t *src_page(void *ctx, uint64_t pfn)
{
	(void)ctx;
	return menv_page(s->vm, pfn, MENV_HASH);
}

/* ---- pages ---- */

static void flush_batch(void)
{
	int rc = 0;
	if (s->nraw)
		rc |= stream_write_pages(&s->out.w, s->nraw, s->raw_pfn, s->raw_page);
	if (s->nzero)
		rc |= stream_write_zero_pages(&s->out.w, s->nzero, s->zero_pfn);
	if (s->nxb)
		rc |= stream_write_xbzrle_pages(&s->out.w, s->nxb, s->xb);
	s->nraw = s->nzero = s->nxb = s->nsnap = 0;
	if (rc)
		src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s->out.w));
}

/* One page of a pass. bulk: the first pass (nothing cached yet). */
static void send_page(uint64_t pfn, bool bulk)
{
	const uint8_t *g = menv_page(s->vm, pfn, MENV_SEND);
	if (s->zero_ok && xbzrle_is_zero(g, PAGE)) {
		s->zero_pfn[s->nzero++] = pfn;
		s->it.pages_zero++;
		mig_stats.duplicate++;
		if (s->xon)
			pcache_remove(s->cache, pfn); /* the peer holds zeros now */
		return;
	}
	if (bulk || !s->xon) {
		s->raw_pfn[s->nraw] = pfn;
		s->raw_page[s->nraw++] = g; /* read when flushed, in this same pass */
		s->it.pages_raw++;
		mig_stats.normal++;
		return;
	}
	/* XBZRLE: one snapshot, encoded against what the peer holds, sent,
	 * and the same snapshot cached (the peer then holds exactly it). */
	uint8_t *snap = s->snap + (size_t)s->nsnap * PAGE;
	memcpy(snap, g, PAGE);
	const uint8_t *old = pcache_lookup(s->cache, pfn);
	mig_stats.xbzrle_lookups++;
	int n = XBZRLE_EOVERFLOW;
	if (old) {
		uint8_t *enc = s->enc + (size_t)s->nxb * PAGE;
		n = xbzrle_encode(old, snap, PAGE, enc, PAGE);
		if (n == 0) {
			s->it.pages_skipped++;
			mig_stats.skipped++;
			return;
		}
		if (n > 0) {
			s->xb[s->nxb++] = (struct stream_xbzrle_page){ .pfn = pfn, .len = (uint32_t)n, .data = enc };
			s->it.pages_xbzrle++;
			mig_stats.xbzrle_pages++;
			mig_stats.xbzrle_bytes += (uint64_t)n;
		} else {
			s->it.xbzrle_overflow++;
			mig_stats.xbzrle_overflow++;
		}
	} else {
		s->it.xbzrle_cache_miss++;
		mig_stats.xbzrle_cache_miss++;
	}
	if (n < 0) {
		s->raw_pfn[s->nraw] = pfn;
		s->raw_page[s->nraw++] = snap;
		s->it.pages_raw++;
		mig_stats.normal++;
	}
	s->nsnap++;
	if (s->phase == S_FINAL)
		return; /* no pass follows: caching it would only cost time in the pause */
	if (pcache_insert(s->cache, pfn, snap) < 0)
		pcache_remove(s->cache, pfn); /* never keep a copy the peer no longer holds */
	uint64_t held = pcache_bytes_used(s->cache);
	if (held > mig_stats.cache_peak)
		mig_stats.cache_peak = held;
}

/* Up to SRC_BATCH pages of the current pass; returns false when the pass
 * has no page left. */
static bool send_chunk(bool bulk)
{
	uint32_t taken = 0;
	while (s->cursor < s->vm->npages && taken < SRC_BATCH) {
		uint64_t pfn = s->cursor;
		if (!bulk) {
			uint64_t w = s->bitmap[pfn / 64] >> (pfn % 64);
			if (!w) { /* skip to the next word */
				s->cursor = (pfn / 64 + 1) * 64;
				continue;
			}
			pfn += (uint64_t)__builtin_ctzll(w);
			if (pfn >= s->vm->npages)
				break;
			s->bitmap[pfn / 64] &= ~(1ull << (pfn % 64));
			if (s->pending)
				s->pending--;
		}
		s->cursor = pfn + 1;
		send_page(pfn, bulk);
		taken++;
	}
	if (taken)
		flush_batch();
	if (src_ended())
		return false;
	if (bulk)
		s->pending = s->vm->npages - s->cursor;
	mig_stats.remaining = s->pending * PAGE; /* an upper bound: raw pages */
	return s->cursor < s->vm->npages;
}

static void end_pass(void)
{
	uint64_t now = menv_now_ns();
	s->it.bytes = s->out.w.bytes - s->it_bytes0;
	s->it.duration_ns = now - s->it_t0;
	if (s->iter_ok)
		stream_write_iter_end(&s->out.w, &s->it);
}

void src_start_pass(uint32_t iteration, uint64_t dirty)
{
	memset(&s->it, 0, sizeof(s->it));
	s->it.iteration = iteration;
	s->it.pages_dirty = dirty;
	s->it_t0 = menv_now_ns();
	s->it_bytes0 = s->out.w.bytes;
	s->cursor = 0;
	s->pending = dirty;
}

/* After the final pass: the CPU state of the stopped guest. */
static void write_cpu_state(void)
{
	struct hv_cpu_state *cpu = menv_alloc(2, true);
	if (!cpu)
		return src_fail(STREAM_WERR_RESOURCES, "out of memory for the CPU state");
	menv_cpu_capture(s->vm, cpu);
	if (s->vm->plat) {
		/* The platform's devices (and the event state the CPU record
		 * has no room for) just before the CPU. */
		uint8_t dev[512];
		_Static_assert(sizeof(dev) >= 328, "room for the platform's state");
		size_t n = menv_dev_save(s->vm, cpu, dev, sizeof(dev));
		if (!n || stream_write_device_state(&s->out.w, STREAM_PLATFORM_PC_V1, dev, (uint32_t)n) < 0) {
			menv_free(cpu, 2);
			return src_fail(STREAM_WERR_INTERNAL, "cannot write the platform's device state");
		}
	}
	struct stream_cpu_state c;
	mig_cpu_to_wire(cpu, &c);
	int rc = stream_write_cpu_state(&s->out.w, &c, cpu->xsave, mig_cpu_xsave_len());
	menv_free(cpu, 2);
	if (rc < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s->out.w));
}

static void write_end(void)
{
	if (stream_write_end(&s->out.w) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s->out.w));
	s->phase = S_READY;
	s->phase_t0 = menv_now_ns();
}

/* The CPU state after the last page; then END (or, without verification
 * after the switch-over, S_DIGEST first). */
static void write_tail(void)
{
	/* Counted page by page as written, apart from stop_pages: the two
	 * differ if the pass missed or repeated a page of the bitmap. */
	mig_stats.final_pages = s->it.pages_zero + s->it.pages_raw + s->it.pages_xbzrle + s->it.pages_skipped;
	mig_stats.final_bytes = s->out.w.bytes - s->it_bytes0;
	mig_stats.final_written_ns = menv_now_ns() - mig_stats.stop_ns;
	src_add_row();
	write_cpu_state();
	if (src_ended())
		return;
	s->tail_end = s->out.w.bytes;
	if (s->live)
		return write_end();
	stream_digest_begin(&s->dg, s->vm->npages);
	mig_stats.digest_ns = 0;
	s->phase = S_DIGEST;
}

/* One step of the whole-memory digest; at the end the DIGEST and END
 * records, then wait for READY. */
static void digest_step(void)
{
	struct stream_digest dg;
	uint64_t t = menv_now_ns();
	int rc = stream_digest_step(&s->dg, src_page, NULL, SRC_DIGEST_STEP, &dg);
	mig_stats.digest_ns += menv_now_ns() - t;
	if (rc < 0)
		return src_fail(STREAM_WERR_INTERNAL, "a guest page is missing for the digest");
	if (rc == 0)
		return;
	if (stream_write_digest(&s->out.w, &dg) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s->out.w));
	mig_stats.digest_done_ns = menv_now_ns() - mig_stats.stop_ns;
	write_end();
}

/* ---- the reply stream ---- */

/* Read what the destination said. Returns its final record type, 0 while
 * none, or -1 after failing the migration. */
static int read_reply(struct stream_record *rec)
{
	for (;;) {
		const uint8_t *p;
		size_t n = mig_tcp_peek(&p), used = 0;
		if (!n)
			return 0;
		int rc = stream_reader_feed(s->r, p, n, &used, rec);
		mig_tcp_consume(used);
		if (rc < 0) {
			char why[200];
			snprintf(why, sizeof(why), "bad reply from the destination: %s", stream_reader_error(s->r));
			if (s->phase >= S_COMMITTING)
				src_in_doubt(why);
			else
				src_fail(STREAM_WERR_PROTOCOL, why);
			return -1;
		}
		if (rc == 1)
			return (int)rec->type;
	}
}

/* What we offer: an OS guest also needs its platform at the other end. */
static uint64_t src_caps(void)
{
	return SRC_CAPS | (s->vm->plat ? STREAM_CAP_PLATFORM_PC : 0) |
	       (mig_params.verify_after ? STREAM_CAP_VERIFY_AFTER : 0) |
	       (mig_params.record_crc ? STREAM_CAP_CRC32C : 0);
}

static void got_ack(const struct stream_record *rec)
{
	struct stream_hello_ack a;
	stream_rec_get(rec, &a, sizeof(a));
	char why[160];
	if (a.status) {
		snprintf(why, sizeof(why), "the destination refused: %s: %.64s", stream_refusal_to_str(a.status),
			 a.reason);
		return src_fail(0, why);
	}
	if ((a.codecs & ~s->offered_codecs) || !(a.codecs & STREAM_CODEC_RAW) || (a.caps & ~src_caps()) ||
	    a.digest != STREAM_DIGEST_XXH3_128 || a.guest_pages != s->vm->npages || a.mig_id != mig_stats.mig_id) {
		return src_fail(STREAM_WERR_PROTOCOL, "the destination's HELLO_ACK does not match the HELLO");
	}
	if (!(a.caps & STREAM_CAP_XSAVE))
		return src_fail(STREAM_WERR_PROTOCOL, "the destination does not accept XSAVE state");
	if (s->vm->plat && !(a.caps & STREAM_CAP_PLATFORM_PC))
		return src_fail(STREAM_WERR_PROTOCOL, "the destination cannot run this guest's platform "
				"(ferry's PC with the kvm64-class CPU model)");
	stream_writer_set_crc(&s->out.w, a.caps & STREAM_CAP_CRC32C);
	mig_stats.agreed = true;
	mig_stats.agreed_caps = a.caps;
	mig_stats.agreed_codecs = a.codecs;
	s->zero_ok = (a.codecs & STREAM_CODEC_ZERO) != 0;
	s->iter_ok = (a.caps & STREAM_CAP_ITER_STATS) != 0;
	if (!(a.codecs & STREAM_CODEC_XBZRLE) && s->cache) {
		pcache_destroy(s->cache); /* the peer cannot decode it: the reservation goes back */
		s->cache = NULL;
	}
	mig_stats.cache_size = s->cache ? mig_params.xbzrle_cache_bytes : 0;
	src_apply_params();

	struct stream_guest_info g = { .guest_pages = s->vm->npages, .nr_vcpus = 1,
				       .mode = mig_cpu_mode(menv_backend()), .tsc_khz = menv_tsc_hz() / 1000 };
	snprintf(g.workload, sizeof(g.workload), "%s", menv_workload_name(s->vm->workload));
	snprintf(g.name, sizeof(g.name), "ferry-guest");
	if (stream_write_guest_info(&s->out.w, &g) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s->out.w));
	s->live = (a.caps & STREAM_CAP_VERIFY_AFTER) != 0;
	mig_stats.verify_after = s->live;
	/* Without verification after the switch-over the pause hashes all of
	 * memory (S_DIGEST, the destination at the DIGEST): time a sample and
	 * take one whole hash off the downtime limit. */
	uint64_t sample = s->vm->npages < SRC_DIGEST_SAMPLE ? s->vm->npages : SRC_DIGEST_SAMPLE;
	struct stream_digest dg;
	stream_digest_memory(src_page, NULL, sample, &dg); /* warm: caches, and TCG's translation */
	uint64_t t = menv_now_ns();
	stream_digest_memory(src_page, NULL, sample, &dg);
	mig_stats.digest_estimate_ns = (menv_now_ns() - t) * (s->vm->npages / sample);
	s->pol.fixed_ns = s->live ? 0 : 2 * mig_stats.digest_estimate_ns;
	/* Logging on before the bulk pass reads a page: a write after this
	 * point is seen by the first round's harvest. */
	menv_dirty_start(s->vm);
	s->harvest_t = s->bw_t = menv_now_ns();
	s->bw_acked = mig_tcp_acked();
	mig_stats.setup_ns = menv_now_ns() - mig_stats.start_ns;
	mig_stats.status = MIG_ACTIVE;
	src_start_pass(0, s->vm->npages);
	s->phase = S_BULK;
}

/* ---- the state machine ---- */

int mig_src_start(uint32_t ip, uint16_t port)
{
	struct hv_vm *vm = menv_guest();
	if (!vm) {
		printf("error: no guest to migrate; 'guest start WORKLOAD' first\n");
		return -1;
	}
	if (vm->state != HV_VM_RUNNING && vm->state != HV_VM_STOPPED) {
		printf("error: the guest has exited or faulted; nothing to migrate\n");
		return -1;
	}
	if (mig_tcp_local_ip() == ip) {
		printf("error: cannot migrate to this instance's own address\n");
		return -1;
	}
	memset(s, 0, sizeof(*s));
	s->vm = vm;
	s->bitmap_bytes = (vm->npages + 63) / 64 * 8;
	s->out.buf = menv_alloc(SRC_OBUF_BYTES / PAGE, false);
	s->snap = menv_alloc(SRC_BATCH, false);
	s->enc = menv_alloc(SRC_BATCH, false);
	s->bitmap = menv_alloc((s->bitmap_bytes + PAGE - 1) / PAGE, true);
	s->r = stream_reader_new(STREAM_DIR_REPLY);
	if (!s->out.buf || !s->snap || !s->enc || !s->bitmap || !s->r) {
		src_release(false);
		printf("error: out of memory for the migration buffers\n");
		return -1;
	}
	/* The whole cache budget now, or no migration: nothing is allocated
	 * per page later. */
	char why[200];
	if (mig_params.xbzrle != MIG_XBZRLE_OFF && src_reserve_cache(mig_params.xbzrle_cache_bytes, why, sizeof(why)) < 0) {
		src_release(false);
		printf("error: %s\n", why);
		return -1;
	}
	if (mig_tcp_connect(ip, port) < 0) {
		src_release(false);
		return -1;
	}
	memset(&mig_stats, 0, sizeof(mig_stats));
	mig_stats.mig_id = mig_new_id();
	mig_stats.role = MIG_ROLE_SOURCE;
	mig_stats.status = MIG_SETUP;
	mig_stats.start_ns = menv_now_ns();
	mig_stats.total_bytes = vm->size;
	snprintf(mig_stats.peer, sizeof(mig_stats.peer), "%s", mig_tcp_peer());
	mig_out_init(&s->out, s->out.buf, SRC_OBUF_BYTES);
	s->out.rate = &s->rate;
	s->phase = S_CONNECT;
	s->phase_t0 = s->progress_t = menv_now_ns();
	return 0;
}

static void send_hello(void)
{
	s->offered_codecs = STREAM_CODEC_RAW | (mig_params.zero_pages ? STREAM_CODEC_ZERO : 0) |
			   (s->cache ? STREAM_CODEC_XBZRLE : 0);
	struct stream_hello h = {
		.page_size = PAGE, .codecs = (uint32_t)s->offered_codecs, .guest_pages = s->vm->npages,
		.caps = src_caps(),
		.xbzrle_cache_bytes = s->cache ? mig_params.xbzrle_cache_bytes : 0,
		.digests = STREAM_DIGEST_XXH3_128, .mig_id = mig_stats.mig_id,
	};
	snprintf(h.software, sizeof(h.software), "ferry");
	if (stream_write_header(&s->out.w, 0) < 0 || stream_write_hello(&s->out.w, &h) < 0)
		return src_fail(0, stream_writer_error(&s->out.w));
	mig_out_push(&s->out);
	s->phase = S_HELLO;
	s->phase_t0 = menv_now_ns();
}

/* Fail when the link stops moving: unacknowledged bytes and no progress. */
static bool link_stalled(void)
{
	uint64_t now = menv_now_ns(), acked = mig_tcp_acked();
	if (acked != s->progress_acked || mig_tcp_unacked() == 0) {
		s->progress_acked = acked;
		s->progress_t = now;
		return false;
	}
	return now - s->progress_t > MIG_STALL_TIMEOUT_NS;
}

/* Past the stop and before GO: the downtime budget (max-downtime). */
static bool over_budget(uint64_t now)
{
	if (!mig_params.max_downtime_ms || !mig_stats.stop_ns)
		return false;
	uint64_t ms = (now - mig_stats.stop_ns) / 1000000;
	if (ms <= mig_params.max_downtime_ms)
		return false;
	char why[120];
	snprintf(why, sizeof(why), "downtime budget exceeded (%llu ms, max-downtime %llu ms)",
		 (unsigned long long)ms, (unsigned long long)mig_params.max_downtime_ms);
	src_end_badly(MIG_FAILED, 0, true, why);
	return true;
}

/* The destination's record of type (0: none) in each phase. */
static void on_reply(int type, const struct stream_record *rec)
{
	char why[240];
	uint32_t n = 0;
	const char *t = type == STREAM_NACK || type == STREAM_ERROR ? stream_rec_text(rec, &n) : "";
	snprintf(why, sizeof(why), "the destination answered %s%s%.*s", stream_type_to_str((uint32_t)type),
		 n ? ": " : "", (int)(n > 150 ? 150 : n), t);
	if (type == STREAM_HELLO_ACK && s->phase == S_HELLO)
		return got_ack(rec);
	if (type == STREAM_READY && s->phase == S_READY) {
		mig_stats.ready_ns = menv_now_ns() - mig_stats.stop_ns;
		if (!over_budget(menv_now_ns()))
			src_send_go();
		return;
	}
	if (s->phase < S_COMMITTING)
		return src_fail(0, why); /* before GO: it never ran the guest */
	if (type == STREAM_COMMIT && s->phase == S_COMMITTING) {
		mig_stats.downtime_ns = menv_now_ns() - mig_stats.stop_ns;
		if (!s->live)
			return src_handed_over("");
		s->phase = S_VERIFY;
		return;
	}
	if (type == STREAM_VERIFIED && s->phase == S_VERIFY) {
		mig_stats.verified_ns = menv_now_ns() - mig_stats.stop_ns;
		return src_handed_over(" (memory verified)");
	}
	/* After GO only a NACK says for sure that the guest does not run
	 * there; before its COMMIT a CANCEL does too (an operator discarded
	 * it before GO arrived). An ERROR does not: the destination sends
	 * one after COMMIT when its verification cannot finish. */
	if (type == STREAM_NACK || (s->phase == S_COMMITTING && type == STREAM_CANCEL))
		return src_taken_back(why);
	src_in_doubt(why);
}

/* The link, after the reply: failures before GO resume the guest here,
 * after GO they leave it in-doubt. */
static void check_link(void)
{
	uint64_t now = menv_now_ns();
	char why[200];
	why[0] = 0;
	if (mig_tcp_state() == MIG_TCP_FAILED)
		snprintf(why, sizeof(why), "link to %s: %s", mig_stats.peer, mig_tcp_why());
	else if (mig_tcp_peer_closed())
		snprintf(why, sizeof(why), "%s closed the connection without a verdict", mig_stats.peer);
	else if (link_stalled())
		snprintf(why, sizeof(why), "timeout: %s acknowledged nothing for 10 s", mig_stats.peer);
	else if (s->phase == S_READY && now - s->phase_t0 > SRC_READY_TIMEOUT_NS)
		snprintf(why, sizeof(why), "timeout: no READY from %s 30 s after END", mig_stats.peer);
	else if (s->phase == S_HELLO && now - s->phase_t0 > SRC_CONNECT_TIMEOUT_NS)
		snprintf(why, sizeof(why), "timeout: no HELLO_ACK from %s within 10 s", mig_stats.peer);
	else if (s->phase >= S_COMMITTING && now - s->phase_t0 > mig_verify_deadline_ns(s->vm->size))
		snprintf(why, sizeof(why), "timeout: no verdict from %s %llu s after GO", mig_stats.peer,
			 (unsigned long long)(mig_verify_deadline_ns(s->vm->size) / 1000000000));
	else if (s->phase >= S_COMMITTING && src_verdict_overdue(now))
		snprintf(why, sizeof(why), "timeout: no verdict from %s 30 s after it had all our region hashes",
			 mig_stats.peer);
	if (!why[0])
		return;
	if (s->phase >= S_COMMITTING)
		return src_in_doubt(why);
	/* Before GO: say so while the link may still carry it (one direction
	 * may work), so a destination holding a READY copy discards it
	 * instead of waiting in-doubt. */
	src_fail(mig_tcp_state() == MIG_TCP_OPEN ? STREAM_WERR_TIMEOUT : 0, why);
}

int mig_src_poll(void)
{
	if (s->phase == S_IDLE || s->phase == S_INDOUBT)
		return 0;
	if (s->phase == S_DRAIN)
		return src_drain();
	uint64_t t0 = menv_now_ns();
	char why[200];
	if (s->tail_end && !mig_stats.acked_ns && mig_tcp_acked() >= s->tail_end)
		mig_stats.acked_ns = t0 - mig_stats.stop_ns;
	if (s->phase == S_CONNECT) {
		if (mig_tcp_state() == MIG_TCP_FAILED) {
			snprintf(why, sizeof(why), "cannot connect to %s: %s", mig_stats.peer, mig_tcp_why());
			src_fail(0, why);
			return 1;
		}
		if (mig_tcp_state() == MIG_TCP_OPEN) {
			send_hello();
			return 1;
		}
		if (t0 - s->phase_t0 > SRC_CONNECT_TIMEOUT_NS) {
			snprintf(why, sizeof(why), "cannot connect to %s: no answer for 10 s", mig_stats.peer);
			src_fail(0, why);
			return 1;
		}
		return 0;
	}
	/* The reply stream: HELLO_ACK, READY, COMMIT, VERIFIED (or a NACK). */
	struct stream_record rec;
	int type;
	while (s->phase != S_IDLE && s->phase != S_INDOUBT && s->phase != S_DRAIN && (type = read_reply(&rec)) > 0)
		on_reply(type, &rec);
	if (s->phase == S_IDLE || s->phase == S_INDOUBT || s->phase == S_DRAIN)
		return 1;
	if ((s->phase >= S_FINAL && s->phase <= S_READY) && over_budget(t0))
		return 1;
	/* After the reply: a destination that said why (NACK, CANCEL) and
	 * closed may reset the connection on our next segment. */
	check_link();
	if (s->phase == S_IDLE || s->phase == S_INDOUBT || s->phase == S_DRAIN)
		return 1;
	mig_out_push(&s->out);
	while (s->phase >= S_BULK && s->phase <= S_FINAL && room_to_produce() && s->out.sent == 0 &&
	       menv_now_ns() - t0 < MIG_POLL_BUDGET_NS) {
		bool more = send_chunk(s->phase == S_BULK);
		if (src_ended())
			return 1;
		if (!more) {
			end_pass();
			if (s->phase == S_FINAL)
				write_tail();
			else
				src_next_round();
		}
		if (src_ended())
			return 1;
	}
	mig_stats.transferred = s->out.w.bytes;
	mig_out_push(&s->out);
	if (s->phase == S_DIGEST) {
		digest_step();
		if (src_ended())
			return 1;
		mig_out_push(&s->out);
	}
	if (s->live && (s->phase == S_COMMITTING || s->phase == S_VERIFY) && s->rg_sent < s->rg.n)
		src_send_regions();
	return 1;
}

int mig_src_cancel(void)
{
	if (s->phase >= S_COMMITTING && s->phase <= S_INDOUBT) {
		printf("error: past the point of no return: GO went to %s at +%llu ms, and the guest may run there;\n"
		       "  %s\n",
		       mig_stats.peer, (unsigned long long)(mig_stats.go_ns / 1000000),
		       s->phase == S_INDOUBT ? "it is in-doubt: 'migrate_resolve resume' or 'migrate_resolve discard'"
					    : "wait for the destination's verdict");
		return -1;
	}
	if (s->phase != S_IDLE && s->phase != S_DRAIN)
		src_end_badly(MIG_CANCELLED, 0, true, "cancelled by the operator; the guest runs here");
	return 0;
}

int mig_src_resolve(bool resume)
{
	if (s->phase != S_INDOUBT)
		return -1;
	if (resume) {
		src_resume_guest();
		src_release(false);
		mig_finish(MIG_FAILED, "in-doubt resolved by the operator: the guest runs here again");
	} else {
		s->we_stopped = false;
		menv_guest_destroy();
		src_release(false);
		mig_finish(MIG_COMPLETED, "in-doubt resolved by the operator: the guest was dropped here (it runs on %s)",
			   mig_stats.peer);
	}
	return 0;
}

int mig_src_active(void)
{
	return s->phase != S_IDLE && s->phase != S_DRAIN;
}

bool mig_src_has_cache(void)
{
	return s->cache != NULL;
}

int mig_src_draining(void)
{
	return s->phase == S_DRAIN;
}
