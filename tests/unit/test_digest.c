/* test_digest.c: the two builds of XXH3-128 behind digest.h (vector and
 * scalar inner loops) against xxHash's own one-shot function, at every
 * length up to a few blocks and at larger ones, from every alignment, one
 * shot and streamed in random pieces; a digest keeps the implementation
 * that started it; unknown implementations are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "digest.h"
#include "test_rng.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define BUF (300 * 1024)

static uint8_t *buf;

static int setup(void **state)
{
	(void)state;
	buf = malloc(BUF + 64);
	assert_non_null(buf);
	for (size_t i = 0; i < BUF + 64; i++)
		buf[i] = (uint8_t)rng_next();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(buf);
	digest_set_impl(DIGEST_IMPL_VECTOR);
	return 0;
}

static void assert_same(struct digest128 got, XXH128_hash_t want)
{
	assert_true(got.low64 == want.low64 && got.high64 == want.high64);
}

/* Lengths around XXH3's internal boundaries (16, 128, 240 bytes, 1 KiB
 * stripes, its 256-byte stream buffer) and whole pages. */
static size_t lengths[] = { 0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 239, 240, 241, 255, 256, 257,
			    1023, 1024, 1025, 4095, 4096, 4097, 8192, 65536, 100003, BUF };

static void test_one_shot_every_impl(void **state)
{
	(void)state;
	for (int k = 0; k < DIGEST_IMPL_COUNT; k++) {
		for (size_t n = 0; n <= 2048; n++)
			for (size_t off = 0; off < 64; off += n % 7 == 0 ? 1 : 31)
				assert_same(digest_buf_impl(k, buf + off, n), XXH3_128bits(buf + off, n));
		for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
			assert_same(digest_buf_impl(k, buf + 3, lengths[i]), XXH3_128bits(buf + 3, lengths[i]));
	}
}

static void test_streamed_every_impl(void **state)
{
	(void)state;
	for (int k = 0; k < DIGEST_IMPL_COUNT; k++) {
		assert_int_equal(digest_set_impl(k), 0);
		assert_int_equal(digest_get_impl(), k);
		for (int round = 0; round < 200; round++) {
			size_t n = round < 26 ? lengths[round] : rng_next() % BUF, done = 0;
			struct digest_state st;
			digest_init(&st);
			while (done < n) {
				size_t piece = rng_next() % 5 == 0 ? 4096 : rng_next() % 700;
				if (piece > n - done)
					piece = n - done;
				digest_update(&st, buf + done, piece);
				done += piece;
			}
			assert_same(digest_final(&st), XXH3_128bits(buf, n));
			assert_same(digest_buf(buf, n), XXH3_128bits(buf, n));
		}
	}
}

/* A digest started with one implementation finishes with it, whatever is
 * chosen meanwhile (the kernel picks once at boot, but the contract says
 * "digests started after it"). */
static void test_state_keeps_its_impl(void **state)
{
	(void)state;
	for (int k = 0; k < DIGEST_IMPL_COUNT; k++) {
		struct digest_state st;
		digest_set_impl(k);
		digest_init(&st);
		digest_update(&st, buf, 5000);
		digest_set_impl(k == DIGEST_IMPL_VECTOR ? DIGEST_IMPL_SCALAR : DIGEST_IMPL_VECTOR);
		digest_update(&st, buf + 5000, 70000);
		assert_int_equal(st.impl, k);
		assert_same(digest_final(&st), XXH3_128bits(buf, 75000));
	}
}

static void test_unknown_impl_refused(void **state)
{
	(void)state;
	digest_set_impl(DIGEST_IMPL_SCALAR);
	assert_int_equal(digest_set_impl(DIGEST_IMPL_COUNT), -1);
	assert_int_equal(digest_set_impl((enum digest_impl)-1), -1);
	assert_int_equal(digest_get_impl(), DIGEST_IMPL_SCALAR);
	assert_string_equal(digest_impl_name(DIGEST_IMPL_VECTOR), "vector");
	assert_string_equal(digest_impl_name(DIGEST_IMPL_SCALAR), "scalar");
	assert_string_equal(digest_impl_name(DIGEST_IMPL_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_shot_every_impl),
		cmocka_unit_test(test_streamed_every_impl),
		cmocka_unit_test(test_state_keeps_its_impl),
		cmocka_unit_test(test_unknown_impl_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
