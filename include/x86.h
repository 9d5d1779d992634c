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
static inline void x86_pause(void) { __asm__ volatile("pause"); }
static inline void x86_invlpg(const volatile void *va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }

struct x86_dtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));
static inline void x86_lgdt(const struct x86_dtr *d) { __asm__ volatile("lgdt %0" ::"m"(*d)); }
static inline void x86_lidt(const struct x86_dtr *d) { __asm__ volatile("lidt %0" ::"m"(*d)); }
static inline void x86_ltr(uint16_t sel) { __asm__ volatile("ltr %0" ::"r"(sel)); }

static inline uint64_t x86_mmio_read64(uintptr_t a) { return *(volatile uint64_t *)a; }
static inline uint32_t x86_mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void x86_mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

#endif
