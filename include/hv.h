/* hv.h: the guest ferry owns: its memory, its CPU state, and the
 * hypervisor backend that runs it (ept: Intel VMX with EPT A/D, npt: AMD
 * SVM with nested paging, pte: no virtualization, the guest at CPL3 under
 * ferry's own page tables). The backend is chosen once, at hv_init, from
 * CPUID and MSRs; generic code reaches it only through struct hv_ops.
 *
 * Single-threaded like the rest of ferry: every function here runs on the
 * boot CPU with interrupts off (the backends open interrupt windows
 * themselves, only around guest execution). */
#ifndef FERRY_HV_H
#define FERRY_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t gpa_t; /* guest-physical address: never dereference */
typedef uint64_t hpa_t; /* host-physical (= ferry virtual, identity map) */

#define HV_SIZE_MIN (4ull << 20)  /* bytes: room for the fixed layout + data */
#define HV_SIZE_MAX (8ull << 30)  /* bytes: guest page tables hold 8 PDs */
#define HV_SLICE_NS 4000000ull    /* ns a main-loop pass lets the guest run */
/* ...while a migration runs: the network (and so the migration's TCP
 * stream) is serviced between slices, and a 4 ms slice left the stream's
 * ACKs waiting (make demo: 1.31 s with 4 ms slices, 0.95 s with 1 ms).
 * The guest still gets whatever time the migration does not use. */
#define HV_SLICE_MIGRATING_NS 1000000ull
#define HV_THROTTLE_CREDIT_NS 20000000ull /* most run time a throttled guest may save up */
#define HV_XSAVE_BYTES 4096       /* XSAVE area room (AVX-512 needs 2688) */

/* ---- CPU state: what live migration carries (CPU_STATE record) ---- */

#define HV_CPU_STATE_VERSION 2 /* 2: the MSRs, TSC, DR7 and event state an OS needs */

/* A segment register. attrib uses the VMX access-rights layout (SDM Vol.
 * 3C 24.4.1): type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15,
 * unusable 16. SVM's 12-bit form is bits 7:0 and 15:12 of it. */
struct hv_segment {
	uint16_t selector;
	uint16_t reserved;
	uint32_t attrib;
	uint32_t limit;
	uint32_t reserved2;
	uint64_t base;
};
_Static_assert(sizeof(struct hv_segment) == 24, "hv_segment layout");

#define HV_SEG_UNUSABLE (1u << 16)

struct hv_dtr {
	uint64_t base;
	uint32_t limit;
	uint32_t reserved;
};

/* General registers in instruction-encoding order (RAX=0 ... R15=15). */
enum hv_gpr {
	HV_RAX, HV_RCX, HV_RDX, HV_RBX, HV_RSP, HV_RBP, HV_RSI, HV_RDI,
	HV_R8, HV_R9, HV_R10, HV_R11, HV_R12, HV_R13, HV_R14, HV_R15, HV_NGPR
};

struct hv_cpu_state {
	uint32_t version; /* HV_CPU_STATE_VERSION */
	uint32_t size;    /* sizeof(struct hv_cpu_state) */
	char backend[8];  /* "ept", "npt", "pte": state is backend-shaped */
	uint64_t gpr[HV_NGPR];
	uint64_t rip, rflags;
	uint64_t cr0, cr2, cr3, cr4, efer, xcr0;
	struct hv_segment es, cs, ss, ds, fs, gs, ldtr, tr;
	struct hv_dtr gdtr, idtr;
	/* What an operating system adds (the built-in workloads leave the
	 * MSRs 0 and never read the TSC): the MSRs VMLOAD/VMSAVE or the VMCS
	 * switch, PAT (0: the power-on value), the guest's TSC at capture, DR7
	 * (0: its reset value), an event the CPU had yet to deliver and the
	 * STI/MOV SS interrupt shadow. */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, tsc, dr7;
	uint64_t pending_event; /* HV_EVENT_PENDING encoding, 0 none */
	uint32_t interrupt_shadow; /* 1: no interrupt before the next instruction */
	uint32_t reserved32;
	uint64_t reserved[3];
	uint8_t xsave[HV_XSAVE_BYTES] __attribute__((aligned(64))); /* XSAVE standard form */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct hv_cpu_state) == 4672, "hv_cpu_state is versioned: bump the version");

/* pending_event: vector 7:0, type (HV_EVENT_*) 10:8, error code valid 11,
 * valid 31, error code 63:32 (SVM's EVENTINJ layout). */
#define HV_EVENT_PENDING(type, vector, has_error, error)                                         \
	((uint64_t)(vector) | ((uint64_t)(type) << 8) | ((uint64_t)!!(has_error) << 11) | (1ull << 31) | \
	 ((uint64_t)(error) << 32))
#define HV_EVENT_VALID (1ull << 31)

/* ---- the guest ---- */

enum hv_vm_state {
	HV_VM_RUNNING,  /* gets time slices */
	HV_VM_STOPPED,  /* `guest stop`: resumable */
	HV_VM_EXITED,   /* the guest called HC_EXIT */
	HV_VM_FAULTED,  /* stopped by ferry: fault, bad access, unknown exit */
};

enum hv_exit_reason {
	HV_EXIT_HYPERCALL, /* RIP already past the gate instruction */
	HV_EXIT_PREEMPT,   /* a host interrupt (timer tick) is pending */
	HV_EXIT_EXCEPTION, /* guest exception: code = vector */
	HV_EXIT_MEMORY,    /* access outside guest memory: gpa */
	HV_EXIT_SHUTDOWN,  /* triple fault */
	HV_EXIT_HLT,       /* next_rip: past the HLT */
	HV_EXIT_OTHER,     /* anything else: code = raw hardware reason */
	/* Only for a guest with a virtual platform (vm->plat, an OS guest);
	 * RIP still at the instruction, next_rip past it: the platform
	 * completes it with set_rip or injects a fault instead. */
	HV_EXIT_IO,        /* IN/OUT: port, size, in, string */
	HV_EXIT_MSR,       /* RDMSR/WRMSR: index in RCX, write */
	HV_EXIT_CPUID,     /* leaf in RAX, subleaf in RCX */
	HV_EXIT_IRQ_WINDOW, /* the guest can take an interrupt now */
	HV_EXIT_NREASONS
};

struct hv_exit {
	enum hv_exit_reason reason;
	uint64_t code;  /* vector, or hardware exit reason for HV_EXIT_OTHER */
	uint64_t error; /* exception error code / exit qualification */
	gpa_t gpa;      /* HV_EXIT_MEMORY: the faulting address (guest-physical) */
	uint64_t rip;   /* guest RIP at the exit */
	uint64_t next_rip; /* HLT, IO, MSR, CPUID: RIP past the instruction */
	uint64_t rflags;   /* platform guests: RFLAGS at the exit */
	uint16_t port;  /* IO */
	uint8_t size;   /* IO: 1, 2 or 4 bytes */
	bool in;        /* IO: IN (else OUT) */
	bool string;    /* IO: INS/OUTS (or REP): not emulated */
	bool write;     /* MSR: WRMSR (else RDMSR); MEMORY: a write */
	bool entry_failed; /* OTHER: the VM entry itself failed (bad guest state): the guest did not run */
};

/* Event types for hv_ops.inject (the SVM EVENTINJ / VMX entry
 * interruption-information encodings agree on these). */
#define HV_EVENT_INTR 0      /* external interrupt */
#define HV_EVENT_NMI 2
#define HV_EVENT_EXCEPTION 3 /* fault or trap with the given vector */

struct vm_platform; /* kernel/vm/: the devices an OS guest sees (vm.h) */

/* The stage-2 tables one harvest walks: the table covering guest-physical
 * 0..512 GiB (a PDPT: EPT, NPT, or ferry's own for pte) and which bits
 * mean present / accessed / dirty in this format. Built by hv_s2_build. */
struct hv_stage2 {
	uint64_t *pdpt;
	uint64_t present, accessed, dirty;
	uint64_t **pts;   /* every PT page, in GPA order (npts = npages / 512) */
	uint64_t **pds;   /* every PD page */
	size_t npts, npds;
};

struct hv_vm {
	const struct hv_ops *ops;
	enum hv_vm_state state;
	uint64_t size, npages;  /* bytes, 4 KiB pages */
	hpa_t *frames;          /* frames[gpa >> 12]: one host frame per guest page */
	uint64_t mem_base;      /* guest virtual address of GPA 0 (pte: ferry's user region) */
	unsigned workload;      /* GUEST_WL_* */
	struct hv_stage2 s2;
	uint64_t gpr[HV_NGPR];  /* live GPRs while not running (RSP: see get_state) */
	void *priv;             /* backend's own (VMCS, VMCB, frames) */
	/* accounting */
	uint64_t exits[HV_EXIT_NREASONS];
	uint64_t entry_failures; /* exits that were failed VM entries */
	uint64_t run_ns;        /* time inside the guest */
	/* The throttle (auto-converge): from throttle_t0 on, the guest's run
	 * time may grow by at most 100 - pct per cent of the time passed (a
	 * slice is refused while it is ahead), so a wait that overshoots
	 * (the main loop halts to the next tick) is made up later. Credit
	 * from idle time is kept to HV_THROTTLE_CREDIT_NS. 0: not throttled. */
	uint32_t throttle_pct;
	uint64_t throttle_t0, throttle_run0; /* the share's start (moves past forgotten credit) */
	uint64_t throttle_set_ns, throttle_set_run; /* clock_ns and run_ns when it was set (for info guest) */
	uint64_t start_ns;
	uint64_t counters[4];   /* HC_COUNTER values */
	uint64_t hypercalls, hc_errors;
	bool yielded;           /* HC_YIELD: end the slice */
	/* pages ferry wrote into guest memory itself (mailbox, restore): they
	 * join the next harvest. One bit per page. */
	uint64_t *host_dirty;
	uint64_t host_dirty_lo, host_dirty_hi; /* word range holding bits (lo > hi: none) */
	/* An OS guest's virtual platform (kernel/vm/), NULL for the built-in
	 * workloads. Set before vm_create, which then configures the backend
	 * for an OS: exceptions go to the guest, CPUID/MSR/port accesses and
	 * HLT exit to the platform, interrupts can be injected. */
	struct vm_platform *plat;
	uint64_t tsc_offset; /* platform guests: guest TSC - host TSC */
	/* Set while ferry write-protects regions of guest memory
	 * (hv_s2_protect; the destination verifying after a migration): a
	 * write into a protected region exits as HV_EXIT_MEMORY inside guest
	 * memory, and hv_run_slice hands it here. Returns 0 when the region is
	 * writable again (the guest retries the access), -1 to fault the guest.
	 * hv_before_host_write calls it too. */
	int (*write_fault)(struct hv_vm *vm, gpa_t gpa);
};

/* The backend ops table, chosen once by hv_init. Ownership: vm and its
 * frames belong to hv.c; priv and the tables behind s2 to the backend. */
struct hv_ops {
	const char *name; /* "ept", "npt", "pte" */
	const char *what; /* one line: what runs the guest */
	uint64_t mem_base; /* guest virtual address of GPA 0 (0: the guest's own tables) */
	uint8_t gate[4];   /* hypercall gate: trapping instruction + RET (hypercall.h) */
	/* At hv_init: can this backend run here? From CPUID and the
	 * capability MSRs only. Returns 0 with what it will use in why, or
	 * -1 with why not (e.g. "no EPT accessed/dirty flags"). */
	int (*probe)(char *why, size_t n);
	/* Once, at hv_init, after a successful probe and before any vm
	 * exists: enable the hardware (VMXON, EFER.SVME). Returns 0, or -1
	 * with why (hv_init then tries the next backend). */
	int (*init)(char *why, size_t n);
	/* After hv.c allocated vm->frames and filled guest memory: build the
	 * stage-2 tables (hv_s2_build) and the control structure, with the
	 * guest's initial state from s. Returns 0 or -1 (out of memory; the
	 * backend has freed what it took). */
	int (*vm_create)(struct hv_vm *vm, const struct hv_cpu_state *s);
	/* Free priv and the stage-2 tables (hv_s2_free). */
	void (*vm_destroy)(struct hv_vm *vm);
	/* Enter the guest and run until its next exit; fill *e. Interrupts
	 * are off on entry and on return; a host interrupt that arrived while
	 * the guest ran is still pending (HV_EXIT_PREEMPT) or already handled. */
	void (*run)(struct hv_vm *vm, struct hv_exit *e);
	/* Capture / restore the complete CPU state (vm->gpr included).
	 * set_state returns 0, or -1 when s cannot run on this backend. */
	void (*get_state)(struct hv_vm *vm, struct hv_cpu_state *s);
	int (*set_state)(struct hv_vm *vm, const struct hv_cpu_state *s);
	/* Invalidate every cached translation of this guest (TLB entries and
	 * paging-structure caches): INVEPT single-context, an ASID flush on
	 * the next VMRUN, a CR3 reload. dirtylog.c calls it after clearing
	 * A/D bits and before anyone reads page contents. */
	void (*flush)(struct hv_vm *vm);
	/* ---- OS guests (vm->plat set); NULL in a backend that cannot run
	 * one, and `guest start linux` then refuses. ---- */
	/* Can this CPU run one (optional: NULL means yes)? 0, or -1 with why. */
	int (*os_supported)(char *why, size_t n);
	/* Resume the guest at rip (completes an emulated instruction). */
	void (*set_rip)(struct hv_vm *vm, uint64_t rip);
	/* Could an external interrupt be delivered at the next entry?
	 * (RFLAGS.IF set, no interrupt shadow, no event already queued.) */
	bool (*interruptible)(struct hv_vm *vm);
	/* Queue an event for delivery at the next entry (HV_EVENT_*); an
	 * error code when has_error. Only one at a time: the caller checks
	 * interruptible for interrupts; faults replace nothing queued. */
	void (*inject)(struct hv_vm *vm, unsigned type, uint8_t vector, bool has_error, uint32_t error);
	/* Ask for an HV_EXIT_IRQ_WINDOW as soon as the guest can take an
	 * interrupt (on), or stop asking (off). */
	void (*irq_window)(struct hv_vm *vm, bool on);
	/* MSRs whose value lives in the backend's control structure (EFER,
	 * PAT, ...): read (*val out) or write (*val in). Returns 0, 1 if the
	 * MSR is not the backend's, -1 if the value is invalid (#GP). */
	int (*msr)(struct hv_vm *vm, uint32_t index, uint64_t *val, bool write);
	/* Guest TSC = host TSC + offset. */
	void (*set_tsc_offset)(struct hv_vm *vm, uint64_t offset);
};

/* Detect and pick the backend (prints one line saying which and why).
 * Requires cpu_init, paging_init, trap_init. */
void hv_init(void);

/* The chosen backend, and why (for `info version` / `info guest`). */
const struct hv_ops *hv_backend(void);
const char *hv_backend_reason(void);

/* The one guest, or NULL. */
struct hv_vm *hv_guest(void);

/* Create and start the guest: size bytes (multiple of 2 MiB, between
 * HV_SIZE_MIN and HV_SIZE_MAX), running workload (GUEST_WL_*) with seed
 * and rate. Returns 0, or -1 after printing why (a guest exists, memory
 * short: says how much is free). */
int hv_guest_create(uint64_t size, unsigned workload, uint64_t seed, uint64_t rate);

/* As hv_guest_create for an incoming migration: size bytes of zeroed
 * memory, no image, no tables, state HV_VM_STOPPED until a CPU state is
 * restored and the guest continued. Returns 0, or -1 after printing why. */
int hv_guest_create_incoming(uint64_t size, unsigned workload);

/* Write this backend's hypercall gate into the guest's image (the ABI in
 * hypercall.h: 4 bytes at GUEST_IMAGE_GPA + GUEST_HC_GATE_OFFSET). Done at
 * load, and by an incoming migration before the guest runs: a guest that
 * left an ept host must trap with VMMCALL on an npt one, and back. */
void hv_patch_gate(struct hv_vm *vm);

/* Destroy the guest and free its memory. */
void hv_guest_destroy(void);

/* Let the guest run for up to budget_ns (or until it yields, exits or
 * faults). Returns 1 if it ran, 0 if there is nothing to run. Called by
 * the main loop each pass. */
int hv_run_slice(uint64_t budget_ns);

/* Take pct per cent (0..99; 0 lifts it) of the CPU from the guest, from
 * its next slice on. */
void hv_set_throttle(struct hv_vm *vm, uint32_t pct);

/* Host pointer to the byte at gpa, or NULL when [gpa, gpa+len) is not
 * inside one guest page of guest memory. */
void *hv_gpa_ptr(struct hv_vm *vm, gpa_t gpa, size_t len);

/* Stage-2 construction shared by the three backends (4 KiB leaves,
 * x86-style 4-level formats that differ only in flag bits). Fills vm->s2
 * for guest-physical 0..vm->size. Returns 0 or -1 (out of memory, nothing
 * kept). */
int hv_s2_build(struct hv_vm *vm, uint64_t table_flags, uint64_t leaf_flags, uint64_t present,
		uint64_t accessed, uint64_t dirty);
void hv_s2_free(struct hv_vm *vm);

/* Write-protect (on) or unprotect the 2 MiB regions first..first+count-1
 * of guest memory (region r: pages r*512..r*512+511) through the write
 * bit of their stage-2 page-directory entries, bit 1 in all three
 * formats. The caller flushes (ops->flush) before relying on it. */
#define HV_S2_WRITE (1ull << 1)
#define HV_REGION_PAGES 512u
void hv_s2_protect(struct hv_vm *vm, uint64_t first, uint64_t count, bool on);

/* Ferry is about to write guest memory at gpa itself (not through the
 * guest): lets vm->write_fault see it first. */
void hv_before_host_write(struct hv_vm *vm, gpa_t gpa);

/* The initial CPU state of a guest entering its workload in 64-bit mode
 * with its own page tables (ept/npt); the backend adjusts for its needs. */
void hv_initial_state(const struct hv_vm *vm, struct hv_cpu_state *s);

/* Backend-independent FPU handling: the XSAVE mask in use (0: FXSAVE). */
extern uint64_t hv_xsave_mask;

/* Capture / restore the guest's complete CPU state (what migration's
 * CPU_STATE record carries). The guest must not be running. Return 0, or
 * -1: running, or (restore) a version, size or backend this ferry cannot
 * load (ept and npt states load into each other; pte only into pte). */
int hv_cpu_capture(struct hv_vm *vm, struct hv_cpu_state *s);

/* Load s into the stopped guest after hv_cpu_check. Returns 0, or -1 with
 * why (n bytes) set: running, unsafe or foreign state, backend refused. */
int hv_cpu_restore(struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n);

/* Could s be loaded into vm without faulting ferry or failing VM entry?
 * (kernel/hv/hv_check.c: version, backend, canonical RIP/RSP, RFLAGS,
 * MXCSR against this CPU's mask, the XSAVE header against XCR0, and for
 * ept/npt CR0/CR3/CR4/EFER and segment state of a 64-bit guest.) Returns
 * 0, or -1 with the offending field and value in why. Changes nothing. */
int hv_cpu_check(const struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n);

/* A PAT value whose eight entries are all memory types (0, 1, 4-7). */
bool hv_pat_valid(uint64_t pat);

/* An OS guest's WRMSR to EFER: the new EFER from the current one and the
 * value written (SCE, LME, NXE; LMA stays the CPU's), or -1 for a value
 * with other bits (#GP). The backend adds its own bits (SVME). */
int hv_efer_write(uint64_t cur, uint64_t val, uint64_t *out);

/* Console hook: stop/continue. Return 0 or -1 after printing why. */
int hv_guest_stop(void);
int hv_guest_cont(void);

/* Parse a size: bytes, or with a K, M or G suffix ("64M"). 0 or -1. */
int hv_parse_size(const char *s, uint64_t *bytes);

/* Name of an exit reason ("hypercall", "preempt", ...). */
const char *hv_exit_name(enum hv_exit_reason r);

/* Name of a GUEST_WL_* value, and the reverse (-1 if unknown). */
const char *hv_workload_name(unsigned wl);
int hv_workload_parse(const char *name);

#endif
