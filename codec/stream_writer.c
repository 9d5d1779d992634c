/* stream_writer.c: emit migration stream records into a callback or a caller
 * buffer. Arguments are checked before the first byte of a record leaves, so
 * a rejected call emits nothing; see stream.h for the contract. */
#include "stream.h"

#include <stdio.h>
#include <string.h>

#include "crc32c.h"

static const uint8_t stream_zeros[8];

size_t stream_record_size(uint32_t body_len, bool crc)
{
	size_t n = sizeof(struct stream_rec_hdr) + (((size_t)body_len + 7) & ~(size_t)7);
	return crc ? n + sizeof(struct stream_rec_crc) : n;
}

static int stream_wfail(struct stream_writer *w, int err, const char *what)
{
	/* Argument errors leave the writer usable; output errors do not. */
	if (w->err == 0) {
		snprintf(w->msg, sizeof(w->msg), "record %llu: %s",
			 (unsigned long long)w->records, what);
		if (err == STREAM_E_IO)
			w->err = err;
	}
	return -err;
}

static void stream_winit(struct stream_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void stream_writer_init_fn(struct stream_writer *w, stream_out_fn out, void *ctx)
{
	stream_winit(w);
	w->out = out;
	w->ctx = ctx;
}

void stream_writer_init_buf(struct stream_writer *w, void *buf, size_t cap)
{
	stream_winit(w);
	stream_writer_set_buf(w, buf, cap);
}

void stream_writer_set_buf(struct stream_writer *w, void *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
}

size_t stream_writer_buffered(const struct stream_writer *w)
{
	return w->len;
}

void stream_writer_set_crc(struct stream_writer *w, bool on)
{
	w->crc = on;
}

const char *stream_writer_error(const struct stream_writer *w)
{
	return w->msg;
}

/* Emit raw bytes, folding them into the record CRC. */
static int stream_emit(struct stream_writer *w, const void *p, size_t n, bool crc)
{
	if (n == 0)
		return 0;
	if (crc)
		w->crc_acc = crc32c(w->crc_acc, p, n);
	if (w->out) {
		if (w->out(w->ctx, p, n) < 0)
			return stream_wfail(w, STREAM_E_IO, "output callback failed");
	} else {
		/* Room for the whole record was checked before the first piece. */
		memcpy(w->buf + w->len, p, n);
		w->len += n;
	}
	w->bytes += n;
	return 0;
}

/* A record goes out as begin (checks, header), pieces, finish (padding,
 * trailer). Nothing is emitted unless the length is within the maximum and,
 * in buffer mode, the whole record fits. Pieces are streamed so no batch is
 * ever gathered on the stack (kernel stacks are small). */
static int stream_rec_begin(struct stream_writer *w, uint32_t type, size_t body)
{
	if (w->err)
		return -w->err;
	if (body > STREAM_MAX_BODY)
		return stream_wfail(w, STREAM_E_TOO_LONG, "body above STREAM_MAX_BODY");
	/* HELLO and HELLO_ACK always carry a trailer (docs/stream-format.md). */
	w->rec_crc = w->crc || type == STREAM_HELLO || type == STREAM_HELLO_ACK;
	if (!w->out && w->cap - w->len < stream_record_size((uint32_t)body, w->rec_crc))
		return -STREAM_E_NOSPACE;

	struct stream_rec_hdr h = { .type = type, .length = (uint32_t)body };
	w->crc_acc = 0;
	return stream_emit(w, &h, sizeof(h), true);
}

static int stream_rec_piece(struct stream_writer *w, const void *p, size_t n)
{
	return stream_emit(w, p, n, true);
}

static int stream_rec_finish(struct stream_writer *w, size_t body)
{
	int rc = stream_emit(w, stream_zeros, (8 - (body & 7)) & 7, true);

	if (rc == 0 && w->rec_crc) {
		struct stream_rec_crc t = { .crc32c = w->crc_acc };
		rc = stream_emit(w, &t, sizeof(t), false);
	}
	if (rc == 0)
		w->records++;
	return rc;
}

static int stream_emit_fixed(struct stream_writer *w, uint32_t type, const void *p, size_t n)
{
	int rc;

	if ((rc = stream_rec_begin(w, type, n)) < 0 || (rc = stream_rec_piece(w, p, n)) < 0)
		return rc;
	return stream_rec_finish(w, n);
}

/* A fixed part followed by a variable tail. */
static int stream_emit_two(struct stream_writer *w, uint32_t type, const void *p, size_t n,
			   const void *tail, size_t tn)
{
	int rc;

	if ((rc = stream_rec_begin(w, type, n + tn)) < 0 ||
	    (rc = stream_rec_piece(w, p, n)) < 0 || (rc = stream_rec_piece(w, tail, tn)) < 0)
		return rc;
	return stream_rec_finish(w, n + tn);
}

int stream_write_header(struct stream_writer *w, uint32_t flags)
{
	struct stream_hdr h = {
		.magic = STREAM_MAGIC, .version = STREAM_VERSION,
		.hdr_len = sizeof(h), .byte_order = STREAM_BYTE_ORDER_MARK,
		.page_shift = STREAM_PAGE_SHIFT, .flags = flags,
	};

	if (w->err)
		return -w->err;
	if (flags & ~STREAM_HDR_F_KNOWN)
		return stream_wfail(w, STREAM_E_INVAL, "unknown header flags");
	if (!w->out && w->cap - w->len < sizeof(h))
		return -STREAM_E_NOSPACE;
	return stream_emit(w, &h, sizeof(h), false);
}

int stream_write_hello(struct stream_writer *w, const struct stream_hello *hello)
{
	if (hello->guest_pages == 0 || hello->guest_pages > STREAM_MAX_GUEST_PAGES)
		return stream_wfail(w, STREAM_E_RANGE, "HELLO guest_pages out of range");
	int rc = stream_emit_fixed(w, STREAM_HELLO, hello, sizeof(*hello));
	if (rc == 0) {
		w->guest_pages = hello->guest_pages;
		w->mig_id = hello->mig_id;
	}
	return rc;
}

int stream_write_hello_ack(struct stream_writer *w, const struct stream_hello_ack *a)
{
	int rc = stream_emit_fixed(w, STREAM_HELLO_ACK, a, sizeof(*a));
	if (rc == 0)
		w->mig_id = a->mig_id;
	if (rc == 0 && a->status == STREAM_REFUSE_NONE)
		w->crc = (a->caps & STREAM_CAP_CRC32C) != 0;
	if (rc == 0)
		w->guest_pages = a->guest_pages;
	return rc;
}

int stream_write_guest_info(struct stream_writer *w, const struct stream_guest_info *g)
{
	return stream_emit_fixed(w, STREAM_GUEST_INFO, g, sizeof(*g));
}

/* Page numbers strictly increasing and inside the guest. */
static int stream_check_pfn(struct stream_writer *w, uint32_t i, uint64_t pfn, uint64_t prev)
{
	char what[96];

	if (i > 0 && pfn <= prev) {
		snprintf(what, sizeof(what), "page %llu after page %llu: not increasing",
			 (unsigned long long)pfn, (unsigned long long)prev);
		return stream_wfail(w, STREAM_E_INVAL, what);
	}
	if (w->guest_pages && pfn >= w->guest_pages) {
		snprintf(what, sizeof(what), "page %llu beyond guest size %llu",
			 (unsigned long long)pfn, (unsigned long long)w->guest_pages);
		return stream_wfail(w, STREAM_E_RANGE, what);
	}
	return 0;
}

static int stream_check_count(struct stream_writer *w, uint32_t n, uint32_t max)
{
	if (n == 0 || n > max)
		return stream_wfail(w, STREAM_E_INVAL, "batch count out of range");
	return 0;
}

int stream_write_pages(struct stream_writer *w, uint32_t n, const uint64_t *pfns,
		       const uint8_t *const *pages)
{
	struct stream_batch b = { .count = n };
	size_t body = sizeof(b) + (size_t)n * (sizeof(uint64_t) + STREAM_PAGE_SIZE);
	int rc;

	if ((rc = stream_check_count(w, n, STREAM_MAX_BATCH)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = stream_check_pfn(w, i, pfns[i], i ? pfns[i - 1] : 0)) < 0)
			return rc;
	if ((rc = stream_rec_begin(w, STREAM_PAGE_DATA, body)) < 0 ||
	    (rc = stream_rec_piece(w, &b, sizeof(b))) < 0 ||
	    (rc = stream_rec_piece(w, pfns, (size_t)n * sizeof(uint64_t))) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = stream_rec_piece(w, pages[i], STREAM_PAGE_SIZE)) < 0)
			return rc;
	return stream_rec_finish(w, body);
}

int stream_write_zero_pages(struct stream_writer *w, uint32_t n, const uint64_t *pfns)
{
	struct stream_batch b = { .count = n };
	int rc;

	if ((rc = stream_check_count(w, n, STREAM_MAX_ZERO_BATCH)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = stream_check_pfn(w, i, pfns[i], i ? pfns[i - 1] : 0)) < 0)
			return rc;
	return stream_emit_two(w, STREAM_ZERO_PAGES, &b, sizeof(b), pfns,
			       (size_t)n * sizeof(uint64_t));
}

int stream_write_xbzrle_pages(struct stream_writer *w, uint32_t n,
			      const struct stream_xbzrle_page *pages)
{
	/* batch, then per entry: entry header, data, padding to 8 */
	struct stream_batch b = { .count = n };
	size_t body = sizeof(b);
	int rc;

	if ((rc = stream_check_count(w, n, STREAM_MAX_BATCH)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = stream_check_pfn(w, i, pages[i].pfn, i ? pages[i - 1].pfn : 0)) < 0)
			return rc;
		if (pages[i].len == 0 || pages[i].len > STREAM_PAGE_SIZE)
			return stream_wfail(w, STREAM_E_INVAL, "XBZRLE length not in 1..page size");
		body += sizeof(struct stream_xbzrle_entry) + ((pages[i].len + 7u) & ~7u);
	}
	if ((rc = stream_rec_begin(w, STREAM_XBZRLE_PAGES, body)) < 0 ||
	    (rc = stream_rec_piece(w, &b, sizeof(b))) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		struct stream_xbzrle_entry e = { .pfn = pages[i].pfn, .enc_len = pages[i].len };
		if ((rc = stream_rec_piece(w, &e, sizeof(e))) < 0 ||
		    (rc = stream_rec_piece(w, pages[i].data, pages[i].len)) < 0 ||
		    (rc = stream_rec_piece(w, stream_zeros, (8 - (pages[i].len & 7)) & 7)) < 0)
			return rc;
	}
	return stream_rec_finish(w, body);
}

int stream_write_iter_end(struct stream_writer *w, const struct stream_iter_end *it)
{
	return stream_emit_fixed(w, STREAM_ITER_END, it, sizeof(*it));
}

int stream_write_cpu_state(struct stream_writer *w, const struct stream_cpu_state *cpu,
			   const void *xsave, uint32_t xsave_len)
{
	struct stream_cpu_state c = *cpu;

	if (xsave_len > STREAM_MAX_XSAVE || (xsave_len && !xsave))
		return stream_wfail(w, STREAM_E_INVAL, "XSAVE area above STREAM_MAX_XSAVE");
	c.xsave_len = xsave_len;
	return stream_emit_two(w, STREAM_CPU_STATE, &c, sizeof(c), xsave, xsave_len);
}

int stream_write_device_state(struct stream_writer *w, uint32_t model, const void *state, uint32_t len)
{
	struct stream_device_state d = { .version = STREAM_DEVICE_STATE_V1, .model = model, .length = len };

	if (len > STREAM_MAX_DEVICE_STATE || (len && !state))
		return stream_wfail(w, STREAM_E_INVAL, "device state above STREAM_MAX_DEVICE_STATE");
	return stream_emit_two(w, STREAM_DEVICE_STATE, &d, sizeof(d), state, len);
}

int stream_write_digest(struct stream_writer *w, const struct stream_digest *d)
{
	return stream_emit_fixed(w, STREAM_DIGEST, d, sizeof(*d));
}

static int stream_write_ctl(struct stream_writer *w, uint32_t type)
{
	struct stream_ctl c = { .mig_id = w->mig_id };
	return stream_emit_fixed(w, type, &c, sizeof(c));
}

int stream_write_end(struct stream_writer *w)
{
	return stream_write_ctl(w, STREAM_END);
}

int stream_write_ready(struct stream_writer *w)
{
	return stream_write_ctl(w, STREAM_READY);
}

int stream_write_go(struct stream_writer *w)
{
	return stream_write_ctl(w, STREAM_GO);
}

int stream_write_commit(struct stream_writer *w)
{
	return stream_write_ctl(w, STREAM_COMMIT);
}

int stream_write_verified(struct stream_writer *w)
{
	return stream_write_ctl(w, STREAM_VERIFIED);
}

int stream_write_cancel(struct stream_writer *w)
{
	return stream_write_ctl(w, STREAM_CANCEL);
}

int stream_write_region_digest(struct stream_writer *w, uint64_t first, uint32_t count,
			       const struct stream_region_hash *h)
{
	struct stream_region_digest d = { .algo = STREAM_DIGEST_XXH3_128, .region_pages = STREAM_REGION_PAGES,
					  .first = first, .count = count };

	if (count == 0 || count > STREAM_MAX_REGIONS)
		return stream_wfail(w, STREAM_E_INVAL, "REGION_DIGEST count not in 1..STREAM_MAX_REGIONS");
	return stream_emit_two(w, STREAM_REGION_DIGEST, &d, sizeof(d), h, (size_t)count * sizeof(*h));
}

static int stream_write_reason(struct stream_writer *w, uint32_t type, uint32_t code,
			       const char *text)
{
	struct stream_reason r = { .code = code, .mig_id = w->mig_id };
	size_t n = text ? strlen(text) : 0;

	if (n > STREAM_MAX_TEXT)
		n = STREAM_MAX_TEXT;
	return stream_emit_two(w, type, &r, sizeof(r), text, n);
}

int stream_write_nack(struct stream_writer *w, uint32_t code, const char *text)
{
	return stream_write_reason(w, STREAM_NACK, code, text);
}

int stream_write_error(struct stream_writer *w, uint32_t code, const char *text)
{
	return stream_write_reason(w, STREAM_ERROR, code, text);
}

int stream_write_record(struct stream_writer *w, uint32_t type, const void *body, uint32_t len)
{
	return stream_emit_fixed(w, type, body, len);
}
