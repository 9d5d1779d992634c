/* bench_stream.c: throughput of the stream reader, CRC32C and the memory
 * digest, each as a ratio to memcpy of the same number of bytes measured in
 * the same run (best of several repetitions, buffers pre-faulted), so the
 * numbers compare across machines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/stream_testlib.h"
#include "crc32c.h"
#include "digest.h"

#define GUEST_PAGES 16384u	/* 64 MiB guest */
#define REPS 7

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint64_t sink;

/* Best time of REPS runs of body, each run paired with a memcpy of the
 * baseline's bytes just before it, so both see the same machine load (the
 * memcpy best is kept in t_mc). */
static uint8_t *mc_dst, *mc_src;
static size_t mc_len;

#define BEST(secs, body)                                             \
	do {                                                         \
		secs = 1e30;                                         \
		t_mc = 1e30;                                         \
		for (int rep_ = 0; rep_ < REPS; rep_++) {            \
			double t0_ = now();                          \
			memcpy(mc_dst, mc_src, mc_len);              \
			sink += mc_dst[mc_len / 2];                  \
			double t1_ = now();                          \
			body;                                        \
			double t2_ = now();                          \
			if (t1_ - t0_ < t_mc)                        \
				t_mc = t1_ - t0_;                    \
			if (t2_ - t1_ < secs)                        \
				secs = t2_ - t1_;                    \
		}                                                    \
	} while (0)

static void report(const char *what, size_t bytes, double secs, double memcpy_secs)
{
	double mbs = (double)bytes / secs / 1e6;
	printf("%-44s %9.0f MB/s  %5.2fx memcpy\n", what, mbs, memcpy_secs / secs);
}

/* Build a stream of raw pages in full batches: the parser's worst case per
 * byte is the CRC and the copy, not the per-record work. */
static int build(struct tbuf *s, uint8_t *mem, bool crc)
{
	struct stream_writer w;
	struct sample_opts o = { .pages = GUEST_PAGES, .crc = crc, .saved = true };
	struct stream_hello h = sample_hello(&o);
	struct stream_hello_ack a = sample_ack(&o);
	struct stream_guest_info g = { .guest_pages = GUEST_PAGES, .nr_vcpus = 1 };
	uint64_t pf[STREAM_MAX_BATCH];
	const uint8_t *pg[STREAM_MAX_BATCH];
	int rc = 0;

	stream_writer_init_fn(&w, tbuf_out, s);
	rc |= stream_write_header(&w, STREAM_HDR_F_SAVED);
	rc |= stream_write_hello(&w, &h);
	rc |= stream_write_hello_ack(&w, &a);
	rc |= stream_write_guest_info(&w, &g);
	for (uint32_t p = 0; p < GUEST_PAGES; p += STREAM_MAX_BATCH) {
		for (uint32_t i = 0; i < STREAM_MAX_BATCH; i++) {
			pf[i] = p + i;
			pg[i] = mem + (size_t)(p + i) * STREAM_PAGE_SIZE;
		}
		rc |= stream_write_pages(&w, STREAM_MAX_BATCH, pf, pg);
	}
	struct digest128 d = digest_buf(mem, (size_t)GUEST_PAGES * STREAM_PAGE_SIZE);
	struct stream_digest dr = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = GUEST_PAGES,
				    .low64 = d.low64, .high64 = d.high64 };
	rc |= stream_write_digest(&w, &dr);
	rc |= stream_write_end(&w);
	return rc;
}

/* Parse (no apply) in chunks of `chunk` bytes; returns records or -1. */
static long parse(const struct tbuf *s, size_t chunk)
{
	struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
	long n = 0;

	for (size_t pos = 0; pos < s->len;) {
		size_t len = s->len - pos < chunk ? s->len - pos : chunk;
		const uint8_t *p = s->data + pos;
		pos += len;
		while (len) {
			struct stream_record rec;
			size_t used;
			int k = stream_reader_feed(r, p, len, &used, &rec);
			p += used;
			len -= used;
			if (k < 0) {
				fprintf(stderr, "bench: %s\n", stream_reader_error(r));
				stream_reader_free(r);
				return -1;
			}
			if (k == 0)
				break;
			n++;
		}
	}
	if (stream_reader_finish(r) < 0)
		n = -1;
	stream_reader_free(r);
	return n;
}

/* Parse and apply into a memory image, as a destination does. The image is
 * allocated and touched once outside the timing: first-touch page faults
 * are the host kernel's cost, not the stream's. */
static uint8_t *bench_image;

static uint8_t *bench_page(void *ctx, uint64_t pfn)
{
	(void)ctx;
	return pfn < GUEST_PAGES ? bench_image + pfn * STREAM_PAGE_SIZE : NULL;
}

static long parse_apply(const struct tbuf *s, size_t chunk)
{
	struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
	struct stream_apply *a = stream_apply_new(bench_page, NULL, NULL);
	long n = 0;

	for (size_t pos = 0; pos < s->len && n >= 0;) {
		size_t len = s->len - pos < chunk ? s->len - pos : chunk;
		const uint8_t *p = s->data + pos;
		pos += len;
		while (len) {
			struct stream_record rec;
			size_t used;
			int k = stream_reader_feed(r, p, len, &used, &rec);
			p += used;
			len -= used;
			if (k <= 0) {
				n = k < 0 ? -1 : n;
				break;
			}
			if (stream_apply_record(a, &rec) < 0) {
				fprintf(stderr, "bench: %s\n", stream_apply_error(a));
				n = -1;
				break;
			}
			n++;
		}
	}
	if (n >= 0 && !stream_apply_stats(a)->digest_ok)
		n = -1;
	stream_apply_free(a);
	stream_reader_free(r);
	return n;
}

int main(void)
{
	size_t mem_bytes = (size_t)GUEST_PAGES * STREAM_PAGE_SIZE;
	uint8_t *mem = malloc(mem_bytes);
	uint64_t seed = 42;
	struct tbuf s_crc = { 0 }, s_plain = { 0 };
	double t, t_mc, t_memcpy;

	if (!mem)
		return 1;
	for (size_t i = 0; i < mem_bytes; i += 8) {
		uint64_t v = trand(&seed);
		memcpy(mem + i, &v, 8);
	}
	if (build(&s_crc, mem, true) || build(&s_plain, mem, false)) {
		fprintf(stderr, "bench: building the stream failed\n");
		return 1;
	}
	size_t n = s_crc.len;
	uint8_t *dst = malloc(n);
	memset(dst, 1, n);

	printf("stream of %zu bytes (%u pages in batches of %u), CRC32C %s\n", n, GUEST_PAGES,
	       STREAM_MAX_BATCH, crc32c_hw_available() ? "SSE4.2" : "table");
	mc_dst = dst;
	mc_src = s_crc.data;
	mc_len = n;
	BEST(t_memcpy, memcpy(dst, s_crc.data, n); sink += dst[n / 2]);
	report("memcpy (baseline)", n, t_memcpy, t_mc);

	BEST(t, sink += (uint64_t)parse(&s_crc, n));
	report("parser, crc on, whole buffer (zero-copy)", n, t, t_mc);
	BEST(t, sink += (uint64_t)parse(&s_crc, 64 << 10));
	report("parser, crc on, 64 KiB chunks", n, t, t_mc);
	BEST(t, sink += (uint64_t)parse(&s_crc, 1460));
	report("parser, crc on, 1460-byte chunks (TCP MSS)", n, t, t_mc);
	/* (crc off and whole buffer: zero-copy, page bytes never touched, so
	 * only the per-record checks are measured; not comparable to memcpy.) */
	BEST(t, sink += (uint64_t)parse(&s_plain, 64 << 10));
	report("parser, crc off, 64 KiB chunks", s_plain.len, t, t_mc * (double)s_plain.len / (double)n);

	bench_image = malloc(mem_bytes);
	memset(bench_image, 0, mem_bytes);
	long recs = 0;
	BEST(t, recs = parse_apply(&s_crc, 64 << 10));
	if (recs < 0)
		fprintf(stderr, "bench: parse + apply failed\n");
	report("parser + apply + digest, crc on, 64 KiB", n, t, t_mc);
	free(bench_image);

	BEST(t, sink += crc32c(0, s_crc.data, n));
	report("crc32c (dispatch)", n, t, t_mc);
	BEST(t, sink += crc32c_sw(0, s_crc.data, n));
	report("crc32c (table, slicing-by-8)", n, t, t_mc);

	BEST(t, { struct digest128 d = digest_buf(s_crc.data, n); sink += d.low64; });
	report("digest XXH3-128, one shot", n, t, t_mc);
	BEST(t, {
		struct digest_state st;
		digest_init(&st);
		for (size_t off = 0; off + STREAM_PAGE_SIZE <= n; off += STREAM_PAGE_SIZE)
			digest_update(&st, s_crc.data + off, STREAM_PAGE_SIZE);
		sink += digest_final(&st).low64;
	});
	report("digest XXH3-128, page by page", n & ~(size_t)(STREAM_PAGE_SIZE - 1), t, t_mc);

	free(dst);
	free(mem);
	tbuf_free(&s_crc);
	tbuf_free(&s_plain);
	return 0;
}
