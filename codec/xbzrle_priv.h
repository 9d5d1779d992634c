/* xbzrle_priv.h: what codec/xbzrle.c and codec/xbzrle_simd.c share: the
 * table of SIMD paths and the small helpers every path's encoder uses. */
#ifndef FERRY_XBZRLE_PRIV_H
#define FERRY_XBZRLE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xbzrle.h"

/* A run the decoder has validated: page offset, stream offset of its
 * bytes, length (pages up to 64 KiB); pad makes an entry one 8-byte
 * store. */
struct xbzrle_run16 {
	uint16_t d, i, n, pad;
};
_Static_assert(sizeof(struct xbzrle_run16) == 8, "run table entry is 8 bytes");

/* One SIMD path: the encoder, zero check and run copier built for it. */
struct xbzrle_path {
	enum xbzrle_impl impl;
	const char *name;
	int (*encode)(const uint8_t *old, const uint8_t *new, size_t len,
		      uint8_t *dst, size_t dlen);
	bool (*is_zero)(const uint8_t *page, size_t len);
	/* Copy the nruns validated runs tab[] from src into page. */
	void (*apply)(uint8_t *page, const uint8_t *src,
		      const struct xbzrle_run16 *tab, size_t nruns);
};

/* Defined in xbzrle_simd.c; the scalar path lives in xbzrle.c. Callers
 * must have checked the CPU (xbzrle_impl_available) first. */
extern const struct xbzrle_path xbzrle_path_sse2;
extern const struct xbzrle_path xbzrle_path_avx2;
extern const struct xbzrle_path xbzrle_path_avx512;

/* 64-byte blocks in the largest page. */
#define XBZRLE_MAX_BLOCKS ((XBZRLE_MAX_LEN + 63) / 64)

/* Runs the encoder collects before it writes them (xbzrle_scan.h). */
#define SCAN_BATCH 256

/* Bits set in x, without the popcnt instruction (the scalar and SSE2
 * paths run on any x86-64). */
static inline unsigned xbzrle_popcount(uint64_t x)
{
	x -= x >> 1 & 0x5555555555555555ull;
	x = (x & 0x3333333333333333ull) + (x >> 2 & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)(x * 0x0101010101010101ull >> 56);
}

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

/* Merge rules. Should a gap of `gap` unchanged bytes between a non-zero
 * run of `a` bytes (possibly already merged) and one of `b` bytes be
 * copied into one run? Split costs a zrun byte (gap < 128) plus b's
 * header; merged costs the gap bytes plus perhaps a longer header:
 *   gap 1: merged is never longer (the encoder fills these holes in the
 *          diff mask before it sees runs, so this sees none);
 *   gap 2: merged is strictly shorter only if a >= 128 and b >= 128;
 *   gap 3+: never shorter.
 * Each merge keeps the stream so far no longer than QEMU's maximal-run
 * split of the same bytes, so the whole stream is never longer. */
static inline bool xbzrle_merge_gap(size_t a, size_t gap, size_t b)
{
	return gap == 2 && a >= 128 && b >= 128;
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

/* The one- or two-byte ULEB128 form of v < 16384 in the low bytes. */
static inline uint32_t xbzrle_uleb_bytes(size_t v)
{
	return v < 128 ? (uint32_t)v : (uint32_t)((v & 0x7f) | 0x80 | (v >> 7) << 8);
}

/* Append zrun, then an nzrun of n bytes from src, at dst + d. src_room is
 * how many bytes may be read at src. Returns the new length, or SIZE_MAX
 * if it would pass dlen (nothing past dlen is written). */
static inline size_t xbzrle_put_runs(uint8_t *dst, size_t d, size_t dlen,
				     size_t zrun, const uint8_t *src, size_t n,
				     size_t src_room)
{
	size_t lz = xbzrle_uleb_len(zrun), hdr = lz + xbzrle_uleb_len(n);

	/* Common case, branch-light: both headers in one 4-byte store and
	 * a short run in one 16-byte move (the bytes past the stream are
	 * scratch, and the room check keeps them below dlen). */
	if (n <= 16 && src_room >= 16 && dlen - d >= 4 + 16) {
		uint32_t h = xbzrle_uleb_bytes(zrun) | xbzrle_uleb_bytes(n) << (8 * lz);

		if (dlen - d - hdr < n)
			return SIZE_MAX;
		memcpy(dst + d, &h, 4);
		memcpy(dst + d + hdr, src, 16);
		return d + hdr + n;
	}
	if (dlen - d < hdr || dlen - d - hdr < n)
		return SIZE_MAX;
	d += xbzrle_put_uleb(dst + d, zrun);
	d += xbzrle_put_uleb(dst + d, n);
	memcpy(dst + d, src, n);
	return d + n;
}

/* Copy n >= 1 bytes with at most two possibly overlapping fixed-size moves
 * for short runs: most runs of a sparse page are a few bytes long. */
static inline void xbzrle_copy_run(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n >= 16) {
		if (n <= 32) {
			memcpy(d, s, 16);
			memcpy(d + n - 16, s + n - 16, 16);
		} else {
			memcpy(d, s, n);
		}
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n >= 2) {
		memcpy(d, s, 2);
		memcpy(d + n - 2, s + n - 2, 2);
	} else {
		d[0] = s[0];
	}
}

/* Runs (per stream) from which the decoder hands the copying to the
 * path's apply: below it, on pages with a few scattered changes, a masked
 * store into a line not yet in the cache costs more than the mispredicted
 * length branches it saves (measured on AMD Zen: 1.5x slower decode at 4
 * runs a page), and so does the indirect call. */
#define XBZRLE_APPLY_PATH_RUNS 128

/* The portable run copier (scalar, SSE2 and AVX2 paths), inlined into the
 * decoder for short tables. The sparse loops keep their one-byte runs
 * apart and hand this only the others; a dense stream's short table can
 * still be mostly one-byte runs, so they are tested for first, not after
 * xbzrle_copy_run's four tests. */
static inline void xbzrle_apply_generic(uint8_t *page, const uint8_t *src,
					const struct xbzrle_run16 *tab, size_t nruns)
{
	for (size_t k = 0; k < nruns; k++) {
		if (tab[k].n == 1)
			page[tab[k].d] = src[tab[k].i];
		else
			xbzrle_copy_run(page + tab[k].d, src + tab[k].i, tab[k].n);
	}
}

#endif /* FERRY_XBZRLE_PRIV_H */
