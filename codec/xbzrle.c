/* xbzrle.c: XBZRLE decoder, ULEB128 lengths, the portable scalar encoder
 * and the run-time choice of SIMD path. See include/xbzrle.h and
 * docs/xbzrle.md. */
#include <cpuid.h>
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

/* Read a length with at least two bytes readable at src + *i; sets *bad
 * if it has a third byte. Branches on the length's size on purpose: the
 * branch is predictable on real streams and lets the CPU run ahead to the
 * next header, where a branch-free form would chain every header's load
 * on the previous one. */
static inline size_t get_uleb2(const uint8_t *src, size_t *i, size_t *bad)
{
	size_t b0 = src[*i], b1;

	if (b0 < 0x80) {
		*i += 1;
		return b0;
	}
	b1 = src[*i + 1];
	*bad |= b1 >> 7;
	*i += 2;
	return (b0 & 0x7f) | b1 << 7;
}

/* A zrun and an nzrun header at src + *i, four or more bytes readable,
 * for streams whose zruns mix one and two bytes unpredictably (changes
 * tens of bytes apart): no branch on the zrun's size, and the nzrun's
 * first byte is picked from the two places it can be rather than loaded
 * from an address that waits on the zrun's first byte, so the chain from
 * one header to the next is one load, a select and two adds. The nzrun is
 * almost always one byte (runs are short). Sets *bad as get_uleb2 does. */
static inline size_t get_hdr(const uint8_t *src, size_t *i, size_t *z,
			     size_t *bad)
{
	size_t p = *i, b0 = src[p], b1 = src[p + 1], b2 = src[p + 2];
	size_t two = b0 >> 7, nb = two ? b2 : b1, n1;

	*z = (b0 & 0x7f) | ((b1 << 7) & (0 - two));
	*bad |= b1 >> 7 & two;
	p += 1 + two;
	if (__builtin_expect(nb < 0x80, 1)) {
		*i = p + 1;
		return nb;
	}
	n1 = src[p + 1];
	*bad |= n1 >> 7;
	*i = p + 2;
	return (nb & 0x7f) | n1 << 7;
}

/* Runs the validation pass remembers for the apply pass (pages up to 64
 * KiB), so that applying them is a loop of independent copies rather than
 * a second walk down the chain of headers, where each header's position
 * depends on a load of the one before. 512 runs (enough for a 4 KiB page
 * with 512 scattered changed bytes): 4 KiB of stack; runs
 * past them are parsed again. */
#define DECODE_TABLE 512

/* Where the apply pass picks up after the remembered runs. */
struct resume {
	size_t nruns, i, d;
};

/* The whole stream's verdict. The fast loop runs while four or more bytes
 * remain (so both headers can be read two bytes at a time) and checks each
 * run with a few accumulated flags and no branch: a zero length sets the
 * top bit of (z - 1) | (n - 1) (lengths are below 2^14), a third ULEB128
 * byte sets bit 0 of bad, and the page and stream bounds need only be
 * checked once at the end, because d and i only grow and the loop's own
 * condition keeps every header read inside the stream (nothing is written
 * before the verdict; a prefetch past the page cannot fault). The stream's
 * tail, and any stream the flags reject, go through validate_from, which
 * names the error. */
static inline __attribute__((always_inline)) int
validate_loop(const uint8_t *src, size_t slen, uint8_t *page, size_t len,
	      struct xbzrle_run16 *tab, struct resume *res, bool flat_z)
{
	size_t i = 0, d = 0, bad = 0, zero = 0, k = 0, z, n;
	size_t cap = len <= UINT16_MAX ? DECODE_TABLE : 0;

	if (slen >= 4) {
		/* The first run: its zrun may be 0. */
		z = get_uleb2(src, &i, &bad);
		n = get_uleb2(src, &i, &bad);
		zero |= n - 1;
		goto have_run;
	}
	while (i + 4 <= slen) {
		if (flat_z) {
			n = get_hdr(src, &i, &z, &bad);
		} else {
			z = get_uleb2(src, &i, &bad);
			n = get_uleb2(src, &i, &bad);
		}
		zero |= (z - 1) | (n - 1);
have_run:
		d += z;
		/* The apply pass writes here next: start the miss now
		 * (dense streams had the whole page prefetched). */
		if (flat_z)
			__builtin_prefetch(page + (d < len ? d : 0), 1);
		if (k < cap) {
			/* One 8-byte store, not three (x86: little-endian). */
			uint64_t e = d | i << 16 | (uint64_t)n << 32;

			memcpy(&tab[k++], &e, sizeof(e));
		}
		d += n;
		i += n;
	}
	if (bad | (zero >> 63) | (d > len) | (i > slen))
		return validate_from(src, slen, len, 0, 0);
	res->nruns = k;
	res->i = k ? (size_t)tab[k - 1].i + tab[k - 1].n : 0;
	res->d = k ? (size_t)tab[k - 1].d + tab[k - 1].n : 0;
	return validate_from(src, slen, len, i, d);
}

/* Dense streams (at least one stream byte per 16 page bytes: changes a few
 * tens of bytes apart) have zruns below 128 and a well-predicted branch on
 * their size, which keeps the chain of header loads short; sparser ones
 * mix one- and two-byte zruns, where the branch-free read wins. */
static int validate(const uint8_t *src, size_t slen, uint8_t *page, size_t len,
		    struct xbzrle_run16 *tab, struct resume *res)
{
	if (slen >= len / 16) {
		/* Many short runs (the first one is short) touch every line
		 * of the page: prefetch them all once rather than a line per
		 * run. A few long runs (a changed stretch of the page) need
		 * none: their copies stream. */
		if (slen >= 4 && src[1 + (src[0] >> 7)] < 0x80)
			for (size_t o = 0; o < len; o += 64)
				__builtin_prefetch(page + o, 1);
		return validate_loop(src, slen, page, len, tab, res, false);
	}
	return validate_loop(src, slen, page, len, tab, res, true);
}

int xbzrle_decode(const uint8_t *src, size_t slen, uint8_t *page, size_t len)
{
	struct xbzrle_run16 tab[DECODE_TABLE];
	struct resume res = {0, 0, 0};
	size_t i, d, n, unused = 0;
	int r;

	if (len > INT32_MAX)
		return XBZRLE_EINVAL;
	if (slen > len)
		return XBZRLE_ETOOLONG;
	/* The validation pass walks the stream as a chain of dependent
	 * loads: start every line's miss now rather than one at a time. */
	for (size_t o = 64; o < slen; o += 64)
		__builtin_prefetch(src + o);
	r = validate(src, slen, page, len, tab, &res);
	if (r < 0)
		return r;
	/* A few runs: copy them here. The path's copier (masked stores on
	 * AVX-512) pays only on dense streams, and a call through the path
	 * table costs more than a sparse page's whole apply. */
	if (res.nruns < XBZRLE_APPLY_PATH_RUNS)
		xbzrle_apply_generic(page, src, tab, res.nruns);
	else
		path()->apply(page, src, tab, res.nruns);
	/* The rest, parsed again. Valid: every length is in bounds, and each
	 * header has at least two readable bytes (a zrun is followed by an
	 * nzrun header, an nzrun header by at least one byte). */
	for (i = res.i, d = res.d; i < slen; i += n, d += n) {
		d += get_uleb2(src, &i, &unused);
		n = get_uleb2(src, &i, &unused);
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
	if ((b & CPUID7_EBX_AVX512F) && (b & CPUID7_EBX_AVX512BW) &&
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
