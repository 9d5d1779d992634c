/* hv_check.c: is a CPU state safe to load? hv_cpu_check() rejects, with
 * the field and its value, every state that would make ferry itself fault
 * while loading or entering it (FXRSTOR/XRSTOR #GP on reserved MXCSR or
 * XSAVE-header bits, IRETQ #GP on a non-canonical RIP under pte) or that
 * VMRUN/VMLAUNCH would refuse (reserved CR0/CR4/EFER bits, a segment
 * state long mode cannot have). A state from the network is checked here
 * before hv_cpu_restore hands it to the backend. */
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "hv.h"
#include "x86.h"

#define RFLAGS_FIXED1 (1ull << 1)
/* Bits software may set: CF PF AF ZF SF TF IF DF OF IOPL NT RF AC VIF VIP ID.
 * VM (17) is excluded: no virtual-8086 mode in long mode. */
#define RFLAGS_ALLOWED 0x00000000003d7fd7ull
#define CR0_ALLOWED 0x00000000e005003full /* PE MP EM TS ET NE WP AM NW CD PG */
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
/* VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT; OSXSAVE when the
 * host has XSAVE. Not VMXE/SMXE (ferry does not nest), not LA57 (the
 * guest's tables are 4-level). */
#define CR4_ALLOWED_BASE 0x00000000000007ffull
#define CR3_RESERVED 0xfff0000000000fe7ull /* above 52 bits; low bits but PWT PCD */
#define EFER_LMA (1ull << 10)
#define EFER_ALLOWED (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)
#define SEG_ATTR_KNOWN 0x1f0ffu           /* type S DPL P AVL L D/B G unusable */
#define SEG_P (1u << 7)
#define SEG_S (1u << 4)
#define SEG_L (1u << 13)
#define SEG_DB (1u << 14)
#define XSAVE_LEGACY 512   /* bytes: FXSAVE area, then the 64-byte header */
#define MXCSR_OFF 24
#define MXCSR_MASK_OFF 28

static int canonical(uint64_t va)
{
	return (uint64_t)((int64_t)(va << 16) >> 16) == va;
}

/* MXCSR bits this CPU accepts (SDM Vol. 1 11.6.6): FXSAVE's MXCSR_MASK,
 * or 0xffbf when it reads 0. */
static uint32_t mxcsr_mask(void)
{
	static uint32_t mask;
	if (!mask) {
		static uint8_t area[512] __attribute__((aligned(16)));
		memset(area, 0, sizeof(area));
		x86_fxsave(area);
		memcpy(&mask, area + MXCSR_MASK_OFF, 4);
		if (!mask)
			mask = 0xffbf;
	}
	return mask;
}

static int seg_check(const char *name, const struct hv_segment *s, char *why, size_t n)
{
	if (s->attrib & ~SEG_ATTR_KNOWN) {
		snprintf(why, n, "%s attributes 0x%x have reserved bits set", name, (unsigned)s->attrib);
		return -1;
	}
	if (!canonical(s->base)) {
		snprintf(why, n, "%s base 0x%llx is not canonical", name, (unsigned long long)s->base);
		return -1;
	}
	return 0;
}

int hv_cpu_check(const struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n)
{
	const char *mine = vm->ops->name;
	if (s->version != HV_CPU_STATE_VERSION || s->size != sizeof(*s)) {
		snprintf(why, n, "CPU state version %u size %u, this ferry loads version %u size %u",
			 (unsigned)s->version, (unsigned)s->size, HV_CPU_STATE_VERSION, (unsigned)sizeof(*s));
		return -1;
	}
	if (!memchr(s->backend, 0, sizeof(s->backend))) {
		snprintf(why, n, "CPU state backend name is not terminated");
		return -1;
	}
	int hw = strcmp(s->backend, "ept") == 0 || strcmp(s->backend, "npt") == 0;
	int pte = strcmp(s->backend, "pte") == 0;
	if ((strcmp(mine, "pte") == 0) != pte || (!pte && !hw)) {
		snprintf(why, n, "a CPU state of backend '%s' cannot run on backend %s", s->backend, mine);
		return -1;
	}
	if (!canonical(s->rip) || !canonical(s->gpr[HV_RSP])) {
		snprintf(why, n, "%s 0x%llx is not canonical", canonical(s->rip) ? "rsp" : "rip",
			 (unsigned long long)(canonical(s->rip) ? s->gpr[HV_RSP] : s->rip));
		return -1;
	}
	if ((s->rflags & ~RFLAGS_ALLOWED & ~RFLAGS_FIXED1)) {
		snprintf(why, n, "rflags 0x%llx has reserved or unsupported bits set", (unsigned long long)s->rflags);
		return -1;
	}

	/* FPU/SSE/AVX image: what FXRSTOR/XRSTOR would fault on. */
	uint32_t mxcsr;
	memcpy(&mxcsr, s->xsave + MXCSR_OFF, 4);
	if (mxcsr & ~mxcsr_mask()) {
		snprintf(why, n, "MXCSR 0x%08x has bits outside this CPU's mask 0x%08x", (unsigned)mxcsr,
			 (unsigned)mxcsr_mask());
		return -1;
	}
	uint64_t xcr0_ok = hv_xsave_mask ? hv_xsave_mask : (XCR0_X87 | XCR0_SSE);
	uint64_t hdr[8];
	memcpy(hdr, s->xsave + XSAVE_LEGACY, sizeof(hdr));
	if (hdr[0] & ~xcr0_ok) {
		snprintf(why, n, "XSAVE header XSTATE_BV 0x%llx has components outside XCR0 0x%llx",
			 (unsigned long long)hdr[0], (unsigned long long)xcr0_ok);
		return -1;
	}
	for (int i = 1; i < 8; i++)
		if (hdr[i]) {
			snprintf(why, n, "XSAVE header word %d is 0x%llx, must be 0 (standard form, reserved)", i,
				 (unsigned long long)hdr[i]);
			return -1;
		}
	/* xcr0 0: a source without XSAVE (FXSAVE state only). */
	if ((s->xcr0 && !(s->xcr0 & XCR0_X87)) || (s->xcr0 & ~xcr0_ok)) {
		snprintf(why, n, "xcr0 0x%llx is neither 0 nor a subset of this CPU's 0x%llx with x87",
			 (unsigned long long)s->xcr0, (unsigned long long)xcr0_ok);
		return -1;
	}
	if (pte)
		return 0; /* ring 3 under ferry's tables: no control state of its own */

	/* ept/npt: a 64-bit guest with paging (what VM entry accepts). */
	if ((s->cr0 & ~CR0_ALLOWED) || !(s->cr0 & CR0_PE) || !(s->cr0 & CR0_PG) ||
	    ((s->cr0 & CR0_NW) && !(s->cr0 & CR0_CD))) {
		snprintf(why, n, "cr0 0x%llx: not a 64-bit paging mode VM entry accepts", (unsigned long long)s->cr0);
		return -1;
	}
	uint64_t cr4_ok = CR4_ALLOWED_BASE | (cpu_info.xsave ? CR4_OSXSAVE : 0);
	if ((s->cr4 & ~cr4_ok) || !(s->cr4 & CR4_PAE)) {
		snprintf(why, n, "cr4 0x%llx: reserved or unsupported bits, or PAE clear", (unsigned long long)s->cr4);
		return -1;
	}
	if (s->cr3 & CR3_RESERVED) {
		snprintf(why, n, "cr3 0x%llx has reserved bits set", (unsigned long long)s->cr3);
		return -1;
	}
	uint64_t efer_ok = EFER_ALLOWED & ~(cpu_info.nx ? 0 : EFER_NXE);
	if ((s->efer & ~efer_ok) || !(s->efer & EFER_LME) || !(s->efer & EFER_LMA)) {
		snprintf(why, n, "efer 0x%llx: not long mode, or reserved bits set", (unsigned long long)s->efer);
		return -1;
	}
	const struct { const char *name; const struct hv_segment *s; } segs[] = {
		{ "es", &s->es }, { "cs", &s->cs }, { "ss", &s->ss }, { "ds", &s->ds },
		{ "fs", &s->fs }, { "gs", &s->gs }, { "ldtr", &s->ldtr }, { "tr", &s->tr },
	};
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
		if (seg_check(segs[i].name, segs[i].s, why, n) < 0)
			return -1;
	uint32_t cs = s->cs.attrib;
	if ((cs & HV_SEG_UNUSABLE) || !(cs & SEG_P) || !(cs & SEG_S) || !(cs & 0x8) || !(cs & SEG_L) ||
	    (cs & SEG_DB)) {
		snprintf(why, n, "cs attributes 0x%x: not a present 64-bit code segment", (unsigned)cs);
		return -1;
	}
	uint32_t ss = s->ss.attrib;
	if (!(ss & HV_SEG_UNUSABLE) && (!(ss & SEG_P) || !(ss & SEG_S) || (ss & 0x8) || !(ss & 0x2))) {
		snprintf(why, n, "ss attributes 0x%x: not a present writable data segment", (unsigned)ss);
		return -1;
	}
	if (((cs >> 5) & 3) != ((ss >> 5) & 3)) {
		snprintf(why, n, "cs DPL %u differs from ss DPL %u", (unsigned)((cs >> 5) & 3), (unsigned)((ss >> 5) & 3));
		return -1;
	}
	uint32_t tr = s->tr.attrib;
	if ((tr & HV_SEG_UNUSABLE) || !(tr & SEG_P) || (tr & SEG_S) || (tr & 0xf) != 0xb) {
		snprintf(why, n, "tr attributes 0x%x: not a present busy 64-bit TSS", (unsigned)tr);
		return -1;
	}
	uint32_t ldt = s->ldtr.attrib;
	if (!(ldt & HV_SEG_UNUSABLE) && (!(ldt & SEG_P) || (ldt & SEG_S) || (ldt & 0xf) != 0x2)) {
		snprintf(why, n, "ldtr attributes 0x%x: neither unusable nor a present LDT", (unsigned)ldt);
		return -1;
	}
	/* Version 2: what an OS guest adds. */
	const struct { const char *name; uint64_t v; } addrs[] = {
		{ "lstar", s->lstar }, { "cstar", s->cstar }, { "kernel_gs_base", s->kernel_gs_base },
		{ "sysenter_esp", s->sysenter_esp }, { "sysenter_eip", s->sysenter_eip },
	};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		if (!canonical(addrs[i].v)) {
			snprintf(why, n, "%s 0x%llx is not canonical", addrs[i].name, (unsigned long long)addrs[i].v);
			return -1;
		}
	if (s->pat && !hv_pat_valid(s->pat)) {
		snprintf(why, n, "pat 0x%llx: an entry is not a memory type", (unsigned long long)s->pat);
		return -1;
	}
	if (s->dr7 >> 32 || s->interrupt_shadow > 1 || s->reserved32 || s->reserved[0] || s->reserved[1] ||
	    s->reserved[2]) {
		snprintf(why, n, "dr7 0x%llx, interrupt shadow %u or a reserved field out of range",
			 (unsigned long long)s->dr7, (unsigned)s->interrupt_shadow);
		return -1;
	}
	uint64_t ev = s->pending_event;
	unsigned ev_type = (ev >> 8) & 7, ev_vec = ev & 0xff;
	if (ev && (!(ev & HV_EVENT_VALID) || (ev & 0x7ffff000ull) ||
		   (ev_type != HV_EVENT_INTR && ev_type != HV_EVENT_NMI && ev_type != HV_EVENT_EXCEPTION &&
		    ev_type != 4) ||
		   (ev_type == HV_EVENT_EXCEPTION && (ev_vec > 31 || ev_vec == 2)) ||
		   ((ev & (1ull << 11)) && ev_type != HV_EVENT_EXCEPTION))) {
		snprintf(why, n, "pending event 0x%llx is not one a CPU could deliver", (unsigned long long)ev);
		return -1;
	}
	if (!canonical(s->gdtr.base) || !canonical(s->idtr.base) || s->gdtr.limit > 0xffff ||
	    s->idtr.limit > 0xffff) {
		snprintf(why, n, "gdtr 0x%llx/0x%x or idtr 0x%llx/0x%x out of range", (unsigned long long)s->gdtr.base,
			 (unsigned)s->gdtr.limit, (unsigned long long)s->idtr.base, (unsigned)s->idtr.limit);
		return -1;
	}
	return 0;
}

bool hv_pat_valid(uint64_t pat)
{
	for (int i = 0; i < 8; i++) {
		unsigned t = (pat >> (8 * i)) & 0xff;
		if (t > 7 || t == 2 || t == 3)
			return false;
	}
	return true;
}

#define EFER_LMA (1ull << 10)

int hv_efer_write(uint64_t cur, uint64_t val, uint64_t *out)
{
	if (val & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
		return -1;
	*out = (val & ~EFER_LMA) | (cur & EFER_LMA);
	return 0;
}
