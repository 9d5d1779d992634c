/* pit.c: the 8254 programmable interval timer (Intel 82C54 data sheet) at
 * 1.193182 MHz, computed from ferry's clock rather than stepped: a
 * channel's count is a function of the time since it was loaded.
 *
 * Channel 0 drives IRQ 0 (Linux's timer before and, with no APIC, after
 * boot: mode 2 periodic or mode 0 one-shot); channel 2's gate and output
 * are bits 0 and 5 of port 0x61 (Linux calibrates the TSC against it).
 * Modes 0-5, lo/hi access, count latches and the read-back command; BCD
 * counting is not modelled (the count is binary). */
#include <string.h>

#include "vm_devs.h"

#define PIT_HZ 1193182ull
#define PIT_BACKLOG_NS 1000000000ull /* late periodic ticks replayed at most this far back */
#define NS 1000000000ull

#define P61_GATE2 0x01
#define P61_SPEAKER 0x02
#define P61_REFRESH 0x10
#define P61_OUT2 0x20

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * PIT_HZ / NS);
}

void pit_reset(struct pit *t, uint64_t now)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 3; i++) {
		t->ch[i].count = 65536;
		t->ch[i].access = 3;
		t->ch[i].load_ns = now;
		t->ch[i].gate = i != 2; /* channels 0 and 1 are gated high on a PC */
	}
}

/* Ticks counted since the channel was loaded (0 while its gate is low). */
static uint64_t elapsed(const struct pit_channel *c, uint64_t now)
{
	if (!c->gate)
		return 0;
	/* Modulo 2^64: a state loaded from a longer-running host may have
	 * been loaded "before" this clock's zero. */
	return ns_to_ticks(now - c->load_ns);
}

static uint16_t current(const struct pit_channel *c, uint64_t now)
{
	uint64_t e = elapsed(c, now);
	switch (c->mode) {
	case 2:
		return (uint16_t)(c->count - e % c->count);
	case 3:
		return (uint16_t)((c->count - (2 * e) % c->count) & ~1u);
	default: /* 0, 1, 4, 5: count down, wrapping past 0 */
		return (uint16_t)((c->count - e) & 0xffff);
	}
}

static bool output(const struct pit_channel *c, uint64_t now)
{
	uint64_t e = elapsed(c, now);
	switch (c->mode) {
	case 0:
	case 1:
		return c->gate && e >= c->count;
	case 3:
		return e % c->count < (c->count + 1) / 2;
	default: /* 2, 4, 5: high but for one tick */
		return true;
	}
}

static void set_count(struct pit_channel *c, uint32_t count, uint64_t now)
{
	c->count = count ? count : 65536;
	c->load_ns = now;
	c->armed = true;
	c->periods = 0;
}

static void latch(struct pit_channel *c, uint64_t now)
{
	if (c->latched)
		return; /* the first latch holds until read */
	c->latch = current(c, now);
	c->latched = true;
	c->latch_reads = c->access == 3 ? 2 : 1;
}

static void control(struct pit *t, uint8_t v, uint64_t now)
{
	unsigned sel = v >> 6;
	if (sel == 3) { /* read-back: bit 5 clear latches counts, bit 4 clear statuses */
		for (unsigned i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			struct pit_channel *c = &t->ch[i];
			if (!(v & 0x20))
				latch(c, now);
			if (!(v & 0x10) && !c->status_latched) {
				c->status = (uint8_t)((output(c, now) ? 0x80 : 0) | (c->access << 4) | (c->mode << 1));
				c->status_latched = true;
			}
		}
		return;
	}
	struct pit_channel *c = &t->ch[sel];
	unsigned access = (v >> 4) & 3;
	if (access == 0) {
		latch(c, now);
		return;
	}
	c->access = (uint8_t)access;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4; /* 6 and 7 are 2 and 3 */
	c->write_hi = c->read_hi = false;
	c->latched = c->status_latched = false;
	c->armed = false; /* counting waits for the new count */
}

uint32_t pit_read(struct pit *t, uint16_t port, uint64_t now)
{
	if (port == 0x43)
		return 0xff; /* the control word is write-only */
	struct pit_channel *c = &t->ch[port - 0x40];
	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	uint16_t v;
	if (c->latched) {
		v = c->latch;
		if (--c->latch_reads == 0)
			c->latched = false;
		if (c->access == 3)
			return c->latch_reads ? (v & 0xff) : (v >> 8);
	} else {
		v = current(c, now);
		if (c->access == 3) {
			c->read_hi = !c->read_hi;
			return c->read_hi ? (v & 0xff) : (v >> 8);
		}
	}
	return c->access == 2 ? (v >> 8) : (v & 0xff);
}

void pit_write(struct pit *t, uint16_t port, uint32_t val, uint64_t now)
{
	uint8_t v = (uint8_t)val;
	if (port == 0x43) {
		control(t, v, now);
		return;
	}
	struct pit_channel *c = &t->ch[port - 0x40];
	switch (c->access) {
	case 1:
		set_count(c, v, now);
		break;
	case 2:
		set_count(c, (uint32_t)v << 8, now);
		break;
	default:
		if (!c->write_hi) {
			c->write_lo = v;
			c->write_hi = true;
		} else {
			c->write_hi = false;
			set_count(c, c->write_lo | ((uint32_t)v << 8), now);
		}
		break;
	}
}

uint8_t pit_port61_read(struct pit *t, uint64_t now)
{
	t->refresh = !t->refresh; /* DRAM refresh: code waits on it toggling */
	struct pit_channel *c = &t->ch[2];
	return (uint8_t)((c->gate ? P61_GATE2 : 0) | (t->speaker ? P61_SPEAKER : 0) |
			 (t->refresh ? P61_REFRESH : 0) | (output(c, now) ? P61_OUT2 : 0));
}

void pit_port61_write(struct pit *t, uint8_t val, uint64_t now)
{
	struct pit_channel *c = &t->ch[2];
	bool gate = val & P61_GATE2;
	if (gate && !c->gate)
		c->load_ns = now; /* a rising gate (re)starts the count */
	c->gate = gate;
	t->speaker = val & P61_SPEAKER;
}

bool pit_irq_due(struct pit *t, uint64_t now)
{
	struct pit_channel *c = &t->ch[0];
	uint64_t e = elapsed(c, now);
	switch (c->mode) {
	case 2:
	case 3: {
		/* Every period is one tick, however late: a guest that keeps
		 * time by counting them (Linux's jiffies while it boots, the
		 * clocksource watchdog's reference) must not lose any while
		 * ferry was busy, or it finds its TSC "too fast" and drops it.
		 * The caller asks for one at a time, when the PIC can take an
		 * edge; a backlog beyond PIT_BACKLOG_NS is dropped (a guest
		 * paused that long would otherwise take a burst of ticks). */
		uint64_t periods = e / c->count;
		if (!c->armed || periods <= c->periods)
			return false;
		uint64_t max = ns_to_ticks(PIT_BACKLOG_NS) / c->count + 1;
		if (periods - c->periods > max)
			c->periods = periods - max;
		c->periods++;
		return true;
	}
	default:
		if (!c->armed || e < c->count)
			return false;
		c->armed = false;
		return true;
	}
}
