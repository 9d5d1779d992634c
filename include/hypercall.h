/* hypercall.h: the guest ABI, shared by ferry and the built-in workloads.
 *
 * Only fixed-width types and constants: the guest side (kernel/guest/) is built
 * freestanding with its own flags and includes nothing else of ferry's.
 *
 * Calling a hypercall. The guest calls the 4-byte gate at
 * GUEST_HC_GATE_OFFSET of its image; ferry patches the gate at load time
 * with the backend's trapping instruction (VMCALL for ept, VMMCALL for
 * npt, INT GUEST_HC_VECTOR for pte) followed by RET, so one workload binary
 * runs on every backend.
 *   in:  RAX = HC_* number, RDI, RSI, RDX = arguments
 *   out: RAX = result (>= 0) or a negative HC_E* error; every other
 *        register is preserved.
 *
 * Guest-physical layout (all guests, every backend):
 *   0x00000 .. 0x00fff  unused
 *   0x01000 .. 0x01fff  struct guest_boot: ferry -> guest parameters
 *   0x02000 .. 0x02fff  test mailbox (dirtylog exactness test orders)
 *   0x03000 .. 0x0ffff  guest page tables (PML4, PDPT, up to 8 PDs; 2 MiB
 *                        pages, identity VA = GPA; unused under pte)
 *   0x10000 .. 0x2ffff  workload image (GUEST_IMAGE_MAX bytes at most)
 *   0x30000 .. 0x3ffff  stack (grows down from GUEST_STACK_TOP)
 *   0x100000 .. size    data: what workloads write (GUEST_DATA_GPA)
 * Under pte the guest sees this same layout at guest_boot.mem_base
 * instead of 0; workloads address memory through mem_base only. */
#ifndef FERRY_HYPERCALL_H
#define FERRY_HYPERCALL_H

#include <stdint.h>

/* Hypercall numbers. */
#define HC_PRINT 1    /* RDI = guest address of text, RSI = length (<= HC_PRINT_MAX): prints one line */
#define HC_TIME_NS 2  /* returns monotonic nanoseconds (ferry's clock) */
#define HC_COUNTER 3  /* RDI = counter index (< HC_COUNTERS), RSI = value: report progress */
#define HC_YIELD 4    /* ends the guest's time slice */
#define HC_EXIT 5     /* RDI = status: the guest is finished */
#define HC_TEST_SYNC 6 /* RDI = round just finished: ferry checks it and posts the next order */

#define HC_PRINT_MAX 200 /* bytes */
#define HC_COUNTERS 4

/* Counter indices the workloads use (info guest names them). */
#define HC_CTR_PASSES 0   /* passes / operations completed */
#define HC_CTR_ERRORS 1   /* self-check mismatches (stamp) */
#define HC_CTR_WRITES 2   /* pages written */
#define HC_CTR_AUX 3

/* Errors (returned in RAX). */
#define HC_EINVAL (-22) /* bad argument: index, length, address outside guest memory */
#define HC_ENOSYS (-38) /* unknown hypercall number */

/* The trap vector of the pte backend's gate (an IDT gate with DPL 3). */
#define GUEST_HC_VECTOR 0x81

#define GUEST_BOOT_GPA 0x1000ull
#define GUEST_MAILBOX_GPA 0x2000ull
#define GUEST_PT_GPA 0x3000ull     /* PML4; PDPT at +0x1000; PDs after */
#define GUEST_PT_END 0x10000ull
#define GUEST_IMAGE_GPA 0x10000ull
#define GUEST_IMAGE_MAX 0x20000ull /* bytes */
#define GUEST_STACK_TOP 0x40000ull
#define GUEST_DATA_GPA 0x100000ull /* 1 MiB */
#define GUEST_HC_GATE_OFFSET 16    /* bytes into the image */
#define GUEST_HC_GATE_BYTES 4

#define GUEST_BOOT_MAGIC 0x544f4f4254534747ull /* "GGSTBOOT" */

/* Workload identifiers (guest_boot.workload). */
#define GUEST_WL_IDLE 0
#define GUEST_WL_SYNTHETIC 1
#define GUEST_WL_SPARSE 2
#define GUEST_WL_HOTSET 3
#define GUEST_WL_STAMP 4
#define GUEST_WL_DIRTYTEST 5
#define GUEST_WL_WILD 6 /* touches memory outside its range: must be stopped */
#define GUEST_WL_EXITBENCH 7 /* hypercalls back to back: VM-exit round trips */
#define GUEST_WL_ABI 8 /* checks the ABI's error returns and FPU preservation, then faults */
#define GUEST_WL_PORTIO 9 /* an OUT to a port: must stop the guest, reach no device */
#define GUEST_WL_INVD 10 /* INVD (drops caches without write-back): must stop the guest */
#define GUEST_WL_LINUX 11 /* not built in: the Linux kernel from the boot volume (kernel/vm/) */

/* ferry -> guest, at GUEST_BOOT_GPA; RDI holds its guest address at entry. */
struct guest_boot {
	uint64_t magic;
	uint64_t mem_base;  /* guest address of GPA 0 (0 with ept/npt) */
	uint64_t mem_size;  /* bytes of guest memory */
	uint64_t workload;  /* GUEST_WL_* */
	uint64_t seed;      /* workload PRNG seed */
	uint64_t rate;      /* sparse: writes per millisecond */
	uint64_t own_tables; /* 1: the guest's page tables at GUEST_PT_GPA are live */
	uint64_t reserved[9];
};
_Static_assert(sizeof(struct guest_boot) == 128, "guest_boot is ABI");

/* Dirty-log test orders, at GUEST_MAILBOX_GPA: ferry fills it when it
 * answers HC_TEST_SYNC; the guest writes one byte in every page of
 * pages[0..nwrite) and reads one byte of every page of
 * pages[nwrite..nwrite+nread), then calls HC_TEST_SYNC(round). Page
 * numbers are guest page frame numbers inside the data area. */
#define GUEST_MAILBOX_PAGES_MAX 1000
struct guest_mailbox {
	uint32_t round;  /* order number; 0 = no order yet */
	uint32_t nwrite;
	uint32_t nread;
	uint32_t done;   /* 1: no more rounds: the guest calls HC_EXIT */
	uint32_t pages[GUEST_MAILBOX_PAGES_MAX];
	uint32_t reserved[20];
};
_Static_assert(sizeof(struct guest_mailbox) == 4096, "guest_mailbox is one page");

#endif
