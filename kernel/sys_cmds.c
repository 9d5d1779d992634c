/* sys_cmds.c: console commands about ferry and the machine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "hv.h"
#include "pcache.h"
#include "pmm.h"
#include "serial.h"
#include "sys_cmds.h"
#include "trap.h"
#include "version.h"
#include "x86.h"
#include "xbzrle.h"

#define QEMU_DEBUG_EXIT_PORT 0xf4 /* isa-debug-exit: QEMU exits (v << 1) | 1 */

static double mib(uint64_t pages)
{
	return (double)pages * PAGE_SIZE / (1024.0 * 1024.0);
}

static double tsc_ms(uint64_t tsc)
{
	return (double)clock_tsc_to_ns(tsc) / 1e6;
}

void sys_print_banner(uint64_t tsc_entry, uint64_t tsc_exit)
{
	uint64_t now = x86_rdtsc();
	/* The TSC starts at reset, so its value at efi_main is firmware time. */
	printf("ferry %s (build %s) ready: firmware %.1f ms, ferry init %.2f ms "
	       "(UEFI exit %.2f ms, kernel %.2f ms)\n",
	       FERRY_VERSION, ferry_build_id, tsc_ms(tsc_entry), tsc_ms(now - tsc_entry),
	       tsc_ms(tsc_exit - tsc_entry), tsc_ms(now - tsc_exit));
}

static int cmd_info_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char virt[96];
	cpu_virt_features(virt, sizeof(virt));
	printf("ferry %s (build %s, %s)\n", FERRY_VERSION, ferry_build_id, ferry_build_date);
	printf("cpu: %s \"%s\" family %u model %u stepping %u\n", cpu_info.vendor,
	       cpu_info.brand[0] ? cpu_info.brand : "?", (unsigned)cpu_info.family,
	       (unsigned)cpu_info.model, (unsigned)cpu_info.stepping);
	printf("virtualization: %s\n", virt);
	printf("simd: SSE2%s%s%s%s (xcr0 0x%llx)\n", cpu_info.sse42 ? " SSE4.2" : "",
	       cpu_info.avx ? " AVX" : "", cpu_info.avx2 ? " AVX2" : "",
	       cpu_info.avx512bw ? " AVX-512BW" : "", (unsigned long long)cpu_info.xcr0);
	if (hv_backend())
		printf("hypervisor: %s (%s)\n", hv_backend()->name, hv_backend_reason());
	return 0;
}

extern uint8_t _ferry_image_start[], _ferry_image_end[]; /* linker.ld */

static int cmd_info_mem(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct pmm_stats s;
	pmm_get_stats(&s);
	printf("memory: total %.1f MiB, free %.1f MiB, used %.1f MiB (%llu pages), reserved %.1f MiB\n",
	       mib(s.total_pages), mib(s.free_pages), mib(s.used_pages), (unsigned long long)s.used_pages,
	       mib(s.reserved_pages));
	printf("  (used: ferry's image, tables and heap; reserved: firmware runtime, ACPI, unusable)\n");
	printf("image: 0x%llx-0x%llx (addresses minus the start resolve with addr2line -e build/ferry.so)\n",
	       (unsigned long long)(uintptr_t)_ferry_image_start, (unsigned long long)(uintptr_t)_ferry_image_end);
	return 0;
}

static int cmd_info_cpus(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	unsigned n = acpi_count_cpus();
	uint32_t r[4];
	x86_cpuid(1, 0, r);
	if (n)
		printf("cpus: %u present (ACPI MADT), 1 running\n", n);
	else
		printf("cpus: count unknown (no ACPI MADT), 1 running\n");
	int windows;
	uint64_t ppm;
	clock_calibration(&windows, &ppm);
	printf("cpu 0: boot CPU, APIC id %u, TSC %.3f MHz%s, calibrated against the PIT "
	       "(%d window%s, error <= %llu ppm)\n",
	       r[1] >> 24, (double)clock_tsc_hz() / 1e6, cpu_info.invariant_tsc ? " (invariant)" : "",
	       windows, windows == 1 ? "" : "s", (unsigned long long)ppm);
	return 0;
}

static int cmd_info_uptime(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("uptime: %.3f s, ticks %llu, spurious interrupts %llu\n", (double)clock_ns() / 1e9,
	       (unsigned long long)clock_ticks, (unsigned long long)trap_spurious_count);
	uint64_t irqs, dropped;
	int on;
	serial_rx_stats(&irqs, &dropped, &on);
	if (on)
		printf("console input: by interrupt, %llu taken, %llu bytes dropped\n", (unsigned long long)irqs,
		       (unsigned long long)dropped);
	else
		printf("console input: polled (no I/O APIC route)\n");
	printf("console output: %llu bytes dropped (nobody read the line)\n",
	       (unsigned long long)serial_tx_dropped());
	return 0;
}

/* Never-ending recursion for `debug fault stack`: each frame holds a
 * buffer so the 64 KiB stack runs into its guard page quickly. */
static int recurse(int n)
{
	volatile char buf[512];
	buf[0] = (char)n;
	if (n > 1000000) /* never reached; keeps the compiler from calling it infinite */
		return 0;
	return recurse(n + 1) + buf[0];
}

static uint8_t data_ret[1] = { 0xc3 }; /* `ret`, in a data (NX) page */

/* Deliberate faults, to see (and test) the crash dump and the protections. */
static int cmd_debug_fault(int argc, char **argv)
{
	const char *kind = argc > 0 ? argv[0] : "pf";
	if (strcmp(kind, "pf") == 0) {
		printf("reading unmapped address 0x%llx\n", 0x00007fff00000000ull);
		(void)*(volatile uint64_t *)(uintptr_t)0x00007fff00000000ull;
	} else if (strcmp(kind, "gp") == 0) {
		(void)*(volatile uint64_t *)(uintptr_t)0x8000000000000000ull; /* non-canonical */
	} else if (strcmp(kind, "ud") == 0) {
		__asm__ volatile("ud2");
	} else if (strcmp(kind, "panic") == 0) {
		panic("requested by 'debug fault panic'");
	} else if (strcmp(kind, "wx") == 0) { /* text is read-only (W^X) */
		*(volatile uint8_t *)(uintptr_t)&cmd_debug_fault = 0xcc;
	} else if (strcmp(kind, "nx") == 0) { /* data is not executable */
		((void (*)(void))(uintptr_t)data_ret)();
	} else if (strcmp(kind, "stack") == 0) { /* guard page, then #DF on its own stack */
		printf("recursing %d\n", recurse(0));
	} else {
		printf("error: unknown fault '%s' (pf, gp, ud, panic, wx, nx, stack)\n", kind);
		return 1;
	}
	return 0;
}

/* Checks that newlib works inside ferry: the heap over the page allocator,
 * formatted output, conversions, and system calls failing with errno. */
static int selftest_heap(char *why, size_t n)
{
	struct pmm_stats before, after;
	pmm_get_stats(&before);
	size_t sz = 48u << 20; /* 48 MiB: beyond any initial heap, forces sbrk */
	uint8_t *p = malloc(sz);
	if (!p)
		return snprintf(why, n, "malloc(48 MiB) failed"), 1;
	memset(p, 0xa5, sz);
	for (size_t i = 0; i < sz; i += 4096)
		if (p[i] != 0xa5)
			return snprintf(why, n, "heap byte %zu reads 0x%02x", i, p[i]), 1;
	pmm_get_stats(&after);
	if (before.free_pages - after.free_pages < sz / PAGE_SIZE)
		return snprintf(why, n, "heap did not take pages from pmm"), 1;
	free(p); /* newlib trims the top of the heap: pages go back to pmm */
	pmm_get_stats(&after);
	if (before.free_pages - after.free_pages > 64)
		return snprintf(why, n, "free kept %llu pages", (unsigned long long)(before.free_pages - after.free_pages)), 1;
	errno = 0;
	void *huge = malloc(64ull << 30); /* past the heap's 16 GiB address range */
	if (huge || errno != ENOMEM)
		return snprintf(why, n, "malloc(64 GiB) gave %p errno %d", huge, errno), 1;
	return 0;
}

static int selftest_printf(char *why, size_t n)
{
	char buf[96];
	snprintf(buf, sizeof(buf), "%llu|%#llx|%-4s|%.3f|%5d|%lld", 18446744073709551615ull,
		 0xdeadbeefcafeull, "ab", 3.14159, -42, -9223372036854775807ll - 1);
	const char *want = "18446744073709551615|0xdeadbeefcafe|ab  |3.142|  -42|-9223372036854775808";
	if (strcmp(buf, want))
		return snprintf(why, n, "got '%s'", buf), 1;
	return 0;
}

static int selftest_strtoull(char *why, size_t n)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull("18446744073709551615", &end, 10);
	if (v != 18446744073709551615ull || *end || errno)
		return snprintf(why, n, "max: %llu errno %d", v, errno), 1;
	v = strtoull("18446744073709551616", &end, 10);
	if (v != 18446744073709551615ull || errno != ERANGE)
		return snprintf(why, n, "overflow: %llu errno %d", v, errno), 1;
	errno = 0;
	v = strtoull("0x1000zz", &end, 0);
	if (v != 0x1000 || strcmp(end, "zz"))
		return snprintf(why, n, "hex: %llu rest '%s'", v, end), 1;
	return 0;
}

int write(int fd, const void *buf, size_t n);
int read(int fd, void *buf, size_t n);
long lseek(int fd, long off, int whence);

static int selftest_syscalls(char *why, size_t n)
{
	errno = 0;
	if (write(7, "x", 1) != -1 || errno != EBADF)
		return snprintf(why, n, "write(7): errno %d", errno), 1;
	errno = 0;
	char c;
	if (read(0, &c, 1) != -1 || errno != EAGAIN)
		return snprintf(why, n, "read(0): errno %d", errno), 1;
	errno = 0;
	if (lseek(1, 0, 0) != -1 || errno != ESPIPE)
		return snprintf(why, n, "lseek(1): errno %d", errno), 1;
	return 0;
}

static int selftest_clock(char *why, size_t n)
{
	uint64_t a = clock_ns();
	clock_delay_ns(2000000);
	uint64_t b = clock_ns();
	if (b - a < 2000000)
		return snprintf(why, n, "2 ms delay measured %llu ns", (unsigned long long)(b - a)), 1;
	return 0;
}

static int selftest_pmm(char *why, size_t n)
{
	struct pmm_stats a, b;
	pmm_get_stats(&a);
	uint8_t *p = pmm_alloc(16, PMM_ZERO);
	if (!p)
		return snprintf(why, n, "pmm_alloc(16) failed"), 1;
	for (size_t i = 0; i < 16 * PAGE_SIZE; i++)
		if (p[i])
			return snprintf(why, n, "PMM_ZERO page byte %zu is 0x%02x", i, p[i]), 1;
	pmm_free(p, 16);
	pmm_get_stats(&b);
	if (a.free_pages != b.free_pages)
		return snprintf(why, n, "free pages %llu before, %llu after", (unsigned long long)a.free_pages,
				(unsigned long long)b.free_pages), 1;
	if (pmm_alloc(b.free_pages + 1, 0))
		return snprintf(why, n, "allocating more than is free succeeded"), 1;
	return 0;
}

/* The codec inside ferry: every XBZRLE path this CPU has (so SIMD state
 * enabled by cpu_init is exercised) round-trips a page, and the page cache
 * works over newlib's heap. */
static int selftest_codec(char *why, size_t n)
{
	static uint8_t old_pg[4096], new_pg[4096], enc[4096], out[4096];
	for (size_t i = 0; i < sizeof(old_pg); i++)
		old_pg[i] = (uint8_t)(i * 7 + (i >> 5));
	memcpy(new_pg, old_pg, sizeof(new_pg));
	for (size_t i = 0; i < sizeof(new_pg); i += 1024) /* the XBZRLE patch's load */
		new_pg[i]++;
	new_pg[3000] ^= 0x5a;
	char paths[64] = "";
	enum xbzrle_impl chosen = xbzrle_get_impl(); /* mig_init's pick: restored after */
	for (int impl = XBZRLE_IMPL_SCALAR; impl < XBZRLE_IMPL_COUNT; impl++) {
		if (!xbzrle_impl_available((enum xbzrle_impl)impl))
			continue;
		xbzrle_set_impl((enum xbzrle_impl)impl);
		int len = xbzrle_encode(old_pg, new_pg, sizeof(old_pg), enc, sizeof(enc));
		memcpy(out, old_pg, sizeof(out));
		int dec = len > 0 ? xbzrle_decode(enc, (size_t)len, out, sizeof(out)) : len;
		xbzrle_set_impl(chosen);
		if (len <= 0 || dec < 0 || memcmp(out, new_pg, sizeof(out)))
			return snprintf(why, n, "%s: encode %d decode %d", xbzrle_impl_name((enum xbzrle_impl)impl),
					len, dec), 1;
		strncat(paths, " ", sizeof(paths) - strlen(paths) - 1);
		strncat(paths, xbzrle_impl_name((enum xbzrle_impl)impl), sizeof(paths) - strlen(paths) - 1);
	}
	struct pcache *pc = pcache_create(64 * 4096, 4096);
	if (!pc)
		return snprintf(why, n, "pcache_create failed"), 1;
	int ok = pcache_insert(pc, 42, new_pg) == 0 && pcache_lookup(pc, 42) &&
		 memcmp(pcache_lookup(pc, 42), new_pg, 4096) == 0 && !pcache_lookup(pc, 43);
	pcache_destroy(pc);
	if (!ok)
		return snprintf(why, n, "pcache insert/lookup"), 1;
	printf("selftest codec: xbzrle paths:%s\n", paths);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(char *why, size_t n);
} selftests[] = {
	{ "heap", selftest_heap },         { "printf", selftest_printf },
	{ "strtoull", selftest_strtoull }, { "syscalls", selftest_syscalls },
	{ "clock", selftest_clock },       { "pmm", selftest_pmm },
	{ "codec", selftest_codec },
};

static int cmd_debug_selftest(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int passed = 0, failed = 0;
	for (size_t i = 0; i < sizeof(selftests) / sizeof(selftests[0]); i++) {
		char why[160] = "";
		if (selftests[i].fn(why, sizeof(why)) == 0) {
			printf("selftest %s: ok\n", selftests[i].name);
			passed++;
		} else {
			printf("selftest %s: FAILED: %s\n", selftests[i].name, why);
			failed++;
		}
	}
	printf("selftest: %d ok, %d failed\n", passed, failed);
	return failed != 0;
}

static int cmd_debug_exit(int argc, char **argv)
{
	unsigned long code = 0;
	if (argc > 0) {
		char *end;
		code = strtoul(argv[0], &end, 0);
		if (*end || code > 127) {
			printf("error: exit code must be 0..127, got '%s'\n", argv[0]);
			return 1;
		}
	}
	x86_outb(QEMU_DEBUG_EXIT_PORT, (uint8_t)code);
	printf("no isa-debug-exit device here; still running\n");
	return 1;
}

static const struct console_cmd sys_cmds[] = {
	{ "info version", "", "ferry version and build, CPU, virtualization features", cmd_info_version },
	{ "info mem", "", "physical memory: total, free, used, reserved", cmd_info_mem },
	{ "info cpus", "", "processors and the TSC", cmd_info_cpus },
	{ "info uptime", "", "time since boot", cmd_info_uptime },
	{ "debug fault", "[pf|gp|ud|panic|wx|nx|stack]", "crash ferry on purpose (shows the crash dump)", cmd_debug_fault },
	{ "debug selftest", "", "check newlib, the heap, the clock and pmm inside ferry", cmd_debug_selftest },
	{ "debug exit", "[CODE]", "leave QEMU through isa-debug-exit with CODE", cmd_debug_exit },
};

void sys_cmds_init(void)
{
	console_register(sys_cmds, sizeof(sys_cmds) / sizeof(sys_cmds[0]));
}
