/* mig_pick.c: the codec builds a migration runs, timed at boot (mig_init)
 * and the fastest kept; `info migrate_parameters` prints the choice.
 *
 * The codec's hot loops exist in several builds whose speed depends on
 * the machine, not only on what its CPUID offers: under QEMU's TCG, which
 * emulates each SSE or AVX instruction with a helper call, the scalar code
 * beats the vector code that hardware prefers, and the table CRC beats
 * SSE4.2's crc32. So each instance times them on the work a migration does
 * (a best-of-few run after a warm-up that also lets TCG translate the
 * code). Results are the same whichever runs (digest.h, crc32c.h,
 * xbzrle.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "crc32c.h"
#include "digest.h"
#include "mig_cmds.h"
#include "pmm.h"
#include "xbzrle.h"

/* MB/s measured, for `info migrate_parameters` (0: not available). */
static uint64_t digest_mbps[DIGEST_IMPL_COUNT];
static uint64_t crc_mbps[2]; /* [0] table code, [1] SSE4.2 instruction */
static uint64_t xbzrle_mbps[XBZRLE_IMPL_COUNT];

#define PICK_BYTES (64u * 1024)
#define PICK_RUNS 3

static uint64_t pick_best_ns(void (*work)(int impl, uint8_t *buf), int impl, uint8_t *buf)
{
	uint64_t best = UINT64_MAX;
	work(impl, buf);
	for (int r = 0; r < PICK_RUNS; r++) {
		uint64_t t = clock_ns();
		work(impl, buf);
		t = clock_ns() - t;
		best = t < best ? t : best;
	}
	return best ? best : 1;
}

static bool digest_available(int impl)
{
	(void)impl;
	return true;
}

static void digest_work(int impl, uint8_t *buf)
{
	digest_buf_impl((enum digest_impl)impl, buf, PICK_BYTES);
}

/* impl 1: the SSE4.2 instruction, 0: the table code. */
static volatile uint32_t crc_sink; /* keeps the timed CRC from being dropped */

static void crc_work(int impl, uint8_t *buf)
{
	crc32c_set_sw(!impl);
	crc_sink += crc32c(0, buf, PICK_BYTES);
}

/* For each pair of pages in buf: the bulk pass's zero check of a zero
 * page, and an encode and a decode of the XBZRLE patch's own load (four
 * changed bytes), which rounds send for pages the guest keeps rewriting. */
static void xbzrle_work(int impl, uint8_t *buf)
{
	static uint8_t zero[4096], enc[4096], dst[4096];
	xbzrle_set_impl((enum xbzrle_impl)impl);
	for (size_t off = 0; off + 8192 <= PICK_BYTES; off += 8192) {
		uint8_t *old_pg = buf + off, *new_pg = old_pg + 4096;
		int n = xbzrle_is_zero(zero, 4096) ? xbzrle_encode(old_pg, new_pg, 4096, enc, sizeof(enc)) : -1;
		memcpy(dst, old_pg, 4096); /* the same copy for every path */
		if (n > 0)
			xbzrle_decode(enc, (size_t)n, dst, 4096);
	}
}

static bool crc_available(int impl)
{
	return impl == 0 || crc32c_hw_available();
}

static bool xbzrle_available(int impl)
{
	return xbzrle_impl_available((enum xbzrle_impl)impl);
}

/* Time work for every build first..count-1 that avail accepts, note each
 * one's MB/s in mbps[] (0: not available), and return the fastest. */
static int pick_fastest(void (*work)(int impl, uint8_t *buf), int first, int count, bool (*avail)(int impl),
			uint64_t *mbps, uint8_t *buf)
{
	int fastest = first;
	uint64_t best = UINT64_MAX;
	for (int k = first; k < count; k++) {
		mbps[k] = 0;
		if (!avail(k))
			continue;
		uint64_t ns = pick_best_ns(work, k, buf);
		mbps[k] = PICK_BYTES * 1000ull / ns;
		if (ns < best) {
			best = ns;
			fastest = k;
		}
	}
	return fastest;
}

void mig_pick_codec(void)
{
	uint8_t *buf = pmm_alloc(PICK_BYTES / 4096, 0);
	if (!buf)
		return; /* keep the defaults */
	for (size_t i = 0; i < PICK_BYTES; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	digest_set_impl((enum digest_impl)pick_fastest(digest_work, 0, DIGEST_IMPL_COUNT, digest_available,
						       digest_mbps, buf));
	crc32c_set_sw(pick_fastest(crc_work, 0, 2, crc_available, crc_mbps, buf) == 0);
	/* Pairs of pages: the second of each differs from the first in four
	 * bytes (offsets 0, 1024, 2048, 3072). */
	for (size_t off = 0; off + 8192 <= PICK_BYTES; off += 8192) {
		memcpy(buf + off + 4096, buf + off, 4096);
		for (size_t i = 0; i < 4096; i += 1024)
			buf[off + 4096 + i]++;
	}
	xbzrle_set_impl((enum xbzrle_impl)pick_fastest(xbzrle_work, XBZRLE_IMPL_SCALAR, XBZRLE_IMPL_COUNT,
						       xbzrle_available, xbzrle_mbps, buf));
	pmm_free(buf, PICK_BYTES / 4096);
}

void mig_pick_print(void)
{
	printf("digest: xxh3-128, %s loop (timed at boot: vector %llu MB/s, scalar %llu MB/s)\n",
	       digest_impl_name(digest_get_impl()), (unsigned long long)digest_mbps[DIGEST_IMPL_VECTOR],
	       (unsigned long long)digest_mbps[DIGEST_IMPL_SCALAR]);
	printf("record crc: crc32c, %s (timed at boot: table %llu MB/s", crc32c_uses_hw() ? "sse4.2" : "table",
	       (unsigned long long)crc_mbps[0]);
	if (crc_mbps[1])
		printf(", sse4.2 %llu MB/s", (unsigned long long)crc_mbps[1]);
	printf(")\n");
	printf("xbzrle: %s path (timed at boot:", xbzrle_impl_name(xbzrle_get_impl()));
	for (int k = XBZRLE_IMPL_SCALAR; k < XBZRLE_IMPL_COUNT; k++)
		if (xbzrle_mbps[k])
			printf(" %s %llu MB/s", xbzrle_impl_name((enum xbzrle_impl)k), (unsigned long long)xbzrle_mbps[k]);
	printf(")\n");
}
