/* test_uleb128.c: XBZRLE's ULEB128 lengths, exhaustively: every value
 * 0..16383 both ways, every one- and two-byte input against a reference
 * model, every three-byte form rejected, and every length value as a
 * zrun and as an nzrun inside a stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "xbzrle.h"

#define PAGE 4096

static void test_encode_all_values(void **state)
{
	(void)state;
	for (uint32_t v = 0; v <= XBZRLE_MAX_LEN; v++) {
		uint8_t out[3] = {0xee, 0xee, 0xee};
		int want_n = v < 128 ? 1 : 2;
		int n = xbzrle_uleb128_encode(v, out);
		uint32_t back = 0xffffffff;

		if (n != want_n)
			fail_msg("encode %u: expected %d bytes, got %d", v, want_n, n);
		if (out[want_n] != 0xee)
			fail_msg("encode %u: wrote byte %d", v, want_n);
		if (v < 128 && out[0] != v)
			fail_msg("encode %u: expected %02x, got %02x", v, v, out[0]);
		if (v >= 128 && (out[0] != (0x80 | (v & 0x7f)) || out[1] != v >> 7))
			fail_msg("encode %u: expected %02x %02x, got %02x %02x", v,
				 0x80 | (v & 0x7f), v >> 7, out[0], out[1]);
		n = xbzrle_uleb128_decode(out, (size_t)want_n, &back);
		if (n != want_n || back != v)
			fail_msg("decode(encode(%u)): expected %u in %d bytes, got %u in %d",
				 v, v, want_n, back, n);
	}
}

static void test_encode_out_of_range(void **state)
{
	static const uint32_t bad[] = {16384, 16385, 32767, 65535, 1u << 20,
				       0x7fffffff, 0xffffffff};
	uint8_t out[4];

	(void)state;
	for (uint32_t v = 16384; v < 70000; v++)
		if (xbzrle_uleb128_encode(v, out) != XBZRLE_EINVAL)
			fail_msg("encode %u: expected XBZRLE_EINVAL", v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (xbzrle_uleb128_encode(bad[i], out) != XBZRLE_EINVAL)
			fail_msg("encode %u: expected XBZRLE_EINVAL", bad[i]);
}

/* Reference model of QEMU's reader: one byte if the top bit is clear,
 * else two bytes whose second has the top bit clear (non-canonical forms
 * such as 80 00 included). */
static int model(const uint8_t *in, size_t avail, uint32_t *v)
{
	if (avail == 0)
		return XBZRLE_ETRUNC;
	if (in[0] < 0x80) {
		*v = in[0];
		return 1;
	}
	if (avail == 1)
		return XBZRLE_ETRUNC;
	if (in[1] >= 0x80)
		return XBZRLE_EULEB;
	*v = (in[0] & 0x7fu) + 128u * in[1];
	return 2;
}

static void test_decode_all_inputs(void **state)
{
	uint32_t v, mv;

	(void)state;
	if (xbzrle_uleb128_decode((const uint8_t *)"", 0, &v) != XBZRLE_ETRUNC)
		fail_msg("empty input: expected XBZRLE_ETRUNC");
	for (unsigned b0 = 0; b0 < 256; b0++) {
		uint8_t in[3] = {(uint8_t)b0, 0, 0};
		int r = xbzrle_uleb128_decode(in, 1, &v), m = model(in, 1, &mv);

		if (r != m || (r > 0 && v != mv))
			fail_msg("%02x (1 byte available): expected %d/%u, got %d/%u",
				 b0, m, mv, r, v);
		for (unsigned b1 = 0; b1 < 256; b1++) {
			in[1] = (uint8_t)b1;
			for (size_t avail = 2; avail <= 3; avail++) {
				for (unsigned b2 = 0; b2 < 256; b2 += 255) {
					in[2] = (uint8_t)b2;
					r = xbzrle_uleb128_decode(in, avail, &v);
					m = model(in, avail, &mv);
					if (r != m || (r > 0 && v != mv))
						fail_msg("%02x %02x %02x (%zu available): "
							 "expected %d/%u, got %d/%u",
							 b0, b1, b2, avail, m, mv, r, v);
				}
			}
		}
	}
}

/* Every three-byte form (two continuation bits) is rejected by the stream
 * decoder too, as a zrun and as an nzrun length, page untouched. */
static void test_decode_three_byte_forms(void **state)
{
	static uint8_t page[PAGE], before[PAGE];

	(void)state;
	memset(before, 0x5a, PAGE);
	for (unsigned b0 = 0x80; b0 < 256; b0 += 3) {
		for (unsigned b1 = 0x80; b1 < 256; b1 += 5) {
			uint8_t zs[] = {(uint8_t)b0, (uint8_t)b1, 0x01, 0x01, 0xaa};
			uint8_t ns[] = {0x00, (uint8_t)b0, (uint8_t)b1, 0x01, 0xaa};
			int r;

			memcpy(page, before, PAGE);
			r = xbzrle_decode(zs, sizeof(zs), page, PAGE);
			if (r != XBZRLE_EULEB || memcmp(page, before, PAGE))
				fail_msg("zrun %02x %02x 01: expected XBZRLE_EULEB, got %d", b0, b1, r);
			r = xbzrle_decode(ns, sizeof(ns), page, PAGE);
			if (r != XBZRLE_EULEB || memcmp(page, before, PAGE))
				fail_msg("nzrun %02x %02x 01: expected XBZRLE_EULEB, got %d", b0, b1, r);
		}
	}
}

/* Every length value in a real stream: zrun z then one byte; nzrun of n. */
static void test_decode_every_run_length(void **state)
{
	static uint8_t page[PAGE], src[PAGE + 8];

	(void)state;
	for (uint32_t z = 0; z <= XBZRLE_MAX_LEN; z++) {
		size_t s = (size_t)xbzrle_uleb128_encode(z, src);
		int want = z < PAGE ? (int)z + 1 : XBZRLE_EPAGE;
		int r;

		src[s++] = 1;
		src[s++] = 0xaa;
		memset(page, 0, PAGE);
		r = xbzrle_decode(src, s, page, PAGE);
		if (r != want)
			fail_msg("zrun %u: expected %d, got %d", z, want, r);
		if (r > 0 && page[z] != 0xaa)
			fail_msg("zrun %u: byte not written at %u", z, z);
	}
	for (uint32_t n = 0; n <= PAGE; n++) {
		size_t s = 1;
		int want = n == 0 ? XBZRLE_ENZRUN : (int)n;
		int r;

		src[0] = 0;
		s += (size_t)xbzrle_uleb128_encode(n, src + 1);
		memset(src + s, 0xbb, n);
		memset(page, 0, PAGE);
		if (s + n > PAGE)
			want = XBZRLE_ETOOLONG;
		r = xbzrle_decode(src, s + n, page, PAGE);
		if (r != want)
			fail_msg("nzrun %u: expected %d, got %d", n, want, r);
		if (r > 0 && (page[n - 1] != 0xbb || (n < PAGE && page[n] != 0)))
			fail_msg("nzrun %u: wrong bytes written", n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_all_values),
		cmocka_unit_test(test_encode_out_of_range),
		cmocka_unit_test(test_decode_all_inputs),
		cmocka_unit_test(test_decode_three_byte_forms),
		cmocka_unit_test(test_decode_every_run_length),
	};

	return cmocka_run_group_tests_name("uleb128", tests, NULL, NULL);
}
