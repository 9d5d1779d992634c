/* inet_sum.c: RFC 1071 sums over 64-bit words with end-around carry.
 * One's-complement addition is the same at any word width (2^16 = 1 mod
 * 0xffff), so 64-bit words summed and folded give the 16-bit sum with a
 * quarter of the additions of a 16-bit loop. */
#include <string.h>

#include "inet_sum.h"

/* Unaligned words read and written in place (x86 allows it; may_alias
 * keeps it legal C). Not memcpy: the kernel's compiler calls newlib's
 * memcpy even for 8 bytes, and that copies fewer than 16 bytes with rep
 * movsb, which QEMU TCG runs one byte per step. */
typedef uint64_t __attribute__((may_alias, aligned(1))) u64_una;
typedef uint32_t __attribute__((may_alias, aligned(1))) u32_una;
typedef uint16_t __attribute__((may_alias, aligned(1))) u16_una;

static inline uint64_t add_c(uint64_t s, uint64_t w)
{
	s += w;
	return s + (s < w); /* end-around carry */
}

static uint16_t fold(uint64_t s, int odd)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	if (odd)
		s = ((s & 0xff) << 8) | (s >> 8);
	return (uint16_t)s;
}

/* Sum the tail of fewer than 8 bytes; a last odd byte is the low byte of
 * its 16-bit word (little endian). */
static uint64_t tail(uint64_t s, const uint8_t *p, size_t len)
{
	if (len >= 4) {
		s = add_c(s, *(const u32_una *)p);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		s = add_c(s, *(const u16_una *)p);
		p += 2;
		len -= 2;
	}
	if (len)
		s = add_c(s, *p);
	return s;
}

/* hot (these three): in .text.hot, kept within one page by linker.ld
 * (see codec/crc32c.c). */
__attribute__((hot)) uint16_t inet_sum16(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t s = 0;
	int odd = (uintptr_t)p & 1;
	if (odd && len) {
		s = (uint64_t)*p++ << 8; /* high byte of a word whose low byte is "before" the buffer */
		len--;
	}
	uint64_t s1 = 0, s2 = 0, s3 = 0; /* independent chains: fewer stalls on the carry */
	for (; len >= 32; p += 32, len -= 32) {
		const u64_una *w = (const u64_una *)p;
		s = add_c(s, w[0]);
		s1 = add_c(s1, w[1]);
		s2 = add_c(s2, w[2]);
		s3 = add_c(s3, w[3]);
	}
	s = add_c(add_c(s, s1), add_c(s2, s3));
	for (; len >= 8; p += 8, len -= 8)
		s = add_c(s, *(const u64_una *)p);
	return fold(tail(s, p, len), odd);
}

__attribute__((hot)) uint16_t inet_sum16_copy(void *dst, const void *src, size_t len)
{
	const uint8_t *p = src;
	uint8_t *d = dst;
	uint64_t s = 0;
	int odd = (uintptr_t)p & 1;
	if (odd && len) {
		*d++ = *p;
		s = (uint64_t)*p++ << 8;
		len--;
	}
	uint64_t s1 = 0, s2 = 0, s3 = 0; /* as in inet_sum16: fewer loop steps, shorter carry chains */
	for (; len >= 32; p += 32, d += 32, len -= 32) {
		const u64_una *w = (const u64_una *)p;
		uint64_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
		((u64_una *)d)[0] = w0;
		((u64_una *)d)[1] = w1;
		((u64_una *)d)[2] = w2;
		((u64_una *)d)[3] = w3;
		s = add_c(s, w0);
		s1 = add_c(s1, w1);
		s2 = add_c(s2, w2);
		s3 = add_c(s3, w3);
	}
	s = add_c(add_c(s, s1), add_c(s2, s3));
	for (; len >= 8; p += 8, d += 8, len -= 8) {
		uint64_t w = *(const u64_una *)p;
		*(u64_una *)d = w;
		s = add_c(s, w);
	}
	for (size_t i = 0; i < len; i++)
		d[i] = p[i];
	return fold(tail(s, p, len), odd);
}

/* No loop-idiom recognition here: GCC would turn the loops back into a
 * call to memcpy. */
__attribute__((hot, optimize("no-tree-loop-distribute-patterns")))
void net_copy(void *dst, const void *src, size_t len)
{
	const uint8_t *p = src;
	uint8_t *d = dst;
	for (; len >= 32; p += 32, d += 32, len -= 32) {
		uint64_t w0 = ((const u64_una *)p)[0], w1 = ((const u64_una *)p)[1];
		uint64_t w2 = ((const u64_una *)p)[2], w3 = ((const u64_una *)p)[3];
		((u64_una *)d)[0] = w0;
		((u64_una *)d)[1] = w1;
		((u64_una *)d)[2] = w2;
		((u64_una *)d)[3] = w3;
	}
	for (; len >= 8; p += 8, d += 8, len -= 8)
		*(u64_una *)d = *(const u64_una *)p;
	while (len--)
		*d++ = *p++;
}
