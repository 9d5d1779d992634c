/* stream_cases.h: what the reader's case tables share
 * (test_stream_reader.c, test_stream_switchover.c): the prefix a case's
 * stream starts from, chosen by BC_* flags, and builders of records of
 * any layout, valid or not. */
#ifndef FERRY_STREAM_CASES_H
#define FERRY_STREAM_CASES_H

#include <string.h>

#include "stream_testlib.h"

/* The prefix: saved stream, no CRC, guest of 8 pages, 1 vcpu, codecs
 * raw+zero(+xbzrle unless BC_NO_XBZRLE), id SAMPLE_MIG_ID, then HELLO,
 * HELLO_ACK and GUEST_INFO, changed by: */
#define BC_NO_XBZRLE	1u	/* ack without xbzrle */
#define BC_NO_GUEST	2u	/* no GUEST_INFO in the prefix */
#define BC_BARE		4u	/* only the header */
#define BC_PLATFORM	8u	/* ack grants STREAM_CAP_PLATFORM_PC */
#define BC_LIVE		16u	/* a live migration stream */
#define BC_REPLY	32u	/* a reply stream */
#define BC_VERIFY	64u	/* ack grants STREAM_CAP_VERIFY_AFTER */
#define BC_BIG		128u	/* guest of BIG_PAGES pages (3 regions), not 8 */
#define BIG_PAGES	1100u	/* regions of 512, 512 and 76 pages */

/* Bytes of a record body, and a record of any type with that body. */
static inline void put(struct tbuf *b, const void *p, size_t n) { tbuf_out(b, p, n); }
static inline void put64(struct tbuf *b, uint64_t v) { put(b, &v, 8); }
static inline void raw(struct stream_writer *w, uint32_t type, struct tbuf *body)
{
	assert_int_equal(stream_write_record(w, type, body->data, (uint32_t)body->len), 0);
	tbuf_free(body);
}

/* A REGION_DIGEST of any layout: count in the header, nhash hashes after it. */
static inline void regions(struct stream_writer *w, uint32_t algo, uint32_t region_pages, uint64_t first,
			   uint32_t count, uint32_t reserved, uint32_t nhash)
{
	struct tbuf b = { 0 };
	struct stream_region_digest d = { algo, region_pages, first, count, reserved };
	put(&b, &d, sizeof(d));
	for (uint32_t i = 0; i < nhash; i++) {
		put64(&b, 0x1111111111111111ull * (i + 1));
		put64(&b, ~0ull - i);
	}
	raw(w, STREAM_REGION_DIGEST, &b);
}

/* count valid-looking regions from first (the reader cannot check the hashes). */
static inline void rd(struct stream_writer *w, uint64_t first, uint32_t count)
{
	regions(w, STREAM_DIGEST_XXH3_128, STREAM_REGION_PAGES, first, count, 0, count);
}

/* The agreement of a case's prefix (for BC_LIVE, what the reader is given). */
static inline struct stream_hello_ack prefix_ack(unsigned flags)
{
	struct sample_opts o = { .pages = flags & BC_BIG ? BIG_PAGES : 8, .xbzrle = !(flags & BC_NO_XBZRLE),
				 .verify_after = flags & BC_VERIFY };
	struct stream_hello_ack a = sample_ack(&o);

	if (flags & BC_PLATFORM)
		a.caps |= STREAM_CAP_PLATFORM_PC;
	return a;
}

/* Write the header and the prefix flags asks for. */
static inline void build_prefix(struct stream_writer *w, struct tbuf *s, unsigned flags)
{
	struct sample_opts o = { .pages = flags & BC_BIG ? BIG_PAGES : 8, .saved = true };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = prefix_ack(flags);
	struct stream_guest_info g = { .guest_pages = o.pages, .nr_vcpus = 1 };

	if (flags & BC_PLATFORM)
		h.caps |= STREAM_CAP_PLATFORM_PC;
	stream_writer_init_fn(w, tbuf_out, s);
	if (flags & BC_REPLY) {
		assert_int_equal(stream_write_header(w, 0), 0);
		assert_int_equal(stream_write_hello_ack(w, &a), 0);
		return;
	}
	assert_int_equal(stream_write_header(w, flags & BC_LIVE ? 0 : STREAM_HDR_F_SAVED), 0);
	if (flags & BC_BARE)
		return;
	assert_int_equal(stream_write_hello(w, &h), 0);
	if (!(flags & BC_LIVE))
		assert_int_equal(stream_write_hello_ack(w, &a), 0);
	w->guest_pages = 0;	/* let cases write what the writer would refuse */
	if (!(flags & BC_NO_GUEST))
		assert_int_equal(stream_write_guest_info(w, &g), 0);
}

#endif
