/* fstream_dump.c: the file commands: dump (one line per record, then
 * totals), verify (replay into memory, check the digest) and extract (the
 * memory a saved stream describes). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fstream.h"

static void dump_mask(const char *label, uint64_t mask, const char *(*name)(uint64_t))
{
	printf(" %s ", label);
	bool first = true;
	for (int b = 0; b < 64; b++)
		if (mask & (1ull << b)) {
			const char *n = name(1ull << b);
			if (strcmp(n, "UNKNOWN") == 0)
				printf("%sbit%d", first ? "" : ",", b);
			else
				printf("%s%s", first ? "" : ",", n);
			first = false;
		}
	if (first)
		printf("none");
}

static const char *codec_name64(uint64_t c) { return stream_codec_to_str((uint32_t)c); }

static void dump_text(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n && s[i]; i++)
		putchar(s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?');
	putchar('"');
}

/* Bytes by type: a slot for each mandatory type, then ITER_END, then the rest. */
#define SLOT_ITER_END	(STREAM_REGION_DIGEST + 1)
#define SLOT_OTHER	(STREAM_REGION_DIGEST + 2)

struct totals {
	uint64_t records, raw, zero, xbzrle, xbzrle_bytes, iterations;
	uint64_t bytes_by_type[SLOT_OTHER + 1];
};

static unsigned type_slot(uint32_t t)
{
	if (t == STREAM_ITER_END)
		return SLOT_ITER_END;
	return t <= STREAM_REGION_DIGEST ? t : SLOT_OTHER;
}

static void dump_record(const struct stream_record *rec, bool crc, struct totals *t)
{
	printf("#%-5llu @%-10llu %-12s len %-8u", (unsigned long long)rec->index,
	       (unsigned long long)rec->offset, stream_type_to_str(rec->type), rec->length);
	t->records++;
	t->bytes_by_type[type_slot(rec->type)] += stream_record_size(rec->length, crc);

	switch (rec->type) {
	case STREAM_HELLO: {
		struct stream_hello h;
		stream_rec_get(rec, &h, sizeof(h));
		printf(" page_size %u guest_pages %llu", h.page_size, (unsigned long long)h.guest_pages);
		dump_mask("caps", h.caps, stream_cap_to_str);
		dump_mask("codecs", h.codecs, codec_name64);
		printf(" xbzrle_cache %llu digests 0x%x software ", (unsigned long long)h.xbzrle_cache_bytes,
		       h.digests);
		dump_text(h.software, sizeof(h.software));
		printf(" mig_id %016llx", (unsigned long long)h.mig_id);
		break;
	}
	case STREAM_HELLO_ACK: {
		struct stream_hello_ack a;
		stream_rec_get(rec, &a, sizeof(a));
		printf(" status %s guest_pages %llu", stream_refusal_to_str(a.status),
		       (unsigned long long)a.guest_pages);
		dump_mask("caps", a.caps, stream_cap_to_str);
		dump_mask("codecs", a.codecs, codec_name64);
		printf(" xbzrle_cache %llu digest 0x%x mig_id %016llx", (unsigned long long)a.xbzrle_cache_bytes,
		       a.digest, (unsigned long long)a.mig_id);
		if (a.status) {
			printf(" reason ");
			dump_text(a.reason, sizeof(a.reason));
		}
		break;
	}
	case STREAM_GUEST_INFO: {
		struct stream_guest_info g;
		stream_rec_get(rec, &g, sizeof(g));
		printf(" guest_pages %llu vcpus %u mode %s tsc_khz %llu workload ",
		       (unsigned long long)g.guest_pages, g.nr_vcpus, stream_mode_to_str(g.mode),
		       (unsigned long long)g.tsc_khz);
		dump_text(g.workload, sizeof(g.workload));
		printf(" name ");
		dump_text(g.name, sizeof(g.name));
		break;
	}
	case STREAM_PAGE_DATA:
	case STREAM_ZERO_PAGES: {
		uint32_t n = stream_rec_count(rec);
		printf(" count %u pfn %llu..%llu", n, (unsigned long long)stream_rec_pfn(rec, 0),
		       (unsigned long long)stream_rec_pfn(rec, n - 1));
		if (rec->type == STREAM_PAGE_DATA)
			t->raw += n;
		else
			t->zero += n;
		break;
	}
	case STREAM_XBZRLE_PAGES: {
		struct stream_xbzrle_page e;
		size_t off = 0;
		uint64_t first = 0, last = 0, bytes = 0;
		uint32_t n = 0;
		while (stream_rec_xbzrle_next(rec, &off, &e)) {
			if (n++ == 0)
				first = e.pfn;
			last = e.pfn;
			bytes += e.len;
		}
		printf(" count %u pfn %llu..%llu encoded %llu", n, (unsigned long long)first,
		       (unsigned long long)last, (unsigned long long)bytes);
		t->xbzrle += n;
		t->xbzrle_bytes += bytes;
		break;
	}
	case STREAM_ITER_END: {
		struct stream_iter_end it;
		stream_rec_get(rec, &it, sizeof(it));
		printf(" iteration %u dirty %llu raw %llu zero %llu xbzrle %llu skipped %llu"
		       " overflow %llu cache_miss %llu bytes %llu ns %llu",
		       it.iteration, (unsigned long long)it.pages_dirty, (unsigned long long)it.pages_raw,
		       (unsigned long long)it.pages_zero, (unsigned long long)it.pages_xbzrle,
		       (unsigned long long)it.pages_skipped, (unsigned long long)it.xbzrle_overflow,
		       (unsigned long long)it.xbzrle_cache_miss, (unsigned long long)it.bytes,
		       (unsigned long long)it.duration_ns);
		t->iterations++;
		break;
	}
	case STREAM_CPU_STATE: {
		struct stream_cpu_state c;
		stream_rec_get(rec, &c, sizeof(c));
		printf(" vcpu %u rip 0x%llx rsp 0x%llx rflags 0x%llx cr0 0x%llx cr3 0x%llx cr4 0x%llx"
		       " efer 0x%llx cs 0x%x xsave %u",
		       c.vcpu, (unsigned long long)c.rip, (unsigned long long)c.gpr[STREAM_RSP],
		       (unsigned long long)c.rflags, (unsigned long long)c.cr0,
		       (unsigned long long)c.cr3, (unsigned long long)c.cr4,
		       (unsigned long long)c.efer, c.seg[STREAM_CS].selector, c.xsave_len);
		break;
	}
	case STREAM_DEVICE_STATE: {
		struct stream_device_state d;
		stream_rec_get(rec, &d, sizeof(d));
		printf(" model %s state %u bytes", d.model == STREAM_PLATFORM_PC_V1 ? "pc-v1" : "?", d.length);
		break;
	}
	case STREAM_DIGEST: {
		struct stream_digest d;
		stream_rec_get(rec, &d, sizeof(d));
		printf(" xxh3-128 %016llx%016llx pages %llu", (unsigned long long)d.high64,
		       (unsigned long long)d.low64, (unsigned long long)d.guest_pages);
		break;
	}
	case STREAM_REGION_DIGEST: {
		struct stream_region_digest d;
		stream_rec_get(rec, &d, sizeof(d));
		printf(" xxh3-128 regions of %u pages first %llu count %u (regions %llu..%llu)", d.region_pages,
		       (unsigned long long)d.first, d.count, (unsigned long long)d.first,
		       (unsigned long long)(d.first + d.count - 1));
		break;
	}
	case STREAM_END:
	case STREAM_READY:
	case STREAM_GO:
	case STREAM_COMMIT:
	case STREAM_VERIFIED:
	case STREAM_CANCEL: {
		struct stream_ctl c;
		stream_rec_get(rec, &c, sizeof(c));
		printf(" mig_id %016llx", (unsigned long long)c.mig_id);
		break;
	}
	case STREAM_NACK:
	case STREAM_ERROR: {
		struct stream_reason why;
		uint32_t n;
		const char *s = stream_rec_text(rec, &n);
		stream_rec_get(rec, &why, sizeof(why));
		printf(" code %u (%s) mig_id %016llx text ", why.code, rec->type == STREAM_NACK ?
		       stream_nack_to_str(why.code) : stream_wire_error_to_str(why.code),
		       (unsigned long long)why.mig_id);
		dump_text(s, n);
		break;
	}
	}
	putchar('\n');
}

/* What a stream file holds. A saved file reads alone, and so does a reply
 * stream (its HELLO_ACK is inside). A captured live migration stream does
 * not: the agreement it follows went the other way. For one of those (no
 * SAVED flag, HELLO first) *live is set and *ack is the agreement to
 * assume: the HELLO's offer, with CRC trailers if the record after the
 * HELLO has a valid one, and VERIFY_AFTER if offered and no DIGEST comes.
 * Anything odd is left for the reader to report. */
static enum stream_dir dump_kind(int fd, bool *live, struct stream_hello_ack *ack)
{
	struct stream_hdr h;
	struct stream_rec_hdr rh;
	struct stream_hello hello;

	*live = false;
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h) || h.magic != STREAM_MAGIC ||
	    (h.flags & STREAM_HDR_F_SAVED) || h.hdr_len < sizeof(h) || h.hdr_len > STREAM_HDR_MAX_LEN ||
	    pread(fd, &rh, sizeof(rh), h.hdr_len) != sizeof(rh))
		return STREAM_DIR_MIGRATION;
	if (rh.type == STREAM_HELLO_ACK)
		return STREAM_DIR_REPLY;
	if (rh.type != STREAM_HELLO || rh.length != sizeof(hello) ||
	    pread(fd, &hello, sizeof(hello), h.hdr_len + sizeof(rh)) != sizeof(hello))
		return STREAM_DIR_MIGRATION;
	*live = true;
	*ack = (struct stream_hello_ack){
		.codecs = hello.codecs | STREAM_CODEC_RAW, .guest_pages = hello.guest_pages,
		.caps = hello.caps & ~STREAM_CAP_CRC32C, .xbzrle_cache_bytes = hello.xbzrle_cache_bytes,
		.digest = STREAM_DIGEST_XXH3_128, .page_size = STREAM_PAGE_SIZE, .mig_id = hello.mig_id,
	};

	off_t off = h.hdr_len + stream_record_size(rh.length, true);
	if (pread(fd, &rh, sizeof(rh), off) == sizeof(rh) && rh.length <= STREAM_MAX_BODY) {
		size_t n = stream_record_size(rh.length, false);
		uint8_t *rec = malloc(n + sizeof(struct stream_rec_crc));
		struct stream_rec_crc tr;
		if (rec && pread(fd, rec, n + sizeof(tr), off) == (ssize_t)(n + sizeof(tr))) {
			memcpy(&tr, rec + n, sizeof(tr));
			if (tr.crc32c == crc32c(0, rec, n) && !tr.reserved)
				ack->caps |= STREAM_CAP_CRC32C;
		}
		free(rec);
	}
	if (ack->caps & STREAM_CAP_VERIFY_AFTER) {
		bool crc = ack->caps & STREAM_CAP_CRC32C;
		while (pread(fd, &rh, sizeof(rh), off) == sizeof(rh) && rh.length <= STREAM_MAX_BODY) {
			if (rh.type == STREAM_DIGEST) {
				ack->caps &= ~STREAM_CAP_VERIFY_AFTER;
				break;
			}
			off += stream_record_size(rh.length, crc);
		}
	}
	return STREAM_DIR_MIGRATION;
}

int fstream_cmd_dump(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct fstream_input in;
	struct stream_record rec;
	struct stream_hello_ack live_ack;
	struct totals t;
	bool live;
	int k;

	if (fd < 0) {
		fstream_errmsg("%s: %s", path, strerror(errno));
		return FSTREAM_EXIT_STREAM;
	}
	memset(&t, 0, sizeof(t));
	enum stream_dir dir = dump_kind(fd, &live, &live_ack);
	if (fstream_input_open(&in, fd, path, false, dir) < 0) {
		fstream_input_close(&in);
		close(fd);
		return FSTREAM_EXIT_STREAM;
	}
	if (dir == STREAM_DIR_REPLY)
		printf("reply stream\n");
	if (live) {
		printf("live migration stream: the HELLO's offer taken as agreed,");
		dump_mask("caps", live_ack.caps, stream_cap_to_str);
		putchar('\n');
	}
	while ((k = fstream_input_next(&in, &rec)) == 1) {
		dump_record(&rec, stream_reader_crc(in.r) || rec.type == STREAM_HELLO ||
			    rec.type == STREAM_HELLO_ACK, &t);
		if (live && rec.type == STREAM_HELLO)
			stream_reader_set_agreed(in.r, &live_ack);
	}
	printf("totals: records %llu pages raw %llu zero %llu xbzrle %llu (encoded %llu bytes)"
	       " iterations %llu\n", (unsigned long long)t.records, (unsigned long long)t.raw,
	       (unsigned long long)t.zero, (unsigned long long)t.xbzrle,
	       (unsigned long long)t.xbzrle_bytes, (unsigned long long)t.iterations);
	printf("bytes by type:");
	for (uint32_t s = 1; s <= SLOT_OTHER; s++) {
		uint32_t type = s == SLOT_ITER_END ? STREAM_ITER_END : s;
		if (t.bytes_by_type[s])
			printf(" %s %llu", s == SLOT_OTHER ? "other" : stream_type_to_str(type),
			       (unsigned long long)t.bytes_by_type[s]);
	}
	putchar('\n');
	fstream_input_close(&in);
	close(fd);
	return k < 0 ? FSTREAM_EXIT_STREAM : 0;
}

/* ------------------------------------------------------------------------
 * verify / extract
 */

/* Replay a saved stream into im. Returns 0 when every record passed and
 * the digest matched. */
static int replay_file(const char *path, struct fstream_image *im, uint64_t *records)
{
	int fd = open(path, O_RDONLY);
	struct fstream_input in;
	struct stream_record rec;
	struct stream_apply *a = stream_apply_new(fstream_image_page, NULL, im);
	int k, rc = -1;

	*records = 0;
	if (fd < 0) {
		fstream_errmsg("%s: %s", path, strerror(errno));
		stream_apply_free(a);
		return -1;
	}
	if (fstream_input_open(&in, fd, path, false, STREAM_DIR_MIGRATION) < 0)
		goto out;
	if (!a) {
		fstream_errmsg("out of memory");
		goto out;
	}
	while ((k = fstream_input_next(&in, &rec)) == 1) {
		(*records)++;
		if (rec.type == STREAM_HELLO) {
			struct stream_hello h;
			stream_rec_get(&rec, &h, sizeof(h));
			if (fstream_image_alloc(im, h.guest_pages) < 0)
				goto out;
		}
		if (rec.type == STREAM_ERROR || rec.type == STREAM_CANCEL) {
			fstream_errmsg("%s: record %llu: the stream was abandoned (%s)", path,
			       (unsigned long long)rec.index, stream_type_to_str(rec.type));
			goto out;
		}
		if (stream_apply_record(a, &rec) < 0) {
			fstream_errmsg("%s: %s", path, stream_apply_error(a));
			goto out;
		}
	}
	if (k < 0)
		goto out;
	if (!(stream_reader_header(in.r)->flags & STREAM_HDR_F_SAVED)) {
		fstream_errmsg("%s: not a saved stream", path);
		goto out;
	}
	if (!stream_apply_stats(a)->digest_ok) {
		fstream_errmsg("%s: no digest was verified", path);
		goto out;
	}
	rc = 0;
out:
	stream_apply_free(a);
	fstream_input_close(&in);
	close(fd);
	return rc;
}

int fstream_cmd_verify(const char *path)
{
	struct fstream_image im = { 0 };
	uint64_t n;
	int rc = replay_file(path, &im, &n);

	if (rc == 0) {
		struct stream_digest d;
		stream_digest_memory(fstream_image_page, &im, im.pages, &d);
		printf("%s: OK: %llu records, %llu pages, digest %016llx%016llx matches\n", path,
		       (unsigned long long)n, (unsigned long long)im.pages,
		       (unsigned long long)d.high64, (unsigned long long)d.low64);
	}
	free(im.mem);
	return rc == 0 ? 0 : FSTREAM_EXIT_STREAM;
}

int fstream_cmd_extract(const char *path, const char *out)
{
	struct fstream_image im = { 0 };
	uint64_t n;
	int rc = replay_file(path, &im, &n);

	if (rc == 0)
		rc = fstream_write_file(out, im.mem, im.pages * STREAM_PAGE_SIZE);
	if (rc == 0)
		printf("%s: %llu pages written to %s\n", path, (unsigned long long)im.pages, out);
	free(im.mem);
	return rc == 0 ? 0 : FSTREAM_EXIT_STREAM;
}
