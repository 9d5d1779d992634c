/* vm.h: the virtual platform an operating-system guest sees (kernel/vm/):
 * a fixed CPU model (CPUID, MSRs), an 8259 PIC pair, an 8254 PIT, a 16550
 * UART at 0x3F8 on IRQ 4, the CMOS clock and the reset ports; and the
 * loader that boots a Linux bzImage into it with the x86 boot protocol.
 *
 * No local APIC, no I/O APIC, no ACPI tables: Linux finds no APIC in CPUID
 * and runs on the PIC with the PIT as its timer. Everything is port I/O,
 * so no MMIO decoding is needed (QEMU TCG's SVM has no decode assists).
 *
 * hv.c owns the guest; it calls vm_exit for the exits a platform guest
 * makes, vm_prepare before every entry and vm_runnable to know whether a
 * halted guest has anything to do. */
#ifndef FERRY_VM_H
#define FERRY_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"

#define VM_LINUX_DEFAULT_SIZE (256ull << 20) /* bytes */
#define VM_LINUX_DEFAULT_CMDLINE "console=ttyS0 acpi=off" /* no ACPI tables: say so */
#define VM_CONSOLE_RING (64u << 10) /* bytes of guest console output kept */

/* The guest's files as boot/ found them on the boot volume (\ferry\). */
struct vm_boot_file {
	const char *name; /* "vmlinuz", "initrd.img", "cmdline" */
	const void *data;
	uint64_t size;
};

/* Remember the boot volume's files (kernel_main, from boot_info). */
void vm_set_boot_files(const struct vm_boot_file *files, unsigned n);

/* The wall-clock time now, seconds since 1970 (kernel_main, from the
 * firmware's clock): the guest's CMOS clock starts from it. */
void vm_set_wall_time(uint64_t epoch_s);

/* The named file, or NULL. */
const struct vm_boot_file *vm_boot_file(const char *name);

/* Can the current backend run an OS guest? 0, or -1 with why set. */
int vm_backend_check(const struct hv_ops *ops, char *why, size_t n);

/* Create the platform for vm (vm->plat) and load the Linux kernel from the
 * boot files into its memory, filling the initial CPU state s. Returns 0,
 * or -1 after printing why (no kernel, not a bzImage, too big for the
 * guest's memory). Nothing is kept on failure. */
int vm_linux_load(struct hv_vm *vm, struct hv_cpu_state *s);

/* A platform in its power-on state (an incoming guest's, before its
 * DEVICE_STATE arrives), or NULL when out of memory. */
struct vm_platform *vm_platform_new(void);

/* The platform's state for a DEVICE_STATE record (vm_state.c): the state
 * of vm (with the vCPU's event state from s) written into buf (returns the
 * bytes written, 0 if len is short), a check of a received state (0, or -1
 * with why), and its load into vm and s (after a check). */
size_t vm_state_save(const struct hv_vm *vm, const struct hv_cpu_state *s, void *buf, size_t len);
int vm_state_check(const void *buf, size_t len, char *why, size_t n);
void vm_state_load(struct hv_vm *vm, const void *buf, struct hv_cpu_state *s);

/* Free vm->plat. */
void vm_destroy(struct hv_vm *vm);

/* Before each entry: advance the timers, deliver a pending interrupt or
 * ask for an interrupt window. */
void vm_prepare(struct hv_vm *vm);

/* Is there anything for the guest's CPU to do (not halted, or halted
 * with an interrupt it can take)? */
bool vm_runnable(struct hv_vm *vm);

/* Handle an exit of a platform guest (IO, MSR, CPUID, HLT, IRQ window,
 * exceptions and shutdown). Returns 0 to go on, -1 when the guest stopped
 * (state changed and a line printed). */
int vm_exit(struct hv_vm *vm, const struct hv_exit *e);

/* Work outside the guest's slices: input from the second serial port to
 * the guest's UART. Returns 1 if it did anything. */
int vm_poll(void);

/* The guest console: attach (bytes typed on ferry's console go to the
 * guest's UART and its output is echoed to the console) or detach. */
void vm_console_attach(bool on);
/* One byte typed on ferry's console while attached. */
void vm_console_input(uint8_t c);

/* Print what the guest printed that is still in the ring (the last
 * VM_CONSOLE_RING bytes), and `info guest`'s platform lines. */
void vm_console_dump(void);
void vm_info(const struct hv_vm *vm);

#endif
