/* linux_boot.c: boot a Linux bzImage with the x86 boot protocol's 64-bit
 * entry (Linux's Documentation/arch/x86/boot.rst): the protected-mode
 * kernel at its preferred address, a zero page (struct boot_params) with
 * the setup header, an e820 map, the command line and the initrd, and the
 * CPU in 64-bit mode on identity-mapped tables with the boot GDT's
 * __BOOT_CS (0x10) and __BOOT_DS (0x18), interrupts off, RSI at the zero
 * page, entering at the kernel's start + 0x200.
 *
 * Guest-physical layout below 64 KiB (which Linux keeps for itself and
 * never allocates): the GDT, the page tables, the zero page, the command
 * line and a scratch stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paging.h"
#include "pmm.h"
#include "vm.h"
#include "vm_devs.h"
#include "x86.h"

#define LB_GDT 0x1000
#define LB_PML4 0x2000
#define LB_PDPT 0x3000
#define LB_PD 0x4000       /* 8 PDs: 8 GiB of 2 MiB pages, HV_SIZE_MAX */
#define LB_ZERO_PAGE 0xc000
#define LB_CMDLINE 0xd000
#define LB_CMDLINE_MAX 4096
#define LB_STACK_TOP 0xfff0
#define BOOT_CS 0x10
#define BOOT_DS 0x18

/* Setup header fields (offsets into the image and into the zero page). */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe   /* 0xAA55 */
#define HDR_JUMP 0x200        /* its second byte: the header's length past 0x202 */
#define HDR_MAGIC 0x202       /* "HdrS" */
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE 0x0c4
#define ZP_EXT_CMD_LINE_PTR 0x0c8
#define ZP_E820_ENTRIES 0x1e8
#define ZP_E820_TABLE 0x2d0
#define HDRS 0x53726448u      /* "HdrS" */
#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01
#define LOADER_UNDEFINED 0xff

enum { E820_RAM = 1, E820_RESERVED = 2 };

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

static uint32_t rd32(const uint8_t *p, size_t off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}

static void wr32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

/* Copy len bytes into guest memory at gpa (inside the guest: checked). */
static void to_guest(struct hv_vm *vm, gpa_t gpa, const void *src, uint64_t len)
{
	const uint8_t *s = src;
	while (len) {
		uint64_t n = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		memcpy(hv_gpa_ptr(vm, gpa, n), s, n);
		gpa += n;
		s += n;
		len -= n;
	}
}

/* Identity map of 0..size with 2 MiB pages, and the boot GDT. */
static void build_tables(struct hv_vm *vm)
{
	uint64_t *pml4 = hv_gpa_ptr(vm, LB_PML4, PAGE_SIZE);
	uint64_t *pdpt = hv_gpa_ptr(vm, LB_PDPT, PAGE_SIZE);
	pml4[0] = LB_PDPT | PTE_P | PTE_RW;
	for (uint64_t a = 0; a < vm->size; a += 2ull << 20) {
		uint64_t gb = a >> 30;
		uint64_t *pd = hv_gpa_ptr(vm, LB_PD + gb * PAGE_SIZE, PAGE_SIZE);
		pdpt[gb] = (LB_PD + gb * PAGE_SIZE) | PTE_P | PTE_RW;
		pd[(a >> 21) & 511] = a | PTE_P | PTE_RW | PTE_PS;
	}
	uint64_t *gdt = hv_gpa_ptr(vm, LB_GDT, 32);
	gdt[BOOT_CS / 8] = 0x00af9b000000ffffull; /* 64-bit code, present, DPL 0 */
	gdt[BOOT_DS / 8] = 0x00cf93000000ffffull; /* flat data, 4 GiB, writable */
}

/* The command line from \ferry\cmdline: its first line, or the default. */
static size_t cmdline(char *out, size_t max)
{
	const struct vm_boot_file *f = vm_boot_file("cmdline");
	const char *src = VM_LINUX_DEFAULT_CMDLINE;
	size_t n = strlen(src);
	if (f) {
		src = f->data;
		for (n = 0; n < f->size && src[n] != '\n' && src[n] != '\r' && src[n]; n++)
			;
	}
	if (n >= max)
		n = max - 1;
	memcpy(out, src, n);
	out[n] = 0;
	return n;
}

int vm_linux_load(struct hv_vm *vm, struct hv_cpu_state *s)
{
	const struct vm_boot_file *k = vm_boot_file("vmlinuz");
	const struct vm_boot_file *rd = vm_boot_file("initrd.img");
	if (!k) {
		printf("error: no guest kernel: put a bzImage at \\ferry\\vmlinuz on the boot volume "
		       "(with \\ferry\\initrd.img and \\ferry\\cmdline if wanted)\n");
		return -1;
	}
	const uint8_t *img = k->data;
	if (k->size < 0x1000 || (img[HDR_BOOT_FLAG] | img[HDR_BOOT_FLAG + 1] << 8) != 0xaa55 ||
	    rd32(img, HDR_MAGIC) != HDRS) {
		printf("error: \\ferry\\vmlinuz (%llu bytes) is not a bzImage (no boot flag or HdrS header)\n",
		       (unsigned long long)k->size);
		return -1;
	}
	unsigned version = img[HDR_VERSION] | img[HDR_VERSION + 1] << 8;
	if (version < 0x20c || !(img[HDR_XLOADFLAGS] & XLF_KERNEL_64) || !(img[HDR_LOADFLAGS] & LOADED_HIGH)) {
		printf("error: \\ferry\\vmlinuz: boot protocol %u.%02u without a 64-bit entry point "
		       "(needs 2.12 and XLF_KERNEL_64)\n", version >> 8, version & 0xff);
		return -1;
	}
	unsigned setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	uint64_t pm_off = (setup_sects + 1) * 512ull;
	uint64_t load, init_size = rd32(img, HDR_INIT_SIZE);
	memcpy(&load, img + HDR_PREF_ADDRESS, 8);
	if (pm_off >= k->size || load < (1ull << 20) || load % PAGE_SIZE) {
		printf("error: \\ferry\\vmlinuz: bad setup size (%u sectors) or load address 0x%llx\n", setup_sects,
		       (unsigned long long)load);
		return -1;
	}
	uint64_t pm_size = k->size - pm_off;
	uint64_t kernel_end = load + (init_size > pm_size ? init_size : pm_size);
	uint64_t rd_size = rd ? rd->size : 0;
	/* The initrd at the top of memory, below the kernel's limit for it. */
	uint64_t rd_limit = (uint64_t)rd32(img, HDR_INITRD_ADDR_MAX) + 1;
	if (rd_limit > vm->size)
		rd_limit = vm->size;
	uint64_t rd_addr = rd_size <= rd_limit ? (rd_limit - rd_size) & ~(uint64_t)(PAGE_SIZE - 1) : 0;
	if (kernel_end > vm->size || (rd && rd_addr < kernel_end)) {
		printf("error: a %llu MiB guest is too small for this kernel (%llu MiB from 0x%llx) and initrd "
		       "(%llu MiB)\n", (unsigned long long)(vm->size >> 20), (unsigned long long)(init_size >> 20),
		       (unsigned long long)load, (unsigned long long)(rd_size >> 20));
		return -1;
	}
	struct vm_platform *p = vm_platform_new();
	if (!p) {
		printf("error: out of memory for the guest's platform\n");
		return -1;
	}

	/* Memory: the kernel, the initrd, the tables. */
	to_guest(vm, load, img + pm_off, pm_size);
	if (rd)
		to_guest(vm, rd_addr, rd->data, rd_size);
	build_tables(vm);
	char *cl = malloc(LB_CMDLINE_MAX);
	uint32_t cl_max = rd32(img, HDR_CMDLINE_SIZE) + 1;
	if (!cl) {
		free(p);
		printf("error: out of memory for the guest's platform\n");
		return -1;
	}
	size_t cl_len = cmdline(cl, cl_max < LB_CMDLINE_MAX ? cl_max : LB_CMDLINE_MAX);
	to_guest(vm, LB_CMDLINE, cl, cl_len + 1);

	/* The zero page: the image's setup header, then what the loader fills. */
	uint8_t *zp = hv_gpa_ptr(vm, LB_ZERO_PAGE, PAGE_SIZE);
	size_t hdr_end = 0x202 + img[HDR_JUMP + 1];
	memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	wr32(zp, HDR_CMD_LINE_PTR, LB_CMDLINE);
	wr32(zp, ZP_EXT_CMD_LINE_PTR, 0);
	wr32(zp, HDR_RAMDISK_IMAGE, (uint32_t)rd_addr);
	wr32(zp, HDR_RAMDISK_SIZE, (uint32_t)rd_size);
	wr32(zp, ZP_EXT_RAMDISK_IMAGE, (uint32_t)(rd_addr >> 32));
	wr32(zp, ZP_EXT_RAMDISK_SIZE, (uint32_t)(rd_size >> 32));
	const struct e820_entry map[] = {
		{ 0, 0x9fc00, E820_RAM },
		{ 0x9fc00, 0x400, E820_RESERVED },   /* where a BIOS keeps its data */
		{ 0xf0000, 0x10000, E820_RESERVED }, /* where a BIOS ROM would be */
		{ 1ull << 20, vm->size - (1ull << 20), E820_RAM },
	};
	memcpy(zp + ZP_E820_TABLE, map, sizeof(map));
	zp[ZP_E820_ENTRIES] = sizeof(map) / sizeof(map[0]);
	free(cl);

	/* The CPU: 64-bit mode, the boot GDT's selectors, interrupts off. */
	hv_initial_state(vm, s);
	memset(s->gpr, 0, sizeof(s->gpr));
	s->gpr[HV_RSI] = LB_ZERO_PAGE;
	s->gpr[HV_RSP] = LB_STACK_TOP;
	s->rip = load + 0x200;
	s->rflags = 0x2;
	s->cr3 = LB_PML4;
	s->cr4 = CR4_PAE;
	s->efer = EFER_LME | (1ull << 10) /* LMA */;
	s->cs = (struct hv_segment){ .selector = BOOT_CS, .attrib = 0xa09b, .limit = 0xffffffff };
	s->ds = (struct hv_segment){ .selector = BOOT_DS, .attrib = 0xc093, .limit = 0xffffffff };
	s->es = s->ss = s->fs = s->gs = s->ds;
	s->gdtr = (struct hv_dtr){ .base = LB_GDT, .limit = 0x1f };
	s->idtr = (struct hv_dtr){ .base = 0, .limit = 0 };

	vm->plat = p;
	printf("guest: linux: kernel %llu KiB at 0x%llx (boot protocol %u.%02u), initrd %llu KiB at 0x%llx, "
	       "command line \"%s\"\n", (unsigned long long)(k->size >> 10), (unsigned long long)load,
	       version >> 8, version & 0xff, (unsigned long long)(rd_size >> 10), (unsigned long long)rd_addr,
	       (const char *)hv_gpa_ptr(vm, LB_CMDLINE, 1));
	return 0;
}
