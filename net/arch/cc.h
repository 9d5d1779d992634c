/* arch/cc.h: lwIP's compiler and platform port for ferry (newlib, x86-64,
 * freestanding). See docs in lwIP's include/lwip/arch.h. */
#ifndef FERRY_LWIP_ARCH_CC_H
#define FERRY_LWIP_ARCH_CC_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* newlib's ssize_t is long: declare SSIZE_MAX so lwIP does not typedef its
 * own (int) one; there is no unistd.h to take it from. BYTE_ORDER comes
 * from newlib's <machine/endian.h>. */
#ifndef SSIZE_MAX
#define SSIZE_MAX LONG_MAX
#endif
#define LWIP_NO_UNISTD_H 1

/* lwIP internal errors are ferry bugs: panic with lwIP's file and line. */
void lwip_port_assert(const char *msg, const char *file, int line) __attribute__((noreturn));
#define LWIP_PLATFORM_ASSERT(x) lwip_port_assert((x), __FILE__, __LINE__)
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)

/* Random numbers (ISNs, ports): TSC-seeded, see lwip_port.c. */
unsigned lwip_port_rand(void);
#define LWIP_RAND() ((u32_t)lwip_port_rand())

/* LWIP_CHKSUM and LWIP_CHKSUM_COPY (lwipopts.h), over net/inet_sum.c. */
#include <stdint.h>
uint16_t lwip_port_chksum(const void *data, int len);
uint16_t lwip_port_chksum_copy(void *dst, const void *src, uint16_t len);

#define lwip_htons(x) ((u16_t)__builtin_bswap16((u16_t)(x)))
#define lwip_htonl(x) ((u32_t)__builtin_bswap32((u32_t)(x)))

#endif
