/* stream_testlib.h: helpers shared by the stream unit tests, the fuzzer's
 * seed builder and the benchmark: a growable output sink, a sample migration
 * stream with known guest memory, and a replay loop (reader + apply) that
 * feeds a stream in chunks of chosen sizes. Header-only (static inline) so
 * each test stays one translation unit.
 */
#ifndef FERRY_STREAM_TESTLIB_H
#define FERRY_STREAM_TESTLIB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "stream.h"
#include "xbzrle.h"

/* ---- growable sink ---------------------------------------------------- */

struct tbuf {
	uint8_t *data;
	size_t len, cap;
};

static inline int tbuf_out(void *ctx, const void *buf, size_t len)
{
	struct tbuf *b = ctx;
	if (b->cap - b->len < len) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < len)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return 0;
}

static inline void tbuf_free(struct tbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ---- deterministic pseudo-random numbers ------------------------------ */

static inline uint64_t trand(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* ---- a sample migration stream ---------------------------------------- */

/* The migration id of every sample stream (HELLO, HELLO_ACK, control
 * records), and as the reader prints it. */
#define SAMPLE_MIG_ID		0x1d2c3b4a59687706ull
#define SAMPLE_MIG_ID_HEX	"1d2c3b4a59687706"

struct sample_opts {
	uint64_t pages;		/* guest pages, >= 8 */
	bool crc;		/* agree CRC32C */
	bool xbzrle;		/* agree XBZRLE and send a delta pass */
	bool saved;		/* saved-file form (HELLO_ACK in-stream) */
	uint64_t seed;
	bool verify_after;	/* agree STREAM_CAP_VERIFY_AFTER (live streams) */
	uint32_t regions_per_record;	/* REGION_DIGEST batches; 0 = all in one */
};

struct sample {
	struct tbuf s;		/* the stream */
	uint8_t *mem;		/* the source's final guest memory */
	uint64_t pages;
	size_t records;		/* records written after the header */
};

static inline struct stream_hello sample_hello(const struct sample_opts *o)
{
	struct stream_hello h = {
		.page_size = STREAM_PAGE_SIZE,
		.codecs = STREAM_CODEC_RAW | STREAM_CODEC_ZERO | STREAM_CODEC_XBZRLE,
		.guest_pages = o->pages,
		.caps = STREAM_CAP_KNOWN,
		.xbzrle_cache_bytes = 64 << 20,
		.digests = STREAM_DIGEST_XXH3_128,
		.mig_id = SAMPLE_MIG_ID,
	};
	strcpy(h.software, "ferry-test");
	return h;
}

static inline struct stream_hello_ack sample_ack(const struct sample_opts *o)
{
	struct stream_hello_ack a = {
		.status = STREAM_REFUSE_NONE,
		.codecs = STREAM_CODEC_RAW | STREAM_CODEC_ZERO |
			  (o->xbzrle ? STREAM_CODEC_XBZRLE : 0),
		.guest_pages = o->pages,
		.caps = STREAM_CAP_XSAVE | STREAM_CAP_ITER_STATS | (o->crc ? STREAM_CAP_CRC32C : 0) |
			(o->verify_after ? STREAM_CAP_VERIFY_AFTER : 0),
		.xbzrle_cache_bytes = o->xbzrle ? 64 << 20 : 0,
		.digest = STREAM_DIGEST_XXH3_128,
		.page_size = STREAM_PAGE_SIZE,
		.mig_id = SAMPLE_MIG_ID,
	};
	return a;
}

static inline struct stream_cpu_state sample_cpu(uint32_t vcpu)
{
	struct stream_cpu_state c;
	memset(&c, 0, sizeof(c));
	c.version = STREAM_CPU_STATE_V1;
	c.vcpu = vcpu;
	for (int i = 0; i < STREAM_NR_GPRS; i++)
		c.gpr[i] = 0x1000u * (i + 1) + vcpu;
	c.rip = 0xffffffff81000000ULL;
	c.rflags = 0x202;
	c.cr0 = 0x80050033;
	c.cr3 = 0x1000;
	c.cr4 = 0x6f0;
	c.efer = 0xd01;
	c.seg[STREAM_CS] = (struct stream_segment){ .selector = 0x10, .limit = 0xffffffff, .attr = 0xa09b };
	c.gdtr = (struct stream_dtable){ .limit = 0x7f, .base = 0x2000 };
	c.lstar = 0xffffffff81800000ULL;
	c.xcr0 = 7;
	return c;
}

/* Keep writing; remember the first failure. */
#define SAMPLE_W(rc_, call) do { int r_ = (call); if (r_ < 0 && (rc_) == 0) (rc_) = r_; } while (0)

/* stream_page_fn over a struct sample's memory (the source's). */
static inline uint8_t *sample_page(void *ctx, uint64_t pfn)
{
	struct sample *sm = ctx;
	return pfn < sm->pages ? sm->mem + pfn * STREAM_PAGE_SIZE : NULL;
}

/* REGION_DIGEST records covering all of sm's memory, per regions at a time
 * (0: all in one record). Returns 0 or the first writer error. */
static inline int sample_regions(struct stream_writer *w, struct sample *sm, uint32_t per)
{
	uint64_t n = stream_region_count(sm->pages);
	struct stream_region_hash *h = calloc(n, sizeof(*h));
	int rc = h ? 0 : -STREAM_E_NOMEM;

	for (uint64_t i = 0; rc == 0 && i < n; i++)
		rc = stream_region_hash(sample_page, sm, sm->pages, i, &h[i]);
	if (per == 0 || per > n)
		per = (uint32_t)n;
	for (uint64_t i = 0; rc == 0 && i < n; i += per)
		rc = stream_write_region_digest(w, i, n - i < per ? (uint32_t)(n - i) : per, h + i);
	free(h);
	return rc;
}

/* Build a stream: bulk pass (zero pages as ZERO_PAGES, the rest as
 * PAGE_DATA in batches of 3), ITER_END, a second pass changing a few bytes
 * in some pages (XBZRLE when agreed, else raw), ITER_END, CPU_STATE with a
 * small XSAVE area, DIGEST (not with verify_after), END; a saved file ends
 * there, a live stream goes on with GO and (verify_after) REGION_DIGEST
 * records of the source's memory. Returns 0 or the first writer error. */
static inline int sample_build(struct sample *sm, const struct sample_opts *o)
{
	struct stream_writer w;
	struct stream_hello h = sample_hello(o);
	struct stream_hello_ack a = sample_ack(o);
	struct stream_guest_info g = { .guest_pages = o->pages, .nr_vcpus = 2, .mode = STREAM_MODE_PTE };
	uint64_t seed = o->seed | 1;
	int rc = 0;

	memset(sm, 0, sizeof(*sm));
	sm->pages = o->pages;
	sm->mem = calloc(o->pages, STREAM_PAGE_SIZE);
	if (!sm->mem)
		return -STREAM_E_NOMEM;
	strcpy(g.workload, "sample");
	strcpy(g.name, "guest0");
	for (uint64_t p = 0; p < o->pages; p++)
		if (p % 4 != 0)
			for (size_t i = 0; i < STREAM_PAGE_SIZE; i += 8) {
				uint64_t v = trand(&seed);
				memcpy(sm->mem + p * STREAM_PAGE_SIZE + i, &v, 8);
			}

	stream_writer_init_fn(&w, tbuf_out, &sm->s);
	SAMPLE_W(rc, stream_write_header(&w, o->saved ? STREAM_HDR_F_SAVED : 0));
	SAMPLE_W(rc, stream_write_hello(&w, &h));
	if (o->saved)
		SAMPLE_W(rc, stream_write_hello_ack(&w, &a));
	else
		stream_writer_set_crc(&w, o->crc);
	SAMPLE_W(rc, stream_write_guest_info(&w, &g));

	/* bulk pass */
	uint64_t zero[STREAM_MAX_ZERO_BATCH], pf[3];
	const uint8_t *pg[3];
	uint32_t nz = 0, np = 0;
	for (uint64_t p = 0; p < o->pages; p++) {
		if (p % 4 == 0) {
			zero[nz++] = p;
			if (nz == STREAM_MAX_ZERO_BATCH) {
				SAMPLE_W(rc, stream_write_zero_pages(&w, nz, zero));
				nz = 0;
			}
			continue;
		}
		pf[np] = p;
		pg[np++] = sm->mem + p * STREAM_PAGE_SIZE;
		if (np == 3) {
			SAMPLE_W(rc, stream_write_pages(&w, np, pf, pg));
			np = 0;
		}
	}
	if (np)
		SAMPLE_W(rc, stream_write_pages(&w, np, pf, pg));
	if (nz)
		SAMPLE_W(rc, stream_write_zero_pages(&w, nz, zero));
	struct stream_iter_end it = { .iteration = 0, .pages_dirty = o->pages };
	SAMPLE_W(rc, stream_write_iter_end(&w, &it));

	/* second pass: pages 1, 2, 5 change a few bytes */
	static const uint64_t dirty[] = { 1, 2, 5 };
	struct stream_xbzrle_page xp[3];
	uint8_t enc[3][STREAM_PAGE_SIZE];
	for (int i = 0; i < 3; i++) {
		uint8_t *page = sm->mem + dirty[i] * STREAM_PAGE_SIZE;
		uint8_t old[STREAM_PAGE_SIZE];
		memcpy(old, page, sizeof(old));
		for (int k = 0; k < 5; k++)
			page[(trand(&seed) % STREAM_PAGE_SIZE)] ^= (uint8_t)(1 + k);
		pf[i] = dirty[i];
		pg[i] = page;
		int n = xbzrle_encode(old, page, STREAM_PAGE_SIZE, enc[i], STREAM_PAGE_SIZE);
		xp[i] = (struct stream_xbzrle_page){ .pfn = dirty[i], .len = n > 0 ? (uint32_t)n : 0,
						     .data = enc[i] };
	}
	if (o->xbzrle)
		SAMPLE_W(rc, stream_write_xbzrle_pages(&w, 3, xp));
	else
		SAMPLE_W(rc, stream_write_pages(&w, 3, pf, pg));
	it.iteration = 1;
	it.pages_dirty = 3;
	SAMPLE_W(rc, stream_write_iter_end(&w, &it));

	uint8_t xsave[576];
	for (size_t i = 0; i < sizeof(xsave); i++)
		xsave[i] = (uint8_t)i;
	for (uint32_t v = 0; v < 2; v++) {
		struct stream_cpu_state c = sample_cpu(v);
		SAMPLE_W(rc, stream_write_cpu_state(&w, &c, xsave, sizeof(xsave)));
	}
	if (!o->verify_after) {
		struct digest128 dg = digest_buf(sm->mem, o->pages * STREAM_PAGE_SIZE);
		struct stream_digest d = { .algo = STREAM_DIGEST_XXH3_128, .guest_pages = o->pages,
					   .low64 = dg.low64, .high64 = dg.high64 };
		SAMPLE_W(rc, stream_write_digest(&w, &d));
	}
	SAMPLE_W(rc, stream_write_end(&w));
	if (!o->saved) {
		SAMPLE_W(rc, stream_write_go(&w));
		if (o->verify_after)
			SAMPLE_W(rc, sample_regions(&w, sm, o->regions_per_record));
	}
	sm->records = w.records;
	return rc;
}

static inline void sample_free(struct sample *sm)
{
	tbuf_free(&sm->s);
	free(sm->mem);
}

/* ---- replay: reader + apply into a fresh memory image ----------------- */

#define REPLAY_MAX_RECORDS 4096

struct replay {
	int rc;			/* 0, or the first negative stream_err */
	char err[256];
	size_t nrec;
	uint32_t types[REPLAY_MAX_RECORDS];
	uint8_t *mem;
	uint64_t pages;
	struct stream_apply_stats stats;
	uint64_t regions_ok;	/* REGION_DIGEST hashes that matched the memory */
	const struct stream_hello_ack *live_ack;	/* non-NULL: live stream */
};

static inline uint8_t *replay_page(void *ctx, uint64_t pfn)
{
	struct replay *rp = ctx;
	return pfn < rp->pages ? rp->mem + pfn * STREAM_PAGE_SIZE : NULL;
}

/* A REGION_DIGEST record against the replayed memory, as a destination
 * that verifies after the switch-over compares. Returns 0 or
 * -STREAM_E_DIGEST with rp->err set. */
static inline int replay_regions(struct replay *rp, const struct stream_record *rec)
{
	struct stream_region_digest d;

	stream_rec_get(rec, &d, sizeof(d));
	for (uint32_t i = 0; i < d.count; i++) {
		struct stream_region_hash want, got;
		memcpy(&want, rec->body + sizeof(d) + i * sizeof(want), sizeof(want));
		if (stream_region_hash(replay_page, rp, rp->pages, d.first + i, &got) < 0 ||
		    got.low64 != want.low64 || got.high64 != want.high64) {
			snprintf(rp->err, sizeof(rp->err), "region %llu differs",
				 (unsigned long long)(d.first + i));
			return -STREAM_E_DIGEST;
		}
		rp->regions_ok++;
	}
	return 0;
}

/* Chunk sizes: 0 = everything at once, 1 = one byte at a time, else random
 * sizes 1..chunk from seed. A stream passes when its DIGEST matched or
 * REGION_DIGEST records covered and matched every region. */
static inline int replay_run(struct replay *rp, const uint8_t *d, size_t n, size_t chunk,
			     uint64_t seed)
{
	struct stream_reader *r = stream_reader_new(STREAM_DIR_MIGRATION);
	struct stream_apply *a = stream_apply_new(replay_page, NULL, rp);
	size_t pos = 0;
	int rc = 0;

	seed |= 1;
	while (rc == 0 && pos < n) {
		size_t len = chunk == 0 ? n - pos : chunk == 1 ? 1 : 1 + trand(&seed) % chunk;
		if (len > n - pos)
			len = n - pos;
		const uint8_t *p = d + pos;
		pos += len;
		while (len) {
			struct stream_record rec;
			size_t used;
			int k = stream_reader_feed(r, p, len, &used, &rec);
			p += used;
			len -= used;
			if (k < 0) {
				rc = k;
				snprintf(rp->err, sizeof(rp->err), "%s", stream_reader_error(r));
				break;
			}
			if (k == 0)
				break;
			if (rec.type == STREAM_HELLO) {
				struct stream_hello h;
				stream_rec_get(&rec, &h, sizeof(h));
				rp->pages = h.guest_pages;
				free(rp->mem);
				rp->mem = calloc(h.guest_pages, STREAM_PAGE_SIZE);
				/* A live destination answers HELLO, then reads on. */
				if (rp->live_ack)
					stream_reader_set_agreed(r, rp->live_ack);
			}
			if (rp->nrec < REPLAY_MAX_RECORDS)
				rp->types[rp->nrec] = rec.type;
			rp->nrec++;
			if ((k = stream_apply_record(a, &rec)) < 0) {
				rc = k;
				snprintf(rp->err, sizeof(rp->err), "%s", stream_apply_error(a));
				break;
			}
			if (rec.type == STREAM_REGION_DIGEST && (rc = replay_regions(rp, &rec)) < 0)
				break;
		}
	}
	if (rc == 0 && (rc = stream_reader_finish(r)) < 0)
		snprintf(rp->err, sizeof(rp->err), "%s", stream_reader_error(r));
	if (rc == 0 && !stream_apply_stats(a)->digest_ok &&
	    !(rp->regions_ok && rp->regions_ok == stream_region_count(rp->pages))) {
		rc = -STREAM_E_DIGEST;
		snprintf(rp->err, sizeof(rp->err), "no digest checked");
	}
	rp->stats = *stream_apply_stats(a);
	rp->rc = rc;
	stream_apply_free(a);
	stream_reader_free(r);
	return rc;
}

static inline void replay_free(struct replay *rp)
{
	free(rp->mem);
	rp->mem = NULL;
}

/* For the cmocka tests: fail with both values when want != got. */
#define EXPECT_INT(name, what, want, got)                                          \
	do {                                                                       \
		long long w_ = (long long)(want), g_ = (long long)(got);           \
		if (w_ != g_)                                                      \
			fail_msg("%s: %s: expected %lld, got %lld", (name), (what), \
				 w_, g_);                                          \
	} while (0)

/* Feed d to a reader of direction dir, all at once (chunk 0) or chunk
 * bytes at a time; a live migration stream (live_ack) gets the agreement
 * after its HELLO, as a destination gives it. Returns the first error, or
 * the finish result; msg gets the reader's message. */
static inline int feed_dir(const uint8_t *d, size_t n, size_t chunk, enum stream_dir dir,
		    const struct stream_hello_ack *live_ack, char *msg, size_t msglen, size_t *records)
{
	struct stream_reader *r = stream_reader_new(dir);
	size_t pos = 0, nrec = 0;
	int rc = 0;

	while (rc == 0 && pos < n) {
		size_t len = chunk && chunk < n - pos ? chunk : n - pos;
		const uint8_t *p = d + pos;
		pos += len;
		while (len) {
			struct stream_record rec;
			size_t used;
			int k = stream_reader_feed(r, p, len, &used, &rec);
			p += used;
			len -= used;
			if (k < 0) {
				rc = k;
				break;
			}
			if (k == 0)
				break;
			nrec++;
			if (rec.type == STREAM_HELLO && live_ack)
				stream_reader_set_agreed(r, live_ack);
		}
	}
	if (rc == 0)
		rc = stream_reader_finish(r);
	snprintf(msg, msglen, "%s", stream_reader_error(r));
	if (records)
		*records = nrec;
	stream_reader_free(r);
	return rc;
}

/* A saved (or bare) migration stream, all at once. */
static inline int feed_all(const uint8_t *d, size_t n, char *msg, size_t msglen, size_t *records)
{
	return feed_dir(d, n, 0, STREAM_DIR_MIGRATION, NULL, msg, msglen, records);
}

#endif /* FERRY_STREAM_TESTLIB_H */
