/* fuzz_stream_reader.c: libFuzzer target for the stream reader and apply.
 * The first input byte picks how the rest is fed (whole, one byte at a time,
 * or chunk sizes drawn from the input itself) and whether the reader plays
 * a live destination (agreement given after HELLO) or a reply stream; the
 * rest is the stream. Records that pass are applied to a small guest, so
 * XBZRLE decoding and the digest see hostile input too. Any crash,
 * sanitizer report, or a record handed out after the reader failed is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

#define FUZZ_MAX_GUEST_PAGES 256u	/* apply only to guests this small */

struct fuzz_guest {
	uint8_t *mem;
	uint64_t pages;
};

static uint8_t *fuzz_page(void *ctx, uint64_t pfn)
{
	struct fuzz_guest *g = ctx;
	return pfn < g->pages ? g->mem + pfn * STREAM_PAGE_SIZE : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;

	enum stream_dir dir = (mode & 0x10) ? STREAM_DIR_REPLY : STREAM_DIR_MIGRATION;
	bool live = (mode & 0x20) != 0;
	struct stream_reader *r = stream_reader_new(dir);
	struct fuzz_guest g = { 0 };
	struct stream_apply *a = stream_apply_new(fuzz_page, NULL, &g);
	size_t pos = 0, salt = mode;
	bool failed = false;

	while (pos < size && !failed) {
		size_t len;
		switch (mode & 3) {
		case 0: len = size - pos; break;
		case 1: len = 1; break;
		default: len = 1 + (data[(pos + salt++) % size] * (size_t)(mode >> 6 | 1)) % 97; break;
		}
		if (len > size - pos)
			len = size - pos;
		const uint8_t *p = data + pos;
		pos += len;
		while (len) {
			struct stream_record rec;
			size_t used;
			int k = stream_reader_feed(r, p, len, &used, &rec);
			if (used > len)
				abort();
			p += used;
			len -= used;
			if (k < 0) {
				failed = true;
				if (stream_reader_error(r)[0] == '\0')
					abort();	/* every error has a message */
				break;
			}
			if (k == 0)
				break;
			/* The record claims to be whole and inside what was fed. */
			if (rec.length > STREAM_MAX_BODY)
				abort();
			if (rec.length)
				(void)*(volatile const uint8_t *)(rec.body + rec.length - 1);
			if (rec.type == STREAM_HELLO) {
				struct stream_hello h;
				stream_rec_get(&rec, &h, sizeof(h));
				if (h.guest_pages <= FUZZ_MAX_GUEST_PAGES) {
					g.pages = h.guest_pages;
					g.mem = calloc(g.pages, STREAM_PAGE_SIZE);
				}
				if (live) {
					struct stream_hello_ack ack = {
						.codecs = h.codecs | STREAM_CODEC_RAW,
						.guest_pages = h.guest_pages, .caps = h.caps,
						.digest = STREAM_DIGEST_XXH3_128,
						.page_size = STREAM_PAGE_SIZE,
						.mig_id = h.mig_id,
					};
					stream_reader_set_agreed(r, &ack);
				}
			}
			if (g.mem)
				stream_apply_record(a, &rec);
		}
	}
	if (!failed)
		stream_reader_finish(r);
	stream_apply_free(a);
	stream_reader_free(r);
	free(g.mem);
	return 0;
}
