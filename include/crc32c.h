/* crc32c.h: CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected as
 * 0x82F63B78), the checksum of iSCSI, ext4 and SSE4.2's crc32 instruction.
 * Used for the migration stream's per-record trailer.
 */
#ifndef FERRY_CRC32C_H
#define FERRY_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32C over len bytes of buf. Start with crc = 0; the result
 * of one call can be passed as crc to the next, so
 * crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n + m).
 * The standard pre- and post-inversion is done inside: crc32c(0, "123456789",
 * 9) == 0xE3069283. Uses SSE4.2 when CPUID says it is there (checked once,
 * lazily; safe to race: every caller computes the same answer) unless
 * crc32c_set_sw said otherwise. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The same, always with the portable table code (for tests and benches). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* True when this CPU has the SSE4.2 instruction. */
bool crc32c_hw_available(void);

/* Make crc32c() use the table code even where the instruction exists
 * (true), or go back to the instruction where it exists (false). For
 * machines where the instruction is the slower one: under QEMU's TCG it
 * is a helper call that walks a table a byte at a time. The kernel times
 * both at boot (kernel/mig_pick.c). Same CRCs either way. */
void crc32c_set_sw(bool sw);

/* True when crc32c() uses the instruction. */
bool crc32c_uses_hw(void);

#endif /* FERRY_CRC32C_H */
