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
 * A state machine advanced by mig_src_poll from the main loop, a bounded
 * slice of work per pass, so the guest keeps running and the console
 * keeps answering. The guest runs only between passes, never inside one:
 * a page read during a pass is a consistent snapshot, and pages are read
 * only after the harvest that cleared their dirty bits (dirtylog.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dirtylog.h"
#include "hv.h"
#include "mig_priv.h"
#include "mig_tcp.h"
#include "pcache.h"
#include "pmm.h"
#include "stream.h"
#include "vm.h"
#include "xbzrle.h"

#define SRC_BATCH 64                     /* pages per PAGE_DATA / XBZRLE_PAGES record */
#define SRC_OBUF_BYTES (2u << 20)        /* stream bytes buffered before TCP takes them */
#define SRC_CHUNK_MAX (SRC_BATCH * (STREAM_PAGE_SIZE + 64) + 8192) /* most one chunk writes */
#define SRC_CONNECT_TIMEOUT_NS (10ull * 1000000000)
#define SRC_READY_TIMEOUT_NS (30ull * 1000000000)   /* END written to READY: else cancel */
#define SRC_VERDICT_SLACK_NS (30ull * 1000000000)   /* see verdict_overdue */
#define SRC_DIGEST_SAMPLE 1024ull        /* pages hashed to estimate the digest's cost */
#define SRC_DIGEST_STEP 1024ull          /* pages hashed per poll in S_DIGEST (4 MiB) */
#define PAGE 4096u
#define SRC_CAPS (STREAM_CAP_CRC32C | STREAM_CAP_XSAVE | STREAM_CAP_ITER_STATS) /* offered */

/* S_FINAL: the guest is stopped, the last dirty pages go.
 * S_DIGEST (without verification after the switch-over): memory is hashed
 * a step per poll for the DIGEST before END.
 * S_READY: END is written; waiting for READY. Still ours to take back.
 * S_COMMITTING: GO is written (the point of no return); waiting for COMMIT
 * while the regions are hashed and their REGION_DIGESTs sent.
 * S_VERIFY: COMMIT came (the destination runs the guest); waiting for
 * VERIFIED or NACK.
 * S_INDOUBT: after GO the destination fell silent or the link failed: the
 * guest stays stopped here until migrate_resolve.
 * S_DRAIN: the migration has ended badly and the guest runs here again;
 * only the ERROR or CANCEL record (and the stream bytes queued ahead of
 * it) are still being handed to TCP before the connection closes. */
enum src_phase { S_IDLE, S_CONNECT, S_HELLO, S_BULK, S_ROUND, S_FINAL, S_DIGEST, S_READY, S_COMMITTING,
		 S_VERIFY, S_INDOUBT, S_DRAIN };

static struct {
	enum src_phase phase;
	struct hv_vm *vm;
	struct mig_out out;       /* the stream; out.buf is SRC_OBUF_BYTES */
	struct stream_reader *r;  /* the reply stream */
	uint64_t offered_codecs;
	uint64_t *bitmap;         /* dirty pages of this round, cleared as sent */
	size_t bitmap_bytes;
	uint64_t cursor;          /* next page to look at in this pass */
	uint64_t pending;         /* dirty pages of this pass not sent yet */
	struct pcache *cache;
	bool xbzrle_ok;           /* agreed with the peer */
	bool xbzrle_latched;
	bool cache_fresh;         /* created at the last harvest */
	struct mig_policy pol;
	struct mig_bw bw;
	uint64_t bw_t, bw_acked;  /* last bandwidth sample point */
	uint64_t harvest_t;       /* last harvest */
	uint64_t cache_hits0, cache_lookups0;
	struct stream_iter_end it;
	uint64_t it_t0, it_bytes0;
	bool we_stopped;
	uint64_t phase_t0, progress_t, progress_acked;
	uint64_t tail_end;        /* stream bytes up to the CPU state (0: not written yet) */
	struct stream_digest_steps dg;  /* S_DIGEST */
	bool live;                /* verification after the switch-over agreed */
	struct mig_regions rg;    /* live: this copy's region hashes, from GO */
	uint64_t rg_sent;         /* regions sent in REGION_DIGEST records */
	uint64_t all_acked_t;     /* when they were all acknowledged (0: not yet) */
	/* the batch being filled */
	uint64_t raw_pfn[SRC_BATCH];
	const uint8_t *raw_page[SRC_BATCH];
	uint32_t nraw;
	uint64_t zero_pfn[SRC_BATCH];
	uint32_t nzero;
	struct stream_xbzrle_page xb[SRC_BATCH];
	uint32_t nxb;
	uint8_t *snap;            /* SRC_BATCH page snapshots */
	uint8_t *enc;             /* SRC_BATCH encodings */
	uint32_t nsnap;
} s;

/* A failure inside a step ended the migration (the guest runs again,
 * the last record may still be draining): the step must stop there. */
static bool ended(void)
{
	return s.phase == S_IDLE || s.phase == S_DRAIN;
}

/* ---- output ---- */

static bool room_to_produce(void)
{
	return stream_writer_buffered(&s.out.w) + SRC_CHUNK_MAX <= SRC_OBUF_BYTES;
}

/* ---- ending ---- */

/* Free the migration's state; keep_out keeps the stream buffer for S_DRAIN. */
static void release(bool keep_out)
{
	mig_regions_end(&s.rg);
	if (s.cache)
		pcache_destroy(s.cache);
	s.cache = NULL;
	stream_reader_free(s.r);
	s.r = NULL;
	if (s.out.buf && !keep_out)
		pmm_free(s.out.buf, SRC_OBUF_BYTES / PAGE);
	if (s.snap)
		pmm_free(s.snap, SRC_BATCH);
	if (s.enc)
		pmm_free(s.enc, SRC_BATCH);
	if (s.bitmap)
		pmm_free(s.bitmap, (s.bitmap_bytes + PAGE - 1) / PAGE);
	if (!keep_out)
		s.out.buf = NULL;
	s.snap = s.enc = NULL;
	s.bitmap = NULL;
	s.phase = S_IDLE;
}

/* Give the guest back: logging off, running again if we paused it. */
static void resume_guest(void)
{
	struct hv_vm *vm = hv_guest();
	if (vm && vm == s.vm) {
		dirtylog_stop(vm);
		if (s.we_stopped && vm->state == HV_VM_STOPPED)
			vm->state = HV_VM_RUNNING;
	}
	s.we_stopped = false;
}

/* Fail (or cancel): tell the peer with an ERROR (werr) or CANCEL record
 * when the link still works, resume the guest, report. The record, and
 * any stream bytes queued ahead of it, must all reach TCP before the
 * close: what TCP cannot take yet is handed over from S_DRAIN. */
static void src_end_badly(enum mig_status st, uint32_t werr, bool cancel, const char *why)
{
	bool drain = false;
	if (mig_tcp_state() == MIG_TCP_OPEN && (werr || cancel) && s.out.buf) {
		/* Drop what is buffered: the verdict record replaces it. */
		if (s.out.sent == 0)
			stream_writer_set_buf(&s.out.w, s.out.buf, SRC_OBUF_BYTES);
		if (cancel)
			stream_write_cancel(&s.out.w);
		else
			stream_write_error(&s.out.w, werr, why);
		mig_out_push(&s.out);
		drain = mig_out_pending(&s.out);
		if (!drain)
			mig_tcp_close(); /* lwIP still sends what it queued */
	} else {
		mig_tcp_abort();
	}
	resume_guest();
	release(drain);
	mig_finish(st, "%s", why);
	if (drain) {
		s.phase = S_DRAIN;
		s.phase_t0 = clock_ns();
	}
}

/* S_DRAIN: the rest goes to TCP, then the connection ends. */
static int src_drain(void)
{
	bool moved;
	if (mig_out_drain(&s.out, s.phase_t0, &moved))
		return moved; /* idle while TCP waits for ACKs */
	pmm_free(s.out.buf, SRC_OBUF_BYTES / PAGE);
	s.out.buf = NULL;
	s.phase = S_IDLE;
	return 1;
}

static void src_fail(uint32_t werr, const char *why)
{
	src_end_badly(MIG_FAILED, werr, false, why);
}

static uint8_t *src_page(void *ctx, uint64_t pfn)
{
	(void)ctx;
	return hv_gpa_ptr(s.vm, pfn << 12, PAGE);
}

/* ---- pages ---- */

static void flush_batch(void)
{
	int rc = 0;
	if (s.nraw)
		rc |= stream_write_pages(&s.out.w, s.nraw, s.raw_pfn, s.raw_page);
	if (s.nzero)
		rc |= stream_write_zero_pages(&s.out.w, s.nzero, s.zero_pfn);
	if (s.nxb)
		rc |= stream_write_xbzrle_pages(&s.out.w, s.nxb, s.xb);
	s.nraw = s.nzero = s.nxb = s.nsnap = 0;
	if (rc)
		src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s.out.w));
}

/* One page of a pass. bulk: the first pass (nothing cached yet). */
static void send_page(uint64_t pfn, bool bulk)
{
	const uint8_t *g = hv_gpa_ptr(s.vm, pfn << 12, PAGE);
	if (xbzrle_is_zero(g, PAGE)) {
		s.zero_pfn[s.nzero++] = pfn;
		s.it.pages_zero++;
		mig_stats.duplicate++;
		if (s.cache)
			pcache_remove(s.cache, pfn); /* the peer holds zeros now */
		return;
	}
	if (bulk || !s.cache) {
		s.raw_pfn[s.nraw] = pfn;
		s.raw_page[s.nraw++] = g; /* read when flushed, in this same pass */
		s.it.pages_raw++;
		mig_stats.normal++;
		return;
	}
	/* XBZRLE: one snapshot, encoded against what the peer holds, sent,
	 * and the same snapshot cached (the peer then holds exactly it). */
	uint8_t *snap = s.snap + (size_t)s.nsnap * PAGE;
	memcpy(snap, g, PAGE);
	const uint8_t *old = pcache_lookup(s.cache, pfn);
	mig_stats.xbzrle_lookups++;
	int n = XBZRLE_EOVERFLOW;
	if (old) {
		uint8_t *enc = s.enc + (size_t)s.nxb * PAGE;
		n = xbzrle_encode(old, snap, PAGE, enc, PAGE);
		if (n == 0) {
			s.it.pages_skipped++;
			mig_stats.skipped++;
			return;
		}
		if (n > 0) {
			s.xb[s.nxb++] = (struct stream_xbzrle_page){ .pfn = pfn, .len = (uint32_t)n, .data = enc };
			s.it.pages_xbzrle++;
			mig_stats.xbzrle_pages++;
			mig_stats.xbzrle_bytes += (uint64_t)n;
		} else {
			s.it.xbzrle_overflow++;
			mig_stats.xbzrle_overflow++;
		}
	} else {
		s.it.xbzrle_cache_miss++;
		mig_stats.xbzrle_cache_miss++;
	}
	if (n < 0) {
		s.raw_pfn[s.nraw] = pfn;
		s.raw_page[s.nraw++] = snap;
		s.it.pages_raw++;
		mig_stats.normal++;
	}
	s.nsnap++;
	if (pcache_insert(s.cache, pfn, snap) < 0)
		pcache_remove(s.cache, pfn); /* never keep a copy the peer no longer holds */
	uint64_t held = pcache_bytes_used(s.cache);
	if (held > mig_stats.cache_peak)
		mig_stats.cache_peak = held;
}

/* Up to SRC_BATCH pages of the current pass; returns false when the pass
 * has no page left. */
static bool send_chunk(bool bulk)
{
	uint32_t taken = 0;
	while (s.cursor < s.vm->npages && taken < SRC_BATCH) {
		uint64_t pfn = s.cursor;
		if (!bulk) {
			uint64_t w = s.bitmap[pfn / 64] >> (pfn % 64);
			if (!w) { /* skip to the next word */
				s.cursor = (pfn / 64 + 1) * 64;
				continue;
			}
			pfn += (uint64_t)__builtin_ctzll(w);
			if (pfn >= s.vm->npages)
				break;
			s.bitmap[pfn / 64] &= ~(1ull << (pfn % 64));
			if (s.pending)
				s.pending--;
		}
		s.cursor = pfn + 1;
		send_page(pfn, bulk);
		taken++;
	}
	if (taken)
		flush_batch();
	if (ended())
		return false;
	if (bulk)
		s.pending = s.vm->npages - s.cursor;
	mig_stats.remaining = s.pending * PAGE; /* an upper bound: raw pages */
	return s.cursor < s.vm->npages;
}

static void end_pass(void)
{
	uint64_t now = clock_ns();
	s.it.bytes = s.out.w.bytes - s.it_bytes0;
	s.it.duration_ns = now - s.it_t0;
	stream_write_iter_end(&s.out.w, &s.it);
}

static void start_pass(uint32_t iteration, uint64_t dirty)
{
	memset(&s.it, 0, sizeof(s.it));
	s.it.iteration = iteration;
	s.it.pages_dirty = dirty;
	s.it_t0 = clock_ns();
	s.it_bytes0 = s.out.w.bytes;
	s.cursor = 0;
	s.pending = dirty;
}

/* ---- rounds ---- */

static void final_phase(const char *reason)
{
	struct hv_vm *vm = s.vm;
	mig_stats.stop_reason = reason;
	if (vm->state == HV_VM_RUNNING) {
		vm->state = HV_VM_STOPPED;
		s.we_stopped = true;
	}
	mig_stats.stop_ns = clock_ns();
	/* Last harvest with the guest stopped: joins the pages the judged
	 * harvest left in the bitmap. */
	uint64_t more = dirtylog_harvest(vm, s.bitmap);
	mig_stats.dirty_sync_count++;
	if (s.cache)
		pcache_next_round(s.cache);
	start_pass((uint32_t)(mig_stats.rounds + 1), s.pending + more);
	mig_stats.stop_pages = s.pending;
	s.phase = S_FINAL;
}

/* Harvest, decide, and start the next pass (or the final one). */
static void next_round(void)
{
	uint64_t now = clock_ns();
	uint64_t acked = mig_tcp_acked();
	mig_bw_sample(&s.bw, acked - s.bw_acked, now - s.bw_t);
	s.bw_t = now;
	s.bw_acked = acked;
	mig_stats.mbps = s.bw.bytes_per_s * 8 / 1e6;

	if (s.vm->state != HV_VM_RUNNING && s.vm->state != HV_VM_STOPPED)
		return src_fail(STREAM_WERR_INTERNAL, "the guest exited or faulted during the migration");
	uint64_t dirty = dirtylog_harvest(s.vm, s.bitmap);
	mig_stats.dirty_sync_count++;
	double dt = (double)(now - s.harvest_t) / 1e9;
	s.harvest_t = now;
	mig_stats.dirty_pages_rate = dt > 0 ? (uint64_t)((double)dirty / dt) : 0;

	/* XBZRLE for the next pass: the cache's record over the last one. */
	uint64_t hits = 0, lookups = 0;
	/* A cache created for the last pass started empty: every lookup
	 * missed by construction. Judge its hit rate from the pass after. */
	if (s.cache && s.cache_fresh) {
		struct pcache_stats st;
		pcache_stats(s.cache, &st);
		s.cache_hits0 = st.hits;
		s.cache_lookups0 = st.hits + st.misses;
		s.cache_fresh = false;
		pcache_next_round(s.cache);
	} else if (s.cache) {
		struct pcache_stats st;
		pcache_stats(s.cache, &st);
		hits = st.hits - s.cache_hits0;
		lookups = st.hits + st.misses - s.cache_lookups0;
		s.cache_hits0 = st.hits;
		s.cache_lookups0 = st.hits + st.misses;
		pcache_next_round(s.cache);
	}
	/* What the dirty pages will cost on the wire, from what the pass just
	 * ended cost per page (XBZRLE and ZERO pages are far below a page).
	 * Not from the bulk pass: its zero pages say nothing about pages the
	 * guest is writing; assume raw pages after it. */
	uint64_t expect = mig_policy_expected_bytes(dirty, s.it.bytes, s.it.iteration ? s.it.pages_dirty : 0, PAGE);
	/* The pass just written is still in our buffer and TCP's (up to 4
	 * MiB): the final pass would queue behind it, so it counts too. */
	uint64_t backlog = stream_writer_buffered(&s.out.w) - s.out.sent + mig_tcp_unacked();
	mig_stats.expected_downtime_ns = mig_policy_downtime_ns(&s.pol, &s.bw, expect + backlog);
	enum mig_verdict v = mig_policy_judge(&s.pol, &s.bw, expect + backlog);
	s.pending = dirty;
	mig_stats.remaining = expect;

	bool on = s.xbzrle_ok && mig_policy_xbzrle(mig_params.xbzrle, s.cache != NULL, &s.xbzrle_latched,
						   dt > 0 ? (double)dirty * PAGE / dt : 0, &s.bw, hits, lookups);
	/* Never a new cache for the final pass: it would miss on every page
	 * and only add copying to the downtime. */
	if (on && !s.cache && v == MIG_CONTINUE) {
		s.cache = pcache_create(mig_params.xbzrle_cache_bytes, PAGE);
		s.cache_hits0 = s.cache_lookups0 = 0;
		s.cache_fresh = true;
		if (s.cache)
			pcache_set_policy(s.cache, PCACHE_LRU_AGED);
	} else if (!on && s.cache) {
		pcache_destroy(s.cache);
		s.cache = NULL;
	}
	mig_stats.xbzrle_on = s.cache != NULL;
	mig_stats.xbzrle_used |= mig_stats.xbzrle_on;
	if (v != MIG_CONTINUE)
		return final_phase(mig_verdict_name(v));
	mig_stats.rounds++;
	start_pass((uint32_t)mig_stats.rounds, dirty);
	s.phase = S_ROUND;
}

/* After the final pass: the CPU state of the stopped guest. */
static void write_cpu_state(void)
{
	struct hv_cpu_state *cpu = pmm_alloc(2, PMM_ZERO);
	if (!cpu)
		return src_fail(STREAM_WERR_RESOURCES, "out of memory for the CPU state");
	hv_cpu_capture(s.vm, cpu);
	if (s.vm->plat) {
		/* The platform's devices (and the event state the CPU record
		 * has no room for) just before the CPU. */
		uint8_t dev[512];
		_Static_assert(sizeof(dev) >= 328, "room for the platform's state");
		size_t n = vm_state_save(s.vm, cpu, dev, sizeof(dev));
		if (!n || stream_write_device_state(&s.out.w, STREAM_PLATFORM_PC_V1, dev, (uint32_t)n) < 0) {
			pmm_free(cpu, 2);
			return src_fail(STREAM_WERR_INTERNAL, "cannot write the platform's device state");
		}
	}
	struct stream_cpu_state c;
	mig_cpu_to_wire(cpu, &c);
	int rc = stream_write_cpu_state(&s.out.w, &c, cpu->xsave, mig_cpu_xsave_len());
	pmm_free(cpu, 2);
	if (rc < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s.out.w));
}


static void write_end(void)
{
	if (stream_write_end(&s.out.w) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s.out.w));
	s.phase = S_READY;
	s.phase_t0 = clock_ns();
}

/* The CPU state after the last page; then END (or, without verification
 * after the switch-over, S_DIGEST first). */
static void write_tail(void)
{
	/* Counted page by page as written, apart from stop_pages: the two
	 * differ if the pass missed or repeated a page of the bitmap. */
	mig_stats.final_pages = s.it.pages_zero + s.it.pages_raw + s.it.pages_xbzrle + s.it.pages_skipped;
	mig_stats.final_bytes = s.out.w.bytes - s.it_bytes0;
	mig_stats.final_written_ns = clock_ns() - mig_stats.stop_ns;
	write_cpu_state();
	if (ended())
		return;
	s.tail_end = s.out.w.bytes;
	if (s.live)
		return write_end();
	stream_digest_begin(&s.dg, s.vm->npages);
	mig_stats.digest_ns = 0;
	s.phase = S_DIGEST;
}

/* One step of the whole-memory digest; at the end the DIGEST and END
 * records, then wait for READY. */
static void digest_step(void)
{
	struct stream_digest dg;
	uint64_t t = clock_ns();
	int rc = stream_digest_step(&s.dg, src_page, NULL, SRC_DIGEST_STEP, &dg);
	mig_stats.digest_ns += clock_ns() - t;
	if (rc < 0)
		return src_fail(STREAM_WERR_INTERNAL, "a guest page is missing for the digest");
	if (rc == 0)
		return;
	if (stream_write_digest(&s.out.w, &dg) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s.out.w));
	mig_stats.digest_done_ns = clock_ns() - mig_stats.stop_ns;
	write_end();
}

/* ---- after GO ---- */

/* Past the point of no return and the destination cannot be heard: keep
 * the stopped guest, say what is known, wait for migrate_resolve. */
static void go_in_doubt(const char *why)
{
	mig_tcp_abort();
	release(false);
	s.phase = S_INDOUBT;
	mig_in_doubt(why);
}

/* The destination runs the guest and its memory matched ours: done. */
static void handed_over(const char *how)
{
	s.we_stopped = false;
	mig_tcp_close();
	hv_guest_destroy();
	release(false);
	mig_finish(MIG_COMPLETED, "guest handed over to %s%s", mig_stats.peer, how);
}

/* The destination said it does not run the guest (a NACK after GO, a
 * CANCEL or ERROR before its COMMIT): it runs here again. */
static void taken_back(const char *why)
{
	mig_tcp_close();
	resume_guest();
	release(false);
	mig_finish(MIG_FAILED, "%s; the guest runs here again", why);
}

static void send_go(void)
{
	if (stream_write_go(&s.out.w) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s.out.w));
	mig_out_push(&s.out);
	mig_stats.go_ns = clock_ns() - mig_stats.stop_ns;
	s.phase = S_COMMITTING;
	s.phase_t0 = clock_ns();
	if (s.live && mig_regions_begin(&s.rg, s.vm, false) < 0)
		go_in_doubt("out of memory for the region hashes after GO");
}

/* Hash this copy's regions and send their REGION_DIGESTs as they come. */
static void send_regions(void)
{
	int rc = mig_regions_step(&s.rg, MIG_POLL_BUDGET_NS);
	if (rc < 0)
		return go_in_doubt("a guest page is missing for the region hashes");
	uint64_t n;
	while ((n = mig_regions_ready(&s.rg, s.rg_sent)) > 0 &&
	       stream_writer_buffered(&s.out.w) + STREAM_MAX_REGIONS * 16 + 64 <= SRC_OBUF_BYTES) {
		uint32_t k = n > STREAM_MAX_REGIONS ? STREAM_MAX_REGIONS : (uint32_t)n;
		if (stream_write_region_digest(&s.out.w, s.rg_sent, k, &s.rg.h[s.rg_sent]) < 0)
			return go_in_doubt(stream_writer_error(&s.out.w));
		s.rg_sent += k;
	}
	mig_out_push(&s.out);
	if (rc == 1) {
		mig_stats.verify_hash_ns = s.rg.hash_ns;
		mig_stats.regions = s.rg.n;
	}
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
		int rc = stream_reader_feed(s.r, p, n, &used, rec);
		mig_tcp_consume(used);
		if (rc < 0) {
			char why[200];
			snprintf(why, sizeof(why), "bad reply from the destination: %s", stream_reader_error(s.r));
			if (s.phase >= S_COMMITTING)
				go_in_doubt(why);
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
	return SRC_CAPS | (s.vm->plat ? STREAM_CAP_PLATFORM_PC : 0) |
	       (mig_params.verify_after ? STREAM_CAP_VERIFY_AFTER : 0);
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
	if ((a.codecs & ~s.offered_codecs) || !(a.codecs & STREAM_CODEC_RAW) || (a.caps & ~src_caps()) ||
	    a.digest != STREAM_DIGEST_XXH3_128 || a.guest_pages != s.vm->npages || a.mig_id != mig_stats.mig_id) {
		return src_fail(STREAM_WERR_PROTOCOL, "the destination's HELLO_ACK does not match the HELLO");
	}
	if (!(a.caps & STREAM_CAP_XSAVE))
		return src_fail(STREAM_WERR_PROTOCOL, "the destination does not accept XSAVE state");
	if (s.vm->plat && !(a.caps & STREAM_CAP_PLATFORM_PC))
		return src_fail(STREAM_WERR_PROTOCOL, "the destination cannot run this guest's platform "
				"(ferry's PC with the kvm64-class CPU model)");
	stream_writer_set_crc(&s.out.w, a.caps & STREAM_CAP_CRC32C);
	s.xbzrle_ok = (a.codecs & STREAM_CODEC_XBZRLE) && mig_params.xbzrle != MIG_XBZRLE_OFF;
	mig_stats.cache_size = s.xbzrle_ok ? mig_params.xbzrle_cache_bytes : 0;

	struct stream_guest_info g = { .guest_pages = s.vm->npages, .nr_vcpus = 1,
				       .mode = mig_cpu_mode(s.vm->ops->name), .tsc_khz = clock_tsc_hz() / 1000 };
	snprintf(g.workload, sizeof(g.workload), "%s", hv_workload_name(s.vm->workload));
	snprintf(g.name, sizeof(g.name), "ferry-guest");
	if (stream_write_guest_info(&s.out.w, &g) < 0)
		return src_fail(STREAM_WERR_INTERNAL, stream_writer_error(&s.out.w));
	s.live = (a.caps & STREAM_CAP_VERIFY_AFTER) != 0;
	mig_stats.verify_after = s.live;
	/* Without verification after the switch-over the pause hashes all of
	 * memory (S_DIGEST, the destination at the DIGEST): time a sample and
	 * take one whole hash off the downtime limit. */
	uint64_t sample = s.vm->npages < SRC_DIGEST_SAMPLE ? s.vm->npages : SRC_DIGEST_SAMPLE;
	struct stream_digest dg;
	stream_digest_memory(src_page, NULL, sample, &dg); /* warm: caches, and TCG's translation */
	uint64_t t = clock_ns();
	stream_digest_memory(src_page, NULL, sample, &dg);
	mig_stats.digest_estimate_ns = (clock_ns() - t) * (s.vm->npages / sample);
	s.pol.fixed_ns = s.live ? 0 : 2 * mig_stats.digest_estimate_ns;
	/* Logging on before the bulk pass reads a page: a write after this
	 * point is seen by the first round's harvest. */
	dirtylog_start(s.vm);
	s.harvest_t = s.bw_t = clock_ns();
	s.bw_acked = mig_tcp_acked();
	mig_stats.setup_ns = clock_ns() - mig_stats.start_ns;
	mig_stats.status = MIG_ACTIVE;
	start_pass(0, s.vm->npages);
	s.phase = S_BULK;
}

/* ---- the state machine ---- */

int mig_src_start(uint32_t ip, uint16_t port)
{
	struct hv_vm *vm = hv_guest();
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
	memset(&s, 0, sizeof(s));
	s.vm = vm;
	s.bitmap_bytes = (vm->npages + 63) / 64 * 8;
	s.out.buf = pmm_alloc(SRC_OBUF_BYTES / PAGE, 0);
	s.snap = pmm_alloc(SRC_BATCH, 0);
	s.enc = pmm_alloc(SRC_BATCH, 0);
	s.bitmap = pmm_alloc((s.bitmap_bytes + PAGE - 1) / PAGE, PMM_ZERO);
	s.r = stream_reader_new(STREAM_DIR_REPLY);
	if (!s.out.buf || !s.snap || !s.enc || !s.bitmap || !s.r) {
		release(false);
		printf("error: out of memory for the migration buffers\n");
		return -1;
	}
	if (mig_tcp_connect(ip, port) < 0) {
		release(false);
		return -1;
	}
	memset(&mig_stats, 0, sizeof(mig_stats));
	mig_stats.mig_id = mig_new_id();
	mig_stats.role = MIG_ROLE_SOURCE;
	mig_stats.status = MIG_SETUP;
	mig_stats.start_ns = clock_ns();
	mig_stats.total_bytes = vm->size;
	snprintf(mig_stats.peer, sizeof(mig_stats.peer), "%s", mig_tcp_peer());
	s.pol.downtime_ns = mig_params.downtime_ms * 1000000ull;
	mig_out_init(&s.out, s.out.buf, SRC_OBUF_BYTES);
	s.phase = S_CONNECT;
	s.phase_t0 = s.progress_t = clock_ns();
	return 0;
}

static void send_hello(void)
{
	s.offered_codecs = STREAM_CODEC_RAW | STREAM_CODEC_ZERO |
			   (mig_params.xbzrle != MIG_XBZRLE_OFF ? STREAM_CODEC_XBZRLE : 0);
	struct stream_hello h = {
		.page_size = PAGE, .codecs = (uint32_t)s.offered_codecs, .guest_pages = s.vm->npages,
		.caps = src_caps(),
		.xbzrle_cache_bytes = mig_params.xbzrle != MIG_XBZRLE_OFF ? mig_params.xbzrle_cache_bytes : 0,
		.digests = STREAM_DIGEST_XXH3_128, .mig_id = mig_stats.mig_id,
	};
	snprintf(h.software, sizeof(h.software), "ferry");
	if (stream_write_header(&s.out.w, 0) < 0 || stream_write_hello(&s.out.w, &h) < 0)
		return src_fail(0, stream_writer_error(&s.out.w));
	mig_out_push(&s.out);
	s.phase = S_HELLO;
	s.phase_t0 = clock_ns();
}

/* Fail when the link stops moving: unacknowledged bytes and no progress. */
static bool link_stalled(void)
{
	uint64_t now = clock_ns(), acked = mig_tcp_acked();
	if (acked != s.progress_acked || mig_tcp_unacked() == 0) {
		s.progress_acked = acked;
		s.progress_t = now;
		return false;
	}
	return now - s.progress_t > MIG_STALL_TIMEOUT_NS;
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
	if (type == STREAM_HELLO_ACK && s.phase == S_HELLO)
		return got_ack(rec);
	if (type == STREAM_READY && s.phase == S_READY) {
		mig_stats.ready_ns = clock_ns() - mig_stats.stop_ns;
		if (!over_budget(clock_ns()))
			send_go();
		return;
	}
	if (s.phase < S_COMMITTING)
		return src_fail(0, why); /* before GO: it never ran the guest */
	if (type == STREAM_COMMIT && s.phase == S_COMMITTING) {
		mig_stats.downtime_ns = clock_ns() - mig_stats.stop_ns;
		if (!s.live)
			return handed_over("");
		s.phase = S_VERIFY;
		return;
	}
	if (type == STREAM_VERIFIED && s.phase == S_VERIFY) {
		mig_stats.verified_ns = clock_ns() - mig_stats.stop_ns;
		return handed_over(" (memory verified)");
	}
	/* After GO only a NACK says for sure that the guest does not run
	 * there; before its COMMIT a CANCEL does too (an operator discarded
	 * it before GO arrived). An ERROR does not: the destination sends
	 * one after COMMIT when its verification cannot finish. */
	if (type == STREAM_NACK || (s.phase == S_COMMITTING && type == STREAM_CANCEL))
		return taken_back(why);
	go_in_doubt(why);
}

/* After GO: every REGION_DIGEST went and was acknowledged, so all the
 * destination still does is hash its own copy, about as long as ours took
 * (it shares its CPU with its guest): a verdict later than 30 s plus 8
 * times our hashing will not come (a link cut in its direction only
 * leaves nothing unacknowledged here, so the stall check cannot tell). */
static bool verdict_overdue(uint64_t now)
{
	if (!s.live || s.rg_sent < s.rg.n || !s.rg.n || mig_out_pending(&s.out) || mig_tcp_unacked()) {
		s.all_acked_t = 0;
		return false;
	}
	if (!s.all_acked_t)
		s.all_acked_t = now;
	return now - s.all_acked_t > SRC_VERDICT_SLACK_NS + 8 * s.rg.hash_ns;
}

/* The link, after the reply: failures before GO resume the guest here,
 * after GO they leave it in-doubt. */
static void check_link(void)
{
	uint64_t now = clock_ns();
	char why[200];
	why[0] = 0;
	if (mig_tcp_state() == MIG_TCP_FAILED)
		snprintf(why, sizeof(why), "link to %s: %s", mig_stats.peer, mig_tcp_why());
	else if (mig_tcp_peer_closed())
		snprintf(why, sizeof(why), "%s closed the connection without a verdict", mig_stats.peer);
	else if (link_stalled())
		snprintf(why, sizeof(why), "timeout: %s acknowledged nothing for 10 s", mig_stats.peer);
	else if (s.phase == S_READY && now - s.phase_t0 > SRC_READY_TIMEOUT_NS)
		snprintf(why, sizeof(why), "timeout: no READY from %s 30 s after END", mig_stats.peer);
	else if (s.phase == S_HELLO && now - s.phase_t0 > SRC_CONNECT_TIMEOUT_NS)
		snprintf(why, sizeof(why), "timeout: no HELLO_ACK from %s within 10 s", mig_stats.peer);
	else if (s.phase >= S_COMMITTING && now - s.phase_t0 > mig_verify_deadline_ns(s.vm->size))
		snprintf(why, sizeof(why), "timeout: no verdict from %s %llu s after GO", mig_stats.peer,
			 (unsigned long long)(mig_verify_deadline_ns(s.vm->size) / 1000000000));
	else if (s.phase >= S_COMMITTING && verdict_overdue(now))
		snprintf(why, sizeof(why), "timeout: no verdict from %s 30 s after it had all our region hashes",
			 mig_stats.peer);
	if (!why[0])
		return;
	if (s.phase >= S_COMMITTING)
		return go_in_doubt(why);
	/* Before GO: say so while the link may still carry it (one direction
	 * may work), so a destination holding a READY copy discards it
	 * instead of waiting in-doubt. */
	src_fail(mig_tcp_state() == MIG_TCP_OPEN ? STREAM_WERR_TIMEOUT : 0, why);
}

int mig_src_poll(void)
{
	if (s.phase == S_IDLE || s.phase == S_INDOUBT)
		return 0;
	if (s.phase == S_DRAIN)
		return src_drain();
	uint64_t t0 = clock_ns();
	char why[200];
	if (s.tail_end && !mig_stats.acked_ns && mig_tcp_acked() >= s.tail_end)
		mig_stats.acked_ns = t0 - mig_stats.stop_ns;
	if (s.phase == S_CONNECT) {
		if (mig_tcp_state() == MIG_TCP_FAILED) {
			snprintf(why, sizeof(why), "cannot connect to %s: %s", mig_stats.peer, mig_tcp_why());
			src_fail(0, why);
			return 1;
		}
		if (mig_tcp_state() == MIG_TCP_OPEN) {
			send_hello();
			return 1;
		}
		if (t0 - s.phase_t0 > SRC_CONNECT_TIMEOUT_NS) {
			snprintf(why, sizeof(why), "cannot connect to %s: no answer for 10 s", mig_stats.peer);
			src_fail(0, why);
			return 1;
		}
		return 0;
	}
	/* The reply stream: HELLO_ACK, READY, COMMIT, VERIFIED (or a NACK). */
	struct stream_record rec;
	int type;
	while (s.phase != S_IDLE && s.phase != S_INDOUBT && s.phase != S_DRAIN && (type = read_reply(&rec)) > 0)
		on_reply(type, &rec);
	if (s.phase == S_IDLE || s.phase == S_INDOUBT || s.phase == S_DRAIN)
		return 1;
	if ((s.phase >= S_FINAL && s.phase <= S_READY) && over_budget(t0))
		return 1;
	/* After the reply: a destination that said why (NACK, CANCEL) and
	 * closed may reset the connection on our next segment. */
	check_link();
	if (s.phase == S_IDLE || s.phase == S_INDOUBT || s.phase == S_DRAIN)
		return 1;
	mig_out_push(&s.out);
	while (s.phase >= S_BULK && s.phase <= S_FINAL && room_to_produce() && s.out.sent == 0 &&
	       clock_ns() - t0 < MIG_POLL_BUDGET_NS) {
		bool more = send_chunk(s.phase == S_BULK);
		if (ended())
			return 1;
		if (!more) {
			end_pass();
			if (s.phase == S_FINAL)
				write_tail();
			else
				next_round();
		}
		if (ended())
			return 1;
	}
	mig_stats.transferred = s.out.w.bytes;
	mig_out_push(&s.out);
	if (s.phase == S_DIGEST) {
		digest_step();
		if (ended())
			return 1;
		mig_out_push(&s.out);
	}
	if (s.live && (s.phase == S_COMMITTING || s.phase == S_VERIFY) && s.rg_sent < s.rg.n)
		send_regions();
	return 1;
}

int mig_src_cancel(void)
{
	if (s.phase >= S_COMMITTING && s.phase <= S_INDOUBT) {
		printf("error: past the point of no return: GO went to %s at +%llu ms, and the guest may run there;\n"
		       "  %s\n",
		       mig_stats.peer, (unsigned long long)(mig_stats.go_ns / 1000000),
		       s.phase == S_INDOUBT ? "it is in-doubt: 'migrate_resolve resume' or 'migrate_resolve discard'"
					    : "wait for the destination's verdict");
		return -1;
	}
	if (s.phase != S_IDLE && s.phase != S_DRAIN)
		src_end_badly(MIG_CANCELLED, 0, true, "cancelled by the operator; the guest runs here");
	return 0;
}

int mig_src_resolve(bool resume)
{
	if (s.phase != S_INDOUBT)
		return -1;
	if (resume) {
		resume_guest();
		release(false);
		mig_finish(MIG_FAILED, "in-doubt resolved by the operator: the guest runs here again");
	} else {
		s.we_stopped = false;
		hv_guest_destroy();
		release(false);
		mig_finish(MIG_COMPLETED, "in-doubt resolved by the operator: the guest was dropped here (it runs on %s)",
			   mig_stats.peer);
	}
	return 0;
}

int mig_src_active(void)
{
	return s.phase != S_IDLE && s.phase != S_DRAIN;
}

int mig_src_draining(void)
{
	return s.phase == S_DRAIN;
}
