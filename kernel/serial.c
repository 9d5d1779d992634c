/* serial.c: 16550 driver for COM1 (the console) and COM2 (the guest's
 * console). Output is polled. COM1's input, once serial_irq_init ran, is
 * taken by its receive interrupt: the whole FIFO into a ring each time,
 * and the interrupt wakes the main loop's halt; without an I/O APIC it
 * stays polled. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "ioapic.h"
#include "serial.h"
#include "trap.h"
#include "x86.h"

#define COM1 0x3f8
#define COM2 0x2f8
/* Register offsets (16550 data sheet). */
#define UART_DATA 0 /* RBR/THR; divisor low with DLAB */
#define UART_IER 1  /* interrupt enable; divisor high with DLAB */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_SCR 7
#define LCR_8N1 0x03
#define LCR_DLAB 0x80
#define FCR_ENABLE_CLEAR 0x07 /* enable FIFOs, clear RX and TX */
#define FCR_TRIGGER_8 0x80    /* receive interrupt at 8 bytes (or a 4-character pause) */
#define IER_RX 0x01           /* interrupt: received data (and its timeout) */
#define COM1_IRQ 4
#define RX_RING 4096          /* bytes received, not yet taken (a power of two) */
#define MCR_DTR_RTS_OUT2 0x0b
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

static int com2_present;

/* COM1's receive ring: the interrupt writes head, serial_getc reads tail.
 * One CPU; the handler runs only inside the main loop's halt or a guest
 * slice, so the two never interleave mid-update. */
static uint8_t rx[RX_RING];
static volatile uint32_t rx_head, rx_tail;
static uint64_t rx_irqs, rx_dropped;
static int rx_irq_on;

static void port_init(uint16_t base)
{
	x86_outb(base + UART_IER, 0x00);
	x86_outb(base + UART_LCR, LCR_DLAB);
	x86_outb(base + UART_DATA, 1); /* 115200 / 1 */
	x86_outb(base + UART_IER, 0);
	x86_outb(base + UART_LCR, LCR_8N1);
	x86_outb(base + UART_FCR, FCR_ENABLE_CLEAR);
	x86_outb(base + UART_MCR, MCR_DTR_RTS_OUT2);
}

void serial_init(void)
{
	port_init(COM1);
	/* An absent port reads all ones: two patterns must both stick. */
	x86_outb(COM2 + UART_SCR, 0x5a);
	int a = x86_inb(COM2 + UART_SCR) == 0x5a;
	x86_outb(COM2 + UART_SCR, 0xa5);
	com2_present = a && x86_inb(COM2 + UART_SCR) == 0xa5;
	if (com2_present)
		port_init(COM2);
}

/* The transmitter not taking a byte for this long means nobody reads the
 * line (an emulator's socket whose client stopped reading holds the UART):
 * the byte is dropped, and so is the rest until the transmitter is free
 * again, rather than the whole appliance (and a migration it runs)
 * waiting on a reader. In TSC cycles (before the clock is calibrated):
 * 0.3-1 s on a 1-3 GHz TSC; an emulator's busy I/O thread takes tens of
 * ms at worst. */
#define TX_STALL_CYCLES (1ull << 30)
static int tx_stalled;
static uint64_t tx_dropped;

static void serial_putc(char c)
{
	uint64_t t0 = 0;
	while (!(x86_inb(COM1 + UART_LSR) & LSR_THR_EMPTY)) {
		if (!t0)
			t0 = x86_rdtsc();
		if (tx_stalled || x86_rdtsc() - t0 > TX_STALL_CYCLES) {
			tx_stalled = 1;
			tx_dropped++;
			return;
		}
		x86_pause();
	}
	tx_stalled = 0;
	x86_outb(COM1 + UART_DATA, (uint8_t)c);
}

uint64_t serial_tx_dropped(void)
{
	return tx_dropped;
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			serial_putc('\r');
		serial_putc(s[i]);
	}
}

void serial_puts(const char *s)
{
	serial_write(s, strlen(s));
}

/* The FIFO, emptied into the ring. */
static void rx_drain(void)
{
	while (x86_inb(COM1 + UART_LSR) & LSR_DATA_READY) {
		uint8_t c = x86_inb(COM1 + UART_DATA);
		if (rx_head - rx_tail < RX_RING)
			rx[rx_head++ % RX_RING] = c;
		else
			rx_dropped++; /* 4 KiB unread: the console is stuck anyway */
	}
}

static void uart_irq(struct trap_frame *f)
{
	(void)f;
	rx_irqs++;
	rx_drain();
	clock_lapic_eoi();
}

void serial_irq_init(void)
{
	trap_set_handler(TRAP_UART, uart_irq);
	if (ioapic_route_isa_irq(COM1_IRQ, TRAP_UART, "console") < 0)
		return; /* polled, as before */
	x86_outb(COM1 + UART_FCR, FCR_ENABLE_CLEAR | FCR_TRIGGER_8);
	x86_outb(COM1 + UART_IER, IER_RX);
	rx_irq_on = 1;
	rx_drain(); /* what came before: the edge that would announce it is gone */
}

void serial_rx_stats(uint64_t *irqs, uint64_t *dropped, int *on)
{
	*irqs = rx_irqs;
	*dropped = rx_dropped;
	*on = rx_irq_on;
}

int serial_rx_pending(void)
{
	return rx_head != rx_tail;
}

int serial_getc(void)
{
	if (rx_head == rx_tail) {
		/* Polled too: without the interrupt, or between its edges. */
		if (!(x86_inb(COM1 + UART_LSR) & LSR_DATA_READY))
			return -1;
		return x86_inb(COM1 + UART_DATA);
	}
	return rx[rx_tail++ % RX_RING];
}

int serial_aux_present(void)
{
	return com2_present;
}

int serial_aux_try_putc(uint8_t c)
{
	if (!com2_present || !(x86_inb(COM2 + UART_LSR) & LSR_THR_EMPTY))
		return 0;
	x86_outb(COM2 + UART_DATA, c);
	return 1;
}

int serial_aux_getc(void)
{
	if (!com2_present || !(x86_inb(COM2 + UART_LSR) & LSR_DATA_READY))
		return -1;
	return x86_inb(COM2 + UART_DATA);
}
