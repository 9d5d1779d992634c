/* test_stream_reader.c: the reader against hostile input. A table of
 * malformed streams (saved, live and reply), each rejected with an exact
 * message: layouts, migration ids, the order of the switch-over (END, GO,
 * REGION_DIGEST; READY, COMMIT, VERIFIED). The valid switch-over
 * sequences are test_stream_switchover.c; whole-stream properties
 * (truncation, flipped bits, unknown records, length caps)
 * test_stream_whole.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_cases.h"

/* ---- malformed streams ------------------------------------------------- */

/* The prefix every case starts from: saved stream, no CRC, guest of 8
 * pages, 1 vcpu, codecs raw+zero(+xbzrle unless the case says not), id
 * SAMPLE_MIG_ID. Records 0 HELLO, 1 HELLO_ACK, 2 GUEST_INFO; the case's own
 * records start at 3. A live stream (BC_LIVE) has no HELLO_ACK inside (the
 * reader is given it after HELLO): 0 HELLO, 1 GUEST_INFO, the case's from
 * 2. A reply stream (BC_REPLY) is the header and 0 HELLO_ACK, the case's
 * from 1. */
struct bad_case {
	const char *name;
	unsigned flags;
	void (*build)(struct stream_writer *w, struct tbuf *s);
	int want;
	const char *msg;
};

static void put_batch(struct tbuf *b, uint32_t count, uint32_t reserved)
{
	struct stream_batch bh = { count, reserved };
	put(b, &bh, sizeof(bh));
}

static void digest_end(struct stream_writer *w)
{
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 8 };
	stream_write_digest(w, &d);
	stream_write_end(w);
}

static void b_page_beyond(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	static uint8_t page[STREAM_PAGE_SIZE];
	(void)s;
	put_batch(&b, 1, 0);
	put64(&b, 8);
	put(&b, page, sizeof(page));
	raw(w, STREAM_PAGE_DATA, &b);
}

static void b_xbzrle_beyond(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	struct stream_xbzrle_entry e = { .pfn = 123456, .enc_len = 3 };
	(void)s;
	put_batch(&b, 1, 0);
	put(&b, &e, sizeof(e));
	put(&b, "\x00\x01\x07\0\0\0\0\0", 8);
	raw(w, STREAM_XBZRLE_PAGES, &b);
}

static void b_pages_not_increasing(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	(void)s;
	put_batch(&b, 3, 0);
	put64(&b, 1);
	put64(&b, 4);
	put64(&b, 4);
	raw(w, STREAM_ZERO_PAGES, &b);
}

static void b_count_vs_length(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	static uint8_t page[STREAM_PAGE_SIZE];
	(void)s;
	put_batch(&b, 2, 0);
	put64(&b, 1);
	put(&b, page, sizeof(page));
	raw(w, STREAM_PAGE_DATA, &b);
}

static void b_count_zero(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	(void)s;
	put_batch(&b, 0, 0);
	raw(w, STREAM_ZERO_PAGES, &b);
}

static void b_count_too_big(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	(void)s;
	put_batch(&b, 513, 0);
	raw(w, STREAM_PAGE_DATA, &b);
}

static void b_batch_reserved(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	(void)s;
	put_batch(&b, 1, 0x10);
	put64(&b, 1);
	raw(w, STREAM_ZERO_PAGES, &b);
}

static void xb_entry(struct stream_writer *w, uint64_t pfn, uint32_t len, uint32_t reserved,
		     const void *data, size_t dlen, size_t extra)
{
	struct tbuf b = { 0 };
	struct stream_xbzrle_entry e = { .pfn = pfn, .enc_len = len, .reserved = reserved };
	static const uint8_t z[16];
	put_batch(&b, 1, 0);
	put(&b, &e, sizeof(e));
	put(&b, data, dlen);
	put(&b, z, extra);
	raw(w, STREAM_XBZRLE_PAGES, &b);
}

static void b_xb_len0(struct stream_writer *w, struct tbuf *s) { (void)s; xb_entry(w, 1, 0, 0, "", 0, 0); }
static void b_xb_len_big(struct stream_writer *w, struct tbuf *s) { (void)s; xb_entry(w, 1, 4097, 0, "", 0, 0); }
static void b_xb_short(struct stream_writer *w, struct tbuf *s) { (void)s; xb_entry(w, 1, 20, 0, "\0\1\1\0\0\0\0\0", 8, 0); }
static void b_xb_pad(struct stream_writer *w, struct tbuf *s) { (void)s; xb_entry(w, 1, 3, 0, "\0\1\7\0\0\0\0\1", 8, 0); }
static void b_xb_extra(struct stream_writer *w, struct tbuf *s) { (void)s; xb_entry(w, 1, 3, 0, "\0\1\7\0\0\0\0\0", 8, 8); }
static void b_xb_reserved(struct stream_writer *w, struct tbuf *s) { (void)s; xb_entry(w, 1, 3, 9, "\0\1\7\0\0\0\0\0", 8, 0); }

static void b_xb_header_cut(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	(void)s;
	put_batch(&b, 2, 0);
	put64(&b, 1);
	raw(w, STREAM_XBZRLE_PAGES, &b);
}

static void b_end_no_digest(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_end(w); }

static void b_page_after_digest(struct stream_writer *w, struct tbuf *s)
{
	uint64_t pf = 2;
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 8 };
	(void)s;
	stream_write_digest(w, &d);
	stream_write_zero_pages(w, 1, &pf);
}

static void b_second_guest(struct stream_writer *w, struct tbuf *s)
{
	struct stream_guest_info g = { .guest_pages = 8, .nr_vcpus = 1 };
	(void)s;
	stream_write_guest_info(w, &g);
}

static void b_guest_size(struct stream_writer *w, struct tbuf *s)
{
	struct stream_guest_info g = { .guest_pages = 9, .nr_vcpus = 1 };
	(void)s;
	stream_write_guest_info(w, &g);
}

static void b_pages_before_guest(struct stream_writer *w, struct tbuf *s)
{
	uint64_t pf = 2;
	(void)s;
	stream_write_zero_pages(w, 1, &pf);
}

static void b_vcpu_range(struct stream_writer *w, struct tbuf *s)
{
	struct stream_cpu_state c = sample_cpu(1);
	(void)s;
	stream_write_cpu_state(w, &c, NULL, 0);
}

static void b_cpu_version(struct stream_writer *w, struct tbuf *s)
{
	struct stream_cpu_state c = sample_cpu(0);
	(void)s;
	c.version = 2;
	stream_write_cpu_state(w, &c, NULL, 0);
}

static void b_cpu_len(struct stream_writer *w, struct tbuf *s)
{
	struct stream_cpu_state c = sample_cpu(0);
	struct tbuf b = { 0 };
	(void)s;
	c.xsave_len = 64;
	put(&b, &c, sizeof(c));
	put(&b, &c, 32);
	raw(w, STREAM_CPU_STATE, &b);
}

static void b_cpu_reserved(struct stream_writer *w, struct tbuf *s)
{
	struct stream_cpu_state c = sample_cpu(0);
	(void)s;
	c.seg[STREAM_TR].reserved1 = 1;
	stream_write_cpu_state(w, &c, NULL, 0);
}

/* DEVICE_STATE: its header checked, its body the platform's business. */
static void b_dev(struct stream_writer *w, uint32_t version, uint32_t model, uint32_t len, uint32_t body,
		  uint32_t reserved)
{
	struct stream_device_state d = { version, model, len, reserved };
	struct tbuf b = { 0 };
	uint8_t state[64] = { 1, 2, 3 };
	put(&b, &d, sizeof(d));
	put(&b, state, body);
	raw(w, STREAM_DEVICE_STATE, &b);
}
static void b_dev_version(struct stream_writer *w, struct tbuf *s) { (void)s; b_dev(w, 2, 1, 8, 8, 0); }
static void b_dev_model(struct stream_writer *w, struct tbuf *s) { (void)s; b_dev(w, 1, 7, 8, 8, 0); }
static void b_dev_len(struct stream_writer *w, struct tbuf *s) { (void)s; b_dev(w, 1, 1, 16, 8, 0); }
static void b_dev_reserved(struct stream_writer *w, struct tbuf *s) { (void)s; b_dev(w, 1, 1, 8, 8, 5); }
static void b_dev_not_agreed(struct stream_writer *w, struct tbuf *s) { (void)s; b_dev(w, 1, 1, 8, 8, 0); }
static void b_dev_too_big(struct stream_writer *w, struct tbuf *s)
{
	struct stream_device_state d = { 1, 1, STREAM_MAX_DEVICE_STATE + 8, 0 };
	struct tbuf b = { 0 };
	(void)s;
	put(&b, &d, sizeof(d));
	for (uint32_t i = 0; i < d.length; i += 8)
		put64(&b, 0);
	raw(w, STREAM_DEVICE_STATE, &b);
}

static void b_digest_algo(struct stream_writer *w, struct tbuf *s)
{
	struct stream_digest d = { .algo = 2, .guest_pages = 8 };
	(void)s;
	stream_write_digest(w, &d);
}

static void b_digest_pages(struct stream_writer *w, struct tbuf *s)
{
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 7 };
	(void)s;
	stream_write_digest(w, &d);
}

static void b_ack_again(struct stream_writer *w, struct tbuf *s)
{
	struct sample_opts o = { .pages = 8 };
	struct stream_hello_ack a = sample_ack(&o);
	(void)s;
	stream_write_hello_ack(w, &a);
}

static void b_commit(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_commit(w); }

static void b_unknown_mandatory(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	stream_write_record(w, 0x00001234, "abc", 3);
}

static void b_fixed_len(struct stream_writer *w, struct tbuf *s)
{
	struct stream_guest_info g = { .guest_pages = 8, .nr_vcpus = 1 };
	(void)s;
	stream_write_record(w, STREAM_ITER_END, &g, sizeof(g));
}

static void b_too_long(struct stream_writer *w, struct tbuf *s)
{
	struct stream_rec_hdr h = { .type = STREAM_PAGE_DATA, .length = STREAM_MAX_BODY + 8 };
	(void)w;
	put(s, &h, sizeof(h));
}

static void b_padding(struct stream_writer *w, struct tbuf *s)
{
	stream_write_error(w, STREAM_WERR_INTERNAL, "oops");	/* 8 + 4 bytes, 4 of padding */
	s->data[s->len - 1] = 0x20;
}

static void b_nack_text(struct stream_writer *w, struct tbuf *s)
{
	struct tbuf b = { 0 };
	static char text[STREAM_MAX_TEXT + 1];
	(void)s;
	put64(&b, 1);
	put64(&b, SAMPLE_MIG_ID);
	put(&b, text, sizeof(text));
	raw(w, STREAM_ERROR, &b);
}

static void b_iter_reserved(struct stream_writer *w, struct tbuf *s)
{
	struct stream_iter_end it = { .iteration = 1, .reserved = 3 };
	(void)s;
	stream_write_iter_end(w, &it);
}

static void b_trailing(struct stream_writer *w, struct tbuf *s)
{
	digest_end(w);
	put(s, "\0\0\0\0\0\0\0\0", 8);
}

static void b_not_hello(struct stream_writer *w, struct tbuf *s)
{
	struct stream_guest_info g = { .guest_pages = 8, .nr_vcpus = 1 };
	(void)s;
	stream_write_guest_info(w, &g);
}

/* ---- version 2: migration ids and the switch-over --------------------- */

#define BAD_ID 0xbadull

/* A control record (END, READY, GO, COMMIT, VERIFIED, CANCEL) carrying id. */
static void ctl(struct stream_writer *w, uint32_t type, uint64_t id)
{
	struct stream_ctl c = { .mig_id = id };
	assert_int_equal(stream_write_record(w, type, &c, sizeof(c)), 0);
}

/* NACK or ERROR carrying id. */
static void reason(struct stream_writer *w, uint32_t type, uint32_t code, uint64_t id, const char *text)
{
	struct tbuf b = { 0 };
	struct stream_reason why = { .code = code, .mig_id = id };
	put(&b, &why, sizeof(why));
	put(&b, text, strlen(text));
	raw(w, type, &b);
}

static void end_go(struct stream_writer *w) { stream_write_end(w); stream_write_go(w); }
static void trail8(struct tbuf *s) { put(s, "\0\0\0\0\0\0\0\0", 8); }

static void b_end_bad_id(struct stream_writer *w, struct tbuf *s)
{
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 8 };
	(void)s;
	stream_write_digest(w, &d);
	ctl(w, STREAM_END, BAD_ID);
}
static void b_cancel_id0(struct stream_writer *w, struct tbuf *s) { (void)s; ctl(w, STREAM_CANCEL, 0); }
static void b_error_bad_id(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	reason(w, STREAM_ERROR, STREAM_WERR_TIMEOUT, SAMPLE_MIG_ID + 1, "late");
}
static void b_error_id_before_hello(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	reason(w, STREAM_ERROR, STREAM_WERR_PROTOCOL, SAMPLE_MIG_ID, "too early for an id");
}
static void b_go_bad_id(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	digest_end(w);
	ctl(w, STREAM_GO, BAD_ID);
}
static void b_saved_ack_bad_id(struct stream_writer *w, struct tbuf *s)
{
	struct sample_opts o = { .pages = 8, .saved = true };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = sample_ack(&o);
	(void)s;
	a.mig_id = BAD_ID;
	stream_write_hello(w, &h);
	stream_write_hello_ack(w, &a);
}
static void b_nothing(struct stream_writer *w, struct tbuf *s) { (void)w, (void)s; }
static void b_go(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_go(w); }
static void b_rd_before_end(struct stream_writer *w, struct tbuf *s) { (void)s; rd(w, 0, 1); }
static void b_after_end_not_go(struct stream_writer *w, struct tbuf *s)
{
	uint64_t pf = 2;
	(void)s;
	digest_end(w);
	stream_write_zero_pages(w, 1, &pf);
}
static void b_go_in_saved(struct stream_writer *w, struct tbuf *s) { (void)s; digest_end(w); stream_write_go(w); }
static void b_cancel_after_go(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	end_go(w);
	stream_write_cancel(w);
}
static void b_go_final_classic(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	digest_end(w);
	stream_write_go(w);
	rd(w, 0, 1);
}
static void b_after_go_not_rd(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); stream_write_end(w); }
static void b_digest_verify_after(struct stream_writer *w, struct tbuf *s)
{
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 8 };
	(void)s;
	stream_write_digest(w, &d);
}
static void b_rd_skips(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); rd(w, 0, 1); rd(w, 2, 1); }
static void b_rd_repeats(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); rd(w, 0, 2); rd(w, 1, 1); }
static void b_rd_count0(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); rd(w, 0, 0); }
static void b_rd_count_big(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	end_go(w);
	regions(w, STREAM_DIGEST_XXH3_128, STREAM_REGION_PAGES, 0, STREAM_MAX_REGIONS + 1, 0, 0);
}
static void b_rd_beyond(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); rd(w, 0, 2); rd(w, 2, 2); }
static void b_rd_beyond_small(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); rd(w, 0, 2); }
static void b_rd_length(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	end_go(w);
	regions(w, STREAM_DIGEST_XXH3_128, STREAM_REGION_PAGES, 0, 1, 0, 2);
}
static void b_rd_short(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	end_go(w);
	stream_write_record(w, STREAM_REGION_DIGEST, "0123456789abcdef", 16);
}
static void b_rd_size(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	end_go(w);
	regions(w, STREAM_DIGEST_XXH3_128, 256, 0, 1, 0, 1);
}
static void b_rd_algo(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); regions(w, 2, 512, 0, 1, 0, 1); }
static void b_rd_reserved(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); regions(w, 1, 512, 0, 1, 1, 1); }
static void b_rd_trailing(struct stream_writer *w, struct tbuf *s) { end_go(w); rd(w, 0, 1); trail8(s); }
static void b_rd_trailing_big(struct stream_writer *w, struct tbuf *s) { end_go(w); rd(w, 0, 2); rd(w, 2, 1); trail8(s); }
static void b_rd_not_last(struct stream_writer *w, struct tbuf *s) { (void)s; end_go(w); rd(w, 0, 2); }
static void b_ready(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_ready(w); }

/* Reply streams: the destination's writer (its id from the HELLO_ACK). */
static void b_r_commit(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_commit(w); }
static void b_r_ready2(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_ready(w); stream_write_ready(w); }
static void b_r_verified(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_ready(w); stream_write_verified(w); }
static void b_r_commit_verified(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	stream_write_ready(w);
	stream_write_commit(w);
	stream_write_verified(w);
}
static void b_r_commit2(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	stream_write_ready(w);
	stream_write_commit(w);
	stream_write_commit(w);
}
static void b_r_commit_only(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_ready(w); stream_write_commit(w); }
static void b_r_commit_bad_id(struct stream_writer *w, struct tbuf *s) { (void)s; stream_write_ready(w); ctl(w, STREAM_COMMIT, BAD_ID); }
static void b_r_ready_bad_id(struct stream_writer *w, struct tbuf *s) { (void)s; ctl(w, STREAM_READY, BAD_ID); }
static void b_r_nack_id0(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	reason(w, STREAM_NACK, STREAM_NACK_DIGEST, 0, "memory digest mismatch");
}
static void b_r_verified_bad_id(struct stream_writer *w, struct tbuf *s)
{
	(void)s;
	stream_write_ready(w);
	stream_write_commit(w);
	ctl(w, STREAM_VERIFIED, BAD_ID);
}
static void b_r_region_digest(struct stream_writer *w, struct tbuf *s) { (void)s; rd(w, 0, 1); }

static void patch_hdr(struct tbuf *s, size_t off, uint32_t v) { memcpy(s->data + off, &v, 4); }
static void b_magic(struct stream_writer *w, struct tbuf *s) { (void)w; s->data[0] = 'G'; }
static void b_version(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 8, 1); }
static void b_version3(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 8, 3); }
static void b_order(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 16, 0x04030201); }
static void b_shift(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 20, 13); }
static void b_hflags(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 24, 0x81); }
static void b_hlen(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 12, 36); }

static const struct bad_case bad_cases[] = {
	{ "bad-magic", BC_BARE, b_magic, STREAM_E_MAGIC, "header: bad magic 0x47494d5952524547" },
	{ "version-1", BC_BARE, b_version, STREAM_E_VERSION, "header: version 1, this reader knows 2" },
	{ "version-3", BC_BARE, b_version3, STREAM_E_VERSION, "header: version 3, this reader knows 2" },
	{ "byte-order-swapped", BC_BARE, b_order, STREAM_E_HEADER,
	  "header: byte-order mark 0x04030201, want 0x01020304" },
	{ "page-shift-13", BC_BARE, b_shift, STREAM_E_HEADER, "header: page shift 13, only 12 supported" },
	{ "unknown-header-flag", BC_BARE, b_hflags, STREAM_E_HEADER, "header: unknown flags 0x00000080" },
	{ "header-length-36", BC_BARE, b_hlen, STREAM_E_HEADER, "header: length 36 not in 32..4096 step 8" },
	{ "first-not-hello", BC_BARE, b_not_hello, STREAM_E_ORDER,
	  "record 0 (GUEST_INFO): stream must start with HELLO" },
	{ "page-beyond-guest", 0, b_page_beyond, STREAM_E_RANGE,
	  "record 3 (PAGE_DATA): page 8 beyond guest size 8" },
	{ "xbzrle-page-beyond-guest", 0, b_xbzrle_beyond, STREAM_E_RANGE,
	  "record 3 (XBZRLE_PAGES): page 123456 beyond guest size 8" },
	{ "xbzrle-not-agreed", BC_NO_XBZRLE, b_xbzrle_beyond, STREAM_E_ORDER,
	  "record 3 (XBZRLE_PAGES): xbzrle codec was not agreed" },
	{ "pages-not-increasing", 0, b_pages_not_increasing, STREAM_E_ORDER,
	  "record 3 (ZERO_PAGES): page 4 after page 4: not increasing" },
	{ "count-vs-length", 0, b_count_vs_length, STREAM_E_LENGTH,
	  "record 3 (PAGE_DATA): length 4112, 2 pages need 8216" },
	{ "count-zero", 0, b_count_zero, STREAM_E_RANGE, "record 3 (ZERO_PAGES): count 0 not in 1..4096" },
	{ "count-513", 0, b_count_too_big, STREAM_E_RANGE, "record 3 (PAGE_DATA): count 513 not in 1..512" },
	{ "batch-reserved", 0, b_batch_reserved, STREAM_E_RESERVED,
	  "record 3 (ZERO_PAGES): batch reserved field 0x00000010" },
	{ "xbzrle-length-0", 0, b_xb_len0, STREAM_E_RANGE,
	  "record 3 (XBZRLE_PAGES): page 1 encoded length 0 not in 1..4096" },
	{ "xbzrle-length-4097", 0, b_xb_len_big, STREAM_E_RANGE,
	  "record 3 (XBZRLE_PAGES): page 1 encoded length 4097 not in 1..4096" },
	{ "xbzrle-data-beyond-record", 0, b_xb_short, STREAM_E_LENGTH,
	  "record 3 (XBZRLE_PAGES): page 1: 20 encoded bytes beyond length 32" },
	{ "xbzrle-entry-beyond-record", 0, b_xb_header_cut, STREAM_E_LENGTH,
	  "record 3 (XBZRLE_PAGES): entry 0 header beyond length 16" },
	{ "xbzrle-padding", 0, b_xb_pad, STREAM_E_RESERVED, "record 3 (XBZRLE_PAGES): page 1: padding not zero" },
	{ "xbzrle-extra-bytes", 0, b_xb_extra, STREAM_E_LENGTH,
	  "record 3 (XBZRLE_PAGES): 8 bytes after 1 entries" },
	{ "xbzrle-entry-reserved", 0, b_xb_reserved, STREAM_E_RESERVED,
	  "record 3 (XBZRLE_PAGES): entry 0 reserved field 0x00000009" },
	{ "end-without-digest", 0, b_end_no_digest, STREAM_E_ORDER, "record 3 (END): END without DIGEST" },
	{ "page-after-digest", 0, b_page_after_digest, STREAM_E_ORDER,
	  "record 4 (ZERO_PAGES): page record after DIGEST" },
	{ "second-guest-info", 0, b_second_guest, STREAM_E_ORDER, "record 3 (GUEST_INFO): second GUEST_INFO" },
	{ "guest-info-size", BC_NO_GUEST, b_guest_size, STREAM_E_RANGE,
	  "record 2 (GUEST_INFO): guest size 9, HELLO said 8" },
	{ "pages-before-guest-info", BC_NO_GUEST, b_pages_before_guest, STREAM_E_ORDER,
	  "record 2 (ZERO_PAGES): before GUEST_INFO" },
	{ "vcpu-out-of-range", 0, b_vcpu_range, STREAM_E_RANGE, "record 3 (CPU_STATE): vcpu 1 beyond 1 vcpus" },
	{ "cpu-state-version", 0, b_cpu_version, STREAM_E_VERSION,
	  "record 3 (CPU_STATE): version 2, this reader knows 1" },
	{ "cpu-state-length", 0, b_cpu_len, STREAM_E_LENGTH,
	  "record 3 (CPU_STATE): length 616 with XSAVE length 64" },
	{ "cpu-state-reserved", 0, b_cpu_reserved, STREAM_E_RESERVED,
	  "record 3 (CPU_STATE): reserved field not zero" },
	{ "device-state-version", BC_PLATFORM, b_dev_version, STREAM_E_VERSION,
	  "record 3 (DEVICE_STATE): version 2, this reader knows 1" },
	{ "device-state-model", BC_PLATFORM, b_dev_model, STREAM_E_RANGE,
	  "record 3 (DEVICE_STATE): platform model 7, this reader knows 1" },
	{ "device-state-length", BC_PLATFORM, b_dev_len, STREAM_E_LENGTH,
	  "record 3 (DEVICE_STATE): length 24 with device state length 16" },
	{ "device-state-too-big", BC_PLATFORM, b_dev_too_big, STREAM_E_LENGTH,
	  "record 3 (DEVICE_STATE): length 65560 with device state length 65544" },
	{ "device-state-reserved", BC_PLATFORM, b_dev_reserved, STREAM_E_RESERVED,
	  "record 3 (DEVICE_STATE): reserved field 0x00000005" },
	{ "device-state-not-agreed", 0, b_dev_not_agreed, STREAM_E_ORDER,
	  "record 3 (DEVICE_STATE): device state but the platform was not agreed" },
	{ "digest-algorithm", 0, b_digest_algo, STREAM_E_RANGE,
	  "record 3 (DIGEST): digest algorithm 0x2, agreed 0x1" },
	{ "digest-pages", 0, b_digest_pages, STREAM_E_RANGE,
	  "record 3 (DIGEST): digest covers 7 pages, guest has 8" },
	{ "hello-ack-repeated", 0, b_ack_again, STREAM_E_ORDER, "record 3 (HELLO_ACK): HELLO_ACK repeated" },
	{ "commit-in-migration", 0, b_commit, STREAM_E_ORDER,
	  "record 3 (COMMIT): destination's record in a migration stream" },
	{ "unknown-mandatory", 0, b_unknown_mandatory, STREAM_E_UNKNOWN,
	  "record 3 (UNKNOWN): unknown mandatory type 0x00001234" },
	{ "fixed-length-wrong", 0, b_fixed_len, STREAM_E_LENGTH, "record 3 (ITER_END): length 88, want 80" },
	{ "length-above-maximum", 0, b_too_long, STREAM_E_TOO_LONG,
	  "record 3 (PAGE_DATA): length 4194312 above maximum 4194304" },
	{ "padding-not-zero", 0, b_padding, STREAM_E_RESERVED, "record 3 (ERROR): padding byte 3 not zero" },
	{ "error-text-too-long", 0, b_nack_text, STREAM_E_LENGTH, "record 3 (ERROR): length 1041 not in 16..1040" },
	{ "iter-end-reserved", 0, b_iter_reserved, STREAM_E_RESERVED, "record 3 (ITER_END): reserved field 0x00000003" },
	{ "trailing-bytes", 0, b_trailing, STREAM_E_TRAILING, "data at offset 408 after the final record 4 (END)" },

	/* Migration ids: every control record carries the HELLO's (0 before it). */
	{ "end-wrong-mig-id", 0, b_end_bad_id, STREAM_E_RANGE,
	  "record 4 (END): migration id 0000000000000bad, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "cancel-mig-id-0", 0, b_cancel_id0, STREAM_E_RANGE,
	  "record 3 (CANCEL): migration id 0000000000000000, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "error-wrong-mig-id", 0, b_error_bad_id, STREAM_E_RANGE,
	  "record 3 (ERROR): migration id 1d2c3b4a59687707, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "error-mig-id-before-hello", BC_BARE, b_error_id_before_hello, STREAM_E_RANGE,
	  "record 0 (ERROR): migration id " SAMPLE_MIG_ID_HEX ", this stream's is 0000000000000000" },
	{ "go-wrong-mig-id", BC_LIVE, b_go_bad_id, STREAM_E_RANGE,
	  "record 4 (GO): migration id 0000000000000bad, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "saved-ack-wrong-mig-id", BC_BARE, b_saved_ack_bad_id, STREAM_E_RANGE,
	  "record 1 (HELLO_ACK): migration id 0000000000000bad, HELLO said " SAMPLE_MIG_ID_HEX },
	{ "saved-verify-after", BC_VERIFY, b_nothing, STREAM_E_RANGE,
	  "record 1 (HELLO_ACK): verification after the switch-over in a saved stream" },

	/* The migration stream's switch-over: END, then GO or CANCEL; after GO
	 * REGION_DIGEST only (verification after the switch-over), or nothing. */
	{ "go-before-end", BC_LIVE, b_go, STREAM_E_ORDER, "record 2 (GO): before END" },
	{ "region-digest-before-end", BC_LIVE | BC_VERIFY, b_rd_before_end, STREAM_E_ORDER,
	  "record 2 (REGION_DIGEST): before END" },
	{ "live-end-without-digest", BC_LIVE, b_end_no_digest, STREAM_E_ORDER, "record 2 (END): END without DIGEST" },
	{ "after-end-not-go", BC_LIVE, b_after_end_not_go, STREAM_E_ORDER,
	  "record 4 (ZERO_PAGES): after END only GO or CANCEL may follow" },
	{ "go-in-saved-file", 0, b_go_in_saved, STREAM_E_TRAILING,
	  "data at offset 408 after the final record 4 (END)" },
	{ "cancel-after-go", BC_LIVE | BC_VERIFY, b_cancel_after_go, STREAM_E_ORDER,
	  "record 4 (CANCEL): CANCEL after GO, past the point of no return" },
	{ "go-final-without-verify-after", BC_LIVE, b_go_final_classic, STREAM_E_TRAILING,
	  "data at offset 296 after the final record 4 (GO)" },
	{ "after-go-not-region-digest", BC_LIVE | BC_VERIFY, b_after_go_not_rd, STREAM_E_ORDER,
	  "record 4 (END): after GO only REGION_DIGEST may follow" },
	{ "digest-with-verify-after", BC_LIVE | BC_VERIFY, b_digest_verify_after, STREAM_E_ORDER,
	  "record 2 (DIGEST): DIGEST, but verification after the switch-over was agreed" },
	{ "ready-in-migration", 0, b_ready, STREAM_E_ORDER,
	  "record 3 (READY): destination's record in a migration stream" },

	/* REGION_DIGEST: layout, regions in order from 0, the last one final. */
	{ "regions-skip", BC_LIVE | BC_VERIFY | BC_BIG, b_rd_skips, STREAM_E_ORDER,
	  "record 5 (REGION_DIGEST): regions from 2, want 1" },
	{ "regions-repeat", BC_LIVE | BC_VERIFY | BC_BIG, b_rd_repeats, STREAM_E_ORDER,
	  "record 5 (REGION_DIGEST): regions from 1, want 2" },
	{ "regions-count-0", BC_LIVE | BC_VERIFY, b_rd_count0, STREAM_E_RANGE,
	  "record 4 (REGION_DIGEST): count 0 not in 1..4096" },
	{ "regions-count-4097", BC_LIVE | BC_VERIFY, b_rd_count_big, STREAM_E_RANGE,
	  "record 4 (REGION_DIGEST): count 4097 not in 1..4096" },
	{ "regions-beyond-guest", BC_LIVE | BC_VERIFY | BC_BIG, b_rd_beyond, STREAM_E_RANGE,
	  "record 5 (REGION_DIGEST): regions 2..3 beyond the guest's 3" },
	{ "regions-beyond-small-guest", BC_LIVE | BC_VERIFY, b_rd_beyond_small, STREAM_E_RANGE,
	  "record 4 (REGION_DIGEST): regions 0..1 beyond the guest's 1" },
	{ "regions-count-vs-length", BC_LIVE | BC_VERIFY, b_rd_length, STREAM_E_LENGTH,
	  "record 4 (REGION_DIGEST): length 56, 1 regions need 40" },
	{ "regions-short", BC_LIVE | BC_VERIFY, b_rd_short, STREAM_E_LENGTH,
	  "record 4 (REGION_DIGEST): length 16 below 24" },
	{ "regions-size", BC_LIVE | BC_VERIFY, b_rd_size, STREAM_E_RANGE,
	  "record 4 (REGION_DIGEST): regions of 256 pages, want 512" },
	{ "regions-algorithm", BC_LIVE | BC_VERIFY, b_rd_algo, STREAM_E_RANGE,
	  "record 4 (REGION_DIGEST): digest algorithm 0x2, agreed 0x1" },
	{ "regions-reserved", BC_LIVE | BC_VERIFY, b_rd_reserved, STREAM_E_RESERVED,
	  "record 4 (REGION_DIGEST): reserved field 0x00000001" },
	{ "regions-trailing", BC_LIVE | BC_VERIFY, b_rd_trailing, STREAM_E_TRAILING,
	  "data at offset 304 after the final record 4 (REGION_DIGEST)" },
	{ "regions-trailing-big", BC_LIVE | BC_VERIFY | BC_BIG, b_rd_trailing_big, STREAM_E_TRAILING,
	  "data at offset 368 after the final record 5 (REGION_DIGEST)" },
	{ "regions-last-missing", BC_LIVE | BC_VERIFY | BC_BIG, b_rd_not_last, STREAM_E_TRUNCATED,
	  "stream ends after record 4 (REGION_DIGEST) without a final record" },

	/* Reply streams: HELLO_ACK, READY, COMMIT, (verify-after) VERIFIED. */
	{ "reply-commit-before-ready", BC_REPLY, b_r_commit, STREAM_E_ORDER,
	  "record 1 (COMMIT): COMMIT before READY" },
	{ "reply-second-ready", BC_REPLY, b_r_ready2, STREAM_E_ORDER, "record 2 (READY): second READY" },
	{ "reply-verified-without-verify-after", BC_REPLY, b_r_verified, STREAM_E_ORDER,
	  "record 2 (VERIFIED): VERIFIED without verification after the switch-over" },
	{ "reply-commit-final-without-verify-after", BC_REPLY, b_r_commit_verified, STREAM_E_TRAILING,
	  "data at offset 192 after the final record 2 (COMMIT)" },
	{ "reply-verified-before-commit", BC_REPLY | BC_VERIFY, b_r_verified, STREAM_E_ORDER,
	  "record 2 (VERIFIED): VERIFIED before COMMIT" },
	{ "reply-second-commit", BC_REPLY | BC_VERIFY, b_r_commit2, STREAM_E_ORDER,
	  "record 3 (COMMIT): second COMMIT" },
	{ "reply-commit-not-final-with-verify-after", BC_REPLY | BC_VERIFY, b_r_commit_only, STREAM_E_TRUNCATED,
	  "stream ends after record 2 (COMMIT) without a final record" },
	{ "reply-commit-wrong-mig-id", BC_REPLY, b_r_commit_bad_id, STREAM_E_RANGE,
	  "record 2 (COMMIT): migration id 0000000000000bad, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "reply-ready-wrong-mig-id", BC_REPLY, b_r_ready_bad_id, STREAM_E_RANGE,
	  "record 1 (READY): migration id 0000000000000bad, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "reply-verified-wrong-mig-id", BC_REPLY | BC_VERIFY, b_r_verified_bad_id, STREAM_E_RANGE,
	  "record 3 (VERIFIED): migration id 0000000000000bad, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "reply-nack-mig-id-0", BC_REPLY, b_r_nack_id0, STREAM_E_RANGE,
	  "record 1 (NACK): migration id 0000000000000000, this stream's is " SAMPLE_MIG_ID_HEX },
	{ "reply-go", BC_REPLY, b_go, STREAM_E_ORDER, "record 1 (GO): not valid in a reply stream" },
	{ "reply-region-digest", BC_REPLY | BC_VERIFY, b_r_region_digest, STREAM_E_ORDER,
	  "record 1 (REGION_DIGEST): not valid in a reply stream" },
};

static void test_malformed_streams(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(bad_cases) / sizeof(bad_cases[0]); c++) {
		const struct bad_case *tc = &bad_cases[c];
		struct tbuf s = { 0 };
		struct stream_writer w;
		char msg[256];

		struct stream_hello_ack ack = prefix_ack(tc->flags);
		enum stream_dir dir = tc->flags & BC_REPLY ? STREAM_DIR_REPLY : STREAM_DIR_MIGRATION;
		const struct stream_hello_ack *live = tc->flags & BC_LIVE ? &ack : NULL;

		build_prefix(&w, &s, tc->flags);
		tc->build(&w, &s);
		/* whole, then byte by byte: same verdict and message */
		int rc = feed_dir(s.data, s.len, 0, dir, live, msg, sizeof(msg), NULL);
		EXPECT_INT(tc->name, stream_err_to_str(rc), -tc->want, rc);
		if (strcmp(msg, tc->msg) != 0)
			fail_msg("%s: expected message \"%s\", got \"%s\"", tc->name, tc->msg, msg);
		rc = feed_dir(s.data, s.len, 1, dir, live, msg, sizeof(msg), NULL);
		EXPECT_INT(tc->name, "byte-by-byte", -tc->want, rc);
		if (strcmp(msg, tc->msg) != 0)
			fail_msg("%s: byte-by-byte: expected \"%s\", got \"%s\"", tc->name, tc->msg, msg);
		tbuf_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed_streams),
	};
	return cmocka_run_group_tests_name("stream_reader", tests, NULL, NULL);
}
