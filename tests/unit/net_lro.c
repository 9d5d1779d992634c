/* net_lro: net/lro.c's receive coalescing. Segments are built with
 * checksums from a plain big-endian RFC 1071 reference; merged packets are
 * checked with the same reference over every byte, as lwIP will check
 * them, and compared with the stream of segments they came from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../net/lro.h"

#define MSS 1460

/* RFC 1071 over big-endian 16-bit words, folded, not inverted. */
static uint32_t ref_add(uint32_t s, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return s;
}

static uint16_t ref_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Does the IPv4 packet at ip (total length from its header) carry right IP
 * and TCP checksums? */
static int ref_valid(const uint8_t *ip)
{
	if (ref_fold(ref_add(0, ip, 20)) != 0xffff)
		return 0;
	size_t tl = (size_t)ip[2] << 8 | ip[3], tcp_len = tl - 20;
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 6;
	ph[10] = (uint8_t)(tcp_len >> 8);
	ph[11] = (uint8_t)tcp_len;
	return ref_fold(ref_add(ref_add(0, ph, 12), ip + 20, tcp_len)) == 0xffff;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

/* Build a frame: Ethernet + IPv4 + TCP (flags) + plen bytes of payload
 * taken from data, with right checksums; pad bytes of padding after. */
static size_t make_seg(uint8_t *f, uint32_t seq, uint32_t ack, uint16_t win, uint8_t flags, const uint8_t *data,
		       size_t plen, size_t pad)
{
	static const uint8_t eth[14] = { 0x52, 0x54, 0, 0xfe, 0, 2, 0x52, 0x54, 0, 0xfe, 0, 1, 0x08, 0x00 };
	memcpy(f, eth, 14);
	uint8_t *ip = f + 14, *tcp = ip + 20;
	memset(ip, 0, 40);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(40 + plen));
	put16(ip + 4, 0x1234);
	ip[6] = 0x40; /* DF */
	ip[8] = 255;
	ip[9] = 6;
	put32(ip + 12, 0x0a000001);
	put32(ip + 16, 0x0a000002);
	put16(ip + 10, (uint16_t)~ref_fold(ref_add(0, ip, 20)));
	put16(tcp, 49153);
	put16(tcp + 2, 5001);
	put32(tcp + 4, seq);
	put32(tcp + 8, ack);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	put16(tcp + 14, win);
	memcpy(tcp + 20, data, plen);
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 6;
	put16(ph + 10, (uint16_t)(20 + plen));
	put16(tcp + 16, (uint16_t)~ref_fold(ref_add(ref_add(0, ph, 12), tcp, 20 + plen)));
	memset(tcp + 20 + plen, 0xee, pad);
	return 54 + plen + pad;
}

/* Merge n segments of the given payload lengths from stream; returns the
 * merged packet (headers + payloads) in out and its length. Expects every
 * segment to merge into the first. */
static size_t merge(uint8_t *out, const uint8_t *stream, const size_t *lens, int n, int corrupt)
{
	static uint8_t f[2048];
	struct lro_agg a;
	struct lro_seg s;
	size_t off = 0, outlen = 0;
	uint32_t seq = 1000;
	for (int i = 0; i < n; i++) {
		size_t len = make_seg(f, seq, 77 + (uint32_t)i, (uint16_t)(4000 + i), 0x10 | (i == 1 ? 0x08 : 0),
				      stream + off, lens[i], 0);
		if (corrupt && i == n / 2)
			f[60] ^= 0x40; /* a payload bit flipped on the wire */
		assert_int_equal(lro_parse(f, len, &s), 0);
		assert_int_equal(s.plen, lens[i]);
		if (i == 0) {
			lro_start(&a, f, &s);
			memcpy(out, f, len);
			outlen = len;
		} else {
			assert_true(lro_can_add(&a, f, &s));
			lro_add(&a, f, &s);
			memcpy(out + outlen, f + LRO_HDR_LEN, lens[i]);
			outlen += lens[i];
		}
		off += lens[i];
		seq += (uint32_t)lens[i];
	}
	lro_finish(&a);
	memcpy(out, a.hdr, LRO_HDR_LEN);
	return outlen;
}

static void test_merge_valid(void **state)
{
	(void)state;
	static uint8_t stream[LRO_MAX_PAYLOAD], out[LRO_HDR_LEN + LRO_MAX_PAYLOAD];
	srand(7);
	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)rand();
	size_t lens[LRO_MAX_SEGS];
	for (int n = 1; n <= 41; n += 4) {
		size_t total = 0;
		for (int i = 0; i < n; i++) {
			/* even lengths, the last one odd for some n */
			lens[i] = (i == n - 1 && (n & 2)) ? 777 : (size_t)(MSS - 2 * (i % 5));
			total += lens[i];
		}
		size_t len = merge(out, stream, lens, n, 0);
		assert_int_equal(len, LRO_HDR_LEN + total);
		const uint8_t *ip = out + 14, *tcp = ip + 20;
		assert_true(ref_valid(ip));
		assert_int_equal((size_t)(ip[2] << 8 | ip[3]), 40 + total);
		assert_memory_equal(tcp + 20, stream, total);
		assert_int_equal(tcp[4] << 24 | tcp[5] << 16 | tcp[6] << 8 | tcp[7], 1000); /* first seq */
		if (n > 1) {
			assert_int_equal(tcp[8] << 24 | tcp[9] << 16 | tcp[10] << 8 | tcp[11], 77 + n - 1); /* last ack */
			assert_int_equal(tcp[14] << 8 | tcp[15], 4000 + n - 1);                            /* last window */
			assert_int_equal(tcp[13], 0x18);                                                     /* ACK|PSH */
		} else {
			assert_int_equal(tcp[13], 0x10);
		}
	}
}

static void test_merge_corrupt_detected(void **state)
{
	(void)state;
	static uint8_t stream[8 * MSS], out[LRO_HDR_LEN + 8 * MSS];
	memset(stream, 0x5a, sizeof(stream));
	size_t lens[8];
	for (int i = 0; i < 8; i++)
		lens[i] = MSS;
	merge(out, stream, lens, 8, 1);
	assert_false(ref_valid(out + 14)); /* lwIP's check over the merged bytes fails */
	merge(out, stream, lens, 8, 0);
	assert_true(ref_valid(out + 14));
}

static void test_parse_rejects(void **state)
{
	(void)state;
	uint8_t f[2048], data[100] = { 1, 2, 3 };
	struct lro_seg s;
	size_t len = make_seg(f, 1, 2, 3, 0x10, data, 100, 0);
	assert_int_equal(lro_parse(f, len, &s), 0);
	assert_int_equal(lro_parse(f, 53, &s), -1); /* shorter than the headers */
	assert_int_equal(lro_parse(f, len - 1, &s), -1); /* IP length past the frame */
	len = make_seg(f, 1, 2, 3, 0x10, data, 100, 6); /* Ethernet padding is fine */
	assert_int_equal(lro_parse(f, len, &s), 0);
	assert_int_equal(s.frame_len, 154);
	static const uint8_t bad_flags[] = { 0x00, 0x02, 0x12, 0x11, 0x14, 0x30, 0x50, 0x90 };
	for (size_t i = 0; i < sizeof(bad_flags); i++) {
		len = make_seg(f, 1, 2, 3, bad_flags[i], data, 100, 0);
		assert_int_equal(lro_parse(f, len, &s), -1);
	}
	len = make_seg(f, 1, 2, 3, 0x10, data, 0, 0); /* a pure ACK */
	assert_int_equal(lro_parse(f, len, &s), -1);
	len = make_seg(f, 1, 2, 3, 0x10, data, 100, 0);
	f[14 + 10] ^= 1; /* IP header checksum */
	assert_int_equal(lro_parse(f, len, &s), -1);
	len = make_seg(f, 1, 2, 3, 0x10, data, 100, 0);
	f[14 + 6] = 0x20; /* more fragments */
	assert_int_equal(lro_parse(f, len, &s), -1);
	len = make_seg(f, 1, 2, 3, 0x10, data, 100, 0);
	f[14] = 0x46; /* IP options */
	assert_int_equal(lro_parse(f, len, &s), -1);
	len = make_seg(f, 1, 2, 3, 0x10, data, 100, 0);
	f[14 + 9] = 17; /* UDP */
	assert_int_equal(lro_parse(f, len, &s), -1);
	len = make_seg(f, 1, 2, 3, 0x10, data, 100, 0);
	f[14 + 20 + 12] = 6 << 4; /* TCP options */
	assert_int_equal(lro_parse(f, len, &s), -1);
	len = make_seg(f, 1, 2, 3, 0x10, data, 100, 0);
	f[12] = 0x86; /* not IPv4 */
	assert_int_equal(lro_parse(f, len, &s), -1);
}

static void test_can_add_rules(void **state)
{
	(void)state;
	uint8_t f0[2048], f[2048], data[MSS] = { 9 };
	struct lro_agg a;
	struct lro_seg s0, s;
	size_t len = make_seg(f0, 100, 1, 1, 0x10, data, 1000, 0);
	assert_int_equal(lro_parse(f0, len, &s0), 0);
	lro_start(&a, f0, &s0);

	len = make_seg(f, 1100, 1, 1, 0x10, data, 1000, 0);
	assert_int_equal(lro_parse(f, len, &s), 0);
	assert_true(lro_can_add(&a, f, &s));
	len = make_seg(f, 1101, 1, 1, 0x10, data, 1000, 0); /* a gap */
	lro_parse(f, len, &s);
	assert_false(lro_can_add(&a, f, &s));
	len = make_seg(f, 100, 1, 1, 0x10, data, 1000, 0); /* a retransmission */
	lro_parse(f, len, &s);
	assert_false(lro_can_add(&a, f, &s));
	len = make_seg(f, 1100, 1, 1, 0x10, data, 1000, 0);
	f[14 + 20] ^= 1; /* another source port (parse checks no TCP checksum) */
	lro_parse(f, len, &s);
	assert_false(lro_can_add(&a, f, &s));
	len = make_seg(f, 1100, 1, 1, 0x10, data, 1000, 0);
	f[0] ^= 2; /* another destination MAC */
	lro_parse(f, len, &s);
	assert_false(lro_can_add(&a, f, &s));

	/* odd payload so far: the next payload's sum would need a byte swap */
	len = make_seg(f0, 100, 1, 1, 0x10, data, 999, 0);
	lro_parse(f0, len, &s0);
	lro_start(&a, f0, &s0);
	len = make_seg(f, 1099, 1, 1, 0x10, data, 1000, 0);
	lro_parse(f, len, &s);
	assert_false(lro_can_add(&a, f, &s));

	/* limits: segments and payload bytes */
	len = make_seg(f0, 0, 1, 1, 0x10, data, 2, 0);
	lro_parse(f0, len, &s0);
	lro_start(&a, f0, &s0);
	for (uint32_t i = 1; i < LRO_MAX_SEGS; i++) {
		len = make_seg(f, 2 * i, 1, 1, 0x10, data, 2, 0);
		lro_parse(f, len, &s);
		assert_true(lro_can_add(&a, f, &s));
		lro_add(&a, f, &s);
	}
	len = make_seg(f, 2 * LRO_MAX_SEGS, 1, 1, 0x10, data, 2, 0);
	lro_parse(f, len, &s);
	assert_false(lro_can_add(&a, f, &s));
	len = make_seg(f0, 0, 1, 1, 0x10, data, MSS, 0);
	lro_parse(f0, len, &s0);
	lro_start(&a, f0, &s0);
	uint32_t seq = MSS;
	while (a.plen + MSS <= LRO_MAX_PAYLOAD) {
		len = make_seg(f, seq, 1, 1, 0x10, data, MSS, 0);
		lro_parse(f, len, &s);
		lro_add(&a, f, &s);
		seq += MSS;
	}
	len = make_seg(f, seq, 1, 1, 0x10, data, MSS, 0);
	lro_parse(f, len, &s);
	assert_false(lro_can_add(&a, f, &s));
}

static void test_single_unchanged(void **state)
{
	(void)state;
	uint8_t f[2048], data[300];
	memset(data, 3, sizeof(data));
	struct lro_agg a;
	struct lro_seg s;
	size_t len = make_seg(f, 5, 6, 7, 0x18, data, 300, 0);
	lro_parse(f, len, &s);
	lro_start(&a, f, &s);
	lro_finish(&a);
	assert_memory_equal(a.hdr, f, LRO_HDR_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_valid),
		cmocka_unit_test(test_merge_corrupt_detected),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_can_add_rules),
		cmocka_unit_test(test_single_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
