/* cpu.c: CPU feature detection and enabling. */
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "x86.h"

struct cpu_info cpu_info;

static void cpu_detect_vmx(void)
{
	uint64_t fc = x86_rdmsr(MSR_FEATURE_CONTROL);
	/* Locked (bit 0) with VMX-outside-SMX (bit 2) clear: firmware said no. */
	cpu_info.vmx_locked_off = (fc & 1) && !(fc & 4);
	/* Allowed-1 settings live in the high dword (SDM Vol. 3D A.3.2-A.3.3):
	 * bit 63 of PROCBASED_CTLS = "activate secondary controls" may be 1,
	 * then bit 33 of PROCBASED_CTLS2 = "enable EPT" may be 1. */
	uint64_t proc = x86_rdmsr(MSR_VMX_PROCBASED_CTLS);
	if (!(proc >> 63))
		return;
	uint64_t proc2 = x86_rdmsr(MSR_VMX_PROCBASED_CTLS2);
	cpu_info.ept = (proc2 >> 33) & 1;
	if (cpu_info.ept) /* EPT accessed/dirty flags: EPT_VPID_CAP bit 21 (A.10) */
		cpu_info.ept_ad = (x86_rdmsr(MSR_VMX_EPT_VPID_CAP) >> 21) & 1;
}

static void cpu_detect(void)
{
	uint32_t r[4];
	x86_cpuid(0, 0, r);
	uint32_t max_leaf = r[0];
	memcpy(cpu_info.vendor, &r[1], 4);
	memcpy(cpu_info.vendor + 4, &r[3], 4);
	memcpy(cpu_info.vendor + 8, &r[2], 4);

	x86_cpuid(1, 0, r);
	uint32_t fam = (r[0] >> 8) & 0xf, model = (r[0] >> 4) & 0xf;
	if (fam == 0xf)
		fam += (r[0] >> 20) & 0xff;
	if (fam == 0x6 || fam >= 0xf)
		model |= ((r[0] >> 16) & 0xf) << 4;
	cpu_info.family = fam;
	cpu_info.model = model;
	cpu_info.stepping = r[0] & 0xf;
	cpu_info.sse42 = (r[2] >> 20) & 1;
	cpu_info.xsave = (r[2] >> 26) & 1;
	cpu_info.avx = (r[2] >> 28) & 1;
	cpu_info.vmx = (r[2] >> 5) & 1;
	if (max_leaf >= 7) {
		x86_cpuid(7, 0, r);
		cpu_info.avx2 = (r[1] >> 5) & 1;
		cpu_info.avx512bw = ((r[1] >> 16) & 1) && ((r[1] >> 30) & 1); /* F and BW */
	}

	x86_cpuid(0x80000000, 0, r);
	uint32_t max_ext = r[0];
	if (max_ext >= 0x80000001) {
		x86_cpuid(0x80000001, 0, r);
		cpu_info.svm = (r[2] >> 2) & 1;
		cpu_info.nx = (r[3] >> 20) & 1;
		cpu_info.pdpe1gb = (r[3] >> 26) & 1;
	}
	if (max_ext >= 0x80000004) {
		for (uint32_t i = 0; i < 3; i++) {
			x86_cpuid(0x80000002 + i, 0, r);
			memcpy(cpu_info.brand + 16 * i, r, 16);
		}
		/* Brand strings are often right-aligned with leading blanks. */
		char *b = cpu_info.brand;
		size_t skip = strspn(b, " ");
		memmove(b, b + skip, strlen(b + skip) + 1);
	}
	if (max_ext >= 0x80000007) {
		x86_cpuid(0x80000007, 0, r);
		cpu_info.invariant_tsc = (r[3] >> 8) & 1;
	}
	if (cpu_info.svm && max_ext >= 0x8000000a) {
		x86_cpuid(0x8000000a, 0, r);
		cpu_info.npt = r[3] & 1;
		cpu_info.svm_locked_off = (x86_rdmsr(MSR_VM_CR) >> 4) & 1; /* VM_CR.SVMDIS */
	}
	if (cpu_info.vmx)
		cpu_detect_vmx();
}

static void cpu_enable(void)
{
	if (cpu_info.nx)
		x86_wrmsr(MSR_EFER, x86_rdmsr(MSR_EFER) | EFER_NXE);

	uint64_t cr0 = x86_read_cr0();
	cr0 &= ~(CR0_EM | CR0_TS);
	cr0 |= CR0_MP | CR0_NE;
	x86_write_cr0(cr0);
	uint64_t cr4 = x86_read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT;
	if (cpu_info.xsave)
		cr4 |= CR4_OSXSAVE;
	x86_write_cr4(cr4);

	if (!cpu_info.xsave) {
		cpu_info.avx = cpu_info.avx2 = cpu_info.avx512bw = false;
		return;
	}
	/* Enable every component ferry's code may touch that the CPU
	 * supports (CPUID.(EAX=0Dh,ECX=0):EAX lists them). */
	uint32_t r[4];
	x86_cpuid(0xd, 0, r);
	uint64_t supported = r[0] | ((uint64_t)r[3] << 32);
	uint64_t want = XCR0_X87 | XCR0_SSE;
	if (cpu_info.avx)
		want |= XCR0_AVX;
	uint64_t avx512 = XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM;
	if (cpu_info.avx512bw && (supported & avx512) == avx512)
		want |= avx512;
	want &= supported;
	x86_xsetbv(0, want);
	cpu_info.xcr0 = want;
	cpu_info.avx = cpu_info.avx && (want & XCR0_AVX);
	cpu_info.avx2 = cpu_info.avx2 && cpu_info.avx;
	cpu_info.avx512bw = cpu_info.avx512bw && (want & avx512) == avx512;
}

void cpu_init(void)
{
	cpu_detect();
	cpu_enable();
}

void cpu_virt_features(char *buf, unsigned n)
{
	snprintf(buf, n, "%s%s%s%s%s%s%s",
		 cpu_info.vmx ? (cpu_info.vmx_locked_off ? "VMX(disabled-by-firmware) " : "VMX ") : "",
		 cpu_info.ept ? "EPT " : "", cpu_info.ept_ad ? "EPT-A/D " : "",
		 cpu_info.svm ? (cpu_info.svm_locked_off ? "SVM(disabled-by-firmware) " : "SVM ") : "",
		 cpu_info.npt ? "NPT " : "",
		 (cpu_info.vmx || cpu_info.svm) ? "" : "none", "");
	size_t len = strlen(buf);
	if (len && buf[len - 1] == ' ')
		buf[len - 1] = 0;
}
