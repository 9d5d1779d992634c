/* fuzz_xbzrle_decode.c: libFuzzer target for xbzrle_decode.
 *
 * Input: one byte choosing the page length (< 0x80: 4096; else
 * (b - 0x80) * 32 + 1, i.e. 1..4065), then the stream. Checks, against a
 * plain byte-at-a-time reference decoder written from the format rules:
 * the same verdict (covered bytes, or failure), the same page on success,
 * an untouched page on failure, and never a read or write out of bounds
 * (ASan; the page and stream are exact-size heap copies). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xbzrle.h"

/* Reference: decode into a scratch copy, all-or-nothing. Returns bytes
 * covered or -1. */
static int ref_decode(const uint8_t *s, size_t slen, uint8_t *page, size_t len)
{
	size_t i = 0, d = 0;
	int first = 1;

	if (slen > len)
		return -1;
	while (i < slen) {
		uint32_t v[2];

		for (int k = 0; k < 2; k++) {
			if (i >= slen)
				return -1;
			v[k] = s[i] & 0x7f;
			if (s[i++] & 0x80) {
				if (i >= slen || (s[i] & 0x80))
					return -1;
				v[k] |= (uint32_t)s[i++] << 7;
			}
		}
		if ((!first && v[0] == 0) || v[1] == 0)
			return -1;
		first = 0;
		d += v[0];
		if (d + v[1] > len || i + v[1] > slen)
			return -1;
		for (uint32_t k = 0; k < v[1]; k++)
			page[d++] = s[i++];
	}
	return (int)d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len, slen;
	uint8_t *page, *ref, *orig, *src;
	int r, want;

	if (size < 1)
		return 0;
	len = data[0] < 0x80 ? 4096 : (size_t)(data[0] - 0x80) * 32 + 1;
	slen = size - 1;
	src = malloc(slen ? slen : 1);
	memcpy(src, data + 1, slen);
	page = malloc(len);
	ref = malloc(len);
	orig = malloc(len);
	for (size_t i = 0; i < len; i++)
		orig[i] = (uint8_t)(i * 131 + 7);
	memcpy(page, orig, len);
	memcpy(ref, orig, len);

	r = xbzrle_decode(src, slen, page, len);
	want = ref_decode(src, slen, ref, len);
	if ((r < 0) != (want < 0) || (r >= 0 && r != want))
		abort(); /* verdicts differ */
	if (r >= 0 && memcmp(page, ref, len))
		abort(); /* pages differ */
	if (r < 0 && memcmp(page, orig, len))
		abort(); /* failed decode touched the page */
	if (r < 0 && !strcmp(xbzrle_strerror(r), "unknown error"))
		abort(); /* unnamed error code */
	free(src);
	free(page);
	free(ref);
	free(orig);
	return 0;
}
