/* vm_state.c: the platform's state as it travels in a DEVICE_STATE record
 * (model STREAM_PLATFORM_PC_V1): every device, the halted CPU, and the
 * vCPU's pending event and interrupt shadow. A fixed little-endian layout
 * of its own (struct vm_wire, not the in-memory structs), with times made
 * relative to the moment of capture, so that they mean the same on a host
 * whose clock started at another moment. A loaded state is checked field
 * by field first: a bad one is refused whole and changes nothing. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "vm.h"
#include "vm_devs.h"

#define VM_WIRE_LAYOUT 1u
#define WF_HALTED 0x1u

enum { PIC_ICW4 = 1, PIC_SINGLE = 2, PIC_AEOI = 4, PIC_READ_ISR = 8, PIC_POLL = 16 };
enum { CH_GATE = 1, CH_ARMED = 2, CH_WRITE_HI = 4, CH_READ_HI = 8, CH_LATCHED = 16, CH_STATUS = 32 };
enum { PIT_SPEAKER = 1, PIT_REFRESH = 2 };
enum { UART_THR_IRQ = 1, UART_FIFO_ON = 2 };

struct vm_wire_pic {
	uint8_t irr, isr, imr, lines, base, init_step, flags, elcr;
};

struct vm_wire_pit {
	uint8_t mode, access, flags, write_lo, latch_reads, status;
	uint16_t latch;
	uint32_t count;
	uint32_t reserved;
	uint64_t age_ns;  /* capture time - load time */
	uint64_t periods;
};

struct vm_wire {
	uint32_t layout;  /* VM_WIRE_LAYOUT */
	uint32_t flags;   /* WF_* */
	uint64_t pending_event;
	uint32_t interrupt_shadow;
	uint32_t reserved0;
	struct vm_wire_pic pic[2];
	struct vm_wire_pit pit[3];
	uint8_t pit_flags;
	uint8_t uart_rx_head, uart_rx_len, uart_ier, uart_lcr, uart_mcr, uart_scr, uart_dll;
	uint8_t uart_dlm, uart_fcr, uart_msr_delta, uart_flags, cmos_index, reserved1[3];
	uint8_t uart_rx[UART_FIFO];
	uint8_t cmos_ram[128];
	uint64_t wall_s;  /* the CMOS clock at capture, seconds since 1970 ... */
	uint64_t wall_ns; /* ... and nanoseconds into that second */
	uint64_t msr_hwcr, msr_misc_enable;
};
/* Naturally aligned, no padding: the layout is the struct. */
_Static_assert(sizeof(struct vm_wire) == 328, "vm_wire layout");
_Static_assert(__builtin_offsetof(struct vm_wire, pit) == 40, "vm_wire layout");
_Static_assert(__builtin_offsetof(struct vm_wire, uart_rx) == 152, "vm_wire layout");
_Static_assert(__builtin_offsetof(struct vm_wire, wall_s) == 296, "vm_wire layout");

size_t vm_state_save(const struct hv_vm *vm, const struct hv_cpu_state *s, void *buf, size_t len)
{
	const struct vm_platform *p = vm->plat;
	struct vm_wire w;
	uint64_t now = clock_ns();
	if (len < sizeof(w))
		return 0;
	memset(&w, 0, sizeof(w));
	w.layout = VM_WIRE_LAYOUT;
	w.flags = p->halted ? WF_HALTED : 0;
	w.pending_event = s->pending_event;
	w.interrupt_shadow = s->interrupt_shadow;
	for (int i = 0; i < 2; i++) {
		const struct pic_chip *c = &p->pic.chip[i];
		w.pic[i] = (struct vm_wire_pic){
			.irr = c->irr, .isr = c->isr, .imr = c->imr, .lines = c->lines, .base = c->base,
			.init_step = c->init_step, .elcr = c->elcr,
			.flags = (uint8_t)((c->icw4 ? PIC_ICW4 : 0) | (c->single ? PIC_SINGLE : 0) |
					   (c->auto_eoi ? PIC_AEOI : 0) | (c->read_isr ? PIC_READ_ISR : 0) |
					   (c->poll ? PIC_POLL : 0)),
		};
	}
	for (int i = 0; i < 3; i++) {
		const struct pit_channel *c = &p->pit.ch[i];
		w.pit[i] = (struct vm_wire_pit){
			.mode = c->mode, .access = c->access, .write_lo = c->write_lo, .latch_reads = c->latch_reads,
			.status = c->status, .latch = c->latch, .count = c->count, .age_ns = now - c->load_ns,
			.periods = c->periods,
			.flags = (uint8_t)((c->gate ? CH_GATE : 0) | (c->armed ? CH_ARMED : 0) |
					   (c->write_hi ? CH_WRITE_HI : 0) | (c->read_hi ? CH_READ_HI : 0) |
					   (c->latched ? CH_LATCHED : 0) | (c->status_latched ? CH_STATUS : 0)),
		};
	}
	w.pit_flags = (uint8_t)((p->pit.speaker ? PIT_SPEAKER : 0) | (p->pit.refresh ? PIT_REFRESH : 0));
	const struct uart *u = &p->uart;
	memcpy(w.uart_rx, u->rx, UART_FIFO);
	w.uart_rx_head = u->rx_head;
	w.uart_rx_len = u->rx_len;
	w.uart_ier = u->ier;
	w.uart_lcr = u->lcr;
	w.uart_mcr = u->mcr;
	w.uart_scr = u->scr;
	w.uart_dll = u->dll;
	w.uart_dlm = u->dlm;
	w.uart_fcr = u->fcr;
	w.uart_msr_delta = u->msr_delta;
	w.uart_flags = (uint8_t)((u->thr_irq ? UART_THR_IRQ : 0) | (u->fifo ? UART_FIFO_ON : 0));
	w.cmos_index = p->cmos.index;
	memcpy(w.cmos_ram, p->cmos.ram, sizeof(w.cmos_ram));
	uint64_t since = now - p->cmos.base_ns;
	w.wall_s = p->cmos.epoch_s + since / 1000000000ull;
	w.wall_ns = since % 1000000000ull;
	w.msr_hwcr = p->msrs.hwcr;
	w.msr_misc_enable = p->msrs.misc_enable;
	memcpy(buf, &w, sizeof(w));
	return sizeof(w);
}

#define BAD(...) (snprintf(why, n, __VA_ARGS__), -1)

int vm_state_check(const void *buf, size_t len, char *why, size_t n)
{
	struct vm_wire w;
	if (len != sizeof(w))
		return BAD("device state of %zu bytes, layout %u has %zu", len, VM_WIRE_LAYOUT, sizeof(w));
	memcpy(&w, buf, sizeof(w));
	if (w.layout != VM_WIRE_LAYOUT)
		return BAD("device state layout %u, this ferry knows %u", (unsigned)w.layout, VM_WIRE_LAYOUT);
	if (w.flags & ~WF_HALTED || w.reserved0 || w.reserved1[0] || w.reserved1[1] || w.reserved1[2])
		return BAD("device state: unknown flags 0x%x or a reserved field set", (unsigned)w.flags);
	for (int i = 0; i < 2; i++) {
		const struct vm_wire_pic *c = &w.pic[i];
		if ((c->init_step && (c->init_step < 2 || c->init_step > 4)) || (c->base & 7) || c->flags > 31)
			return BAD("device state: PIC %d init step %u, base 0x%x, flags 0x%x", i, c->init_step, c->base,
				   c->flags);
	}
	for (int i = 0; i < 3; i++) {
		const struct vm_wire_pit *c = &w.pit[i];
		if (c->mode > 5 || c->access < 1 || c->access > 3 || c->count < 1 || c->count > 65536 ||
		    c->latch_reads > 2 || c->flags > 63 || c->reserved)
			return BAD("device state: PIT channel %d mode %u, access %u, count %u, latch reads %u", i,
				   c->mode, c->access, (unsigned)c->count, c->latch_reads);
	}
	if (w.pit_flags > 3 || w.uart_rx_len > UART_FIFO || w.uart_rx_head >= UART_FIFO || w.uart_ier > 0x0f ||
	    w.uart_mcr > 0x1f || w.uart_msr_delta > 0x0f || w.uart_flags > 3 || w.cmos_index > 127 ||
	    w.wall_ns >= 1000000000ull)
		return BAD("device state: UART (rx %u at %u, ier 0x%x, mcr 0x%x) or CMOS (index %u) out of range",
			   w.uart_rx_len, w.uart_rx_head, w.uart_ier, w.uart_mcr, w.cmos_index);
	return 0;
}

void vm_state_load(struct hv_vm *vm, const void *buf, struct hv_cpu_state *s)
{
	struct vm_platform *p = vm->plat;
	struct vm_wire w;
	uint64_t now = clock_ns();
	memcpy(&w, buf, sizeof(w));
	p->halted = w.flags & WF_HALTED;
	s->pending_event = w.pending_event;
	s->interrupt_shadow = w.interrupt_shadow;
	for (int i = 0; i < 2; i++) {
		struct pic_chip *c = &p->pic.chip[i];
		const struct vm_wire_pic *x = &w.pic[i];
		*c = (struct pic_chip){
			.irr = x->irr, .isr = x->isr, .imr = x->imr, .lines = x->lines, .base = x->base,
			.init_step = x->init_step, .elcr = x->elcr, .icw4 = x->flags & PIC_ICW4,
			.single = x->flags & PIC_SINGLE, .auto_eoi = x->flags & PIC_AEOI,
			.read_isr = x->flags & PIC_READ_ISR, .poll = x->flags & PIC_POLL,
		};
	}
	for (int i = 0; i < 3; i++) {
		struct pit_channel *c = &p->pit.ch[i];
		const struct vm_wire_pit *x = &w.pit[i];
		*c = (struct pit_channel){
			.mode = x->mode, .access = x->access, .write_lo = x->write_lo, .latch_reads = x->latch_reads,
			.status = x->status, .latch = x->latch, .count = x->count, .load_ns = now - x->age_ns,
			.periods = x->periods, .gate = x->flags & CH_GATE, .armed = x->flags & CH_ARMED,
			.write_hi = x->flags & CH_WRITE_HI, .read_hi = x->flags & CH_READ_HI,
			.latched = x->flags & CH_LATCHED, .status_latched = x->flags & CH_STATUS,
		};
	}
	p->pit.speaker = w.pit_flags & PIT_SPEAKER;
	p->pit.refresh = w.pit_flags & PIT_REFRESH;
	struct uart *u = &p->uart;
	memcpy(u->rx, w.uart_rx, UART_FIFO);
	u->rx_head = w.uart_rx_head;
	u->rx_len = w.uart_rx_len;
	u->ier = w.uart_ier;
	u->lcr = w.uart_lcr;
	u->mcr = w.uart_mcr;
	u->scr = w.uart_scr;
	u->dll = w.uart_dll;
	u->dlm = w.uart_dlm;
	u->fcr = w.uart_fcr;
	u->msr_delta = w.uart_msr_delta;
	u->thr_irq = w.uart_flags & UART_THR_IRQ;
	u->fifo = w.uart_flags & UART_FIFO_ON;
	p->cmos.index = w.cmos_index;
	memcpy(p->cmos.ram, w.cmos_ram, sizeof(p->cmos.ram));
	p->cmos.epoch_s = w.wall_s;
	p->cmos.base_ns = now - w.wall_ns;
	p->msrs.hwcr = w.msr_hwcr;
	p->msrs.misc_enable = w.msr_misc_enable;
}
