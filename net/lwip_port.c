/* lwip_port.c: what lwIP's NO_SYS port needs from ferry: the millisecond
 * clock, random numbers, assertion failures, and checksums. */
#include "clock.h"
#include "inet_sum.h"
#include "lwip/arch.h"
#include "lwip/sys.h"
#include "trap.h"
#include "x86.h"

u32_t sys_now(void)
{
	return (u32_t)(clock_ns() / 1000000);
}

/* xorshift64, seeded from the TSC on first use: good enough for TCP
 * initial sequence numbers and ephemeral ports, not for secrets. */
unsigned lwip_port_rand(void)
{
	static uint64_t s;
	if (!s)
		s = x86_rdtsc() | 1;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (unsigned)(s >> 16);
}

void lwip_port_assert(const char *msg, const char *file, int line)
{
	panic_at(file, line, "lwIP assertion failed: %s", msg);
}

uint16_t lwip_port_chksum(const void *data, int len)
{
	return inet_sum16(data, len > 0 ? (size_t)len : 0);
}

uint16_t lwip_port_chksum_copy(void *dst, const void *src, uint16_t len)
{
	return inet_sum16_copy(dst, src, len);
}
