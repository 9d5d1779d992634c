/* sim_env.c: the engine's environment (mig_env.h) for the end being
 * polled: a guest whose memory is a host buffer and whose "CPU" writes
 * pages by a seeded pattern at a set rate, a dirty log kept by those
 * writes, and a clock that moves on by the cost of each page the engine
 * touches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

uint64_t hv_xsave_mask; /* 0: the legacy XSAVE area only (kernel/mig_cpu.c reads it) */

static void sim_flush_op(struct hv_vm *vm)
{
	(void)vm;
}

/* The ops the engine may read: the backend's name, a flush. */
static const struct hv_ops sim_ops = {
	.name = "pte",
	.flush = sim_flush_op,
};

static struct sim_end *me(void)
{
	return &sim_current->end[sim_current->cur];
}

static uint64_t rng_next(uint64_t *x)
{
	/* xorshift64* */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

static void charge(struct sim_end *e, double ns_per_page, uint64_t pages)
{
	uint64_t scale = sim_current->cfg.scale ? sim_current->cfg.scale : 1;
	double ns = ns_per_page * (double)pages * (double)scale;
	e->work_ns += ns;
	e->now += (uint64_t)ns;
}

/* XBZRLE's work shows in the source's counters: charge what is new. */
static void charge_encodes(struct sim_end *e)
{
	if (e->role != 0 || !e->stats)
		return;
	uint64_t l = e->stats->xbzrle_lookups;
	if (l < e->lookups_charged)
		e->lookups_charged = 0; /* a new migration zeroed them */
	charge(e, sim_current->cfg.cost.encode, l - e->lookups_charged);
	e->lookups_charged = l;
}

uint64_t menv_now_ns(void)
{
	struct sim_end *e = me();
	charge_encodes(e);
	return e->now;
}

uint64_t menv_tsc_hz(void)
{
	return 2000000000ull;
}

uint64_t menv_entropy(void)
{
	return rng_next(&me()->rng);
}

void *menv_alloc(size_t npages, bool zero)
{
	void *p = aligned_alloc(4096, npages * 4096);
	if (p && zero)
		memset(p, 0, npages * 4096);
	if (p)
		me()->bytes_alloc += npages * 4096;
	return p;
}

void menv_free(void *p, size_t npages)
{
	if (p)
		me()->bytes_alloc -= npages * 4096;
	free(p);
}

uint64_t menv_free_bytes(void)
{
	return 1ull << 34; /* the host's, as far as the engine can tell */
}

struct hv_vm *menv_guest(void)
{
	return me()->has_guest ? &me()->vm : NULL;
}

uint8_t *menv_page(struct hv_vm *vm, uint64_t pfn, enum menv_use use)
{
	struct sim_end *e = me();
	if (vm != &e->vm || !e->has_guest || pfn >= vm->npages)
		return NULL;
	const struct sim_costs *c = &sim_current->cfg.cost;
	charge(e, use == MENV_SEND ? c->send : use == MENV_HASH ? c->hash : c->write, 1);
	return e->mem + pfn * 4096;
}

static int guest_alloc(struct sim_end *e, uint64_t size, unsigned workload)
{
	if (e->has_guest) {
		printf("error: a guest exists\n");
		return -1;
	}
	free(e->mem);
	free(e->dirty);
	memset(&e->vm, 0, sizeof(e->vm));
	e->vm.ops = &sim_ops;
	e->vm.size = size;
	e->vm.npages = size / 4096;
	e->vm.workload = workload;
	e->vm.state = HV_VM_STOPPED;
	e->mem = calloc(e->vm.npages, 4096);
	e->dirty = calloc((e->vm.npages + 63) / 64, 8);
	if (!e->mem || !e->dirty) {
		printf("error: no memory for a %llu MiB guest\n", (unsigned long long)(size >> 20));
		return -1;
	}
	e->has_guest = true;
	e->logging = false;
	return 0;
}

int menv_guest_create(uint64_t size, unsigned workload)
{
	return guest_alloc(me(), size, workload);
}

void menv_guest_destroy(void)
{
	struct sim_end *e = me();
	e->has_guest = false; /* its memory stays for sim_mem */
	e->logging = false;
}

const char *menv_backend(void)
{
	return "pte";
}

int menv_platform_check(char *why, size_t n)
{
	snprintf(why, n, "the simulator has no PC platform");
	return -1;
}

void menv_patch_gate(struct hv_vm *vm)
{
	(void)vm;
}

const char *menv_workload_name(unsigned workload)
{
	return workload == 0 ? "sim" : "?";
}

int menv_workload_parse(const char *name)
{
	return strcmp(name, "sim") == 0 ? 0 : -1;
}

void menv_set_throttle(struct hv_vm *vm, uint32_t pct)
{
	vm->throttle_pct = pct;
}

/* The destination's guest writes nothing here, so its regions need no
 * protection: protection is the kernel's to test (test_switchover.py). */
void menv_protect(struct hv_vm *vm, uint64_t first, uint64_t count, bool on)
{
	(void)vm;
	(void)first;
	(void)count;
	(void)on;
}

void menv_flush(struct hv_vm *vm)
{
	(void)vm;
}

void menv_dirty_start(struct hv_vm *vm)
{
	(void)vm;
	struct sim_end *e = me();
	memset(e->dirty, 0, (e->vm.npages + 63) / 64 * 8);
	e->logging = true;
}

uint64_t menv_dirty_harvest(struct hv_vm *vm, uint64_t *bitmap)
{
	struct sim_end *e = me();
	if (!e->logging)
		return 0;
	uint64_t n = 0, words = (vm->npages + 63) / 64, regions = 0, last = UINT64_MAX;
	for (uint64_t i = 0; i < words; i++) {
		if (!e->dirty[i])
			continue;
		if (i / 8 != last) /* 8 words: a 2 MiB region */
			regions++, last = i / 8;
		n += (uint64_t)__builtin_popcountll(e->dirty[i] & ~bitmap[i]);
		bitmap[i] |= e->dirty[i];
		e->dirty[i] = 0;
	}
	/* ferry's harvest reads every PDE and, under each one the guest
	 * touched, 512 PTEs (kernel/dirtylog.c). Scaled, a page stands for k:
	 * they are taken as scattered, one to a 2 MiB region, as random writes
	 * over a large hot set make them. */
	uint64_t k = sim_current->cfg.scale ? sim_current->cfg.scale : 1, all = vm->npages * k / 512;
	if (k > 1)
		regions = n * k < all ? n * k : all;
	double entries = (double)all + 512.0 * (double)regions;
	e->work_ns += sim_current->cfg.cost.harvest * entries;
	e->now += (uint64_t)(sim_current->cfg.cost.harvest * entries);
	return n;
}

void menv_dirty_stop(struct hv_vm *vm)
{
	(void)vm;
	me()->logging = false;
}

int menv_cpu_capture(struct hv_vm *vm, struct hv_cpu_state *s)
{
	struct sim_end *e = me();
	memset(s, 0, sizeof(*s));
	s->version = HV_CPU_STATE_VERSION;
	s->size = sizeof(*s);
	memcpy(s->backend, "pte", 4);
	s->rip = 0x100000 + e->writes; /* where the guest got to */
	s->gpr[HV_RAX] = e->writes;
	s->gpr[HV_RSP] = 0x8000;
	s->rflags = 2;
	s->cs = (struct hv_segment){ .selector = 0x33, .attrib = 0xa0fb, .limit = 0xffffffff };
	s->ss = (struct hv_segment){ .selector = 0x2b, .attrib = 0xc0f3, .limit = 0xffffffff };
	s->cr0 = 0x80050033;
	s->cr4 = 0x20;
	s->efer = 0xd01;
	(void)vm;
	return 0;
}

int menv_cpu_check(const struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n)
{
	(void)vm;
	if (strcmp(s->backend, "pte") != 0) {
		snprintf(why, n, "backend %s: the simulator runs pte", s->backend);
		return -1;
	}
	return 0;
}

int menv_cpu_restore(struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n)
{
	(void)why;
	(void)n;
	me()->cpu_rip = s->rip;
	vm->gpr[HV_RAX] = s->gpr[HV_RAX];
	return 0;
}

size_t menv_dev_save(const struct hv_vm *vm, const struct hv_cpu_state *s, void *buf, size_t len)
{
	(void)vm;
	(void)s;
	(void)buf;
	(void)len;
	return 0; /* no platform: never asked */
}

int menv_dev_check(const void *buf, size_t len, char *why, size_t n)
{
	(void)buf;
	(void)len;
	snprintf(why, n, "the simulator has no PC platform");
	return -1;
}

void menv_dev_load(struct hv_vm *vm, const void *buf, struct hv_cpu_state *s)
{
	(void)vm;
	(void)buf;
	(void)s;
}

/* ---- the guest ---- */

void sim_guest_boot(struct sim_end *e, const struct sim_guest_cfg *g)
{
	int cur = sim_current->cur;
	sim_current->cur = e->role;
	if (guest_alloc(e, g->bytes, 0) < 0)
		abort();
	sim_current->cur = cur;
	e->rng = g->seed * 0x9e3779b97f4a7c15ull + 1;
	for (uint64_t pfn = 0; pfn < e->vm.npages; pfn++) {
		if (rng_next(&e->rng) % 100 < g->zero_pct)
			continue;
		uint64_t *w = (uint64_t *)(e->mem + pfn * 4096);
		for (int i = 0; i < 512; i++)
			w[i] = rng_next(&e->rng);
	}
	e->vm.state = HV_VM_RUNNING;
}

void sim_guest_run(struct sim *s, struct sim_end *e, uint64_t step_ns)
{
	const struct sim_guest_cfg *g = &s->cfg.guest;
	if (!e->has_guest || e->vm.state != HV_VM_RUNNING)
		return;
	e->vm.exits[HV_EXIT_PREEMPT]++; /* it ran a slice (the destination waits for one before COMMIT) */
	e->vm.run_ns += step_ns * (100 - e->vm.throttle_pct) / 100;
	if (!g->rate || e->role != 0)
		return; /* only the source's guest writes */
	double want = (double)g->rate * (double)step_ns / 1e9 * (100 - e->vm.throttle_pct) / 100.0 + e->carry;
	uint64_t n = (uint64_t)want;
	e->carry = want - (double)n;
	uint64_t hot = g->hot_pages && g->hot_first + g->hot_pages <= e->vm.npages ? g->hot_pages : e->vm.npages;
	uint64_t first = g->hot_pages ? g->hot_first : 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = rng_next(&e->rng);
		uint64_t pfn = first + r % hot;
		uint64_t *w = (uint64_t *)(e->mem + pfn * 4096);
		w[(r >> 40) % 512] = r | 1;
		if (e->logging)
			e->dirty[pfn / 64] |= 1ull << (pfn % 64);
	}
	e->writes += n;
}
