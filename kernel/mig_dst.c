/* mig_dst.c: the destination of a live migration: `migrate_incoming`
 * listens for one source, reads its stream incrementally, builds the guest
 * the stream describes, verifies the memory digest and the CPU state, and
 * answers COMMIT (then runs the guest) or NACK (then discards it).
 *
 * Trust: everything from the network is checked by the stream reader
 * (record layout, CRCs, order), by stream_apply (pages in range, XBZRLE
 * that decodes, the digest) and by hv_cpu_check (a CPU state ferry can
 * load without faulting). A failure at any point discards the half-built
 * guest and leaves ferry as it was before the connection. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "hv.h"
#include "hypercall.h"
#include "mig_priv.h"
#include "mig_tcp.h"
#include "pmm.h"
#include "stream.h"
#include "vm.h"

#define DST_REPLY_BYTES 4096 /* reply stream buffer: header, HELLO_ACK, one verdict */

enum dst_phase { DST_IDLE, DST_LISTEN, DST_RECV, DST_DRAIN };

static struct {
	enum dst_phase phase;
	struct stream_reader *r;
	struct stream_apply *a;
	struct mig_out out;    /* the reply stream, in reply[] */
	uint8_t reply[DST_REPLY_BYTES];
	bool created;          /* we created hv_guest() for this stream */
	uint32_t mode;         /* GUEST_INFO.mode */
	struct hv_cpu_state *cpu;
	bool have_cpu;
	bool have_dev;         /* a checked DEVICE_STATE is in dev[] */
	uint8_t dev[512];
	uint32_t nack;         /* a NACK is due at END (0: none) */
	char nack_text[200];
	char cpu_why[160];
	uint64_t last_rx_ns, drain_t0;
	/* When the first record of the current pass was read (0: none yet),
	 * and of the pass the last ITER_END closed. At END that pass is the
	 * final one, whose first record the source wrote after stopping the
	 * guest: from there to COMMIT is downtime, measured by this clock. */
	uint64_t pass_t0, last_pass_t0;
} d;

/* ---- guest memory and CPU for stream_apply ---- */

static uint8_t *dst_page(void *ctx, uint64_t pfn)
{
	(void)ctx;
	struct hv_vm *vm = hv_guest();
	if (!vm || !d.created || pfn >= vm->npages)
		return NULL;
	return hv_gpa_ptr(vm, pfn << 12, STREAM_PAGE_SIZE);
}

static int dst_cpu(void *ctx, const struct stream_cpu_state *c, const uint8_t *xsave)
{
	(void)ctx;
	struct hv_vm *vm = hv_guest();
	if (mig_cpu_from_wire(c, xsave, d.mode, d.cpu, d.cpu_why, sizeof(d.cpu_why)) < 0 ||
	    hv_cpu_check(vm, d.cpu, d.cpu_why, sizeof(d.cpu_why)) < 0) {
		d.have_cpu = false;
		return -1;
	}
	d.have_cpu = true;
	return 0;
}

static int dst_dev(void *ctx, uint32_t model, const uint8_t *state, uint32_t len)
{
	(void)ctx;
	struct hv_vm *vm = hv_guest();
	d.have_dev = false;
	if (!vm || !vm->plat || model != STREAM_PLATFORM_PC_V1) {
		snprintf(d.cpu_why, sizeof(d.cpu_why), "device state for a guest without a platform");
		return -1;
	}
	if (len > sizeof(d.dev) || vm_state_check(state, len, d.cpu_why, sizeof(d.cpu_why)) < 0)
		return -1;
	memcpy(d.dev, state, len);
	d.have_dev = true;
	return 0;
}

/* ---- ending ---- */

static void dst_release(void)
{
	stream_reader_free(d.r);
	stream_apply_free(d.a);
	d.r = NULL;
	d.a = NULL;
	if (d.cpu)
		pmm_free(d.cpu, 2);
	d.cpu = NULL;
}

/* Fail: discard the guest we were building, answer with an ERROR record
 * of code werr (none when 0), then close. */
static void dst_fail(uint32_t werr, const char *reason)
{
	char why[200]; /* reason may live in the reader, freed below */
	snprintf(why, sizeof(why), "%s", reason);
	if (d.created && hv_guest())
		hv_guest_destroy();
	d.created = false;
	if (werr && mig_tcp_state() == MIG_TCP_OPEN) {
		stream_write_error(&d.out.w, werr, why);
		mig_out_push(&d.out);
	}
	dst_release();
	mig_finish(MIG_FAILED, "%s", why);
	if (mig_out_pending(&d.out) && mig_tcp_state() == MIG_TCP_OPEN) {
		d.phase = DST_DRAIN;
		d.drain_t0 = clock_ns();
	} else {
		mig_tcp_close();
		d.phase = DST_IDLE;
	}
}

static void dst_nack(uint32_t code, const char *text)
{
	if (d.created && hv_guest())
		hv_guest_destroy();
	d.created = false;
	stream_write_nack(&d.out.w, code, text);
	mig_out_push(&d.out);
	dst_release();
	mig_finish(MIG_FAILED, "NACK (%s): %s", stream_nack_to_str(code), text);
	d.phase = DST_DRAIN;
	d.drain_t0 = clock_ns();
}

static void dst_end(void)
{
	struct hv_vm *vm = hv_guest();
	char why[160];
	if (d.nack)
		return dst_nack(d.nack, d.nack_text);
	if (!stream_apply_stats(d.a)->digest_ok)
		return dst_nack(STREAM_NACK_INCOMPLETE, "END without a verified DIGEST");
	if (!d.have_cpu)
		return dst_nack(STREAM_NACK_CPU_STATE, "no CPU_STATE record");
	if (vm->plat && !d.have_dev)
		return dst_nack(STREAM_NACK_CPU_STATE, "no DEVICE_STATE record for the guest's platform");
	if (vm->plat)
		vm_state_load(vm, d.dev, d.cpu); /* the devices, and the vCPU's event state into d.cpu */
	if (hv_cpu_restore(vm, d.cpu, why, sizeof(why)) < 0)
		return dst_nack(STREAM_NACK_CPU_STATE, why);
	/* Taken before COMMIT goes to TCP, so the source cannot have read it
	 * yet: the source's downtime is at least this long. */
	mig_stats.resumed_ns = d.last_pass_t0 ? clock_ns() - d.last_pass_t0 : 0;
	/* Verified and loaded: from here the guest is this backend's. Its
	 * hypercall gate is the source backend's instruction (VMCALL and
	 * VMMCALL differ): give it ours. */
	if (d.mode != mig_cpu_mode(vm->ops->name))
		hv_patch_gate(vm);
	stream_write_commit(&d.out.w);
	mig_out_push(&d.out);
	mig_stats.pages_applied = stream_apply_stats(d.a)->pages_raw + stream_apply_stats(d.a)->pages_zero +
				  stream_apply_stats(d.a)->pages_xbzrle;
	dst_release();
	d.created = false; /* the guest is ours for good now */
	vm->start_ns = clock_ns();
	vm->state = HV_VM_RUNNING;
	mig_finish(MIG_COMPLETED, "guest %s (%llu MiB) committed and running", hv_workload_name(vm->workload),
		   (unsigned long long)(vm->size >> 20));
	d.phase = DST_DRAIN;
	d.drain_t0 = clock_ns();
}

/* ---- records ---- */

static void dst_hello(const struct stream_record *rec)
{
	struct stream_hello h;
	stream_rec_get(rec, &h, sizeof(h));
	struct stream_hello_ack ack = {
		.guest_pages = h.guest_pages,
		.codecs = h.codecs & (STREAM_CODEC_RAW | STREAM_CODEC_ZERO | STREAM_CODEC_XBZRLE),
		.caps = h.caps & STREAM_CAP_KNOWN,
		.digest = STREAM_DIGEST_XXH3_128,
		.page_size = STREAM_PAGE_SIZE,
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
	} else if (hv_guest()) {
		ack.status = STREAM_REFUSE_BUSY;
		snprintf(ack.reason, sizeof(ack.reason), "a guest already runs here");
	} else if (bytes < HV_SIZE_MIN || bytes > HV_SIZE_MAX || bytes % (2ull << 20)) {
		ack.status = STREAM_REFUSE_GUEST_SIZE;
		snprintf(ack.reason, sizeof(ack.reason), "guest of %llu pages: ferry takes 2 MiB multiples, %llu..%llu MiB",
			 (unsigned long long)h.guest_pages, (unsigned long long)(HV_SIZE_MIN >> 20),
			 (unsigned long long)(HV_SIZE_MAX >> 20));
	} else if ((h.caps & STREAM_CAP_PLATFORM_PC) && vm_backend_check(hv_backend(), why, sizeof(why)) < 0) {
		ack.status = STREAM_REFUSE_PLATFORM;
		snprintf(ack.reason, sizeof(ack.reason), "no PC platform on backend %s", hv_backend()->name);
	} else if (hv_guest_create_incoming(bytes, (h.caps & STREAM_CAP_PLATFORM_PC) ? GUEST_WL_LINUX
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
	mig_stats.total_bytes = bytes;
	mig_stats.cache_size = ack.xbzrle_cache_bytes;
	mig_stats.setup_ns = clock_ns() - mig_stats.start_ns;
	if (!(d.a = stream_apply_new(dst_page, dst_cpu, NULL)) || !(d.cpu = pmm_alloc(2, PMM_ZERO)))
		return dst_fail(STREAM_WERR_RESOURCES, "out of memory for the stream state");
	stream_apply_set_dev(d.a, dst_dev);
	stream_apply_record(d.a, rec);
	mig_stats.status = MIG_ACTIVE;
}

static void dst_record(const struct stream_record *rec)
{
	if (!d.pass_t0)
		d.pass_t0 = clock_ns();
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
		struct stream_guest_info g;
		stream_rec_get(rec, &g, sizeof(g));
		char wl[33];
		memcpy(wl, g.workload, 32);
		wl[32] = 0;
		int w = hv_workload_parse(wl);
		if (w >= 0)
			hv_guest()->workload = (unsigned)w;
		d.mode = g.mode;
		uint32_t mine = mig_cpu_mode(hv_backend()->name);
		bool hw = (g.mode == STREAM_MODE_VMX || g.mode == STREAM_MODE_SVM) && mine != STREAM_MODE_PTE;
		if (g.mode != mine && !hw && !d.nack) {
			d.nack = STREAM_NACK_CPU_STATE;
			snprintf(d.nack_text, sizeof(d.nack_text), "a guest of mode %s cannot run on backend %s",
				 stream_mode_to_str(g.mode), hv_backend()->name);
		}
	}
	if (!d.nack && stream_apply_record(d.a, rec) < 0) {
		const char *e = stream_apply_error(d.a);
		if (rec->type == STREAM_DIGEST) {
			d.nack = STREAM_NACK_DIGEST;
			snprintf(d.nack_text, sizeof(d.nack_text), "%s", e);
		} else if (rec->type == STREAM_CPU_STATE || rec->type == STREAM_DEVICE_STATE) {
			d.nack = STREAM_NACK_CPU_STATE;
			snprintf(d.nack_text, sizeof(d.nack_text), "%s", d.cpu_why[0] ? d.cpu_why : e);
		} else {
			return dst_fail(STREAM_WERR_PROTOCOL, e);
		}
	}
	/* The source sends its CPU state after its last page, then hashes
	 * its memory: hash ours now, at the same time, for the DIGEST record
	 * that follows (a failure sticks and is that record's NACK). */
	if (rec->type == STREAM_CPU_STATE && !d.nack)
		(void)stream_apply_prehash(d.a);
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
	d.phase = DST_LISTEN;
	return 0;
}

static void dst_accepted(void)
{
	d.r = stream_reader_new(STREAM_DIR_MIGRATION);
	mig_out_init(&d.out, d.reply, sizeof(d.reply));
	d.created = d.have_cpu = d.have_dev = false;
	d.nack = 0;
	d.nack_text[0] = d.cpu_why[0] = 0;
	d.mode = 0;
	d.pass_t0 = d.last_pass_t0 = 0;
	d.last_rx_ns = mig_stats.start_ns = clock_ns();
	snprintf(mig_stats.peer, sizeof(mig_stats.peer), "%s", mig_tcp_peer());
	printf("\nmigration: incoming connection from %s\n", mig_stats.peer);
	d.phase = DST_RECV;
	if (!d.r)
		return dst_fail(STREAM_WERR_RESOURCES, "out of memory for the stream reader");
	stream_write_header(&d.out.w, 0);
	mig_out_push(&d.out);
}

static int dst_receive(void)
{
	uint64_t t0 = clock_ns();
	int did = 0;
	while (d.phase == DST_RECV && clock_ns() - t0 < MIG_POLL_BUDGET_NS) {
		const uint8_t *p;
		size_t n = mig_tcp_peek(&p), used = 0;
		if (!n)
			break;
		struct stream_record rec;
		int rc = stream_reader_feed(d.r, p, n, &used, &rec);
		mig_tcp_consume(used);
		mig_stats.transferred += used;
		d.last_rx_ns = clock_ns();
		did = 1;
		if (rc < 0)
			return dst_fail(STREAM_WERR_PROTOCOL, stream_reader_error(d.r)), 1;
		if (rc == 1)
			dst_record(&rec);
	}
	if (d.phase != DST_RECV)
		return did;
	const uint8_t *p;
	if (mig_tcp_state() == MIG_TCP_FAILED)
		dst_fail(0, mig_tcp_why());
	else if (mig_tcp_peer_closed() && !mig_tcp_peek(&p))
		dst_fail(0, "the source closed the connection before END");
	else if (clock_ns() - d.last_rx_ns > MIG_RECV_TIMEOUT_NS)
		dst_fail(STREAM_WERR_TIMEOUT, "timeout: nothing received for 30 s");
	return did;
}

int mig_dst_poll(void)
{
	switch (d.phase) {
	case DST_IDLE:
		return 0;
	case DST_LISTEN:
		if (mig_tcp_state() == MIG_TCP_OPEN) {
			dst_accepted();
			return 1;
		}
		return 0;
	case DST_RECV:
		return dst_receive();
	case DST_DRAIN: {
		/* The verdict must leave before the connection closes. */
		bool moved;
		if (!mig_out_drain(&d.out, d.drain_t0, &moved))
			d.phase = DST_IDLE;
		return 1;
	}
	}
	return 0;
}

void mig_dst_cancel(void)
{
	if (d.phase == DST_LISTEN) {
		mig_tcp_close();
		d.phase = DST_IDLE;
		mig_finish(MIG_CANCELLED, "stopped listening");
		return;
	}
	if (d.phase == DST_RECV) {
		if (d.created && hv_guest())
			hv_guest_destroy();
		d.created = false;
		stream_write_cancel(&d.out.w);
		mig_out_push(&d.out);
		dst_release();
		mig_finish(MIG_CANCELLED, "incoming guest discarded by the operator");
		d.phase = DST_DRAIN;
		d.drain_t0 = clock_ns();
	}
}

int mig_dst_busy(void)
{
	return d.phase == DST_RECV;
}

int mig_dst_active(void)
{
	return d.phase == DST_LISTEN || d.phase == DST_RECV;
}
