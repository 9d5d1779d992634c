/* xbzrle_simd.c: the SSE2, AVX2 and AVX-512BW paths of the XBZRLE encoder
 * and zero check. Each function carries its own target attribute (no
 * global -m flags), so this file builds for any x86-64 and xbzrle.c calls
 * a path only after CPUID and XCR0 say it can run. */
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xbzrle.h"
#include "xbzrle_priv.h"

/* Bytes the zero check tests per iteration: four 64-byte blocks keep two
 * loads per cycle busy. */
#define SKIP_UNROLL 256

/* The run copier of the paths without masked stores. */
static void generic_apply(uint8_t *page, const uint8_t *src,
			  const struct xbzrle_run16 *tab, size_t nruns)
{
	xbzrle_apply_generic(page, src, tab, nruns);
}

/* ---- SSE2 (baseline on x86-64) ----------------------------------------- */

static inline uint64_t sse2_mask(const uint8_t *a, const uint8_t *b)
{
	uint64_t eq = 0;

	for (int k = 0; k < 4; k++) {
		__m128i x = _mm_loadu_si128((const __m128i *)(a + 16 * k));
		__m128i y = _mm_loadu_si128((const __m128i *)(b + 16 * k));

		eq |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y))
		      << (16 * k);
	}
	return ~eq;
}

/* True if the n bytes at a and b (n a multiple of 16) are equal. */
static inline bool sse2_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	__m128i acc = _mm_setzero_si128();

	for (size_t k = 0; k < n; k += 16)
		acc = _mm_or_si128(acc, _mm_xor_si128(
			_mm_loadu_si128((const __m128i *)(a + k)),
			_mm_loadu_si128((const __m128i *)(b + k))));
	return _mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) ==
	       0xffff;
}

#define SCAN_NAME(x) sse2_##x
#define SCAN_ATTR
#define SCAN_MASK sse2_mask
#define SCAN_POPCNT xbzrle_popcount
#define SCAN_CTZ(x) __builtin_ctzll((x) | 1ull << 63)
#include "xbzrle_scan.h"

static bool sse2_is_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[64];
	size_t i = 0;

	for (; len - i >= SKIP_UNROLL; i += SKIP_UNROLL) {
		__m128i acc = _mm_setzero_si128();

		for (size_t k = 0; k < SKIP_UNROLL; k += 16)
			acc = _mm_or_si128(acc, _mm_loadu_si128((const __m128i *)(p + i + k)));
		if (_mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) != 0xffff)
			return false;
	}
	for (; len - i >= 64; i += 64)
		if (!sse2_equal(p + i, zero, 64))
			return false;
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

const struct xbzrle_path xbzrle_path_sse2 = {
	.impl = XBZRLE_IMPL_SSE2, .name = "sse2",
	.encode = sse2_encode, .is_zero = sse2_is_zero,
	.apply = generic_apply,
};

/* ---- AVX2 --------------------------------------------------------------- */

/* Every CPU with AVX2 has POPCNT, BMI1 and BMI2; xbzrle.c checks them
 * anyway. */
#define AVX2 __attribute__((target("avx2,popcnt,bmi,bmi2")))

static inline AVX2 uint64_t avx2_mask(const uint8_t *a, const uint8_t *b)
{
	__m256i a0 = _mm256_loadu_si256((const __m256i *)a);
	__m256i a1 = _mm256_loadu_si256((const __m256i *)(a + 32));
	__m256i b0 = _mm256_loadu_si256((const __m256i *)b);
	__m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
	uint64_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a0, b0));
	uint64_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a1, b1));

	return ~(lo | hi << 32);
}

#define SCAN_NAME(x) avx2_##x
#define SCAN_ATTR AVX2
#define SCAN_MASK avx2_mask
#define SCAN_POPCNT __builtin_popcountll
#define SCAN_CTZ _tzcnt_u64
#include "xbzrle_scan.h"

static AVX2 bool avx2_is_zero(const uint8_t *p, size_t len)
{
	size_t i = 0;

	for (; len - i >= SKIP_UNROLL; i += SKIP_UNROLL) {
		__m256i acc = _mm256_setzero_si256();

		for (size_t k = 0; k < SKIP_UNROLL; k += 32)
			acc = _mm256_or_si256(acc, _mm256_loadu_si256((const __m256i *)(p + i + k)));
		if (!_mm256_testz_si256(acc, acc))
			return false;
	}
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

const struct xbzrle_path xbzrle_path_avx2 = {
	.impl = XBZRLE_IMPL_AVX2, .name = "avx2",
	.encode = avx2_encode, .is_zero = avx2_is_zero,
	.apply = generic_apply,
};

/* ---- AVX-512BW ---------------------------------------------------------- */

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,popcnt,bmi,bmi2")))

static inline AVX512 uint64_t avx512_mask(const uint8_t *a, const uint8_t *b)
{
	return _mm512_cmpneq_epi8_mask(_mm512_loadu_si512(a), _mm512_loadu_si512(b));
}

/* xbzrle_scan.h's trans for eight blocks at a time, in place over the
 * masks m[1 .. nblk] (m[0] and m[nblk + 1] are 0); e64[w] gets block w's
 * end at byte 64. A block's neighbours come from the vectors before and
 * after by lane rotation (valignq), not from loads that straddle the
 * masks just stored. The same bit logic as the scalar trans, lane by lane
 * (ternary-logic 0xf8 is a | (b & c)). */
static inline AVX512 void avx512_trans_all(uint64_t *m, size_t nblk, uint8_t *e64)
{
	const __m512i one = _mm512_set1_epi64(1);
	__m512i prev = _mm512_setzero_si512();
	__mmask8 live = (__mmask8)(nblk >= 8 ? 0xff : (1u << nblk) - 1);
	__m512i c = _mm512_maskz_loadu_epi64(live, m + 1);

	for (size_t w = 1; w <= nblk; w += 8) {
		size_t left = nblk + 1 - w;
		__mmask8 live_next = (__mmask8)(left <= 8 ? 0 : left - 8 >= 8 ? 0xff :
						(1u << (left - 8)) - 1);
		__m512i next = _mm512_maskz_loadu_epi64(live_next, m + w + 8);
		__m512i p = _mm512_alignr_epi64(c, prev, 7);
		__m512i q = _mm512_alignr_epi64(next, c, 1);
		__m512i a = _mm512_or_si512(_mm512_slli_epi64(c, 1), _mm512_srli_epi64(p, 63));
		__m512i b = _mm512_or_si512(_mm512_srli_epi64(c, 1), _mm512_slli_epi64(q, 63));
		__m512i f = _mm512_ternarylogic_epi64(c, a, b, 0xf8);
		__m512i p63 = _mm512_and_si512(_mm512_ternarylogic_epi64(
			_mm512_srli_epi64(p, 63), _mm512_srli_epi64(p, 62), c, 0xf8), one);
		__m512i q0 = _mm512_and_si512(_mm512_ternarylogic_epi64(
			q, _mm512_srli_epi64(c, 63), _mm512_srli_epi64(q, 1), 0xf8), one);
		__m512i f1 = _mm512_slli_epi64(f, 1);
		__m512i first = _mm512_andnot_si512(_mm512_or_si512(f1, p63), f);
		__m512i t = _mm512_or_si512(first, _mm512_andnot_si512(f, f1));
		__m512i e = _mm512_andnot_si512(q0, _mm512_srli_epi64(f, 63));

		_mm512_mask_storeu_epi64(m + w, live, t);
		_mm512_mask_cvtepi64_storeu_epi8(e64 + w, live, e);
		prev = c;
		c = next;
		live = live_next;
	}
}

#define SCAN_NAME(x) avx512_##x
#define SCAN_ATTR AVX512
#define SCAN_MASK avx512_mask
#define SCAN_TRANS avx512_trans_all
/* Changed blocks (of 64 on a 4 KiB page) from which avx512_trans_all,
 * which costs as much as about 8 blocks done one at a time, pays. */
#define SCAN_TRANS_FROM 8
#define SCAN_POPCNT __builtin_popcountll
#define SCAN_CTZ _tzcnt_u64
#include "xbzrle_scan.h"

static AVX512 bool avx512_is_zero(const uint8_t *p, size_t len)
{
	size_t i = 0;

	for (; len - i >= SKIP_UNROLL; i += SKIP_UNROLL) {
		__m512i t = _mm512_ternarylogic_epi64(
			_mm512_loadu_si512(p + i), _mm512_loadu_si512(p + i + 64),
			_mm512_loadu_si512(p + i + 128), 0xfe);

		t = _mm512_or_si512(t, _mm512_loadu_si512(p + i + 192));
		if (_mm512_test_epi64_mask(t, t))
			return false;
	}
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Each run of up to 64 bytes in one masked load and one masked store:
 * no branch on the run's exact length (short runs of varied length are
 * what dense pages are made of), and the masked-off bytes are neither
 * read nor written, so nothing outside the run or the stream is touched.
 * Runs of up to 16 bytes (nearly all) use the 128-bit forms: sparse 512
 * decode, 1116 -> 1005 ns a page against 512-bit moves for every run. */
static AVX512 void avx512_apply(uint8_t *page, const uint8_t *src,
				const struct xbzrle_run16 *tab, size_t nruns)
{
	for (size_t k = 0; k < nruns; k++) {
		size_t n = tab[k].n;

		if (n <= 16) {
			__mmask16 m = (__mmask16)((1u << n) - 1);

			_mm_mask_storeu_epi8(page + tab[k].d, m,
					     _mm_maskz_loadu_epi8(m, src + tab[k].i));
		} else if (n <= 64) {
			__mmask64 m = ~0ull >> (64 - n);

			_mm512_mask_storeu_epi8(page + tab[k].d, m,
						_mm512_maskz_loadu_epi8(m, src + tab[k].i));
		} else {
			memcpy(page + tab[k].d, src + tab[k].i, n);
		}
	}
}

const struct xbzrle_path xbzrle_path_avx512 = {
	.impl = XBZRLE_IMPL_AVX512, .name = "avx512bw",
	.encode = avx512_encode, .is_zero = avx512_is_zero,
	.apply = avx512_apply,
};
