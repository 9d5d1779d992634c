/* pte.c: the no-virtualization backend. The guest runs at CPL 3 under
 * ferry's own page tables: its memory is mapped user-accessible in one
 * PML4 slot that ferry's identity map never uses, while every other slot
 * (ferry's RAM, image, heap) is supervisor-only, so the guest cannot reach
 * ferry's memory. The CPU sets the D bits of those 4 KiB user PTEs: that
 * is the dirty log. Hypercalls are INT GUEST_HC_VECTOR (a DPL-3 gate);
 * the local APIC tick preempts the guest.
 *
 * Under pte the guest's own page tables at GUEST_PT_GPA are not used
 * (CPL 3 cannot load CR3): it addresses memory at mem_base. */
#include <stdio.h>
#include <string.h>

#include "gdt.h"
#include "hv.h"
#include "hv_backends.h"
#include "hypercall.h"
#include "paging.h"
#include "pmm.h"
#include "trap.h"
#include "x86.h"

#define PTE_GUEST_SLOT 192 /* PML4 index of guest memory: 96 TiB */
#define PTE_GUEST_BASE ((uint64_t)PTE_GUEST_SLOT << 39)
#define PTE_STACK_BYTES 16384 /* ferry's stack for traps from the guest */
/* RFLAGS bits the guest owns: CF PF AF ZF SF TF DF OF. IF is forced on
 * (the tick must preempt it) and IOPL stays 0. */
#define PTE_RFLAGS_GUEST 0xcd5ull
#define PTE_RFLAGS_FIXED (RFLAGS_IF | 0x2ull)

/* What hv_entry.S's pte entry and exit paths share with pte.c. Offsets
 * are used by the assembly: keep them in step (asserted below). */
struct hv_pte_ctx {
	uint64_t *gpr;       /* 0: vm->gpr, loaded before IRETQ */
	uint64_t rip;        /* 8: IRETQ frame */
	uint64_t cs;         /* 16 */
	uint64_t rflags;     /* 24 */
	uint64_t rsp;        /* 32 */
	uint64_t ss;         /* 40 */
	uint64_t host_rsp;   /* 48: ferry's stack inside hv_pte_enter */
	void *host_fpu;      /* 56: ferry's FPU state while the guest runs */
	void *guest_fpu;     /* 64 */
	uint64_t xsave_mask; /* 72: 0 = FXSAVE */
};
_Static_assert(__builtin_offsetof(struct hv_pte_ctx, xsave_mask) == 72, "hv_entry.S offsets");

/* Save ferry's callee-saved registers and FPU state, load the guest's,
 * IRETQ to ring 3. "Returns" when pte.c calls hv_pte_leave from a trap
 * taken in ring 3. */
void hv_pte_enter(struct hv_pte_ctx *c);
/* Back to the hv_pte_enter caller: ferry's stack, FPU state and kernel
 * data segments. The guest's state must already be saved. */
void hv_pte_leave(struct hv_pte_ctx *c) __attribute__((noreturn));

struct pte_vm {
	struct hv_pte_ctx ctx;
	struct hv_vm *vm;
	struct hv_exit *exit; /* where the trap path reports */
	uint8_t guest_fpu[HV_XSAVE_BYTES] __attribute__((aligned(64)));
	uint8_t host_fpu[HV_XSAVE_BYTES] __attribute__((aligned(64)));
};
#define PTE_VM_PAGES ((sizeof(struct pte_vm) + PAGE_SIZE - 1) / PAGE_SIZE)

static struct pte_vm *active; /* the guest between hv_pte_enter and hv_pte_leave */
static uint8_t trap_stack[PTE_STACK_BYTES] __attribute__((aligned(16)));

/* Every trap taken in ring 3 lands here (trap_set_user_handler): record
 * why, save the guest's registers and FPU state, and leave to the host. */
static void pte_trap(struct trap_frame *f)
{
	struct pte_vm *p = active;
	if (!p)
		panic("pte: trap %llu from ring 3 with no guest running", (unsigned long long)f->vector);
	struct hv_vm *vm = p->vm;
	struct hv_exit *e = p->exit;
	memset(e, 0, sizeof(*e));
	e->rip = f->rip;
	e->code = f->vector;
	e->error = f->error;
	if (f->vector == GUEST_HC_VECTOR)
		e->reason = HV_EXIT_HYPERCALL; /* RIP is already past INT n */
	else if (f->vector >= 32)
		e->reason = HV_EXIT_PREEMPT; /* its handler (the tick) already ran */
	else if (f->vector == TRAP_PF) {
		/* Guest memory is all mapped present, and writable unless a
		 * region is write-protected (hv_s2_protect): a #PF is a write
		 * there, or an access outside guest memory (ferry's
		 * supervisor pages or nothing). hv_run_slice tells them apart. */
		e->reason = HV_EXIT_MEMORY;
		e->gpa = x86_read_cr2() - vm->mem_base;
	} else
		e->reason = HV_EXIT_EXCEPTION;

	const uint64_t regs[HV_NGPR] = { f->rax, f->rcx, f->rdx, f->rbx, f->rsp, f->rbp, f->rsi, f->rdi,
					 f->r8,	 f->r9,	 f->r10, f->r11, f->r12, f->r13, f->r14, f->r15 };
	memcpy(vm->gpr, regs, sizeof(regs));
	p->ctx.rip = f->rip;
	p->ctx.rsp = f->rsp;
	p->ctx.rflags = f->rflags;
	/* The guest's x87/SSE state is the image the entry stub saved (the
	 * handlers since may have used SSE); upper AVX state is untouched by
	 * ferry's handlers, so XSAVE takes it live, then the legacy part is
	 * overwritten with the stub's copy and marked present. */
	const uint8_t *fx = trap_frame_fpu(f);
	if (hv_xsave_mask) {
		x86_xsave(p->guest_fpu, hv_xsave_mask);
		memcpy(p->guest_fpu, fx, 416); /* FCW..MXCSR, ST0-7, XMM0-15 */
		p->guest_fpu[512] |= 3;        /* XSTATE_BV: x87, SSE */
	} else {
		memcpy(p->guest_fpu, fx, 512);
	}
	hv_pte_leave(&p->ctx);
}

static int pte_probe(char *why, size_t n)
{
	snprintf(why, n, "no hardware dirty logging: the guest runs in ring 3");
	return 0;
}

static int pte_init(char *why, size_t n)
{
	(void)why;
	(void)n;
	/* Ring 3 must reach ring 0 only through the IDT: SYSCALL off
	 * (EFER.SCE) and SYSENTER faulting (IA32_SYSENTER_CS = 0, SDM Vol.
	 * 2B SYSENTER), whatever the firmware left there. */
	x86_wrmsr(MSR_EFER, x86_rdmsr(MSR_EFER) & ~EFER_SCE);
	x86_wrmsr(MSR_SYSENTER_CS, 0);
	trap_set_user_handler(pte_trap);
	trap_set_gate_dpl(GUEST_HC_VECTOR, 3);
	return 0;
}

static void pte_flush(struct hv_vm *vm)
{
	(void)vm;
	/* Guest mappings are never global: reloading CR3 drops them and
	 * every paging-structure cache entry (SDM Vol. 3A 4.10.4.1). */
	x86_write_cr3(x86_read_cr3());
}

static void pte_get_state(struct hv_vm *vm, struct hv_cpu_state *s)
{
	struct pte_vm *p = vm->priv;
	memset(s, 0, sizeof(*s));
	s->version = HV_CPU_STATE_VERSION;
	s->size = sizeof(*s);
	snprintf(s->backend, sizeof(s->backend), "pte");
	memcpy(s->gpr, vm->gpr, sizeof(s->gpr));
	s->gpr[HV_RSP] = p->ctx.rsp;
	s->rip = p->ctx.rip;
	s->rflags = p->ctx.rflags;
	/* A ring-3 process: flat user segments, no control registers of its own. */
	s->cs = (struct hv_segment){ .selector = GDT_USER_CS, .attrib = 0xa0fb, .limit = 0xffffffff };
	s->ss = (struct hv_segment){ .selector = GDT_USER_DS, .attrib = 0xc0f3, .limit = 0xffffffff };
	s->ds = s->es = s->fs = s->gs = s->ldtr = s->tr = (struct hv_segment){ .attrib = HV_SEG_UNUSABLE };
	s->xcr0 = hv_xsave_mask;
	memcpy(s->xsave, p->guest_fpu, sizeof(s->xsave));
}

static int pte_set_state(struct hv_vm *vm, const struct hv_cpu_state *s)
{
	struct pte_vm *p = vm->priv;
	if (s->version != HV_CPU_STATE_VERSION || s->size != sizeof(*s) || strcmp(s->backend, "pte") != 0)
		return -1;
	memcpy(vm->gpr, s->gpr, sizeof(vm->gpr));
	p->ctx.rip = s->rip;
	p->ctx.rsp = s->gpr[HV_RSP];
	p->ctx.rflags = (s->rflags & PTE_RFLAGS_GUEST) | PTE_RFLAGS_FIXED;
	memcpy(p->guest_fpu, s->xsave, sizeof(p->guest_fpu));
	/* XRSTOR faults on a header with bits outside XCR0 or a compacted
	 * form: keep only what this CPU enables. */
	if (hv_xsave_mask) {
		uint64_t *hdr = (uint64_t *)(p->guest_fpu + 512);
		hdr[0] &= hv_xsave_mask;
		hdr[1] = 0;
	}
	return 0;
}

static int pte_vm_create(struct hv_vm *vm, const struct hv_cpu_state *s)
{
	uint64_t *pml4 = (uint64_t *)(uintptr_t)paging_root();
	KASSERT(!(pml4[PTE_GUEST_SLOT] & PTE_P));
	struct pte_vm *p = pmm_alloc(PTE_VM_PAGES, PMM_ZERO);
	if (!p)
		return -1;
	/* User, writable, executable 4 KiB leaves: the guest's code lives
	 * in its memory. Upper levels carry US too, or ring 3 faults. */
	uint64_t user = PTE_P | PTE_RW | PTE_US;
	if (hv_s2_build(vm, user, user, PTE_P, PTE_A, PTE_D) < 0) {
		pmm_free(p, PTE_VM_PAGES);
		return -1;
	}
	vm->priv = p;
	p->vm = vm;
	p->ctx.gpr = vm->gpr;
	p->ctx.cs = GDT_USER_CS;
	p->ctx.ss = GDT_USER_DS;
	p->ctx.host_fpu = p->host_fpu;
	p->ctx.guest_fpu = p->guest_fpu;
	p->ctx.xsave_mask = hv_xsave_mask;
	struct hv_cpu_state *init = pmm_alloc(2, 0);
	if (!init) {
		hv_s2_free(vm);
		pmm_free(p, PTE_VM_PAGES);
		return -1;
	}
	memcpy(init, s, sizeof(*s));
	snprintf(init->backend, sizeof(init->backend), "pte");
	pte_set_state(vm, init);
	pmm_free(init, 2);
	pml4[PTE_GUEST_SLOT] = (uint64_t)(uintptr_t)vm->s2.pdpt | user;
	pte_flush(vm);
	return 0;
}

static void pte_vm_destroy(struct hv_vm *vm)
{
	uint64_t *pml4 = (uint64_t *)(uintptr_t)paging_root();
	pml4[PTE_GUEST_SLOT] = 0;
	pte_flush(vm);
	hv_s2_free(vm);
	pmm_free(vm->priv, PTE_VM_PAGES);
	vm->priv = NULL;
}

static void pte_run(struct hv_vm *vm, struct hv_exit *e)
{
	struct pte_vm *p = vm->priv;
	p->exit = e;
	active = p;
	gdt_set_kernel_stack((uint64_t)(uintptr_t)(trap_stack + PTE_STACK_BYTES));
	hv_pte_enter(&p->ctx);
	active = NULL;
}

const struct hv_ops pte_ops = {
	.name = "pte",
	.what = "no virtualization: the guest at CPL 3 under ferry's page tables",
	.mem_base = PTE_GUEST_BASE,
	.gate = { 0xcd, GUEST_HC_VECTOR, 0xc3, 0x90 }, /* INT 0x81; RET */
	.probe = pte_probe,
	.init = pte_init,
	.vm_create = pte_vm_create,
	.vm_destroy = pte_vm_destroy,
	.run = pte_run,
	.get_state = pte_get_state,
	.set_state = pte_set_state,
	.flush = pte_flush,
};
