/* test_stream_rt.c: the migration stream writer and reader agree. Every
 * record type round-trips field for field; a sample stream replays to the
 * source's memory whether fed whole, one byte at a time or in random chunks;
 * the buffer-mode writer never leaves a partial record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_testlib.h"

/* ---- every record type ------------------------------------------------- */

/* One case: write a record with the writer (after the records it needs
 * before it), read it back, compare bytes of the body with what the case
 * expects. The stream around it is a minimal valid saved prefix (HELLO,
 * HELLO_ACK, GUEST_INFO) of a guest of 64 pages, or a live one (HELLO,
 * GUEST_INFO; the reader is given the agreement), or a reply stream
 * (HELLO_ACK). Control records carry SAMPLE_MIG_ID, filled by the writer. */
struct rt_case {
	const char *name;
	uint32_t type;
	unsigned flags;
#define RT_REPLY	1u	/* goes in a reply stream */
#define RT_LIVE		2u	/* a live migration stream */
#define RT_VERIFY	4u	/* STREAM_CAP_VERIFY_AFTER agreed */
	int before;		/* records write() emits before the one checked */
	int (*write)(struct stream_writer *w, struct tbuf *want);
};

/* The body of END, READY, GO, COMMIT, VERIFIED and CANCEL. */
static void want_ctl(struct tbuf *want)
{
	struct stream_ctl c = { .mig_id = SAMPLE_MIG_ID };
	tbuf_out(want, &c, sizeof(c));
}

static int rt_guest(struct stream_writer *w, struct tbuf *want)
{
	struct stream_guest_info g = { .guest_pages = 64, .nr_vcpus = 4, .mode = STREAM_MODE_SVM,
				       .tsc_khz = 2999000 };
	strcpy(g.workload, "xbzrle-patch");
	strcpy(g.name, "vm-7");
	tbuf_out(want, &g, sizeof(g));
	return stream_write_guest_info(w, &g);
}

static int rt_pages(struct stream_writer *w, struct tbuf *want)
{
	static uint8_t p0[STREAM_PAGE_SIZE], p1[STREAM_PAGE_SIZE];
	uint64_t pf[2] = { 3, 63 };
	const uint8_t *pg[2] = { p0, p1 };
	struct stream_batch b = { .count = 2 };
	memset(p0, 0xa5, sizeof(p0));
	for (size_t i = 0; i < sizeof(p1); i++)
		p1[i] = (uint8_t)(i * 7);
	tbuf_out(want, &b, sizeof(b));
	tbuf_out(want, pf, sizeof(pf));
	tbuf_out(want, p0, sizeof(p0));
	tbuf_out(want, p1, sizeof(p1));
	return stream_write_pages(w, 2, pf, pg);
}

static int rt_zero(struct stream_writer *w, struct tbuf *want)
{
	uint64_t pf[3] = { 0, 1, 40 };
	struct stream_batch b = { .count = 3 };
	tbuf_out(want, &b, sizeof(b));
	tbuf_out(want, pf, sizeof(pf));
	return stream_write_zero_pages(w, 3, pf);
}

static int rt_xbzrle(struct stream_writer *w, struct tbuf *want)
{
	static const uint8_t e0[] = { 0, 3, 1, 2, 3 }, e1[] = { 10, 1, 0xff, 4, 2, 9, 9 };
	struct stream_xbzrle_page xp[2] = { { 5, sizeof(e0), e0 }, { 6, sizeof(e1), e1 } };
	struct stream_batch b = { .count = 2 };
	static const uint8_t zeros[8];
	tbuf_out(want, &b, sizeof(b));
	for (int i = 0; i < 2; i++) {
		struct stream_xbzrle_entry e = { .pfn = xp[i].pfn, .enc_len = xp[i].len };
		tbuf_out(want, &e, sizeof(e));
		tbuf_out(want, xp[i].data, xp[i].len);
		tbuf_out(want, zeros, (8 - xp[i].len % 8) % 8);
	}
	return stream_write_xbzrle_pages(w, 2, xp);
}

static int rt_iter(struct stream_writer *w, struct tbuf *want)
{
	struct stream_iter_end it = { .iteration = 7, .pages_dirty = 100, .pages_raw = 10,
				      .pages_zero = 20, .pages_xbzrle = 60, .pages_skipped = 10,
				      .xbzrle_overflow = 3, .xbzrle_cache_miss = 9,
				      .bytes = 123456, .duration_ns = 987654321 };
	tbuf_out(want, &it, sizeof(it));
	return stream_write_iter_end(w, &it);
}

static int rt_cpu(struct stream_writer *w, struct tbuf *want)
{
	struct stream_cpu_state c = sample_cpu(3);
	uint8_t xs[832];
	for (size_t i = 0; i < sizeof(xs); i++)
		xs[i] = (uint8_t)(i ^ 0x5a);
	c.xsave_len = sizeof(xs);
	tbuf_out(want, &c, sizeof(c));
	tbuf_out(want, xs, sizeof(xs));
	c.xsave_len = 12345;	/* ignored: the writer sets it */
	return stream_write_cpu_state(w, &c, xs, sizeof(xs));
}

static int rt_device(struct stream_writer *w, struct tbuf *want)
{
	struct stream_device_state d = { .version = STREAM_DEVICE_STATE_V1, .model = STREAM_PLATFORM_PC_V1,
					 .length = 40 };
	uint8_t state[40];
	for (size_t i = 0; i < sizeof(state); i++)
		state[i] = (uint8_t)(i * 7 + 1);
	tbuf_out(want, &d, sizeof(d));
	tbuf_out(want, state, sizeof(state));
	return stream_write_device_state(w, STREAM_PLATFORM_PC_V1, state, sizeof(state));
}

static int rt_digest(struct stream_writer *w, struct tbuf *want)
{
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 64,
				   .low64 = 0x0123456789abcdefULL, .high64 = 0xfedcba9876543210ULL };
	tbuf_out(want, &d, sizeof(d));
	return stream_write_digest(w, &d);
}

static int rt_end(struct stream_writer *w, struct tbuf *want)
{
	struct tbuf dummy = { 0 };
	int rc = rt_digest(w, &dummy);
	tbuf_free(&dummy);
	want_ctl(want);
	return rc ? rc : stream_write_end(w);
}

static int rt_go(struct stream_writer *w, struct tbuf *want)
{
	int rc = rt_end(w, want);
	return rc ? rc : stream_write_go(w);
}

static int rt_region_digest(struct stream_writer *w, struct tbuf *want)
{
	struct stream_region_digest d = { .algo = STREAM_DIGEST_XXH3_128, .region_pages = STREAM_REGION_PAGES,
					  .first = 0, .count = 1 };
	struct stream_region_hash h = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };
	int rc = stream_write_end(w);
	if (rc == 0)
		rc = stream_write_go(w);
	tbuf_out(want, &d, sizeof(d));
	tbuf_out(want, &h, sizeof(h));
	return rc ? rc : stream_write_region_digest(w, 0, 1, &h);
}

static int rt_unknown_opt(struct stream_writer *w, struct tbuf *want)
{
	(void)want;	/* skipped: the reader hands back nothing */
	return stream_write_record(w, STREAM_TYPE_OPTIONAL | 0x777, "hello, future", 13);
}

static int rt_error(struct stream_writer *w, struct tbuf *want)
{
	struct stream_reason r = { .code = STREAM_WERR_TIMEOUT, .mig_id = SAMPLE_MIG_ID };
	tbuf_out(want, &r, sizeof(r));
	tbuf_out(want, "peer silent for 30 s", 20);
	return stream_write_error(w, STREAM_WERR_TIMEOUT, "peer silent for 30 s");
}

static int rt_cancel(struct stream_writer *w, struct tbuf *want)
{
	want_ctl(want);
	return stream_write_cancel(w);
}

static int rt_ready(struct stream_writer *w, struct tbuf *want)
{
	want_ctl(want);
	return stream_write_ready(w);
}

static int rt_commit(struct stream_writer *w, struct tbuf *want)
{
	int rc = stream_write_ready(w);
	want_ctl(want);
	return rc ? rc : stream_write_commit(w);
}

static int rt_verified(struct stream_writer *w, struct tbuf *want)
{
	struct tbuf dummy = { 0 };
	int rc = rt_commit(w, &dummy);
	tbuf_free(&dummy);
	want_ctl(want);
	return rc ? rc : stream_write_verified(w);
}

static int rt_nack(struct stream_writer *w, struct tbuf *want)
{
	struct stream_reason r = { .code = STREAM_NACK_DIGEST, .mig_id = SAMPLE_MIG_ID };
	tbuf_out(want, &r, sizeof(r));
	tbuf_out(want, "digest mismatch", 15);
	return stream_write_nack(w, STREAM_NACK_DIGEST, "digest mismatch");
}

static const struct rt_case rt_cases[] = {
	{ "guest-info", STREAM_GUEST_INFO, 0, 0, rt_guest },
	{ "page-data", STREAM_PAGE_DATA, 0, 0, rt_pages },
	{ "zero-pages", STREAM_ZERO_PAGES, 0, 0, rt_zero },
	{ "xbzrle-pages", STREAM_XBZRLE_PAGES, 0, 0, rt_xbzrle },
	{ "iter-end", STREAM_ITER_END, 0, 0, rt_iter },
	{ "cpu-state", STREAM_CPU_STATE, 0, 0, rt_cpu },
	{ "device-state", STREAM_DEVICE_STATE, 0, 0, rt_device },
	{ "digest", STREAM_DIGEST, 0, 0, rt_digest },
	{ "end", STREAM_END, 0, 1, rt_end },
	{ "live-end", STREAM_END, RT_LIVE, 1, rt_end },
	{ "go", STREAM_GO, RT_LIVE, 2, rt_go },
	{ "region-digest", STREAM_REGION_DIGEST, RT_LIVE | RT_VERIFY, 2, rt_region_digest },
	{ "unknown-optional", 0, 0, 0, rt_unknown_opt },
	{ "error", STREAM_ERROR, 0, 0, rt_error },
	{ "cancel", STREAM_CANCEL, 0, 0, rt_cancel },
	{ "live-cancel", STREAM_CANCEL, RT_LIVE, 0, rt_cancel },
	{ "ready", STREAM_READY, RT_REPLY, 0, rt_ready },
	{ "commit", STREAM_COMMIT, RT_REPLY, 1, rt_commit },
	{ "verified", STREAM_VERIFIED, RT_REPLY | RT_VERIFY, 2, rt_verified },
	{ "nack", STREAM_NACK, RT_REPLY, 0, rt_nack },
	{ "reply-error", STREAM_ERROR, RT_REPLY, 0, rt_error },
	{ "reply-cancel", STREAM_CANCEL, RT_REPLY, 0, rt_cancel },
};

/* Read all records of s; return how many, copying the last one's body. A
 * live stream (live_ack) gets the agreement after its HELLO. */
static int rt_read(const char *name, struct tbuf *s, enum stream_dir dir, bool crc,
		   const struct stream_hello_ack *live_ack,
		   struct stream_record *last, struct tbuf *last_body, uint32_t *types, int max)
{
	struct stream_reader *r = stream_reader_new(dir);
	size_t pos = 0;
	int n = 0;

	while (pos < s->len) {
		struct stream_record rec;
		size_t used;
		int k = stream_reader_feed(r, s->data + pos, s->len - pos, &used, &rec);
		pos += used;
		if (k < 0)
			fail_msg("%s: reader failed: %s", name, stream_reader_error(r));
		if (k == 0)
			break;
		if (rec.type == STREAM_HELLO && live_ack)
			stream_reader_set_agreed(r, live_ack);
		if (n < max)
			types[n] = rec.type;
		n++;
		*last = rec;
		last_body->len = 0;
		tbuf_out(last_body, rec.body, rec.length);
	}
	EXPECT_INT(name, "bytes consumed", s->len, pos);
	EXPECT_INT(name, "crc state", crc, stream_reader_crc(r));
	stream_reader_free(r);
	return n;
}

static void test_round_trip_every_type(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(rt_cases) / sizeof(rt_cases[0]); c++) {
		for (int crc = 0; crc < 2; crc++) {
			const struct rt_case *tc = &rt_cases[c];
			bool reply = tc->flags & RT_REPLY, live = tc->flags & RT_LIVE;
			struct sample_opts o = { .pages = 64, .crc = crc, .xbzrle = true, .saved = !live,
						 .verify_after = tc->flags & RT_VERIFY };
			struct stream_hello h = sample_hello(&o);
			struct stream_hello_ack a = sample_ack(&o);
			struct stream_guest_info g = { .guest_pages = 64, .nr_vcpus = 4 };
			a.caps |= STREAM_CAP_PLATFORM_PC; /* the hello offers every capability */
			struct tbuf s = { 0 }, want = { 0 }, got = { 0 };
			struct stream_writer w;
			struct stream_record last = { 0 };
			uint32_t types[8];
			char name[64];

			snprintf(name, sizeof(name), "%s%s", tc->name, crc ? "+crc" : "");
			stream_writer_init_fn(&w, tbuf_out, &s);
			if (reply) {
				assert_int_equal(stream_write_header(&w, 0), 0);
				assert_int_equal(stream_write_hello_ack(&w, &a), 0);
			} else {
				assert_int_equal(stream_write_header(&w, live ? 0 : STREAM_HDR_F_SAVED), 0);
				assert_int_equal(stream_write_hello(&w, &h), 0);
				if (live)
					stream_writer_set_crc(&w, crc);	/* as a source does after HELLO_ACK */
				else
					assert_int_equal(stream_write_hello_ack(&w, &a), 0);
				if (tc->type != STREAM_GUEST_INFO)
					assert_int_equal(stream_write_guest_info(&w, &g), 0);
			}
			int rc = tc->write(&w, &want);
			EXPECT_INT(name, "write", 0, rc);
			int base = (reply ? 1 : tc->type == STREAM_GUEST_INFO ? 2 : 3) - (live ? 1 : 0) + tc->before;
			int n = rt_read(name, &s, reply ? STREAM_DIR_REPLY : STREAM_DIR_MIGRATION,
					crc, live ? &a : NULL, &last, &got, types, 8);
			if (tc->type == 0) {	/* skipped */
				EXPECT_INT(name, "records", base, n);
			} else {
				EXPECT_INT(name, "records", base + 1, n);
				EXPECT_INT(name, "type", tc->type, last.type);
				EXPECT_INT(name, "body length", want.len, got.len);
				if (want.len && memcmp(want.data, got.data, want.len) != 0)
					fail_msg("%s: body differs from what was written", name);
				EXPECT_INT(name, "wire size", stream_record_size(last.length, crc),
					   s.len - last.offset);
			}
			tbuf_free(&s);
			tbuf_free(&want);
			tbuf_free(&got);
		}
	}
}

/* HELLO and HELLO_ACK: the reader keeps them, field for field. */
static void test_round_trip_negotiation(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 1000, .crc = true, .xbzrle = true, .saved = true };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = sample_ack(&o);
	struct tbuf s = { 0 };
	struct stream_writer w;
	struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
	struct stream_record rec;
	size_t used, pos = 0;

	stream_writer_init_fn(&w, tbuf_out, &s);
	assert_int_equal(stream_write_header(&w, STREAM_HDR_F_SAVED), 0);
	assert_int_equal(stream_write_hello(&w, &h), 0);
	assert_int_equal(stream_write_hello_ack(&w, &a), 0);
	assert_true(w.crc);
	assert_int_equal(stream_reader_feed(r, s.data, s.len, &used, &rec), 1);
	assert_int_equal(rec.type, STREAM_HELLO);
	assert_int_equal(rec.index, 0);
	assert_int_equal(rec.offset, sizeof(struct stream_hdr));
	pos += used;
	assert_memory_equal(stream_reader_hello(r), &h, sizeof(h));
	assert_false(stream_reader_crc(r));
	assert_int_equal(stream_reader_feed(r, s.data + pos, s.len - pos, &used, &rec), 1);
	assert_int_equal(rec.type, STREAM_HELLO_ACK);
	assert_memory_equal(stream_reader_ack(r), &a, sizeof(a));
	assert_true(stream_reader_crc(r));
	assert_int_equal(stream_reader_header(r)->flags, STREAM_HDR_F_SAVED);
	stream_reader_free(r);
	tbuf_free(&s);
}

/* ---- whole streams in chunks -------------------------------------------- */

struct chunk_case {
	const char *name;
	struct sample_opts opts;
	size_t chunk;		/* 0 whole, 1 byte-by-byte, else random 1..chunk */
	uint64_t seed;
};

/* A saved file (DIGEST, END); a live stream with the classic switch-over
 * (DIGEST, END, GO), or with verification after it (END, GO, REGION_DIGEST
 * records, per_record regions each: 0 all in one). */
#define SAVED(pages_, crc_, xbzrle_, seed_) \
	{ .pages = pages_, .crc = crc_, .xbzrle = xbzrle_, .saved = true, .seed = seed_ }
#define LIVE(pages_, crc_, xbzrle_, seed_) \
	{ .pages = pages_, .crc = crc_, .xbzrle = xbzrle_, .seed = seed_ }
#define LIVE_VERIFY(pages_, crc_, xbzrle_, seed_, per_record_) \
	{ .pages = pages_, .crc = crc_, .xbzrle = xbzrle_, .seed = seed_, .verify_after = true, \
	  .regions_per_record = per_record_ }

static const struct chunk_case chunk_cases[] = {
	{ "whole", SAVED(32, true, true, 1), 0, 0 },
	{ "one-byte", SAVED(32, true, true, 2), 1, 0 },
	{ "one-byte-nocrc", SAVED(16, false, true, 3), 1, 0 },
	{ "random-7", SAVED(32, true, true, 4), 7, 11 },
	{ "random-100", SAVED(32, true, false, 5), 100, 12 },
	{ "random-5000", SAVED(64, true, true, 6), 5000, 13 },
	{ "random-20000", SAVED(64, false, true, 7), 20000, 14 },
	{ "random-3-raw", SAVED(9, false, false, 8), 3, 15 },
	{ "big-zero-batches", SAVED(10000, true, true, 9), 65536, 16 },
	{ "live-classic", LIVE(40, true, true, 10), 13, 17 },
	{ "live-classic-one-byte", LIVE(9, false, false, 11), 1, 0 },
	{ "live-verify-after", LIVE_VERIFY(40, true, true, 12, 0), 0, 0 },
	{ "live-verify-after-3-records", LIVE_VERIFY(1100, true, true, 13, 1), 5000, 18 },
	{ "live-verify-after-one-byte", LIVE_VERIFY(600, false, true, 14, 0), 1, 0 },
	{ "live-verify-after-big", LIVE_VERIFY(10000, false, true, 15, 7), 65536, 19 },
};

static void test_chunked_replay(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(chunk_cases) / sizeof(chunk_cases[0]); c++) {
		const struct chunk_case *tc = &chunk_cases[c];
		struct sample sm;
		struct replay rp;

		struct stream_hello_ack a = sample_ack(&tc->opts);

		memset(&rp, 0, sizeof(rp));
		if (!tc->opts.saved)
			rp.live_ack = &a;
		EXPECT_INT(tc->name, "build", 0, sample_build(&sm, &tc->opts));
		int rc = replay_run(&rp, sm.s.data, sm.s.len, tc->chunk, tc->seed);
		if (rc != 0)
			fail_msg("%s: replay: expected success, got %s: %s", tc->name,
				 stream_err_to_str(rc), rp.err);
		EXPECT_INT(tc->name, "records", sm.records, rp.nrec);
		EXPECT_INT(tc->name, "guest pages", sm.pages, rp.pages);
		if (memcmp(sm.mem, rp.mem, sm.pages * STREAM_PAGE_SIZE) != 0)
			fail_msg("%s: replayed memory differs from the source", tc->name);
		EXPECT_INT(tc->name, "xbzrle pages", tc->opts.xbzrle ? 3 : 0, rp.stats.pages_xbzrle);
		EXPECT_INT(tc->name, "iterations", 2, rp.stats.iterations);
		EXPECT_INT(tc->name, "cpu states", 2, rp.stats.cpu_states);
		EXPECT_INT(tc->name, "digest checked", !tc->opts.verify_after, rp.stats.digest_ok);
		EXPECT_INT(tc->name, "regions checked", tc->opts.verify_after ? stream_region_count(sm.pages) : 0,
			   rp.regions_ok);
		EXPECT_INT(tc->name, "last record", tc->opts.saved ? STREAM_END : tc->opts.verify_after ?
			   STREAM_REGION_DIGEST : STREAM_GO, rp.types[rp.nrec - 1]);
		sample_free(&sm);
		replay_free(&rp);
	}
}

/* A destination that verifies after the switch-over finds a region that
 * differs: the region digests describe the source's memory, not what the
 * stream built. (The replay plays that destination.) */
static void test_region_digest_catches_wrong_memory(void **state)
{
	(void)state;
	struct sample_opts o = LIVE_VERIFY(1100, false, false, 21, 2);
	struct stream_hello_ack a = sample_ack(&o);
	struct sample sm;
	struct replay rp;

	assert_int_equal(sample_build(&sm, &o), 0);
	memset(&rp, 0, sizeof(rp));
	rp.live_ack = &a;
	assert_int_equal(replay_run(&rp, sm.s.data, sm.s.len, 0, 0), 0);
	assert_int_equal(rp.regions_ok, 3);
	replay_free(&rp);

	/* The same stream up to GO, then region records of a source memory
	 * whose page 1030 (region 2) changed after it was sent. */
	struct tbuf s = { 0 };
	struct stream_writer w;
	size_t go_end = 0;
	struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
	for (size_t pos = 0, used; ; pos += used) {
		struct stream_record rec;
		int k = stream_reader_feed(r, sm.s.data + pos, sm.s.len - pos, &used, &rec);
		assert_true(k == 1);
		if (rec.type == STREAM_HELLO)
			stream_reader_set_agreed(r, &a);
		if (rec.type == STREAM_GO) {
			go_end = pos + used;
			break;
		}
	}
	stream_reader_free(r);
	tbuf_out(&s, sm.s.data, go_end);
	stream_writer_init_fn(&w, tbuf_out, &s);
	sm.mem[1030 * STREAM_PAGE_SIZE + 5] ^= 0x80;
	assert_int_equal(sample_regions(&w, &sm, 2), 0);
	memset(&rp, 0, sizeof(rp));
	rp.live_ack = &a;
	assert_int_equal(replay_run(&rp, s.data, s.len, 0, 0), -STREAM_E_DIGEST);
	assert_string_equal(rp.err, "region 2 differs");
	assert_int_equal(rp.regions_ok, 2);
	replay_free(&rp);
	tbuf_free(&s);
	sample_free(&sm);
}

/* A live stream (no HELLO_ACK inside): the destination tells the reader
 * what it agreed. */
static void test_live_stream_with_agreement(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 16, .crc = true, .xbzrle = true, .saved = false, .seed = 5 };
	struct stream_hello_ack a = sample_ack(&o);
	struct sample sm;
	struct replay rp;

	memset(&rp, 0, sizeof(rp));
	assert_int_equal(sample_build(&sm, &o), 0);
	rp.live_ack = &a;
	if (replay_run(&rp, sm.s.data, sm.s.len, 33, 1) != 0)
		fail_msg("live: expected success, got %s", rp.err);
	replay_free(&rp);

	/* Without the agreement the first record after HELLO is refused. */
	memset(&rp, 0, sizeof(rp));
	assert_int_equal(replay_run(&rp, sm.s.data, sm.s.len, 0, 0), -STREAM_E_ORDER);
	assert_string_equal(rp.err, "record 1 (GUEST_INFO): before the HELLO_ACK (stream_reader_set_agreed)");
	replay_free(&rp);
	sample_free(&sm);
}

/* The writer fills the migration id of control records and NACK/ERROR from
 * the HELLO or HELLO_ACK it wrote; 0 before either. */
static uint64_t last_id(const struct tbuf *s, size_t body_off_from_end)
{
	uint64_t id;
	memcpy(&id, s->data + s->len - body_off_from_end, 8);
	return id;
}

static void test_writer_fills_mig_id(void **state)
{
	(void)state;
	struct sample_opts o = { .pages = 8 };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = sample_ack(&o);
	struct tbuf s = { 0 };
	struct stream_writer w;

	stream_writer_init_fn(&w, tbuf_out, &s);
	assert_int_equal(stream_write_header(&w, 0), 0);
	assert_int_equal(stream_write_cancel(&w), 0);		/* hdr 8, id 8 */
	assert_int_equal(last_id(&s, 8), 0);
	assert_int_equal(stream_write_error(&w, 1, ""), 0);	/* hdr 8, code 8, id 8 */
	assert_int_equal(last_id(&s, 8), 0);
	h.mig_id = 0x0102030405060708ull;
	assert_int_equal(stream_write_hello(&w, &h), 0);
	assert_int_equal(stream_write_end(&w), 0);
	assert_int_equal(last_id(&s, 8), 0x0102030405060708ull);
	assert_int_equal(stream_write_go(&w), 0);
	assert_int_equal(last_id(&s, 8), 0x0102030405060708ull);
	assert_int_equal(stream_write_error(&w, 1, ""), 0);
	assert_int_equal(last_id(&s, 8), 0x0102030405060708ull);

	s.len = 0;
	stream_writer_init_fn(&w, tbuf_out, &s);
	a.mig_id = 0x1112131415161718ull;
	assert_int_equal(stream_write_header(&w, 0), 0);
	assert_int_equal(stream_write_hello_ack(&w, &a), 0);
	assert_int_equal(stream_write_ready(&w), 0);
	assert_int_equal(last_id(&s, 8), 0x1112131415161718ull);
	assert_int_equal(stream_write_commit(&w), 0);
	assert_int_equal(last_id(&s, 8), 0x1112131415161718ull);
	assert_int_equal(stream_write_verified(&w), 0);
	assert_int_equal(last_id(&s, 8), 0x1112131415161718ull);
	assert_int_equal(stream_write_nack(&w, STREAM_NACK_REGIONS, "abcdefgh"), 0);	/* 16 + 8 text */
	assert_int_equal(last_id(&s, 16), 0x1112131415161718ull);
	tbuf_free(&s);
}

/* ---- writer in buffer mode ---------------------------------------------- */

static void test_writer_buffer_mode(void **state)
{
	(void)state;
	uint8_t buf[4096 + 64];
	struct stream_writer w;
	static uint8_t page[STREAM_PAGE_SIZE];
	uint64_t pfn = 1;
	const uint8_t *pg = page;

	stream_writer_init_buf(&w, buf, sizeof(buf));
	assert_int_equal(stream_write_header(&w, 0), 0);
	struct sample_opts o = { .pages = 8 };
	struct stream_hello h = sample_hello(&o);
	assert_int_equal(stream_write_hello(&w, &h), 0);
	size_t before = stream_writer_buffered(&w);
	assert_int_equal(before, 32 + stream_record_size(sizeof(h), true));
	/* 8 + 8 + 8 + 4096 does not fit in what is left: nothing written. */
	assert_int_equal(stream_write_pages(&w, 1, &pfn, &pg), -STREAM_E_NOSPACE);
	assert_int_equal(stream_writer_buffered(&w), before);
	/* Hand the buffer on, start a new one, retry. */
	stream_writer_set_buf(&w, buf, sizeof(buf));
	assert_int_equal(stream_write_pages(&w, 1, &pfn, &pg), 0);
	assert_int_equal(stream_writer_buffered(&w), stream_record_size(8 + 8 + 4096, false));
}

/* Buffer mode with buffers smaller than a stream (handed on whenever a
 * record does not fit, as a TCP sender would) produces exactly the bytes of
 * callback mode. */
static int emit_sequence(struct stream_writer *w, int step, bool crc)
{
	static uint8_t pages[3][STREAM_PAGE_SIZE];
	static const uint64_t pf[3] = { 1, 2, 6 };
	const uint8_t *pg[3] = { pages[0], pages[1], pages[2] };
	struct sample_opts o = { .pages = 8, .crc = crc, .xbzrle = true, .saved = true };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = sample_ack(&o);
	struct stream_guest_info g = { .guest_pages = 8, .nr_vcpus = 1 };
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = 8 };
	struct stream_cpu_state c = sample_cpu(0);
	uint64_t z = 7;

	memset(pages[1], 0x42, STREAM_PAGE_SIZE);
	switch (step) {
	case 0: return stream_write_header(w, STREAM_HDR_F_SAVED);
	case 1: return stream_write_hello(w, &h);
	case 2: return stream_write_hello_ack(w, &a);
	case 3: return stream_write_guest_info(w, &g);
	case 4: return stream_write_pages(w, 3, pf, pg);
	case 5: return stream_write_zero_pages(w, 1, &z);
	case 6: return stream_write_cpu_state(w, &c, pages[1], 512);
	case 7: return stream_write_digest(w, &d);
	case 8: return stream_write_end(w);
	}
	return 1;	/* no more steps */
}

static void test_writer_buffer_mode_matches_callback(void **state)
{
	(void)state;
	for (int crc = 0; crc < 2; crc++) {
		struct tbuf want = { 0 }, got = { 0 };
		struct stream_writer w;
		static uint8_t buf[16384];
		int rc;

		stream_writer_init_fn(&w, tbuf_out, &want);
		for (int step = 0; (rc = emit_sequence(&w, step, crc)) != 1; step++)
			assert_int_equal(rc, 0);

		stream_writer_init_buf(&w, buf, sizeof(buf));
		for (int step = 0; (rc = emit_sequence(&w, step, crc)) != 1; step++) {
			if (rc == -STREAM_E_NOSPACE) {
				tbuf_out(&got, buf, stream_writer_buffered(&w));
				stream_writer_set_buf(&w, buf, sizeof(buf));
				rc = emit_sequence(&w, step, crc);
			}
			assert_int_equal(rc, 0);
		}
		tbuf_out(&got, buf, stream_writer_buffered(&w));
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.data, want.data, want.len);
		tbuf_free(&want);
		tbuf_free(&got);
	}
}

struct wbad_case {
	const char *name;
	int want;
	int (*call)(struct stream_writer *w);
};

static int wb_count0(struct stream_writer *w) { return stream_write_zero_pages(w, 0, NULL); }
static int wb_beyond(struct stream_writer *w)
{
	uint64_t pf[2] = { 1, 8 };
	return stream_write_zero_pages(w, 2, pf);
}
static int wb_order(struct stream_writer *w)
{
	uint64_t pf[2] = { 3, 3 };
	return stream_write_zero_pages(w, 2, pf);
}
static int wb_xlen(struct stream_writer *w)
{
	struct stream_xbzrle_page p = { 1, 0, (const uint8_t *)"" };
	return stream_write_xbzrle_pages(w, 1, &p);
}
static int wb_xlen_big(struct stream_writer *w)
{
	static uint8_t big[STREAM_PAGE_SIZE + 1];
	struct stream_xbzrle_page p = { 1, sizeof(big), big };
	return stream_write_xbzrle_pages(w, 1, &p);
}
static int wb_xsave(struct stream_writer *w)
{
	struct stream_cpu_state c = sample_cpu(0);
	static uint8_t xs[STREAM_MAX_XSAVE + 1];
	return stream_write_cpu_state(w, &c, xs, sizeof(xs));
}
static int wb_flags(struct stream_writer *w) { return stream_write_header(w, 0x100); }
static int wb_toolong(struct stream_writer *w)
{
	return stream_write_record(w, STREAM_TYPE_OPTIONAL | 9, NULL, STREAM_MAX_BODY + 1);
}

static int wb_regions0(struct stream_writer *w)
{
	struct stream_region_hash h = { 1, 2 };
	return stream_write_region_digest(w, 0, 0, &h);
}
static int wb_regions_many(struct stream_writer *w)
{
	static struct stream_region_hash h[STREAM_MAX_REGIONS + 1];
	return stream_write_region_digest(w, 0, STREAM_MAX_REGIONS + 1, h);
}

static const struct wbad_case wbad_cases[] = {
	{ "region-digest-count-0", -STREAM_E_INVAL, wb_regions0 },
	{ "region-digest-count-4097", -STREAM_E_INVAL, wb_regions_many },
	{ "zero-count", -STREAM_E_INVAL, wb_count0 },
	{ "page-beyond-guest", -STREAM_E_RANGE, wb_beyond },
	{ "pages-not-increasing", -STREAM_E_INVAL, wb_order },
	{ "xbzrle-length-0", -STREAM_E_INVAL, wb_xlen },
	{ "xbzrle-length-page+1", -STREAM_E_INVAL, wb_xlen_big },
	{ "xsave-too-big", -STREAM_E_INVAL, wb_xsave },
	{ "unknown-header-flags", -STREAM_E_INVAL, wb_flags },
	{ "body-too-long", -STREAM_E_TOO_LONG, wb_toolong },
};

/* Bad arguments emit nothing and leave the writer usable. */
static void test_writer_rejects_bad_arguments(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(wbad_cases) / sizeof(wbad_cases[0]); c++) {
		const struct wbad_case *tc = &wbad_cases[c];
		struct tbuf s = { 0 };
		struct stream_writer w;
		struct sample_opts o = { .pages = 8 };
		struct stream_hello h = sample_hello(&o);

		stream_writer_init_fn(&w, tbuf_out, &s);
		assert_int_equal(stream_write_header(&w, 0), 0);
		assert_int_equal(stream_write_hello(&w, &h), 0);
		size_t before = s.len;
		EXPECT_INT(tc->name, "return", tc->want, tc->call(&w));
		EXPECT_INT(tc->name, "bytes emitted", before, s.len);
		EXPECT_INT(tc->name, "still usable", 0, stream_write_end(&w));
		tbuf_free(&s);
	}
}

static int fail_out(void *ctx, const void *buf, size_t len)
{
	(void)ctx, (void)buf, (void)len;
	return -1;
}

static void test_writer_output_failure_sticks(void **state)
{
	(void)state;
	struct stream_writer w;

	stream_writer_init_fn(&w, fail_out, NULL);
	assert_int_equal(stream_write_header(&w, 0), -STREAM_E_IO);
	assert_int_equal(stream_write_end(&w), -STREAM_E_IO);
	assert_string_equal(stream_writer_error(&w), "record 0: output callback failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_type),
		cmocka_unit_test(test_round_trip_negotiation),
		cmocka_unit_test(test_chunked_replay),
		cmocka_unit_test(test_region_digest_catches_wrong_memory),
		cmocka_unit_test(test_live_stream_with_agreement),
		cmocka_unit_test(test_writer_fills_mig_id),
		cmocka_unit_test(test_writer_buffer_mode),
		cmocka_unit_test(test_writer_buffer_mode_matches_callback),
		cmocka_unit_test(test_writer_rejects_bad_arguments),
		cmocka_unit_test(test_writer_output_failure_sticks),
	};
	return cmocka_run_group_tests_name("stream_rt", tests, NULL, NULL);
}
