/* trap.h: the IDT, interrupt dispatch, crash dumps and panic.
 *
 * Every vector enters through one assembly stub (kernel/trap_entry.S) that
 * saves the general registers and the FP/SSE state, so C handlers may use
 * SSE. Interrupts stay disabled in ferry except inside the main loop's
 * idle halt, so handlers never race the code they interrupt. */
#ifndef FERRY_TRAP_H
#define FERRY_TRAP_H

#include <stdint.h>

/* What the entry stub pushed, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error; /* error is 0 for vectors without one */
	uint64_t rip, cs, rflags, rsp, ss;
};
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "trap_frame layout is shared with trap_entry.S");

#define TRAP_PF 14
#define TRAP_TIMER 0x20    /* local APIC timer */
#define TRAP_NIC 0x30      /* the NIC's receive interrupt (wakes the idle halt) */
#define TRAP_UART 0x31     /* COM1's receive interrupt (wakes the idle halt) */
#define TRAP_PANIC 0xf0    /* panic(): dump and halt */
#define TRAP_SPURIOUS 0xff /* local APIC spurious vector */

/* A handler returns to the interrupted code when it returns. */
typedef void (*trap_handler_fn)(struct trap_frame *f);

/* Build and load the IDT. Requires gdt_init. Unhandled exceptions and
 * TRAP_PANIC print a crash dump and halt. */
void trap_init(void);

/* Route a vector to fn (NULL restores the default). For exception
 * vectors the handler owns deciding whether the fault is fatal. */
void trap_set_handler(uint8_t vector, trap_handler_fn fn);

/* Route every trap taken in ring 3 to fn (NULL: none): after the
 * vector's own handler for interrupts (vector >= 32), instead of any
 * handler for exceptions. fn may not return (the pte backend switches
 * back to the host's context). */
void trap_set_user_handler(trap_handler_fn fn);

/* Let ring 3 raise vector with INT n (gate DPL 3); dpl 0 restores. */
void trap_set_gate_dpl(uint8_t vector, unsigned dpl);

/* The FXSAVE image of the interrupted context's FP/SSE state that the
 * entry stub saved for frame f (valid while f's handler runs). */
void *trap_frame_fpu(struct trap_frame *f);

/* Print the crash dump for f (registers, control registers, backtrace) to
 * serial and halt forever. Safe in any context. */
void trap_dump_and_halt(const struct trap_frame *f, const char *why) __attribute__((noreturn));

/* Kernel invariant broken: print file:line and the message, then dump the
 * registers and halt. */
void panic_at(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));
#define panic(...) panic_at(__FILE__, __LINE__, __VA_ARGS__)
#define KASSERT(c)                                                      \
	do {                                                            \
		if (!(c))                                               \
			panic_at(__FILE__, __LINE__, "assertion '%s' failed", #c); \
	} while (0)

/* Count of interrupts on vectors no handler claimed (spurious). */
extern uint64_t trap_spurious_count;

#endif
