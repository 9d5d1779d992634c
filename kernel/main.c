/* main.c: kernel_main, the list of init steps, and the main loop. */
#include <stdio.h>

#include "acpi.h"
#include "boot_info.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "gdt.h"
#include "guest_cmds.h"
#include "hv.h"
#include "mig.h"
#include "net.h"
#include "paging.h"
#include "pci.h"
#include "pmm.h"
#include "serial.h"
#include "sys_cmds.h"
#include "trap.h"
#include "vm.h"
#include "x86.h"

/* The guest's files boot/ read from \ferry\ (their pages stay reserved). */
static void vm_boot_files_from(const struct boot_info *bi)
{
	struct vm_boot_file f[BOOT_FILES_MAX];
	unsigned n = 0;
	for (uint32_t i = 0; i < bi->file_count && i < BOOT_FILES_MAX; i++)
		f[n++] = (struct vm_boot_file){ .name = bi->files[i].name,
						.data = (const void *)(uintptr_t)bi->files[i].phys,
						.size = bi->files[i].size };
	vm_set_boot_files(f, n);
	vm_set_wall_time(bi->wall_s);
}

void kernel_main(struct boot_info *bi)
{
	serial_init();                  /* 1. console output, so every later step can report */
	cpu_init();                     /* 2. features; NX, SSE, AVX state enabled */
	gdt_init();                     /* 3. own GDT and TSS (fault stacks) */
	trap_init();                    /* 4. own IDT: from here a fault prints a dump */
	if (bi->magic != BOOT_INFO_MAGIC || bi->version != BOOT_INFO_VERSION || bi->size != sizeof(*bi))
		panic("boot_info: magic 0x%llx version %u size %u; this kernel wants version %u size %u",
		      (unsigned long long)bi->magic, bi->version, bi->size, BOOT_INFO_VERSION,
		      (unsigned)sizeof(*bi));
	setvbuf(stdout, NULL, _IONBF, 0); /* 5. printf straight to serial, no malloc */
	pmm_init(bi);                   /* 6. page allocator: conventional memory only */
	paging_init(bi);                /* 7. own page tables, W^X, guard pages */
	pmm_release_boot_memory();      /* 8. firmware's boot memory is ours now */
	clock_init();                   /* 9. TSC calibrated against the PIT */
	acpi_init(bi);                  /* 10. ACPI tables (MADT, MCFG) */
	clock_start_tick();             /* 11. local APIC timer wakes the idle loop */
	serial_irq_init();              /*     and COM1's input wakes it too */
	hv_init();                      /* 12. hypervisor backend: ept, npt or pte */
	vm_boot_files_from(bi);         /* 12b. the OS guest's files and the wall time */
	sys_cmds_init();                /* 13. console commands */
	guest_cmds_init();              /* 14. guest and dirty-log commands */
	pci_init();                     /* 15. PCI functions and their BARs; `info pci` */
	net_init();                     /* 16. NIC driver, lwIP, network commands */
	mig_init();                     /* 17. live-migration commands */
	qmp_init();                     /*     and the console's JSON mode */
	sys_print_banner(bi->tsc_entry, bi->tsc_exit);
	console_start();

	/* The main loop: poll every source of work, give the guest a time
	 * slice; when none had any, halt until the next interrupt (a received
	 * frame, or the timer tick at the latest). Interrupts are enabled only
	 * inside that halt and the guest's slice. */
	for (;;) {
		int busy = console_poll();
		busy |= net_poll();
		busy |= mig_poll();
		busy |= qmp_poll();
		busy |= vm_poll();
		busy |= hv_run_slice(mig_streaming() ? HV_SLICE_MIGRATING_NS : HV_SLICE_NS);
		if (!busy) {
			if (!net_wake_arm()) {
				x86_sti_hlt();
				x86_cli();
			}
			net_wake_disarm();
		}
	}
}
