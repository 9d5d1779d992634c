/* inet_sum.h: the Internet checksum's 16-bit one's-complement sum (RFC
 * 1071), fast on x86-64, and the same sum taken while copying. Portable C
 * with no kernel dependency: built into the kernel (lwIP's LWIP_CHKSUM and
 * LWIP_CHKSUM_COPY) and on the host for its unit test.
 *
 * The result follows lwIP's lwip_standard_chksum contract: the sum of the
 * buffer read as native (little-endian) 16-bit words, not inverted; a
 * buffer starting at an odd address is summed as if preceded by a zero
 * byte and the result byte-swapped, so sums of pieces combine. */
#ifndef FERRY_INET_SUM_H
#define FERRY_INET_SUM_H

#include <stddef.h>
#include <stdint.h>

/* Sum len bytes at data (any alignment, len may be 0). */
uint16_t inet_sum16(const void *data, size_t len);

/* Copy len bytes from src to dst (not overlapping) and return
 * inet_sum16(src, len). */
uint16_t inet_sum16_copy(void *dst, const void *src, size_t len);

/* memcpy for frame-sized copies (not overlapping): whole 32- and 8-byte
 * words, then bytes, with no alignment prologue. Under QEMU TCG every
 * guest instruction costs a translated-block step and `rep movsb` costs
 * one per byte; newlib's memcpy aligns and finishes with rep movsb, which
 * dominated lwIP's frame copies. lwIP's MEMCPY. */
void net_copy(void *dst, const void *src, size_t len);

#endif
