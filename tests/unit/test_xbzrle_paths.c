/* test_xbzrle_paths.c: every SIMD path against the scalar one on a million
 * random page pairs of varied change density: byte-identical output,
 * every stream decodes to the new page on every path, tight dlen gives -1 without
 * writing past it. Kept apart from test_xbzrle because it takes seconds.
 * XBZRLE_PAIRS in the environment overrides the count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_rng.h"
#include "xbzrle.h"

#define PAGE 4096
#define DEFAULT_PAIRS 1000000


static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t x = rng_next();

		memcpy(p + i, &x, 8);
	}
}

/* Flip byte i to a different value. */
static void flip(uint8_t *p, size_t i)
{
	p[i] ^= (uint8_t)(rng_next() % 255 + 1);
}

/* Shapes of change; pair i uses shape i % NSHAPES and a size from it. */
enum shape { SPARSE, CLUSTER, STRIPES, GAPPY, IDENTICAL, RANDOM, NSHAPES };
static const char *const shape_names[] = {"sparse", "cluster", "stripes",
					  "gappy", "identical", "random"};

static void make_pair(uint8_t *old, uint8_t *new, uint64_t i)
{
	static const unsigned sparse_k[] = {1, 2, 3, 4, 8, 16, 64, 256, 512, 1024, 2048};
	unsigned k;

	if (rng_next() % 4 == 0)
		memset(old, 0, PAGE);
	else
		fill_random(old, PAGE);
	memcpy(new, old, PAGE);
	switch ((enum shape)(i % NSHAPES)) {
	case SPARSE:
		k = sparse_k[rng_next() % (sizeof(sparse_k) / sizeof(sparse_k[0]))];
		for (unsigned j = 0; j < k; j++)
			flip(new, rng_next() % PAGE);
		break;
	case CLUSTER: { /* one or a few runs of 1..4096 bytes */
		unsigned runs = 1 + rng_next() % 3;

		for (unsigned r = 0; r < runs; r++) {
			size_t len = 1 + rng_next() % (rng_next() % 2 ? 64 : PAGE);
			size_t at = rng_next() % (PAGE - len + 1);

			for (size_t j = at; j < at + len; j++)
				flip(new, j);
		}
		break;
	}
	case STRIPES: { /* runs of n changed, z unchanged, repeating */
		size_t n = 1 + rng_next() % 200, z = 1 + rng_next() % 200;

		for (size_t j = rng_next() % 64; j < PAGE; j += n + z)
			for (size_t t = j; t < j + n && t < PAGE; t++)
				flip(new, t);
		break;
	}
	case GAPPY: /* 1- and 2-byte gaps around 127/128-byte runs: merge edges */
		for (size_t j = rng_next() % 8; j < PAGE;) {
			size_t n = rng_next() % 2 ? 120 + rng_next() % 16 : 1 + rng_next() % 4;

			for (size_t t = j; t < j + n && t < PAGE; t++)
				flip(new, t);
			j += n + 1 + rng_next() % 3;
		}
		break;
	case IDENTICAL:
		break;
	case RANDOM:
		fill_random(new, PAGE);
		break;
	case NSHAPES:
		break;
	}
}

static void test_paths_identical_output(void **state)
{
	static uint8_t old[PAGE], new[PAGE], page[PAGE];
	static uint8_t ref[PAGE + 64], out[PAGE + 64];
	const char *env = getenv("XBZRLE_PAIRS");
	uint64_t pairs = env ? strtoull(env, NULL, 0) : DEFAULT_PAIRS;
	uint64_t per_shape[NSHAPES] = {0}, shorter_dlen = 0;
	int impls[XBZRLE_IMPL_COUNT], nimpls = 0;

	(void)state;
	for (int i = XBZRLE_IMPL_SSE2; i < XBZRLE_IMPL_COUNT; i++)
		if (xbzrle_impl_available((enum xbzrle_impl)i))
			impls[nimpls++] = i;
	for (uint64_t i = 0; i < pairs; i++) {
		int r, want;

		make_pair(old, new, i);
		per_shape[i % NSHAPES]++;
		xbzrle_set_impl(XBZRLE_IMPL_SCALAR);
		want = xbzrle_encode(old, new, PAGE, ref, PAGE);
		if (want < XBZRLE_EOVERFLOW || want > PAGE)
			fail_msg("pair %llu (%s): scalar returned %d", (unsigned long long)i,
				 shape_names[i % NSHAPES], want);
		if (want == 0 && memcmp(old, new, PAGE))
			fail_msg("pair %llu (%s): 0 for different pages",
				 (unsigned long long)i, shape_names[i % NSHAPES]);
		if (want > 0) {
			memcpy(page, old, PAGE);
			r = xbzrle_decode(ref, (size_t)want, page, PAGE);
			if (r <= 0 || memcmp(page, new, PAGE))
				fail_msg("pair %llu (%s): round trip failed, decode %d",
					 (unsigned long long)i, shape_names[i % NSHAPES], r);
		}
		for (int k = 0; k < nimpls; k++) {
			xbzrle_set_impl((enum xbzrle_impl)impls[k]);
			r = xbzrle_encode(old, new, PAGE, out, PAGE);
			if (r != want || (r > 0 && memcmp(out, ref, (size_t)r)))
				fail_msg("pair %llu (%s): %s differs from scalar: "
					 "expected %d, got %d", (unsigned long long)i,
					 shape_names[i % NSHAPES],
					 xbzrle_impl_name((enum xbzrle_impl)impls[k]), want, r);
			/* Each path applies runs its own way: decode on it too. */
			if (want > 0) {
				memcpy(page, old, PAGE);
				r = xbzrle_decode(ref, (size_t)want, page, PAGE);
				if (r <= 0 || memcmp(page, new, PAGE))
					fail_msg("pair %llu (%s): %s decode failed: %d",
						 (unsigned long long)i, shape_names[i % NSHAPES],
						 xbzrle_impl_name((enum xbzrle_impl)impls[k]), r);
			}
		}
		/* Now and then: one byte short of room must overflow cleanly. */
		if (want > 0 && i % 16 == 0) {
			size_t dlen = (size_t)want - 1;

			for (int k = -1; k < nimpls; k++) {
				xbzrle_set_impl(k < 0 ? XBZRLE_IMPL_SCALAR
						      : (enum xbzrle_impl)impls[k]);
				memset(out, 0xa5, sizeof(out));
				r = xbzrle_encode(old, new, PAGE, out, dlen);
				if (r != XBZRLE_EOVERFLOW || out[dlen] != 0xa5)
					fail_msg("pair %llu: dlen %zu: expected -1 and no write "
						 "past dlen, got %d", (unsigned long long)i, dlen, r);
			}
			shorter_dlen++;
		}
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
	print_message("    %llu pairs on scalar", (unsigned long long)pairs);
	for (int k = 0; k < nimpls; k++)
		print_message(" + %s", xbzrle_impl_name((enum xbzrle_impl)impls[k]));
	print_message(" (");
	for (int s = 0; s < NSHAPES; s++)
		print_message("%s%s %llu", s ? ", " : "", shape_names[s],
			      (unsigned long long)per_shape[s]);
	print_message("), %llu tight-dlen checks\n", (unsigned long long)shorter_dlen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths_identical_output),
	};

	return cmocka_run_group_tests_name("xbzrle_paths", tests, NULL, NULL);
}
