/* net_inet_sum: net/inet_sum.c against a plain RFC 1071 reference, for
 * every start alignment 0..15 and lengths 0..1600, plus the copy variant
 * and lwIP's combining rule for pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../net/inet_sum.h"

/* Reference: lwIP's contract, byte by byte. The byte at an even offset
 * from an even address is the low byte of its native 16-bit word. */
static uint16_t ref_sum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;
	int odd = (uintptr_t)p & 1;
	size_t i = 0;
	if (odd && len) {
		s += (uint32_t)p[0] << 8;
		i = 1;
	}
	for (; i + 1 < len; i += 2)
		s += (uint32_t)p[i] | (uint32_t)p[i + 1] << 8;
	if (i < len)
		s += p[i];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	if (odd)
		s = ((s & 0xff) << 8) | (s >> 8);
	return (uint16_t)s;
}

static uint8_t buf[1700], dst[1700];

static void fill(unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
}

static void test_sum_matches_reference(void **state)
{
	(void)state;
	for (unsigned seed = 1; seed <= 4; seed++) {
		fill(seed);
		for (size_t off = 0; off < 16; off++)
			for (size_t len = 0; len <= 1600; len++) {
				uint16_t want = ref_sum(buf + off, len), got = inet_sum16(buf + off, len);
				if (want != got)
					fail_msg("off %zu len %zu: want 0x%04x got 0x%04x", off, len, want, got);
			}
	}
}

static void test_all_ones_carry(void **state)
{
	(void)state;
	memset(buf, 0xff, sizeof(buf));
	for (size_t len = 0; len <= 1600; len += 7)
		assert_int_equal(inet_sum16(buf, len), ref_sum(buf, len));
	memset(buf, 0, sizeof(buf));
	assert_int_equal(inet_sum16(buf, 1500), 0);
}

static void test_copy_copies_and_sums(void **state)
{
	(void)state;
	fill(9);
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len <= 1600; len += 3) {
			memset(dst, 0xa5, sizeof(dst));
			uint16_t got = inet_sum16_copy(dst + 3, buf + off, len);
			assert_int_equal(got, ref_sum(buf + off, len));
			assert_memory_equal(dst + 3, buf + off, len);
			assert_int_equal(dst[2], 0xa5);
			assert_int_equal(dst[3 + len], 0xa5);
		}
}

static void test_net_copy(void **state)
{
	(void)state;
	fill(11);
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len <= 1600; len += 3) {
			memset(dst, 0xa5, sizeof(dst));
			net_copy(dst + 5, buf + off, len);
			assert_memory_equal(dst + 5, buf + off, len);
			assert_int_equal(dst[4], 0xa5);
			assert_int_equal(dst[5 + len], 0xa5);
		}
}

/* A segment summed in two pieces, the second starting at an odd offset,
 * must combine (one's-complement add) to the whole: how lwIP uses it. */
static void test_pieces_combine(void **state)
{
	(void)state;
	fill(5);
	for (size_t cut = 0; cut <= 200; cut++) {
		uint32_t a = inet_sum16(buf, cut), b = inet_sum16(buf + cut, 1460 - cut);
		if (cut & 1)
			b = ((b & 0xff) << 8) | (b >> 8); /* lwIP swaps a piece that started odd in the stream */
		uint32_t s = a + b;
		s = (s & 0xffff) + (s >> 16);
		uint32_t whole = inet_sum16(buf, 1460);
		/* 0x0000 and 0xffff are the same one's-complement value */
		if (!(s == whole || (s == 0xffff && whole == 0) || (s == 0 && whole == 0xffff)))
			fail_msg("cut %zu: pieces 0x%04x whole 0x%04x", cut, s, whole);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sum_matches_reference),
		cmocka_unit_test(test_all_ones_carry),
		cmocka_unit_test(test_copy_copies_and_sums),
		cmocka_unit_test(test_net_copy),
		cmocka_unit_test(test_pieces_combine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
