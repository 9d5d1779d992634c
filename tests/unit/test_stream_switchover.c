/* test_stream_switchover.c: the valid sequences of the switch-over
 * (docs/stream-format.md 7.5), saved, live and reply, pass the reader and
 * end on the record they should. Its refusals are test_stream_reader.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_cases.h"

/* One case a sequence of writer steps. */
enum sw_step {
	SW_END = 1, SW_DIGEST, SW_GO, SW_CANCEL, SW_ERROR, SW_RD_ALL, SW_RD_FIRST, SW_RD_REST,
	SW_READY, SW_COMMIT, SW_VERIFIED, SW_NACK,
};

struct sw_case {
	const char *name;
	unsigned flags;		/* BC_LIVE, BC_REPLY, BC_VERIFY, BC_BIG; 0 saved */
	enum sw_step steps[6];
	uint32_t last;		/* type of the final record */
};

static const struct sw_case sw_cases[] = {
	{ "saved", 0, { SW_DIGEST, SW_END }, STREAM_END },
	{ "live-classic", BC_LIVE, { SW_DIGEST, SW_END, SW_GO }, STREAM_GO },
	{ "live-cancel-after-end", BC_LIVE, { SW_DIGEST, SW_END, SW_CANCEL }, STREAM_CANCEL },
	{ "live-verify-after", BC_LIVE | BC_VERIFY, { SW_END, SW_GO, SW_RD_ALL }, STREAM_REGION_DIGEST },
	{ "live-verify-after-3-regions", BC_LIVE | BC_VERIFY | BC_BIG,
	  { SW_END, SW_GO, SW_RD_FIRST, SW_RD_REST }, STREAM_REGION_DIGEST },
	{ "live-error-after-go", BC_LIVE | BC_VERIFY | BC_BIG, { SW_END, SW_GO, SW_RD_FIRST, SW_ERROR }, STREAM_ERROR },
	{ "live-cancel-before-go", BC_LIVE | BC_VERIFY, { SW_END, SW_CANCEL }, STREAM_CANCEL },
	{ "reply-classic", BC_REPLY, { SW_READY, SW_COMMIT }, STREAM_COMMIT },
	{ "reply-nack-at-end", BC_REPLY, { SW_NACK }, STREAM_NACK },
	{ "reply-nack-after-ready", BC_REPLY, { SW_READY, SW_NACK }, STREAM_NACK },
	{ "reply-error-after-ready", BC_REPLY, { SW_READY, SW_ERROR }, STREAM_ERROR },
	{ "reply-verify-after", BC_REPLY | BC_VERIFY, { SW_READY, SW_COMMIT, SW_VERIFIED }, STREAM_VERIFIED },
	{ "reply-regions-differ", BC_REPLY | BC_VERIFY, { SW_READY, SW_COMMIT, SW_NACK }, STREAM_NACK },
	{ "reply-cancel-after-commit", BC_REPLY | BC_VERIFY, { SW_READY, SW_COMMIT, SW_CANCEL }, STREAM_CANCEL },
};

static void sw_step(struct stream_writer *w, enum sw_step step, uint64_t pages)
{
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = pages };
	uint32_t n = (uint32_t)stream_region_count(pages);

	switch (step) {
	case SW_END: assert_int_equal(stream_write_end(w), 0); break;
	case SW_DIGEST: assert_int_equal(stream_write_digest(w, &d), 0); break;
	case SW_GO: assert_int_equal(stream_write_go(w), 0); break;
	case SW_CANCEL: assert_int_equal(stream_write_cancel(w), 0); break;
	case SW_ERROR: assert_int_equal(stream_write_error(w, STREAM_WERR_OPERATOR, "stopped"), 0); break;
	case SW_RD_ALL: rd(w, 0, n); break;
	case SW_RD_FIRST: rd(w, 0, 1); break;
	case SW_RD_REST: rd(w, 1, n - 1); break;
	case SW_READY: assert_int_equal(stream_write_ready(w), 0); break;
	case SW_COMMIT: assert_int_equal(stream_write_commit(w), 0); break;
	case SW_VERIFIED: assert_int_equal(stream_write_verified(w), 0); break;
	case SW_NACK: assert_int_equal(stream_write_nack(w, STREAM_NACK_REGIONS, "region 2 differs"), 0); break;
	}
}

static void test_switch_over_sequences(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(sw_cases) / sizeof(sw_cases[0]); c++) {
		const struct sw_case *tc = &sw_cases[c];
		struct stream_hello_ack ack = prefix_ack(tc->flags);
		enum stream_dir dir = tc->flags & BC_REPLY ? STREAM_DIR_REPLY : STREAM_DIR_MIGRATION;
		const struct stream_hello_ack *live = tc->flags & BC_LIVE ? &ack : NULL;
		struct stream_reader *r = stream_reader_new(dir);
		struct tbuf s = { 0 };
		struct stream_writer w;
		size_t pos = 0, used;
		struct stream_record rec = { 0 };
		int k;

		build_prefix(&w, &s, tc->flags);
		for (int i = 0; i < 6 && tc->steps[i]; i++)
			sw_step(&w, tc->steps[i], tc->flags & BC_BIG ? BIG_PAGES : 8);
		while ((k = stream_reader_feed(r, s.data + pos, s.len - pos, &used, &rec)) == 1) {
			pos += used;
			if (rec.type == STREAM_HELLO && live)
				stream_reader_set_agreed(r, live);
		}
		if (k != 0)
			fail_msg("%s: %s", tc->name, stream_reader_error(r));
		EXPECT_INT(tc->name, "finish", 0, stream_reader_finish(r));
		EXPECT_INT(tc->name, "done", 1, stream_reader_done(r));
		EXPECT_INT(tc->name, "last type", tc->last, rec.type);
		stream_reader_free(r);
		tbuf_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switch_over_sequences),
	};
	return cmocka_run_group_tests_name("stream_switchover", tests, NULL, NULL);
}
