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

/* hot: GCC puts it in .text.hot, which linker.ld keeps within one page
 * (under QEMU TCG a loop that straddles a page boundary ran 3-5x slower). */
__attribute__((hot)) uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
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

/* SSE4.2 path. The crc32 instruction has a latency of 3 cycles and a
 * throughput of 1 per cycle, so one chain runs at a third of the possible
 * speed. Long inputs are cut into rounds of three lanes of CRC32C_LANE bytes
 * computed side by side and merged with
 *     crc(A|B|C) = shift(crc(A), 2 * LANE) ^ shift(crc0(B), LANE) ^ crc0(C)
 * where crc0 starts from 0 and shift(x, n) advances a CRC state over n zero
 * bytes: a linear map on 32 bits, tabulated once like a slicing table. */
#define CRC32C_LANE 1024u	/* bytes per lane; a multiple of 8 */

static uint32_t crc32c_shift_tab[2][4][256];	/* by LANE, by 2 * LANE */
static bool crc32c_shift_ready;

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_zeros(uint32_t crc, size_t n)
{
	uint64_t c = crc;

	for (size_t i = 0; i < n; i += 8)
		c = __builtin_ia32_crc32di(c, 0);
	return (uint32_t)c;
}

static void crc32c_init_shift(void)
{
	for (int t = 0; t < 2; t++) {
		uint32_t basis[32];
		for (int b = 0; b < 32; b++)
			basis[b] = crc32c_hw_zeros(1u << b, (size_t)(t + 1) * CRC32C_LANE);
		for (int k = 0; k < 4; k++)
			for (uint32_t v = 0; v < 256; v++) {
				uint32_t r = 0;
				for (int j = 0; j < 8; j++)
					if (v & (1u << j))
						r ^= basis[8 * k + j];
				crc32c_shift_tab[t][k][v] = r;
			}
	}
	crc32c_shift_ready = true;
}

static uint32_t crc32c_shift(int t, uint32_t x)
{
	return crc32c_shift_tab[t][0][x & 0xff] ^ crc32c_shift_tab[t][1][(x >> 8) & 0xff] ^
	       crc32c_shift_tab[t][2][(x >> 16) & 0xff] ^ crc32c_shift_tab[t][3][x >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * CRC32C_LANE && !crc32c_shift_ready)
		crc32c_init_shift();
	while (len >= 3 * CRC32C_LANE) {
		uint64_t c1 = 0, c2 = 0;
		for (size_t i = 0; i < CRC32C_LANE; i += 8) {
			uint64_t w0, w1, w2;
			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + CRC32C_LANE + i, 8);
			memcpy(&w2, p + 2 * CRC32C_LANE + i, 8);
			c = __builtin_ia32_crc32di(c, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c = crc32c_shift(1, (uint32_t)c) ^ crc32c_shift(0, (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * CRC32C_LANE;
		len -= 3 * CRC32C_LANE;
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

static bool force_sw;

void crc32c_set_sw(bool sw)
{
	force_sw = sw;
}

bool crc32c_uses_hw(void)
{
	return !force_sw && crc32c_hw_available();
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (crc32c_uses_hw())
		return crc32c_hw_update(crc, buf, len);
	return crc32c_sw(crc, buf, len);
}
