/* stream_apply.c: write a migration stream's records into guest memory
 * through a page callback. Every batch is checked whole before the first
 * guest byte changes: all pages must be reachable, and XBZRLE entries are
 * decoded into scratch pages first, so a bad record leaves memory as it was.
 * See stream.h for the contract.
 */
#include "stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "xbzrle.h"

struct stream_apply {
	stream_page_fn page;
	stream_cpu_fn cpu;
	stream_dev_fn dev;
	void *ctx;
	uint64_t guest_pages;		/* from HELLO; 0 before it */
	uint8_t *dst[STREAM_MAX_ZERO_BATCH];	/* resolved pages of one batch */
	uint8_t *scratch;		/* XBZRLE: decoded pages of one batch */
	size_t scratch_pages;
	struct stream_apply_stats stats;
	struct stream_digest prehash;	/* stream_apply_prehash's result ... */
	bool prehash_valid;		/* ... while no page was written since */
	int err;
	char msg[200];
};

__attribute__((format(printf, 4, 5)))
static int stream_afail(struct stream_apply *a, const struct stream_record *rec, int err,
			const char *fmt, ...);

static int stream_afail(struct stream_apply *a, const struct stream_record *rec, int err,
			const char *fmt, ...)
{
	if (!a->err) {
		int n = snprintf(a->msg, sizeof(a->msg), "record %llu (%s): ",
				 (unsigned long long)rec->index, stream_type_to_str(rec->type));
		va_list ap;
		va_start(ap, fmt);
		if (n > 0 && (size_t)n < sizeof(a->msg))
			vsnprintf(a->msg + n, sizeof(a->msg) - (size_t)n, fmt, ap);
		va_end(ap);
		a->err = err;
	}
	return -a->err;
}

struct stream_apply *stream_apply_new(stream_page_fn page, stream_cpu_fn cpu, void *ctx)
{
	struct stream_apply *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->page = page;
	a->cpu = cpu;
	a->ctx = ctx;
	return a;
}

void stream_apply_free(struct stream_apply *a)
{
	if (a) {
		free(a->scratch);
		free(a);
	}
}

const char *stream_apply_error(const struct stream_apply *a) { return a->msg; }
const struct stream_apply_stats *stream_apply_stats(const struct stream_apply *a) { return &a->stats; }

/* Look up every page of a batch before touching any. */
static int stream_resolve(struct stream_apply *a, const struct stream_record *rec,
			  uint32_t i, uint64_t pfn)
{
	if (pfn >= a->guest_pages)
		return stream_afail(a, rec, STREAM_E_RANGE, "page %llu beyond guest size %llu",
				    (unsigned long long)pfn, (unsigned long long)a->guest_pages);
	a->dst[i] = a->page(a->ctx, pfn);
	if (!a->dst[i])
		return stream_afail(a, rec, STREAM_E_NOPAGE, "page %llu not available",
				    (unsigned long long)pfn);
	return 0;
}

static int stream_apply_pages(struct stream_apply *a, const struct stream_record *rec, bool zero)
{
	uint32_t n = stream_rec_count(rec);
	int rc;

	for (uint32_t i = 0; i < n; i++)
		if ((rc = stream_resolve(a, rec, i, stream_rec_pfn(rec, i))) < 0)
			return rc;
	a->prehash_valid = false;
	for (uint32_t i = 0; i < n; i++) {
		if (zero)
			memset(a->dst[i], 0, STREAM_PAGE_SIZE);
		else
			memcpy(a->dst[i], stream_rec_page(rec, i), STREAM_PAGE_SIZE);
	}
	if (zero)
		a->stats.pages_zero += n;
	else
		a->stats.pages_raw += n;
	return 0;
}

static int stream_apply_xbzrle(struct stream_apply *a, const struct stream_record *rec)
{
	uint32_t n = stream_rec_count(rec);
	struct stream_xbzrle_page e;
	size_t off = 0;
	int rc;

	if (n > a->scratch_pages) {
		uint8_t *s = realloc(a->scratch, (size_t)n * STREAM_PAGE_SIZE);
		if (!s)
			return stream_afail(a, rec, STREAM_E_NOMEM, "no memory for %u scratch pages", n);
		a->scratch = s;
		a->scratch_pages = n;
	}
	/* Decode every entry into scratch, on top of a copy of the old page. */
	for (uint32_t i = 0; stream_rec_xbzrle_next(rec, &off, &e); i++) {
		uint8_t *s = a->scratch + (size_t)i * STREAM_PAGE_SIZE;
		if ((rc = stream_resolve(a, rec, i, e.pfn)) < 0)
			return rc;
		memcpy(s, a->dst[i], STREAM_PAGE_SIZE);
		int d = xbzrle_decode(e.data, e.len, s, STREAM_PAGE_SIZE);
		if (d < 0)
			return stream_afail(a, rec, STREAM_E_XBZRLE, "page %llu: %s",
					    (unsigned long long)e.pfn, xbzrle_strerror(d));
	}
	/* All decoded: commit. */
	a->prehash_valid = false;
	for (uint32_t i = 0; i < n; i++)
		memcpy(a->dst[i], a->scratch + (size_t)i * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE);
	a->stats.pages_xbzrle += n;
	return 0;
}

void stream_digest_begin(struct stream_digest_steps *d, uint64_t guest_pages)
{
	digest_init(&d->st);
	d->next = 0;
	d->guest_pages = guest_pages;
}

int stream_digest_step(struct stream_digest_steps *d, stream_page_fn page, void *ctx, uint64_t max_pages,
		       struct stream_digest *out)
{
	for (uint64_t end = d->next + max_pages; d->next < d->guest_pages && d->next < end; d->next++) {
		const uint8_t *p = page(ctx, d->next);
		if (!p)
			return -STREAM_E_NOPAGE;
		digest_update(&d->st, p, STREAM_PAGE_SIZE);
	}
	if (d->next < d->guest_pages)
		return 0;
	struct digest128 h = digest_final(&d->st);
	*out = (struct stream_digest){
		.algo = STREAM_DIGEST_XXH3_128, .guest_pages = d->guest_pages,
		.low64 = h.low64, .high64 = h.high64,
	};
	return 1;
}

int stream_digest_memory(stream_page_fn page, void *ctx, uint64_t guest_pages,
			 struct stream_digest *out)
{
	struct stream_digest_steps d;

	stream_digest_begin(&d, guest_pages);
	int rc = stream_digest_step(&d, page, ctx, guest_pages, out);
	return rc < 0 ? rc : 0;
}

int stream_region_hash(stream_page_fn page, void *ctx, uint64_t guest_pages, uint64_t region,
		       struct stream_region_hash *out)
{
	struct digest_state st;

	/* Compared as regions: region * STREAM_REGION_PAGES could wrap. */
	if (region >= stream_region_count(guest_pages))
		return -STREAM_E_NOPAGE;
	uint64_t first = region * STREAM_REGION_PAGES;
	uint64_t end = guest_pages - first < STREAM_REGION_PAGES ? guest_pages : first + STREAM_REGION_PAGES;
	digest_init(&st);
	for (uint64_t pfn = first; pfn < end; pfn++) {
		const uint8_t *p = page(ctx, pfn);
		if (!p)
			return -STREAM_E_NOPAGE;
		digest_update(&st, p, STREAM_PAGE_SIZE);
	}
	struct digest128 h = digest_final(&st);
	*out = (struct stream_region_hash){ .low64 = h.low64, .high64 = h.high64 };
	return 0;
}

/* The current memory's digest: the kept one when no page changed since. */
static int stream_apply_hash(struct stream_apply *a, struct stream_digest *out)
{
	if (a->prehash_valid) {
		*out = a->prehash;
		return 0;
	}
	a->stats.digests++;
	return stream_digest_memory(a->page, a->ctx, a->guest_pages, out);
}

int stream_apply_prehash(struct stream_apply *a)
{
	if (a->err)
		return -a->err;
	struct stream_digest d;
	if (stream_apply_hash(a, &d) < 0) {
		snprintf(a->msg, sizeof(a->msg), "memory digest: a guest page is not available");
		a->err = STREAM_E_NOPAGE;
		return -a->err;
	}
	a->prehash = d;
	a->prehash_valid = true;
	return 0;
}

static int stream_apply_digest(struct stream_apply *a, const struct stream_record *rec)
{
	struct stream_digest want, got;

	stream_rec_get(rec, &want, sizeof(want));
	if (want.guest_pages != a->guest_pages)
		return stream_afail(a, rec, STREAM_E_RANGE, "digest covers %llu pages, guest has %llu",
				    (unsigned long long)want.guest_pages,
				    (unsigned long long)a->guest_pages);
	if (stream_apply_hash(a, &got) < 0)
		return stream_afail(a, rec, STREAM_E_NOPAGE, "a guest page is not available");
	if (got.low64 != want.low64 || got.high64 != want.high64)
		return stream_afail(a, rec, STREAM_E_DIGEST,
				    "memory digest %016llx%016llx, stream says %016llx%016llx",
				    (unsigned long long)got.high64, (unsigned long long)got.low64,
				    (unsigned long long)want.high64, (unsigned long long)want.low64);
	a->stats.digest_ok = true;
	return 0;
}

static int stream_apply_cpu(struct stream_apply *a, const struct stream_record *rec)
{
	struct stream_cpu_state c;

	stream_rec_get(rec, &c, sizeof(c));
	if (a->cpu && a->cpu(a->ctx, &c, rec->body + sizeof(c)) < 0)
		return stream_afail(a, rec, STREAM_E_CPU, "vcpu %u state refused", c.vcpu);
	a->stats.cpu_states++;
	return 0;
}

void stream_apply_set_dev(struct stream_apply *a, stream_dev_fn dev)
{
	a->dev = dev;
}

static int stream_apply_dev(struct stream_apply *a, const struct stream_record *rec)
{
	struct stream_device_state d;

	stream_rec_get(rec, &d, sizeof(d));
	if (a->dev && a->dev(a->ctx, d.model, rec->body + sizeof(d), d.length) < 0)
		return stream_afail(a, rec, STREAM_E_CPU, "device state refused");
	a->stats.device_states++;
	return 0;
}

int stream_apply_record(struct stream_apply *a, const struct stream_record *rec)
{
	if (a->err)
		return -a->err;

	switch (rec->type) {
	case STREAM_HELLO: {
		struct stream_hello h;
		stream_rec_get(rec, &h, sizeof(h));
		a->guest_pages = h.guest_pages;
		return 0;
	}
	case STREAM_PAGE_DATA:
		return stream_apply_pages(a, rec, false);
	case STREAM_ZERO_PAGES:
		return stream_apply_pages(a, rec, true);
	case STREAM_XBZRLE_PAGES:
		return stream_apply_xbzrle(a, rec);
	case STREAM_ITER_END:
		a->stats.iterations++;
		return 0;
	case STREAM_CPU_STATE:
		return stream_apply_cpu(a, rec);
	case STREAM_DEVICE_STATE:
		return stream_apply_dev(a, rec);
	case STREAM_DIGEST:
		return stream_apply_digest(a, rec);
	}
	return 0;	/* nothing to write for the other types */
}
