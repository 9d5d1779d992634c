/* clock.c: TSC calibration (PIT channel 2) and the local APIC timer tick. */
#include "clock.h"
#include "trap.h"
#include "x86.h"

#define PIT_HZ 1193182ull
#define CLOCK_CALIBRATE_MS 10 /* ms of PIT ticks between the samples */
#define CLOCK_SAMPLES 8       /* PIT readings per sample; the narrowest is kept */
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PIT_GATE 0x61         /* port B: bit 0 gate 2, bit 1 speaker, bit 5 OUT2 */

/* Local APIC registers (SDM Vol. 3A 10.4, 10.5.4), xAPIC MMIO offsets. */
#define LAPIC_ID 0x020
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LAPIC_SVR_ENABLE (1u << 8)
#define LAPIC_TIMER_PERIODIC (1u << 17)
#define LAPIC_TIMER_MASKED (1u << 16)
#define LAPIC_DIV_16 0x3

static uint64_t tsc_hz, tsc0;
static int calib_windows;        /* PIT windows calibration took */
static uint64_t calib_error_ppm; /* bound on the error from the two brackets */
static uint64_t ns_mult; /* ns per TSC tick, 32.32 fixed point */
static uintptr_t lapic;
volatile uint64_t clock_ticks;

/* One reading of PIT channel 2's counter, bracketed by TSC reads. The latch
 * command freezes the count at one instant inside [tsc_lo, tsc_hi]. */
struct pit_sample {
	uint64_t tsc_lo, tsc_hi;
	uint16_t count;
};

static struct pit_sample pit_read(void)
{
	struct pit_sample p;
	p.tsc_lo = x86_rdtsc();
	x86_outb(PIT_CMD, 0x80); /* latch channel 2 */
	p.tsc_hi = x86_rdtsc();
	p.count = x86_inb(PIT_CH2);
	p.count |= (uint16_t)(x86_inb(PIT_CH2) << 8);
	return p;
}

/* Of CLOCK_SAMPLES readings, the one whose bracket is narrowest: a reading
 * during which the host descheduled the vCPU has a wide bracket and loses. */
static struct pit_sample pit_best(void)
{
	struct pit_sample best = pit_read();
	for (int i = 1; i < CLOCK_SAMPLES; i++) {
		struct pit_sample p = pit_read();
		if (p.tsc_hi - p.tsc_lo < best.tsc_hi - best.tsc_lo)
			best = p;
	}
	return best;
}

void clock_init(void)
{
	/* Let channel 2 count down from 0xffff in mode 0 (55 ms to zero, when
	 * OUT2 rises), sample it, wait for CLOCK_CALIBRATE_MS of PIT ticks, and
	 * sample again. A host that steals time between the samples costs
	 * nothing (both clocks run on); inside a sample it widens that
	 * sample's bracket, which pit_best() discards. */
	uint32_t want = (uint32_t)(PIT_HZ * CLOCK_CALIBRATE_MS / 1000);
	for (int attempt = 0;; attempt++) {
		x86_outb(PIT_GATE, (x86_inb(PIT_GATE) & ~0x02) | 0x01); /* gate on, speaker off */
		x86_outb(PIT_CMD, 0xb0); /* channel 2, lobyte/hibyte, mode 0 */
		x86_outb(PIT_CH2, 0xff);
		x86_outb(PIT_CH2, 0xff);
		struct pit_sample a = pit_best(), b;
		do
			b = pit_read();
		while ((uint32_t)(a.count - b.count) < want && !(x86_inb(PIT_GATE) & 0x20));
		b = pit_best();
		if ((x86_inb(PIT_GATE) & 0x20) || b.count >= a.count) {
			/* The count ran out (a stall of ~50 ms): measure again. */
			if (attempt == 4)
				panic("clock: PIT channel 2 never gave a usable window");
			continue;
		}
		uint64_t ticks = (b.tsc_lo + b.tsc_hi) / 2 - (a.tsc_lo + a.tsc_hi) / 2;
		tsc_hz = ticks * PIT_HZ / (uint64_t)(a.count - b.count);
		calib_windows = attempt + 1;
		uint64_t spread = (a.tsc_hi - a.tsc_lo) + (b.tsc_hi - b.tsc_lo);
		calib_error_ppm = tsc_hz ? spread * 1000000 / 2 / ticks : 0;
		break;
	}
	if (tsc_hz < 1000000)
		panic("clock: TSC runs at %llu Hz against the PIT; cannot keep time",
		      (unsigned long long)tsc_hz);
	ns_mult = (1000000000ull << 32) / tsc_hz;
	tsc0 = x86_rdtsc();
}

uint64_t clock_tsc_hz(void)
{
	return tsc_hz;
}

void clock_calibration(int *windows, uint64_t *error_ppm)
{
	*windows = calib_windows;
	*error_ppm = calib_error_ppm;
}

uint64_t clock_tsc_to_ns(uint64_t d)
{
	return (uint64_t)(((unsigned __int128)d * ns_mult) >> 32);
}

uint64_t clock_ns(void)
{
	return clock_tsc_to_ns(x86_rdtsc() - tsc0);
}

void clock_delay_ns(uint64_t ns)
{
	uint64_t end = clock_ns() + ns;
	while (clock_ns() < end)
		x86_pause();
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	x86_mmio_write32(lapic + reg, v);
}

void clock_lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

uint32_t clock_lapic_id(void)
{
	return x86_mmio_read32(lapic + LAPIC_ID) >> 24; /* xAPIC: bits 31:24 */
}

static void clock_tick(struct trap_frame *f)
{
	(void)f;
	clock_ticks++;
	lapic_write(LAPIC_EOI, 0);
}

static void clock_spurious(struct trap_frame *f)
{
	(void)f; /* no EOI for the spurious vector (SDM 10.9) */
	trap_spurious_count++;
}

void clock_start_tick(void)
{
	/* Mask the legacy 8259 PICs: ferry uses the local APIC only. */
	x86_outb(0x21, 0xff);
	x86_outb(0xa1, 0xff);

	lapic = (uintptr_t)(x86_rdmsr(MSR_APIC_BASE) & ~0xfffull);
	trap_set_handler(TRAP_TIMER, clock_tick);
	trap_set_handler(TRAP_SPURIOUS, clock_spurious);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | TRAP_SPURIOUS);

	/* Measure the APIC timer against the TSC for 1 ms, then program the
	 * period. Interrupts are off, so the masked count just runs down. */
	lapic_write(LAPIC_TIMER_DIV, LAPIC_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_MASKED);
	lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
	clock_delay_ns(1000000);
	uint32_t per_ms = 0xffffffffu - x86_mmio_read32(lapic + LAPIC_TIMER_CUR);
	if (per_ms == 0)
		panic("clock: local APIC timer does not count");
	lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | TRAP_TIMER);
	lapic_write(LAPIC_TIMER_INIT, per_ms * 1000 / CLOCK_TICK_HZ);
}
