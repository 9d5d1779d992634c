/* clock.h: time. The TSC, calibrated once against the PIT, gives a
 * monotonic nanosecond clock; the local APIC timer gives the periodic tick
 * that wakes the main loop from its idle halt. */
#ifndef FERRY_CLOCK_H
#define FERRY_CLOCK_H

#include <stdint.h>

#define CLOCK_TICK_HZ 1000 /* main-loop wake-ups per second */

/* Measure the TSC frequency against PIT channel 2 (about CLOCK_CALIBRATE_MS
 * of busy waiting). Call once, before any other clock function. */
void clock_init(void);

/* Start the local APIC timer's periodic tick on vector TRAP_TIMER.
 * Requires trap_init and paging (the APIC's MMIO page). */
void clock_start_tick(void);

uint64_t clock_tsc_hz(void);

/* How calibration went: PIT windows measured (more than one only when the
 * count ran out) and the bound on its error, in parts per million, from
 * the uncertainty of the two PIT readings. */
void clock_calibration(int *windows, uint64_t *error_ppm);

/* Nanoseconds since clock_init (monotonic; TSC based). */
uint64_t clock_ns(void);

/* Convert a TSC delta to nanoseconds. */
uint64_t clock_tsc_to_ns(uint64_t tsc_delta);

/* Busy-wait for ns nanoseconds. */
void clock_delay_ns(uint64_t ns);

/* The local APIC (clock_start_tick set it up), for other interrupt
 * sources: signal end of interrupt; this CPU's APIC id (the destination of
 * an MSI or I/O APIC route). */
void clock_lapic_eoi(void);
uint32_t clock_lapic_id(void);

/* Ticks taken since clock_start_tick. */
extern volatile uint64_t clock_ticks;

#endif
