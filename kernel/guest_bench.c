/* guest_bench.c: `guest bench`: what dirty logging and VM exits cost on
 * this backend, measured inside ferry (make bench boots it under QEMU).
 *
 * Harvest: a big guest (default 1 GiB) whose synthetic workload touches
 * 16 MiB, against a small guest (default 16 MiB) that touches all of
 * itself; harvest cost must follow the memory touched, so the ratio
 * should stay within 2x. VM exit: a guest making hypercalls back to back;
 * time inside run() per exit is one round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "dirtylog.h"
#include "guest_cmds.h"
#include "hv.h"
#include "hypercall.h"
#include "pmm.h"

#define BENCH_WARMUP 16            /* harvests before measuring: under QEMU the
					    * softmmu TLB, grown by zeroing guest memory,
					    * takes a while to shrink back */
#define BENCH_HARVESTS 16          /* harvests measured per guest */
#define BENCH_EXIT_NS 500000000ull /* ns the exit benchmark runs */
#define BENCH_TIMEOUT_NS (120ull * 1000000000ull)

struct harvest_result {
	uint64_t pages, entries, best_ns, median_ns;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Run the guest until its pass counter moved by n (a whole pass of the
 * synthetic workload happened). Returns 0, or -1 if it stopped or hung. */
static int run_passes(struct hv_vm *vm, uint64_t n)
{
	uint64_t want = vm->counters[HC_CTR_PASSES] + n, deadline = clock_ns() + BENCH_TIMEOUT_NS;
	while (vm->counters[HC_CTR_PASSES] < want) {
		if (vm->state != HV_VM_RUNNING || clock_ns() > deadline)
			return -1;
		hv_run_slice(HV_SLICE_NS);
	}
	return 0;
}

static int bench_harvest(uint64_t size, struct harvest_result *r)
{
	if (hv_guest_create(size, GUEST_WL_SYNTHETIC, 1, 0) < 0)
		return -1;
	struct hv_vm *vm = hv_guest();
	size_t bm_pages = ((vm->npages + 63) / 64 * 8 + PAGE_SIZE - 1) / PAGE_SIZE;
	uint64_t *bm = pmm_alloc(bm_pages, PMM_ZERO);
	uint64_t ns[BENCH_HARVESTS];
	int rc = -1;
	if (!bm)
		goto out;
	dirtylog_start(vm);
	if (run_passes(vm, 2) < 0)
		goto out;
	memset(r, 0, sizeof(*r));
	for (int i = -BENCH_WARMUP; i < BENCH_HARVESTS; i++) {
		/* Two counter moves: at least one whole pass since the last
		 * harvest, so every touched page is dirty again. */
		if (run_passes(vm, 2) < 0)
			goto out;
		memset(bm, 0, bm_pages * PAGE_SIZE);
		r->pages = dirtylog_harvest(vm, bm);
		struct dirtylog_stats s;
		dirtylog_get_stats(&s);
		if (i >= 0)
			ns[i] = s.last_ns;
		r->entries = s.last_entries;
	}
	qsort(ns, BENCH_HARVESTS, sizeof(ns[0]), cmp_u64);
	r->best_ns = ns[0];
	r->median_ns = ns[BENCH_HARVESTS / 2];
	rc = 0;
out:
	if (bm)
		pmm_free(bm, bm_pages);
	hv_guest_destroy();
	return rc;
}

static int bench_exits(double *ns_per_exit, uint64_t *exits)
{
	if (hv_guest_create(HV_SIZE_MIN, GUEST_WL_EXITBENCH, 1, 0) < 0)
		return -1;
	struct hv_vm *vm = hv_guest();
	uint64_t end = clock_ns() + BENCH_EXIT_NS;
	while (vm->state == HV_VM_RUNNING && clock_ns() < end)
		hv_run_slice(HV_SLICE_NS);
	uint64_t n = 0;
	for (int r = 0; r < HV_EXIT_NREASONS; r++)
		n += vm->exits[r];
	int ok = vm->state == HV_VM_RUNNING && n > 0;
	*exits = n;
	*ns_per_exit = n ? (double)vm->run_ns / (double)n : 0;
	hv_guest_destroy();
	return ok ? 0 : -1;
}

static int cmd_guest_bench(int argc, char **argv)
{
	uint64_t big = 1ull << 30, small = 16ull << 20;
	if (argc > 2 || (argc >= 1 && hv_parse_size(argv[0], &big) < 0) ||
	    (argc == 2 && hv_parse_size(argv[1], &small) < 0)) {
		printf("usage: guest bench [BIG] [SMALL]  (sizes like 1G 16M)\n");
		return 1;
	}
	if (hv_guest()) {
		printf("error: a guest exists; 'guest quit' first\n");
		return 1;
	}
	const char *b = hv_backend()->name;
	struct harvest_result rb, rs;
	if (bench_harvest(big, &rb) < 0 || bench_harvest(small, &rs) < 0) {
		printf("bench: failed (see above)\n");
		return 1;
	}
	printf("bench %s harvest: %llu MiB guest, 16 MiB touched: %llu pages, %llu entries, median %.1f us, best %.1f us\n",
	       b, (unsigned long long)(big >> 20), (unsigned long long)rb.pages, (unsigned long long)rb.entries,
	       (double)rb.median_ns / 1e3, (double)rb.best_ns / 1e3);
	printf("bench %s harvest: %llu MiB guest, all touched: %llu pages, %llu entries, median %.1f us, best %.1f us\n",
	       b, (unsigned long long)(small >> 20), (unsigned long long)rs.pages, (unsigned long long)rs.entries,
	       (double)rs.median_ns / 1e3, (double)rs.best_ns / 1e3);
	printf("bench %s harvest ratio: %.2f (goal <= 2)\n", b,
	       rs.median_ns ? (double)rb.median_ns / (double)rs.median_ns : 0.0);
	double per_exit;
	uint64_t exits;
	if (bench_exits(&per_exit, &exits) < 0) {
		printf("bench: exit benchmark failed\n");
		return 1;
	}
	printf("bench %s vm-exit round trip: %.0f ns (%llu exits)\n", b, per_exit, (unsigned long long)exits);
	return 0;
}

static const struct console_cmd bench_cmds[] = {
	{ "guest bench", "[BIG] [SMALL]", "harvest cost (big guest, 16 MiB touched vs small, all) and VM-exit cost",
	  cmd_guest_bench },
};

void guest_bench_init(void)
{
	console_register(bench_cmds, sizeof(bench_cmds) / sizeof(bench_cmds[0]));
}
