/* vm.c: the virtual platform's core: the port map, the exits a platform
 * guest makes (port I/O, MSRs, CPUID, HLT, interrupt windows), interrupt
 * delivery from the PIC before each entry, the halted CPU, and the guest
 * console (the UART's output to COM2 and a ring, input from COM2 or from
 * ferry's console while `guest console` is attached). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "serial.h"
#include "vm.h"
#include "vm_devs.h"

#define CTRL_RBRACKET 0x1d /* detaches the guest console */
#define VEC_GP 13

static struct vm_boot_file boot_files[4];
static uint64_t epoch_at_boot; /* wall clock at clock_ns() == 0, seconds since 1970 */
static unsigned nboot_files;

/* Guest console output, kept while the guest lives and after. */
static char ring[VM_CONSOLE_RING];
static uint64_t ring_total; /* bytes ever written */
/* COM2 takes the ring's bytes as fast as its reader drains it: aux_sent of
 * ring_total have gone; what a slow reader lets the ring overwrite is lost
 * (aux_lost), never waited for. */
static uint64_t aux_sent, aux_lost;
static bool attached;
/* Bytes typed on ferry's console while attached arrive faster than the
 * guest's 16-byte FIFO drains: they wait here (COM2's input waits in
 * COM2's own FIFO instead). */
static uint8_t typed[1024];
static unsigned typed_head, typed_len;

void vm_set_wall_time(uint64_t epoch_s)
{
	uint64_t up = clock_ns() / 1000000000ull;
	epoch_at_boot = epoch_s > up ? epoch_s - up : 0;
}

struct vm_platform *vm_platform_new(void)
{
	struct vm_platform *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	uint64_t now = clock_ns();
	pic_reset(&p->pic);
	pit_reset(&p->pit, now);
	uart_reset(&p->uart);
	cmos_reset(&p->cmos, epoch_at_boot + now / 1000000000ull, now);
	p->msrs.misc_enable = VM_MISC_ENABLE_RESET;
	return p;
}

void vm_set_boot_files(const struct vm_boot_file *files, unsigned n)
{
	nboot_files = n < 4 ? n : 4;
	memcpy(boot_files, files, nboot_files * sizeof(*files));
}

const struct vm_boot_file *vm_boot_file(const char *name)
{
	for (unsigned i = 0; i < nboot_files; i++)
		if (strcmp(boot_files[i].name, name) == 0)
			return &boot_files[i];
	return NULL;
}

int vm_backend_check(const struct hv_ops *ops, char *why, size_t n)
{
	if (!ops->inject) {
		snprintf(why, n, "an operating system needs hardware virtualization with a virtual platform; "
			 "backend %s has none (the guest runs at CPL3 under ferry's tables)", ops->name);
		return -1;
	}
	if (ops->os_supported && ops->os_supported(why, n) < 0)
		return -1;
	return 0;
}

void vm_destroy(struct hv_vm *vm)
{
	free(vm->plat);
	vm->plat = NULL;
	typed_len = 0; /* typed for this guest, not the next */
	if (attached) { /* e.g. the guest moved away under an attached console */
		attached = false;
		console_divert(NULL);
		printf("\nguest console: detached: the guest is gone\n");
		console_start();
	}
}

/* ---- the guest console ---- */

/* Send what COM2 can take now. Returns 1 if it sent anything. */
static int aux_flush(void)
{
	if (!serial_aux_present())
		return 0;
	if (ring_total - aux_sent > VM_CONSOLE_RING) {
		aux_lost += ring_total - aux_sent - VM_CONSOLE_RING;
		aux_sent = ring_total - VM_CONSOLE_RING;
	}
	int did = 0;
	while (aux_sent < ring_total && serial_aux_try_putc((uint8_t)ring[aux_sent % VM_CONSOLE_RING])) {
		aux_sent++;
		did = 1;
	}
	return did;
}

static void console_out(uint8_t c)
{
	ring[ring_total % VM_CONSOLE_RING] = (char)c;
	ring_total++;
	aux_flush();
	if (attached)
		serial_write((const char *)&c, 1);
}

static int divert_to_guest(int c)
{
	if (c == CTRL_RBRACKET) {
		attached = false;
		printf("\nguest console: detached\n");
		return 1;
	}
	vm_console_input((uint8_t)c);
	return 0;
}

void vm_console_attach(bool on)
{
	attached = on;
	console_divert(on ? divert_to_guest : NULL);
}


void vm_console_input(uint8_t c)
{
	if (typed_len < sizeof(typed))
		typed[(typed_head + typed_len++) % sizeof(typed)] = c;
}

/* Move typed bytes into the guest's UART while it has room. */
static int feed_typed(struct uart *u)
{
	int did = 0;
	while (typed_len && uart_can_receive(u)) {
		uart_receive(u, typed[typed_head]);
		typed_head = (typed_head + 1) % sizeof(typed);
		typed_len--;
		did = 1;
	}
	return did;
}

void vm_console_dump(void)
{
	uint64_t n = ring_total < VM_CONSOLE_RING ? ring_total : VM_CONSOLE_RING;
	for (uint64_t i = ring_total - n; i < ring_total; i++) {
		char c = ring[i % VM_CONSOLE_RING];
		if (c == '\n' || (c >= 0x20 && c < 0x7f) || c == '\t')
			serial_write(&c, 1);
	}
	if (n && ring[(ring_total - 1) % VM_CONSOLE_RING] != '\n')
		serial_write("\n", 1);
}

int vm_poll(void)
{
	int did = aux_flush(); /* what the guest printed goes on after it has gone */
	struct hv_vm *vm = hv_guest();
	if (!vm || !vm->plat)
		return did;
	did |= feed_typed(&vm->plat->uart);
	if (!serial_aux_present())
		return did;
	while (uart_can_receive(&vm->plat->uart)) {
		int c = serial_aux_getc();
		if (c < 0)
			break;
		uart_receive(&vm->plat->uart, (uint8_t)c);
		did = 1;
	}
	return did;
}

/* ---- port I/O ---- */

static void reset_request(struct vm_platform *p, const char *how)
{
	snprintf(p->stop_reason, sizeof(p->stop_reason), "the guest reset the machine (%s)", how);
	p->stop = true;
}

static uint8_t port_in(struct vm_platform *p, uint16_t port, uint64_t now)
{
	switch (port) {
	case 0x20: case 0x21: case 0xa0: case 0xa1: case 0x4d0: case 0x4d1:
		return (uint8_t)pic_read(&p->pic, port);
	case 0x40: case 0x41: case 0x42: case 0x43:
		return (uint8_t)pit_read(&p->pit, port, now);
	case 0x61:
		return pit_port61_read(&p->pit, now);
	case 0x70: case 0x71:
		return (uint8_t)cmos_read(&p->cmos, port, now);
	default:
		if (port >= VM_UART_BASE && port < VM_UART_BASE + 8)
			return (uint8_t)uart_read(&p->uart, port - VM_UART_BASE);
		p->io_absent++;
		return 0xff; /* no device: the bus floats high */
	}
}

/* One byte out. wide: part of a 16- or 32-bit access, which the byte-wide
 * system control ports below do not decode (Linux's PCI probe writes 32
 * bits to 0xCF8: the byte that lands on 0xCF9 is not a reset). */
static void port_out(struct vm_platform *p, uint16_t port, uint8_t v, uint64_t now, bool wide)
{
	if (wide && (port == 0x64 || port == 0x92 || port == 0xcf9)) {
		p->io_absent++;
		return;
	}
	switch (port) {
	case 0x20: case 0x21: case 0xa0: case 0xa1: case 0x4d0: case 0x4d1:
		pic_write(&p->pic, port, v);
		return;
	case 0x40: case 0x41: case 0x42: case 0x43:
		pit_write(&p->pit, port, v, now);
		return;
	case 0x61:
		pit_port61_write(&p->pit, v, now);
		return;
	case 0x70: case 0x71:
		cmos_write(&p->cmos, port, v);
		return;
	case 0x64: /* keyboard controller: pulse the reset line */
		if (v == 0xfe)
			reset_request(p, "keyboard controller");
		return;
	case 0x92: /* port A: fast reset */
		if (v & 1)
			reset_request(p, "port 0x92");
		return;
	case 0xcf9: /* reset control register */
		if (v & 4)
			reset_request(p, "port 0xcf9");
		return;
	case 0x80: /* POST code: an I/O delay */
		return;
	default:
		if (port >= VM_UART_BASE && port < VM_UART_BASE + 8) {
			uint8_t c;
			if (uart_write(&p->uart, port - VM_UART_BASE, v, &c))
				console_out(c);
			return;
		}
		p->io_absent++;
		return;
	}
}

static int exit_io(struct hv_vm *vm, struct vm_platform *p, const struct hv_exit *e)
{
	if (e->string) {
		snprintf(p->stop_reason, sizeof(p->stop_reason),
			 "string port I/O (INS/OUTS) at port 0x%x is not emulated (rip 0x%llx)", e->port,
			 (unsigned long long)e->rip);
		p->stop = true;
		return -1;
	}
	uint64_t now = clock_ns();
	if (e->in) {
		uint32_t v = 0;
		for (unsigned i = 0; i < e->size; i++)
			v |= (uint32_t)port_in(p, (uint16_t)(e->port + i), now) << (8 * i);
		uint64_t *rax = &vm->gpr[HV_RAX];
		if (e->size == 4)
			*rax = v; /* a 32-bit result zero-extends into RAX */
		else if (e->size == 2)
			*rax = (*rax & ~0xffffull) | v;
		else
			*rax = (*rax & ~0xffull) | v;
	} else {
		uint64_t v = vm->gpr[HV_RAX];
		for (unsigned i = 0; i < e->size; i++)
			port_out(p, (uint16_t)(e->port + i), (uint8_t)(v >> (8 * i)), now, e->size > 1);
	}
	vm->ops->set_rip(vm, e->next_rip);
	return 0;
}

/* ---- MSRs, CPUID, HLT ---- */

static void exit_msr(struct hv_vm *vm, struct vm_platform *p, const struct hv_exit *e)
{
	uint32_t index = (uint32_t)vm->gpr[HV_RCX];
	uint64_t val = (vm->gpr[HV_RDX] << 32) | (uint32_t)vm->gpr[HV_RAX];
	if (vm_msr(vm, &p->msrs, index, &val, e->write) < 0) {
		p->msr_gp++;
		p->last_gp_msr = index;
		vm->ops->inject(vm, HV_EVENT_EXCEPTION, VEC_GP, true, 0);
		return;
	}
	if (!e->write) {
		vm->gpr[HV_RAX] = (uint32_t)val;
		vm->gpr[HV_RDX] = val >> 32;
	}
	vm->ops->set_rip(vm, e->next_rip);
}

static void exit_cpuid(struct hv_vm *vm, const struct hv_exit *e)
{
	uint32_t r[4];
	vm_cpuid((uint32_t)vm->gpr[HV_RAX], (uint32_t)vm->gpr[HV_RCX], r);
	vm->gpr[HV_RAX] = r[0];
	vm->gpr[HV_RBX] = r[1];
	vm->gpr[HV_RCX] = r[2];
	vm->gpr[HV_RDX] = r[3];
	vm->ops->set_rip(vm, e->next_rip);
}

/* ---- interrupts ---- */

/* Bring the interrupt lines up to date: the PIT's edges (one more only
 * once the PIC has taken the last: an edge into a set IRR is lost), the
 * UART's level. */
static void update_lines(struct vm_platform *p, uint64_t now)
{
	if (!(p->pic.chip[0].irr & (1u << VM_IRQ_PIT)) && pit_irq_due(&p->pit, now)) {
		pic_set_irq(&p->pic, VM_IRQ_PIT, true);
		pic_set_irq(&p->pic, VM_IRQ_PIT, false);
	}
	pic_set_irq(&p->pic, VM_IRQ_UART, uart_irq(&p->uart));
}

void vm_prepare(struct hv_vm *vm)
{
	struct vm_platform *p = vm->plat;
	update_lines(p, clock_ns());
	if (pic_pending(&p->pic) < 0) {
		vm->ops->irq_window(vm, false);
		return;
	}
	if (vm->ops->interruptible(vm)) {
		int vector = pic_ack(&p->pic);
		vm->ops->inject(vm, HV_EVENT_INTR, (uint8_t)vector, false, 0);
		vm->ops->irq_window(vm, false);
		p->halted = false;
		p->interrupts++;
	} else {
		vm->ops->irq_window(vm, true);
	}
}

bool vm_runnable(struct hv_vm *vm)
{
	struct vm_platform *p = vm->plat;
	if (!p->halted)
		return true;
	update_lines(p, clock_ns());
	return pic_pending(&p->pic) >= 0;
}

/* ---- exits ---- */

static int stop(struct hv_vm *vm, struct vm_platform *p, enum hv_vm_state st)
{
	vm->state = st;
	printf("guest: stopped: %s\n", p->stop_reason);
	return -1;
}

int vm_exit(struct hv_vm *vm, const struct hv_exit *e)
{
	struct vm_platform *p = vm->plat;
	switch (e->reason) {
	case HV_EXIT_IO:
		exit_io(vm, p, e);
		break;
	case HV_EXIT_MSR:
		exit_msr(vm, p, e);
		break;
	case HV_EXIT_CPUID:
		exit_cpuid(vm, e);
		break;
	case HV_EXIT_IRQ_WINDOW:
		break; /* vm_prepare delivers it */
	case HV_EXIT_HLT:
		vm->ops->set_rip(vm, e->next_rip);
		if (!(e->rflags & (1ull << 9))) {
			/* Nothing can wake it: how Linux ends a halt or power-off
			 * on a machine without ACPI. */
			snprintf(p->stop_reason, sizeof(p->stop_reason),
				 "halted with interrupts off (powered off) at rip 0x%llx", (unsigned long long)e->rip);
			return stop(vm, p, HV_VM_EXITED);
		}
		p->halted = true;
		break;
	case HV_EXIT_SHUTDOWN:
		snprintf(p->stop_reason, sizeof(p->stop_reason), "triple fault (rip 0x%llx): the machine reset",
			 (unsigned long long)e->rip);
		return stop(vm, p, HV_VM_EXITED);
	case HV_EXIT_MEMORY:
		snprintf(p->stop_reason, sizeof(p->stop_reason),
			 "access to guest-physical 0x%llx, outside memory and every device (rip 0x%llx)",
			 (unsigned long long)e->gpa, (unsigned long long)e->rip);
		return stop(vm, p, HV_VM_FAULTED);
	default:
		snprintf(p->stop_reason, sizeof(p->stop_reason),
			 "unexpected exit %s, hardware reason 0x%llx, qualification 0x%llx (rip 0x%llx)",
			 hv_exit_name(e->reason), (unsigned long long)e->code, (unsigned long long)e->error,
			 (unsigned long long)e->rip);
		return stop(vm, p, HV_VM_FAULTED);
	}
	if (p->stop)
		return stop(vm, p, HV_VM_EXITED);
	return 0;
}

void vm_info(const struct hv_vm *vm)
{
	const struct vm_platform *p = vm->plat;
	printf("platform: pic, pit, uart 0x%x irq %u, cmos; %s%s\n", VM_UART_BASE, VM_IRQ_UART,
	       p->halted ? "cpu halted" : "cpu running", attached ? ", console attached" : "");
	printf("platform counters: interrupts %llu, absent-port accesses %llu, msr #GP %llu",
	       (unsigned long long)p->interrupts, (unsigned long long)p->io_absent,
	       (unsigned long long)p->msr_gp);
	if (p->msr_gp)
		printf(" (last 0x%x)", p->last_gp_msr);
	printf("; console output %llu bytes (%s", (unsigned long long)ring_total,
	       serial_aux_present() ? "on COM2" : "no COM2: 'guest console' shows it");
	if (ring_total > aux_sent && serial_aux_present())
		printf(", %llu waiting for COM2's reader", (unsigned long long)(ring_total - aux_sent));
	if (aux_lost)
		printf(", %llu lost there: its reader fell 64 KiB behind", (unsigned long long)aux_lost);
	printf(")\n");
}
