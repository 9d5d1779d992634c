/* msr.c: the MSRs of the CPU model (cpuid.c) that exit to ferry. The
 * syscall, segment-base and SYSENTER MSRs never get here: the backend
 * lets the guest use them directly (VMLOAD/VMSAVE switch them). EFER and
 * PAT live in the backend's control structure. Everything else a guest
 * reads or writes raises #GP, as on a CPU without that MSR: Linux probes
 * such MSRs with its _safe accessors and carries on. */
#include "vm_devs.h"
#include "x86.h"

#define MSR_TSC 0x10
#define MSR_PATCH_LEVEL 0x8b     /* AMD microcode patch level */
#define MSR_MISC_ENABLE 0x1a0   /* Intel: read unguarded by Linux's verify_cpu */
#define MSR_K7_HWCR 0xc0010015
#define HWCR_WRITABLE 0x00000000ffffffffull

int vm_msr(struct hv_vm *vm, struct vm_msrs *m, uint32_t index, uint64_t *val, bool write)
{
	switch (index) {
	case MSR_TSC:
		/* Guest TSC = host TSC + offset: a write moves the offset. */
		if (write) {
			vm->tsc_offset = *val - x86_rdtsc();
			vm->ops->set_tsc_offset(vm, vm->tsc_offset);
		} else {
			*val = x86_rdtsc() + vm->tsc_offset;
		}
		return 0;
	case MSR_PATCH_LEVEL:
		if (!write)
			*val = 0; /* no microcode loaded; writes (patch loads) are dropped */
		return 0;
	case MSR_MISC_ENABLE:
		/* Fast strings on, no BTS, no PEBS, CPUID unlimited, XD enabled.
		 * Writes are kept: they switch nothing here. */
		if (write)
			m->misc_enable = *val;
		else
			*val = m->misc_enable;
		return 0;
	case MSR_K7_HWCR:
		if (write) {
			if (*val & ~HWCR_WRITABLE)
				return -1;
			m->hwcr = *val;
		} else {
			*val = m->hwcr;
		}
		return 0;
	case MSR_EFER:
	case MSR_PAT: {
		int rc = vm->ops->msr(vm, index, val, write);
		return rc == 0 ? 0 : -1;
	}
	default:
		return -1;
	}
}
