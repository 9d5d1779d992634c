/* xbzrle_priv.h: what codec/xbzrle.c and codec/xbzrle_simd.c share: the
 * table of SIMD paths and the small helpers every path's encoder uses. */
#ifndef FERRY_XBZRLE_PRIV_H
#define FERRY_XBZRLE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xbzrle.h"

/* One SIMD path: the encoder and zero check built for it. */
struct xbzrle_path {
	enum xbzrle_impl impl;
	const char *name;
	int (*encode)(const uint8_t *old, const uint8_t *new, size_t len,
		      uint8_t *dst, size_t dlen);
	bool (*is_zero)(const uint8_t *page, size_t len);
};

/* Defined in xbzrle_simd.c; the scalar path lives in xbzrle.c. Callers
 * must have checked the CPU (xbzrle_impl_available) first. */
extern const struct xbzrle_path xbzrle_path_sse2;
extern const struct xbzrle_path xbzrle_path_avx2;
extern const struct xbzrle_path xbzrle_path_avx512;

/* Diff mask of the n < 64 bytes of a partial last block. */
static inline uint64_t xbzrle_tail_mask(const uint8_t *a, const uint8_t *b,
					size_t n)
{
	uint64_t m = 0;

	for (size_t i = 0; i < n; i++)
		m |= (uint64_t)(a[i] != b[i]) << i;
	return m;
}

static inline size_t xbzrle_uleb_len(size_t v)
{
	return v < 128 ? 1 : 2;
}

/* Should a gap of `gap` unchanged bytes between a non-zero run of `a`
 * bytes (possibly already merged) and one of `b` bytes be copied into one
 * run? Split costs a zrun byte (gap < 128) and b's header; merged costs the
 * gap bytes and perhaps a longer header. Merge only if strictly shorter, so
 * that output equals QEMU's wherever it is not shorter. Each decision
 * makes the stream so far no longer than QEMU's maximal-run split. */
static inline bool xbzrle_merge_gap(size_t a, size_t gap, size_t b)
{
	if (gap > 2)
		return false;
	return gap + xbzrle_uleb_len(a + gap + b) <
	       xbzrle_uleb_len(a) + 1 + xbzrle_uleb_len(b);
}

static inline size_t xbzrle_put_uleb(uint8_t *p, size_t v)
{
	if (v < 128) {
		p[0] = (uint8_t)v;
		return 1;
	}
	p[0] = (uint8_t)(v | 0x80);
	p[1] = (uint8_t)(v >> 7);
	return 2;
}

/* Append zrun, then an nzrun of n bytes from src, at dst + d. src_room is
 * how many bytes may be read at src. Returns the new length, or SIZE_MAX
 * if it would pass dlen (nothing past dlen is written). */
static inline size_t xbzrle_put_runs(uint8_t *dst, size_t d, size_t dlen,
				     size_t zrun, const uint8_t *src, size_t n,
				     size_t src_room)
{
	size_t hdr = xbzrle_uleb_len(zrun) + xbzrle_uleb_len(n);

	if (dlen - d < hdr || dlen - d - hdr < n)
		return SIZE_MAX;
	d += xbzrle_put_uleb(dst + d, zrun);
	d += xbzrle_put_uleb(dst + d, n);
	/* Short runs dominate sparse pages: one fixed 16-byte move beats a
	 * memcpy call when both buffers have the room. */
	if (n <= 16 && src_room >= 16 && dlen - d >= 16)
		memcpy(dst + d, src, 16);
	else
		memcpy(dst + d, src, n);
	return d + n;
}

#endif /* FERRY_XBZRLE_PRIV_H */
