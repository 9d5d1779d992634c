/* pic.c: a pair of 8259A interrupt controllers as a PC wires them (Intel
 * 8259A data sheet): the master at ports 0x20/0x21, the slave at 0xA0/0xA1
 * cascaded on the master's IRQ 2, edge triggered unless the ELCR (0x4D0,
 * 0x4D1) says level. Fixed priority (IRQ 0 highest), normal or automatic
 * EOI, specific and non-specific EOI, IRR/ISR reads and poll mode: what
 * Linux's i8259 driver uses. Rotation and special mask mode are not
 * modelled (rotation commands act as their EOI part). */
#include <string.h>

#include "vm_devs.h"

#define ICW1_ICW4 0x01
#define ICW1_SINGLE 0x02
#define ICW1_INIT 0x10
#define ICW4_AEOI 0x02
#define OCW3_SELECT 0x08
#define OCW3_POLL 0x04
#define OCW3_READ 0x02
#define OCW3_ISR 0x01

void pic_reset(struct pic *p)
{
	memset(p, 0, sizeof(*p));
}

/* Highest-priority bit of mask (bit 0 first), or 8. */
static unsigned first_bit(uint8_t mask)
{
	return mask ? (unsigned)__builtin_ctz(mask) : 8;
}

/* The IRQ (0..7) this chip would raise now, or -1: the highest-priority
 * requested, unmasked input above every one in service. */
static int chip_pending(const struct pic_chip *c)
{
	uint8_t req = c->irr & ~c->imr;
	if (!req)
		return -1;
	unsigned irq = first_bit(req);
	if (first_bit(c->isr) <= irq)
		return -1;
	return (int)irq;
}

static void chip_set(struct pic_chip *c, unsigned irq, bool level)
{
	uint8_t bit = (uint8_t)(1u << irq);
	if (c->elcr & bit) {
		if (level)
			c->irr |= bit;
		else
			c->irr &= (uint8_t)~bit;
	} else if (level && !(c->lines & bit)) {
		c->irr |= bit; /* rising edge */
	}
	if (level)
		c->lines |= bit;
	else
		c->lines &= (uint8_t)~bit;
}

/* The slave's output is the master's IRQ 2 input. */
static void cascade(struct pic *p)
{
	chip_set(&p->chip[0], 2, chip_pending(&p->chip[1]) >= 0);
}

void pic_set_irq(struct pic *p, unsigned irq, bool level)
{
	if (irq >= 16)
		return;
	chip_set(&p->chip[irq >> 3], irq & 7, level);
	cascade(p);
}

int pic_pending(const struct pic *p)
{
	int irq = chip_pending(&p->chip[0]);
	if (irq < 0)
		return -1;
	if (irq == 2) {
		int s = chip_pending(&p->chip[1]);
		return s < 0 ? -1 : p->chip[1].base + s;
	}
	return p->chip[0].base + irq;
}

/* The chip acknowledges irq: out of IRR (edge) into ISR (unless AEOI). */
static void chip_ack(struct pic_chip *c, unsigned irq)
{
	uint8_t bit = (uint8_t)(1u << irq);
	if (!(c->elcr & bit))
		c->irr &= (uint8_t)~bit;
	if (!c->auto_eoi)
		c->isr |= bit;
}

int pic_ack(struct pic *p)
{
	struct pic_chip *m = &p->chip[0], *s = &p->chip[1];
	int irq = chip_pending(m);
	if (irq < 0)
		return m->base + 7; /* the request went away: spurious IRQ 7 */
	chip_ack(m, (unsigned)irq);
	int vector;
	if (irq == 2) {
		int sirq = chip_pending(s);
		if (sirq < 0) {
			vector = s->base + 7;
		} else {
			chip_ack(s, (unsigned)sirq);
			vector = s->base + sirq;
		}
		cascade(p);
	} else {
		vector = m->base + irq;
	}
	return vector;
}

/* Poll mode read: 0x80 | the IRQ, acknowledged, or 0 when none. */
static uint8_t chip_poll(struct pic *p, int which)
{
	struct pic_chip *c = &p->chip[which];
	c->poll = false;
	int irq = chip_pending(c);
	if (irq < 0)
		return 0;
	chip_ack(c, (unsigned)irq);
	if (which == 1)
		cascade(p);
	return (uint8_t)(0x80 | irq);
}

uint32_t pic_read(struct pic *p, uint16_t port)
{
	if (port == 0x4d0 || port == 0x4d1)
		return p->chip[port & 1].elcr;
	struct pic_chip *c = &p->chip[port >= 0xa0];
	if (c->poll)
		return chip_poll(p, port >= 0xa0);
	if (port & 1)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

static void chip_eoi(struct pic_chip *c, int irq)
{
	if (irq < 0)
		irq = (int)first_bit(c->isr); /* non-specific: the highest in service */
	if (irq < 8)
		c->isr &= (uint8_t)~(1u << irq);
}

void pic_write(struct pic *p, uint16_t port, uint32_t val)
{
	uint8_t v = (uint8_t)val;
	if (port == 0x4d0 || port == 0x4d1) {
		/* IRQ 0, 1, 2, 8 and 13 are always edge on a PC. */
		p->chip[port & 1].elcr = v & (port == 0x4d0 ? 0xf8 : 0xde);
		return;
	}
	struct pic_chip *c = &p->chip[port >= 0xa0];
	if (!(port & 1)) {
		if (v & ICW1_INIT) {
			uint8_t elcr = c->elcr;
			memset(c, 0, sizeof(*c));
			c->elcr = elcr;
			c->icw4 = v & ICW1_ICW4;
			c->single = v & ICW1_SINGLE;
			c->init_step = 2;
		} else if (v & OCW3_SELECT) {
			if (v & OCW3_POLL)
				c->poll = true;
			if (v & OCW3_READ)
				c->read_isr = v & OCW3_ISR;
		} else {
			unsigned cmd = v >> 5;
			if (cmd == 1 || cmd == 5) /* non-specific EOI (and rotate) */
				chip_eoi(c, -1);
			else if (cmd == 3 || cmd == 7) /* specific EOI (and rotate) */
				chip_eoi(c, v & 7);
		}
	} else {
		switch (c->init_step) {
		case 2:
			c->base = v & 0xf8;
			c->init_step = c->single ? (c->icw4 ? 4 : 0) : 3;
			break;
		case 3:
			c->init_step = c->icw4 ? 4 : 0; /* cascade wiring: fixed here */
			break;
		case 4:
			c->auto_eoi = v & ICW4_AEOI;
			c->init_step = 0;
			break;
		default:
			c->imr = v;
			break;
		}
	}
	cascade(p);
}
