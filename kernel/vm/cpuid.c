/* cpuid.c: the CPU an OS guest sees. One fixed baseline model, so that a
 * guest can move between any two ferry hosts: an x86-64 CPU of QEMU's
 * "kvm64" kind (GenuineIntel, family 15, model 6) with SSE3, CX16,
 * POPCNT, NX, SYSCALL and LAHF in 64-bit mode, and nothing a migration
 * could lose on the way (no AVX, no XSAVE, no RDTSCP, no FSGSBASE). A
 * feature is offered only where this host has it too.
 *
 * Intel rather than AMD because of time: Linux takes the TSC frequency
 * from leaves 0x15 and 0x16 only on Intel CPUs; elsewhere it measures it
 * against the PIT with loops that need a port access to cost well under
 * 10 us, which a nested emulator cannot give (the AMD model ended on
 * "tsc: Unable to calibrate against PIT" and a jiffies clock).
 *
 * Hidden on purpose: the local APIC and x2APIC (the platform has none:
 * Linux runs on the 8259 PIC and the PIT), MTRRs, machine checks, the
 * performance counters, VMX and SVM. The hypervisor bit is set, ferry's
 * leaf sits at 0x40000000, and the TSC is invariant (ferry keeps it
 * running at the host's rate). */
#include <string.h>

#include "clock.h"
#include "vm_devs.h"
#include "x86.h"

#define FERRY_SIGNATURE "FerryFerryVM" /* 12 bytes: EBX, ECX, EDX of 0x40000000 */
#define BRAND "ferry virtual CPU (kvm64 baseline)"

/* Leaf 1 EDX: FPU, VME-less PC features ferry offers. */
#define L1_EDX_FPU (1u << 0)
#define L1_EDX_DE (1u << 2)
#define L1_EDX_PSE (1u << 3)
#define L1_EDX_TSC (1u << 4)
#define L1_EDX_MSR (1u << 5)
#define L1_EDX_PAE (1u << 6)
#define L1_EDX_CX8 (1u << 8)
#define L1_EDX_SEP (1u << 11)
#define L1_EDX_PGE (1u << 13)
#define L1_EDX_CMOV (1u << 15)
#define L1_EDX_PAT (1u << 16)
#define L1_EDX_PSE36 (1u << 17)
#define L1_EDX_CLFSH (1u << 19)
#define L1_EDX_MMX (1u << 23)
#define L1_EDX_FXSR (1u << 24)
#define L1_EDX_SSE (1u << 25)
#define L1_EDX_SSE2 (1u << 26)
#define L1_EDX_BASE                                                                               \
	(L1_EDX_FPU | L1_EDX_DE | L1_EDX_PSE | L1_EDX_TSC | L1_EDX_MSR | L1_EDX_PAE | L1_EDX_CX8 |  \
	 L1_EDX_SEP | L1_EDX_PGE | L1_EDX_CMOV | L1_EDX_PAT | L1_EDX_PSE36 | L1_EDX_CLFSH |         \
	 L1_EDX_MMX | L1_EDX_FXSR | L1_EDX_SSE | L1_EDX_SSE2)
#define L1_ECX_SSE3 (1u << 0)
#define L1_ECX_CX16 (1u << 13)
#define L1_ECX_POPCNT (1u << 23)
#define L1_ECX_HYPERVISOR (1u << 31)
#define L1_ECX_BASE (L1_ECX_SSE3 | L1_ECX_CX16 | L1_ECX_POPCNT)
/* Leaf 0x80000001. */
#define X1_EDX_SYSCALL (1u << 11)
#define X1_EDX_NX (1u << 20)
#define X1_EDX_LM (1u << 29)
#define X1_EDX_BASE (X1_EDX_SYSCALL | X1_EDX_NX | X1_EDX_LM)
#define X1_ECX_LAHF (1u << 0)
#define X1_ECX_BASE X1_ECX_LAHF
#define X7_EDX_INVARIANT_TSC (1u << 8)

#define MAX_BASIC 0x16 /* up to the TSC and frequency leaves */
#define MAX_EXT 0x80000008u
#define FMS 0x00000f61u /* family 15, model 6, stepping 1 */
#define CRYSTAL_HZ 1000 /* leaf 0x15: a 1 kHz "crystal", so EBX/EAX is the TSC in kHz */

/* The host's TSC rate, which the guest's TSC runs at (no scaling). */
static uint32_t tsc_khz(void)
{
	return (uint32_t)(clock_tsc_hz() / 1000);
}

static void put_string(uint32_t r[], const char *s)
{
	memcpy(r, s, 16);
}

void vm_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	uint32_t h[4];
	memset(r, 0, 4 * sizeof(uint32_t));
	(void)subleaf;
	switch (leaf) {
	case 0:
		r[0] = MAX_BASIC;
		memcpy(&r[1], "Genu", 4); /* EBX, EDX, ECX: "GenuineIntel" */
		memcpy(&r[3], "ineI", 4);
		memcpy(&r[2], "ntel", 4);
		break;
	case 1:
		x86_cpuid(1, 0, h);
		r[0] = FMS;
		r[1] = (8u << 8) | (1u << 16); /* CLFLUSH 64 bytes, one logical CPU, APIC id 0 */
		r[2] = (h[2] & L1_ECX_BASE) | L1_ECX_HYPERVISOR;
		r[3] = h[3] & L1_EDX_BASE;
		break;
	case 0x15: /* TSC = crystal * EBX / EAX */
		r[0] = 1;
		r[1] = tsc_khz();
		r[2] = CRYSTAL_HZ;
		break;
	case 0x16: /* base, maximum and bus frequencies in MHz */
		r[0] = r[1] = tsc_khz() / 1000;
		r[2] = 100;
		break;
	case 0x40000000:
		r[0] = 0x40000001;
		memcpy(&r[1], FERRY_SIGNATURE, 4);
		memcpy(&r[2], FERRY_SIGNATURE + 4, 4);
		memcpy(&r[3], FERRY_SIGNATURE + 8, 4);
		break;
	case 0x40000001:
		break; /* no paravirtual features */
	case 0x80000000:
		r[0] = MAX_EXT; /* Intel's vendor string is not repeated here */
		break;
	case 0x80000001:
		x86_cpuid(0x80000001, 0, h);
		r[2] = h[2] & X1_ECX_BASE;
		r[3] = h[3] & X1_EDX_BASE;
		break;
	case 0x80000002:
	case 0x80000003:
	case 0x80000004: {
		char brand[48] = { 0 };
		memcpy(brand, BRAND, sizeof(BRAND));
		put_string(r, brand + 16 * (leaf - 0x80000002));
		break;
	}
	case 0x80000007:
		r[3] = X7_EDX_INVARIANT_TSC;
		break;
	case 0x80000008:
		x86_cpuid(0x80000008, 0, h);
		r[0] = h[0] & 0xffff; /* this host's physical and linear address widths */
		break;
	default:
		break; /* reserved leaves read as zero */
	}
}
