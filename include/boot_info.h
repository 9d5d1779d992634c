/* boot_info.h: the one struct boot/ hands to the kernel (the boot ABI).
 *
 * Versioned: BOOT_INFO_VERSION changes whenever a field changes meaning;
 * fields are only ever appended. The kernel refuses a struct whose magic,
 * version or size it does not know. */
#ifndef FERRY_BOOT_INFO_H
#define FERRY_BOOT_INFO_H

#include <stdint.h>

#define BOOT_INFO_MAGIC   0x4f464e49544f4f42ull /* "BOOTINFO" */
#define BOOT_INFO_VERSION 2 /* 2: files[] (the guest's kernel, initrd, cmdline) */
#define BOOT_MMAP_MAX     512  /* descriptors; OVMF gives ~100 */
#define BOOT_CMDLINE_MAX  256  /* bytes, NUL included */
#define BOOT_FILES_MAX    3    /* \ferry\: vmlinuz, initrd.img, cmdline */
#define BOOT_FILE_NAME_MAX 16  /* bytes, NUL included */

/* UEFI memory types the kernel cares about (UEFI 2.x, table 7-5). */
enum boot_mem_type {
	BOOT_MEM_RESERVED = 0,
	BOOT_MEM_LOADER_CODE = 1,
	BOOT_MEM_LOADER_DATA = 2,
	BOOT_MEM_BOOT_CODE = 3,
	BOOT_MEM_BOOT_DATA = 4,
	BOOT_MEM_RUNTIME_CODE = 5,
	BOOT_MEM_RUNTIME_DATA = 6,
	BOOT_MEM_CONVENTIONAL = 7,
	BOOT_MEM_UNUSABLE = 8,
	BOOT_MEM_ACPI_RECLAIM = 9,
	BOOT_MEM_ACPI_NVS = 10,
	BOOT_MEM_MMIO = 11,
	BOOT_MEM_MMIO_PORT = 12,
	BOOT_MEM_PAL_CODE = 13,
	BOOT_MEM_PERSISTENT = 14,
	/* From the OS-defined range (0x80000000 and up): pages boot/ allocated
	 * for the guest's files. Neither free memory nor released with the
	 * firmware's: they stay while ferry runs. */
	BOOT_MEM_FERRY_FILES = 0x80000000u,
};

/* One memory range, copied out of the firmware's descriptor (whose size
 * varies by firmware) into a fixed layout. */
struct boot_mem_range {
	uint32_t type;   /* enum boot_mem_type */
	uint32_t reserved;
	uint64_t phys;   /* first byte, 4 KiB aligned */
	uint64_t pages;  /* 4 KiB pages */
	uint64_t attr;   /* UEFI attribute bits */
};
_Static_assert(sizeof(struct boot_mem_range) == 32, "boot_mem_range size");

/* A file boot/ read from the boot volume's \ferry\ folder for the guest
 * (the Linux guest's kernel, initrd and command line), held in
 * BOOT_MEM_FERRY_FILES pages. */
struct boot_file {
	char name[BOOT_FILE_NAME_MAX]; /* "vmlinuz", "initrd.img", "cmdline" */
	uint64_t phys;  /* first byte, 4 KiB aligned */
	uint64_t size;  /* bytes */
};
_Static_assert(sizeof(struct boot_file) == 32, "boot_file size");

struct boot_info {
	uint64_t magic;          /* BOOT_INFO_MAGIC */
	uint32_t version;        /* BOOT_INFO_VERSION */
	uint32_t size;           /* sizeof(struct boot_info) */
	uint64_t image_base;     /* where the firmware loaded ferry.efi */
	uint64_t image_size;     /* bytes, .bss included */
	uint64_t rsdp;           /* physical address of the ACPI RSDP, 0 if none */
	uint32_t rsdp_revision;  /* 0: ACPI 1.0 RSDT only; 2: XSDT present */
	uint32_t mmap_count;     /* valid entries in mmap[] */
	uint32_t exit_attempts;  /* ExitBootServices calls made (stale-key retries + 1) */
	uint32_t reserved0;
	uint64_t tsc_entry;      /* TSC when efi_main started (firmware time) */
	uint64_t tsc_exit;       /* TSC just after ExitBootServices succeeded */
	char cmdline[BOOT_CMDLINE_MAX]; /* load options, ASCII, NUL terminated */
	struct boot_mem_range mmap[BOOT_MMAP_MAX];
	/* version 2 */
	uint32_t file_count;     /* valid entries in files[] */
	uint32_t reserved1;
	uint64_t wall_s;         /* the firmware's clock at boot, seconds since 1970 (UTC assumed); 0 unknown */
	struct boot_file files[BOOT_FILES_MAX];
};

/* The kernel's entry point: boot/ calls it on its own stack once boot
 * services are gone. Never returns. */
void kernel_main(struct boot_info *bi) __attribute__((noreturn));

#endif
