/* xbzrle.c: XBZRLE decoder, ULEB128 lengths, the portable scalar encoder
 * and the run-time choice of SIMD path. See include/xbzrle.h and
 * docs/xbzrle.md. */
#include <cpuid.h>
#include <emmintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xbzrle.h"
#include "xbzrle_priv.h"

/* ---- ULEB128 (one or two bytes) ---------------------------------------- */

int xbzrle_uleb128_encode(uint32_t v, uint8_t *out)
{
	if (v > XBZRLE_MAX_LEN)
		return XBZRLE_EINVAL;
	return (int)xbzrle_put_uleb(out, v);
}

int xbzrle_uleb128_decode(const uint8_t *in, size_t avail, uint32_t *v)
{
	if (avail < 1)
		return XBZRLE_ETRUNC;
	if (!(in[0] & 0x80)) {
		*v = in[0];
		return 1;
	}
	if (avail < 2)
		return XBZRLE_ETRUNC;
	if (in[1] & 0x80)
		return XBZRLE_EULEB;
	*v = (uint32_t)(in[0] & 0x7f) | (uint32_t)in[1] << 7;
	return 2;
}

static inline const struct xbzrle_path *path(void);

/* ---- Decoder ------------------------------------------------------------ */

/* Check the stream from offset i (d page bytes covered so far) against
 * the grammar and the page, one rule at a time; returns the bytes covered
 * or the first error. Touches nothing. */
static int validate_from(const uint8_t *src, size_t slen, size_t len, size_t i,
			 size_t d)
{
	uint32_t z, n;
	int r;

	while (i < slen) {
		r = xbzrle_uleb128_decode(src + i, slen - i, &z);
		if (r < 0)
			return r;
		if (z == 0 && i != 0)
			return XBZRLE_EZRUN;
		i += (size_t)r;
		if (z > len - d)
			return XBZRLE_EPAGE;
		d += z;
		if (i == slen)
			return XBZRLE_ETRAIL;
		r = xbzrle_uleb128_decode(src + i, slen - i, &n);
		if (r < 0)
			return r;
		i += (size_t)r;
		if (n == 0)
			return XBZRLE_ENZRUN;
		if (n > len - d)
			return XBZRLE_EPAGE;
		if (n > slen - i)
			return XBZRLE_ETRUNC;
		i += n;
		d += n;
	}
	return (int)d;
}

/* Read a length with at least two bytes readable at src + *i. Branches
 * on the length's size on purpose: the branch is predictable on real
 * streams and lets the CPU run ahead to the next header, where a
 * branch-free form would chain every header's load on the previous one.
 * A second byte with its top bit set (a third length byte) is not flagged:
 * it makes the length 16384 or more, past any page the fast loops take,
 * and the page bound after the loop catches it. */
static inline size_t get_uleb2(const uint8_t *src, size_t *i)
{
	size_t b0 = src[*i], b1;

	if (b0 < 0x80) {
		*i += 1;
		return b0;
	}
	b1 = src[*i + 1];
	*i += 2;
	return (b0 & 0x7f) | b1 << 7;
}

/* Runs the validation pass remembers for the apply pass, so that applying
 * them is a loop of independent copies rather than a second walk down the
 * chain of headers, where each header's position depends on a load of the
 * one before. 512 runs (enough for a 4 KiB page with 512 scattered
 * changed bytes); runs past them are parsed again. */
#define DECODE_TABLE 512

/* The table (5.5 KiB of stack). The dense loop fills run[]. The sparse
 * loops write their one-byte runs (almost all of them) to od[] and ob[],
 * as the page offset and the byte itself, so applying one is two loads
 * and a store; their other runs go to run[]. Each loop stops at
 * 3 * DECODE_TABLE stream bytes, and a run takes at least 3, so no array
 * overfills. */
struct decode_table {
	struct xbzrle_run16 run[DECODE_TABLE];
	uint16_t od[DECODE_TABLE];
	uint8_t ob[DECODE_TABLE];
};

/* Where the apply pass picks up after the remembered runs: nruns in
 * run[], nones in od[] and ob[]. */
struct resume {
	size_t nruns, nones, i, d;
};

/* One 8-byte store, not three (x86: little-endian). */
static inline void put_run(struct xbzrle_run16 *t, size_t d, size_t i, size_t n)
{
	uint64_t e = d | i << 16 | (uint64_t)n << 32;

	memcpy(t, &e, sizeof(e));
}

/* A run's nzrun of any length, its header at src + *i and its bytes at
 * page offset *d: remembered in run[], *i and *d moved past it. False for
 * an nzrun of 0. */
static inline bool take_run(const uint8_t *src, size_t *i, size_t *d,
			    struct decode_table *tab, size_t *kr)
{
	size_t n = get_uleb2(src, i);

	if (n == 0)
		return false;
	put_run(&tab->run[(*kr)++], *d, *i, n);
	*d += n;
	*i += n;
	return true;
}

/* The fast loops below check each run with an accumulated flag and no
 * branch, for pages of at most XBZRLE_MAX_LEN bytes: a zero zrun sets the
 * top bit of z - 1; a third length byte makes its length 16384 or more,
 * so it shows as a run past the page; and the page and stream bounds are
 * checked once after the loop, because d and i only grow and the loop's
 * own condition keeps every header read inside the stream (nothing is
 * written before the verdict; a prefetch past the page cannot fault). An
 * nzrun of 0 leaves the loop at once: it is the only run shorter than
 * three stream bytes, so without it i >= 3 * k and a loop bounded by
 * i + 4 <= 3 * DECODE_TABLE cannot overfill the table. The stream's tail,
 * and any stream they reject, go through validate_from, which names the
 * error. */
static inline size_t table_limit(size_t slen)
{
	return slen < 3 * DECODE_TABLE ? slen : 3 * DECODE_TABLE;
}

static inline int verdict(const uint8_t *src, size_t slen, size_t len,
			  struct resume *res, size_t i, size_t d, size_t zero)
{
	if ((zero >> 63) | (d > len) | (i > slen))
		return validate_from(src, slen, len, 0, 0);
	res->i = i;
	res->d = d;
	return validate_from(src, slen, len, i, d);
}

/* Below this many stream bytes (a few runs), setting up the top bits
 * costs more than it saves: the short loop takes them. */
#define SPARSE_SHORT 64

/* Sparse streams shorter than SPARSE_SHORT: one run a step, the chain
 * from one header to the next being a load, a shift and an add (the
 * nzrun taken to be 1 on a predicted branch, the zrun's size read without
 * a branch). Tables and checks as in validate_sparse below. */
static inline int validate_short(const uint8_t *src, size_t slen, uint8_t *page,
				 size_t len, struct decode_table *tab,
				 struct resume *res)
{
	size_t i = 0, d, zero = 0, ko = 0, kr = 0, lim = table_limit(slen);

	/* The first run: its zrun may be 0. */
	d = get_uleb2(src, &i);
	goto nzrun;
	while (i + 4 <= lim) {
		size_t b0 = src[i], b1 = src[i + 1], two = b0 >> 7;
		size_t z = b0 + ((b1 << 7) - 0x80) * two;

		zero |= z - 1;
		d += z;
		__builtin_prefetch(page + d, 1);
		i += 1 + two;
		if (__builtin_expect(src[i] == 1, 1)) {
			tab->od[ko] = (uint16_t)d;
			tab->ob[ko++] = src[i + 1];
			d += 1;
			i += 2;
			continue;
		}
nzrun:
		if (!take_run(src, &i, &d, tab, &kr))
			return validate_from(src, slen, len, 0, 0);
	}
	res->nruns = kr;
	res->nones = ko;
	return verdict(src, slen, len, res, i, d, zero);
}

/* Streams the sparse loop takes are under len / 16 bytes, len at most
 * XBZRLE_MAX_LEN: 1023 bytes, 16 words of top bits. */
#define SPARSE_WORDS 16

/* Bit b of w[b / 64]: byte b of the stream has its top bit set (a zrun
 * header there is two bytes); one more word of zeros follows. Reads
 * nothing past src + slen. */
static void top_bits(const uint8_t *src, size_t slen, uint64_t *w)
{
	size_t k = 0;
	unsigned m;

	memset(w, 0, ((slen + 63) / 64 + 1) * sizeof(*w));
	/* A word at a time, so that the word is not read back from memory
	 * after every 16 bytes. */
	for (; k + 64 <= slen; k += 64) {
		uint64_t m0 = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(src + k)));
		uint64_t m1 = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(src + k + 16)));
		uint64_t m2 = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(src + k + 32)));
		uint64_t m3 = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(src + k + 48)));

		w[k / 64] = m0 | m1 << 16 | m2 << 32 | m3 << 48;
	}
	for (; k + 16 <= slen; k += 16) {
		m = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(src + k)));
		w[k / 64] |= (uint64_t)m << (k % 64);
	}
	/* The last slen - k < 16 bytes: the top bits of the 16 bytes that
	 * end the stream (slen >= 16 here), within word k / 64. */
	m = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(src + slen - 16)));
	w[k / 64] |= (uint64_t)(m >> (16 - (slen - k))) << (k % 64);
}

/* Sparse streams (under one stream byte per 16 page bytes: changes tens
 * of bytes apart) mix one- and two-byte zruns unpredictably, and almost
 * all their nzruns are 1 (97% at 64 scattered changed bytes). With the
 * nzrun taken to be 1 (a predicted branch checks it), a run is 3 stream
 * bytes, or 4 when its zrun's first byte has the top bit set. So the next
 * header's offset comes from a bit of a register holding the stream's top
 * bits rather than from a load of the header itself: the chain from one
 * run to the next is a shift, a mask and an add, and every load hangs off
 * it. Any other nzrun takes the slow side. */
static __attribute__((noinline)) int
validate_sparse(const uint8_t *src, size_t slen, uint8_t *page, size_t len,
		struct decode_table *tab, struct resume *res)
{
	uint64_t hw[SPARSE_WORDS + 1];
	size_t i = 0, d, zero = 0, ko = 0, kr = 0, lim = table_limit(slen);

	top_bits(src, slen, hw);
	/* The first run: its zrun may be 0. */
	d = get_uleb2(src, &i);
	for (;;) {
		if (!take_run(src, &i, &d, tab, &kr))
			return validate_from(src, slen, len, 0, 0);
		if (i + 4 > lim)
			break;
		{
			/* w holds the top bits from the header at p on. It is
			 * refilled every four runs (at most 16 bits), from a
			 * load at any byte of hw, so the loop has no exit at
			 * word boundaries to mispredict. */
			size_t p = i, plim = lim - 4, two = 0;

			for (;;) {
				uint64_t w;

				memcpy(&w, (const uint8_t *)hw + p / 8, sizeof(w));
				w >>= p % 8;
#pragma GCC unroll 4
				for (int u = 0; u < 4; u++) {
					size_t b0, b1, z;

					if (p > plim) {
						i = p;
						goto out;
					}
					two = w & 1;
					b0 = src[p];
					b1 = src[p + 1];
					/* (b0 & 0x7f) | b1 << 7 for a two-byte
					 * zrun, whose b0 has its top bit set; a
					 * multiply by two (0 or 1) selects
					 * without a branch. */
					z = b0 + ((b1 << 7) - 0x80) * two;
					zero |= z - 1;
					d += z;
					/* The apply pass writes here next:
					 * start the miss. */
					__builtin_prefetch(page + d, 1);
					if (__builtin_expect(src[p + 1 + two] != 1, 0))
						goto slow;
					tab->od[ko] = (uint16_t)d;
					tab->ob[ko++] = src[p + 2 + two];
					d += 1;
					p += 3 + two;
					w >>= 3 + two;
				}
			}
slow:
			i = p + 1 + two;
		}
	}
out:
	res->nruns = kr;
	res->nones = ko;
	return verdict(src, slen, len, res, i, d, zero);
}

/* Dense streams (at least one stream byte per 16 page bytes) have zruns
 * below 128 and nzruns of mixed small sizes: a branch on each length's
 * size is then well predicted and keeps the chain of header loads short.
 * Many short runs (the first one is short) touch every line of the page:
 * prefetch them all once rather than a line per run. A few long runs (a
 * changed stretch of the page) need none: their copies stream. */
static int validate_dense(const uint8_t *src, size_t slen, uint8_t *page,
			  size_t len, struct decode_table *tab, struct resume *res)
{
	size_t i = 0, d = 0, zero = 0, k = 0, lim = table_limit(slen), z, n;

	if (src[1 + (src[0] >> 7)] < 0x80)
		for (size_t o = 0; o < len; o += 64)
			__builtin_prefetch(page + o, 1);
	/* The first run: its zrun may be 0. Not take_run's loop, as the
	 * short and sparse loops use: with the zrun read after each run
	 * rather than before, this loop ran 20% slower at 512 changes. */
	d = get_uleb2(src, &i);
	n = get_uleb2(src, &i);
	if (n == 0)
		return validate_from(src, slen, len, 0, 0);
	goto have_first;
	while (i + 4 <= lim) {
		z = get_uleb2(src, &i);
		n = get_uleb2(src, &i);
		zero |= z - 1;
		d += z;
		if (n == 0)
			return validate_from(src, slen, len, 0, 0);
have_first:
		put_run(&tab->run[k++], d, i, n);
		d += n;
		i += n;
	}
	res->nruns = k;
	return verdict(src, slen, len, res, i, d, zero);
}

/* The whole stream's verdict, remembering runs in tab for the apply pass
 * (res says how many, and where the rest starts). */
static int validate(const uint8_t *src, size_t slen, uint8_t *page, size_t len,
		    struct decode_table *tab, struct resume *res)
{
	if (len > XBZRLE_MAX_LEN || slen < 4)
		return validate_from(src, slen, len, 0, 0);
	if (slen >= len / 16)
		return validate_dense(src, slen, page, len, tab, res);
	if (slen < SPARSE_SHORT)
		return validate_short(src, slen, page, len, tab, res);
	return validate_sparse(src, slen, page, len, tab, res);
}

int xbzrle_decode(const uint8_t *src, size_t slen, uint8_t *page, size_t len)
{
	struct decode_table tab;
	struct resume res = {0, 0, 0, 0};
	size_t i, d, n, k;
	int r;

	if (len > INT32_MAX)
		return XBZRLE_EINVAL;
	if (slen > len)
		return XBZRLE_ETOOLONG;
	/* The validation pass walks the stream as a chain of dependent
	 * loads: start every line's miss now rather than one at a time. */
	for (size_t o = 64; o < slen; o += 64)
		__builtin_prefetch(src + o);
	r = validate(src, slen, page, len, &tab, &res);
	if (r < 0)
		return r;
	/* Runs are disjoint, so the order they are applied in is free. */
	for (k = 0; k + 4 <= res.nones; k += 4) {
		page[tab.od[k]] = tab.ob[k];
		page[tab.od[k + 1]] = tab.ob[k + 1];
		page[tab.od[k + 2]] = tab.ob[k + 2];
		page[tab.od[k + 3]] = tab.ob[k + 3];
	}
	for (; k < res.nones; k++)
		page[tab.od[k]] = tab.ob[k];
	/* A few runs: copy them here. The path's copier (masked stores on
	 * AVX-512) pays only on dense streams, and a call through the path
	 * table costs more than a sparse page's whole apply. */
	if (res.nruns < XBZRLE_APPLY_PATH_RUNS)
		xbzrle_apply_generic(page, src, tab.run, res.nruns);
	else
		path()->apply(page, src, tab.run, res.nruns);
	/* The rest, parsed again. Valid: every length is in bounds, and each
	 * header has at least two readable bytes (a zrun is followed by an
	 * nzrun header, an nzrun header by at least one byte). */
	for (i = res.i, d = res.d; i < slen; i += n, d += n) {
		d += get_uleb2(src, &i);
		n = get_uleb2(src, &i);
		xbzrle_copy_run(page + d, src + i, n);
	}
	return r;
}

const char *xbzrle_strerror(int err)
{
	switch (err) {
	case XBZRLE_EOVERFLOW: return "stream would not fit the output buffer";
	case XBZRLE_EINVAL: return "invalid argument";
	case XBZRLE_ETRUNC: return "stream ends inside a length or a run";
	case XBZRLE_EULEB: return "length longer than two ULEB128 bytes";
	case XBZRLE_EZRUN: return "zero run of length 0 after the first run";
	case XBZRLE_ENZRUN: return "non-zero run of length 0";
	case XBZRLE_EPAGE: return "run goes past the end of the page";
	case XBZRLE_ETRAIL: return "stream ends with a zero run";
	case XBZRLE_ETOOLONG: return "stream longer than the page";
	case XBZRLE_ENOIMPL: return "implementation not available on this CPU";
	default: return err >= 0 ? "success" : "unknown error";
	}
}

/* ---- Scalar path -------------------------------------------------------- */

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* One bit per byte of a^b, set where the byte is non-zero, gathered into
 * the low 8 bits: the high bit of each byte of t is "byte non-zero"
 * without carries between bytes; the multiply packs bits 7, 15, ... 63
 * into bits 56..63 (no two partial products share a bit, so no carries). */
static inline uint64_t scalar_mask8(uint64_t x)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;
	uint64_t t = (((x & lo7) + lo7) | x) & ~lo7;

	return ((t >> 7) * 0x0102040810204080ull) >> 56;
}

static inline uint64_t scalar_mask(const uint8_t *a, const uint8_t *b)
{
	uint64_t m = 0;

	for (int w = 0; w < 8; w++)
		m |= scalar_mask8(load64(a + 8 * w) ^ load64(b + 8 * w)) << (8 * w);
	return m;
}

#define SCAN_NAME(x) scalar_##x
#define SCAN_ATTR
#define SCAN_MASK scalar_mask
#define SCAN_POPCNT xbzrle_popcount
#define SCAN_CTZ(x) __builtin_ctzll((x) | 1ull << 63)
#include "xbzrle_scan.h"

static bool scalar_is_zero(const uint8_t *p, size_t len)
{
	size_t i = 0;

	for (; i + 64 <= len; i += 64) {
		uint64_t x = 0;

		for (int w = 0; w < 8; w++)
			x |= load64(p + i + 8 * w);
		if (x)
			return false;
	}
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Function pointers need an out-of-line copy. */
static void apply_generic(uint8_t *page, const uint8_t *src,
			  const struct xbzrle_run16 *tab, size_t nruns)
{
	xbzrle_apply_generic(page, src, tab, nruns);
}

static const struct xbzrle_path path_scalar = {
	.impl = XBZRLE_IMPL_SCALAR, .name = "scalar",
	.encode = scalar_encode, .is_zero = scalar_is_zero,
	.apply = apply_generic,
};

/* ---- Run-time dispatch -------------------------------------------------- */

/* CPUID and XCR0 bits (Intel SDM vol. 2A, CPUID; vol. 1 13.3, XCR0). */
#define CPUID1_EDX_SSE2 (1u << 26)
#define CPUID1_ECX_POPCNT (1u << 23)
#define CPUID1_ECX_OSXSAVE (1u << 27)
#define CPUID1_ECX_AVX (1u << 28)
#define CPUID7_EBX_BMI1 (1u << 3)
#define CPUID7_EBX_AVX2 (1u << 5)
#define CPUID7_EBX_BMI2 (1u << 8)
#define CPUID7_EBX_AVX512F (1u << 16)
#define CPUID7_EBX_AVX512BW (1u << 30)
#define CPUID7_EBX_AVX512VL (1u << 31)
#define XCR0_SSE_AVX 0x06u       /* XMM and YMM state */
#define XCR0_AVX512 0xe0u        /* opmask, ZMM_Hi256, Hi16_ZMM */

/* Not the _xgetbv intrinsic: it needs target("xsave") on every caller. */
static uint64_t read_xcr0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* Bit i set iff XBZRLE_IMPL i can run: the CPU has the instructions and
 * the OS has enabled their register state in XCR0. */
static unsigned detect(void)
{
	unsigned a, b, c, d, ok = 1u << XBZRLE_IMPL_SCALAR, c1;
	uint64_t xcr0 = 0;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return ok;
	if (d & CPUID1_EDX_SSE2)
		ok |= 1u << XBZRLE_IMPL_SSE2;
	c1 = c;
	if (!(c & CPUID1_ECX_OSXSAVE) || !(c & CPUID1_ECX_AVX))
		return ok;
	xcr0 = read_xcr0();
	if ((xcr0 & XCR0_SSE_AVX) != XCR0_SSE_AVX)
		return ok;
	if (__get_cpuid_max(0, NULL) < 7)
		return ok;
	__cpuid_count(7, 0, a, b, c, d);
	/* The AVX2 and AVX-512BW paths also use POPCNT, TZCNT and BLSR. */
	if (!(c1 & CPUID1_ECX_POPCNT) || !(b & CPUID7_EBX_BMI1) || !(b & CPUID7_EBX_BMI2))
		return ok;
	if (b & CPUID7_EBX_AVX2)
		ok |= 1u << XBZRLE_IMPL_AVX2;
	/* The AVX-512BW path's run copier also uses 128-bit masked moves
	 * (AVX-512VL); every AVX-512BW CPU so far has them. */
	if ((b & CPUID7_EBX_AVX512F) && (b & CPUID7_EBX_AVX512BW) &&
	    (b & CPUID7_EBX_AVX512VL) &&
	    (xcr0 & XCR0_AVX512) == XCR0_AVX512)
		ok |= 1u << XBZRLE_IMPL_AVX512;
	return ok;
}

/* Both start zero (no constructor); filled on first use. A race between
 * two first callers is benign: both store the same values. */
static unsigned avail_mask;
static const struct xbzrle_path *cur_path;

static unsigned available(void)
{
	if (!avail_mask)
		avail_mask = detect();
	return avail_mask;
}

static const struct xbzrle_path *path_of(enum xbzrle_impl impl)
{
	switch (impl) {
	case XBZRLE_IMPL_SSE2: return &xbzrle_path_sse2;
	case XBZRLE_IMPL_AVX2: return &xbzrle_path_avx2;
	case XBZRLE_IMPL_AVX512: return &xbzrle_path_avx512;
	default: return &path_scalar;
	}
}

static const struct xbzrle_path *best_path(void)
{
	unsigned ok = available();

	for (int i = XBZRLE_IMPL_AVX512; i > XBZRLE_IMPL_SCALAR; i--)
		if (ok & (1u << i))
			return path_of((enum xbzrle_impl)i);
	return &path_scalar;
}

static inline const struct xbzrle_path *path(void)
{
	if (!cur_path)
		cur_path = best_path();
	return cur_path;
}

bool xbzrle_impl_available(enum xbzrle_impl impl)
{
	if (impl == XBZRLE_IMPL_AUTO)
		return true;
	if (impl <= XBZRLE_IMPL_AUTO || impl >= XBZRLE_IMPL_COUNT)
		return false;
	return available() & (1u << impl);
}

int xbzrle_set_impl(enum xbzrle_impl impl)
{
	if (impl < XBZRLE_IMPL_AUTO || impl >= XBZRLE_IMPL_COUNT)
		return XBZRLE_EINVAL;
	if (!xbzrle_impl_available(impl))
		return XBZRLE_ENOIMPL;
	cur_path = impl == XBZRLE_IMPL_AUTO ? best_path() : path_of(impl);
	return 0;
}

enum xbzrle_impl xbzrle_get_impl(void)
{
	return path()->impl;
}

const char *xbzrle_impl_name(enum xbzrle_impl impl)
{
	switch (impl) {
	case XBZRLE_IMPL_AUTO: return "auto";
	case XBZRLE_IMPL_SCALAR: return "scalar";
	case XBZRLE_IMPL_SSE2: return "sse2";
	case XBZRLE_IMPL_AVX2: return "avx2";
	case XBZRLE_IMPL_AVX512: return "avx512bw";
	default: return "unknown";
	}
}

/* ---- Entry points ------------------------------------------------------- */

int xbzrle_encode(const uint8_t *old_page, const uint8_t *new_page, size_t len,
		  uint8_t *dst, size_t dlen)
{
	if (len > XBZRLE_MAX_LEN)
		return XBZRLE_EINVAL;
	return path()->encode(old_page, new_page, len, dst, dlen);
}

bool xbzrle_is_zero(const uint8_t *page, size_t len)
{
	return path()->is_zero(page, len);
}
