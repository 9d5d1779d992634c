/* cmos.c: the CMOS RAM and MC146818 real-time clock at ports 0x70 (index;
 * bit 7 is the NMI mask) and 0x71 (data). The clock reads the wall time
 * ferry was given at boot plus the time since, in BCD and 24-hour form,
 * never in an update cycle; writes to the clock registers are kept as RAM
 * but do not set it. No alarm or periodic interrupt (IRQ 8 stays quiet). */
#include <string.h>

#include "vm_devs.h"

enum {
	RTC_SEC = 0x00, RTC_MIN = 0x02, RTC_HOUR = 0x04, RTC_WDAY = 0x06, RTC_MDAY = 0x07,
	RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_A = 0x0a, RTC_B = 0x0b, RTC_C = 0x0c, RTC_D = 0x0d,
	RTC_CENTURY = 0x32,
};

#define RTC_A_DIVIDER 0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) clear */
#define RTC_B_24H 0x02     /* binary mode (bit 2) clear: BCD */
#define RTC_D_VRT 0x80     /* valid RAM and time */

void cmos_reset(struct cmos *c, uint64_t epoch_s, uint64_t now)
{
	memset(c, 0, sizeof(*c));
	c->epoch_s = epoch_s;
	c->base_ns = now;
	c->ram[RTC_A] = RTC_A_DIVIDER;
	c->ram[RTC_B] = RTC_B_24H;
	c->ram[RTC_D] = RTC_D_VRT;
}

static uint8_t bcd(unsigned v)
{
	return (uint8_t)((v / 10) << 4 | (v % 10));
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian). */
static void civil(int64_t days, unsigned *y, unsigned *m, unsigned *d)
{
	days += 719468; /* days from 0000-03-01 to 1970-01-01 */
	int64_t era = days / 146097;
	unsigned doe = (unsigned)(days - era * 146097);                 /* 0..146096 */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);          /* 0..365, from March */
	unsigned mp = (5 * doy + 2) / 153;                               /* 0..11, March first */
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (unsigned)(yoe + era * 400) + (*m <= 2);
}

static uint8_t clock_reg(const struct cmos *c, unsigned reg, uint64_t now)
{
	uint64_t t = c->epoch_s + (now - c->base_ns) / 1000000000ull;
	uint64_t days = t / 86400, s = t % 86400;
	unsigned y, m, d;
	civil((int64_t)days, &y, &m, &d);
	switch (reg) {
	case RTC_SEC:
		return bcd((unsigned)(s % 60));
	case RTC_MIN:
		return bcd((unsigned)(s / 60 % 60));
	case RTC_HOUR:
		return bcd((unsigned)(s / 3600));
	case RTC_WDAY:
		return bcd((unsigned)((days + 4) % 7 + 1)); /* 1970-01-01 was a Thursday; Sunday = 1 */
	case RTC_MDAY:
		return bcd(d);
	case RTC_MONTH:
		return bcd(m);
	case RTC_YEAR:
		return bcd(y % 100);
	default: /* RTC_CENTURY */
		return bcd(y / 100);
	}
}

uint32_t cmos_read(struct cmos *c, uint16_t port, uint64_t now)
{
	if (port == 0x70)
		return 0xff; /* the index register is write-only */
	unsigned reg = c->index;
	switch (reg) {
	case RTC_SEC:
	case RTC_MIN:
	case RTC_HOUR:
	case RTC_WDAY:
	case RTC_MDAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		return clock_reg(c, reg, now);
	case RTC_C: {
		uint8_t v = c->ram[RTC_C]; /* interrupt flags: cleared by reading */
		c->ram[RTC_C] = 0;
		return v;
	}
	default:
		return c->ram[reg];
	}
}

void cmos_write(struct cmos *c, uint16_t port, uint8_t val)
{
	if (port == 0x70) {
		c->index = val & 0x7f;
		return;
	}
	switch (c->index) {
	case RTC_A:
		c->ram[RTC_A] = (uint8_t)((val & 0x7f) | (c->ram[RTC_A] & 0x80));
		break;
	case RTC_B:
		c->ram[RTC_B] = (uint8_t)((val & ~0x74) | RTC_B_24H); /* no interrupts; BCD, 24 h */
		break;
	case RTC_C:
	case RTC_D:
		break; /* read-only */
	default:
		c->ram[c->index] = val;
		break;
	}
}
