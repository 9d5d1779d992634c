/* test_stream_whole.c: the reader on whole streams: a good stream cut at
 * every offset fails (and only the whole passes); a flipped bit anywhere
 * is caught; unknown optional records are skipped and unknown mandatory
 * ones rejected; lengths are capped before any allocation; a failure
 * sticks; a header extension is skipped; reply streams. The table of
 * malformed streams is test_stream_reader.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_testlib.h"


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
		if (c < 2)
			stream_write_ready(&w);
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
		cmocka_unit_test(test_truncation_at_every_offset),
		cmocka_unit_test(test_flipped_bit_anywhere),
		cmocka_unit_test(test_unknown_types),
		cmocka_unit_test(test_oversized_rejected_before_allocation),
		cmocka_unit_test(test_failure_is_sticky),
		cmocka_unit_test(test_header_extension_skipped),
		cmocka_unit_test(test_reply_streams),
	};
	return cmocka_run_group_tests_name("stream whole", tests, NULL, NULL);
}
