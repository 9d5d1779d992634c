/* mig_dst.c: the destination of a live migration: `migrate_incoming`
 * listens for a source, reads its stream incrementally, builds the guest
 * the stream describes, and at END checks and loads everything the guest
 * needs to run (memory, CPU state made ready for VM entry, devices) and
 * answers READY. Only GO runs the guest (COMMIT says so); with
 * verification after the switch-over its memory is then hashed region by
 * region as it runs (mig_verify.c) and compared with the source's
 * REGION_DIGEST records: VERIFIED, or on a mismatch the guest is stopped
 * and discarded here and NACK names the regions (the source resumes it).
 *
 * Trust: everything from the network is checked by the stream reader
 * (record layout, CRCs, order, the migration id), by stream_apply (pages in
 * range, XBZRLE that decodes, the digest) and by menv_cpu_check (a CPU state
 * ferry can load without faulting). A failure before GO discards the
 * half-built guest, leaves ferry as it was before the connection and
 * listens again; nothing the peer sends holds the listener for ever (a
 * HELLO within 10 s, a record every 30 s, at least 64 KiB/s on average
 * after the first minute). */
#include <stdio.h>
#include <string.h>

#include "hypercall.h"
#include "mig_priv.h"
#include "mig_tcp.h"
#include "stream.h"

#define DST_REPLY_BYTES 4096 /* reply stream buffer: header, HELLO_ACK, READY, COMMIT, a verdict */
#define DST_HELLO_TIMEOUT_NS (10ull * 1000000000)  /* connection to HELLO */
#define DST_RECORD_TIMEOUT_NS (30ull * 1000000000) /* between complete records */
#define DST_MIN_RATE_BYTES 65536ull                /* per s on average, after the first minute */
#define DST_RATE_GRACE_NS (60ull * 1000000000)
#define DST_ENTRY_WAIT_NS (1000ull * 1000000)  /* a halted guest has nothing to enter for: COMMIT anyway */

/* DST_READY: READY sent, the guest loaded and stopped, waiting for GO.
 * DST_STARTING: GO came, the guest was set running; COMMIT goes once it
 * has entered (a VM entry that fails is NACK 5, and the source resumes).
 * DST_VERIFY: the guest runs; its regions are hashed and compared.
 * DST_INDOUBT: READY sent and then the link failed or fell silent: the
 * stopped guest is kept until migrate_resolve.
 * DST_DRAIN: the last reply is leaving; then idle, or listening again. */
enum dst_phase { DST_IDLE, DST_LISTEN, DST_RECV, DST_READY, DST_STARTING, DST_VERIFY, DST_INDOUBT, DST_DRAIN };

static struct {
	enum dst_phase phase;
	uint32_t ip;           /* where migrate_incoming listens */
	uint16_t port;
	bool rearm;            /* listen again after the drain */
	struct stream_reader *r;
	struct stream_apply *a;
	struct mig_out out;    /* the reply stream, in reply[] */
	uint8_t reply[DST_REPLY_BYTES];
	bool created;          /* we created menv_guest() for this stream and it has not run */
	bool live;             /* verification after the switch-over agreed */
	uint32_t mode;         /* GUEST_INFO.mode */
	struct hv_cpu_state *cpu;
	bool have_cpu;
	bool have_dev;         /* a checked DEVICE_STATE is in dev[] */
	uint8_t dev[512];
	char cpu_why[160];
	uint64_t accept_ns, last_rec_ns, phase_t0, drain_t0;
	/* When the first record of the current pass was read (0: none yet),
	 * and of the pass the last ITER_END closed. At END that pass is the
	 * final one, whose first record the source wrote after stopping the
	 * guest: from there to COMMIT is downtime, measured by this clock. */
	uint64_t pass_t0, last_pass_t0;
	/* DST_VERIFY */
	struct mig_regions mine;
	struct stream_region_hash *theirs; /* the source's, theirs_pages pages */
	size_t theirs_pages;
	uint64_t theirs_n;     /* regions received */
	uint64_t exits0, failures0; /* the guest's exits and failed entries at GO */
} d;

/* ---- guest memory and CPU for stream_apply ---- */

static uint8_t *dst_page(void *ctx, uint64_t pfn)
{
	(void)ctx;
	struct hv_vm *vm = menv_guest();
	if (!vm || !d.created || pfn >= vm->npages)
		return NULL;
	return menv_page(vm, pfn, MENV_WRITE);
}

static int dst_cpu(void *ctx, const struct stream_cpu_state *c, const uint8_t *xsave)
{
	(void)ctx;
	struct hv_vm *vm = menv_guest();
	if (mig_cpu_from_wire(c, xsave, d.mode, d.cpu, d.cpu_why, sizeof(d.cpu_why)) < 0 ||
	    menv_cpu_check(vm, d.cpu, d.cpu_why, sizeof(d.cpu_why)) < 0) {
		d.have_cpu = false;
		return -1;
	}
	d.have_cpu = true;
	return 0;
}

static int dst_dev(void *ctx, uint32_t model, const uint8_t *state, uint32_t len)
{
	(void)ctx;
	struct hv_vm *vm = menv_guest();
	d.have_dev = false;
	if (!vm || !vm->plat || model != STREAM_PLATFORM_PC_V1) {
		snprintf(d.cpu_why, sizeof(d.cpu_why), "device state for a guest without a platform");
		return -1;
	}
	if (len > sizeof(d.dev) || menv_dev_check(state, len, d.cpu_why, sizeof(d.cpu_why)) < 0)
		return -1;
	memcpy(d.dev, state, len);
	d.have_dev = true;
	return 0;
}

/* ---- ending ---- */

static uint64_t exits(const struct hv_vm *vm)
{
	uint64_t n = 0;
	for (int i = 0; i < HV_EXIT_NREASONS; i++)
		n += vm->exits[i];
	return n;
}

static void free_theirs(void)
{
	if (d.theirs)
		menv_free(d.theirs, d.theirs_pages);
	d.theirs = NULL;
}

static void dst_release(void)
{
	stream_reader_free(d.r);
	stream_apply_free(d.a);
	d.r = NULL;
	d.a = NULL;
	if (d.cpu)
		menv_free(d.cpu, 2);
	d.cpu = NULL;
	free_theirs();
	mig_regions_end(&d.mine);
}

/* After a connection that ended before its guest ran: listen again, so
 * that a port scan or a wrong peer does not end migrate_incoming. */
static void dst_relisten(void)
{
	d.phase = DST_IDLE;
	if (!d.rearm)
		return;
	d.rearm = false;
	if (mig_tcp_listen(d.ip, d.port) < 0)
		return;
	d.phase = DST_LISTEN;
	mig_stats.status = MIG_SETUP;
	snprintf(mig_stats.peer, sizeof(mig_stats.peer), "%s", mig_tcp_peer());
	printf("migration: listening again on %s\n", mig_stats.peer);
}

/* The reply is written: let it leave, then close (and listen again when
 * rearm). */
static void dst_close(bool rearm)
{
	d.rearm = rearm;
	if (mig_out_pending(&d.out) && mig_tcp_state() == MIG_TCP_OPEN) {
		d.phase = DST_DRAIN;
		d.drain_t0 = menv_now_ns();
		return;
	}
	mig_tcp_close();
	dst_relisten();
}

/* The guest built here has not run: discard it. */
static void discard_guest(void)
{
	mig_regions_end(&d.mine); /* unprotected while the guest still exists */
	if (d.created && menv_guest())
		menv_guest_destroy();
	d.created = false;
}

/* Fail before GO: discard the guest we were building, answer with an
 * ERROR record of code werr (none when 0), close, listen again. */
static void dst_fail(uint32_t werr, const char *reason)
{
	char why[200]; /* reason may live in the reader, freed below */
	snprintf(why, sizeof(why), "%s", reason);
	discard_guest();
	if (werr && mig_tcp_state() == MIG_TCP_OPEN) {
		stream_write_error(&d.out.w, werr, why);
		mig_out_push(&d.out);
	}
	dst_release();
	mig_finish(MIG_FAILED, "%s", why);
	dst_close(true);
}

/* Refuse the guest (before it ran, or after GO when it could not start or
 * its memory differs): discard it, NACK, close, listen again. */
static void dst_nack(uint32_t code, const char *text)
{
	char why[200];
	snprintf(why, sizeof(why), "%s", text);
	discard_guest();
	stream_write_nack(&d.out.w, code, why);
	mig_out_push(&d.out);
	dst_release();
	mig_finish(MIG_FAILED, "NACK (%s): %s", stream_nack_to_str(code), why);
	dst_close(true);
}

/* END: everything the guest needs is here; load it so that GO only has
 * to run it, then READY. */
static void dst_end(void)
{
	struct hv_vm *vm = menv_guest();
	char why[160];
	if (!d.live && !stream_apply_stats(d.a)->digest_ok)
		return dst_nack(STREAM_NACK_INCOMPLETE, "END without a verified DIGEST");
	if (!d.have_cpu)
		return dst_nack(STREAM_NACK_CPU_STATE, "no CPU_STATE record");
	if (vm->plat && !d.have_dev)
		return dst_nack(STREAM_NACK_CPU_STATE, "no DEVICE_STATE record for the guest's platform");
	if (vm->plat)
		menv_dev_load(vm, d.dev, d.cpu); /* the devices, and the vCPU's event state into d.cpu */
	if (menv_cpu_restore(vm, d.cpu, why, sizeof(why)) < 0)
		return dst_nack(STREAM_NACK_CPU_STATE, why);
	mig_stats.pages_applied = stream_apply_stats(d.a)->pages_raw + stream_apply_stats(d.a)->pages_zero +
				  stream_apply_stats(d.a)->pages_xbzrle;
	stream_write_ready(&d.out.w);
	mig_out_push(&d.out);
	d.phase = DST_READY;
	d.phase_t0 = menv_now_ns();
}

/* GO: run the guest. With verification after the switch-over its regions
 * are protected first, so each is hashed as it was at this instant. */
static void dst_go(void)
{
	struct hv_vm *vm = menv_guest();
	if (mig_params.x_flip_gpa && mig_params.x_flip_gpa < vm->size) {
		/* Debug: a transfer bug, as if this byte had arrived wrong. */
		uint8_t *b = menv_page(vm, mig_params.x_flip_gpa >> 12, MENV_WRITE) + (mig_params.x_flip_gpa & 4095);
		*b ^= 0x01;
		printf("migration: debug: flipped the byte at guest-physical 0x%llx before the guest runs\n",
		       (unsigned long long)mig_params.x_flip_gpa);
		mig_params.x_flip_gpa = 0;
	}
	if (d.live) {
		d.theirs_pages = (stream_region_count(vm->npages) * sizeof(*d.theirs) + 4095) / 4096;
		if (mig_regions_begin(&d.mine, vm, true) < 0 || !(d.theirs = menv_alloc(d.theirs_pages, true)))
			return dst_nack(STREAM_NACK_START, "out of memory for the region hashes");
		d.theirs_n = 0;
	}
	/* A built-in guest's hypercall gate is the source backend's
	 * instruction (VMCALL and VMMCALL differ): give it ours (hashed
	 * first, when protected). An OS guest has no gate. */
	if (!vm->plat && d.mode != mig_cpu_mode(menv_backend()))
		menv_patch_gate(vm);
	d.created = false; /* it runs: never discarded for a link failure from here */
	d.exits0 = exits(vm);
	d.failures0 = vm->entry_failures;
	vm->start_ns = menv_now_ns();
	vm->state = HV_VM_RUNNING;
	d.phase = DST_STARTING;
	d.phase_t0 = menv_now_ns();
}

/* The guest entered (an exit since GO and still running), or it halted
 * with nothing to wake it for DST_ENTRY_WAIT_NS: COMMIT. Stopped at its
 * first entry: NACK, and the source resumes its copy. */
static void dst_starting(void)
{
	struct hv_vm *vm = menv_guest();
	uint64_t n = exits(vm);
	/* Its only exit since GO is a failed VM entry (VMX entry failure or
	 * VMfail, SVM VMEXIT_INVALID): it never ran. A guest that ran and
	 * then faulted ran here: its fault is its own. */
	if (vm->state != HV_VM_RUNNING && n == d.exits0 + 1 && vm->entry_failures == d.failures0 + 1) {
		d.created = true; /* the source's copy is the guest */
		return dst_nack(STREAM_NACK_START, "VM entry failed: the guest never ran here");
	}
	if (n == d.exits0 && menv_now_ns() - d.phase_t0 < DST_ENTRY_WAIT_NS)
		return;
	/* Taken before COMMIT goes to TCP, so the source cannot have read it
	 * yet: the source's downtime is at least this long. */
	mig_stats.resumed_ns = d.last_pass_t0 ? menv_now_ns() - d.last_pass_t0 : 0;
	stream_write_commit(&d.out.w);
	mig_out_push(&d.out);
	if (!d.live) {
		dst_release();
		mig_finish(MIG_COMPLETED, "guest %s (%llu MiB) committed and running", menv_workload_name(vm->workload),
			   (unsigned long long)(vm->size >> 20));
		return dst_close(false);
	}
	printf("\nmigration: guest %s (%llu MiB) running here; verifying its memory\n",
	       menv_workload_name(vm->workload), (unsigned long long)(vm->size >> 20));
	d.phase = DST_VERIFY;
	d.phase_t0 = menv_now_ns();
}

/* After GO, the verification cannot finish (link, timeout, a bad record):
 * the guest keeps running here, unverified; the source is left in-doubt. */
static void dst_unverified(const char *reason)
{
	char why[200];
	snprintf(why, sizeof(why), "%s", reason);
	/* The guest runs here: the source must hear COMMIT before any ERROR
	 * (an ERROR before COMMIT would tell it the guest never ran). */
	if (d.phase == DST_STARTING && mig_tcp_state() == MIG_TCP_OPEN)
		stream_write_commit(&d.out.w);
	if (mig_tcp_state() == MIG_TCP_OPEN) {
		stream_write_error(&d.out.w, STREAM_WERR_PROTOCOL, why);
		mig_out_push(&d.out);
	}
	dst_release();
	mig_finish(MIG_COMPLETED, "guest running here, unverified: %s", why);
	dst_close(false);
}

/* Both ends' hashes are in: VERIFIED, or name the regions that differ,
 * stop and discard the guest, and NACK so the source resumes its copy. */
static void dst_compare(void)
{
	struct hv_vm *vm = menv_guest();
	char list[120];
	size_t at = 0;
	uint64_t bad = 0;
	list[0] = 0;
	for (uint64_t r = 0; r < d.mine.n; r++) {
		if (!memcmp(&d.mine.h[r], &d.theirs[r], sizeof(d.theirs[r])))
			continue;
		if (bad++ < 6 && at < sizeof(list))
			at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%llu (0x%llx)", bad > 1 ? ", " : "",
					       (unsigned long long)r, (unsigned long long)(r * HV_REGION_PAGES * 4096));
	}
	mig_stats.verify_done_ns = d.mine.done_ns;
	mig_stats.regions = d.mine.n;
	mig_stats.regions_at_write = d.mine.at_write;
	mig_stats.at_write_ns = d.mine.at_write_ns;
	mig_stats.verify_hash_ns = d.mine.hash_ns;
	if (bad) {
		char text[200];
		snprintf(text, sizeof(text), "%llu of %llu regions differ from the source's: %s%s",
			 (unsigned long long)bad, (unsigned long long)d.mine.n, list, bad > 6 ? ", ..." : "");
		snprintf(mig_stats.mismatch, sizeof(mig_stats.mismatch), "%s", text);
		vm->state = HV_VM_STOPPED;
		d.created = true; /* discarded: the source's copy is the guest */
		return dst_nack(STREAM_NACK_REGIONS, text);
	}
	stream_write_verified(&d.out.w);
	mig_out_push(&d.out);
	dst_release();
	mig_finish(MIG_COMPLETED, "guest %s (%llu MiB) running here; memory verified (%llu regions)",
		   menv_workload_name(vm->workload), (unsigned long long)(vm->size >> 20),
		   (unsigned long long)mig_stats.regions);
	dst_close(false);
}

/* READY went and then the link failed or fell silent: GO may have been
 * sent and lost, or the source may have resumed. Keep the stopped guest. */
static void dst_in_doubt(const char *why)
{
	mig_tcp_abort();
	dst_release();
	d.phase = DST_INDOUBT;
	mig_in_doubt(why);
}

/* ---- records ---- */

static void dst_hello(const struct stream_record *rec)
{
	struct stream_hello h;
	stream_rec_get(rec, &h, sizeof(h));
	/* Agreed: what the source offers, this end knows, and its own
	 * capabilities leave on. */
	uint32_t codecs = STREAM_CODEC_RAW | (mig_params.zero_pages ? STREAM_CODEC_ZERO : 0) |
			  (mig_params.xbzrle != MIG_XBZRLE_OFF ? STREAM_CODEC_XBZRLE : 0);
	uint32_t caps = STREAM_CAP_KNOWN & ~(mig_params.record_crc ? 0u : STREAM_CAP_CRC32C) &
			~(mig_params.verify_after ? 0u : STREAM_CAP_VERIFY_AFTER);
	struct stream_hello_ack ack = {
		.guest_pages = h.guest_pages,
		.codecs = h.codecs & codecs,
		.caps = h.caps & caps,
		.digest = STREAM_DIGEST_XXH3_128,
		.page_size = STREAM_PAGE_SIZE,
		.mig_id = h.mig_id,
	};
	uint64_t bytes = h.guest_pages * STREAM_PAGE_SIZE;
	char why[200];
	if (h.page_size != STREAM_PAGE_SIZE) {
		ack.status = STREAM_REFUSE_PAGE_SIZE;
		snprintf(ack.reason, sizeof(ack.reason), "page size %u, ferry uses 4096", (unsigned)h.page_size);
	} else if (!(h.digests & STREAM_DIGEST_XXH3_128)) {
		ack.status = STREAM_REFUSE_DIGEST;
		snprintf(ack.reason, sizeof(ack.reason), "no XXH3-128 digest offered");
	} else if (!(h.codecs & STREAM_CODEC_RAW)) {
		ack.status = STREAM_REFUSE_CODEC;
		snprintf(ack.reason, sizeof(ack.reason), "no RAW codec offered");
	} else if (menv_guest()) {
		ack.status = STREAM_REFUSE_BUSY;
		snprintf(ack.reason, sizeof(ack.reason), "a guest already runs here");
	} else if (bytes < HV_SIZE_MIN || bytes > HV_SIZE_MAX || bytes % (2ull << 20)) {
		ack.status = STREAM_REFUSE_GUEST_SIZE;
		snprintf(ack.reason, sizeof(ack.reason), "guest of %llu pages: ferry takes 2 MiB multiples, %llu..%llu MiB",
			 (unsigned long long)h.guest_pages, (unsigned long long)(HV_SIZE_MIN >> 20),
			 (unsigned long long)(HV_SIZE_MAX >> 20));
	} else if ((h.caps & STREAM_CAP_PLATFORM_PC) && menv_platform_check(why, sizeof(why)) < 0) {
		ack.status = STREAM_REFUSE_PLATFORM;
		snprintf(ack.reason, sizeof(ack.reason), "no PC platform on backend %s", menv_backend());
	} else if (menv_guest_create(bytes, (h.caps & STREAM_CAP_PLATFORM_PC) ? GUEST_WL_LINUX
										     : GUEST_WL_IDLE) < 0) {
		ack.status = STREAM_REFUSE_GUEST_SIZE;
		snprintf(ack.reason, sizeof(ack.reason), "not enough memory for %llu MiB", (unsigned long long)(bytes >> 20));
	} else {
		d.created = true;
	}
	if (ack.codecs & STREAM_CODEC_XBZRLE)
		ack.xbzrle_cache_bytes = h.xbzrle_cache_bytes;
	if (ack.status) {
		ack.codecs = ack.caps = 0;
		ack.xbzrle_cache_bytes = 0;
		stream_write_hello_ack(&d.out.w, &ack);
		mig_out_push(&d.out);
		snprintf(why, sizeof(why), "refused the source: %.64s", ack.reason);
		return dst_fail(0, why);
	}
	stream_write_hello_ack(&d.out.w, &ack);
	mig_out_push(&d.out);
	stream_reader_set_agreed(d.r, &ack);
	mig_stats.agreed = true;
	mig_stats.agreed_caps = ack.caps;
	mig_stats.agreed_codecs = ack.codecs;
	d.live = (ack.caps & STREAM_CAP_VERIFY_AFTER) != 0;
	mig_stats.verify_after = d.live;
	mig_stats.mig_id = h.mig_id;
	mig_stats.total_bytes = bytes;
	mig_stats.cache_size = ack.xbzrle_cache_bytes;
	mig_stats.setup_ns = menv_now_ns() - mig_stats.start_ns;
	if (!(d.a = stream_apply_new(dst_page, dst_cpu, NULL)) || !(d.cpu = menv_alloc(2, true)))
		return dst_fail(STREAM_WERR_RESOURCES, "out of memory for the stream state");
	stream_apply_set_dev(d.a, dst_dev);
	stream_apply_record(d.a, rec);
	mig_stats.status = MIG_ACTIVE;
}

/* GUEST_INFO: a guest this backend cannot run is refused here, before
 * any page (not after the whole pre-copy). */
static void dst_guest_info(const struct stream_record *rec)
{
	struct stream_guest_info g;
	stream_rec_get(rec, &g, sizeof(g));
	char wl[33];
	memcpy(wl, g.workload, 32);
	wl[32] = 0;
	int w = menv_workload_parse(wl);
	if (w >= 0)
		menv_guest()->workload = (unsigned)w;
	d.mode = g.mode;
	uint32_t mine = mig_cpu_mode(menv_backend());
	bool hw = (g.mode == STREAM_MODE_VMX || g.mode == STREAM_MODE_SVM) && mine != STREAM_MODE_PTE;
	if (g.mode != mine && !hw) {
		char text[160];
		snprintf(text, sizeof(text), "a guest of mode %s cannot run on backend %s", stream_mode_to_str(g.mode),
			 menv_backend());
		dst_nack(STREAM_NACK_CPU_STATE, text);
	}
}

static void dst_record(const struct stream_record *rec)
{
	d.last_rec_ns = menv_now_ns();
	if (!d.pass_t0)
		d.pass_t0 = menv_now_ns();
	if (rec->type == STREAM_ITER_END) {
		d.last_pass_t0 = d.pass_t0;
		d.pass_t0 = 0;
	}
	if (rec->type == STREAM_HELLO)
		return dst_hello(rec);
	if (rec->type == STREAM_ERROR || rec->type == STREAM_CANCEL) {
		uint32_t n = 0;
		const char *t = rec->type == STREAM_ERROR ? stream_rec_text(rec, &n) : "";
		char why[200];
		snprintf(why, sizeof(why), "the source sent %s%s%.*s", stream_type_to_str(rec->type), n ? ": " : "",
			 (int)(n > 150 ? 150 : n), t);
		return dst_fail(0, why);
	}
	if (rec->type == STREAM_GUEST_INFO) {
		dst_guest_info(rec);
		if (d.phase != DST_RECV)
			return;
	}
	if (stream_apply_record(d.a, rec) < 0) {
		const char *e = stream_apply_error(d.a);
		if (rec->type == STREAM_DIGEST)
			return dst_nack(STREAM_NACK_DIGEST, e);
		if (rec->type == STREAM_CPU_STATE || rec->type == STREAM_DEVICE_STATE)
			return dst_nack(STREAM_NACK_CPU_STATE, d.cpu_why[0] ? d.cpu_why : e);
		return dst_fail(STREAM_WERR_PROTOCOL, e);
	}
	if (rec->type == STREAM_END)
		dst_end();
}

/* ---- the state machine ---- */

int mig_dst_start(uint32_t ip, uint16_t port)
{
	if (mig_tcp_listen(ip, port) < 0)
		return -1;
	memset(&mig_stats, 0, sizeof(mig_stats));
	mig_stats.role = MIG_ROLE_DEST;
	mig_stats.status = MIG_SETUP;
	snprintf(mig_stats.peer, sizeof(mig_stats.peer), "%s", mig_tcp_peer());
	d.ip = ip;
	d.port = port;
	d.phase = DST_LISTEN;
	return 0;
}

static void dst_accepted(void)
{
	d.r = stream_reader_new(STREAM_DIR_MIGRATION);
	mig_out_init(&d.out, d.reply, sizeof(d.reply));
	d.created = d.have_cpu = d.have_dev = d.live = false;
	d.cpu_why[0] = 0;
	d.mode = 0;
	d.pass_t0 = d.last_pass_t0 = 0;
	d.accept_ns = d.last_rec_ns = menv_now_ns();
	uint64_t attempts = mig_stats.attempts + 1;
	memset(&mig_stats, 0, sizeof(mig_stats));
	mig_stats.role = MIG_ROLE_DEST;
	mig_stats.status = MIG_SETUP;
	mig_stats.attempts = attempts;
	mig_stats.start_ns = d.accept_ns;
	snprintf(mig_stats.peer, sizeof(mig_stats.peer), "%s", mig_tcp_peer());
	printf("\nmigration: incoming connection from %s\n", mig_stats.peer);
	d.phase = DST_RECV;
	if (!d.r)
		return dst_fail(STREAM_WERR_RESOURCES, "out of memory for the stream reader");
	stream_write_header(&d.out.w, 0);
	mig_out_push(&d.out);
}

/* Read records for one budget; returns whether anything came. */
static int dst_read(uint64_t t0)
{
	int did = 0;
	enum dst_phase ph = d.phase;
	while (d.phase == ph && menv_now_ns() - t0 < MIG_POLL_BUDGET_NS) {
		const uint8_t *p;
		size_t n = mig_tcp_peek(&p), used = 0;
		if (!n)
			break;
		struct stream_record rec;
		int rc = stream_reader_feed(d.r, p, n, &used, &rec);
		mig_tcp_consume(used);
		mig_stats.transferred += used;
		did = 1;
		if (rc < 0) {
			char why[200];
			snprintf(why, sizeof(why), "%s", stream_reader_error(d.r));
			if (d.phase == DST_STARTING || d.phase == DST_VERIFY)
				dst_unverified(why);
			else if (d.phase == DST_READY) /* GO may have been sent: say it never runs here */
				dst_nack(STREAM_NACK_INTERNAL, why);
			else
				dst_fail(STREAM_WERR_PROTOCOL, why);
			break;
		}
		if (rc != 1)
			continue;
		d.last_rec_ns = menv_now_ns();
		if (d.phase == DST_RECV)
			dst_record(&rec);
		else if (d.phase == DST_READY && rec.type == STREAM_GO)
			dst_go();
		else if (d.phase == DST_READY) /* CANCEL or ERROR: the source keeps its guest */
			dst_record(&rec);
		else if (rec.type == STREAM_REGION_DIGEST) {
			struct stream_region_digest rd;
			stream_rec_get(&rec, &rd, sizeof(rd));
			memcpy(&d.theirs[rd.first], rec.body + sizeof(rd), (size_t)rd.count * sizeof(*d.theirs));
			d.theirs_n = rd.first + rd.count;
		}
	}
	return did;
}

/* Bounds a connection cannot stretch: HELLO soon, records regularly, and
 * the bytes of a real migration. Returns why it is over, or NULL. */
static const char *dst_deadline(uint64_t now)
{
	static char why[120];
	if (!stream_reader_hello(d.r) && now - d.accept_ns > DST_HELLO_TIMEOUT_NS)
		return "timeout: no HELLO within 10 s of the connection";
	if (now - d.last_rec_ns > DST_RECORD_TIMEOUT_NS)
		return "timeout: no complete record for 30 s";
	uint64_t age = now - d.accept_ns;
	if (age > DST_RATE_GRACE_NS && mig_stats.transferred < DST_MIN_RATE_BYTES * (age / 1000000000)) {
		snprintf(why, sizeof(why), "timeout: %llu bytes in %llu s, under 64 KiB/s",
			 (unsigned long long)mig_stats.transferred, (unsigned long long)(age / 1000000000));
		return why;
	}
	return NULL;
}

static int dst_receive(void)
{
	uint64_t t0 = menv_now_ns();
	int did = dst_read(t0);
	if (d.phase != DST_RECV)
		return 1;
	const uint8_t *p;
	const char *late;
	if (mig_tcp_state() == MIG_TCP_FAILED)
		dst_fail(0, mig_tcp_why());
	else if (mig_tcp_peer_closed() && !mig_tcp_peek(&p))
		dst_fail(0, "the source closed the connection before END");
	else if ((late = dst_deadline(menv_now_ns())))
		dst_fail(STREAM_WERR_TIMEOUT, late);
	return did;
}

/* READY went: GO runs the guest, CANCEL or a clean close discards it; a
 * reset or silence leaves it in-doubt (GO may have been lost). */
static int dst_ready(void)
{
	int did = dst_read(menv_now_ns());
	if (d.phase != DST_READY)
		return 1;
	const uint8_t *p;
	if (mig_tcp_state() == MIG_TCP_FAILED) {
		char why[160];
		snprintf(why, sizeof(why), "no GO after READY: %s", mig_tcp_why());
		dst_in_doubt(why);
	} else if (mig_tcp_peer_closed() && !mig_tcp_peek(&p)) {
		/* TCP delivers everything before the FIN: no GO was sent. */
		dst_fail(0, "the source closed the connection after READY without GO");
	} else if (menv_now_ns() - d.phase_t0 > DST_RECORD_TIMEOUT_NS) {
		dst_in_doubt("no GO or CANCEL 30 s after READY");
	}
	return did;
}

static int dst_verify(void)
{
	uint64_t t0 = menv_now_ns();
	enum dst_phase ph = d.phase;
	int did = dst_read(t0);
	if (d.phase != ph)
		return 1;
	if (d.phase == DST_STARTING) {
		dst_starting();
		if (d.phase != DST_STARTING && d.phase != DST_VERIFY)
			return 1;
	}
	int rc = 0;
	if (d.live) {
		rc = mig_regions_step(&d.mine, MIG_POLL_BUDGET_NS);
		if (rc < 0) {
			dst_unverified("a guest page is missing for the region hashes");
			return 1;
		}
		if (d.phase == DST_VERIFY && rc == 1 && d.theirs_n == d.mine.n)
			return dst_compare(), 1;
	}
	const uint8_t *p;
	if (mig_tcp_state() == MIG_TCP_FAILED)
		dst_unverified(mig_tcp_why());
	else if (mig_tcp_peer_closed() && !mig_tcp_peek(&p))
		dst_unverified("the source closed the connection before its last REGION_DIGEST");
	else if (d.theirs_n < d.mine.n && menv_now_ns() - d.last_rec_ns > DST_RECORD_TIMEOUT_NS)
		dst_unverified("timeout: no REGION_DIGEST from the source for 30 s");
	else if (d.theirs_n < d.mine.n && menv_now_ns() - d.phase_t0 > mig_verify_deadline_ns(menv_guest()->size))
		dst_unverified("timeout: the source's region hashes did not all come in time");
	return did | (rc == 0);
}

int mig_dst_poll(void)
{
	switch (d.phase) {
	case DST_IDLE:
	case DST_INDOUBT:
		return 0;
	case DST_LISTEN:
		if (mig_tcp_state() == MIG_TCP_OPEN) {
			dst_accepted();
			return 1;
		}
		return 0;
	case DST_RECV:
		return dst_receive();
	case DST_READY:
		return dst_ready();
	case DST_STARTING:
	case DST_VERIFY:
		return dst_verify();
	case DST_DRAIN: {
		/* The verdict must leave before the connection closes. */
		bool moved;
		if (!mig_out_drain(&d.out, d.drain_t0, &moved))
			dst_relisten();
		return 1;
	}
	}
	return 0;
}

int mig_dst_cancel(void)
{
	if (d.phase == DST_STARTING || d.phase == DST_VERIFY || d.phase == DST_INDOUBT) {
		printf("error: %s\n", d.phase != DST_INDOUBT
			? "past the point of no return: the guest runs here (verification continues)"
			: "the migration is in-doubt: 'migrate_resolve resume' or 'migrate_resolve discard'");
		return -1;
	}
	if (d.phase == DST_LISTEN || (d.phase == DST_DRAIN && d.rearm)) {
		if (d.phase == DST_LISTEN)
			mig_tcp_close();
		d.rearm = false;
		if (d.phase == DST_LISTEN)
			d.phase = DST_IDLE;
		mig_finish(MIG_CANCELLED, "stopped listening");
		return 0;
	}
	if (d.phase == DST_RECV || d.phase == DST_READY) {
		discard_guest();
		stream_write_cancel(&d.out.w);
		mig_out_push(&d.out);
		dst_release();
		mig_finish(MIG_CANCELLED, "incoming guest discarded by the operator");
		dst_close(false);
	}
	return 0;
}

int mig_dst_resolve(bool resume)
{
	struct hv_vm *vm = menv_guest();
	if (d.phase != DST_INDOUBT || !vm)
		return -1;
	if (resume) {
		if (!vm->plat && d.mode != mig_cpu_mode(menv_backend()))
			menv_patch_gate(vm);
		d.created = false;
		vm->start_ns = menv_now_ns();
		vm->state = HV_VM_RUNNING;
		mig_finish(MIG_COMPLETED, "in-doubt resolved by the operator: the guest runs here%s",
			   d.live ? " (unverified)" : "");
	} else {
		d.created = true;
		discard_guest();
		mig_finish(MIG_FAILED, "in-doubt resolved by the operator: the guest was dropped here");
	}
	d.phase = DST_IDLE;
	return 0;
}

int mig_dst_busy(void)
{
	return d.phase >= DST_RECV && d.phase <= DST_INDOUBT;
}

int mig_dst_receiving(void)
{
	return d.phase == DST_RECV;
}

int mig_dst_active(void)
{
	return d.phase == DST_LISTEN || mig_dst_busy() || (d.phase == DST_DRAIN && d.rearm);
}
