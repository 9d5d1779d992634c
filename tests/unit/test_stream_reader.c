/* test_stream_reader.c: the reader against hostile input. A table of
 * malformed streams, each rejected with an exact message; truncation at
 * every offset; a flipped bit anywhere; unknown optional records skipped and
 * unknown mandatory ones rejected; lengths capped before any allocation; the
 * failed state sticks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_testlib.h"

#define EXPECT_INT(name, what, want, got)                                          \
	do {                                                                       \
		long long w_ = (long long)(want), g_ = (long long)(got);           \
		if (w_ != g_)                                                      \
			fail_msg("%s: %s: expected %lld, got %lld", (name), (what), \
				 w_, g_);                                          \
	} while (0)

/* Feed all of d at once; return the first error (or 0 / finish result). */
static int feed_all(const uint8_t *d, size_t n, char *msg, size_t msglen, size_t *records)
{
	struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
	size_t pos = 0, nrec = 0;
	int rc = 0;

	while (rc == 0) {
		struct stream_record rec;
		size_t used;
		int k = stream_reader_feed(r, d + pos, n - pos, &used, &rec);
		pos += used;
		if (k < 0)
			rc = k;
		else if (k == 0)
			break;
		else
			nrec++;
	}
	if (rc == 0)
		rc = stream_reader_finish(r);
	snprintf(msg, msglen, "%s", stream_reader_error(r));
	if (records)
		*records = nrec;
	stream_reader_free(r);
	return rc;
}

/* ---- malformed streams ------------------------------------------------- */

/* The prefix every case starts from: saved stream, no CRC, guest of 8
 * pages, 1 vcpu, codecs raw+zero(+xbzrle unless the case says not). Records
 * 0 HELLO, 1 HELLO_ACK, 2 GUEST_INFO; the case's own records start at 3. */
struct bad_case {
	const char *name;
	unsigned flags;
#define BC_NO_XBZRLE	1u	/* ack without xbzrle */
#define BC_NO_GUEST	2u	/* no GUEST_INFO in the prefix */
#define BC_BARE		4u	/* only the header */
#define BC_PLATFORM	8u	/* ack grants STREAM_CAP_PLATFORM_PC */
	void (*build)(struct stream_writer *w, struct tbuf *s);
	int want;
	const char *msg;
};

static void put(struct tbuf *b, const void *p, size_t n) { tbuf_out(b, p, n); }
static void put64(struct tbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_batch(struct tbuf *b, uint32_t count, uint32_t reserved)
{
	struct stream_batch bh = { count, reserved };
	put(b, &bh, sizeof(bh));
}

static void raw(struct stream_writer *w, uint32_t type, struct tbuf *body)
{
	assert_int_equal(stream_write_record(w, type, body->data, (uint32_t)body->len), 0);
	tbuf_free(body);
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

static void patch_hdr(struct tbuf *s, size_t off, uint32_t v) { memcpy(s->data + off, &v, 4); }
static void b_magic(struct stream_writer *w, struct tbuf *s) { (void)w; s->data[0] = 'G'; }
static void b_version(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 8, 2); }
static void b_order(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 16, 0x04030201); }
static void b_shift(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 20, 13); }
static void b_hflags(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 24, 0x81); }
static void b_hlen(struct stream_writer *w, struct tbuf *s) { (void)w; patch_hdr(s, 12, 36); }

static const struct bad_case bad_cases[] = {
	{ "bad-magic", BC_BARE, b_magic, STREAM_E_MAGIC, "header: bad magic 0x47494d5952524547" },
	{ "version-2", BC_BARE, b_version, STREAM_E_VERSION, "header: version 2, this reader knows 1" },
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
	{ "error-text-too-long", 0, b_nack_text, STREAM_E_LENGTH, "record 3 (ERROR): length 1033 not in 8..1032" },
	{ "iter-end-reserved", 0, b_iter_reserved, STREAM_E_RESERVED, "record 3 (ITER_END): reserved field 0x00000003" },
	{ "trailing-bytes", 0, b_trailing, STREAM_E_TRAILING, "data at offset 384 after the final record 4 (END)" },
};

static void build_prefix(struct stream_writer *w, struct tbuf *s, unsigned flags)
{
	struct sample_opts o = { .pages = 8, .xbzrle = !(flags & BC_NO_XBZRLE), .saved = true };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = sample_ack(&o);
	struct stream_guest_info g = { .guest_pages = 8, .nr_vcpus = 1 };

	a.caps &= ~STREAM_CAP_CRC32C;
	if (flags & BC_PLATFORM) {
		h.caps |= STREAM_CAP_PLATFORM_PC;
		a.caps |= STREAM_CAP_PLATFORM_PC;
	}
	stream_writer_init_fn(w, tbuf_out, s);
	assert_int_equal(stream_write_header(w, STREAM_HDR_F_SAVED), 0);
	if (flags & BC_BARE)
		return;
	assert_int_equal(stream_write_hello(w, &h), 0);
	assert_int_equal(stream_write_hello_ack(w, &a), 0);
	w->guest_pages = 0;	/* let cases write what the writer would refuse */
	if (!(flags & BC_NO_GUEST))
		assert_int_equal(stream_write_guest_info(w, &g), 0);
}

static void test_malformed_streams(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(bad_cases) / sizeof(bad_cases[0]); c++) {
		const struct bad_case *tc = &bad_cases[c];
		struct tbuf s = { 0 };
		struct stream_writer w;
		char msg[256];

		build_prefix(&w, &s, tc->flags);
		tc->build(&w, &s);
		/* whole, then byte by byte: same verdict and message */
		int rc = feed_all(s.data, s.len, msg, sizeof(msg), NULL);
		EXPECT_INT(tc->name, stream_err_to_str(rc), -tc->want, rc);
		if (strcmp(msg, tc->msg) != 0)
			fail_msg("%s: expected message \"%s\", got \"%s\"", tc->name, tc->msg, msg);

		struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
		int k = 0;
		for (size_t i = 0; i < s.len && k >= 0; i++) {
			struct stream_record rec;
			size_t used;
			k = stream_reader_feed(r, s.data + i, 1, &used, &rec);
		}
		if (k >= 0)
			k = stream_reader_finish(r);
		EXPECT_INT(tc->name, "byte-by-byte", -tc->want, k);
		if (strcmp(stream_reader_error(r), tc->msg) != 0)
			fail_msg("%s: byte-by-byte: expected \"%s\", got \"%s\"", tc->name, tc->msg,
				 stream_reader_error(r));
		stream_reader_free(r);
		tbuf_free(&s);
	}
}

/* ---- whole-stream properties --------------------------------------------- */

static void test_truncation_at_every_offset(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 8, .crc = true, .xbzrle = true, .saved = true, .seed = 3 };
	struct sample sm;
	char msg[256];

	assert_int_equal(sample_build(&sm, &o), 0);
	EXPECT_INT("full", "whole stream", 0, feed_all(sm.s.data, sm.s.len, msg, sizeof(msg), NULL));
	for (size_t cut = 0; cut < sm.s.len; cut++) {
		int rc = feed_all(sm.s.data, cut, msg, sizeof(msg), NULL);
		if (rc != -STREAM_E_TRUNCATED)
			fail_msg("cut at %zu of %zu: expected %s, got %s (%s)", cut, sm.s.len,
				 stream_err_to_str(STREAM_E_TRUNCATED), stream_err_to_str(rc), msg);
	}
	sample_free(&sm);
}

/* With CRC32C on, one flipped bit anywhere fails the stream (reader or
 * digest). Without it, a flip in a statistic or register may pass, but a
 * stream that would produce the wrong memory never does (the digest). */
static void test_flipped_bit_anywhere(void **state)
{
	(void)state;
	for (int crc = 1; crc >= 0; crc--) {
		struct sample_opts o = { .pages = 8, .crc = crc, .xbzrle = true, .saved = true, .seed = 9 };
		struct sample sm;
		size_t checked = 0;

		assert_int_equal(sample_build(&sm, &o), 0);
		for (size_t off = 0; off < sm.s.len; off++) {
			for (unsigned b = 0; b < 8; b++) {
				struct replay rp;
				uint8_t bit = (uint8_t)(1u << b);
				sm.s.data[off] ^= bit;
				memset(&rp, 0, sizeof(rp));
				int rc = replay_run(&rp, sm.s.data, sm.s.len, 0, 0);
				sm.s.data[off] ^= bit;
				if (crc && rc == 0)
					fail_msg("crc: bit %u of byte %zu flipped: stream accepted", b, off);
				if (!crc && rc == 0 &&
				    memcmp(rp.mem, sm.mem, 8 * STREAM_PAGE_SIZE) != 0)
					fail_msg("nocrc: bit %u of byte %zu flipped: wrong memory accepted",
						 b, off);
				replay_free(&rp);
			}
			checked++;
		}
		EXPECT_INT(crc ? "crc" : "nocrc", "bytes checked", sm.s.len, checked);
		sample_free(&sm);
	}
}

/* Unknown optional records are skipped wherever they sit; unknown
 * mandatory ones fail. */
static void test_unknown_types(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 8, .crc = true, .xbzrle = true, .saved = true, .seed = 4 };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = sample_ack(&o);
	struct stream_guest_info g = { .guest_pages = 8, .nr_vcpus = 1 };
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 8 };
	struct tbuf s = { 0 };
	struct stream_writer w;
	char msg[256];
	size_t nrec;
	static uint8_t junk[5000];

	stream_writer_init_fn(&w, tbuf_out, &s);
	stream_write_header(&w, STREAM_HDR_F_SAVED);
	stream_write_hello(&w, &h);
	stream_write_record(&w, STREAM_TYPE_OPTIONAL | 0x4242, junk, 1);
	stream_write_hello_ack(&w, &a);
	stream_write_record(&w, 0xfffffff0u, junk, sizeof(junk));
	stream_write_guest_info(&w, &g);
	stream_write_record(&w, STREAM_TYPE_OPTIONAL | 1000, NULL, 0);
	stream_write_digest(&w, &d);
	stream_write_end(&w);
	assert_int_equal(feed_all(s.data, s.len, msg, sizeof(msg), &nrec), 0);
	assert_int_equal(nrec, 5);	/* HELLO, ACK, GUEST_INFO, DIGEST, END */
	tbuf_free(&s);
}

/* A length above the maximum fails on the 8 header bytes alone, before the
 * reader allocates anything. */
static void test_oversized_rejected_before_allocation(void **state)
{
	(void)state;
	static const uint32_t lengths[] = { STREAM_MAX_BODY + 1, 0x7fffffffu, 0xfffffff8u, 0xffffffffu };
	struct sample_opts o = { .pages = 8, .saved = true };
	struct stream_hello h = sample_hello(&o);

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		for (int opt = 0; opt < 2; opt++) {
			struct tbuf s = { 0 };
			struct stream_writer w;
			struct stream_rec_hdr rh = { .type = opt ? STREAM_TYPE_OPTIONAL | 77 : STREAM_PAGE_DATA,
						     .length = lengths[i] };
			stream_writer_init_fn(&w, tbuf_out, &s);
			stream_write_header(&w, STREAM_HDR_F_SAVED);
			stream_write_hello(&w, &h);
			tbuf_out(&s, &rh, sizeof(rh));

			struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
			struct stream_record rec;
			size_t used;
			size_t before = stream_reader_buffer_size(r);
			assert_int_equal(stream_reader_feed(r, s.data, s.len - 8, &used, &rec), 1);
			int rc = stream_reader_feed(r, s.data + used, 8, &used, &rec);
			EXPECT_INT("oversized", "return", -STREAM_E_TOO_LONG, rc);
			EXPECT_INT("oversized", "bytes allocated", before, stream_reader_buffer_size(r));
			tbuf_free(&s);
			stream_reader_free(r);
		}
	}
}

/* After an error every call returns it again, whatever is fed. */
static void test_failure_is_sticky(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 8, .crc = true, .xbzrle = true, .saved = true, .seed = 1 };
	struct sample sm;
	struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
	struct stream_record rec;
	size_t used;
	uint8_t bad[32] = { 0 };

	assert_int_equal(sample_build(&sm, &o), 0);
	assert_int_equal(stream_reader_feed(r, bad, sizeof(bad), &used, &rec), -STREAM_E_MAGIC);
	char first[256];
	snprintf(first, sizeof(first), "%s", stream_reader_error(r));
	assert_int_equal(stream_reader_feed(r, sm.s.data, sm.s.len, &used, &rec), -STREAM_E_MAGIC);
	assert_int_equal(used, 0);
	assert_int_equal(stream_reader_finish(r), -STREAM_E_MAGIC);
	assert_string_equal(stream_reader_error(r), first);
	stream_reader_free(r);
	sample_free(&sm);
}

/* A longer header from a later version: the extra bytes are skipped. */
static void test_header_extension_skipped(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 8, .crc = true, .xbzrle = true, .saved = true, .seed = 2 };
	struct sample sm;
	struct tbuf s = { 0 };
	char msg[256];
	uint32_t hlen = 48;

	assert_int_equal(sample_build(&sm, &o), 0);
	tbuf_out(&s, sm.s.data, 32);
	memcpy(s.data + 12, &hlen, 4);
	tbuf_out(&s, "future-fields!!!", 16);
	tbuf_out(&s, sm.s.data + 32, sm.s.len - 32);
	if (feed_all(s.data, s.len, msg, sizeof(msg), NULL) != 0)
		fail_msg("extended header: expected success, got \"%s\"", msg);
	tbuf_free(&s);
	sample_free(&sm);
}

/* Reply streams: HELLO_ACK then a verdict; a refusal ends the stream. */
static void test_reply_streams(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 8, .crc = true };
	struct stream_hello_ack a = sample_ack(&o), refuse = { .status = STREAM_REFUSE_GUEST_SIZE };
	struct tbuf s = { 0 };
	struct stream_writer w;

	strcpy(refuse.reason, "64 GiB guest, 1 GiB free");
	for (int c = 0; c < 3; c++) {
		s.len = 0;
		stream_writer_init_fn(&w, tbuf_out, &s);
		stream_write_header(&w, 0);
		stream_write_hello_ack(&w, c == 2 ? &refuse : &a);
		if (c == 0)
			stream_write_commit(&w);
		if (c == 1)
			stream_write_nack(&w, STREAM_NACK_DIGEST, "memory digest mismatch");
		struct stream_reader *r = stream_reader_new(STREAM_DIR_REPLY);
		struct stream_record rec;
		size_t used, pos = 0;
		uint32_t last = 0;
		int k;
		while ((k = stream_reader_feed(r, s.data + pos, s.len - pos, &used, &rec)) == 1) {
			pos += used;
			last = rec.type;
			if (rec.type == STREAM_NACK) {
				uint32_t n;
				const char *t = stream_rec_text(&rec, &n);
				assert_int_equal(n, 22);
				assert_memory_equal(t, "memory digest mismatch", 22);
			}
		}
		assert_int_equal(k, 0);
		assert_int_equal(stream_reader_finish(r), 0);
		assert_int_equal(last, c == 0 ? STREAM_COMMIT : c == 1 ? STREAM_NACK : STREAM_HELLO_ACK);
		assert_int_equal(stream_reader_crc(r), c < 2);
		stream_reader_free(r);
	}
	tbuf_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed_streams),
		cmocka_unit_test(test_truncation_at_every_offset),
		cmocka_unit_test(test_flipped_bit_anywhere),
		cmocka_unit_test(test_unknown_types),
		cmocka_unit_test(test_oversized_rejected_before_allocation),
		cmocka_unit_test(test_failure_is_sticky),
		cmocka_unit_test(test_header_extension_skipped),
		cmocka_unit_test(test_reply_streams),
	};
	return cmocka_run_group_tests_name("stream_reader", tests, NULL, NULL);
}
