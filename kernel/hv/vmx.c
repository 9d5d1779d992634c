/* vmx.c: the ept backend: Intel VMX with EPT and EPT accessed/dirty flags
 * (Intel SDM Vol. 3C, chapters 23-29). The guest runs in 64-bit mode at
 * CPL 0 on its own page tables; guest-physical memory is the EPT (4 KiB
 * leaves), whose dirty flags (bit 9, with EPTP bit 6) are the dirty log.
 * Hypercalls are VMCALL; host interrupts and the VMX-preemption timer end
 * the guest's run. An OS guest (vm->plat) handles its own exceptions; its
 * port, MSR, CPUID, HLT and interrupt-window exits go to kernel/vm/. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "cpu.h"
#include "gdt.h"
#include "hv.h"
#include "hv_backends.h"
#include "pmm.h"
#include "trap.h"
#include "vmx_vmcs.h"
#include "x86.h"

/* What hv_entry.S's VMX path shares with vmx.c (offsets asserted). */
struct hv_vmx_ctx {
	uint64_t *gpr;        /* 0: vm->gpr (RSP lives in the VMCS) */
	uint64_t launched;    /* 8: 0 = VMLAUNCH next, else VMRESUME */
	void *host_fpu;       /* 16 */
	void *guest_fpu;      /* 24 */
	uint64_t xsave_mask;  /* 32 */
	uint64_t failed;      /* 40: set when VMLAUNCH/VMRESUME itself failed */
};
_Static_assert(__builtin_offsetof(struct hv_vmx_ctx, failed) == 40, "hv_entry.S offsets");
void hv_vmx_run(struct hv_vmx_ctx *c);
extern const char hv_vmx_exit[]; /* host RIP after every VM exit */

struct vmx_vm {
	uint8_t vmcs[PAGE_SIZE];   /* page-aligned: first */
	uint8_t guest_fpu[HV_XSAVE_BYTES] __attribute__((aligned(64)));
	uint8_t host_fpu[HV_XSAVE_BYTES] __attribute__((aligned(64)));
	struct hv_vmx_ctx ctx;
	uint64_t *ept_pml4;
	uint64_t eptp;
	uint32_t proc;             /* the primary controls in force */
};
#define VMX_VM_PAGES ((sizeof(struct vmx_vm) + PAGE_SIZE - 1) / PAGE_SIZE)

static void *vmxon_region, *msr_bitmap;
/* The MSR bitmap of OS guests: FS/GS base (guest-state fields switch
 * them) and the syscall MSRs and KERNEL_GS_BASE, which VMX does not switch
 * but ferry never uses (no SYSCALL, no SWAPGS): the guest's values stay in
 * the CPU while ferry runs, and vmx_get_state/set_state read and write
 * them there. SYSENTER's three are guest-state fields too. */
static void *msr_bitmap_os;
static const uint32_t os_direct_msrs[] = {
	0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,
	0xc0000100, 0xc0000101, 0xc0000102,
};
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

/* Clear an MSR's read and write exiting bits (SDM Vol. 3C 24.6.9: read
 * low, read high, write low, write high; 1 KiB each). */
static void msr_bitmap_allow(uint8_t *map, uint32_t msr)
{
	uint32_t off = msr >= 0xc0000000 ? 0x400 : 0, bit = msr & 0x1fff;
	map[off + bit / 8] &= (uint8_t)~(1u << (bit % 8));
	map[0x800 + off + bit / 8] &= (uint8_t)~(1u << (bit % 8));
}
static uint32_t revision;
static int true_ctls, invept_single;
static uint32_t pin_ctls, proc_ctls, proc2_ctls, exit_ctls, entry_ctls;
static uint32_t os_proc_ctls; /* interrupt-window exiting, TSC offsetting: what the CPU allows */
static uint64_t preempt_shift; /* the preemption timer counts TSC >> this */

static int vmx_probe(char *why, size_t n)
{
	if (!cpu_info.vmx) {
		snprintf(why, n, "no VMX");
		return -1;
	}
	if (cpu_info.vmx_locked_off) {
		snprintf(why, n, "VMX disabled by firmware (IA32_FEATURE_CONTROL locked)");
		return -1;
	}
	if (!cpu_info.ept) {
		snprintf(why, n, "VMX without EPT");
		return -1;
	}
	if (!cpu_info.ept_ad) {
		/* Models without it (Sandy/Ivy Bridge) fail VMLAUNCH with EPTP
		 * bit 6 set, and without it there is no dirty log. */
		snprintf(why, n, "VMX with EPT but no EPT accessed/dirty flags (IA32_VMX_EPT_VPID_CAP bit 21 clear)");
		return -1;
	}
	uint64_t cap = x86_rdmsr(MSR_VMX_EPT_VPID_CAP);
	if (!(cap & EPT_CAP_WALK4) || !(cap & EPT_CAP_WB) || !(cap & EPT_CAP_INVEPT)) {
		snprintf(why, n, "EPT without a 4-level walk, write-back tables or INVEPT (cap 0x%llx)",
			 (unsigned long long)cap);
		return -1;
	}
	snprintf(why, n, "VMX with EPT accessed/dirty flags");
	return 0;
}

/* A control value: `want` with the bits the CPU forces to 1 set and the
 * bits it forbids cleared (SDM Vol. 3C A.3: allowed-0 settings in the low
 * dword, allowed-1 in the high one). *missing gets wanted bits refused. */
static uint32_t adjust(uint32_t msr, uint32_t want, uint32_t *missing)
{
	uint64_t cap = x86_rdmsr(msr);
	uint32_t v = (want | (uint32_t)cap) & (uint32_t)(cap >> 32);
	if (missing)
		*missing |= want & ~v;
	return v;
}

static int vmx_init(char *why, size_t n)
{
	uint64_t basic = x86_rdmsr(MSR_VMX_BASIC);
	revision = (uint32_t)basic & 0x7fffffff;
	true_ctls = (basic >> 55) & 1; /* the TRUE_* MSRs exist (A.1) */
	invept_single = (x86_rdmsr(MSR_VMX_EPT_VPID_CAP) & EPT_CAP_INVEPT_SINGLE) != 0;
	preempt_shift = x86_rdmsr(MSR_VMX_MISC) & 31;

	/* Controls, each checked against the capability MSRs. Required:
	 * external-interrupt exiting (the tick ends a run), EPT, a 64-bit
	 * host and guest. Optional: the preemption timer, EFER/PAT loading. */
	uint32_t missing = 0;
	pin_ctls = adjust(true_ctls ? MSR_VMX_TRUE_PINBASED_CTLS : MSR_VMX_PINBASED_CTLS,
			  PIN_EXTINT_EXITING | PIN_NMI_EXITING, &missing);
	pin_ctls |= adjust(true_ctls ? MSR_VMX_TRUE_PINBASED_CTLS : MSR_VMX_PINBASED_CTLS,
			   PIN_PREEMPTION_TIMER, NULL) & PIN_PREEMPTION_TIMER;
	proc_ctls = adjust(true_ctls ? MSR_VMX_TRUE_PROCBASED_CTLS : MSR_VMX_PROCBASED_CTLS,
			   PROC_HLT_EXITING | PROC_MOV_DR_EXITING | PROC_UNCOND_IO_EXITING | PROC_USE_MSR_BITMAPS |
				   PROC_SECONDARY,
			   &missing);
	proc2_ctls = adjust(MSR_VMX_PROCBASED_CTLS2, PROC2_ENABLE_EPT, &missing);
	exit_ctls = adjust(true_ctls ? MSR_VMX_TRUE_EXIT_CTLS : MSR_VMX_EXIT_CTLS, EXIT_HOST_ADDR_SPACE, &missing);
	exit_ctls |= adjust(true_ctls ? MSR_VMX_TRUE_EXIT_CTLS : MSR_VMX_EXIT_CTLS,
			    EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT, NULL) &
		     (EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT);
	entry_ctls = adjust(true_ctls ? MSR_VMX_TRUE_ENTRY_CTLS : MSR_VMX_ENTRY_CTLS, ENTRY_IA32E_GUEST, &missing);
	entry_ctls |= adjust(true_ctls ? MSR_VMX_TRUE_ENTRY_CTLS : MSR_VMX_ENTRY_CTLS,
			     ENTRY_LOAD_EFER | ENTRY_LOAD_PAT, NULL) & (ENTRY_LOAD_EFER | ENTRY_LOAD_PAT);
	if (missing) {
		snprintf(why, n, "VMX lacks required controls (0x%x)", (unsigned)missing);
		return -1;
	}

	vmxon_region = pmm_alloc(1, PMM_ZERO);
	msr_bitmap = pmm_alloc(VMX_MSR_BITMAP_PAGES, 0);
	msr_bitmap_os = pmm_alloc(VMX_MSR_BITMAP_PAGES, 0);
	if (!vmxon_region || !msr_bitmap || !msr_bitmap_os) {
		snprintf(why, n, "out of memory for VMX regions");
		return -1;
	}
	/* Every RDMSR and WRMSR exits (and stops the guest). */
	memset(msr_bitmap, 0xff, VMX_MSR_BITMAP_PAGES * PAGE_SIZE);
	memset(msr_bitmap_os, 0xff, VMX_MSR_BITMAP_PAGES * PAGE_SIZE);
	for (size_t i = 0; i < sizeof(os_direct_msrs) / sizeof(os_direct_msrs[0]); i++)
		msr_bitmap_allow(msr_bitmap_os, os_direct_msrs[i]);
	/* OS guests: the interrupt window and TSC offsetting (optional for
	 * built-in workloads, required to run an OS: vmx_os checks). */
	os_proc_ctls = adjust(true_ctls ? MSR_VMX_TRUE_PROCBASED_CTLS : MSR_VMX_PROCBASED_CTLS,
			      PROC_INT_WINDOW_EXITING | PROC_TSC_OFFSETTING, NULL) &
		       (PROC_INT_WINDOW_EXITING | PROC_TSC_OFFSETTING);

	/* VMXON (SDM Vol. 3C 23.7): 1. IA32_FEATURE_CONTROL must allow VMX
	 * outside SMX and be locked; OVMF under Bochs leaves it 0, so set it
	 * when unlocked. 2. CR0 and CR4 must satisfy the FIXED MSRs, which
	 * includes CR4.VMXE. 3. VMXON with the revision id in the region. */
	uint64_t fc = x86_rdmsr(MSR_FEATURE_CONTROL);
	if (!(fc & FEATURE_CONTROL_LOCK))
		x86_wrmsr(MSR_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	uint64_t cr0 = (x86_read_cr0() | x86_rdmsr(MSR_VMX_CR0_FIXED0)) & x86_rdmsr(MSR_VMX_CR0_FIXED1);
	uint64_t cr4 = (x86_read_cr4() | CR4_VMXE | x86_rdmsr(MSR_VMX_CR4_FIXED0)) & x86_rdmsr(MSR_VMX_CR4_FIXED1);
	x86_write_cr0(cr0);
	x86_write_cr4(cr4);
	*(uint32_t *)vmxon_region = revision;
	if (x86_vmxon((uint64_t)(uintptr_t)vmxon_region) < 0) {
		x86_write_cr4(x86_read_cr4() & ~CR4_VMXE);
		snprintf(why, n, "VMXON failed");
		return -1;
	}
	snprintf(why, n, "VMX with EPT accessed/dirty flags%s",
		 (pin_ctls & PIN_PREEMPTION_TIMER) ? ", preemption timer" : "");
	return 0;
}

static void vmw(enum vmcs_field f, uint64_t v)
{
	if (x86_vmwrite(f, v) < 0)
		panic("vmx: VMWRITE 0x%x = 0x%llx failed, error %llu", (unsigned)f, (unsigned long long)v,
		      (unsigned long long)x86_vmread(VMCS_INSTR_ERROR));
}

static uint64_t vmr(enum vmcs_field f)
{
	return x86_vmread(f);
}

static void seg_in(int i, const struct hv_segment *s)
{
	vmw(VMCS_GUEST_ES_SEL + 2 * i, s->selector);
	vmw(VMCS_GUEST_ES_LIMIT + 2 * i, s->limit);
	vmw(VMCS_GUEST_ES_AR + 2 * i, s->attrib);
	vmw(VMCS_GUEST_ES_BASE + 2 * i, s->base);
}

static void seg_out(int i, struct hv_segment *s)
{
	memset(s, 0, sizeof(*s));
	s->selector = (uint16_t)vmr(VMCS_GUEST_ES_SEL + 2 * i);
	s->limit = (uint32_t)vmr(VMCS_GUEST_ES_LIMIT + 2 * i);
	s->attrib = (uint32_t)vmr(VMCS_GUEST_ES_AR + 2 * i);
	s->base = vmr(VMCS_GUEST_ES_BASE + 2 * i);
}

static void vmx_get_state(struct hv_vm *vm, struct hv_cpu_state *s)
{
	struct vmx_vm *v = vm->priv;
	memset(s, 0, sizeof(*s));
	s->version = HV_CPU_STATE_VERSION;
	s->size = sizeof(*s);
	snprintf(s->backend, sizeof(s->backend), "ept");
	memcpy(s->gpr, vm->gpr, sizeof(s->gpr));
	s->gpr[HV_RSP] = vmr(VMCS_GUEST_RSP);
	s->rip = vmr(VMCS_GUEST_RIP);
	s->rflags = vmr(VMCS_GUEST_RFLAGS);
	/* The guest's view: its own value (the read shadow) for the bits
	 * ferry owns (the mask), the register's for the rest. */
	uint64_t m0 = vmr(VMCS_CR0_MASK), m4 = vmr(VMCS_CR4_MASK);
	s->cr0 = (vmr(VMCS_GUEST_CR0) & ~m0) | (vmr(VMCS_CR0_SHADOW) & m0);
	s->cr3 = vmr(VMCS_GUEST_CR3);
	s->cr4 = (vmr(VMCS_GUEST_CR4) & ~m4) | (vmr(VMCS_CR4_SHADOW) & m4);
	s->cr2 = 0; /* the guest takes no #PF it survives: every exception exits */
	s->efer = (entry_ctls & ENTRY_LOAD_EFER) ? vmr(VMCS_GUEST_EFER) : EFER_LME | (1ull << 10);
	s->xcr0 = hv_xsave_mask;
	struct hv_segment *segs[SEG_N] = { &s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs, &s->ldtr, &s->tr };
	for (int i = 0; i < SEG_N; i++)
		seg_out(i, segs[i]);
	s->gdtr = (struct hv_dtr){ .base = vmr(VMCS_GUEST_GDTR_BASE), .limit = (uint32_t)vmr(VMCS_GUEST_GDTR_LIMIT) };
	s->idtr = (struct hv_dtr){ .base = vmr(VMCS_GUEST_IDTR_BASE), .limit = (uint32_t)vmr(VMCS_GUEST_IDTR_LIMIT) };
	s->sysenter_cs = vmr(VMCS_GUEST_SYSENTER_CS);
	s->sysenter_esp = vmr(VMCS_GUEST_SYSENTER_ESP);
	s->sysenter_eip = vmr(VMCS_GUEST_SYSENTER_EIP);
	s->pat = (entry_ctls & ENTRY_LOAD_PAT) ? vmr(VMCS_GUEST_PAT) : 0;
	s->dr7 = vmr(VMCS_GUEST_DR7);
	if (vm->plat) {
		/* The CPU holds these while an OS guest lives (msr_bitmap_os). */
		s->cr2 = x86_read_cr2();
		s->star = x86_rdmsr(MSR_STAR);
		s->lstar = x86_rdmsr(MSR_LSTAR);
		s->cstar = x86_rdmsr(MSR_CSTAR);
		s->sfmask = x86_rdmsr(MSR_SFMASK);
		s->kernel_gs_base = x86_rdmsr(MSR_KERNEL_GS_BASE);
		s->tsc = x86_rdtsc() + vm->tsc_offset;
		uint32_t ev = (uint32_t)vmr(VMCS_ENTRY_INTR_INFO);
		if (ev & VMX_INTR_VALID)
			s->pending_event = (ev & (0xffu | (7u << 8) | VMX_INTR_HAS_ERROR | VMX_INTR_VALID)) |
					   ((ev & VMX_INTR_HAS_ERROR) ? vmr(VMCS_ENTRY_EXCEPTION_ERROR) << 32 : 0);
		s->interrupt_shadow = (vmr(VMCS_GUEST_INTERRUPTIBILITY) & 3) != 0;
	}
	memcpy(s->xsave, v->guest_fpu, sizeof(s->xsave));
}

/* Guest state area (SDM Vol. 3C 24.4), checked on entry by 26.3.1. ept
 * and npt guests share one world, so either's state loads here. */
static int vmx_set_state(struct hv_vm *vm, const struct hv_cpu_state *s)
{
	struct vmx_vm *v = vm->priv;
	if (s->version != HV_CPU_STATE_VERSION || s->size != sizeof(*s) ||
	    (strcmp(s->backend, "ept") != 0 && strcmp(s->backend, "npt") != 0))
		return -1;
	memcpy(vm->gpr, s->gpr, sizeof(vm->gpr));
	vmw(VMCS_GUEST_RSP, s->gpr[HV_RSP]);
	vmw(VMCS_GUEST_RIP, s->rip);
	vmw(VMCS_GUEST_RFLAGS, s->rflags | 0x2);
	/* CR0/CR4 must satisfy the FIXED MSRs in VMX operation (CR4.VMXE
	 * among them); the guest reads its own values through the shadows,
	 * and owning every bit (mask all-ones) makes its writes exit. */
	vmw(VMCS_GUEST_CR0, (s->cr0 | x86_rdmsr(MSR_VMX_CR0_FIXED0)) & x86_rdmsr(MSR_VMX_CR0_FIXED1));
	vmw(VMCS_GUEST_CR4, (s->cr4 | x86_rdmsr(MSR_VMX_CR4_FIXED0)) & x86_rdmsr(MSR_VMX_CR4_FIXED1));
	vmw(VMCS_CR0_SHADOW, s->cr0);
	vmw(VMCS_CR4_SHADOW, s->cr4);
	vmw(VMCS_GUEST_CR3, s->cr3);
	if (entry_ctls & ENTRY_LOAD_EFER)
		vmw(VMCS_GUEST_EFER, s->efer);
	const struct hv_segment *segs[SEG_N] = { &s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs, &s->ldtr, &s->tr };
	for (int i = 0; i < SEG_N; i++)
		seg_in(i, segs[i]);
	vmw(VMCS_GUEST_GDTR_BASE, s->gdtr.base);
	vmw(VMCS_GUEST_GDTR_LIMIT, s->gdtr.limit);
	vmw(VMCS_GUEST_IDTR_BASE, s->idtr.base);
	vmw(VMCS_GUEST_IDTR_LIMIT, s->idtr.limit);
	vmw(VMCS_GUEST_SYSENTER_CS, s->sysenter_cs);
	vmw(VMCS_GUEST_SYSENTER_ESP, s->sysenter_esp);
	vmw(VMCS_GUEST_SYSENTER_EIP, s->sysenter_eip);
	if (entry_ctls & ENTRY_LOAD_PAT)
		vmw(VMCS_GUEST_PAT, s->pat ? s->pat : VMX_PAT_DEFAULT);
	vmw(VMCS_GUEST_DR7, s->dr7 ? s->dr7 : 0x400);
	if (vm->plat) {
		x86_write_cr2(s->cr2);
		x86_wrmsr(MSR_STAR, s->star);
		x86_wrmsr(MSR_LSTAR, s->lstar);
		x86_wrmsr(MSR_CSTAR, s->cstar);
		x86_wrmsr(MSR_SFMASK, s->sfmask);
		x86_wrmsr(MSR_KERNEL_GS_BASE, s->kernel_gs_base);
		vm->tsc_offset = s->tsc - x86_rdtsc();
		vmw(VMCS_TSC_OFFSET, vm->tsc_offset);
		uint64_t ev = s->pending_event;
		vmw(VMCS_ENTRY_INTR_INFO, (ev & HV_EVENT_VALID) ? (uint32_t)ev : 0);
		vmw(VMCS_ENTRY_EXCEPTION_ERROR, ev >> 32);
		vmw(VMCS_GUEST_INTERRUPTIBILITY, s->interrupt_shadow ? 1 : 0);
		/* Guest and host CR0/CR4 meet in one register: the guest owns
		 * every bit but those VMX fixes (shadowed, and their writes exit). */
		vmw(VMCS_CR0_MASK, x86_rdmsr(MSR_VMX_CR0_FIXED0) | ~x86_rdmsr(MSR_VMX_CR0_FIXED1));
		vmw(VMCS_CR4_MASK, x86_rdmsr(MSR_VMX_CR4_FIXED0) | ~x86_rdmsr(MSR_VMX_CR4_FIXED1));
	}
	memcpy(v->guest_fpu, s->xsave, sizeof(v->guest_fpu));
	if (hv_xsave_mask) {
		uint64_t *hdr = (uint64_t *)(v->guest_fpu + 512);
		hdr[0] &= hv_xsave_mask;
		hdr[1] = 0;
	}
	return 0;
}

/* Base of ferry's TSS, from its GDT descriptor (SDM Vol. 3A 7.2.3). */
static uint64_t host_tr_base(void)
{
	struct x86_dtr gdtr;
	x86_sgdt(&gdtr);
	const uint64_t *gdt = (const uint64_t *)(uintptr_t)gdtr.base;
	uint64_t lo = gdt[GDT_TSS >> 3], hi = gdt[(GDT_TSS >> 3) + 1];
	return ((lo >> 16) & 0xffffff) | (((lo >> 56) & 0xff) << 24) | (hi << 32);
}

static void vmcs_setup_host(void)
{
	/* Host state area (SDM Vol. 3C 24.5): what every VM exit loads.
	 * HOST_RSP is written by hv_vmx_run before each entry. */
	struct x86_dtr gdtr, idtr;
	x86_sgdt(&gdtr);
	x86_sidt(&idtr);
	vmw(VMCS_HOST_CR0, x86_read_cr0());
	vmw(VMCS_HOST_CR3, x86_read_cr3());
	vmw(VMCS_HOST_CR4, x86_read_cr4());
	vmw(VMCS_HOST_CS_SEL, GDT_KERNEL_CS);
	vmw(VMCS_HOST_SS_SEL, GDT_KERNEL_DS);
	vmw(VMCS_HOST_DS_SEL, GDT_KERNEL_DS);
	vmw(VMCS_HOST_ES_SEL, GDT_KERNEL_DS);
	vmw(VMCS_HOST_FS_SEL, 0);
	vmw(VMCS_HOST_GS_SEL, 0);
	vmw(VMCS_HOST_TR_SEL, GDT_TSS);
	vmw(VMCS_HOST_FS_BASE, x86_rdmsr(MSR_FS_BASE));
	vmw(VMCS_HOST_GS_BASE, x86_rdmsr(MSR_GS_BASE));
	vmw(VMCS_HOST_TR_BASE, host_tr_base());
	vmw(VMCS_HOST_GDTR_BASE, gdtr.base);
	vmw(VMCS_HOST_IDTR_BASE, idtr.base);
	vmw(VMCS_HOST_SYSENTER_CS, 0);
	vmw(VMCS_HOST_SYSENTER_ESP, 0);
	vmw(VMCS_HOST_SYSENTER_EIP, 0);
	if (exit_ctls & EXIT_LOAD_EFER)
		vmw(VMCS_HOST_EFER, x86_rdmsr(MSR_EFER));
	if (exit_ctls & EXIT_LOAD_PAT)
		vmw(VMCS_HOST_PAT, x86_rdmsr(MSR_PAT));
	vmw(VMCS_HOST_RIP, (uint64_t)(uintptr_t)hv_vmx_exit);
}

static int vmx_vm_create(struct hv_vm *vm, const struct hv_cpu_state *s)
{
	struct vmx_vm *v = pmm_alloc(VMX_VM_PAGES, PMM_ZERO);
	if (!v)
		return -1;
	v->ept_pml4 = pmm_alloc(1, PMM_ZERO);
	if (!v->ept_pml4 || hv_s2_build(vm, EPT_TABLE, EPT_LEAF, EPT_R | EPT_W | EPT_X, EPT_A, EPT_D) < 0) {
		if (v->ept_pml4)
			pmm_free(v->ept_pml4, 1);
		pmm_free(v, VMX_VM_PAGES);
		return -1;
	}
	vm->priv = v;
	v->ept_pml4[0] = (uint64_t)(uintptr_t)vm->s2.pdpt | EPT_TABLE;
	/* EPTP: write-back, 4-level walk, accessed/dirty flags on (the probe
	 * checked IA32_VMX_EPT_VPID_CAP bit 21 first). */
	v->eptp = (uint64_t)(uintptr_t)v->ept_pml4 | EPTP_WB | EPTP_WALK4 | EPTP_AD;

	/* 1. A fresh VMCS: revision id, VMCLEAR (launch state "clear"),
	 *    VMPTRLD (current) (SDM Vol. 3C 24.2, 24.11.3). */
	*(uint32_t *)v->vmcs = revision;
	uint64_t vmcs_pa = (uint64_t)(uintptr_t)v->vmcs;
	if (x86_vmclear(vmcs_pa) < 0 || x86_vmptrld(vmcs_pa) < 0)
		panic("vmx: VMCLEAR/VMPTRLD of a fresh VMCS failed");
	/* 2. Execution controls (24.6): the tick and NMIs exit, HLT exits,
	 *    debug-register moves exit (DR0-3 are not switched), all I/O and
	 *    MSR accesses exit (the guest reaches no device and
	 *    no MSR of ferry's), every exception exits (the guest has no
	 *    IDT: report rather than triple-fault), EPT. */
	v->proc = proc_ctls;
	if (vm->plat) /* an OS: its debug registers and exceptions are its own (as in svm.c) */
		v->proc = (proc_ctls & ~PROC_MOV_DR_EXITING) | PROC_TSC_OFFSETTING;
	vmw(VMCS_PIN_CTLS, pin_ctls);
	vmw(VMCS_PROC_CTLS, v->proc);
	vmw(VMCS_PROC_CTLS2, proc2_ctls);
	vmw(VMCS_EXCEPTION_BITMAP, vm->plat ? 1u << 18 : 0xffffffffu);
	vmw(VMCS_MSR_BITMAP, (uint64_t)(uintptr_t)(vm->plat ? msr_bitmap_os : msr_bitmap));
	vmw(VMCS_TSC_OFFSET, 0);
	vmw(VMCS_CR3_TARGET_COUNT, 0);
	vmw(VMCS_CR0_MASK, ~0ull);
	vmw(VMCS_CR4_MASK, ~0ull);
	vmw(VMCS_EPTP, v->eptp);
	/* 3. Exit and entry controls (24.7, 24.8): 64-bit host, 64-bit
	 *    guest, EFER and PAT switched by the CPU where it can; no MSR
	 *    lists. */
	vmw(VMCS_EXIT_CTLS, exit_ctls);
	vmw(VMCS_ENTRY_CTLS, entry_ctls);
	vmw(VMCS_EXIT_MSR_STORE_COUNT, 0);
	vmw(VMCS_EXIT_MSR_LOAD_COUNT, 0);
	vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
	vmw(VMCS_ENTRY_INTR_INFO, 0);
	/* 4. Host state (24.5). */
	vmcs_setup_host();
	/* 5. Guest state (24.4): the registers from s, plus what VM entry
	 *    checks but the guest never set: no VMCS link (all ones), DR7
	 *    and DEBUGCTL at reset values, active, no blocking. */
	vmw(VMCS_LINK_POINTER, ~0ull);
	vmw(VMCS_GUEST_DR7, 0x400);
	vmw(VMCS_GUEST_DEBUGCTL, 0);
	vmw(VMCS_GUEST_PENDING_DBG, 0);
	vmw(VMCS_GUEST_ACTIVITY, 0);
	vmw(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmw(VMCS_GUEST_SYSENTER_CS, 0);
	vmw(VMCS_GUEST_SYSENTER_ESP, 0);
	vmw(VMCS_GUEST_SYSENTER_EIP, 0);
	if (entry_ctls & ENTRY_LOAD_PAT)
		vmw(VMCS_GUEST_PAT, VMX_PAT_DEFAULT);
	vmx_set_state(vm, s);

	v->ctx.gpr = vm->gpr;
	v->ctx.host_fpu = v->host_fpu;
	v->ctx.guest_fpu = v->guest_fpu;
	v->ctx.xsave_mask = hv_xsave_mask;
	/* Nothing of this EPT may be cached from an earlier guest's tables
	 * that lived in the same pages. */
	x86_invept(INVEPT_ALL, 0);
	return 0;
}

static void vmx_vm_destroy(struct hv_vm *vm)
{
	struct vmx_vm *v = vm->priv;
	x86_vmclear((uint64_t)(uintptr_t)v->vmcs);
	x86_invept(INVEPT_ALL, 0);
	hv_s2_free(vm);
	pmm_free(v->ept_pml4, 1);
	pmm_free(v, VMX_VM_PAGES);
	vm->priv = NULL;
}

/* INVEPT single-context drops every guest-physical and combined mapping
 * derived from this EPTP, paging-structure caches included (SDM Vol. 3C
 * 28.3.3.1): after it, the next guest access walks the EPT in memory and
 * sets A/D again. */
static void vmx_flush(struct hv_vm *vm)
{
	struct vmx_vm *v = vm->priv;
	if (invept_single)
		x86_invept(INVEPT_SINGLE, v->eptp);
	else
		x86_invept(INVEPT_ALL, 0);
}

/* Decode the VM exit in the current VMCS into e (SDM Vol. 3C 27.2,
 * appendix C). Returns 1 when the exit was handled here and the guest
 * should simply be re-entered. */
/* MOV to CR0/CR4 (or CLTS) touching a bit VMX fixes: the guest's value
 * goes to the shadow, the fixed bits stay. Returns 0, or -1 for forms not
 * emulated (LMSW, other registers). */
static int cr_access(struct hv_vm *vm, uint64_t q)
{
	unsigned cr = q & 15, type = (q >> 4) & 3, reg = (q >> 8) & 15;
	uint64_t val;
	if (type == 2) { /* CLTS */
		cr = 0;
		val = vmr(VMCS_CR0_SHADOW) & ~CR0_TS;
	} else if (type == 0 && (cr == 0 || cr == 4)) {
		val = reg == HV_RSP ? vmr(VMCS_GUEST_RSP) : vm->gpr[reg];
	} else {
		return -1;
	}
	if (cr == 0) {
		vmw(VMCS_GUEST_CR0, (val | x86_rdmsr(MSR_VMX_CR0_FIXED0)) & x86_rdmsr(MSR_VMX_CR0_FIXED1));
		vmw(VMCS_CR0_SHADOW, val);
	} else {
		vmw(VMCS_GUEST_CR4, (val | x86_rdmsr(MSR_VMX_CR4_FIXED0)) & x86_rdmsr(MSR_VMX_CR4_FIXED1));
		vmw(VMCS_CR4_SHADOW, val);
	}
	return 0;
}

static int vmx_handle_exit(struct hv_vm *vm, struct hv_exit *e)
{
	uint32_t reason = (uint32_t)vmr(VMCS_EXIT_REASON);
	memset(e, 0, sizeof(*e));
	e->rip = vmr(VMCS_GUEST_RIP);
	e->rflags = vmr(VMCS_GUEST_RFLAGS);
	if (vm->plat) {
		/* An event whose delivery the exit interrupted is delivered
		 * again at the next entry (SDM Vol. 3C 27.2.4, 28.1). */
		uint32_t idt = (uint32_t)vmr(VMCS_IDT_VECTORING_INFO);
		if (idt & VMX_INTR_VALID) {
			vmw(VMCS_ENTRY_INTR_INFO, idt & (0xffu | (7u << 8) | VMX_INTR_HAS_ERROR | VMX_INTR_VALID));
			vmw(VMCS_ENTRY_EXCEPTION_ERROR, vmr(VMCS_IDT_VECTORING_ERROR));
			vmw(VMCS_ENTRY_INSTR_LEN, vmr(VMCS_EXIT_INSTR_LEN));
		}
	}
	e->code = reason & 0xffff;
	e->error = vmr(VMCS_EXIT_QUALIFICATION);
	if (reason & EXIT_ENTRY_FAILURE) { /* bad guest state: 26.7 */
		e->reason = HV_EXIT_OTHER;
		e->entry_failed = true;
		e->code = reason;
		return 0;
	}
	switch (reason & 0xffff) {
	case EXIT_EXTERNAL_INTERRUPT:
	case EXIT_PREEMPTION_TIMER:
		e->reason = HV_EXIT_PREEMPT;
		return 0;
	case EXIT_EXCEPTION_NMI: {
		uint32_t info = (uint32_t)vmr(VMCS_EXIT_INTR_INFO);
		if (((info >> 8) & 7) == 2) { /* an NMI, meant for the host */
			e->reason = HV_EXIT_PREEMPT;
			return 0;
		}
		e->reason = HV_EXIT_EXCEPTION;
		e->code = info & 0xff;
		e->error = (info & (1u << 11)) ? vmr(VMCS_EXIT_INTR_ERROR) : 0;
		return 0;
	}
	case EXIT_VMCALL:
		vmw(VMCS_GUEST_RIP, e->rip + vmr(VMCS_EXIT_INSTR_LEN));
		e->reason = HV_EXIT_HYPERCALL;
		return 0;
	case EXIT_INVLPG:
		/* Without VPID every VM entry already drops the guest's linear
		 * mappings: skipping the instruction is enough. */
		vmw(VMCS_GUEST_RIP, e->rip + vmr(VMCS_EXIT_INSTR_LEN));
		return 1;
	case EXIT_EPT_VIOLATION:
		/* An address outside guest memory (nothing else is unmapped),
		 * or a write into a write-protected region (hv_s2_protect). */
		e->reason = HV_EXIT_MEMORY;
		e->gpa = vmr(VMCS_GUEST_PHYS_ADDR);
		return 0;
	case EXIT_TRIPLE_FAULT:
		e->reason = HV_EXIT_SHUTDOWN;
		return 0;
	case EXIT_HLT:
		e->reason = HV_EXIT_HLT;
		e->next_rip = e->rip + vmr(VMCS_EXIT_INSTR_LEN);
		return 0;
	case EXIT_IO: {
		uint64_t q = e->error;
		e->reason = HV_EXIT_IO;
		e->size = (uint8_t)((q & 7) + 1);
		e->in = q & 8;
		e->string = q & 0x30; /* INS/OUTS, REP */
		e->port = (uint16_t)(q >> 16);
		e->next_rip = e->rip + vmr(VMCS_EXIT_INSTR_LEN);
		return 0;
	}
	case EXIT_RDMSR:
	case EXIT_WRMSR:
		e->reason = HV_EXIT_MSR;
		e->write = (reason & 0xffff) == EXIT_WRMSR;
		e->next_rip = e->rip + vmr(VMCS_EXIT_INSTR_LEN);
		return 0;
	case EXIT_CPUID:
		e->reason = HV_EXIT_CPUID;
		e->next_rip = e->rip + vmr(VMCS_EXIT_INSTR_LEN);
		return 0;
	case EXIT_INT_WINDOW:
		e->reason = HV_EXIT_IRQ_WINDOW;
		return 0;
	case EXIT_CR_ACCESS:
		if (vm->plat && cr_access(vm, e->error) == 0) {
			vmw(VMCS_GUEST_RIP, e->rip + vmr(VMCS_EXIT_INSTR_LEN));
			return 1;
		}
		e->reason = HV_EXIT_OTHER;
		return 0;
	default:
		e->reason = HV_EXIT_OTHER;
		return 0;
	}
}

static void vmx_run(struct hv_vm *vm, struct hv_exit *e)
{
	struct vmx_vm *v = vm->priv;
	do {
		if (pin_ctls & PIN_PREEMPTION_TIMER)
			vmw(VMCS_PREEMPTION_TIMER,
			    (clock_tsc_hz() / (1000000000ull / HV_SLICE_NS)) >> preempt_shift);
		hv_vmx_run(&v->ctx);
		if (v->ctx.failed) { /* VMfail: the entry never happened (30.4) */
			memset(e, 0, sizeof(*e));
			e->reason = HV_EXIT_OTHER;
			e->entry_failed = true;
			e->code = ~0ull;
			e->error = vmr(VMCS_INSTR_ERROR);
			printf("vmx: VM entry failed, VM-instruction error %llu\n", (unsigned long long)e->error);
			return;
		}
		v->ctx.launched = 1;
	} while (vmx_handle_exit(vm, e));
}

/* ---- OS guests (vm->plat) ---- */

static int vmx_os_supported(char *why, size_t n)
{
	uint32_t need_exit = EXIT_SAVE_EFER | EXIT_SAVE_PAT, need_entry = ENTRY_LOAD_EFER | ENTRY_LOAD_PAT;
	if ((os_proc_ctls & (PROC_INT_WINDOW_EXITING | PROC_TSC_OFFSETTING)) !=
		    (PROC_INT_WINDOW_EXITING | PROC_TSC_OFFSETTING) ||
	    (exit_ctls & need_exit) != need_exit || (entry_ctls & need_entry) != need_entry) {
		snprintf(why, n, "an operating system needs VMX interrupt-window exiting, TSC offsetting and "
			 "EFER/PAT switching, which this CPU lacks");
		return -1;
	}
	return 0;
}

static void vmx_set_rip(struct hv_vm *vm, uint64_t rip)
{
	(void)vm;
	vmw(VMCS_GUEST_RIP, rip);
	/* The emulated instruction retired: no STI/MOV SS blocking is left. */
	vmw(VMCS_GUEST_INTERRUPTIBILITY, vmr(VMCS_GUEST_INTERRUPTIBILITY) & ~3ull);
}

static bool vmx_interruptible(struct hv_vm *vm)
{
	(void)vm;
	return (vmr(VMCS_GUEST_RFLAGS) & RFLAGS_IF) && !(vmr(VMCS_GUEST_INTERRUPTIBILITY) & 3) &&
	       !(vmr(VMCS_ENTRY_INTR_INFO) & VMX_INTR_VALID);
}

static void vmx_inject(struct hv_vm *vm, unsigned type, uint8_t vector, bool has_error, uint32_t error)
{
	(void)vm;
	vmw(VMCS_ENTRY_INTR_INFO, vector | (type << 8) | (has_error ? VMX_INTR_HAS_ERROR : 0) | VMX_INTR_VALID);
	vmw(VMCS_ENTRY_EXCEPTION_ERROR, error);
}

static void vmx_irq_window(struct hv_vm *vm, bool on)
{
	struct vmx_vm *v = vm->priv;
	uint32_t proc = on ? v->proc | PROC_INT_WINDOW_EXITING : v->proc & ~PROC_INT_WINDOW_EXITING;
	if (proc != v->proc) {
		v->proc = proc;
		vmw(VMCS_PROC_CTLS, proc);
	}
}

static int vmx_msr(struct hv_vm *vm, uint32_t index, uint64_t *val, bool write)
{
	(void)vm;
	uint64_t efer;
	switch (index) {
	case MSR_EFER:
		if (!write) {
			*val = vmr(VMCS_GUEST_EFER);
			return 0;
		}
		/* LMA is the CPU's (and VM entry's IA-32e control): kept. */
		if (hv_efer_write(vmr(VMCS_GUEST_EFER), *val, &efer) < 0)
			return -1;
		vmw(VMCS_GUEST_EFER, efer);
		return 0;
	case MSR_PAT:
		if (!write) {
			*val = vmr(VMCS_GUEST_PAT);
			return 0;
		}
		if (!hv_pat_valid(*val))
			return -1;
		vmw(VMCS_GUEST_PAT, *val);
		return 0;
	default:
		return 1;
	}
}

static void vmx_set_tsc_offset(struct hv_vm *vm, uint64_t offset)
{
	(void)vm;
	vmw(VMCS_TSC_OFFSET, offset);
}

const struct hv_ops vmx_ops = {
	.name = "ept",
	.what = "Intel VMX with EPT accessed/dirty flags",
	.mem_base = 0,
	.gate = { 0x0f, 0x01, 0xc1, 0xc3 }, /* VMCALL; RET */
	.probe = vmx_probe,
	.init = vmx_init,
	.vm_create = vmx_vm_create,
	.vm_destroy = vmx_vm_destroy,
	.run = vmx_run,
	.get_state = vmx_get_state,
	.set_state = vmx_set_state,
	.flush = vmx_flush,
	.os_supported = vmx_os_supported,
	.set_rip = vmx_set_rip,
	.interruptible = vmx_interruptible,
	.inject = vmx_inject,
	.irq_window = vmx_irq_window,
	.msr = vmx_msr,
	.set_tsc_offset = vmx_set_tsc_offset,
};
