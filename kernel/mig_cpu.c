/* mig_cpu.c: a vCPU's state between struct hv_cpu_state (hv.h) and the
 * CPU_STATE record (stream_format.h). Field for field; of the record's
 * debug registers only DR7 is carried (DR0-3 and DR6 travel as zero), and
 * TSC_AUX and DEBUGCTL are not part of ferry's CPU model. The pending
 * event and the interrupt shadow, which the record has no room for, travel
 * in the platform's DEVICE_STATE record (kernel/vm/vm_state.c). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "hv.h"
#include "mig/mig_env.h"
#include "x86.h"

#define XSAVE_MIN 576 /* bytes: legacy area + XSAVE header */

uint32_t mig_cpu_mode(const char *backend)
{
	if (strcmp(backend, "ept") == 0)
		return STREAM_MODE_VMX;
	if (strcmp(backend, "npt") == 0)
		return STREAM_MODE_SVM;
	if (strcmp(backend, "pte") == 0)
		return STREAM_MODE_PTE;
	return STREAM_MODE_NONE;
}

/* Where each of the record's seg[] entries lives in struct hv_cpu_state. */
static const size_t seg_at[STREAM_NR_SEGS] = {
	[STREAM_ES] = offsetof(struct hv_cpu_state, es),     [STREAM_CS] = offsetof(struct hv_cpu_state, cs),
	[STREAM_SS] = offsetof(struct hv_cpu_state, ss),     [STREAM_DS] = offsetof(struct hv_cpu_state, ds),
	[STREAM_FS] = offsetof(struct hv_cpu_state, fs),     [STREAM_GS] = offsetof(struct hv_cpu_state, gs),
	[STREAM_LDTR] = offsetof(struct hv_cpu_state, ldtr), [STREAM_TR] = offsetof(struct hv_cpu_state, tr),
};

static void segs_out(struct stream_segment *d, const struct hv_cpu_state *st)
{
	for (int i = 0; i < STREAM_NR_SEGS; i++) {
		const struct hv_segment *s = (const struct hv_segment *)((const char *)st + seg_at[i]);
		d[i] = (struct stream_segment){ .selector = s->selector, .limit = s->limit, .attr = s->attrib,
						.base = s->base };
	}
}

static void segs_in(struct hv_cpu_state *st, const struct stream_segment *s)
{
	for (int i = 0; i < STREAM_NR_SEGS; i++)
		*(struct hv_segment *)((char *)st + seg_at[i]) = (struct hv_segment){
			.selector = s[i].selector, .limit = s[i].limit, .attrib = s[i].attr, .base = s[i].base };
}

uint32_t mig_cpu_xsave_len(void)
{
	if (!hv_xsave_mask)
		return XSAVE_MIN;
	uint32_t r[4];
	x86_cpuid(0xd, 0, r); /* EBX: XSAVE area size for what XCR0 enables */
	return r[1] < XSAVE_MIN ? XSAVE_MIN : r[1] > HV_XSAVE_BYTES ? HV_XSAVE_BYTES : r[1];
}

void mig_cpu_to_wire(const struct hv_cpu_state *s, struct stream_cpu_state *c)
{
	memset(c, 0, sizeof(*c));
	c->version = STREAM_CPU_STATE_V1;
	memcpy(c->gpr, s->gpr, sizeof(c->gpr));
	c->rip = s->rip;
	c->rflags = s->rflags;
	c->cr0 = s->cr0;
	c->cr2 = s->cr2;
	c->cr3 = s->cr3;
	c->cr4 = s->cr4;
	c->efer = s->efer;
	segs_out(c->seg, s);
	c->gdtr = (struct stream_dtable){ .limit = (uint16_t)s->gdtr.limit, .base = s->gdtr.base };
	c->idtr = (struct stream_dtable){ .limit = (uint16_t)s->idtr.limit, .base = s->idtr.base };
	c->xcr0 = s->xcr0;
	c->dr[5] = s->dr7;
	c->star = s->star;
	c->lstar = s->lstar;
	c->cstar = s->cstar;
	c->sfmask = s->sfmask;
	c->kernel_gs_base = s->kernel_gs_base;
	c->sysenter_cs = s->sysenter_cs;
	c->sysenter_esp = s->sysenter_esp;
	c->sysenter_eip = s->sysenter_eip;
	c->pat = s->pat;
	c->tsc = s->tsc;
}

int mig_cpu_from_wire(const struct stream_cpu_state *c, const uint8_t *xsave, uint32_t mode,
		      struct hv_cpu_state *s, char *why, size_t n)
{
	const char *backend = mode == STREAM_MODE_VMX ? "ept" : mode == STREAM_MODE_SVM ? "npt"
			    : mode == STREAM_MODE_PTE ? "pte" : NULL;
	if (!backend) {
		snprintf(why, n, "guest mode %u has no CPU to run", (unsigned)mode);
		return -1;
	}
	if (c->vcpu != 0) {
		snprintf(why, n, "vcpu %u: ferry runs one vCPU", (unsigned)c->vcpu);
		return -1;
	}
	if (c->xsave_len > HV_XSAVE_BYTES || (c->xsave_len && c->xsave_len < XSAVE_MIN)) {
		snprintf(why, n, "XSAVE area of %u bytes: this ferry takes %u..%u", (unsigned)c->xsave_len, XSAVE_MIN,
			 HV_XSAVE_BYTES);
		return -1;
	}
	memset(s, 0, sizeof(*s));
	s->version = HV_CPU_STATE_VERSION;
	s->size = sizeof(*s);
	snprintf(s->backend, sizeof(s->backend), "%s", backend);
	memcpy(s->gpr, c->gpr, sizeof(s->gpr));
	s->rip = c->rip;
	s->rflags = c->rflags;
	s->cr0 = c->cr0;
	s->cr2 = c->cr2;
	s->cr3 = c->cr3;
	s->cr4 = c->cr4;
	s->efer = c->efer;
	s->xcr0 = c->xcr0;
	segs_in(s, c->seg);
	s->gdtr = (struct hv_dtr){ .base = c->gdtr.base, .limit = c->gdtr.limit };
	s->idtr = (struct hv_dtr){ .base = c->idtr.base, .limit = c->idtr.limit };
	s->dr7 = c->dr[5];
	s->star = c->star;
	s->lstar = c->lstar;
	s->cstar = c->cstar;
	s->sfmask = c->sfmask;
	s->kernel_gs_base = c->kernel_gs_base;
	s->sysenter_cs = c->sysenter_cs;
	s->sysenter_esp = c->sysenter_esp;
	s->sysenter_eip = c->sysenter_eip;
	s->pat = c->pat;
	s->tsc = c->tsc;
	if (c->xsave_len) {
		memcpy(s->xsave, xsave, c->xsave_len);
	} else { /* no FPU state sent: the reset state */
		uint16_t fcw = 0x37f;
		uint32_t mxcsr = 0x1f80;
		memcpy(s->xsave, &fcw, 2);
		memcpy(s->xsave + 24, &mxcsr, 4);
		s->xsave[512] = 3;
	}
	return 0;
}
