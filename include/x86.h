/* x86.h: every inline-assembly wrapper ferry uses, in one place (STYLE 8),
 * plus the architectural constants they take (MSR numbers, CR bits). */
#ifndef FERRY_X86_H
#define FERRY_X86_H

#include <stdint.h>

/* Control register bits (Intel SDM Vol. 3A 2.5). */
#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_VMXE (1ull << 13)
#define CR4_OSXSAVE (1ull << 18)

/* XCR0 state components (SDM Vol. 1 13.1). */
#define XCR0_X87 (1ull << 0)
#define XCR0_SSE (1ull << 1)
#define XCR0_AVX (1ull << 2)
#define XCR0_OPMASK (1ull << 5)
#define XCR0_ZMM_HI256 (1ull << 6)
#define XCR0_HI16_ZMM (1ull << 7)

/* MSRs. */
#define MSR_APIC_BASE 0x1b
#define MSR_FEATURE_CONTROL 0x3a
#define MSR_EFER 0xc0000080
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_NXE (1ull << 11)
#define EFER_SVME (1ull << 12)
#define MSR_VMX_BASIC 0x480
#define MSR_VMX_PROCBASED_CTLS 0x482
#define MSR_VMX_PROCBASED_CTLS2 0x48b
#define MSR_VMX_EPT_VPID_CAP 0x48c
#define MSR_VM_CR 0xc0010114

#define RFLAGS_IF (1ull << 9)

static inline void x86_outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void x86_outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void x86_outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t x86_inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t x86_inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t x86_inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t x86_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t x86_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void x86_wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void x86_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static inline uint64_t x86_xgetbv(uint32_t idx)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(idx));
	return ((uint64_t)hi << 32) | lo;
}
static inline void x86_xsetbv(uint32_t idx, uint64_t v)
{
	__asm__ volatile("xsetbv" ::"c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

#define X86_CR_ACCESSORS(n)                                                        \
	static inline uint64_t x86_read_cr##n(void)                                \
	{                                                                          \
		uint64_t v;                                                        \
		__asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));                  \
		return v;                                                          \
	}                                                                          \
	static inline void x86_write_cr##n(uint64_t v)                             \
	{                                                                          \
		__asm__ volatile("mov %0, %%cr" #n ::"r"(v) : "memory");           \
	}
X86_CR_ACCESSORS(0)
X86_CR_ACCESSORS(2)
X86_CR_ACCESSORS(3)
X86_CR_ACCESSORS(4)
#undef X86_CR_ACCESSORS

static inline uint64_t x86_read_rflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; popq %0" : "=r"(v));
	return v;
}
static inline uint64_t x86_read_rbp(void)
{
	uint64_t v;
	__asm__ volatile("mov %%rbp, %0" : "=r"(v));
	return v;
}

static inline void x86_cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void x86_sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void x86_hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
/* sti takes effect after the next instruction, so no interrupt can slip in
 * between the check that decided to sleep and the hlt. */
static inline void x86_sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
/* Let one pending interrupt in: sti's shadow covers the nop, so the
 * window is exactly one instruction wide. */
static inline void x86_irq_window(void) { __asm__ volatile("sti; nop; cli" ::: "memory"); }
static inline void x86_pause(void) { __asm__ volatile("pause"); }
static inline void x86_invlpg(const volatile void *va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }

struct x86_dtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));
static inline void x86_lgdt(const struct x86_dtr *d) { __asm__ volatile("lgdt %0" ::"m"(*d)); }
static inline void x86_lidt(const struct x86_dtr *d) { __asm__ volatile("lidt %0" ::"m"(*d)); }
static inline void x86_sgdt(struct x86_dtr *d) { __asm__ volatile("sgdt %0" : "=m"(*d)); }
static inline void x86_sidt(struct x86_dtr *d) { __asm__ volatile("sidt %0" : "=m"(*d)); }
static inline void x86_ltr(uint16_t sel) { __asm__ volatile("ltr %0" ::"r"(sel)); }

static inline uint64_t x86_mmio_read64(uintptr_t a) { return *(volatile uint64_t *)a; }
static inline uint32_t x86_mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void x86_mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

/* FPU state save/restore: XSAVE standard form (area 64-byte aligned) or
 * the legacy 512-byte FXSAVE image (16-byte aligned). */
static inline void x86_xsave(void *area, uint64_t mask)
{
	__asm__ volatile("xsave64 (%0)" ::"r"(area), "a"((uint32_t)mask), "d"((uint32_t)(mask >> 32)) : "memory");
}
static inline void x86_xrstor(const void *area, uint64_t mask)
{
	__asm__ volatile("xrstor64 (%0)" ::"r"(area), "a"((uint32_t)mask), "d"((uint32_t)(mask >> 32)) : "memory");
}
static inline void x86_fxsave(void *area) { __asm__ volatile("fxsave64 (%0)" ::"r"(area) : "memory"); }
static inline void x86_fxrstor(const void *area) { __asm__ volatile("fxrstor64 (%0)" ::"r"(area) : "memory"); }

/* ---- Intel VMX (SDM Vol. 3C chapters 24-31) ---- */

#define MSR_VMX_PINBASED_CTLS 0x481
#define MSR_VMX_EXIT_CTLS 0x483
#define MSR_VMX_ENTRY_CTLS 0x484
#define MSR_VMX_MISC 0x485
#define MSR_VMX_CR0_FIXED0 0x486
#define MSR_VMX_CR0_FIXED1 0x487
#define MSR_VMX_CR4_FIXED0 0x488
#define MSR_VMX_CR4_FIXED1 0x489
#define MSR_VMX_TRUE_PINBASED_CTLS 0x48d
#define MSR_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_VMX_TRUE_EXIT_CTLS 0x48f
#define MSR_VMX_TRUE_ENTRY_CTLS 0x490
#define FEATURE_CONTROL_LOCK (1ull << 0)
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX (1ull << 2)
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_PAT 0x277
#define MSR_SYSENTER_CS 0x174

/* VMX instructions report failure in RFLAGS: CF = VMfailInvalid, ZF =
 * VMfailValid (SDM Vol. 3C 30.2). These return 0 on success, -1 on failure. */
static inline int x86_vmxon(uint64_t pa)
{
	uint8_t bad;
	__asm__ volatile("vmxon %1; setna %0" : "=q"(bad) : "m"(pa) : "cc", "memory");
	return bad ? -1 : 0;
}
static inline void x86_vmxoff(void) { __asm__ volatile("vmxoff" ::: "cc", "memory"); }
static inline int x86_vmclear(uint64_t pa)
{
	uint8_t bad;
	__asm__ volatile("vmclear %1; setna %0" : "=q"(bad) : "m"(pa) : "cc", "memory");
	return bad ? -1 : 0;
}
static inline int x86_vmptrld(uint64_t pa)
{
	uint8_t bad;
	__asm__ volatile("vmptrld %1; setna %0" : "=q"(bad) : "m"(pa) : "cc", "memory");
	return bad ? -1 : 0;
}
static inline uint64_t x86_vmread(uint64_t field)
{
	uint64_t v;
	__asm__ volatile("vmread %1, %0" : "=rm"(v) : "r"(field) : "cc");
	return v;
}
static inline int x86_vmwrite(uint64_t field, uint64_t v)
{
	uint8_t bad;
	__asm__ volatile("vmwrite %2, %1; setna %0" : "=q"(bad) : "r"(field), "rm"(v) : "cc");
	return bad ? -1 : 0;
}
/* INVEPT type 1 = single-context: every mapping tagged with this EPTP. */
static inline int x86_invept(uint64_t type, uint64_t eptp)
{
	struct {
		uint64_t eptp, reserved;
	} desc = { eptp, 0 };
	uint8_t bad;
	__asm__ volatile("invept %1, %2; setna %0" : "=q"(bad) : "m"(desc), "r"(type) : "cc", "memory");
	return bad ? -1 : 0;
}

/* ---- AMD SVM (APM Vol. 2 chapter 15) ---- */

static inline void x86_clgi(void) { __asm__ volatile("clgi" ::: "memory"); }
static inline void x86_stgi(void) { __asm__ volatile("stgi" ::: "memory"); }
static inline void x86_vmsave(uint64_t vmcb_pa) { __asm__ volatile("vmsave %%rax" ::"a"(vmcb_pa) : "memory"); }
static inline void x86_vmload(uint64_t vmcb_pa) { __asm__ volatile("vmload %%rax" ::"a"(vmcb_pa) : "memory"); }
#define MSR_VM_HSAVE_PA 0xc0010117

#endif
