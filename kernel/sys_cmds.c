/* sys_cmds.c: console commands about ferry and the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "hv.h"
#include "pmm.h"
#include "sys_cmds.h"
#include "trap.h"
#include "version.h"
#include "x86.h"

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

static int cmd_info_mem(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct pmm_stats s;
	pmm_get_stats(&s);
	printf("memory: total %.1f MiB, free %.1f MiB, used %.1f MiB, reserved %.1f MiB\n",
	       mib(s.total_pages), mib(s.free_pages), mib(s.used_pages), mib(s.reserved_pages));
	printf("  (used: ferry's image, tables and heap; reserved: firmware runtime, ACPI, unusable)\n");
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
	printf("cpu 0: boot CPU, APIC id %u, TSC %.3f MHz%s\n", r[1] >> 24,
	       (double)clock_tsc_hz() / 1e6, cpu_info.invariant_tsc ? " (invariant)" : "");
	return 0;
}

static int cmd_info_uptime(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("uptime: %.3f s, ticks %llu, spurious interrupts %llu\n", (double)clock_ns() / 1e9,
	       (unsigned long long)clock_ticks, (unsigned long long)trap_spurious_count);
	return 0;
}

/* Deliberate faults, to see (and test) the crash dump. */
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
	} else {
		printf("error: unknown fault '%s' (pf, gp, ud, panic)\n", kind);
		return 1;
	}
	return 0;
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
	{ "debug fault", "[pf|gp|ud|panic]", "crash ferry on purpose (shows the crash dump)", cmd_debug_fault },
	{ "debug exit", "[CODE]", "leave QEMU through isa-debug-exit with CODE", cmd_debug_exit },
};

void sys_cmds_init(void)
{
	console_register(sys_cmds, sizeof(sys_cmds) / sizeof(sys_cmds[0]));
}
