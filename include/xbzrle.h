/* xbzrle.h: QEMU wire-compatible XBZRLE page delta encoder and decoder.
 *
 * Format (docs/xbzrle.md): page = zrun nzrun | zrun nzrun page, where a
 * zrun is a ULEB128 count of unchanged bytes and an nzrun is a ULEB128
 * count >= 1 followed by that many bytes of the new page. Lengths are one
 * or two ULEB128 bytes (0..16383). Only the first zrun may be 0; no
 * trailing zrun is sent.
 *
 * Portable C: built into the kernel and hosted for tests. No
 * initialisation call is needed; the SIMD path (AVX-512BW, AVX2, SSE2 or
 * scalar) is picked from CPUID (and XCR0) on first use. Every path
 * produces byte-identical output. All functions may run concurrently,
 * except xbzrle_set_impl(). No allocation; xbzrle_decode uses about 6
 * KiB of stack, xbzrle_encode about 3.5 KiB.
 */
#ifndef FERRY_XBZRLE_H
#define FERRY_XBZRLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest page (bytes) the encoder handles: a run length must fit two
 * ULEB128 bytes. */
#define XBZRLE_MAX_LEN 16383u

/* Return codes. XBZRLE_EOVERFLOW is -1 to match QEMU's encoder. */
enum xbzrle_err {
	XBZRLE_EOVERFLOW = -1, /* encode: stream would not fit dlen */
	XBZRLE_EINVAL = -2,    /* bad argument (len > XBZRLE_MAX_LEN, NULL) */
	XBZRLE_ETRUNC = -3,    /* stream ends inside a length or run bytes */
	XBZRLE_EULEB = -4,     /* length of three or more ULEB128 bytes */
	XBZRLE_EZRUN = -5,     /* zero run of 0 after the first */
	XBZRLE_ENZRUN = -6,    /* non-zero run of length 0 */
	XBZRLE_EPAGE = -7,     /* a run goes past the end of the page */
	XBZRLE_ETRAIL = -8,    /* stream ends with a zero run */
	XBZRLE_ETOOLONG = -9,  /* stream longer than the page */
	XBZRLE_ENOIMPL = -10,  /* xbzrle_set_impl: path absent on this CPU */
};

/* Implementations of the scanning core, fastest last. */
enum xbzrle_impl {
	XBZRLE_IMPL_AUTO = 0, /* best available (the default) */
	XBZRLE_IMPL_SCALAR,
	XBZRLE_IMPL_SSE2,
	XBZRLE_IMPL_AVX2,
	XBZRLE_IMPL_AVX512,
	XBZRLE_IMPL_COUNT,
};

/* Encode the difference from old_page to new_page (both len bytes) into
 * dst (dlen bytes of room).
 * Returns 0 if the pages are identical (nothing to send), n > 0 the stream
 * length, XBZRLE_EOVERFLOW if the stream would exceed dlen (send the raw
 * page instead), XBZRLE_EINVAL if len > XBZRLE_MAX_LEN.
 * Never writes at or past dst + dlen; bytes of dst past the returned
 * length (but below dlen) may be overwritten. The output is never longer
 * than QEMU's for the same pages. It differs from QEMU's maximal runs in
 * one way: an unchanged gap is copied inside a non-zero run when that is
 * no longer than splitting (every one-byte gap; a two-byte gap between two
 * runs of >= 128 bytes), so it is often shorter. See docs/xbzrle.md. */
int xbzrle_encode(const uint8_t *old_page, const uint8_t *new_page, size_t len,
		  uint8_t *dst, size_t dlen);

/* Apply the stream src (slen bytes) to page (len bytes, holding the old
 * contents). Strict: the whole stream is validated before the first byte
 * of page is written, so on any error page is left exactly as it was.
 * Returns >= 0 the number of page bytes covered (the offset just past the
 * last run; 0 for an empty stream), or a negative enum xbzrle_err:
 * XBZRLE_ETOOLONG (slen > len), XBZRLE_ETRUNC, XBZRLE_EULEB,
 * XBZRLE_EZRUN, XBZRLE_ENZRUN, XBZRLE_EPAGE, XBZRLE_ETRAIL, XBZRLE_EINVAL
 * (len > INT32_MAX). Non-canonical two-byte lengths (80 00) are accepted,
 * as QEMU's decoder accepts them. */
int xbzrle_decode(const uint8_t *src, size_t slen, uint8_t *page, size_t len);

/* True if all len bytes of page are zero. Any len; SIMD dispatched. */
bool xbzrle_is_zero(const uint8_t *page, size_t len);

/* A short English description of a return code (never NULL). */
const char *xbzrle_strerror(int err);

/* ULEB128 lengths as XBZRLE uses them (0..16383, one or two bytes).
 * xbzrle_uleb128_encode writes v to out (room for 2 bytes) and returns the
 * byte count (1 or 2), or XBZRLE_EINVAL if v > 16383.
 * xbzrle_uleb128_decode reads from in (avail bytes) into *v and returns the
 * byte count (1 or 2), XBZRLE_ETRUNC if avail is too short, or
 * XBZRLE_EULEB if a third byte would be needed. */
int xbzrle_uleb128_encode(uint32_t v, uint8_t *out);
int xbzrle_uleb128_decode(const uint8_t *in, size_t avail, uint32_t *v);

/* Force one implementation (tests, benchmarks). XBZRLE_IMPL_AUTO restores
 * the CPUID choice. Returns 0, or XBZRLE_ENOIMPL if this CPU (or the OS's
 * XCR0 state) lacks it, XBZRLE_EINVAL for an unknown value. Not safe while
 * another thread is encoding. */
int xbzrle_set_impl(enum xbzrle_impl impl);

/* The implementation in use (never XBZRLE_IMPL_AUTO). */
enum xbzrle_impl xbzrle_get_impl(void);

/* True if impl can run on this CPU. */
bool xbzrle_impl_available(enum xbzrle_impl impl);

/* "auto", "scalar", "sse2", "avx2", "avx512bw" or "unknown". */
const char *xbzrle_impl_name(enum xbzrle_impl impl);

#endif /* FERRY_XBZRLE_H */
