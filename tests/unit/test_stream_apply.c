/* test_stream_apply.c: applying records to guest memory. A bad record
 * changes nothing (XBZRLE decoded into scratch first, every page looked up
 * first); the digest catches wrong memory; CPU states reach their callback;
 * the failed state sticks; region hashes are XXH3-128 of their pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_testlib.h"

#define PAGES 16

struct guest {
	uint8_t *mem;
	uint64_t missing;	/* page the callback pretends is absent; ~0 none */
	int cpu_calls;
	struct stream_cpu_state cpu;
	uint8_t xsave[64];
	int cpu_ret;
};

static uint8_t *g_page(void *ctx, uint64_t pfn)
{
	struct guest *g = ctx;
	return pfn == g->missing ? NULL : g->mem + pfn * STREAM_PAGE_SIZE;
}

static int g_cpu(void *ctx, const struct stream_cpu_state *c, const uint8_t *xsave)
{
	struct guest *g = ctx;
	g->cpu_calls++;
	g->cpu = *c;
	memcpy(g->xsave, xsave, c->xsave_len < 64 ? c->xsave_len : 64);
	return g->cpu_ret;
}

static void guest_init(struct guest *g)
{
	memset(g, 0, sizeof(*g));
	g->mem = malloc(PAGES * STREAM_PAGE_SIZE);
	for (size_t i = 0; i < PAGES * STREAM_PAGE_SIZE; i++)
		g->mem[i] = (uint8_t)(i * 31 + 7);
	g->missing = ~0ull;
}

/* A record as the reader would hand it out. */
static struct stream_record mkrec(uint64_t index, uint32_t type, const struct tbuf *body)
{
	return (struct stream_record){ .index = index, .type = type,
				       .length = (uint32_t)body->len, .body = body->data };
}

static struct stream_apply *apply_with_hello(struct guest *g)
{
	struct stream_apply *a = stream_apply_new(g_page, g_cpu, g);
	struct sample_opts o = { .pages = PAGES };
	struct stream_hello h = sample_hello(&o);
	struct tbuf b = { 0 };

	tbuf_out(&b, &h, sizeof(h));
	struct stream_record rec = mkrec(0, STREAM_HELLO, &b);
	assert_int_equal(stream_apply_record(a, &rec), 0);
	tbuf_free(&b);
	return a;
}

static void xb_body(struct tbuf *b, uint32_t n, const uint64_t *pfn, const uint8_t *const *enc,
		    const uint32_t *len)
{
	struct stream_batch bh = { .count = n };
	static const uint8_t z[8];
	tbuf_out(b, &bh, sizeof(bh));
	for (uint32_t i = 0; i < n; i++) {
		struct stream_xbzrle_entry e = { .pfn = pfn[i], .enc_len = len[i] };
		tbuf_out(b, &e, sizeof(e));
		tbuf_out(b, enc[i], len[i]);
		tbuf_out(b, z, (8 - len[i] % 8) % 8);
	}
}

struct xb_case {
	const char *name;
	uint8_t bad[8];		/* encoding of the second entry */
	uint32_t bad_len;
	const char *msg;
};

/* Entry 0 is a valid delta for page 2; entry 1 for page 3 is broken in a
 * different way each time. Page 2 must not change. */
static void test_xbzrle_batch_all_or_nothing(void **state)
{
	(void)state;
	static const struct xb_case cases[] = {
		{ "run-past-page", { 0xff, 0x3f, 0x02, 1, 2 }, 5, NULL },
		{ "truncated-run", { 0x00, 0x05, 1, 2 }, 4, NULL },
		{ "trailing-zero-run", { 0x00, 0x01, 9, 0x05 }, 4, NULL },
		{ "zero-length-nzrun", { 0x00, 0x00 }, 2, NULL },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct guest g;
		guest_init(&g);
		struct stream_apply *a = apply_with_hello(&g);
		uint8_t *before = malloc(PAGES * STREAM_PAGE_SIZE);
		memcpy(before, g.mem, PAGES * STREAM_PAGE_SIZE);

		uint8_t newp[STREAM_PAGE_SIZE], enc[STREAM_PAGE_SIZE];
		memcpy(newp, g.mem + 2 * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE);
		newp[100] ^= 0xff;
		int n = xbzrle_encode(g.mem + 2 * STREAM_PAGE_SIZE, newp, STREAM_PAGE_SIZE, enc, sizeof(enc));
		assert_true(n > 0);
		uint64_t pfn[2] = { 2, 3 };
		const uint8_t *e[2] = { enc, cases[c].bad };
		uint32_t len[2] = { (uint32_t)n, cases[c].bad_len };
		struct tbuf b = { 0 };
		xb_body(&b, 2, pfn, e, len);
		struct stream_record rec = mkrec(17, STREAM_XBZRLE_PAGES, &b);
		int rc = stream_apply_record(a, &rec);
		if (rc != -STREAM_E_XBZRLE)
			fail_msg("%s: expected %s, got %s", cases[c].name,
				 stream_err_to_str(STREAM_E_XBZRLE), stream_err_to_str(rc));
		if (strncmp(stream_apply_error(a), "record 17 (XBZRLE_PAGES): page 3: ", 34) != 0)
			fail_msg("%s: message \"%s\"", cases[c].name, stream_apply_error(a));
		if (memcmp(before, g.mem, PAGES * STREAM_PAGE_SIZE) != 0)
			fail_msg("%s: guest memory changed by a rejected record", cases[c].name);

		/* The valid entry alone applies. */
		struct stream_apply *a2 = apply_with_hello(&g);
		struct tbuf b2 = { 0 };
		xb_body(&b2, 1, pfn, e, len);
		rec = mkrec(18, STREAM_XBZRLE_PAGES, &b2);
		assert_int_equal(stream_apply_record(a2, &rec), 0);
		assert_memory_equal(g.mem + 2 * STREAM_PAGE_SIZE, newp, STREAM_PAGE_SIZE);
		assert_int_equal(stream_apply_stats(a2)->pages_xbzrle, 1);

		stream_apply_free(a2);
		stream_apply_free(a);
		tbuf_free(&b);
		tbuf_free(&b2);
		free(before);
		free(g.mem);
	}
}

/* A page the callback cannot provide fails the batch before any write. */
static void test_missing_page_changes_nothing(void **state)
{
	(void)state;
	for (int zero = 0; zero < 2; zero++) {
		struct guest g;
		guest_init(&g);
		g.missing = 9;
		struct stream_apply *a = apply_with_hello(&g);
		uint8_t *before = malloc(PAGES * STREAM_PAGE_SIZE);
		memcpy(before, g.mem, PAGES * STREAM_PAGE_SIZE);
		uint64_t pfn[3] = { 1, 9, 12 };
		struct stream_batch bh = { .count = 3 };
		struct tbuf b = { 0 };
		static uint8_t page[STREAM_PAGE_SIZE];
		tbuf_out(&b, &bh, sizeof(bh));
		tbuf_out(&b, pfn, sizeof(pfn));
		if (!zero)
			for (int i = 0; i < 3; i++)
				tbuf_out(&b, page, sizeof(page));
		struct stream_record rec = mkrec(5, zero ? STREAM_ZERO_PAGES : STREAM_PAGE_DATA, &b);
		assert_int_equal(stream_apply_record(a, &rec), -STREAM_E_NOPAGE);
		assert_string_equal(stream_apply_error(a), zero ? "record 5 (ZERO_PAGES): page 9 not available"
								: "record 5 (PAGE_DATA): page 9 not available");
		assert_memory_equal(before, g.mem, PAGES * STREAM_PAGE_SIZE);
		/* sticky */
		assert_int_equal(stream_apply_record(a, &rec), -STREAM_E_NOPAGE);
		stream_apply_free(a);
		tbuf_free(&b);
		free(before);
		free(g.mem);
	}
}

static void test_digest_match_and_mismatch(void **state)
{
	(void)state;
	struct guest g;
	guest_init(&g);
	struct stream_digest d;
	assert_int_equal(stream_digest_memory(g_page, &g, PAGES, &d), 0);
	struct digest128 whole = digest_buf(g.mem, PAGES * STREAM_PAGE_SIZE);
	assert_true(d.low64 == whole.low64 && d.high64 == whole.high64);

	struct tbuf b = { 0 };
	tbuf_out(&b, &d, sizeof(d));
	struct stream_apply *a = apply_with_hello(&g);
	struct stream_record rec = mkrec(40, STREAM_DIGEST, &b);
	assert_int_equal(stream_apply_record(a, &rec), 0);
	assert_true(stream_apply_stats(a)->digest_ok);
	stream_apply_free(a);

	g.mem[5 * STREAM_PAGE_SIZE + 77] ^= 1;
	a = apply_with_hello(&g);
	assert_int_equal(stream_apply_record(a, &rec), -STREAM_E_DIGEST);
	assert_false(stream_apply_stats(a)->digest_ok);
	assert_true(strncmp(stream_apply_error(a), "record 40 (DIGEST): memory digest ", 34) == 0);
	stream_apply_free(a);
	tbuf_free(&b);
	free(g.mem);
}

/* A hash taken ahead (stream_apply_prehash, the destination's while the
 * source hashes) answers the DIGEST record only while no page changed;
 * the stepped digest is the one-shot one. */
static void test_prehash_kept_until_a_page_changes(void **state)
{
	(void)state;
	struct guest g;
	guest_init(&g);
	struct stream_digest d0, d1;
	assert_int_equal(stream_digest_memory(g_page, &g, PAGES, &d0), 0);

	struct stream_digest_steps st;
	struct stream_digest stepped;
	stream_digest_begin(&st, PAGES);
	int steps = 0, rc;
	while ((rc = stream_digest_step(&st, g_page, &g, 3, &stepped)) == 0)
		steps++;
	assert_int_equal(rc, 1);
	assert_int_equal(steps, PAGES / 3); /* 16 pages, 3 a step: 5 partial steps, the 6th ends */
	assert_memory_equal(&stepped, &d0, sizeof(d0));

	struct tbuf dig0 = { 0 };
	tbuf_out(&dig0, &d0, sizeof(d0));
	struct stream_record rdig0 = mkrec(50, STREAM_DIGEST, &dig0);
	struct stream_apply *a = apply_with_hello(&g);
	assert_int_equal(stream_apply_prehash(a), 0);
	assert_int_equal(stream_apply_stats(a)->digests, 1);
	assert_int_equal(stream_apply_record(a, &rdig0), 0);
	assert_true(stream_apply_stats(a)->digest_ok);
	assert_int_equal(stream_apply_stats(a)->digests, 1); /* the kept hash */
	stream_apply_free(a);

	/* A page written after the prehash: the DIGEST record hashes again,
	 * and the old memory's digest no longer matches. */
	struct stream_batch bh = { .count = 1 };
	uint64_t pfn = 3;
	struct tbuf zb = { 0 };
	tbuf_out(&zb, &bh, sizeof(bh));
	tbuf_out(&zb, &pfn, sizeof(pfn));
	struct stream_record rzero = mkrec(49, STREAM_ZERO_PAGES, &zb);
	a = apply_with_hello(&g);
	assert_int_equal(stream_apply_prehash(a), 0);
	assert_int_equal(stream_apply_record(a, &rzero), 0);
	assert_int_equal(stream_apply_record(a, &rdig0), -STREAM_E_DIGEST);
	assert_int_equal(stream_apply_stats(a)->digests, 2);
	stream_apply_free(a);
	assert_int_equal(stream_digest_memory(g_page, &g, PAGES, &d1), 0);
	struct tbuf dig1 = { 0 };
	tbuf_out(&dig1, &d1, sizeof(d1));
	struct stream_record rdig1 = mkrec(50, STREAM_DIGEST, &dig1);
	a = apply_with_hello(&g);
	assert_int_equal(stream_apply_prehash(a), 0);
	assert_int_equal(stream_apply_record(a, &rzero), 0);
	assert_int_equal(stream_apply_record(a, &rdig1), 0);
	assert_true(stream_apply_stats(a)->digest_ok);
	stream_apply_free(a);

	/* A page missing: the prehash fails, and the failure sticks. */
	g.missing = 7;
	a = apply_with_hello(&g);
	assert_int_equal(stream_apply_prehash(a), -STREAM_E_NOPAGE);
	assert_string_equal(stream_apply_error(a), "memory digest: a guest page is not available");
	assert_int_equal(stream_apply_record(a, &rdig1), -STREAM_E_NOPAGE);
	assert_false(stream_apply_stats(a)->digest_ok);
	stream_apply_free(a);
	stream_digest_begin(&st, PAGES);
	assert_int_equal(stream_digest_step(&st, g_page, &g, PAGES, &stepped), -STREAM_E_NOPAGE);
	tbuf_free(&dig0);
	tbuf_free(&dig1);
	tbuf_free(&zb);
	free(g.mem);
}

static void test_cpu_state_callback(void **state)
{
	(void)state;
	struct guest g;
	guest_init(&g);
	struct stream_cpu_state c = sample_cpu(0);
	uint8_t xs[64];
	for (int i = 0; i < 64; i++)
		xs[i] = (uint8_t)(200 - i);
	c.xsave_len = 64;
	struct tbuf b = { 0 };
	tbuf_out(&b, &c, sizeof(c));
	tbuf_out(&b, xs, sizeof(xs));
	struct stream_apply *a = apply_with_hello(&g);
	struct stream_record rec = mkrec(30, STREAM_CPU_STATE, &b);
	assert_int_equal(stream_apply_record(a, &rec), 0);
	assert_int_equal(g.cpu_calls, 1);
	assert_memory_equal(&g.cpu, &c, sizeof(c));
	assert_memory_equal(g.xsave, xs, sizeof(xs));
	stream_apply_free(a);

	g.cpu_ret = -1;
	a = apply_with_hello(&g);
	assert_int_equal(stream_apply_record(a, &rec), -STREAM_E_CPU);
	assert_string_equal(stream_apply_error(a), "record 30 (CPU_STATE): vcpu 0 state refused");
	stream_apply_free(a);
	tbuf_free(&b);
	free(g.mem);
}

/* stream_region_hash: XXH3-128 of a region's pages, the last region of a
 * guest short (not padded); the whole-memory digest of a one-region guest is
 * its region hash; no hash for a region beyond the guest, however far. */
struct rguest {
	uint8_t *mem;
	uint64_t pages, missing;
};

static uint8_t *rg_page(void *ctx, uint64_t pfn)
{
	struct rguest *g = ctx;
	return pfn < g->pages && pfn != g->missing ? g->mem + pfn * STREAM_PAGE_SIZE : NULL;
}

static void assert_hash(const char *what, struct stream_region_hash h, struct digest128 want)
{
	if (h.low64 != want.low64 || h.high64 != want.high64)
		fail_msg("%s: region hash %016llx%016llx, digest %016llx%016llx", what,
			 (unsigned long long)h.high64, (unsigned long long)h.low64,
			 (unsigned long long)want.high64, (unsigned long long)want.low64);
}

static void test_region_hash(void **state)
{
	(void)state;
	struct rguest g = { .pages = 600, .missing = ~0ull };	/* regions of 512 and 88 pages */
	struct stream_region_hash h0, h1, h;
	uint64_t seed = 77;

	assert_int_equal(stream_region_count(0), 0);
	assert_int_equal(stream_region_count(1), 1);
	assert_int_equal(stream_region_count(512), 1);
	assert_int_equal(stream_region_count(513), 2);
	assert_int_equal(stream_region_count(600), 2);
	assert_int_equal(stream_region_count(1ull << 32), 1ull << 23);

	g.mem = malloc(g.pages * STREAM_PAGE_SIZE);
	for (size_t i = 0; i < g.pages * STREAM_PAGE_SIZE; i += 8) {
		uint64_t v = trand(&seed);
		memcpy(g.mem + i, &v, 8);
	}
	assert_int_equal(stream_region_hash(rg_page, &g, g.pages, 0, &h0), 0);
	assert_hash("region 0", h0, digest_buf(g.mem, 512 * STREAM_PAGE_SIZE));
	assert_int_equal(stream_region_hash(rg_page, &g, g.pages, 1, &h1), 0);
	assert_hash("short region 1", h1, digest_buf(g.mem + 512 * STREAM_PAGE_SIZE, 88 * STREAM_PAGE_SIZE));
	/* The same through the streaming interface, a page at a time. */
	struct digest_state st;
	digest_init(&st);
	for (uint64_t p = 512; p < 600; p++)
		digest_update(&st, g.mem + p * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE);
	assert_hash("short region 1, page by page", h1, digest_final(&st));

	/* Not padded to 512 pages: zeros after the guest would change it. */
	uint8_t *padded = calloc(512, STREAM_PAGE_SIZE);
	memcpy(padded, g.mem + 512 * STREAM_PAGE_SIZE, 88 * STREAM_PAGE_SIZE);
	struct digest128 pad = digest_buf(padded, 512 * STREAM_PAGE_SIZE);
	assert_false(pad.low64 == h1.low64 && pad.high64 == h1.high64);
	free(padded);

	/* One region: the DIGEST record's value. */
	struct stream_digest d;
	assert_int_equal(stream_digest_memory(rg_page, &g, 300, &d), 0);
	assert_int_equal(stream_region_hash(rg_page, &g, 300, 0, &h), 0);
	assert_true(h.low64 == d.low64 && h.high64 == d.high64);

	/* Beyond the guest, also where region * 512 wraps to region 0. */
	assert_int_equal(stream_region_hash(rg_page, &g, g.pages, 2, &h), -STREAM_E_NOPAGE);
	assert_int_equal(stream_region_hash(rg_page, &g, g.pages, 1ull << 55, &h), -STREAM_E_NOPAGE);
	assert_int_equal(stream_region_hash(rg_page, &g, g.pages, ~0ull, &h), -STREAM_E_NOPAGE);
	/* A page the callback cannot give. */
	g.missing = 599;
	assert_int_equal(stream_region_hash(rg_page, &g, g.pages, 1, &h), -STREAM_E_NOPAGE);
	assert_int_equal(stream_region_hash(rg_page, &g, g.pages, 0, &h), 0);
	free(g.mem);
}

/* Names exist for every value a peer can send. */
static void test_names(void **state)
{
	(void)state;
	static const uint32_t types[] = { STREAM_HELLO, STREAM_HELLO_ACK, STREAM_GUEST_INFO,
		STREAM_PAGE_DATA, STREAM_ZERO_PAGES, STREAM_XBZRLE_PAGES, STREAM_CPU_STATE,
		STREAM_DIGEST, STREAM_END, STREAM_COMMIT, STREAM_NACK, STREAM_ERROR,
		STREAM_CANCEL, STREAM_DEVICE_STATE, STREAM_READY, STREAM_GO, STREAM_VERIFIED,
		STREAM_REGION_DIGEST, STREAM_ITER_END };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		assert_string_not_equal(stream_type_to_str(types[i]), "UNKNOWN");
	assert_string_equal(stream_type_to_str(0x1234), "UNKNOWN");
	assert_string_equal(stream_type_to_str(0x80001234), "UNKNOWN-OPTIONAL");
	for (int e = 0; e < STREAM_E_COUNT_; e++)
		assert_non_null(stream_err_to_str(-e));
	assert_string_equal(stream_err_to_str(-STREAM_E_CRC), "CRC32C mismatch");
	assert_string_equal(stream_err_to_str(999), "UNKNOWN");
	for (uint32_t v = 0; v <= STREAM_REFUSE_POLICY; v++)
		assert_string_not_equal(stream_refusal_to_str(v), "UNKNOWN");
	for (uint32_t v = 1; v <= STREAM_NACK_REGIONS; v++)
		assert_string_not_equal(stream_nack_to_str(v), "UNKNOWN");
	for (uint32_t v = 1; v <= STREAM_WERR_OPERATOR; v++)
		assert_string_not_equal(stream_wire_error_to_str(v), "UNKNOWN");
	for (uint32_t v = 0; v <= STREAM_MODE_PTE; v++)
		assert_string_not_equal(stream_mode_to_str(v), "UNKNOWN");
	for (int bit = 0; bit < 64; bit++)
		if (STREAM_CAP_KNOWN & (1ull << bit))
			assert_string_not_equal(stream_cap_to_str(1ull << bit), "UNKNOWN");
	assert_string_equal(stream_cap_to_str(STREAM_CAP_VERIFY_AFTER), "verify-after");
	for (int bit = 0; bit < 3; bit++)
		assert_string_not_equal(stream_codec_to_str(1u << bit), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xbzrle_batch_all_or_nothing),
		cmocka_unit_test(test_missing_page_changes_nothing),
		cmocka_unit_test(test_digest_match_and_mismatch),
		cmocka_unit_test(test_prehash_kept_until_a_page_changes),
		cmocka_unit_test(test_cpu_state_callback),
		cmocka_unit_test(test_region_hash),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests_name("stream_apply", tests, NULL, NULL);
}
