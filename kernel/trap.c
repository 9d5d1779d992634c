/* trap.c: IDT, dispatch, crash dumps and panic. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "boot_info.h"
#include "gdt.h"
#include "serial.h"
#include "trap.h"
#include "x86.h"

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr; /* P, DPL, type 0xE = 64-bit interrupt gate */
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate size");

#define GATE_INTERRUPT 0x8e
#define TRAP_STUB_BYTES 16

extern const uint8_t trap_stubs[];
extern uint8_t boot_stack[];
extern uint8_t _ferry_image_start[];

static struct idt_gate idt[256] __attribute__((aligned(16)));
static trap_handler_fn handlers[256];
static trap_handler_fn user_handler;
uint64_t trap_spurious_count;

static const char *const trap_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
	"#SS stack fault", "#GP general protection", "#PF page fault", "reserved 15",
	"#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD exception",
	"#VE virtualization exception", "#CP control protection", "reserved 22", "reserved 23",
	"reserved 24", "reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
	"#VC VMM communication", "#SX security exception", "reserved 31",
};

void trap_init(void)
{
	for (int v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(uintptr_t)(trap_stubs + v * TRAP_STUB_BYTES);
		idt[v].off_lo = a & 0xffff;
		idt[v].sel = GDT_KERNEL_CS;
		idt[v].ist = 0;
		idt[v].type_attr = GATE_INTERRUPT;
		idt[v].off_mid = (a >> 16) & 0xffff;
		idt[v].off_hi = a >> 32;
		idt[v].reserved = 0;
	}
	/* A stack overflow faults on the guard page, and the #PF cannot push
	 * its frame on the same stack: #DF (and NMI) get stacks of their own. */
	idt[8].ist = GDT_IST_DOUBLE_FAULT;
	idt[2].ist = GDT_IST_NMI;
	struct x86_dtr d = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	x86_lidt(&d);
}

void trap_set_handler(uint8_t vector, trap_handler_fn fn)
{
	handlers[vector] = fn;
}

void trap_set_user_handler(trap_handler_fn fn)
{
	user_handler = fn;
}

void trap_set_gate_dpl(uint8_t vector, unsigned dpl)
{
	idt[vector].type_attr = (uint8_t)(GATE_INTERRUPT | ((dpl & 3) << 5));
}

void *trap_frame_fpu(struct trap_frame *f)
{
	/* Mirrors trap_common: subq $512, %rsp; andq $-16, %rsp; fxsave64. */
	return (void *)(((uintptr_t)f - 512) & ~(uintptr_t)15);
}

/* Called from trap_common with interrupts disabled. */
void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	uint8_t v = (uint8_t)f->vector;
	if ((f->cs & 3) == 3 && user_handler) {
		/* From ring 3 (the pte guest): interrupts still go to their
		 * handler first; exceptions belong to the user handler alone. */
		if (v >= 32 && handlers[v])
			handlers[v](f);
		user_handler(f);
		return;
	}
	if (handlers[v]) {
		handlers[v](f);
		return;
	}
	if (v < 32)
		trap_dump_and_halt(f, trap_names[v]);
	if (v == TRAP_PANIC)
		trap_dump_and_halt(f, "panic");
	trap_spurious_count++;
}

static void dump_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dump_line(const char *fmt, ...)
{
	char buf[160];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (n > 0)
		serial_write(buf, (size_t)n);
}

static uint64_t image_offset(uint64_t a)
{
	uint64_t base = (uint64_t)(uintptr_t)_ferry_image_start;
	return a >= base ? a - base : 0;
}

/* Walk the frame-pointer chain (ferry is built -fno-omit-frame-pointer),
 * trusting only frames inside the kernel stack, so a corrupt chain ends
 * the walk instead of faulting again. */
static void dump_backtrace(uint64_t rbp, uint64_t rip)
{
	uint64_t lo = (uint64_t)(uintptr_t)boot_stack, hi = lo + 64 * 1024 + 4096;
	dump_line("backtrace (addr2line -e build/ferry.so OFFSET):\n");
	dump_line("  #0  0x%016llx  image+0x%llx\n", (unsigned long long)rip,
		  (unsigned long long)image_offset(rip));
	for (int i = 1; i < 16 && rbp >= lo && rbp + 16 <= hi && !(rbp & 7); i++) {
		const uint64_t *fp = (const uint64_t *)(uintptr_t)rbp;
		uint64_t ret = fp[1];
		if (!ret)
			break;
		dump_line("  #%-2d 0x%016llx  image+0x%llx\n", i, (unsigned long long)ret,
			  (unsigned long long)image_offset(ret));
		if (fp[0] <= rbp)
			break; /* frames must move up the stack */
		rbp = fp[0];
	}
}

#define U(x) ((unsigned long long)(x))

void trap_dump_and_halt(const struct trap_frame *f, const char *why)
{
	x86_cli();
	dump_line("\n*** ferry: fatal %s (vector %llu), error code 0x%llx\n", why, U(f->vector),
		  U(f->error));
	if (f->vector == TRAP_PF)
		dump_line("    page fault at 0x%016llx: %s, %s, %s%s\n", U(x86_read_cr2()),
			  (f->error & 1) ? "protection violation" : "page not present",
			  (f->error & 2) ? "write" : "read", (f->error & 4) ? "user" : "kernel",
			  (f->error & 16) ? ", instruction fetch" : "");
	dump_line("RIP 0x%016llx (image+0x%llx)  CS 0x%llx  RFLAGS 0x%016llx\n", U(f->rip),
		  U(image_offset(f->rip)), U(f->cs), U(f->rflags));
	dump_line("RSP 0x%016llx  SS 0x%llx\n", U(f->rsp), U(f->ss));
	dump_line("RAX 0x%016llx  RBX 0x%016llx  RCX 0x%016llx\n", U(f->rax), U(f->rbx), U(f->rcx));
	dump_line("RDX 0x%016llx  RSI 0x%016llx  RDI 0x%016llx\n", U(f->rdx), U(f->rsi), U(f->rdi));
	dump_line("RBP 0x%016llx  R8  0x%016llx  R9  0x%016llx\n", U(f->rbp), U(f->r8), U(f->r9));
	dump_line("R10 0x%016llx  R11 0x%016llx  R12 0x%016llx\n", U(f->r10), U(f->r11), U(f->r12));
	dump_line("R13 0x%016llx  R14 0x%016llx  R15 0x%016llx\n", U(f->r13), U(f->r14), U(f->r15));
	dump_line("CR0 0x%016llx  CR2 0x%016llx  CR3 0x%016llx\n", U(x86_read_cr0()), U(x86_read_cr2()),
		  U(x86_read_cr3()));
	dump_line("CR4 0x%016llx  EFER 0x%016llx\n", U(x86_read_cr4()), U(x86_rdmsr(MSR_EFER)));
	dump_backtrace(f->rbp, f->rip);
	dump_line("*** ferry: halted\n");
	for (;;)
		x86_hlt();
}

void panic_at(const char *file, int line, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	x86_cli();
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	dump_line("\n*** ferry: PANIC at %s:%d: %s\n", file, line, buf);
	/* Through the IDT so the dump shows this context's registers. */
	__asm__ volatile("int %0" ::"i"(TRAP_PANIC));
	for (;;)
		x86_hlt();
}
