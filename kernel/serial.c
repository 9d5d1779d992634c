/* serial.c: polled 16550 driver for COM1 (the console) and COM2 (the guest's console). */
#include <string.h>

#include "serial.h"
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
#define MCR_DTR_RTS_OUT2 0x0b
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

static int com2_present;

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

static void serial_putc(char c)
{
	while (!(x86_inb(COM1 + UART_LSR) & LSR_THR_EMPTY))
		x86_pause();
	x86_outb(COM1 + UART_DATA, (uint8_t)c);
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

int serial_getc(void)
{
	if (!(x86_inb(COM1 + UART_LSR) & LSR_DATA_READY))
		return -1;
	return x86_inb(COM1 + UART_DATA);
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
