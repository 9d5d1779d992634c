/* test_xbzrle.c: XBZRLE against QEMU's own vectors (both directions), the
 * strict decoder's rejection rules, output-buffer bounds, and the zero
 * check, on every SIMD path this CPU has.
 *
 * The vectors file comes from $FERRY_VECTORS, default
 * tests/data/xbzrle_vectors.bin (run from the repository root; the file and
 * its layout: tests/data/README.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xbzrle.h"

#define PAGE 4096
#define DEFAULT_VECTORS "tests/data/xbzrle_vectors.bin"

/* Fail with the case's name and both values. */
#define EXPECT_INT(name, what, want, got)                                     \
	do {                                                                  \
		long long w_ = (want), g_ = (got);                            \
		if (w_ != g_)                                                 \
			fail_msg("%s: %s: expected %lld, got %lld", (name),   \
				 (what), w_, g_);                             \
	} while (0)
#define EXPECT_TRUE(name, what, cond)                                         \
	do {                                                                  \
		if (!(cond))                                                  \
			fail_msg("%s: %s: expected true: %s", (name), (what), \
				 #cond);                                      \
	} while (0)

struct vector {
	int kind; /* 0 encode case, 1 decode-only case */
	char name[256];
	uint8_t old[PAGE], new[PAGE];
	int32_t enc_scalar, enc_avx512, dec_ret;
	uint32_t stream_len, avx_len;
	uint8_t *stream, *avx_stream;
};

static struct vector *vecs;
static uint32_t nvecs;

static int read_exact(FILE *f, void *p, size_t n)
{
	return fread(p, 1, n, f) == n ? 0 : -1;
}

static int load_vectors(void **state)
{
	const char *path = getenv("FERRY_VECTORS");
	char magic[8];
	uint32_t page_size;
	FILE *f;

	(void)state;
	if (!path)
		path = DEFAULT_VECTORS;
	f = fopen(path, "rb");
	if (!f) {
		print_error("cannot open XBZRLE vectors '%s' (set FERRY_VECTORS)\n", path);
		return -1;
	}
	if (read_exact(f, magic, 8) || memcmp(magic, "XBZRLEV1", 8) ||
	    read_exact(f, &nvecs, 4) || read_exact(f, &page_size, 4) ||
	    page_size != PAGE || nvecs == 0 || nvecs > 1000)
		goto bad;
	vecs = calloc(nvecs, sizeof(*vecs));
	for (uint32_t i = 0; i < nvecs; i++) {
		struct vector *v = &vecs[i];
		uint8_t k, nl;

		if (read_exact(f, &k, 1) || read_exact(f, &nl, 1) ||
		    read_exact(f, v->name, nl) || read_exact(f, v->old, PAGE) ||
		    read_exact(f, v->new, PAGE) || read_exact(f, &v->enc_scalar, 4) ||
		    read_exact(f, &v->enc_avx512, 4) || read_exact(f, &v->dec_ret, 4) ||
		    read_exact(f, &v->stream_len, 4) || v->stream_len > 2 * PAGE)
			goto bad;
		v->kind = k;
		v->stream = malloc(v->stream_len + 1);
		if (read_exact(f, v->stream, v->stream_len) ||
		    read_exact(f, &v->avx_len, 4) || v->avx_len > 2 * PAGE)
			goto bad;
		v->avx_stream = malloc(v->avx_len + 1);
		if (read_exact(f, v->avx_stream, v->avx_len))
			goto bad;
	}
	fclose(f);
	return 0;
bad:
	print_error("malformed XBZRLE vectors file '%s'\n", path);
	fclose(f);
	return -1;
}

static int free_vectors(void **state)
{
	(void)state;
	for (uint32_t i = 0; i < nvecs; i++) {
		free(vecs[i].stream);
		free(vecs[i].avx_stream);
	}
	free(vecs);
	return 0;
}

/* Every implementation this CPU can run, then back to auto. */
static int impls[XBZRLE_IMPL_COUNT];
static int nimpls;

static void find_impls(void)
{
	nimpls = 0;
	for (int i = XBZRLE_IMPL_SCALAR; i < XBZRLE_IMPL_COUNT; i++)
		if (xbzrle_impl_available((enum xbzrle_impl)i))
			impls[nimpls++] = i;
}

static void use_impl(int impl)
{
	EXPECT_INT(xbzrle_impl_name((enum xbzrle_impl)impl), "set_impl", 0,
		   xbzrle_set_impl((enum xbzrle_impl)impl));
}

/* Decode src onto a copy of old; check return and resulting page. */
static void check_decode(const char *name, const struct vector *v,
			 const uint8_t *src, size_t slen, int want_ret)
{
	uint8_t page[PAGE];
	int r;

	memcpy(page, v->old, PAGE);
	r = xbzrle_decode(src, slen, page, PAGE);
	if (r < 0)
		fail_msg("%s: decode: expected %d, got error %d (%s)", name,
			 want_ret, r, xbzrle_strerror(r));
	if (want_ret >= 0)
		EXPECT_INT(name, "decode return", want_ret, r);
	EXPECT_TRUE(name, "decoded page equals QEMU's", !memcmp(page, v->new, PAGE));
}

/* QEMU's streams (scalar and AVX-512) decode to QEMU's page. */
static void test_vectors_decode_qemu_streams(void **state)
{
	int n = 0;

	(void)state;
	for (uint32_t i = 0; i < nvecs; i++) {
		const struct vector *v = &vecs[i];

		if (v->kind != 0)
			continue;
		if (v->enc_scalar > 0) {
			check_decode(v->name, v, v->stream, v->stream_len, v->dec_ret);
			n++;
		}
		if (v->enc_avx512 > 0) {
			check_decode(v->name, v, v->avx_stream, v->avx_len, -1);
			n++;
		}
	}
	EXPECT_TRUE("vectors", "some streams decoded", n > 60);
}

/* Our encoder on every path: same output everywhere, decodes to the new
 * page, never longer than QEMU's scalar or AVX-512 output. */
static void test_vectors_encode(void **state)
{
	static uint8_t ref[PAGE + 64], out[PAGE + 64];
	int shorter = 0;

	(void)state;
	find_impls();
	for (uint32_t i = 0; i < nvecs; i++) {
		const struct vector *v = &vecs[i];
		int ref_r = 0;

		if (v->kind != 0)
			continue;
		for (int k = 0; k < nimpls; k++) {
			char name[300];
			int r;

			snprintf(name, sizeof(name), "%s [%s]", v->name,
				 xbzrle_impl_name((enum xbzrle_impl)impls[k]));
			use_impl(impls[k]);
			memset(out, 0xa5, sizeof(out));
			r = xbzrle_encode(v->old, v->new, PAGE, out, PAGE);
			for (int g = PAGE; g < PAGE + 64; g++)
				EXPECT_INT(name, "canary past dlen", 0xa5, out[g]);
			if (v->enc_scalar == 0) {
				EXPECT_INT(name, "identical page", 0, r);
				continue;
			}
			if (v->enc_scalar > 0)
				EXPECT_TRUE(name, "no longer than QEMU scalar",
					    r > 0 && r <= v->enc_scalar);
			if (v->enc_avx512 > 0)
				EXPECT_TRUE(name, "no longer than QEMU AVX-512",
					    r > 0 && r <= v->enc_avx512);
			EXPECT_TRUE(name, "-1 or a stream within dlen",
				    r == XBZRLE_EOVERFLOW || (r > 0 && r <= PAGE));
			if (r > 0)
				check_decode(name, v, out, (size_t)r, -1);
			if (k == 0) {
				ref_r = r;
				memcpy(ref, out, PAGE);
			} else {
				EXPECT_INT(name, "same length as scalar", ref_r, r);
				if (r > 0)
					EXPECT_TRUE(name, "same bytes as scalar",
						    !memcmp(ref, out, (size_t)r));
			}
		}
		if (ref_r > 0 && (v->enc_scalar < 0 || ref_r < v->enc_scalar)) {
			print_message("    shorter than QEMU: %-28s ours %d, QEMU scalar %d, "
				      "AVX-512 %d\n", v->name, ref_r, v->enc_scalar,
				      v->enc_avx512);
			shorter++;
		}
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
	print_message("    %d vectors shorter than QEMU's output\n", shorter);
}

/* Exact-fit and one-short output buffers, and every dlen below the stream
 * length on the two AVX-512 overrun pages: never a byte past dlen. */
static void test_vectors_dlen_bounds(void **state)
{
	static uint8_t out[PAGE + 64];

	(void)state;
	find_impls();
	for (uint32_t i = 0; i < nvecs; i++) {
		const struct vector *v = &vecs[i];
		int full;

		if (v->kind != 0 || v->enc_scalar == 0)
			continue;
		for (int k = 0; k < nimpls; k++) {
			bool sweep = !strncmp(v->name, "avx512_overrun", 14) ||
				     !strncmp(v->name, "diverge", 7);

			use_impl(impls[k]);
			full = xbzrle_encode(v->old, v->new, PAGE, out, PAGE);
			if (full < 0)
				full = PAGE + 1;
			for (int dlen = 0; dlen <= PAGE; dlen++) {
				int r;

				if (!sweep && dlen != full && dlen != full - 1 && dlen > 3)
					continue;
				memset(out, 0xa5, sizeof(out));
				r = xbzrle_encode(v->old, v->new, PAGE, out, (size_t)dlen);
				for (int g = dlen; g < dlen + 64; g++)
					EXPECT_INT(v->name, "canary past dlen", 0xa5, out[g]);
				EXPECT_INT(v->name, "result at this dlen",
					   dlen >= full ? full : XBZRLE_EOVERFLOW, r);
			}
		}
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
}

/* Decode-only cases: QEMU's accepted streams give QEMU's page; rejected
 * ones (and the over-long stream QEMU accepts) fail with our precise code
 * and leave the page untouched. */
static const struct {
	const char *name;
	int want; /* expected return (>= 0 bytes covered, or error) */
} decode_cases[] = {
	{"dec_empty_stream", 0},
	{"dec_first_byte", 1},
	{"dec_lone_zrun", XBZRLE_ETRAIL},
	{"dec_zrun_then_nzrun0", XBZRLE_ENZRUN},
	{"dec_zrun0_truncated", XBZRLE_ENZRUN},
	{"dec_zero_zrun_in_middle", XBZRLE_EZRUN},
	{"dec_overlong_uleb_zero", 1},
	{"dec_overlong_uleb_one", 2},
	{"dec_3byte_uleb", XBZRLE_EULEB},
	{"dec_zrun_16383", XBZRLE_EPAGE},
	{"dec_zrun_4096_then_nz", XBZRLE_EPAGE},
	{"dec_nzrun_past_stream", XBZRLE_ETRUNC},
	{"dec_nzrun_past_page", XBZRLE_EPAGE},
	{"dec_last_byte", 4096},
	{"dec_trailing_zrun_1byte", XBZRLE_ETRAIL},
	{"dec_trailing_zrun_2bytes", XBZRLE_ENZRUN},
	{"dec_nzrun128_2byte_len", 128},
	{"dec_stream_4098_bytes", XBZRLE_ETOOLONG},
};

static void test_vectors_decode_cases(void **state)
{
	size_t ncases = sizeof(decode_cases) / sizeof(decode_cases[0]);
	size_t seen = 0;

	(void)state;
	for (uint32_t i = 0; i < nvecs; i++) {
		const struct vector *v = &vecs[i];
		uint8_t page[PAGE];
		size_t c;
		int r;

		if (v->kind != 1)
			continue;
		for (c = 0; c < ncases; c++)
			if (!strcmp(decode_cases[c].name, v->name))
				break;
		if (c == ncases)
			fail_msg("%s: decode-only vector missing from the table", v->name);
		seen++;
		memcpy(page, v->old, PAGE);
		r = xbzrle_decode(v->stream, v->stream_len, page, PAGE);
		if (r != decode_cases[c].want)
			fail_msg("%s: expected %d (%s), got %d (%s)", v->name,
				 decode_cases[c].want,
				 xbzrle_strerror(decode_cases[c].want), r,
				 xbzrle_strerror(r));
		if (r >= 0) {
			EXPECT_INT(v->name, "QEMU's return", v->dec_ret, r);
			EXPECT_TRUE(v->name, "page as QEMU left it", !memcmp(page, v->new, PAGE));
		} else {
			EXPECT_TRUE(v->name, "page untouched", !memcmp(page, v->old, PAGE));
		}
	}
	EXPECT_INT("decode cases", "vectors seen", ncases, seen);
}

/* Hand-made malformed streams beyond the vectors, and page lengths other
 * than 4096. */
static const struct {
	const char *name;
	const char *hex; /* stream */
	size_t len;      /* page length */
	int want;
} hand_cases[] = {
	{"uleb truncated at end", "0001aa80", 4096, XBZRLE_ETRUNC},
	{"nzrun uleb truncated", "0081", 4096, XBZRLE_ETRUNC},
	{"nzrun 3-byte uleb", "00808001", 4096, XBZRLE_EULEB},
	{"zrun exactly to page end then stream ends", "8020", 4096, XBZRLE_ETRAIL},
	{"run ends exactly at page end", "ff1f01aa", 4096, 4096},
	{"two runs", "0001aa0102bbcc", 8, 4},
	{"nzrun fills a page of 8", "0404aabbccdd", 8, 8},
	{"nzrun one past a page of 8", "0405aabbccddee", 8, XBZRLE_EPAGE},
	{"stream longer than a page of 4", "0004aabbccdd", 4, XBZRLE_ETOOLONG},
	{"zero-length page, empty stream", "", 0, 0},
	{"zero-length page, any stream", "00", 0, XBZRLE_ETOOLONG},
	{"non-canonical zero first zrun", "800001aa", 4096, 1},
	{"second zrun non-canonical zero", "0001aa800001bb", 4096, XBZRLE_EZRUN},
	{"nzrun zero non-canonical", "008000", 4096, XBZRLE_ENZRUN},
};

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned b;

		sscanf(hex, "%2x", &b);
		out[n++] = (uint8_t)b;
	}
	return n;
}

static void test_decode_hand_cases(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(hand_cases) / sizeof(hand_cases[0]); c++) {
		uint8_t src[64], page[PAGE], before[PAGE];
		size_t slen = unhex(hand_cases[c].hex, src);
		int r;

		for (int i = 0; i < PAGE; i++)
			before[i] = (uint8_t)(i * 7 + 3);
		memcpy(page, before, PAGE);
		r = xbzrle_decode(src, slen, page, hand_cases[c].len);
		if (r != hand_cases[c].want)
			fail_msg("%s: expected %d (%s), got %d (%s)", hand_cases[c].name,
				 hand_cases[c].want, xbzrle_strerror(hand_cases[c].want),
				 r, xbzrle_strerror(r));
		if (r < 0)
			EXPECT_TRUE(hand_cases[c].name, "page untouched",
				    !memcmp(page, before, PAGE));
	}
}

/* Streams with one fault planted at run k: the exact error, and the page
 * untouched, wherever the fault sits; or, with no fault, the exact page. */
enum plant { PLANT_NONE, PLANT_ZRUN0, PLANT_NZRUN0, PLANT_ULEB3, PLANT_PAGE, PLANT_TRAIL };

static const int plant_want[] = {0, XBZRLE_EZRUN, XBZRLE_ENZRUN, XBZRLE_EULEB,
				 XBZRLE_EPAGE, XBZRLE_ETRAIL};

/* Run r's zrun and nzrun lengths. NARROW and WIDE: zruns of 1 + r % 3 or
 * 130 + r % 3, nzruns of 1 + r % 5 (many runs of 16 KiB pages). SPARSE:
 * a 4 KiB page's sparse changes, mostly one-byte nzruns, a two-byte zrun
 * every fourth run, a longer nzrun now and then. */
enum shape { SHAPE_NARROW, SHAPE_WIDE, SHAPE_SPARSE };

static void shape_run(enum shape shape, size_t r, size_t *z, size_t *nz)
{
	if (shape == SHAPE_SPARSE) {
		*z = r % 4 == 1 ? 128 + r % 7 : 1 + r * 37 % 23;
		*nz = r % 11 == 5 ? 2 + r % 3 : 1;
	} else {
		*z = (shape == SHAPE_WIDE ? 130 : 1) + r % 3;
		*nz = 1 + r % 5;
	}
}

/* nruns runs of the shape with `plant` at run k; returns the stream length
 * (out has room). With no fault, *covered is the page bytes covered and
 * the runs are applied to ref. */
static size_t planted_stream(uint8_t *out, enum shape shape, size_t nruns,
			     size_t k, enum plant plant, size_t *covered, uint8_t *ref)
{
	size_t n = 0, d = 0, z, nz;

	for (size_t r = 0; r < nruns; r++) {
		shape_run(shape, r, &z, &nz);
		if (r == k && plant == PLANT_ZRUN0) {
			out[n++] = 0;
		} else if (r == k && plant == PLANT_ULEB3) {
			out[n++] = 0x81;
			out[n++] = 0x80;
			out[n++] = 0x01;
		} else if (r == k && plant == PLANT_PAGE) {
			out[n++] = 0xff; /* 16383: past any page here */
			out[n++] = 0x7f;
		} else {
			n += (size_t)xbzrle_uleb128_encode((uint32_t)z, out + n);
		}
		d += z;
		if (r == k && plant == PLANT_TRAIL)
			return n; /* ends with that zrun */
		if (r == k && plant == PLANT_NZRUN0) {
			out[n++] = 0;
			continue;
		}
		out[n++] = (uint8_t)nz;
		for (size_t j = 0; j < nz; j++)
			ref[d + j] = out[n++] = (uint8_t)(0xa0 + (d + j) % 61);
		d += nz;
	}
	*covered = d;
	return n;
}

/* Plant each fault at each run in ks (all runs if ks is NULL) of nruns-run
 * streams of the shape, decode over `before`, and check. */
static void check_planted(enum shape shape, size_t nruns, const size_t *ks,
			  size_t nks, size_t len)
{
	static uint8_t src[16384], page[16384], before[16384], ref[16384];

	for (size_t i = 0; i < len; i++)
		before[i] = (uint8_t)(i * 13 + 5);
	for (int p = PLANT_NONE; p <= PLANT_TRAIL; p++) {
		for (size_t c = 0; c < (ks ? nks : nruns); c++) {
			size_t k = ks ? ks[c] : c, covered = 0, slen;
			int r, w = plant_want[p];
			char name[112];

			/* The first zrun may be 0; with no fault, one case. */
			if ((p == PLANT_NONE && c > 0) || (p == PLANT_ZRUN0 && k == 0) ||
			    k >= nruns)
				continue;
			memcpy(ref, before, len);
			slen = planted_stream(src, shape, nruns, k, (enum plant)p, &covered, ref);
			if (p == PLANT_NONE)
				w = (int)covered;
			snprintf(name, sizeof(name), "%s: shape %d, %zu runs (%zu bytes), fault %d at run %zu",
				 xbzrle_impl_name(xbzrle_get_impl()), shape, nruns, slen, p, k);
			memcpy(page, before, len);
			r = xbzrle_decode(src, slen, page, len);
			EXPECT_INT(name, "decode", w, r);
			EXPECT_TRUE(name, r < 0 ? "page untouched" : "page as encoded",
				    !memcmp(page, r < 0 ? before : ref, len));
		}
	}
}

/* Streams of many runs: past the decoder's 512-run table (the rest is
 * parsed again), past its masked-copy threshold, with zruns of one and two
 * bytes (flat and branchy header reads). */
static void test_decode_long_streams(void **state)
{
	static const size_t ks[] = {0, 1, 127, 128, 300, 511, 512, 513, 699};

	(void)state;
	find_impls();
	for (int k_impl = 0; k_impl < nimpls; k_impl++) {
		use_impl(impls[k_impl]);
		/* Wide zruns: as many runs as fit the page. */
		check_planted(SHAPE_NARROW, 700, ks, sizeof(ks) / sizeof(ks[0]), 16383);
		check_planted(SHAPE_WIDE, 110, ks, sizeof(ks) / sizeof(ks[0]), 16383);
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
}

/* Every fault at every run of sparse-shaped streams whose lengths span the
 * decoder's short, sparse and dense loops (the sparse one takes runs four
 * at a time, so a fault must be caught at each place in a step and in the
 * tail). */
static void test_decode_sparse_every_run(void **state)
{
	static const size_t counts[] = {1, 2, 3, 17, 18, 25, 40, 41, 55, 70, 71, 90};

	(void)state;
	find_impls();
	for (int k_impl = 0; k_impl < nimpls; k_impl++) {
		use_impl(impls[k_impl]);
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
			check_planted(SHAPE_SPARSE, counts[c], NULL, 0, 4096);
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
}

/* Lengths other than 4096 (partial last blocks), argument limits. */
static void test_encode_odd_lengths(void **state)
{
	static uint8_t old[XBZRLE_MAX_LEN + 1], new[XBZRLE_MAX_LEN + 1];
	static uint8_t out[3 * XBZRLE_MAX_LEN], page[XBZRLE_MAX_LEN + 1];
	static const size_t lens[] = {0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 255,
				      256, 257, 1000, 4095, 4097, 8192, XBZRLE_MAX_LEN};
	uint64_t x = 88172645463325252ull;

	(void)state;
	find_impls();
	EXPECT_INT("len 16384", "encode", XBZRLE_EINVAL,
		   xbzrle_encode(old, new, XBZRLE_MAX_LEN + 1, out, sizeof(out)));
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		size_t len = lens[l];

		for (int trial = 0; trial < 40; trial++) {
			int ref = -99;

			for (size_t i = 0; i < len; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				old[i] = (uint8_t)x;
				new[i] = (x >> 8) % 16 < (uint64_t)trial % 17 ? (uint8_t)(x >> 16) : old[i];
			}
			for (int k = 0; k < nimpls; k++) {
				char name[80];
				int r;

				snprintf(name, sizeof(name), "len %zu trial %d [%s]", len,
					 trial, xbzrle_impl_name((enum xbzrle_impl)impls[k]));
				use_impl(impls[k]);
				r = xbzrle_encode(old, new, len, out, sizeof(out));
				if (k == 0)
					ref = r;
				EXPECT_INT(name, "same as scalar", ref, r);
				EXPECT_TRUE(name, "encodes", r >= 0);
				memcpy(page, old, len);
				if (r > 0 && (size_t)r <= len) {
					EXPECT_TRUE(name, "decode", xbzrle_decode(out, (size_t)r, page, len) > 0);
					EXPECT_TRUE(name, "round trip", !memcmp(page, new, len));
				}
				if (r == 0)
					EXPECT_TRUE(name, "identical", !memcmp(old, new, len));
			}
		}
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
}

/* The encoder's choices written out byte by byte from docs/xbzrle.md:
 * one-byte unchanged holes between changes filled, maximal runs of the
 * result, a two-byte gap merged when the run so far and the next are
 * both >= 128 bytes. Returns the stream length, 0 or -1 as the encoder. */
static int ref_encode(const uint8_t *old, const uint8_t *new, size_t len,
		      uint8_t *out, size_t dlen)
{
	static uint8_t ch[XBZRLE_MAX_LEN];
	size_t i = 0, d = 0, done = 0, ps = 0, pe = 0;
	int held = 0;

	for (size_t k = 0; k < len; k++)
		ch[k] = old[k] != new[k];
	for (size_t k = 1; k + 1 < len; k++)
		if (old[k] == new[k] && old[k - 1] != new[k - 1] && old[k + 1] != new[k + 1])
			ch[k] = 1;
	for (;;) {
		size_t s, e;

		while (i < len && !ch[i])
			i++;
		s = i;
		while (i < len && ch[i])
			i++;
		e = i;
		if (held && s < len && s - pe == 2 && pe - ps >= 128 && e - s >= 128) {
			pe = e;
			continue;
		}
		if (held) {
			size_t z = ps - done, n = pe - ps;
			uint8_t hdr[4];
			int h = xbzrle_uleb128_encode((uint32_t)z, hdr);

			h += xbzrle_uleb128_encode((uint32_t)n, hdr + h);
			if (dlen - d < (size_t)h + n)
				return -1;
			memcpy(out + d, hdr, (size_t)h);
			memcpy(out + d + h, new + ps, n);
			d += (size_t)h + n;
			done = pe;
		}
		if (s >= len)
			return (int)d;
		held = 1;
		ps = s;
		pe = e;
	}
}

/* Changes placed on and around 64-byte block edges, pages of many runs
 * (the encoder lists runs in batches of 256) with merges at every spot,
 * and random pairs: every path's bytes equal ref_encode's. */
static void test_encode_matches_reference(void **state)
{
	static uint8_t old[PAGE], new[PAGE], out[PAGE + 64], want[PAGE + 64];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	(void)state;
	find_impls();
	for (int c = 0; c < 3000; c++) {
		char name[96];
		size_t at = (size_t)(c % 200) * 64 % PAGE;
		int r;

		for (size_t i = 0; i < PAGE; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			old[i] = (uint8_t)x;
		}
		memcpy(new, old, PAGE);
		switch (c % 6) {
		case 0: /* one to four changes within 3 bytes of a block edge */
			for (int k = 0; k <= c % 4; k++)
				new[(at + 61 + (c / 7 + k * 3) % 7) % PAGE] ^= 0x5a;
			break;
		case 1: /* a run ending on a block edge, then an unchanged block */
			for (size_t k = (at + 64 - 1 - c % 70) % PAGE; k < at + 64 && k < PAGE; k++)
				new[k] ^= 1;
			break;
		case 2: /* a change, a hole, a change across an edge */
			new[(at + 63) % PAGE] ^= 1;
			new[(at + 65) % PAGE] ^= 1;
			break;
		case 3: /* 1 changed, g unchanged, over the page: many runs */
			for (size_t k = c % 3; k < PAGE; k += 2 + (size_t)(c / 6) % 3)
				new[k] ^= 0xff;
			break;
		case 4: /* long runs, two-byte gaps: merges, some across batches */
			for (size_t k = (size_t)c % 64, j = 0; k < PAGE; j++) {
				size_t l = 120 + (x >> (j % 50)) % 20;

				for (size_t t = k; t < k + l && t < PAGE; t++)
					new[t] ^= 0x81;
				k += l + 2 + (j % 3 == 0);
			}
			break;
		default: /* random density */
			for (size_t i = 0; i < PAGE; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				if (x % 64 < (uint64_t)(c % 23))
					new[i] ^= (uint8_t)(x >> 8 | 1);
			}
			break;
		}
		for (int k = 0; k < nimpls; k++) {
			size_t dlen = c % 5 == 4 ? (size_t)(x >> 20) % PAGE : PAGE;
			int w = ref_encode(old, new, PAGE, want, dlen);

			snprintf(name, sizeof(name), "case %d (shape %d) dlen %zu [%s]", c, c % 6,
				 dlen, xbzrle_impl_name((enum xbzrle_impl)impls[k]));
			use_impl(impls[k]);
			r = xbzrle_encode(old, new, PAGE, out, dlen);
			EXPECT_INT(name, "length as reference", w, r);
			if (r > 0)
				EXPECT_TRUE(name, "bytes as reference", !memcmp(out, want, (size_t)r));
		}
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
}

static void test_is_zero(void **state)
{
	static uint8_t buf[8192 + 64];

	(void)state;
	find_impls();
	for (int k = 0; k < nimpls; k++) {
		const char *name = xbzrle_impl_name((enum xbzrle_impl)impls[k]);

		use_impl(impls[k]);
		for (size_t len = 0; len <= 1100; len += (len < 300 ? 1 : 61)) {
			for (size_t off = 0; off < 3; off++) {
				memset(buf, 0, sizeof(buf));
				EXPECT_TRUE(name, "zero", xbzrle_is_zero(buf + off, len));
				for (size_t p = 0; p < len; p += (len < 200 ? 1 : 7)) {
					buf[off + p] = (uint8_t)(1u << (p % 8));
					EXPECT_TRUE(name, "non-zero", !xbzrle_is_zero(buf + off, len));
					buf[off + p] = 0;
				}
				/* A byte just past len must not count. */
				buf[off + len] = 1;
				EXPECT_TRUE(name, "zero, byte past len set",
					    xbzrle_is_zero(buf + off, len));
			}
		}
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
}

static void test_impl_selection(void **state)
{
	(void)state;
	EXPECT_TRUE("auto", "available", xbzrle_impl_available(XBZRLE_IMPL_AUTO));
	EXPECT_TRUE("scalar", "available", xbzrle_impl_available(XBZRLE_IMPL_SCALAR));
	EXPECT_INT("bogus", "set_impl", XBZRLE_EINVAL, xbzrle_set_impl((enum xbzrle_impl)99));
	EXPECT_INT("auto", "set_impl", 0, xbzrle_set_impl(XBZRLE_IMPL_AUTO));
	EXPECT_TRUE("auto", "resolves to a path", xbzrle_get_impl() != XBZRLE_IMPL_AUTO);
	for (int i = XBZRLE_IMPL_SCALAR; i < XBZRLE_IMPL_COUNT; i++) {
		int r = xbzrle_set_impl((enum xbzrle_impl)i);

		EXPECT_INT(xbzrle_impl_name((enum xbzrle_impl)i), "set_impl",
			   xbzrle_impl_available((enum xbzrle_impl)i) ? 0 : XBZRLE_ENOIMPL, r);
		if (r == 0)
			EXPECT_INT(xbzrle_impl_name((enum xbzrle_impl)i), "get_impl", i,
				   xbzrle_get_impl());
		print_message("    %-9s %s\n", xbzrle_impl_name((enum xbzrle_impl)i),
			      r == 0 ? "available" : "not on this CPU (skipped)");
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
	EXPECT_TRUE("strerror", "unknown", xbzrle_strerror(-1000) != NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_impl_selection),
		cmocka_unit_test(test_vectors_decode_qemu_streams),
		cmocka_unit_test(test_vectors_decode_cases),
		cmocka_unit_test(test_vectors_encode),
		cmocka_unit_test(test_vectors_dlen_bounds),
		cmocka_unit_test(test_decode_hand_cases),
		cmocka_unit_test(test_decode_long_streams),
		cmocka_unit_test(test_decode_sparse_every_run),
		cmocka_unit_test(test_encode_odd_lengths),
		cmocka_unit_test(test_encode_matches_reference),
		cmocka_unit_test(test_is_zero),
	};

	return cmocka_run_group_tests_name("xbzrle", tests, load_vectors, free_vectors);
}
