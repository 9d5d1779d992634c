/* hv_backends.h: the three backends' ops tables, for hv_init's choice
 * only (kernel/hv/ internal). */
#ifndef FERRY_HV_BACKENDS_H
#define FERRY_HV_BACKENDS_H

#include "hv.h"

extern const struct hv_ops vmx_ops; /* ept: vmx.c */
extern const struct hv_ops svm_ops; /* npt: svm.c */
extern const struct hv_ops pte_ops; /* pte: pte.c */

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

#endif
