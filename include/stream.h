/* stream.h: the migration stream's writer, incremental reader and
 * apply-to-memory step. The wire layout is in stream_format.h and the prose
 * specification in docs/stream-format.md. Portable: no I/O of its own; bytes
 * go out through a callback or into caller buffers, come in as chunks of any
 * size, and guest memory is reached one page at a time through a callback.
 *
 * Errors are negative enum stream_err values. Every failing call also leaves
 * a precise message (e.g. "record 17 (XBZRLE_PAGES): page 123456 beyond
 * guest size 65536") readable with the object's *_error() function; the
 * first error is kept and the object stays failed.
 */
#ifndef FERRY_STREAM_H
#define FERRY_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "stream_format.h"

enum stream_err {
	STREAM_OK = 0,
	STREAM_E_MAGIC,		/* not a ferry stream */
	STREAM_E_VERSION,	/* format version not understood */
	STREAM_E_HEADER,	/* header field invalid */
	STREAM_E_TOO_LONG,	/* record length above the maximum */
	STREAM_E_UNKNOWN,	/* unknown mandatory record type */
	STREAM_E_LENGTH,	/* body length wrong for its type */
	STREAM_E_RESERVED,	/* reserved field or padding not zero */
	STREAM_E_CRC,		/* CRC32C trailer mismatch */
	STREAM_E_ORDER,		/* record not allowed here */
	STREAM_E_RANGE,		/* a value out of range (page, count, vcpu...) */
	STREAM_E_TRUNCATED,	/* input ended before the stream did */
	STREAM_E_TRAILING,	/* bytes after the final record */
	STREAM_E_NOMEM,
	STREAM_E_NOSPACE,	/* caller buffer too small for the record */
	STREAM_E_IO,		/* the output callback failed */
	STREAM_E_INVAL,		/* bad argument from the caller */
	STREAM_E_XBZRLE,	/* XBZRLE data does not decode */
	STREAM_E_DIGEST,	/* memory does not match the DIGEST */
	STREAM_E_NOPAGE,	/* page callback had no page */
	STREAM_E_CPU,		/* CPU state callback refused the state */
	STREAM_E_COUNT_
};

/* Names for the wire enums and errors. Never NULL; unknown values give
 * "UNKNOWN". */
const char *stream_type_to_str(uint32_t type);
const char *stream_err_to_str(int err);		/* accepts err or -err */
const char *stream_refusal_to_str(uint32_t status);
const char *stream_nack_to_str(uint32_t code);
const char *stream_wire_error_to_str(uint32_t code);
const char *stream_mode_to_str(uint32_t mode);
const char *stream_cap_to_str(uint64_t one_cap);	/* a single STREAM_CAP_ bit */
const char *stream_codec_to_str(uint32_t one_codec);	/* a single STREAM_CODEC_ bit */

/* Bytes a record with a body of body_len takes on the wire. */
size_t stream_record_size(uint32_t body_len, bool crc);

/* ========================================================================
 * Writer
 * ======================================================================== */

/* Output callback: take all len bytes or fail. Returns 0, or negative to
 * fail the writer with STREAM_E_IO. A record may arrive in several calls. */
typedef int (*stream_out_fn)(void *ctx, const void *buf, size_t len);

/* Fields are private; the struct is public so it can live anywhere. */
struct stream_writer {
	stream_out_fn out;	/* NULL in buffer mode */
	void *ctx;
	uint8_t *buf;		/* buffer mode: destination */
	size_t cap, len;
	bool crc;		/* CRC trailers on */
	bool rec_crc;		/* the record being written has one */
	uint32_t crc_acc;	/* running CRC of the record being written */
	uint64_t guest_pages;	/* from HELLO; 0 = unknown, not checked */
	uint64_t mig_id;	/* from HELLO / HELLO_ACK: control records carry it */
	uint64_t records;	/* records written */
	uint64_t bytes;		/* bytes written, header included */
	int err;		/* sticky */
	char msg[160];
};

/* Emit through a callback. */
void stream_writer_init_fn(struct stream_writer *w, stream_out_fn out, void *ctx);

/* Emit into buf[0..cap). A record that does not fit returns
 * -STREAM_E_NOSPACE with nothing written and the writer still usable:
 * hand the filled part on, then stream_writer_set_buf() and retry. A
 * buffer of stream_record_size(STREAM_MAX_BODY, true) bytes fits any
 * record; a smaller one must fit the largest record the caller writes. */
void stream_writer_init_buf(struct stream_writer *w, void *buf, size_t cap);
void stream_writer_set_buf(struct stream_writer *w, void *buf, size_t cap);
size_t stream_writer_buffered(const struct stream_writer *w);	/* bytes in buf */

/* Turn CRC trailers on or off for following records. A source calls this
 * with the agreed caps after reading HELLO_ACK; stream_write_hello_ack()
 * does it by itself. HELLO and HELLO_ACK always carry a trailer. */
void stream_writer_set_crc(struct stream_writer *w, bool on);

/* Why the last call failed ("" when none has); after an output failure,
 * why that failed. */
const char *stream_writer_error(const struct stream_writer *w);

/* The stream_write_* calls return 0 or a negative stream_err:
 *   -STREAM_E_INVAL, -STREAM_E_RANGE, -STREAM_E_TOO_LONG: bad argument,
 *        nothing emitted, the writer stays usable;
 *   -STREAM_E_NOSPACE: buffer mode, the record does not fit (see above);
 *   -STREAM_E_IO: the output callback failed; the writer stays failed.
 * The writer checks arguments, not record order: that is the caller's
 * protocol (docs/stream-format.md section 6), and the reader enforces it. */

/* The stream header; first, once. flags: STREAM_HDR_F_*. */
int stream_write_header(struct stream_writer *w, uint32_t flags);

/* HELLO: remembers h->guest_pages to check page numbers written later. */
int stream_write_hello(struct stream_writer *w, const struct stream_hello *h);

/* HELLO_ACK: turns CRC trailers on after it when it accepts CRC32C. */
int stream_write_hello_ack(struct stream_writer *w, const struct stream_hello_ack *a);

int stream_write_guest_info(struct stream_writer *w, const struct stream_guest_info *g);

/* PAGE_DATA of n (1..STREAM_MAX_BATCH) pages: pfns strictly increasing,
 * pages[i] the STREAM_PAGE_SIZE bytes of pfns[i]. Bytes are read while
 * being emitted: the caller must hold them stable until the call returns. */
int stream_write_pages(struct stream_writer *w, uint32_t n, const uint64_t *pfns,
		       const uint8_t *const *pages);

/* ZERO_PAGES of n (1..STREAM_MAX_ZERO_BATCH) page numbers. */
int stream_write_zero_pages(struct stream_writer *w, uint32_t n, const uint64_t *pfns);

/* One XBZRLE-encoded page for stream_write_xbzrle_pages(). */
struct stream_xbzrle_page {
	uint64_t pfn;
	uint32_t len;		/* 1..STREAM_PAGE_SIZE */
	const uint8_t *data;
};

/* XBZRLE_PAGES of n (1..STREAM_MAX_BATCH) entries, pfns strictly increasing. */
int stream_write_xbzrle_pages(struct stream_writer *w, uint32_t n,
			      const struct stream_xbzrle_page *pages);

int stream_write_iter_end(struct stream_writer *w, const struct stream_iter_end *it);

/* CPU_STATE; cpu->xsave_len is ignored and set from xsave_len. */
int stream_write_cpu_state(struct stream_writer *w, const struct stream_cpu_state *cpu,
			   const void *xsave, uint32_t xsave_len);

/* DEVICE_STATE of the given model: len bytes of state (<= STREAM_MAX_DEVICE_STATE). */
int stream_write_device_state(struct stream_writer *w, uint32_t model, const void *state, uint32_t len);

int stream_write_digest(struct stream_writer *w, const struct stream_digest *d);
/* REGION_DIGEST of count (1..STREAM_MAX_REGIONS) hashes from region first. */
int stream_write_region_digest(struct stream_writer *w, uint64_t first, uint32_t count,
			       const struct stream_region_hash *h);
/* The control records carry the migration id of the HELLO or HELLO_ACK
 * this writer wrote (0 before either). */
int stream_write_end(struct stream_writer *w);
int stream_write_ready(struct stream_writer *w);
int stream_write_go(struct stream_writer *w);
int stream_write_commit(struct stream_writer *w);
int stream_write_verified(struct stream_writer *w);
int stream_write_cancel(struct stream_writer *w);
/* NACK / ERROR: text is copied up to STREAM_MAX_TEXT bytes (NUL ends it). */
int stream_write_nack(struct stream_writer *w, uint32_t code, const char *text);
int stream_write_error(struct stream_writer *w, uint32_t code, const char *text);

/* Any record from its body bytes, unchecked apart from the length limit:
 * replaying a saved stream, and tests. */
int stream_write_record(struct stream_writer *w, uint32_t type, const void *body, uint32_t len);

/* ========================================================================
 * Reader
 * ======================================================================== */

/* Which way the stream flows decides which records may appear. */
enum stream_dir {
	STREAM_DIR_MIGRATION,	/* source to destination, and saved files */
	STREAM_DIR_REPLY,	/* destination to source */
};

/* A complete, validated record. body points into the bytes passed to
 * stream_reader_feed() or into the reader's buffer, and is valid until the
 * next call on the reader; it is not necessarily aligned. */
struct stream_record {
	uint64_t index;		/* 0 for the first record after the header */
	uint64_t offset;	/* byte offset of its header in the stream */
	uint32_t type;
	uint32_t length;	/* body bytes */
	const uint8_t *body;
};

struct stream_reader;

/* A new reader expecting a stream header. NULL when out of memory. */
struct stream_reader *stream_reader_new(enum stream_dir dir);
void stream_reader_free(struct stream_reader *r);

/* Live destination only: the HELLO_ACK it sent. Call it after feed has
 * returned the HELLO record and before feeding the bytes after it (feed
 * stops after each record, so none have been read yet). Records after HELLO
 * are refused until then; CRC trailers and allowed codecs follow ack. (A
 * saved file carries its HELLO_ACK in-stream, and a reply stream is the
 * HELLO_ACK's own stream, so neither needs this.) */
void stream_reader_set_agreed(struct stream_reader *r, const struct stream_hello_ack *ack);

/* Feed up to len bytes. Returns
 *   1  a record is in *rec; *used bytes of data were consumed, call again
 *      with the rest (the record stays valid until then),
 *   0  all len bytes consumed, no complete record yet,
 *   <0 a negative stream_err; stream_reader_error() says why. Sticky.
 * Unknown optional records are checked (CRC) and skipped, never returned.
 * After a final record any further byte is -STREAM_E_TRAILING. Final are
 * ERROR and CANCEL; in a saved file END; in a live migration stream GO, or
 * with verification after the switch-over the REGION_DIGEST that covers the
 * last region; in a reply NACK, a refusing HELLO_ACK, and COMMIT, or with
 * verification after the switch-over VERIFIED. */
int stream_reader_feed(struct stream_reader *r, const void *data, size_t len,
		       size_t *used, struct stream_record *rec);

/* The input has ended. 0 when a final record was read and nothing follows,
 * else -STREAM_E_TRUNCATED (or the earlier error). */
int stream_reader_finish(struct stream_reader *r);

const char *stream_reader_error(const struct stream_reader *r);	/* "" if none */
bool stream_reader_done(const struct stream_reader *r);		/* final record read */
const struct stream_hdr *stream_reader_header(const struct stream_reader *r); /* NULL before */
const struct stream_hello *stream_reader_hello(const struct stream_reader *r); /* NULL before */
const struct stream_hello_ack *stream_reader_ack(const struct stream_reader *r); /* NULL before */
bool stream_reader_crc(const struct stream_reader *r);		/* trailers expected now */
size_t stream_reader_buffer_size(const struct stream_reader *r);	/* bytes allocated */

/* Typed views of a record the reader returned (so already validated). The
 * fixed-size part is copied out, so alignment does not matter. */
void stream_rec_get(const struct stream_record *rec, void *out, size_t size);
uint32_t stream_rec_count(const struct stream_record *rec);	/* batch records */
uint64_t stream_rec_pfn(const struct stream_record *rec, uint32_t i);	/* PAGE_DATA, ZERO_PAGES */
const uint8_t *stream_rec_page(const struct stream_record *rec, uint32_t i); /* PAGE_DATA */
/* XBZRLE_PAGES: start with *off = 0; returns false after the last entry. */
bool stream_rec_xbzrle_next(const struct stream_record *rec, size_t *off,
			    struct stream_xbzrle_page *page);
/* NACK / ERROR text and its length (not NUL-terminated). */
const char *stream_rec_text(const struct stream_record *rec, uint32_t *len);

/* ========================================================================
 * Apply: write a migration stream's records into guest memory.
 * ======================================================================== */

/* The STREAM_PAGE_SIZE bytes of guest page pfn, writable; NULL if none. */
typedef uint8_t *(*stream_page_fn)(void *ctx, uint64_t pfn);

/* A vCPU's state arrived; xsave has cpu->xsave_len bytes. Return 0, or
 * negative to refuse it (-STREAM_E_CPU). May be NULL: states are ignored. */
typedef int (*stream_cpu_fn)(void *ctx, const struct stream_cpu_state *cpu,
			     const uint8_t *xsave);

/* The platform's device state arrived (DEVICE_STATE of model, len bytes).
 * Return 0, or negative to refuse it (-STREAM_E_CPU). May be NULL. */
typedef int (*stream_dev_fn)(void *ctx, uint32_t model, const uint8_t *state, uint32_t len);

struct stream_apply_stats {
	uint64_t pages_raw, pages_zero, pages_xbzrle;
	uint64_t iterations;	/* ITER_END records */
	uint64_t cpu_states;
	uint64_t device_states;
	uint64_t digests;	/* whole-memory hashes taken (DIGEST, stream_apply_prehash) */
	bool digest_ok;		/* DIGEST seen and matched */
};

struct stream_apply;

/* NULL when out of memory. */
struct stream_apply *stream_apply_new(stream_page_fn page, stream_cpu_fn cpu, void *ctx);
/* Where DEVICE_STATE records go (none by default: they are checked and skipped). */
void stream_apply_set_dev(struct stream_apply *a, stream_dev_fn dev);
void stream_apply_free(struct stream_apply *a);

/* Apply one record the reader returned, in stream order. A batch is
 * checked whole (every page present, every XBZRLE entry decoded into
 * scratch) before any guest byte changes, so a bad record changes nothing.
 * DIGEST compares all of guest memory. Returns 0 or a negative stream_err
 * (sticky; stream_apply_error() says why). */
int stream_apply_record(struct stream_apply *a, const struct stream_record *rec);

/* Hash guest memory now and keep the result for the DIGEST record, which
 * then compares with it instead of hashing again, unless a record that
 * writes pages comes first (it drops the kept hash). A destination that
 * knows no page record follows (ferry's source sends its CPU state after
 * its last page) calls this there, while the source is hashing its own
 * memory: the two ends hash at the same time, not one after the other.
 * Memory must change only through stream_apply_record in between.
 * Returns 0 or a negative stream_err (sticky, as stream_apply_record). */
int stream_apply_prehash(struct stream_apply *a);

const char *stream_apply_error(const struct stream_apply *a);
const struct stream_apply_stats *stream_apply_stats(const struct stream_apply *a);

/* Digest of guest memory pages 0..guest_pages-1 through page(). Returns 0
 * or -STREAM_E_NOPAGE. */
int stream_digest_memory(stream_page_fn page, void *ctx, uint64_t guest_pages,
			 struct stream_digest *out);

/* The same digest taken in steps, so that a caller can do other work
 * between them (the migration source keeps its connection moving while it
 * hashes): begin, then step until it returns 1. */
struct stream_digest_steps {
	struct digest_state st;
	uint64_t next, guest_pages;
};
void stream_digest_begin(struct stream_digest_steps *d, uint64_t guest_pages);
/* Hash up to max_pages more pages. Returns 1 when every page is in (*out
 * then holds the digest), 0 while pages remain, or -STREAM_E_NOPAGE. */
int stream_digest_step(struct stream_digest_steps *d, stream_page_fn page, void *ctx, uint64_t max_pages,
		       struct stream_digest *out);

/* The REGION_DIGEST hash of one region (STREAM_REGION_PAGES pages from
 * region * STREAM_REGION_PAGES; the last region of a guest may be
 * shorter). Returns 0, or -STREAM_E_NOPAGE (no page, or region beyond the
 * guest). */
int stream_region_hash(stream_page_fn page, void *ctx, uint64_t guest_pages, uint64_t region,
		       struct stream_region_hash *out);

/* Regions a guest of guest_pages pages has. */
static inline uint64_t stream_region_count(uint64_t guest_pages)
{
	return (guest_pages + STREAM_REGION_PAGES - 1) / STREAM_REGION_PAGES;
}

#endif /* FERRY_STREAM_H */
