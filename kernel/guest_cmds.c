/* guest_cmds.c: the console's guest commands: guest start|stop|cont|quit,
 * guest cpu, info guest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "dirtylog.h"
#include "guest_cmds.h"
#include "hv.h"
#include "hypercall.h"
#include "mig.h"
#include "pmm.h"
#include "vm.h"

#define GUEST_DEFAULT_SIZE (64ull << 20) /* bytes */
#define GUEST_DEFAULT_RATE 100           /* sparse/hotset: writes per ms */

static const char *const state_names[] = {
	[HV_VM_RUNNING] = "running", [HV_VM_STOPPED] = "stopped",
	[HV_VM_EXITED] = "exited", [HV_VM_FAULTED] = "faulted",
};

static int cmd_guest_start(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	uint64_t size = GUEST_DEFAULT_SIZE, rate = GUEST_DEFAULT_RATE, seed = 1;
	int wl = argc >= 1 ? hv_workload_parse(argv[0]) : -1;
	if (wl == GUEST_WL_LINUX) {
		size = VM_LINUX_DEFAULT_SIZE;
		if (argc > 2 || (argc == 2 && hv_parse_size(argv[1], &size) < 0)) {
			printf("usage: guest start linux [SIZE]  (SIZE like 256M or 1G, default 256M)\n");
			return 1;
		}
		return hv_guest_create(size, GUEST_WL_LINUX, 0, 0) < 0;
	}
	if (argc < 1 || argc > 4 || wl < 0 || wl == GUEST_WL_DIRTYTEST || wl == GUEST_WL_EXITBENCH ||
	    (argc >= 2 && hv_parse_size(argv[1], &size) < 0)) {
		printf("usage: guest start WORKLOAD [SIZE] [RATE] [SEED]  (WORKLOAD: linux (the boot volume's "
		       "kernel), synthetic, sparse, hotset, idle, stamp; tests: wild, abi, portio, invd; SIZE like "
		       "64M or 1G, default 64M, 256M for linux)\n");
		return 1;
	}
	char *end;
	if (argc >= 3) {
		rate = strtoull(argv[2], &end, 0);
		if (*end || rate == 0 || rate > 1000000) {
			printf("error: RATE is writes per millisecond, 1..1000000, got '%s'\n", argv[2]);
			return 1;
		}
	}
	if (argc >= 4) {
		seed = strtoull(argv[3], &end, 0);
		if (*end) {
			printf("error: SEED must be a number, got '%s'\n", argv[3]);
			return 1;
		}
	}
	return hv_guest_create(size, (unsigned)wl, seed, rate) < 0;
}

static int cmd_guest_stop(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (hv_guest_stop() < 0)
		return 1;
	printf("guest stopped\n");
	return 0;
}

static int cmd_guest_cont(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	(void)argc;
	(void)argv;
	if (hv_guest_cont() < 0)
		return 1;
	printf("guest running\n");
	return 0;
}

static int cmd_guest_quit(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	(void)argc;
	(void)argv;
	if (!hv_guest()) {
		printf("error: no guest\n");
		return 1;
	}
	hv_guest_destroy();
	printf("guest destroyed\n");
	return 0;
}

/* guest console: ferry's console becomes the guest's serial console. */
static int cmd_guest_console(int argc, char **argv)
{
	(void)argv;
	struct hv_vm *vm = hv_guest();
	if (argc) {
		printf("usage: guest console\n");
		return 1;
	}
	if (!vm || !vm->plat) {
		printf("error: no guest with a console (only 'guest start linux' has one)\n");
		return 1;
	}
	printf("guest console: attached; what it printed so far follows; Ctrl-] detaches\n");
	vm_console_dump();
	vm_console_attach(true);
	return 0;
}

static void print_seg(const char *name, const struct hv_segment *s)
{
	printf("  %-4s sel 0x%04x base 0x%llx limit 0x%x attrib 0x%x\n", name, s->selector,
	       (unsigned long long)s->base, (unsigned)s->limit, (unsigned)s->attrib);
}

/* guest cpu [reload]: show the captured CPU state; with `reload`, write
 * it back (capture -> restore round trip, as migration does). */
static int cmd_guest_cpu(int argc, char **argv)
{
	if (mig_refuse())
		return 1;
	struct hv_vm *vm = hv_guest();
	int reload = argc == 1 && strcmp(argv[0], "reload") == 0;
	if (argc > 1 || (argc == 1 && !reload)) {
		printf("usage: guest cpu [reload]\n");
		return 1;
	}
	if (!vm) {
		printf("error: no guest\n");
		return 1;
	}
	if (vm->state == HV_VM_RUNNING) {
		printf("error: the guest is running; 'guest stop' first\n");
		return 1;
	}
	struct hv_cpu_state *s = pmm_alloc(2, PMM_ZERO);
	if (!s) {
		printf("error: out of memory\n");
		return 1;
	}
	hv_cpu_capture(vm, s);
	printf("cpu state v%u (%s, %u bytes): rip 0x%llx rsp 0x%llx rflags 0x%llx\n", (unsigned)s->version,
	       s->backend, (unsigned)s->size, (unsigned long long)s->rip, (unsigned long long)s->gpr[HV_RSP],
	       (unsigned long long)s->rflags);
	printf("  rax 0x%llx rbx 0x%llx rcx 0x%llx rdx 0x%llx rsi 0x%llx rdi 0x%llx\n",
	       (unsigned long long)s->gpr[HV_RAX], (unsigned long long)s->gpr[HV_RBX],
	       (unsigned long long)s->gpr[HV_RCX], (unsigned long long)s->gpr[HV_RDX],
	       (unsigned long long)s->gpr[HV_RSI], (unsigned long long)s->gpr[HV_RDI]);
	printf("  cr0 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx xcr0 0x%llx\n", (unsigned long long)s->cr0,
	       (unsigned long long)s->cr3, (unsigned long long)s->cr4, (unsigned long long)s->efer,
	       (unsigned long long)s->xcr0);
	print_seg("cs", &s->cs);
	print_seg("ss", &s->ss);
	print_seg("tr", &s->tr);
	printf("  gdtr 0x%llx/0x%x idtr 0x%llx/0x%x\n", (unsigned long long)s->gdtr.base, (unsigned)s->gdtr.limit,
	       (unsigned long long)s->idtr.base, (unsigned)s->idtr.limit);
	int rc = 0;
	if (reload) {
		/* Scramble the live copy first, so a restore that forgot a
		 * field shows up as a broken guest, not a silent pass. */
		memset(vm->gpr, 0xa5, sizeof(vm->gpr));
		char why[160];
		if (hv_cpu_restore(vm, s, why, sizeof(why)) < 0) {
			printf("error: cannot restore the state: %s\n", why);
			rc = 1;
		} else {
			printf("cpu state restored\n");
		}
	}
	pmm_free(s, 2);
	return rc;
}

static int cmd_info_guest(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const struct hv_ops *b = hv_backend();
	printf("backend: %s (%s)\n", b->name, hv_backend_reason());
	static const char *const files[] = { "vmlinuz", "initrd.img", "cmdline" };
	printf("boot files:");
	int nfiles = 0;
	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const struct vm_boot_file *f = vm_boot_file(files[i]);
		if (f)
			printf("%s \\ferry\\%s %llu bytes", nfiles++ ? "," : "", f->name, (unsigned long long)f->size);
	}
	printf("%s\n", nfiles ? "" : " none (no \\ferry\\vmlinuz on the boot volume)");
	struct hv_vm *vm = hv_guest();
	if (!vm) {
		printf("guest: none\n");
		return 0;
	}
	uint64_t up = clock_ns() - vm->start_ns;
	printf("guest: %s, %s, %llu MiB, up %.1f s, ran %.1f s\n", hv_workload_name(vm->workload),
	       state_names[vm->state], (unsigned long long)(vm->size >> 20), (double)up / 1e9,
	       (double)vm->run_ns / 1e9);
	if (vm->throttle_pct) {
		uint64_t since = clock_ns() - vm->throttle_set_ns;
		printf("throttle: %u%% (auto-converge): ran %.2f s of the last %.2f s\n", vm->throttle_pct,
		       (double)(vm->run_ns - vm->throttle_set_run) / 1e9, (double)since / 1e9);
	}
	printf("exits:");
	for (int r = 0; r < HV_EXIT_NREASONS; r++)
		printf(" %s %llu", hv_exit_name((enum hv_exit_reason)r), (unsigned long long)vm->exits[r]);
	printf("\n");
	if (vm->plat)
		vm_info(vm);
	else
		printf("counters: passes %llu, errors %llu, pages written %llu; hypercalls %llu (%llu refused)\n",
		       (unsigned long long)vm->counters[HC_CTR_PASSES],
		       (unsigned long long)vm->counters[HC_CTR_ERRORS],
		       (unsigned long long)vm->counters[HC_CTR_WRITES], (unsigned long long)vm->hypercalls,
		       (unsigned long long)vm->hc_errors);
	struct dirtylog_stats s;
	dirtylog_get_stats(&s);
	if (s.active && s.harvests) {
		double dt = (double)(s.last_at_ns - s.prev_at_ns) / 1e9;
		printf("dirty: %.0f pages/s (last harvest %llu pages)\n", dt > 0 ? (double)s.last_pages / dt : 0.0,
		       (unsigned long long)s.last_pages);
	} else {
		printf("dirty: logging %s\n", s.active ? "on, no harvest yet" : "off");
	}
	return 0;
}

static const struct console_cmd guest_cmds[] = {
	{ "guest start", "WORKLOAD [SIZE] [RATE] [SEED]", "start the guest (linux, synthetic sparse hotset idle stamp)",
	  cmd_guest_start },
	{ "guest stop", "", "pause the guest", cmd_guest_stop },
	{ "guest cont", "", "resume the guest", cmd_guest_cont },
	{ "guest quit", "", "destroy the guest and free its memory", cmd_guest_quit },
	{ "guest cpu", "[reload]", "show (and restore) the stopped guest's CPU state", cmd_guest_cpu },
	{ "guest console", "", "attach to the OS guest's serial console (Ctrl-] detaches)", cmd_guest_console },
	{ "info guest", "", "backend, size, run time, exits by reason, dirty rate", cmd_info_guest },
};

void guest_cmds_init(void)
{
	console_register(guest_cmds, sizeof(guest_cmds) / sizeof(guest_cmds[0]));
	dirtylog_cmds_init();
	guest_bench_init();
}
