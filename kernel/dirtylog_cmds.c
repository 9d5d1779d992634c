/* dirtylog_cmds.c: `dirtylog start|harvest|stop|test|wptest` and `info dirty`.
 *
 * The exactness test (after the KVM dirty_log_test): a dirtytest guest
 * asks for orders through HC_TEST_SYNC; each order is a seeded random set
 * of data pages to write and a disjoint set to only read. At the next
 * sync ferry harvests and compares: every written page must be in the
 * harvest (a miss is a lost write, the one thing live migration cannot
 * survive); every other dirty page is classified, and only the pages the
 * hardware itself marks (the guest's page tables, dirtied by A/D updates
 * during walks) or the guest's own stack writes and ferry's mailbox
 * writes may appear. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "dirtylog.h"
#include "mig.h"
#include "hypercall.h"
#include "pmm.h"
#include "x86.h"

#define TEST_WRITE_MAX 64      /* pages written per round, at most */
#define TEST_READ_MAX 64       /* pages read per round, at most */
#define TEST_TIMEOUT_NS (600ull * 1000000000ull)
#define TEST_REPORT_MAX 5      /* individual misses printed */

struct dirtylog_test {
	int running, finished, failed;
	uint64_t rounds, round, rng;
	uint64_t *harvest, *want; /* bitmaps over guest pages */
	size_t bitmap_pages;
	struct guest_mailbox order; /* ferry's copy of the current order */
	uint64_t written, misses, fp_tables, fp_other, read_dirty, own_stack, host_pages;
	uint64_t harvest_ns;
};

static struct dirtylog_test test;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static int bit(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static void post_order(struct hv_vm *vm)
{
	struct guest_mailbox *o = &test.order;
	/* Forget the last order's pages. */
	for (uint32_t i = 0; i < o->nwrite + o->nread; i++)
		test.want[o->pages[i] / 64] &= ~(1ull << (o->pages[i] % 64));
	memset(o, 0, sizeof(*o));
	o->round = (uint32_t)++test.round;
	uint64_t first = GUEST_DATA_GPA / PAGE_SIZE, span = vm->npages - first;
	uint32_t nw = 1 + (uint32_t)(rng_next(&test.rng) % TEST_WRITE_MAX);
	uint32_t nr = 1 + (uint32_t)(rng_next(&test.rng) % TEST_READ_MAX);
	for (uint32_t i = 0; i < nw + nr;) {
		uint64_t pfn = first + rng_next(&test.rng) % span;
		if (bit(test.want, pfn))
			continue; /* distinct pages, reads disjoint from writes */
		test.want[pfn / 64] |= 1ull << (pfn % 64);
		o->pages[i++] = (uint32_t)pfn;
	}
	o->nwrite = nw;
	o->nread = nr;
	struct guest_mailbox *mb = hv_gpa_ptr(vm, GUEST_MAILBOX_GPA, sizeof(*mb));
	memcpy(mb, o, sizeof(*mb));
	dirtylog_note_host_write(vm, GUEST_MAILBOX_GPA / PAGE_SIZE);
}

/* Compare the harvest with the order the guest just carried out. */
static void check_round(struct hv_vm *vm)
{
	const struct guest_mailbox *o = &test.order;
	memset(test.harvest, 0, test.bitmap_pages * PAGE_SIZE);
	uint64_t t0 = clock_ns();
	dirtylog_harvest(vm, test.harvest);
	test.harvest_ns += clock_ns() - t0;
	for (uint32_t i = 0; i < o->nwrite; i++) {
		test.written++;
		if (!bit(test.harvest, o->pages[i]) && test.misses++ < TEST_REPORT_MAX)
			printf("dirtylog test: round %u: MISS: page 0x%x written, not in the harvest\n",
			       (unsigned)o->round, (unsigned)o->pages[i]);
	}
	for (uint64_t w = 0; w < (vm->npages + 63) / 64; w++) {
		for (uint64_t m = test.harvest[w]; m; m &= m - 1) {
			uint64_t pfn = w * 64 + (uint64_t)__builtin_ctzll(m);
			gpa_t gpa = pfn * PAGE_SIZE;
			int written = 0;
			for (uint32_t i = 0; i < o->nwrite && !written; i++)
				written = o->pages[i] == pfn;
			if (written)
				continue;
			if (gpa >= GUEST_PT_GPA && gpa < GUEST_PT_END)
				test.fp_tables++;
			else if (gpa == GUEST_MAILBOX_GPA)
				test.host_pages++;
			else if (gpa >= GUEST_STACK_TOP - 0x10000 && gpa < GUEST_STACK_TOP)
				test.own_stack++;
			else {
				int read = bit(test.want, pfn);
				if (read)
					test.read_dirty++;
				else
					test.fp_other++;
				if (test.read_dirty + test.fp_other <= TEST_REPORT_MAX)
					printf("dirtylog test: round %u: FALSE POSITIVE: page 0x%llx%s\n",
					       (unsigned)o->round, (unsigned long long)pfn,
					       read ? " (only read)" : "");
			}
		}
	}
}

int dirtylog_test_sync(struct hv_vm *vm, uint64_t round)
{
	if (!test.running || test.finished)
		return -1;
	if (round != test.round) {
		printf("dirtylog test: guest finished round %llu, ferry expected %llu\n",
		       (unsigned long long)round, (unsigned long long)test.round);
		test.failed = test.finished = 1;
		return -1;
	}
	if (test.round == 0) {
		/* Start-up writes (stack, first mailbox read) are not a round. */
		memset(test.harvest, 0, test.bitmap_pages * PAGE_SIZE);
		dirtylog_harvest(vm, test.harvest);
	} else {
		check_round(vm);
	}
	if (test.round == test.rounds) {
		struct guest_mailbox *mb = hv_gpa_ptr(vm, GUEST_MAILBOX_GPA, sizeof(*mb));
		mb->done = 1;
		dirtylog_note_host_write(vm, GUEST_MAILBOX_GPA / PAGE_SIZE);
		test.finished = 1;
		return 0;
	}
	post_order(vm);
	return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	*v = strtoull(s, &end, 0);
	return *s && !*end ? 0 : -1;
}

static int cmd_dirtylog_test(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	uint64_t rounds, seed, size = 64ull << 20;
	if (argc < 2 || argc > 3 || parse_u64(argv[0], &rounds) < 0 || parse_u64(argv[1], &seed) < 0 ||
	    rounds == 0 || rounds > 100000 || (argc == 3 && hv_parse_size(argv[2], &size) < 0)) {
		printf("usage: dirtylog test ROUNDS SEED [SIZE]  (ROUNDS 1..100000, SIZE like 64M)\n");
		return 1;
	}
	if (hv_guest()) {
		printf("error: a guest exists; 'guest quit' first\n");
		return 1;
	}
	if (hv_guest_create(size, GUEST_WL_DIRTYTEST, seed, 0) < 0)
		return 1;
	struct hv_vm *vm = hv_guest();
	memset(&test, 0, sizeof(test));
	test.bitmap_pages = ((vm->npages + 63) / 64 * 8 + PAGE_SIZE - 1) / PAGE_SIZE;
	test.harvest = pmm_alloc(test.bitmap_pages, PMM_ZERO);
	test.want = pmm_alloc(test.bitmap_pages, PMM_ZERO);
	if (!test.harvest || !test.want) {
		printf("error: out of memory for the test's bitmaps\n");
		goto out;
	}
	test.rounds = rounds;
	test.rng = seed * 0x9e3779b97f4a7c15ull + 1;
	test.running = 1;
	dirtylog_start(vm);
	uint64_t deadline = clock_ns() + TEST_TIMEOUT_NS;
	while (vm->state == HV_VM_RUNNING && !test.failed && clock_ns() < deadline)
		hv_run_slice(HV_SLICE_NS);
	int pass = test.finished && !test.failed && vm->state == HV_VM_EXITED && test.misses == 0 &&
		   test.fp_other == 0 && test.read_dirty == 0;
	printf("dirtylog test: backend %s, %llu MiB, seed %llu: %llu of %llu rounds, %llu pages written\n",
	       vm->ops->name, (unsigned long long)(vm->size >> 20), (unsigned long long)seed,
	       (unsigned long long)(test.finished ? test.round : test.round ? test.round - 1 : 0),
	       (unsigned long long)rounds, (unsigned long long)test.written);
	printf("dirtylog test: misses %llu, false positives %llu (guest page tables %llu, other %llu, "
	       "read-only pages %llu)\n",
	       (unsigned long long)test.misses,
	       (unsigned long long)(test.fp_tables + test.fp_other + test.read_dirty),
	       (unsigned long long)test.fp_tables, (unsigned long long)test.fp_other,
	       (unsigned long long)test.read_dirty);
	printf("dirtylog test: also dirty, as expected: guest stack %llu, ferry's mailbox %llu; "
	       "harvest %.1f us per round\n",
	       (unsigned long long)test.own_stack, (unsigned long long)test.host_pages,
	       test.round ? (double)test.harvest_ns / 1e3 / (double)test.round : 0.0);
	printf("dirtylog test: %s\n", pass ? "PASS" : "FAIL");
out:
	test.running = 0;
	hv_guest_destroy();
	if (test.harvest)
		pmm_free(test.harvest, test.bitmap_pages);
	if (test.want)
		pmm_free(test.want, test.bitmap_pages);
	test.harvest = test.want = NULL;
	return 0;
}

static uint64_t *cmd_bitmap; /* `dirtylog harvest`'s bitmap */
static size_t cmd_bitmap_pages;

static void cmd_bitmap_free(void)
{
	if (cmd_bitmap)
		pmm_free(cmd_bitmap, cmd_bitmap_pages);
	cmd_bitmap = NULL;
}

static int cmd_dirtylog_start(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	(void)argc;
	(void)argv;
	struct hv_vm *vm = hv_guest();
	if (!vm) {
		printf("error: no guest\n");
		return 1;
	}
	cmd_bitmap_free();
	cmd_bitmap_pages = ((vm->npages + 63) / 64 * 8 + PAGE_SIZE - 1) / PAGE_SIZE;
	cmd_bitmap = pmm_alloc(cmd_bitmap_pages, PMM_ZERO);
	if (!cmd_bitmap) {
		printf("error: out of memory for the bitmap\n");
		return 1;
	}
	dirtylog_start(vm);
	printf("dirty logging on (backend %s, %llu pages)\n", vm->ops->name, (unsigned long long)vm->npages);
	return 0;
}

static int cmd_dirtylog_harvest(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	(void)argc;
	(void)argv;
	struct hv_vm *vm = hv_guest();
	struct dirtylog_stats s;
	dirtylog_get_stats(&s);
	if (!vm || !s.active || !cmd_bitmap) {
		printf("error: dirty logging is off ('dirtylog start')\n");
		return 1;
	}
	memset(cmd_bitmap, 0, cmd_bitmap_pages * PAGE_SIZE);
	uint64_t n = dirtylog_harvest(vm, cmd_bitmap);
	dirtylog_get_stats(&s);
	printf("harvest: %llu pages dirty, %.1f us, %llu entries examined\n", (unsigned long long)n,
	       (double)s.last_ns / 1e3, (unsigned long long)s.last_entries);
	return 0;
}

static int cmd_dirtylog_stop(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	(void)argc;
	(void)argv;
	struct hv_vm *vm = hv_guest();
	if (vm)
		dirtylog_stop(vm);
	cmd_bitmap_free();
	printf("dirty logging off\n");
	return 0;
}

/* `dirtylog wptest MS`: region write protection (hv_s2_protect, what the
 * migration destination verifies with) against the dirty log, on the
 * running guest. Every 2 MiB region is write-protected and logging
 * started; for MS ms each write fault marks its region and makes it
 * writable again; then every page the harvest says was written must lie
 * in a marked region: one that does not is a write the protection let
 * through (a miss). */
static uint64_t *wp_marked;

static int wp_fault(struct hv_vm *vm, gpa_t gpa)
{
	uint64_t r = (gpa >> 12) / HV_REGION_PAGES;
	if (!((wp_marked[r / 64] >> (r % 64)) & 1)) {
		wp_marked[r / 64] |= 1ull << (r % 64);
		hv_s2_protect(vm, r, 1, false);
	}
	vm->ops->flush(vm);
	return 0;
}

static int cmd_dirtylog_wptest(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	uint64_t ms;
	struct hv_vm *vm = hv_guest();
	if (argc != 1 || parse_u64(argv[0], &ms) < 0 || ms == 0 || ms > 60000) {
		printf("usage: dirtylog wptest MS  (1..60000: how long the guest runs protected)\n");
		return 1;
	}
	if (!vm || vm->state != HV_VM_RUNNING) {
		printf("error: no running guest\n");
		return 1;
	}
	uint64_t regions = (vm->npages + HV_REGION_PAGES - 1) / HV_REGION_PAGES;
	size_t mpages = ((regions + 63) / 64 * 8 + PAGE_SIZE - 1) / PAGE_SIZE;
	cmd_bitmap_free();
	cmd_bitmap_pages = ((vm->npages + 63) / 64 * 8 + PAGE_SIZE - 1) / PAGE_SIZE;
	cmd_bitmap = pmm_alloc(cmd_bitmap_pages, PMM_ZERO);
	wp_marked = pmm_alloc(mpages, PMM_ZERO);
	if (!cmd_bitmap || !wp_marked) {
		printf("error: out of memory for the bitmaps\n");
		goto out;
	}
	dirtylog_start(vm);
	vm->write_fault = wp_fault;
	hv_s2_protect(vm, 0, regions, true);
	vm->ops->flush(vm);
	uint64_t end = clock_ns() + ms * 1000000ull;
	while (vm->state == HV_VM_RUNNING && clock_ns() < end)
		hv_run_slice(HV_SLICE_NS);
	uint64_t written = dirtylog_harvest(vm, cmd_bitmap), missed = 0, caught = 0, first_miss = UINT64_MAX;
	for (uint64_t p = 0; p < vm->npages; p++) {
		if (!((cmd_bitmap[p / 64] >> (p % 64)) & 1))
			continue;
		uint64_t r = p / HV_REGION_PAGES;
		if ((wp_marked[r / 64] >> (r % 64)) & 1)
			continue;
		if (!missed++)
			first_miss = p;
	}
	for (uint64_t r = 0; r < regions; r++)
		caught += (wp_marked[r / 64] >> (r % 64)) & 1;
	printf("dirtylog wptest: backend %s, %llu regions, %llu pages written, %llu regions caught at a write, "
	       "%llu pages missed", vm->ops->name, (unsigned long long)regions, (unsigned long long)written,
	       (unsigned long long)caught, (unsigned long long)missed);
	if (missed)
		printf(" (the first: page 0x%llx)", (unsigned long long)first_miss);
	printf("\ndirtylog wptest: %s\n", vm->state == HV_VM_RUNNING && written && !missed ? "PASS" : "FAIL");
out:
	hv_s2_protect(vm, 0, regions, false);
	vm->ops->flush(vm);
	vm->write_fault = NULL;
	dirtylog_stop(vm);
	if (wp_marked)
		pmm_free(wp_marked, mpages);
	wp_marked = NULL;
	cmd_bitmap_free();
	return 0;
}

static int cmd_info_dirty(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct dirtylog_stats s;
	dirtylog_get_stats(&s);
	const struct hv_ops *b = hv_backend();
	printf("dirty logging: %s, backend %s, %llu harvests\n", s.active ? "on" : "off", b ? b->name : "?",
	       (unsigned long long)s.harvests);
	if (s.harvests) {
		double dt = (double)(s.last_at_ns - s.prev_at_ns) / 1e9;
		printf("last harvest: %llu pages dirty, cost %.1f us (%llu entries), %.0f pages/s\n",
		       (unsigned long long)s.last_pages, (double)s.last_ns / 1e3,
		       (unsigned long long)s.last_entries, dt > 0 ? (double)s.last_pages / dt : 0.0);
	}
	return 0;
}

static const struct console_cmd dirtylog_cmds[] = {
	{ "dirtylog start", "", "clear the guest's dirty bits and start logging", cmd_dirtylog_start },
	{ "dirtylog harvest", "", "collect and clear the pages dirtied since the last harvest",
	  cmd_dirtylog_harvest },
	{ "dirtylog stop", "", "stop dirty logging", cmd_dirtylog_stop },
	{ "dirtylog test", "ROUNDS SEED [SIZE]", "exactness test: seeded writes vs. harvests",
	  cmd_dirtylog_test },
	{ "dirtylog wptest", "MS", "region write protection vs. the dirty log on the running guest",
	  cmd_dirtylog_wptest },
	{ "info dirty", "", "pages dirtied in the last harvest and its cost", cmd_info_dirty },
};

void dirtylog_cmds_init(void)
{
	console_register(dirtylog_cmds, sizeof(dirtylog_cmds) / sizeof(dirtylog_cmds[0]));
}
