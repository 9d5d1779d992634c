/* hv.c: backend choice, guest memory, the run loop and the hypercall ABI
 * (hypercall.h). Vendor code lives behind struct hv_ops (vmx.c, svm.c,
 * pte.c); nothing here knows a VMCS or a VMCB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cpu.h"
#include "dirtylog.h"
#include "hv.h"
#include "hv_backends.h"
#include "hypercall.h"
#include "paging.h"
#include "pmm.h"
#include "trap.h"
#include "vm.h"
#include "x86.h"

extern const uint8_t guest_image_start[], guest_image_end[];

static const struct hv_ops *backend;
static char reason[256];
static struct hv_vm *guest;
uint64_t hv_xsave_mask;

static const char *const workload_names[] = {
	[GUEST_WL_IDLE] = "idle",     [GUEST_WL_SYNTHETIC] = "synthetic", [GUEST_WL_SPARSE] = "sparse",
	[GUEST_WL_HOTSET] = "hotset", [GUEST_WL_STAMP] = "stamp",         [GUEST_WL_DIRTYTEST] = "dirtytest",
	[GUEST_WL_WILD] = "wild",     [GUEST_WL_EXITBENCH] = "exitbench",
	[GUEST_WL_ABI] = "abi",       [GUEST_WL_PORTIO] = "portio",     [GUEST_WL_INVD] = "invd",
	[GUEST_WL_LINUX] = "linux",
};
#define NWORKLOADS (sizeof(workload_names) / sizeof(workload_names[0]))

const char *hv_workload_name(unsigned wl)
{
	return wl < NWORKLOADS ? workload_names[wl] : "?";
}

int hv_workload_parse(const char *name)
{
	for (unsigned i = 0; i < NWORKLOADS; i++)
		if (strcmp(name, workload_names[i]) == 0)
			return (int)i;
	return -1;
}

int hv_parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);
	if (end == s)
		return -1;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (*end || v > ((1ull << 40) >> shift))
		return -1;
	*bytes = v << shift;
	return 0;
}

/* ---- backend choice ---- */

/* Preference order: hardware dirty logging first. */
static const struct hv_ops *const backends[] = { &vmx_ops, &svm_ops, &pte_ops };

void hv_init(void)
{
	hv_xsave_mask = cpu_info.xsave ? cpu_info.xcr0 : 0;
	if (hv_xsave_mask) {
		uint32_t r[4];
		x86_cpuid(0xd, 0, r); /* EBX: XSAVE area size for what XCR0 enables */
		if (r[1] > HV_XSAVE_BYTES)
			panic("hv: XSAVE area needs %u bytes, room for %u", (unsigned)r[1], (unsigned)HV_XSAVE_BYTES);
	}
	/* Each backend's probe looks at CPUID and the capability MSRs
	 * (cpu.c), never the vendor string, and says why it cannot run. */
	char skipped[200] = "";
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		const struct hv_ops *b = backends[i];
		char why[112];
		if (b->probe(why, sizeof(why)) == 0 && b->init(why, sizeof(why)) == 0) {
			backend = b;
			snprintf(reason, sizeof(reason), "%s%s%s%s", why, skipped[0] ? "; not " : "", skipped,
				 "");
			break;
		}
		size_t n = strlen(skipped);
		snprintf(skipped + n, sizeof(skipped) - n, "%s%s: %s", n ? ", " : "", b->name, why);
	}
	KASSERT(backend); /* pte always probes and inits */
	printf("hv: backend %s (%s)\n", backend->name, reason);
}

const struct hv_ops *hv_backend(void)
{
	return backend;
}

const char *hv_backend_reason(void)
{
	return reason;
}

struct hv_vm *hv_guest(void)
{
	return guest;
}

/* ---- guest memory ---- */

void *hv_gpa_ptr(struct hv_vm *vm, gpa_t gpa, size_t len)
{
	if (gpa >= vm->size || len > PAGE_SIZE - (gpa & (PAGE_SIZE - 1)))
		return NULL;
	return (void *)(uintptr_t)(vm->frames[gpa >> PAGE_SHIFT] + (gpa & (PAGE_SIZE - 1)));
}

static void *alloc_array(size_t bytes)
{
	return pmm_alloc((bytes + PAGE_SIZE - 1) / PAGE_SIZE, PMM_ZERO);
}

static void free_array(void *p, size_t bytes)
{
	if (p)
		pmm_free(p, (bytes + PAGE_SIZE - 1) / PAGE_SIZE);
}

static uint64_t *table_page(void)
{
	return pmm_alloc(1, PMM_ZERO);
}

int hv_s2_build(struct hv_vm *vm, uint64_t table_flags, uint64_t leaf_flags, uint64_t present,
		uint64_t accessed, uint64_t dirty)
{
	struct hv_stage2 *s = &vm->s2;
	memset(s, 0, sizeof(*s));
	s->present = present;
	s->accessed = accessed;
	s->dirty = dirty;
	s->npts = (vm->npages + 511) / 512;
	s->npds = (s->npts + 511) / 512;
	s->pts = alloc_array(s->npts * sizeof(uint64_t *));
	s->pds = alloc_array(s->npds * sizeof(uint64_t *));
	s->pdpt = table_page();
	if (!s->pts || !s->pds || !s->pdpt)
		goto fail;
	for (size_t d = 0; d < s->npds; d++) {
		if (!(s->pds[d] = table_page()))
			goto fail;
		s->pdpt[d] = (uint64_t)(uintptr_t)s->pds[d] | table_flags;
	}
	for (size_t t = 0; t < s->npts; t++) {
		uint64_t *pt = s->pts[t] = table_page();
		if (!pt)
			goto fail;
		s->pds[t / 512][t % 512] = (uint64_t)(uintptr_t)pt | table_flags;
		for (size_t i = 0; i < 512 && t * 512 + i < vm->npages; i++)
			pt[i] = vm->frames[t * 512 + i] | leaf_flags;
	}
	return 0;
fail:
	hv_s2_free(vm);
	return -1;
}

void hv_s2_free(struct hv_vm *vm)
{
	struct hv_stage2 *s = &vm->s2;
	for (size_t t = 0; s->pts && t < s->npts; t++)
		if (s->pts[t])
			pmm_free(s->pts[t], 1);
	for (size_t d = 0; s->pds && d < s->npds; d++)
		if (s->pds[d])
			pmm_free(s->pds[d], 1);
	if (s->pdpt)
		pmm_free(s->pdpt, 1);
	free_array(s->pts, s->npts * sizeof(uint64_t *));
	free_array(s->pds, s->npds * sizeof(uint64_t *));
	memset(s, 0, sizeof(*s));
}

void hv_s2_protect(struct hv_vm *vm, uint64_t first, uint64_t count, bool on)
{
	struct hv_stage2 *s = &vm->s2;
	for (uint64_t t = first; t < first + count && t < s->npts; t++) {
		uint64_t *pde = &s->pds[t / 512][t % 512];
		/* Atomic: the hardware sets the accessed bit in these entries. */
		if (on)
			__atomic_fetch_and(pde, ~HV_S2_WRITE, __ATOMIC_SEQ_CST);
		else
			__atomic_fetch_or(pde, HV_S2_WRITE, __ATOMIC_SEQ_CST);
	}
}

void hv_before_host_write(struct hv_vm *vm, gpa_t gpa)
{
	if (vm->write_fault && gpa < vm->size)
		(void)vm->write_fault(vm, gpa);
}

static void free_guest_memory(struct hv_vm *vm)
{
	for (uint64_t i = 0; vm->frames && i < vm->npages; i++)
		if (vm->frames[i])
			pmm_free((void *)(uintptr_t)vm->frames[i], 1);
	free_array(vm->frames, vm->npages * sizeof(hpa_t));
	free_array(vm->host_dirty, (vm->npages + 63) / 64 * 8);
	pmm_free(vm, 1);
}

/* The guest's own page tables at GUEST_PT_GPA: PML4 -> PDPT -> PDs of
 * 2 MiB pages, VA = GPA over 0..size. Large pages keep them to a few
 * pages: emulators and CPUs mark their stage-2 pages dirty on every walk
 * (they set A/D bits in them), so these are the known false positives. */
static void build_guest_tables(struct hv_vm *vm)
{
	uint64_t *pml4 = hv_gpa_ptr(vm, GUEST_PT_GPA, PAGE_SIZE);
	uint64_t *pdpt = hv_gpa_ptr(vm, GUEST_PT_GPA + PAGE_SIZE, PAGE_SIZE);
	pml4[0] = (GUEST_PT_GPA + PAGE_SIZE) | PTE_P | PTE_RW;
	for (uint64_t va = 0; va < vm->size; va += 2ull << 20) {
		uint64_t gb = va >> 30;
		gpa_t pd_gpa = GUEST_PT_GPA + (2 + gb) * PAGE_SIZE;
		uint64_t *pd = hv_gpa_ptr(vm, pd_gpa, PAGE_SIZE);
		pdpt[gb] = pd_gpa | PTE_P | PTE_RW;
		pd[(va >> 21) & 511] = va | PTE_P | PTE_RW | PTE_PS;
	}
}

void hv_patch_gate(struct hv_vm *vm)
{
	uint8_t *gate = hv_gpa_ptr(vm, GUEST_IMAGE_GPA + GUEST_HC_GATE_OFFSET, GUEST_HC_GATE_BYTES);
	hv_before_host_write(vm, GUEST_IMAGE_GPA + GUEST_HC_GATE_OFFSET);
	memcpy(gate, vm->ops->gate, GUEST_HC_GATE_BYTES);
}

static void load_image(struct hv_vm *vm, unsigned workload, uint64_t seed, uint64_t rate)
{
	size_t len = (size_t)(guest_image_end - guest_image_start);
	KASSERT(len <= GUEST_IMAGE_MAX);
	for (size_t off = 0; off < len; off += PAGE_SIZE) {
		size_t n = len - off < PAGE_SIZE ? len - off : PAGE_SIZE;
		memcpy(hv_gpa_ptr(vm, GUEST_IMAGE_GPA + off, n), guest_image_start + off, n);
	}
	hv_patch_gate(vm);
	struct guest_boot *b = hv_gpa_ptr(vm, GUEST_BOOT_GPA, sizeof(*b));
	b->magic = GUEST_BOOT_MAGIC;
	b->mem_base = vm->mem_base;
	b->mem_size = vm->size;
	b->workload = workload;
	b->seed = seed;
	b->rate = rate;
	b->own_tables = vm->mem_base == 0;
}

void hv_initial_state(const struct hv_vm *vm, struct hv_cpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->version = HV_CPU_STATE_VERSION;
	s->size = sizeof(*s);
	snprintf(s->backend, sizeof(s->backend), "%s", vm->ops->name);
	s->gpr[HV_RDI] = vm->mem_base + GUEST_BOOT_GPA;
	s->gpr[HV_RSP] = vm->mem_base + GUEST_STACK_TOP;
	s->rip = vm->mem_base + GUEST_IMAGE_GPA;
	/* IF=1, bit 1 always 1. The guest never takes an interrupt (every
	 * host interrupt exits to ferry: VMX external-interrupt exiting, SVM
	 * INTR intercept, the pte trap path), but Bochs re-evaluates which
	 * interrupts cause a VM exit only when IF changes across VM entry:
	 * with IF=0 in host and guest alike the tick would never exit. */
	s->rflags = RFLAGS_IF | 0x2;
	/* 64-bit mode, paging on, the guest's own tables (SDM Vol. 3A 9.8.5). */
	s->cr0 = CR0_PE | CR0_MP | CR0_NE | CR0_WP | CR0_PG | (1ull << 4) /* ET */;
	s->cr3 = GUEST_PT_GPA;
	s->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	s->efer = EFER_LME | (1ull << 10) /* LMA */ | (cpu_info.nx ? EFER_NXE : 0);
	s->xcr0 = hv_xsave_mask ? hv_xsave_mask : XCR0_X87 | XCR0_SSE;
	const struct hv_segment code = { .selector = 0x08, .attrib = 0xa09b, .limit = 0xffffffff };
	const struct hv_segment data = { .selector = 0x10, .attrib = 0xc093, .limit = 0xffffffff };
	s->cs = code;
	s->ss = s->ds = s->es = s->fs = s->gs = data;
	s->ldtr = (struct hv_segment){ .attrib = 0x82 | HV_SEG_UNUSABLE };
	s->tr = (struct hv_segment){ .attrib = 0x8b, .limit = 0x67 }; /* busy 64-bit TSS */
	s->gdtr.limit = 0xffff;
	s->idtr.limit = 0xffff;
	/* FPU: FCW and MXCSR at their reset values, legacy state valid. */
	uint16_t fcw = 0x37f;
	uint32_t mxcsr = 0x1f80;
	memcpy(s->xsave + 0, &fcw, 2);
	memcpy(s->xsave + 24, &mxcsr, 4);
	s->xsave[512] = 3; /* XSTATE_BV: x87 and SSE */
}

/* incoming: memory stays zero (the stream fills it), no tables or image,
 * and the guest is created stopped, waiting for its CPU state. */
static int guest_create(uint64_t size, unsigned workload, uint64_t seed, uint64_t rate, bool incoming)
{
	if (guest) {
		printf("error: a guest exists (%s, %s); 'guest quit' first\n", hv_workload_name(guest->workload),
		       guest->state == HV_VM_RUNNING ? "running" : "not running");
		return -1;
	}
	if (size < HV_SIZE_MIN || size > HV_SIZE_MAX || size % (2ull << 20)) {
		printf("error: guest size must be a multiple of 2 MiB from %llu MiB to %llu GiB\n",
		       (unsigned long long)(HV_SIZE_MIN >> 20), (unsigned long long)(HV_SIZE_MAX >> 30));
		return -1;
	}
	bool os = workload == GUEST_WL_LINUX;
	char why[200];
	if (os && vm_backend_check(backend, why, sizeof(why)) < 0) {
		printf("error: %s\n", why);
		return -1;
	}
	uint64_t npages = size / PAGE_SIZE;
	/* Frames, the frame array, the dirty bitmap and the stage-2 tables
	 * (one PT per 512 pages, plus upper levels): refuse before taking any. */
	uint64_t need = npages + (npages * 8 + PAGE_SIZE - 1) / PAGE_SIZE + npages / 512 + 64;
	struct pmm_stats st;
	pmm_get_stats(&st);
	if (need > st.free_pages) {
		printf("error: not enough memory for a %llu MiB guest: needs %llu MiB, %llu MiB free\n",
		       (unsigned long long)(size >> 20), (unsigned long long)(need * PAGE_SIZE >> 20),
		       (unsigned long long)(st.free_pages * PAGE_SIZE >> 20));
		return -1;
	}
	struct hv_vm *vm = pmm_alloc(1, PMM_ZERO);
	_Static_assert(sizeof(struct hv_vm) <= PAGE_SIZE, "hv_vm fits a page");
	if (!vm)
		goto oom;
	vm->ops = backend;
	vm->size = size;
	vm->npages = npages;
	vm->workload = workload;
	vm->frames = alloc_array(npages * sizeof(hpa_t));
	vm->host_dirty = alloc_array((npages + 63) / 64 * 8);
	if (!vm->frames || !vm->host_dirty)
		goto oom_free;
	/* One frame at a time: guest memory need not be contiguous. */
	for (uint64_t i = 0; i < npages; i++) {
		void *f = pmm_alloc(1, PMM_ZERO);
		if (!f)
			goto oom_free;
		vm->frames[i] = (hpa_t)(uintptr_t)f;
	}
	vm->host_dirty_lo = 1; /* empty */
	vm->mem_base = backend->mem_base;
	if (vm->mem_base == 0 && !incoming && !os)
		build_guest_tables(vm);
	if (!incoming && !os)
		load_image(vm, workload, seed, rate);
	struct hv_cpu_state *s = pmm_alloc(2, PMM_ZERO);
	_Static_assert(sizeof(struct hv_cpu_state) <= 2 * PAGE_SIZE, "state fits two pages");
	if (!s)
		goto oom_free;
	hv_initial_state(vm, s);
	if (os && incoming && !(vm->plat = vm_platform_new())) {
		pmm_free(s, 2);
		goto oom_free;
	}
	if (os && !incoming && vm_linux_load(vm, s) < 0) {
		pmm_free(s, 2);
		free_guest_memory(vm);
		return -1; /* the loader said why */
	}
	int rc = backend->vm_create(vm, s);
	pmm_free(s, 2);
	if (rc < 0) {
		vm_destroy(vm);
		goto oom_free;
	}
	vm->start_ns = clock_ns();
	vm->state = incoming ? HV_VM_STOPPED : HV_VM_RUNNING;
	guest = vm;
	printf("guest: %s, %llu MiB, backend %s: %s\n", hv_workload_name(workload),
	       (unsigned long long)(size >> 20), backend->name, incoming ? "incoming" : "running");
	return 0;
oom_free:
	free_guest_memory(vm);
oom:
	pmm_get_stats(&st);
	printf("error: out of memory creating the guest (%llu MiB free)\n",
	       (unsigned long long)(st.free_pages * PAGE_SIZE >> 20));
	return -1;
}

int hv_guest_create(uint64_t size, unsigned workload, uint64_t seed, uint64_t rate)
{
	return guest_create(size, workload, seed, rate, false);
}

int hv_guest_create_incoming(uint64_t size, unsigned workload)
{
	return guest_create(size, workload, 0, 0, true);
}

void hv_guest_destroy(void)
{
	if (!guest)
		return;
	dirtylog_stop(guest);
	guest->ops->vm_destroy(guest);
	if (guest->plat)
		vm_destroy(guest);
	free_guest_memory(guest);
	guest = NULL;
}

int hv_cpu_capture(struct hv_vm *vm, struct hv_cpu_state *s)
{
	if (vm->state == HV_VM_RUNNING)
		return -1;
	vm->ops->get_state(vm, s);
	return 0;
}

int hv_cpu_restore(struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n)
{
	if (vm->state == HV_VM_RUNNING) {
		snprintf(why, n, "the guest is running");
		return -1;
	}
	if (hv_cpu_check(vm, s, why, n) < 0)
		return -1;
	if (vm->ops->set_state(vm, s) < 0) {
		snprintf(why, n, "backend %s refused the state", vm->ops->name);
		return -1;
	}
	return 0;
}

int hv_guest_stop(void)
{
	if (!guest || guest->state != HV_VM_RUNNING) {
		printf("error: no running guest\n");
		return -1;
	}
	guest->state = HV_VM_STOPPED;
	return 0;
}

int hv_guest_cont(void)
{
	if (!guest || guest->state != HV_VM_STOPPED) {
		printf("error: no stopped guest%s\n", guest ? " (it exited or faulted: 'guest quit')" : "");
		return -1;
	}
	guest->state = HV_VM_RUNNING;
	return 0;
}

/* ---- hypercalls ---- */

static void hc_print(struct hv_vm *vm, uint64_t addr, uint64_t len)
{
	char text[HC_PRINT_MAX + 1];
	if (len > HC_PRINT_MAX || addr < vm->mem_base || addr - vm->mem_base >= vm->size ||
	    len > vm->size - (addr - vm->mem_base)) {
		vm->gpr[HV_RAX] = (uint64_t)HC_EINVAL;
		vm->hc_errors++;
		return;
	}
	gpa_t gpa = addr - vm->mem_base;
	for (uint64_t i = 0; i < len; i++) {
		char c = *(const char *)hv_gpa_ptr(vm, gpa + i, 1);
		text[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	text[len] = 0;
	printf("guest: %s\n", text);
	vm->gpr[HV_RAX] = 0;
}

static void hypercall(struct hv_vm *vm)
{
	uint64_t nr = vm->gpr[HV_RAX], a = vm->gpr[HV_RDI], b = vm->gpr[HV_RSI];
	vm->hypercalls++;
	switch (nr) {
	case HC_PRINT:
		hc_print(vm, a, b);
		return;
	case HC_TIME_NS:
		vm->gpr[HV_RAX] = clock_ns();
		return;
	case HC_COUNTER:
		if (a >= HC_COUNTERS)
			break;
		vm->counters[a] = b;
		vm->gpr[HV_RAX] = 0;
		return;
	case HC_YIELD:
		vm->yielded = true;
		vm->gpr[HV_RAX] = 0;
		return;
	case HC_EXIT:
		printf("guest: exited with status %llu\n", (unsigned long long)a);
		vm->state = HV_VM_EXITED;
		return;
	case HC_TEST_SYNC:
		if (dirtylog_test_sync(vm, a) < 0)
			break;
		vm->gpr[HV_RAX] = 0;
		return;
	default:
		vm->gpr[HV_RAX] = (uint64_t)HC_ENOSYS;
		vm->hc_errors++;
		return;
	}
	vm->gpr[HV_RAX] = (uint64_t)HC_EINVAL;
	vm->hc_errors++;
}

static const char *const exit_names[HV_EXIT_NREASONS] = {
	"hypercall", "preempt", "exception", "memory", "shutdown", "hlt", "other",
	"io", "msr", "cpuid", "irq-window",
};


const char *hv_exit_name(enum hv_exit_reason r)
{
	return r < HV_EXIT_NREASONS ? exit_names[r] : "?";
}

/* A guest that misbehaves stops; ferry goes on (STYLE 5). */
static void guest_fault(struct hv_vm *vm, const struct hv_exit *e)
{
	vm->state = HV_VM_FAULTED;
	switch (e->reason) {
	case HV_EXIT_MEMORY:
		printf("guest: stopped: access outside guest memory at guest-physical 0x%llx (rip 0x%llx)\n",
		       (unsigned long long)e->gpa, (unsigned long long)e->rip);
		break;
	case HV_EXIT_EXCEPTION:
		printf("guest: stopped: exception %llu, error code 0x%llx (rip 0x%llx)\n",
		       (unsigned long long)e->code, (unsigned long long)e->error, (unsigned long long)e->rip);
		break;
	case HV_EXIT_SHUTDOWN:
		printf("guest: stopped: triple fault (rip 0x%llx)\n", (unsigned long long)e->rip);
		break;
	case HV_EXIT_HLT:
		printf("guest: stopped: halted with no interrupt to wait for (rip 0x%llx)\n",
		       (unsigned long long)e->rip);
		break;
	default:
		printf("guest: stopped: unknown exit, hardware reason 0x%llx, qualification 0x%llx (rip 0x%llx)\n",
		       (unsigned long long)e->code, (unsigned long long)e->error, (unsigned long long)e->rip);
		break;
	}
}

/* Has the throttled guest had its share of the time since the throttle
 * was set? Idle time beyond HV_THROTTLE_CREDIT_NS is forgotten. */
static bool throttled(struct hv_vm *vm, uint64_t now)
{
	uint64_t share = 100 - vm->throttle_pct;
	uint64_t allowed = (now - vm->throttle_t0) * share / 100, ran = vm->run_ns - vm->throttle_run0;
	if (ran >= allowed)
		return true;
	if (allowed - ran > HV_THROTTLE_CREDIT_NS)
		vm->throttle_t0 += (allowed - ran - HV_THROTTLE_CREDIT_NS) * 100 / share;
	return false;
}

int hv_run_slice(uint64_t budget_ns)
{
	struct hv_vm *vm = guest;
	if (!vm || vm->state != HV_VM_RUNNING)
		return 0;
	/* A platform guest halted with nothing to wake it: idle (the main
	 * loop halts until the next tick or input). */
	if (vm->plat && !vm_runnable(vm))
		return 0;
	uint64_t t0 = clock_ns(), deadline = t0 + budget_ns;
	if (vm->throttle_pct && throttled(vm, t0))
		return 0;
	vm->yielded = false;
	do {
		struct hv_exit e;
		if (vm->plat)
			vm_prepare(vm);
		uint64_t t = clock_ns();
		vm->ops->run(vm, &e);
		vm->run_ns += clock_ns() - t;
		vm->exits[e.reason]++;
		vm->entry_failures += e.entry_failed;
		switch (e.reason) {
		case HV_EXIT_HYPERCALL:
			if (vm->plat) /* an OS's VMMCALL: #UD, as without a hypervisor */
				vm->ops->inject(vm, HV_EVENT_EXCEPTION, 6, false, 0);
			else
				hypercall(vm);
			break;
		case HV_EXIT_PREEMPT:
			/* Let the pending host interrupt (the tick) in. */
			x86_irq_window();
			break;
		case HV_EXIT_MEMORY:
			/* A write into a region ferry protects: handled, retried. */
			if (vm->write_fault && e.gpa < vm->size && vm->write_fault(vm, e.gpa) == 0)
				break;
			/* fall through */
		default:
			if (vm->plat)
				vm_exit(vm, &e);
			else
				guest_fault(vm, &e);
			break;
		}
	} while (vm->state == HV_VM_RUNNING && !vm->yielded && clock_ns() < deadline &&
		 (!vm->plat || vm_runnable(vm)));
	return 1;
}

void hv_set_throttle(struct hv_vm *vm, uint32_t pct)
{
	vm->throttle_pct = pct > 99 ? 99 : pct;
	vm->throttle_t0 = vm->throttle_set_ns = clock_ns();
	vm->throttle_run0 = vm->throttle_set_run = vm->run_ns;
}
