/* uart.c: a 16550A UART (National Semiconductor PC16550D data sheet), the
 * guest's console. Transmission is instantaneous (the byte is handed to
 * the caller and the transmitter is empty again at once), reception
 * through a 16-byte FIFO. Interrupts: received data, transmitter empty and
 * modem status (no line-status errors ever occur); the output reaches the
 * PIC only with MCR.OUT2 set, as on a PC. Loopback mode (MCR bit 4) echoes
 * transmitted bytes and the modem-control bits, which Linux's 8250 driver
 * checks when it probes the port. */
#include <string.h>

#include "vm_devs.h"

enum { RBR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDA 0x01
#define IER_THRE 0x02
#define IER_MSI 0x08
#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void uart_reset(struct uart *u)
{
	memset(u, 0, sizeof(*u));
	u->dll = 12; /* 9600 baud, as firmware leaves it */
}

static uint8_t modem_status(const struct uart *u)
{
	if (u->mcr & MCR_LOOP) /* the outputs looped back to the inputs */
		return (uint8_t)(((u->mcr & MCR_RTS) ? MSR_CTS : 0) | ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
				 ((u->mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->mcr & MCR_OUT2) ? MSR_DCD : 0) |
				 u->msr_delta);
	/* A terminal is attached: clear to send, data set ready, carrier. */
	return MSR_CTS | MSR_DSR | MSR_DCD | u->msr_delta;
}

static uint8_t iir(const struct uart *u)
{
	uint8_t id = IIR_NONE;
	if ((u->ier & IER_RDA) && u->rx_len)
		id = IIR_RDA;
	else if ((u->ier & IER_THRE) && u->thr_irq)
		id = IIR_THRE;
	else if ((u->ier & IER_MSI) && u->msr_delta)
		id = IIR_MSI;
	return (uint8_t)(id | (u->fifo ? IIR_FIFO : 0));
}

bool uart_irq(const struct uart *u)
{
	return (u->mcr & MCR_OUT2) && !(iir(u) & IIR_NONE);
}

bool uart_can_receive(const struct uart *u)
{
	return u->rx_len < (u->fifo ? UART_FIFO : 1);
}

void uart_receive(struct uart *u, uint8_t c)
{
	if (!uart_can_receive(u))
		return;
	u->rx[(u->rx_head + u->rx_len) % UART_FIFO] = c;
	u->rx_len++;
}

uint32_t uart_read(struct uart *u, unsigned reg)
{
	switch (reg) {
	case RBR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (!u->rx_len)
			return 0;
		{
			uint8_t c = u->rx[u->rx_head];
			u->rx_head = (uint8_t)((u->rx_head + 1) % UART_FIFO);
			u->rx_len--;
			return c;
		}
	case IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case IIR: {
		uint8_t v = iir(u);
		if ((v & 0x0f) == IIR_THRE)
			u->thr_irq = false; /* reading the IIR clears a THRE interrupt */
		return v;
	}
	case LCR:
		return u->lcr;
	case MCR:
		return u->mcr;
	case LSR:
		return (uint8_t)(LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0));
	case MSR: {
		uint8_t v = modem_status(u);
		u->msr_delta = 0;
		return v;
	}
	default:
		return u->scr;
	}
}

int uart_write(struct uart *u, unsigned reg, uint8_t val, uint8_t *out)
{
	switch (reg) {
	case RBR:
		if (u->lcr & LCR_DLAB) {
			u->dll = val;
			return 0;
		}
		u->thr_irq = true; /* sent at once: the transmitter is empty again */
		if (u->mcr & MCR_LOOP) {
			uart_receive(u, val);
			return 0;
		}
		*out = val;
		return 1;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = val;
		} else {
			/* Enabling THRE with the transmitter empty raises it. */
			if ((val & IER_THRE) && !(u->ier & IER_THRE))
				u->thr_irq = true;
			u->ier = val & 0x0f;
		}
		return 0;
	case IIR: /* FCR */
		u->fifo = val & 0x01;
		if (val & 0x02)
			u->rx_len = u->rx_head = 0;
		u->fcr = val;
		return 0;
	case LCR:
		u->lcr = val;
		return 0;
	case MCR: {
		uint8_t before = modem_status(u);
		u->mcr = val & 0x1f;
		uint8_t after = modem_status(u);
		/* Delta bits for CTS, DSR, DCD; trailing edge of RI. */
		uint8_t ch = (before ^ after) >> 4;
		u->msr_delta |= (uint8_t)((ch & 0x0b) | ((before & MSR_RI) && !(after & MSR_RI) ? 0x04 : 0));
		u->msr_delta &= 0x0f;
		return 0;
	}
	case LSR:
	case MSR:
		return 0; /* read-only */
	default:
		u->scr = val;
		return 0;
	}
}
