/* sim_world.c: the simulator's clock and its two ends: each a copy of the
 * engine loaded on its own, stepped together with the guest and the link.
 * An end is polled once the time its last poll's work took has passed. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "digest.h"
#include "sim.h"
#include "xbzrle.h"

#define SIM_ENGINE "libmigengine"

struct sim *sim_current;

static void *sym(struct sim_end *e, const char *name)
{
	void *p = dlsym(e->dl, name);
	if (!p) {
		printf("error: engine lacks %s\n", name);
		abort();
	}
	return p;
}

/* The engine's builds sit in build/host/sim/, beside this program's
 * folder (build/host/tests/ or build/host/bench/): found from it, so the
 * program runs from any directory. A base with a '/' is taken as given. */
static void engine_path(char *path, size_t n, const char *base, int role)
{
	char exe[400];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash = k > 0 ? (exe[k] = 0, strrchr(exe, '/')) : NULL;
	if (strchr(base, '/') || !slash)
		snprintf(path, n, "%s-%c.so", base, role ? 'b' : 'a');
	else
		snprintf(path, n, "%.*s/../sim/%s-%c.so", (int)(slash - exe), exe, base, role ? 'b' : 'a');
}

static int load(struct sim_end *e, const char *base, int role)
{
	char path[512];
	engine_path(path, sizeof(path), base, role);
	/* Two files, so two copies: each end has its own statics. Its calls
	 * into the environment resolve against this program. */
	e->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!e->dl) {
		printf("error: cannot load the engine: %s\n", dlerror());
		return -1;
	}
	e->role = role;
	e->params = sym(e, "mig_params");
	e->stats = sym(e, "mig_stats");
	*(void **)&e->src_start = sym(e, "mig_src_start");
	*(void **)&e->src_poll = sym(e, "mig_src_poll");
	*(void **)&e->src_cancel = sym(e, "mig_src_cancel");
	*(void **)&e->src_active = sym(e, "mig_src_active");
	*(void **)&e->src_retune = sym(e, "mig_src_retune");
	*(void **)&e->dst_start = sym(e, "mig_dst_start");
	*(void **)&e->dst_poll = sym(e, "mig_dst_poll");
	*(void **)&e->dst_active = sym(e, "mig_dst_active");
	*(void **)&e->dst_busy = sym(e, "mig_dst_busy");
	*(void **)&e->status_name = sym(e, "mig_status_name");
	*(void **)&e->dst_cancel = sym(e, "mig_dst_cancel");
	*(void **)&e->src_resolve = sym(e, "mig_src_resolve");
	*(void **)&e->dst_resolve = sym(e, "mig_dst_resolve");
	return 0;
}

struct sim *sim_new(const struct sim_cfg *cfg)
{
	/* A test that failed an assertion left its simulation loaded: free
	 * it, or this one would share its engines' statics. */
	if (sim_current)
		sim_free(sim_current);
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	if (!s->cfg.scale)
		s->cfg.scale = 1;
	if (!s->cfg.step_ns)
		s->cfg.step_ns = 100000;
	if (!s->cfg.limit_ns)
		s->cfg.limit_ns = 600ull * 1000000000;
	if (!s->cfg.link.window)
		s->cfg.link.window = 1u << 20;
	if (!s->cfg.link.rto_ns)
		s->cfg.link.rto_ns = 200000000;
	s->cur = -1;
	sim_current = s;
	const char *base = cfg->engine ? cfg->engine : SIM_ENGINE;
	s->pipe[0] = sim_pipe_new(&s->cfg.link);
	s->pipe[1] = sim_pipe_new(&s->cfg.link);
	if (!s->pipe[0] || !s->pipe[1] || load(&s->end[0], base, 0) < 0 || load(&s->end[1], base, 1) < 0) {
		sim_free(s);
		return NULL;
	}
	sim_guest_boot(&s->end[0], &s->cfg.guest);
	return s;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	for (int i = 0; i < 2; i++) {
		if (s->end[i].dl)
			dlclose(s->end[i].dl);
		free(s->end[i].mem);
		free(s->end[i].dirty);
		sim_pipe_free(s->pipe[i]);
	}
	if (sim_current == s)
		sim_current = NULL;
	free(s);
}

uint8_t *sim_mem(struct sim *s, int end, uint64_t pfn)
{
	struct sim_end *e = &s->end[end];
	return e->mem && pfn < e->vm.npages ? e->mem + pfn * 4096 : NULL;
}

uint64_t sim_pages_differ(struct sim *s)
{
	uint64_t n = s->end[0].vm.npages, bad = 0;
	if (s->end[1].vm.npages != n || !s->end[0].mem || !s->end[1].mem)
		return UINT64_MAX;
	for (uint64_t p = 0; p < n; p++)
		bad += memcmp(s->end[0].mem + p * 4096, s->end[1].mem + p * 4096, 4096) != 0;
	return bad;
}

static void poll_end(struct sim *s, int i)
{
	struct sim_end *e = &s->end[i];
	if (s->now < e->busy_until)
		return;
	s->cur = i;
	e->now = s->now;
	if (i == 0)
		e->src_poll();
	else
		e->dst_poll();
	(void)menv_now_ns(); /* charge what the poll did */
	e->busy_until = e->now;
	s->cur = -1;
}

void sim_step(struct sim *s)
{
	s->now += s->cfg.step_ns;
	s->steps++;
	if (s->hook)
		s->hook(s, s->hook_arg);
	sim_guest_run(s, &s->end[0], s->cfg.step_ns);
	sim_guest_run(s, &s->end[1], s->cfg.step_ns);
	sim_link_connect_step(s);
	for (int i = 0; i < 2; i++) {
		sim_pipe_step(s->pipe[i], s->now);
		/* an end that closed (or never opened) drops what arrives */
		struct sim_end *rx = &s->end[1 - i];
		if (rx->tcp != MIG_TCP_OPEN && rx->tcp != MIG_TCP_FAILED)
			sim_pipe_drop(s->pipe[i]);
	}
	poll_end(s, 0);
	poll_end(s, 1);
	struct sim_end *a = &s->end[0], *b = &s->end[1];
	if (a->has_guest && a->vm.state == HV_VM_RUNNING && b->has_guest && b->vm.state == HV_VM_RUNNING)
		s->both_running++;
	if (!s->dst_resumed_at && b->has_guest && b->vm.state == HV_VM_RUNNING)
		s->dst_resumed_at = s->now;
}

bool sim_done(const struct sim *s)
{
	const struct sim_end *a = &s->end[0], *b = &s->end[1];
	/* (a destination that listens again after a failure is done) */
	return !a->src_active() && !b->dst_busy() && !sim_pipe_in_flight(s->pipe[0]) &&
	       !sim_pipe_in_flight(s->pipe[1]);
}

int sim_migrate(struct sim *s)
{
	struct sim_end *a = &s->end[0], *b = &s->end[1];
	s->cur = 1;
	b->now = s->now;
	int rc = b->dst_start(0, 4444);
	s->cur = 0;
	a->now = s->now;
	if (rc == 0)
		rc = a->src_start(0x0200000a, 4444);
	s->cur = -1;
	if (rc < 0)
		return -1;
	while (s->now < s->cfg.limit_ns) {
		sim_step(s);
		if (sim_done(s))
			return 0;
	}
	return -1;
}

/* ---- this CPU's costs ---- */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void sim_costs_measure(struct sim_costs *c)
{
	enum { N = 2048 };
	uint8_t *mem = aligned_alloc(4096, (size_t)N * 4096), *out = aligned_alloc(4096, 2 * 4096),
		*enc = aligned_alloc(4096, 4096);
	uint64_t *bits = calloc(N, 8);
	if (!mem || !out || !enc || !bits)
		abort();
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < (size_t)N * 512; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		((uint64_t *)mem)[i] = x;
	}
	volatile uint64_t sink = 0;
	struct sim_costs best = { 1e18, 1e18, 1e18, 1e18, 1e18 };
	/* The fastest of 7 passes: this host is shared, and another
	 * process's time is not the CPU's cost. */
	for (int pass = 0; pass < 7; pass++) {
		double t = now_s();
		for (int i = 0; i < N; i++) {
			const uint8_t *p = mem + (size_t)i * 4096;
			sink += xbzrle_is_zero(p, 4096);
			memcpy(out, p, 4096);
			sink += crc32c(0, out, 4096);
		}
		c->send = (now_s() - t) * 1e9 / N;
		t = now_s();
		for (int i = 0; i < N; i++) {
			struct digest_state st;
			digest_init(&st);
			digest_update(&st, mem + (size_t)i * 4096, 4096);
			sink += digest_final(&st).low64;
		}
		c->hash = (now_s() - t) * 1e9 / N;
		t = now_s();
		for (int i = 0; i < N; i++) {
			sink += crc32c(0, mem + (size_t)i * 4096, 4096);
			memcpy(out + 4096, mem + (size_t)i * 4096, 4096);
		}
		c->write = (now_s() - t) * 1e9 / N;
		t = now_s();
		for (int i = 0; i + 1 < N; i++) {
			/* a page with one word changed, against its old copy */
			memcpy(out, mem + (size_t)i * 4096, 4096);
			((uint64_t *)out)[i % 512] ^= 0x5a5a;
			sink += (uint64_t)xbzrle_encode(mem + (size_t)i * 4096, out, 4096, enc, 4096);
		}
		c->encode = (now_s() - t) * 1e9 / (N - 1);
		t = now_s();
		for (int i = 0; i < N; i++) { /* a PTE's test-and-clear */
			uint64_t v = bits[i];
			if (v & 0x200)
				bits[i] = v & ~0x200ull, sink++;
		}
		c->harvest = (now_s() - t) * 1e9 / N;
		best.send = c->send < best.send ? c->send : best.send;
		best.hash = c->hash < best.hash ? c->hash : best.hash;
		best.write = c->write < best.write ? c->write : best.write;
		best.encode = c->encode < best.encode ? c->encode : best.encode;
		best.harvest = c->harvest < best.harvest ? c->harvest : best.harvest;
	}
	*c = best;
	(void)sink;
	free(mem);
	free(out);
	free(enc);
	free(bits);
}
