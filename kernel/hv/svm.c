/* svm.c: the npt backend: AMD SVM with nested paging (AMD64 APM Vol. 2,
 * chapter 15). The guest runs in 64-bit mode at CPL 0 on its own page
 * tables; guest-physical memory is the NPT (4 KiB leaves), whose D bits
 * are the dirty log. Hypercalls are VMMCALL; a host interrupt (the APIC
 * tick) ends the guest's run through the INTR intercept. */
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "hv.h"
#include "hv_backends.h"
#include "paging.h"
#include "pmm.h"
#include "trap.h"
#include "x86.h"

/* ---- the VMCB (APM Vol. 2, appendix B) ---- */

struct vmcb_seg {
	uint16_t selector;
	uint16_t attrib; /* type 3:0, S 4, DPL 6:5, P 7, AVL 8, L 9, D/B 10, G 11 */
	uint32_t limit;
	uint64_t base;
};
_Static_assert(sizeof(struct vmcb_seg) == 16, "VMCB segment");

struct vmcb_control {
	uint32_t intercept_cr;   /* 0x000: bits 15:0 reads, 31:16 writes */
	uint32_t intercept_dr;   /* 0x004 */
	uint32_t intercept_exc;  /* 0x008: one bit per exception vector */
	uint32_t intercept_misc1; /* 0x00c: SVM_INTERCEPT1_* */
	uint32_t intercept_misc2; /* 0x010: SVM_INTERCEPT2_* */
	uint32_t intercept_misc3; /* 0x014 */
	uint8_t reserved1[0x3c - 0x18];
	uint16_t pause_filter_threshold; /* 0x03c */
	uint16_t pause_filter_count;     /* 0x03e */
	uint64_t iopm_base_pa;   /* 0x040 */
	uint64_t msrpm_base_pa;  /* 0x048 */
	uint64_t tsc_offset;     /* 0x050 */
	uint32_t asid;           /* 0x058 */
	uint8_t tlb_control;     /* 0x05c: SVM_TLB_* */
	uint8_t reserved2[3];
	uint64_t vintr;          /* 0x060: V_INTR_MASKING is bit 24 */
	uint64_t interrupt_shadow; /* 0x068 */
	uint64_t exitcode;       /* 0x070: SVM_EXIT_* */
	uint64_t exitinfo1;      /* 0x078 */
	uint64_t exitinfo2;      /* 0x080 */
	uint64_t exitintinfo;    /* 0x088 */
	uint64_t np_enable;      /* 0x090: bit 0 nested paging */
	uint64_t avic_apic_bar;  /* 0x098 */
	uint64_t ghcb_pa;        /* 0x0a0 */
	uint64_t eventinj;       /* 0x0a8 */
	uint64_t n_cr3;          /* 0x0b0: nested page table root */
	uint64_t virt_ext;       /* 0x0b8 */
	uint32_t clean;          /* 0x0c0: VMCB clean bits (0: reload all) */
	uint32_t reserved3;
	uint64_t next_rip;       /* 0x0c8: with NRIPS only */
	uint8_t insn_len;        /* 0x0d0 */
	uint8_t insn_bytes[15];
	uint8_t reserved4[0x400 - 0xe0];
};
_Static_assert(sizeof(struct vmcb_control) == 0x400, "VMCB control area");
_Static_assert(__builtin_offsetof(struct vmcb_control, n_cr3) == 0xb0, "VMCB N_CR3");
_Static_assert(__builtin_offsetof(struct vmcb_control, next_rip) == 0xc8, "VMCB nRIP");

struct vmcb_save {
	struct vmcb_seg es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr; /* 0x400 */
	uint8_t reserved1[43];
	uint8_t cpl;             /* 0x4cb */
	uint32_t reserved2;
	uint64_t efer;           /* 0x4d0 */
	uint8_t reserved3[112];
	uint64_t cr4, cr3, cr0, dr7, dr6, rflags, rip; /* 0x548 */
	uint8_t reserved4[88];
	uint64_t rsp;            /* 0x5d8 */
	uint8_t reserved5[24];
	uint64_t rax;            /* 0x5f8 */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t cr2;            /* 0x640 */
	uint8_t reserved6[32];
	uint64_t g_pat;          /* 0x668 */
};

struct vmcb {
	struct vmcb_control ctl;
	struct vmcb_save save;
	uint8_t reserved[4096 - 0x400 - sizeof(struct vmcb_save)];
};
_Static_assert(sizeof(struct vmcb) == 4096, "VMCB is one page");
_Static_assert(__builtin_offsetof(struct vmcb, save.cpl) == 0x4cb, "VMCB CPL");
_Static_assert(__builtin_offsetof(struct vmcb, save.efer) == 0x4d0, "VMCB EFER");
_Static_assert(__builtin_offsetof(struct vmcb, save.cr4) == 0x548, "VMCB CR4");
_Static_assert(__builtin_offsetof(struct vmcb, save.rip) == 0x578, "VMCB RIP");
_Static_assert(__builtin_offsetof(struct vmcb, save.rsp) == 0x5d8, "VMCB RSP");
_Static_assert(__builtin_offsetof(struct vmcb, save.rax) == 0x5f8, "VMCB RAX");
_Static_assert(__builtin_offsetof(struct vmcb, save.cr2) == 0x640, "VMCB CR2");
_Static_assert(__builtin_offsetof(struct vmcb, save.g_pat) == 0x668, "VMCB G_PAT");

#define SVM_INTERCEPT1_INTR (1u << 0)
#define SVM_INTERCEPT1_VINTR (1u << 4)
#define SVM_INTERCEPT1_CPUID (1u << 18)
#define SVM_INTERCEPT1_NMI (1u << 1)
#define SVM_INTERCEPT1_SMI (1u << 2)
#define SVM_INTERCEPT1_INIT (1u << 3)
#define SVM_INTERCEPT1_INVD (1u << 22)
#define SVM_INTERCEPT1_HLT (1u << 24)
#define SVM_INTERCEPT1_INVLPGA (1u << 26)
#define SVM_INTERCEPT1_IOIO_PROT (1u << 27)
#define SVM_INTERCEPT1_MSR_PROT (1u << 28)
#define SVM_INTERCEPT1_TASK_SWITCH (1u << 29)
#define SVM_INTERCEPT1_SHUTDOWN (1u << 31)
#define SVM_INTERCEPT2_VMRUN (1u << 0) /* required: VMRUN fails without it */
#define SVM_INTERCEPT2_VMMCALL (1u << 1)
#define SVM_INTERCEPT2_VMLOAD (1u << 2)
#define SVM_INTERCEPT2_VMSAVE (1u << 3)
#define SVM_INTERCEPT2_STGI (1u << 4)
#define SVM_INTERCEPT2_CLGI (1u << 5)
#define SVM_INTERCEPT2_SKINIT (1u << 6)
#define SVM_INTERCEPT2_XSETBV (1u << 13)

#define SVM_TLB_NONE 0
#define SVM_TLB_FLUSH_ALL 1  /* every ASID */
#define SVM_TLB_FLUSH_ASID 3 /* this guest's ASID only (FlushByAsid) */
#define SVM_V_INTR_MASKING (1ull << 24)
#define SVM_V_IRQ (1ull << 8)      /* a virtual interrupt is pending (for VINTR) */
#define SVM_V_IGN_TPR (1ull << 20) /* ... whatever the guest's TPR */
#define SVM_EVENT_VALID (1ull << 31)
#define SVM_EVENT_HAS_ERROR (1ull << 11)

#define SVM_EXIT_EXCP_BASE 0x40 /* + vector */
#define SVM_EXIT_INTR 0x60
#define SVM_EXIT_NMI 0x61
#define SVM_EXIT_VINTR 0x64
#define SVM_EXIT_CPUID 0x72
#define SVM_EXIT_HLT 0x78
#define SVM_EXIT_IOIO 0x7b
#define SVM_EXIT_MSR 0x7c
#define SVM_EXIT_SHUTDOWN 0x7f
#define SVM_EXIT_VMMCALL 0x81
#define SVM_EXIT_NPF 0x400
#define SVM_EXIT_INVALID ((uint64_t)-1)

#define SVM_ASID 1               /* the one guest; 0 is the host's */
#define SVM_VMMCALL_BYTES 3      /* 0f 01 d9 */
#define SVM_IOPM_PAGES 3         /* 12 KiB: one bit per port */
#define SVM_MSRPM_PAGES 2        /* 8 KiB: two bits per MSR */
#define IOIO_IN (1u << 0)        /* EXITINFO1 of an IOIO exit (APM 15.10.2) */
#define IOIO_STR (1u << 2)
#define IOIO_REP (1u << 3)
#define SVM_PAT_DEFAULT 0x0007040600070406ull /* the power-on PAT */
/* NPT entries: a long-mode PTE; nested walks are user accesses (APM
 * 15.25.5), so every level needs U/S. */
#define NPT_TABLE (PTE_P | PTE_RW | PTE_US)
#define NPT_LEAF (PTE_P | PTE_RW | PTE_US)

/* What hv_entry.S's SVM path shares with svm.c (offsets asserted). */
struct hv_svm_ctx {
	uint64_t *gpr;        /* 0: vm->gpr (RAX and RSP live in the VMCB) */
	uint64_t vmcb_pa;     /* 8 */
	uint64_t host_vmcb_pa; /* 16: VMSAVE image of ferry's FS/GS/TR/LDTR/syscall MSRs */
	void *host_fpu;       /* 24 */
	void *guest_fpu;      /* 32 */
	uint64_t xsave_mask;  /* 40 */
};
_Static_assert(__builtin_offsetof(struct hv_svm_ctx, xsave_mask) == 40, "hv_entry.S offsets");
void hv_svm_run(struct hv_svm_ctx *c);

struct svm_vm {
	struct vmcb vmcb;      /* page-aligned: first */
	uint8_t guest_fpu[HV_XSAVE_BYTES] __attribute__((aligned(64)));
	uint8_t host_fpu[HV_XSAVE_BYTES] __attribute__((aligned(64)));
	struct hv_svm_ctx ctx;
	uint64_t *npt_pml4;
	uint8_t flush;         /* TLB_CONTROL for the next VMRUN */
};
#define SVM_VM_PAGES ((sizeof(struct svm_vm) + PAGE_SIZE - 1) / PAGE_SIZE)

static void *hsave, *host_vmcb, *iopm, *msrpm;
/* The MSR map of OS guests: as msrpm, but the MSRs VMLOAD/VMSAVE switch
 * (and SYSENTER's, in the VMCB too) go straight to the guest. */
static void *msrpm_os;
static const uint32_t os_direct_msrs[] = {
	0x174, 0x175, 0x176,                /* SYSENTER_CS, _ESP, _EIP */
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, /* STAR, LSTAR, CSTAR, SFMASK */
	0xc0000100, 0xc0000101, 0xc0000102, /* FS_BASE, GS_BASE, KERNEL_GS_BASE */
};

/* Clear an MSR's read and write intercept bits (APM 15.11: three 2 KiB
 * ranges, two bits an MSR). */
static void msrpm_allow(uint8_t *map, uint32_t msr)
{
	uint32_t base = msr < 0x2000 ? 0 : msr >= 0xc0010000 ? 0x1000 : 0x800;
	uint32_t bit = (msr & 0x1fff) * 2;
	map[base + bit / 8] &= (uint8_t)~(3u << (bit % 8));
}
static int flush_by_asid, nrips;

static int svm_probe(char *why, size_t n)
{
	if (!cpu_info.svm) {
		snprintf(why, n, "no SVM");
		return -1;
	}
	if (cpu_info.svm_locked_off) {
		snprintf(why, n, "SVM disabled by firmware (VM_CR.SVMDIS)");
		return -1;
	}
	if (!cpu_info.npt) {
		snprintf(why, n, "SVM without nested paging");
		return -1;
	}
	snprintf(why, n, "SVM with nested paging");
	return 0;
}

static int svm_init(char *why, size_t n)
{
	uint32_t r[4];
	x86_cpuid(0x8000000a, 0, r);
	nrips = (r[3] >> 3) & 1;         /* next-RIP saved on #VMEXIT */
	flush_by_asid = (r[3] >> 6) & 1; /* TLB_CONTROL 3 */
	hsave = pmm_alloc(1, PMM_ZERO);
	host_vmcb = pmm_alloc(1, PMM_ZERO);
	iopm = pmm_alloc(SVM_IOPM_PAGES, 0);
	msrpm = pmm_alloc(SVM_MSRPM_PAGES, 0);
	msrpm_os = pmm_alloc(SVM_MSRPM_PAGES, 0);
	if (!hsave || !host_vmcb || !iopm || !msrpm || !msrpm_os) {
		snprintf(why, n, "out of memory for SVM host areas");
		return -1;
	}
	/* Every port and MSR access exits (and stops the guest): the guest
	 * reaches no device and no MSR of ferry's. */
	memset(iopm, 0xff, SVM_IOPM_PAGES * PAGE_SIZE);
	memset(msrpm, 0xff, SVM_MSRPM_PAGES * PAGE_SIZE);
	memset(msrpm_os, 0xff, SVM_MSRPM_PAGES * PAGE_SIZE);
	for (size_t i = 0; i < sizeof(os_direct_msrs) / sizeof(os_direct_msrs[0]); i++)
		msrpm_allow(msrpm_os, os_direct_msrs[i]);
	/* 1. EFER.SVME on; 2. the host save area VMRUN uses (APM 15.30.4);
	 * 3. ferry's own VMLOAD-class state, restored after every exit. */
	x86_wrmsr(MSR_EFER, x86_rdmsr(MSR_EFER) | EFER_SVME);
	x86_wrmsr(MSR_VM_HSAVE_PA, (uint64_t)(uintptr_t)hsave);
	x86_vmsave((uint64_t)(uintptr_t)host_vmcb);
	snprintf(why, n, "SVM with nested paging%s", nrips ? "" : ", no NRIPS");
	return 0;
}

static uint16_t svm_attrib(uint32_t ar)
{
	return (uint16_t)((ar & 0xff) | ((ar >> 4) & 0xf00));
}

static uint32_t vmx_attrib(uint16_t a, uint16_t selector)
{
	uint32_t ar = (uint32_t)(a & 0xff) | ((uint32_t)(a & 0xf00) << 4);
	if (!(a & 0x80) && !selector)
		ar |= HV_SEG_UNUSABLE;
	return ar;
}

static void seg_in(struct vmcb_seg *d, const struct hv_segment *s)
{
	d->selector = s->selector;
	d->attrib = (s->attrib & HV_SEG_UNUSABLE) ? 0 : svm_attrib(s->attrib);
	d->limit = s->limit;
	d->base = s->base;
}

static void seg_out(struct hv_segment *d, const struct vmcb_seg *s)
{
	memset(d, 0, sizeof(*d));
	d->selector = s->selector;
	d->attrib = vmx_attrib(s->attrib, s->selector);
	d->limit = s->limit;
	d->base = s->base;
}

static void svm_get_state(struct hv_vm *vm, struct hv_cpu_state *s)
{
	struct svm_vm *v = vm->priv;
	const struct vmcb_save *g = &v->vmcb.save;
	memset(s, 0, sizeof(*s));
	s->version = HV_CPU_STATE_VERSION;
	s->size = sizeof(*s);
	snprintf(s->backend, sizeof(s->backend), "npt");
	memcpy(s->gpr, vm->gpr, sizeof(s->gpr));
	s->gpr[HV_RAX] = g->rax;
	s->gpr[HV_RSP] = g->rsp;
	s->rip = g->rip;
	s->rflags = g->rflags;
	s->cr0 = g->cr0;
	s->cr2 = g->cr2;
	s->cr3 = g->cr3;
	s->cr4 = g->cr4;
	s->efer = g->efer & ~EFER_SVME; /* ferry's requirement, not the guest's */
	s->xcr0 = hv_xsave_mask;
	seg_out(&s->es, &g->es);
	seg_out(&s->cs, &g->cs);
	seg_out(&s->ss, &g->ss);
	seg_out(&s->ds, &g->ds);
	seg_out(&s->fs, &g->fs);
	seg_out(&s->gs, &g->gs);
	seg_out(&s->ldtr, &g->ldtr);
	seg_out(&s->tr, &g->tr);
	/* A loaded 64-bit TSS is busy; the VMCB may hold the type LTR read
	 * (9, available: QEMU), which VMX's entry checks refuse. */
	if ((s->tr.attrib & 0xf) == 0x9)
		s->tr.attrib |= 0x2;
	s->gdtr = (struct hv_dtr){ .base = g->gdtr.base, .limit = g->gdtr.limit };
	s->idtr = (struct hv_dtr){ .base = g->idtr.base, .limit = g->idtr.limit };
	s->star = g->star;
	s->lstar = g->lstar;
	s->cstar = g->cstar;
	s->sfmask = g->sfmask;
	s->kernel_gs_base = g->kernel_gs_base;
	s->sysenter_cs = g->sysenter_cs;
	s->sysenter_esp = g->sysenter_esp;
	s->sysenter_eip = g->sysenter_eip;
	s->pat = g->g_pat;
	s->tsc = x86_rdtsc() + v->vmcb.ctl.tsc_offset;
	s->dr7 = g->dr7;
	s->pending_event = (v->vmcb.ctl.eventinj & SVM_EVENT_VALID) ? v->vmcb.ctl.eventinj : 0;
	s->interrupt_shadow = v->vmcb.ctl.interrupt_shadow & 1;
	memcpy(s->xsave, v->guest_fpu, sizeof(s->xsave));
}

/* ept and npt guests live in the same world (64-bit, own tables, VA =
 * GPA), so either's state loads here. */
static int svm_set_state(struct hv_vm *vm, const struct hv_cpu_state *s)
{
	struct svm_vm *v = vm->priv;
	struct vmcb_save *g = &v->vmcb.save;
	if (s->version != HV_CPU_STATE_VERSION || s->size != sizeof(*s) ||
	    (strcmp(s->backend, "npt") != 0 && strcmp(s->backend, "ept") != 0))
		return -1;
	memcpy(vm->gpr, s->gpr, sizeof(vm->gpr));
	g->rax = s->gpr[HV_RAX];
	g->rsp = s->gpr[HV_RSP];
	g->rip = s->rip;
	g->rflags = s->rflags | 0x2;
	g->cr0 = s->cr0;
	g->cr2 = s->cr2;
	g->cr3 = s->cr3;
	g->cr4 = s->cr4;
	g->efer = s->efer | EFER_SVME; /* VMRUN refuses a guest EFER without SVME */
	seg_in(&g->es, &s->es);
	seg_in(&g->cs, &s->cs);
	seg_in(&g->ss, &s->ss);
	seg_in(&g->ds, &s->ds);
	seg_in(&g->fs, &s->fs);
	seg_in(&g->gs, &s->gs);
	seg_in(&g->ldtr, &s->ldtr);
	seg_in(&g->tr, &s->tr);
	g->gdtr = (struct vmcb_seg){ .base = s->gdtr.base, .limit = s->gdtr.limit };
	g->idtr = (struct vmcb_seg){ .base = s->idtr.base, .limit = s->idtr.limit };
	g->cpl = (uint8_t)((s->ss.attrib >> 5) & 3);
	g->star = s->star;
	g->lstar = s->lstar;
	g->cstar = s->cstar;
	g->sfmask = s->sfmask;
	g->kernel_gs_base = s->kernel_gs_base;
	g->sysenter_cs = s->sysenter_cs;
	g->sysenter_esp = s->sysenter_esp;
	g->sysenter_eip = s->sysenter_eip;
	g->g_pat = s->pat ? s->pat : SVM_PAT_DEFAULT;
	g->dr7 = s->dr7 ? s->dr7 : 0x400;
	if (vm->plat) {
		/* The guest's TSC goes on from the captured value (a pause
		 * does not show in it); the event and the shadow as they were. */
		vm->tsc_offset = s->tsc - x86_rdtsc();
		v->vmcb.ctl.tsc_offset = vm->tsc_offset;
		v->vmcb.ctl.eventinj = s->pending_event;
		v->vmcb.ctl.interrupt_shadow = s->interrupt_shadow;
	}
	memcpy(v->guest_fpu, s->xsave, sizeof(v->guest_fpu));
	if (hv_xsave_mask) {
		uint64_t *hdr = (uint64_t *)(v->guest_fpu + 512);
		hdr[0] &= hv_xsave_mask;
		hdr[1] = 0;
	}
	return 0;
}

static int svm_vm_create(struct hv_vm *vm, const struct hv_cpu_state *s)
{
	struct svm_vm *v = pmm_alloc(SVM_VM_PAGES, PMM_ZERO);
	if (!v)
		return -1;
	v->npt_pml4 = pmm_alloc(1, PMM_ZERO);
	if (!v->npt_pml4 || hv_s2_build(vm, NPT_TABLE, NPT_LEAF, PTE_P, PTE_A, PTE_D) < 0) {
		if (v->npt_pml4)
			pmm_free(v->npt_pml4, 1);
		pmm_free(v, SVM_VM_PAGES);
		return -1;
	}
	vm->priv = v;
	v->npt_pml4[0] = (uint64_t)(uintptr_t)vm->s2.pdpt | NPT_TABLE;

	struct vmcb_control *c = &v->vmcb.ctl;
	/* 1. Intercepts: every exception (the guest has no IDT: report, don't
	 *    triple-fault), host interrupts (INTR: the tick ends a run), and
	 *    everything that could reach the host or the SVM machinery. INVD
	 *    among them: not intercepted it runs natively and discards the
	 *    CPU's dirty cache lines, ferry's included (VMX always exits). */
	c->intercept_exc = 0xffffffffu;
	c->intercept_dr = 0xffffffffu; /* DR0-3 are not switched by VMRUN: no access */
	c->intercept_misc1 = SVM_INTERCEPT1_INTR | SVM_INTERCEPT1_NMI | SVM_INTERCEPT1_SMI |
			     SVM_INTERCEPT1_INIT | SVM_INTERCEPT1_INVD | SVM_INTERCEPT1_HLT |
			     SVM_INTERCEPT1_INVLPGA | SVM_INTERCEPT1_IOIO_PROT | SVM_INTERCEPT1_MSR_PROT |
			     SVM_INTERCEPT1_TASK_SWITCH | SVM_INTERCEPT1_SHUTDOWN;
	c->intercept_misc2 = SVM_INTERCEPT2_VMRUN | SVM_INTERCEPT2_VMMCALL | SVM_INTERCEPT2_VMLOAD |
			     SVM_INTERCEPT2_VMSAVE | SVM_INTERCEPT2_STGI | SVM_INTERCEPT2_CLGI |
			     SVM_INTERCEPT2_SKINIT | SVM_INTERCEPT2_XSETBV;
	c->iopm_base_pa = (uint64_t)(uintptr_t)iopm;
	c->msrpm_base_pa = (uint64_t)(uintptr_t)msrpm;
	if (vm->plat) {
		/* An operating system handles its own exceptions and debug
		 * registers (DR7 is switched by VMRUN; DR0-3 hold the guest's
		 * values while ferry, which sets no breakpoint, runs); CPUID,
		 * ports, MSRs and HLT go to the platform. */
		c->intercept_exc = 1u << 18; /* #MC: the host's business */
		c->intercept_dr = 0;
		c->intercept_misc1 |= SVM_INTERCEPT1_CPUID;
		c->msrpm_base_pa = (uint64_t)(uintptr_t)msrpm_os;
	}
	/* 2. ASID 1 (0 is the host's); flush it on the first run. */
	c->asid = SVM_ASID;
	v->flush = flush_by_asid ? SVM_TLB_FLUSH_ASID : SVM_TLB_FLUSH_ALL;
	/* 3. V_INTR_MASKING: the guest's RFLAGS.IF masks only virtual
	 *    interrupts; physical ones follow the host's IF (set around
	 *    VMRUN), so the tick always exits. */
	c->vintr = SVM_V_INTR_MASKING;
	/* 4. Nested paging over the stage-2 tables. */
	c->np_enable = 1;
	c->n_cr3 = (uint64_t)(uintptr_t)v->npt_pml4;
	/* 5. Guest state: 64-bit mode from the first instruction. */
	v->vmcb.save.g_pat = SVM_PAT_DEFAULT;
	v->vmcb.save.dr6 = 0xffff0ff0;
	v->vmcb.save.dr7 = 0x400;
	svm_set_state(vm, s);

	v->ctx.gpr = vm->gpr;
	v->ctx.vmcb_pa = (uint64_t)(uintptr_t)&v->vmcb;
	v->ctx.host_vmcb_pa = (uint64_t)(uintptr_t)host_vmcb;
	v->ctx.host_fpu = v->host_fpu;
	v->ctx.guest_fpu = v->guest_fpu;
	v->ctx.xsave_mask = hv_xsave_mask;
	return 0;
}

static void svm_vm_destroy(struct hv_vm *vm)
{
	struct svm_vm *v = vm->priv;
	hv_s2_free(vm);
	pmm_free(v->npt_pml4, 1);
	pmm_free(v, SVM_VM_PAGES);
	vm->priv = NULL;
}

/* Translations tagged with the guest's ASID are used by nobody but the
 * guest, and only after a VMRUN: a flush requested here takes effect
 * (TLB_CONTROL) before the guest's next access, which is all dirtylog's
 * ordering needs while the guest is not running (ferry has one CPU). A
 * guest running on another CPU would need an IPI-forced exit first. */
static void svm_flush(struct hv_vm *vm)
{
	struct svm_vm *v = vm->priv;
	v->flush = flush_by_asid ? SVM_TLB_FLUSH_ASID : SVM_TLB_FLUSH_ALL;
}

/* RIP past the intercepted instruction: the CPU's when it saves it
 * (NRIPS), else from the instruction's known length (QEMU TCG has no
 * NRIPS). */
static uint64_t next_rip(const struct vmcb *b, unsigned len)
{
	return nrips && b->ctl.next_rip ? b->ctl.next_rip : b->save.rip + len;
}

/* Decode the #VMEXIT in the VMCB into e (APM Vol. 2 15.6, appendix C). */
static void svm_handle_exit(struct svm_vm *v, struct hv_exit *e)
{
	struct vmcb *b = &v->vmcb;
	memset(e, 0, sizeof(*e));
	e->rip = b->save.rip;
	e->rflags = b->save.rflags;
	e->code = b->ctl.exitcode;
	e->error = b->ctl.exitinfo1;
	switch (b->ctl.exitcode) {
	case SVM_EXIT_INTR:
	case SVM_EXIT_NMI:
		e->reason = HV_EXIT_PREEMPT;
		break;
	case SVM_EXIT_VMMCALL:
		/* No NRIPS under QEMU TCG: VMMCALL is 3 bytes. */
		b->save.rip = nrips && b->ctl.next_rip ? b->ctl.next_rip : b->save.rip + SVM_VMMCALL_BYTES;
		e->reason = HV_EXIT_HYPERCALL;
		break;
	case SVM_EXIT_NPF:
		/* EXITINFO2 = the guest-physical address (APM 15.25.6): an
		 * address outside guest memory (nothing else is unmapped), or
		 * a write into a write-protected region (hv_s2_protect). */
		e->reason = HV_EXIT_MEMORY;
		e->gpa = b->ctl.exitinfo2;
		break;
	case SVM_EXIT_SHUTDOWN:
		e->reason = HV_EXIT_SHUTDOWN;
		break;
	case SVM_EXIT_HLT:
		e->reason = HV_EXIT_HLT;
		e->next_rip = next_rip(b, 1);
		break;
	case SVM_EXIT_IOIO: {
		uint64_t q = b->ctl.exitinfo1;
		e->reason = HV_EXIT_IO;
		e->in = q & IOIO_IN;
		e->string = q & (IOIO_STR | IOIO_REP);
		e->size = (q >> 4) & 1 ? 1 : (q >> 5) & 1 ? 2 : 4;
		e->port = (uint16_t)(q >> 16);
		e->next_rip = b->ctl.exitinfo2; /* always saved for IOIO */
		break;
	}
	case SVM_EXIT_MSR:
		e->reason = HV_EXIT_MSR;
		e->write = b->ctl.exitinfo1 & 1;
		e->next_rip = next_rip(b, 2); /* RDMSR, WRMSR: 0f 32, 0f 30 */
		break;
	case SVM_EXIT_CPUID:
		e->reason = HV_EXIT_CPUID;
		e->next_rip = next_rip(b, 2); /* 0f a2 */
		break;
	case SVM_EXIT_VINTR:
		e->reason = HV_EXIT_IRQ_WINDOW;
		break;
	default:
		if (b->ctl.exitcode >= SVM_EXIT_EXCP_BASE && b->ctl.exitcode < SVM_EXIT_EXCP_BASE + 32) {
			e->reason = HV_EXIT_EXCEPTION;
			e->code = b->ctl.exitcode - SVM_EXIT_EXCP_BASE;
		} else {
			e->reason = HV_EXIT_OTHER; /* includes SVM_EXIT_INVALID: bad guest state */
			e->entry_failed = b->ctl.exitcode == SVM_EXIT_INVALID;
		}
		break;
	}
}

static void svm_run(struct hv_vm *vm, struct hv_exit *e)
{
	struct svm_vm *v = vm->priv;
	struct vmcb *b = &v->vmcb;
	b->ctl.tlb_control = v->flush;
	b->ctl.clean = 0; /* ferry edits the VMCB between runs: reload it all */
	b->save.rax = vm->gpr[HV_RAX];
	hv_svm_run(&v->ctx);
	v->flush = SVM_TLB_NONE;
	vm->gpr[HV_RAX] = b->save.rax;
	b->ctl.eventinj = 0;
	/* An event whose delivery the exit interrupted (a host interrupt
	 * during the guest's IDT walk, say) is delivered again at the next
	 * entry (APM 15.7.2). Built-in workloads intercept every exception,
	 * so only an OS guest has such events. */
	if (vm->plat && (b->ctl.exitintinfo & SVM_EVENT_VALID))
		b->ctl.eventinj = b->ctl.exitintinfo;
	svm_handle_exit(v, e);
}

/* ---- OS guests (vm->plat) ---- */

static void svm_set_rip(struct hv_vm *vm, uint64_t rip)
{
	struct svm_vm *v = vm->priv;
	v->vmcb.save.rip = rip;
	v->vmcb.ctl.interrupt_shadow = 0; /* the emulated instruction retired */
}

static bool svm_interruptible(struct hv_vm *vm)
{
	struct svm_vm *v = vm->priv;
	const struct vmcb *b = &v->vmcb;
	return (b->save.rflags & RFLAGS_IF) && !(b->ctl.interrupt_shadow & 1) &&
	       !(b->ctl.eventinj & SVM_EVENT_VALID);
}

static void svm_inject(struct hv_vm *vm, unsigned type, uint8_t vector, bool has_error, uint32_t error)
{
	struct svm_vm *v = vm->priv;
	v->vmcb.ctl.eventinj = vector | ((uint64_t)type << 8) | SVM_EVENT_VALID |
			       (has_error ? SVM_EVENT_HAS_ERROR | ((uint64_t)error << 32) : 0);
}

/* A virtual interrupt with the VINTR intercept: the CPU exits as soon as
 * the guest could take it (IF set, no shadow), before delivering it. */
static void svm_irq_window(struct hv_vm *vm, bool on)
{
	struct svm_vm *v = vm->priv;
	struct vmcb_control *c = &v->vmcb.ctl;
	if (on) {
		c->vintr |= SVM_V_IRQ | SVM_V_IGN_TPR;
		c->intercept_misc1 |= SVM_INTERCEPT1_VINTR;
	} else {
		c->vintr &= ~(SVM_V_IRQ | SVM_V_IGN_TPR);
		c->intercept_misc1 &= ~SVM_INTERCEPT1_VINTR;
	}
}

static int svm_msr(struct hv_vm *vm, uint32_t index, uint64_t *val, bool write)
{
	struct svm_vm *v = vm->priv;
	struct vmcb_save *g = &v->vmcb.save;
	uint64_t efer;
	switch (index) {
	case MSR_EFER:
		if (!write) {
			*val = g->efer & ~EFER_SVME;
			return 0;
		}
		/* SVME is ferry's, not the guest's. */
		if (hv_efer_write(g->efer, *val, &efer) < 0)
			return -1;
		g->efer = efer | EFER_SVME;
		return 0;
	case MSR_PAT:
		if (!write) {
			*val = g->g_pat;
			return 0;
		}
		if (!hv_pat_valid(*val))
			return -1;
		g->g_pat = *val;
		return 0;
	default:
		return 1;
	}
}

static void svm_set_tsc_offset(struct hv_vm *vm, uint64_t offset)
{
	struct svm_vm *v = vm->priv;
	v->vmcb.ctl.tsc_offset = offset;
}

const struct hv_ops svm_ops = {
	.name = "npt",
	.what = "AMD SVM with nested paging",
	.mem_base = 0,
	.gate = { 0x0f, 0x01, 0xd9, 0xc3 }, /* VMMCALL; RET */
	.probe = svm_probe,
	.init = svm_init,
	.vm_create = svm_vm_create,
	.vm_destroy = svm_vm_destroy,
	.run = svm_run,
	.get_state = svm_get_state,
	.set_state = svm_set_state,
	.flush = svm_flush,
	.set_rip = svm_set_rip,
	.interruptible = svm_interruptible,
	.inject = svm_inject,
	.irq_window = svm_irq_window,
	.msr = svm_msr,
	.set_tsc_offset = svm_set_tsc_offset,
};
