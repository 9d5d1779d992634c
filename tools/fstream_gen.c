/* fstream_gen.c: the gen command, a saved stream from a synthetic workload. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "fstream.h"
#include "xbzrle.h"

/* ------------------------------------------------------------------------
 * gen: a saved stream from a synthetic workload: the source's side of a
 * migration (bulk pass, then passes over pages a fake guest dirtied, each
 * page sent as ZERO, XBZRLE against what the destination holds, or raw),
 * without a network. For tests, fuzz seeds and demos.
 */

static uint64_t gen_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* Batches being filled for one pass. */
struct gen_batch {
	struct stream_writer *w;
	uint64_t raw_pfn[STREAM_MAX_BATCH];
	const uint8_t *raw_page[STREAM_MAX_BATCH];
	uint32_t nraw;
	uint64_t zero_pfn[STREAM_MAX_ZERO_BATCH];
	uint32_t nzero;
	struct stream_xbzrle_page xb[STREAM_MAX_BATCH];
	uint8_t *xb_buf;	/* STREAM_MAX_BATCH encodings of a page each */
	uint32_t nxb;
	int err;
};

static void gen_flush(struct gen_batch *b)
{
	int rc = 0;
	if (b->nraw)
		rc |= stream_write_pages(b->w, b->nraw, b->raw_pfn, b->raw_page);
	if (b->nzero)
		rc |= stream_write_zero_pages(b->w, b->nzero, b->zero_pfn);
	if (b->nxb)
		rc |= stream_write_xbzrle_pages(b->w, b->nxb, b->xb);
	if (rc)
		b->err = -1;
	b->nraw = b->nzero = b->nxb = 0;
}

int fstream_cmd_gen(const struct fstream_gen_opts *go)
{
	struct stream_writer w;
	struct fstream_output fo = { .fd = -1 };
	struct gen_batch *b = calloc(1, sizeof(*b));
	uint8_t *mem = calloc(go->pages, STREAM_PAGE_SIZE);
	uint8_t *sent = calloc(go->pages, STREAM_PAGE_SIZE);	/* what the destination holds */
	uint64_t seed = go->seed | 1;
	char part[PATH_MAX];
	int rc = FSTREAM_EXIT_STREAM;

	if (!b || !mem || !sent || !(b->xb_buf = malloc((size_t)STREAM_MAX_BATCH * STREAM_PAGE_SIZE))) {
		fstream_errmsg("gen: out of memory");
		goto out;
	}
	if (fstream_part_name(part, sizeof(part), go->out) < 0) {
		fstream_errmsg("gen: %s: %s", go->out, strerror(errno));
		goto out;
	}
	fo.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	fo.net = false;
	if (fo.fd < 0) {
		fstream_errmsg("gen: %s: %s", part, strerror(errno));
		goto out;
	}
	stream_writer_init_fn(&w, fstream_out_fd, &fo);
	b->w = &w;

	/* Memory: a quarter zero pages, the rest text-like bytes. */
	for (uint64_t p = 0; p < go->pages; p++)
		if (gen_rand(&seed) % 4)
			for (size_t i = 0; i < STREAM_PAGE_SIZE; i++)
				mem[p * STREAM_PAGE_SIZE + i] = (uint8_t)('a' + gen_rand(&seed) % 26);

	struct stream_hello h = {
		.page_size = STREAM_PAGE_SIZE, .guest_pages = go->pages,
		.codecs = STREAM_CODEC_RAW | STREAM_CODEC_ZERO | (go->no_xbzrle ? 0 : STREAM_CODEC_XBZRLE),
		.caps = STREAM_CAP_XSAVE | STREAM_CAP_ITER_STATS | (go->no_crc ? 0 : STREAM_CAP_CRC32C),
		.xbzrle_cache_bytes = go->no_xbzrle ? 0 : 64ull << 20,
		.digests = STREAM_DIGEST_XXH3_128,
		/* Any id but 0 (which means "none yet"); from the seed, so the
		 * same options make the same file. */
		.mig_id = (go->seed + 1) * 0x9e3779b97f4a7c15ull | 1,
	};
	snprintf(h.software, sizeof(h.software), "ferry-stream gen");
	struct stream_hello_ack a = {
		.codecs = h.codecs, .guest_pages = h.guest_pages, .caps = h.caps,
		.xbzrle_cache_bytes = h.xbzrle_cache_bytes, .digest = STREAM_DIGEST_XXH3_128,
		.page_size = STREAM_PAGE_SIZE, .mig_id = h.mig_id,
	};
	struct stream_guest_info g = { .guest_pages = go->pages, .nr_vcpus = 1, .mode = STREAM_MODE_PTE };
	snprintf(g.workload, sizeof(g.workload), "gen-sparse");
	snprintf(g.name, sizeof(g.name), "gen-%llu", (unsigned long long)go->seed);
	stream_write_header(&w, STREAM_HDR_F_SAVED);
	stream_write_hello(&w, &h);
	stream_write_hello_ack(&w, &a);
	stream_write_guest_info(&w, &g);

	for (unsigned it = 0; it <= go->iterations; it++) {
		struct stream_iter_end st = { .iteration = it };
		uint64_t bytes0 = w.bytes;
		if (it > 0) {	/* the guest runs: a tenth of the pages change */
			for (uint64_t p = 0; p < go->pages; p++) {
				if (gen_rand(&seed) % 10)
					continue;
				uint8_t *pg = mem + p * STREAM_PAGE_SIZE;
				switch (gen_rand(&seed) % 8) {
				case 0: memset(pg, 0, STREAM_PAGE_SIZE); break;		/* freed */
				case 1: for (size_t i = 0; i < STREAM_PAGE_SIZE; i++)	/* rewritten */
						pg[i] = (uint8_t)gen_rand(&seed);
					break;
				case 2: break;						/* same bytes */
				default: for (int k = 0; k < 4; k++)			/* a few bytes */
						pg[gen_rand(&seed) % STREAM_PAGE_SIZE] = (uint8_t)it;
				}
			}
		}
		for (uint64_t p = 0; p < go->pages; p++) {
			uint8_t *pg = mem + p * STREAM_PAGE_SIZE, *old = sent + p * STREAM_PAGE_SIZE;
			if (it > 0 && memcmp(pg, old, STREAM_PAGE_SIZE) == 0)
				continue;	/* clean (or dirty but unchanged) */
			st.pages_dirty++;
			if (xbzrle_is_zero(pg, STREAM_PAGE_SIZE)) {
				b->zero_pfn[b->nzero++] = p;
				st.pages_zero++;
			} else {
				int n = -1;
				uint8_t *enc = b->xb_buf + (size_t)b->nxb * STREAM_PAGE_SIZE;
				if (it > 0 && !go->no_xbzrle)
					n = xbzrle_encode(old, pg, STREAM_PAGE_SIZE, enc, STREAM_PAGE_SIZE);
				if (n > 0) {
					b->xb[b->nxb++] = (struct stream_xbzrle_page){ p, (uint32_t)n, enc };
					st.pages_xbzrle++;
				} else {
					if (it > 0 && !go->no_xbzrle)
						st.xbzrle_overflow++;
					b->raw_pfn[b->nraw] = p;
					b->raw_page[b->nraw++] = pg;
					st.pages_raw++;
				}
			}
			memcpy(old, pg, STREAM_PAGE_SIZE);
			if (b->nraw == STREAM_MAX_BATCH || b->nzero == STREAM_MAX_ZERO_BATCH ||
			    b->nxb == STREAM_MAX_BATCH)
				gen_flush(b);
		}
		gen_flush(b);
		st.bytes = w.bytes - bytes0;
		stream_write_iter_end(&w, &st);
	}

	struct stream_cpu_state c = { .version = STREAM_CPU_STATE_V1, .rip = 0x401000, .rflags = 0x202,
				      .cr0 = 0x80050033, .cr3 = 0x1000, .cr4 = 0x6a0, .efer = 0x500,
				      .xcr0 = 3 };
	c.gpr[STREAM_RSP] = 0x7ffff000;
	c.seg[STREAM_CS] = (struct stream_segment){ .selector = 0x23, .limit = 0xffffffff, .attr = 0xa0fb };
	uint8_t xsave[576] = { 0x7f, 0x03 };	/* default FCW */
	stream_write_cpu_state(&w, &c, xsave, sizeof(xsave));

	struct digest128 dg = digest_buf(mem, go->pages * STREAM_PAGE_SIZE);
	struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = go->pages,
				   .low64 = dg.low64 ^ (go->bad_digest ? 1 : 0), .high64 = dg.high64 };
	stream_write_digest(&w, &d);
	stream_write_end(&w);	/* a saved file ends here: GO is never stored */
	if (b->err || w.err || fsync(fo.fd) < 0 || close(fo.fd) < 0 || rename(part, go->out) < 0) {
		if (fo.why[0])
			fstream_errmsg("gen: %s: %s: %s", go->out, stream_writer_error(&w), fo.why);
		else
			fstream_errmsg("gen: %s: %s", go->out,
				       w.err || b->err ? stream_writer_error(&w) : strerror(errno));
		unlink(part);
		goto out;
	}
	printf("%s: %llu records, %llu bytes, %llu pages, %u iterations\n", go->out,
	       (unsigned long long)w.records, (unsigned long long)w.bytes,
	       (unsigned long long)go->pages, go->iterations);
	rc = 0;
out:
	if (b)
		free(b->xb_buf);
	free(b);
	free(mem);
	free(sent);
	return rc;
}
