/* fuzz_xbzrle_roundtrip.c: libFuzzer target for encode-then-decode.
 *
 * Input: byte 0 picks the page length (< 0x80: 4096; else 1..4065 as in
 * fuzz_xbzrle_decode), byte 1 the output room (< 0xc0: a full page, else
 * a tight dlen from byte 2), bytes 2..9 seed the old page (0: zeros), and
 * the rest is a list of patches (offset lo, offset hi, count, bytes...)
 * that make the new page. Checks: every available SIMD path gives the same
 * result and bytes; the stream is no longer than QEMU's maximal-run
 * stream; it decodes to the new page; nothing is written past dlen. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xbzrle.h"

/* Length of the stream QEMU's encoder would emit: maximal runs. */
static size_t qemu_len(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t z = 0, nz = 0;

		while (i < len && a[i] == b[i])
			i++, z++;
		if (i == len)
			break;
		while (i < len && a[i] != b[i])
			i++, nz++;
		n += (z < 128 ? 1 : 2) + (nz < 128 ? 1 : 2) + nz;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len, dlen, qlen, p = 10;
	uint8_t *old, *new, *out, *ref, *page;
	uint64_t seed = 0;
	int r0 = 0;

	if (size < 10)
		return 0;
	len = data[0] < 0x80 ? 4096 : (size_t)(data[0] - 0x80) * 32 + 1;
	dlen = data[1] < 0xc0 ? len : (size_t)data[2] * 17 % (len + 1);
	memcpy(&seed, data + 2, 8);
	old = malloc(len);
	new = malloc(len);
	page = malloc(len);
	ref = malloc(dlen + 1);
	out = malloc(dlen + 1); /* one canary byte */
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		old[i] = (uint8_t)(seed >> 56);
	}
	if (!memcmp(data + 2, "\0\0\0\0\0\0\0\0", 8))
		memset(old, 0, len);
	memcpy(new, old, len);
	while (p + 3 <= size) {
		size_t off = ((size_t)data[p] | (size_t)data[p + 1] << 8) % len;
		size_t n = data[p + 2];

		p += 3;
		for (size_t k = 0; k < n && p < size && off + k < len; k++)
			new[off + k] = data[p++];
	}
	qlen = qemu_len(old, new, len);

	for (int impl = XBZRLE_IMPL_SCALAR; impl < XBZRLE_IMPL_COUNT; impl++) {
		int r;

		if (xbzrle_set_impl((enum xbzrle_impl)impl) != 0)
			continue;
		out[dlen] = 0xa5;
		r = xbzrle_encode(old, new, len, out, dlen);
		if (out[dlen] != 0xa5)
			abort(); /* wrote past dlen */
		if (impl == XBZRLE_IMPL_SCALAR) {
			r0 = r;
			if (r > 0)
				memcpy(ref, out, (size_t)r);
		} else if (r != r0 || (r > 0 && memcmp(ref, out, (size_t)r))) {
			abort(); /* paths differ */
		}
	}
	xbzrle_set_impl(XBZRLE_IMPL_AUTO);
	if (r0 == 0 && memcmp(old, new, len))
		abort(); /* "identical" for different pages */
	if (r0 != 0 && !memcmp(old, new, len))
		abort();
	if (r0 > 0 && (size_t)r0 > qlen)
		abort(); /* longer than QEMU's */
	if (r0 == XBZRLE_EOVERFLOW && qlen <= dlen)
		abort(); /* QEMU's split would have fitted */
	if (r0 > 0 && (size_t)r0 <= len) {
		memcpy(page, old, len);
		if (xbzrle_decode(ref, (size_t)r0, page, len) < 0 ||
		    memcmp(page, new, len))
			abort(); /* round trip failed */
	}
	free(old);
	free(new);
	free(page);
	free(ref);
	free(out);
	return 0;
}
