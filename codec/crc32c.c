/* crc32c.c: CRC-32C with SSE4.2's crc32 instruction where the CPU has it,
 * and a slicing-by-8 table otherwise. See crc32c.h. */
#include "crc32c.h"

#include <cpuid.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u	/* reflected Castagnoli polynomial */

/* Slicing-by-8 tables, filled on first use (no constructors in the kernel). */
static uint32_t crc32c_table[8][256];
static bool crc32c_table_ready;

/* -1 unknown, 0 no, 1 yes. */
static int crc32c_hw = -1;

static void crc32c_init_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
		crc32c_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
					     crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
	crc32c_table_ready = true;
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	if (!crc32c_table_ready)
		crc32c_init_table();
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= c;
		c = crc32c_table[7][w & 0xff] ^
		    crc32c_table[6][(w >> 8) & 0xff] ^
		    crc32c_table[5][(w >> 16) & 0xff] ^
		    crc32c_table[4][(w >> 24) & 0xff] ^
		    crc32c_table[3][(w >> 32) & 0xff] ^
		    crc32c_table[2][(w >> 40) & 0xff] ^
		    crc32c_table[1][(w >> 48) & 0xff] ^
		    crc32c_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = (c >> 8) ^ crc32c_table[0][(c ^ *p++) & 0xff];
	return ~c;
}

/* Three independent crc32 chains would hide the instruction's 3-cycle
 * latency, but need a carry-less-multiply merge; one chain already runs at
 * several GB/s, which is enough for a trailer check. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 32) {
		uint64_t w0, w1, w2, w3;
		memcpy(&w0, p, 8);
		memcpy(&w1, p + 8, 8);
		memcpy(&w2, p + 16, 8);
		memcpy(&w3, p + 24, 8);
		c = __builtin_ia32_crc32di(c, w0);
		c = __builtin_ia32_crc32di(c, w1);
		c = __builtin_ia32_crc32di(c, w2);
		c = __builtin_ia32_crc32di(c, w3);
		p += 32;
		len -= 32;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

bool crc32c_hw_available(void)
{
	if (crc32c_hw < 0) {
		unsigned int a, b, c, d;
		crc32c_hw = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
	}
	return crc32c_hw == 1;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (crc32c_hw_available())
		return crc32c_hw_update(crc, buf, len);
	return crc32c_sw(crc, buf, len);
}
