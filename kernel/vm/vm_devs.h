/* vm_devs.h: the devices of the virtual platform and their state (kernel/vm/
 * internal). One device a file; each keeps all of its state in its struct,
 * so that the platform is a plain value (a migration carries it). Time is
 * ferry's clock_ns. */
#ifndef FERRY_VM_DEVS_H
#define FERRY_VM_DEVS_H

#include <stdbool.h>
#include <stdint.h>

#include "hv.h"

/* ---- 8259A PIC pair (pic.c): master at 0x20, slave at 0xA0 on IRQ 2 ---- */

struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t lines;      /* input levels, for edge detection */
	uint8_t base;       /* ICW2: vector of IRQ 0 */
	uint8_t init_step;  /* 0 ready; 2, 3, 4: the ICW expected next */
	bool icw4, single, auto_eoi, read_isr, poll;
	uint8_t elcr;       /* level-triggered inputs (0x4D0/0x4D1) */
};

struct pic {
	struct pic_chip chip[2]; /* master, slave */
};

void pic_reset(struct pic *p);
/* Drive IRQ line irq (0..15) to level. */
void pic_set_irq(struct pic *p, unsigned irq, bool level);
/* The vector the pair would deliver now, or -1. */
int pic_pending(const struct pic *p);
/* The CPU takes the interrupt: IRR -> ISR. Returns the vector (the
 * pending one, or the spurious IRQ 7/15 vector if it went away). */
int pic_ack(struct pic *p);
uint32_t pic_read(struct pic *p, uint16_t port);
void pic_write(struct pic *p, uint16_t port, uint32_t val);

/* ---- 8254 PIT (pit.c): ports 0x40-0x43, channel 0 on IRQ 0, channel 2's
 * gate and output through port 0x61 ---- */

struct pit_channel {
	uint8_t mode;        /* 0..5 */
	uint8_t access;      /* 1 lo, 2 hi, 3 lo then hi */
	uint32_t count;      /* reload value, 1..65536 */
	uint64_t load_ns;    /* when counting (re)started */
	bool gate;
	bool armed;          /* mode 0/1/4/5: the terminal count is still ahead */
	bool write_hi;       /* lo/hi access: next write is the high byte */
	bool read_hi;        /* lo/hi access: next read is the high byte */
	uint8_t write_lo;    /* low byte written, waiting for the high one */
	bool latched;        /* a count latch is held */
	uint16_t latch;
	uint8_t latch_reads; /* bytes of the latch left to read */
	bool status_latched;
	uint8_t status;
	uint64_t periods;    /* channel 0, modes 2 and 3: periods already raised */
};

struct pit {
	struct pit_channel ch[3];
	bool speaker;        /* port 0x61 bit 1 */
	bool refresh;        /* port 0x61 bit 4 toggles on each read */
};

void pit_reset(struct pit *t, uint64_t now);
uint32_t pit_read(struct pit *t, uint16_t port, uint64_t now);
void pit_write(struct pit *t, uint16_t port, uint32_t val, uint64_t now);
uint8_t pit_port61_read(struct pit *t, uint64_t now);
void pit_port61_write(struct pit *t, uint8_t val, uint64_t now);
/* true when IRQ 0 should be raised now: channel 0's one-shot count ran
 * out, or one more of its periods passed (call again for the next one, once
 * the PIC has taken this edge; none is lost within a second). */
bool pit_irq_due(struct pit *t, uint64_t now);

/* ---- 16550A UART (uart.c): the guest's console, 0x3F8, IRQ 4 ---- */

#define UART_FIFO 16

struct uart {
	uint8_t rx[UART_FIFO];
	uint8_t rx_head, rx_len;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	uint8_t msr_delta;   /* modem status change bits (3:0) */
	bool thr_irq;        /* a THR-empty interrupt is pending */
	bool fifo;           /* FCR bit 0 */
};

void uart_reset(struct uart *u);
uint32_t uart_read(struct uart *u, unsigned reg);
/* A write; a byte the guest transmits is returned in *out (1) or not (0). */
int uart_write(struct uart *u, unsigned reg, uint8_t val, uint8_t *out);
/* Room for input, and one byte of input (ignored when full). */
bool uart_can_receive(const struct uart *u);
void uart_receive(struct uart *u, uint8_t c);
/* The level of the UART's interrupt output (OUT2 gates it, as on a PC). */
bool uart_irq(const struct uart *u);

/* ---- CMOS and real-time clock (cmos.c): ports 0x70/0x71 ---- */

struct cmos {
	uint8_t index;
	uint8_t ram[128];
	uint64_t epoch_s;    /* seconds since 1970 at base_ns */
	uint64_t base_ns;
};

void cmos_reset(struct cmos *c, uint64_t epoch_s, uint64_t now);
uint32_t cmos_read(struct cmos *c, uint16_t port, uint64_t now);
void cmos_write(struct cmos *c, uint16_t port, uint8_t val);

/* ---- the CPU model (cpuid.c, msr.c) ---- */

/* CPUID as the guest sees it: r[0..3] = EAX, EBX, ECX, EDX. */
void vm_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4]);

#define VM_MISC_ENABLE_RESET 0x1801ull /* fast strings; BTS and PEBS unavailable */

struct vm_msrs {
	uint64_t hwcr;       /* AMD HWCR (0xC0010015): stored, not acted on */
	uint64_t misc_enable; /* IA32_MISC_ENABLE (0x1A0): stored, not acted on */
};

/* RDMSR/WRMSR. Returns 0, or -1 for a #GP (unknown MSR, bad value). */
int vm_msr(struct hv_vm *vm, struct vm_msrs *m, uint32_t index, uint64_t *val, bool write);

/* ---- the platform: every device's state (vm->plat) ---- */

#define VM_UART_BASE 0x3f8
#define VM_IRQ_PIT 0
#define VM_IRQ_UART 4

struct vm_platform {
	struct pic pic;
	struct pit pit;
	struct uart uart;
	struct cmos cmos;
	struct vm_msrs msrs;
	bool halted;         /* HLT with interrupts on: waits for one */
	bool stop;           /* a device asked to stop the guest (reset) */
	char stop_reason[120];
	uint64_t interrupts; /* delivered */
	uint64_t io_absent;  /* accesses to ports with no device */
	uint64_t msr_gp;     /* MSR accesses answered with #GP */
	uint32_t last_gp_msr;
};

#endif
