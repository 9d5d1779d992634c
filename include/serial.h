/* serial.h: the 16550 UART on COM1. ferry's console and every diagnostic
 * (crash dumps included) go through it: output polled, input taken by the
 * receive interrupt once serial_irq_init ran. */
#ifndef FERRY_SERIAL_H
#define FERRY_SERIAL_H

#include <stddef.h>
#include <stdint.h>

/* Program COM1 explicitly: 115200 baud (divisor 1), 8N1, FIFOs on, UART
 * interrupts off. Bochs honours the line-control register and garbles
 * output without this; QEMU ignores it. Call once, first thing. */
void serial_init(void);

/* Write n bytes, turning "\n" into "\r\n". Busy-waits on the transmitter,
 * for about a second at most: a line nobody drains drops bytes instead of
 * stopping ferry (counted by serial_tx_dropped). Safe from exception
 * context (takes no locks, allocates nothing). */
void serial_write(const char *s, size_t n);
void serial_puts(const char *s);

/* Take COM1's input by its receive interrupt (through the I/O APIC, ISA
 * IRQ 4): the whole FIFO into a 4 KiB ring each time, and the interrupt
 * wakes the idle halt. Needs trap_init, acpi_init and the local APIC.
 * Without an I/O APIC input stays polled. */
void serial_irq_init(void);
/* Bytes in the ring not yet taken by serial_getc. */
int serial_rx_pending(void);
/* Receive interrupts taken, bytes dropped (ring full), interrupt in use. */
void serial_rx_stats(uint64_t *irqs, uint64_t *dropped, int *on);

/* Bytes dropped because the transmitter stayed busy. */
uint64_t serial_tx_dropped(void);

/* Returns the next received byte, or -1 when none is waiting. */
int serial_getc(void);

/* COM2 (0x2F8), the guest's console when the machine has one: found by
 * serial_init (its scratch register holds a value), programmed like COM1.
 * try_putc writes one raw byte when the transmitter can take it (1) and
 * never waits (0: busy or absent); getc returns -1 when absent or empty. */
int serial_aux_present(void);
int serial_aux_try_putc(uint8_t c);
int serial_aux_getc(void);

#endif
