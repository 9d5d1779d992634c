/* cpu.h: what the processor is and can do, found once by CPUID and MSRs
 * (never by the vendor string: Bochs's generic VMX model says
 * AuthenticAMD), and the feature set-up ferry depends on. */
#ifndef FERRY_CPU_H
#define FERRY_CPU_H

#include <stdbool.h>
#include <stdint.h>

struct cpu_info {
	char vendor[13];
	char brand[49];
	uint32_t family, model, stepping;
	bool nx, pdpe1gb, sse42, xsave, avx, avx2, avx512bw, invariant_tsc;
	/* Intel VMX: vmx = CPUID.1:ECX.VMX; the rest read from the VMX
	 * capability MSRs (SDM Vol. 3D A.3.3, A.10). */
	bool vmx, vmx_locked_off, ept, ept_ad;
	/* AMD SVM: CPUID 8000_0001h:ECX.SVM and 8000_000Ah:EDX.NP. */
	bool svm, svm_locked_off, npt;
	uint64_t xcr0; /* what cpu_init enabled, 0 without XSAVE */
};

extern struct cpu_info cpu_info;

/* Detect features into cpu_info, then enable what ferry uses: EFER.NXE,
 * SSE (CR4.OSFXSR/OSXMMEXCPT) and, where present, XSAVE with AVX and
 * AVX-512 state in XCR0 so the codec's SIMD paths can run. Call once,
 * before anything uses SIMD or NX mappings. */
void cpu_init(void);

/* One line naming the virtualization features found, e.g.
 * "VMX EPT EPT-A/D" or "SVM NPT" or "none"; buf gets at most n bytes. */
void cpu_virt_features(char *buf, unsigned n);

#endif
