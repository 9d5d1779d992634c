/* efi_main.c: UEFI entry. Gathers what the kernel needs from the firmware
 * (memory map, ACPI RSDP, image location, load options) into one
 * struct boot_info, exits boot services, and enters the kernel on its own
 * stack. Nothing else here talks to the firmware. */
#include <efi.h>
#include <efilib.h>

#include "boot_info.h"
#include "x86.h"

static struct boot_info boot_info;

/* Kernel stack, in .bss. Its lowest page is unmapped by the kernel's page
 * tables as a guard, so an overflow faults instead of corrupting .bss. */
#define BOOT_STACK_BYTES (64 * 1024)
uint8_t boot_stack[BOOT_STACK_BYTES + 4096] __attribute__((aligned(4096)));

static EFI_GUID acpi20_guid = ACPI_20_TABLE_GUID;
static EFI_GUID acpi10_guid = ACPI_TABLE_GUID;
static EFI_GUID loaded_image_guid = LOADED_IMAGE_PROTOCOL;

static void boot_fail(const CHAR16 *what, EFI_STATUS st)
{
	Print(L"ferry: boot failed: %s: %r\n", what, st);
	/* Returning would make the firmware try the next boot option (PXE,
	 * tens of seconds): stop here so the operator reads the message. */
	for (;;)
		x86_hlt();
}

static void boot_find_rsdp(EFI_SYSTEM_TABLE *st)
{
	for (UINTN i = 0; i < st->NumberOfTableEntries; i++) {
		EFI_CONFIGURATION_TABLE *t = &st->ConfigurationTable[i];
		if (CompareGuid(&t->VendorGuid, &acpi20_guid) == 0) {
			boot_info.rsdp = (uint64_t)(uintptr_t)t->VendorTable;
			boot_info.rsdp_revision = 2;
			return; /* ACPI 2.0+ wins over 1.0 */
		}
		if (CompareGuid(&t->VendorGuid, &acpi10_guid) == 0 && boot_info.rsdp == 0) {
			boot_info.rsdp = (uint64_t)(uintptr_t)t->VendorTable;
			boot_info.rsdp_revision = 0;
		}
	}
}

/* The guest's files, read from \ferry\ on the volume ferry.efi was loaded
 * from. Each missing file is simply absent (ferry runs without a Linux
 * guest); a file that exists but cannot be read fully stops the boot with
 * the reason, since a truncated kernel would fail much later and obscurely. */
static const CHAR16 *const guest_paths[BOOT_FILES_MAX] = {
	L"\\ferry\\vmlinuz", L"\\ferry\\initrd.img", L"\\ferry\\cmdline",
};
static const char *const guest_names[BOOT_FILES_MAX] = { "vmlinuz", "initrd.img", "cmdline" };

static void boot_read_files(EFI_LOADED_IMAGE *li)
{
	EFI_FILE_HANDLE root = LibOpenRoot(li->DeviceHandle);
	if (!root)
		return; /* not a file system (e.g. loaded over the network) */
	for (int i = 0; i < BOOT_FILES_MAX; i++) {
		EFI_FILE_HANDLE fh = NULL;
		EFI_STATUS st = uefi_call_wrapper(root->Open, 5, root, &fh, (CHAR16 *)guest_paths[i],
						  EFI_FILE_MODE_READ, 0);
		if (EFI_ERROR(st))
			continue;
		EFI_FILE_INFO *info = LibFileInfo(fh);
		if (!info)
			boot_fail(guest_paths[i], EFI_DEVICE_ERROR);
		UINTN size = info->FileSize;
		FreePool(info);
		EFI_PHYSICAL_ADDRESS addr = 0;
		UINTN pages = (size + 4095) / 4096;
		st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateAnyPages,
				       (EFI_MEMORY_TYPE)BOOT_MEM_FERRY_FILES, pages ? pages : 1, &addr);
		if (EFI_ERROR(st))
			boot_fail(guest_paths[i], st);
		UINTN got = size;
		st = uefi_call_wrapper(fh->Read, 3, fh, &got, (void *)(uintptr_t)addr);
		uefi_call_wrapper(fh->Close, 1, fh);
		if (EFI_ERROR(st) || got != size)
			boot_fail(guest_paths[i], EFI_ERROR(st) ? st : EFI_END_OF_FILE);
		struct boot_file *f = &boot_info.files[boot_info.file_count++];
		for (int j = 0; guest_names[i][j]; j++)
			f->name[j] = guest_names[i][j];
		f->phys = addr;
		f->size = size;
		Print(L"ferry: read %s (%ld bytes)\n", guest_paths[i], (UINT64)size);
	}
	uefi_call_wrapper(root->Close, 1, root);
}

/* Seconds since 1970 of the firmware's clock (days from the civil date,
 * proleptic Gregorian), for the guest's CMOS clock. 0 if unreadable. */
static void boot_wall_time(void)
{
	EFI_TIME t;
	if (EFI_ERROR(uefi_call_wrapper(RT->GetTime, 2, &t, NULL)) || t.Month < 1 || t.Month > 12)
		return;
	int64_t y = (int64_t)t.Year - (t.Month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (t.Month > 2 ? t.Month - 3 : t.Month + 9) + 2) / 5 + t.Day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	boot_info.wall_s = (uint64_t)(days * 86400 + t.Hour * 3600 + t.Minute * 60 + t.Second);
}

static void boot_image_info(EFI_HANDLE image)
{
	EFI_LOADED_IMAGE *li = NULL;
	EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &loaded_image_guid,
					  (void **)&li);
	if (EFI_ERROR(st))
		boot_fail(L"HandleProtocol(LoadedImage)", st);
	boot_info.image_base = (uint64_t)(uintptr_t)li->ImageBase;
	boot_info.image_size = li->ImageSize;

	/* Load options are UCS-2; keep the ASCII subset, replace the rest. */
	const CHAR16 *opt = li->LoadOptions;
	UINTN n = li->LoadOptionsSize / sizeof(CHAR16), j = 0;
	for (UINTN i = 0; opt && i < n && opt[i] && j + 1 < BOOT_CMDLINE_MAX; i++)
		boot_info.cmdline[j++] = opt[i] < 0x80 ? (char)opt[i] : '?';
	boot_info.cmdline[j] = 0;
	boot_read_files(li);
	boot_wall_time();
}

/* Copy the firmware's descriptors (DescriptorSize varies by firmware) into
 * the fixed boot_mem_range layout. Runs after ExitBootServices: no calls. */
static void boot_copy_mmap(const uint8_t *map, UINTN map_size, UINTN desc_size)
{
	uint32_t n = 0;
	for (UINTN off = 0; off + desc_size <= map_size && n < BOOT_MMAP_MAX; off += desc_size) {
		const EFI_MEMORY_DESCRIPTOR *d = (const void *)(map + off);
		boot_info.mmap[n].type = d->Type;
		boot_info.mmap[n].phys = d->PhysicalStart;
		boot_info.mmap[n].pages = d->NumberOfPages;
		boot_info.mmap[n].attr = d->Attribute;
		n++;
	}
	boot_info.mmap_count = n;
}

/* ExitBootServices needs the key of the current memory map; any allocation
 * (including one inside Print) changes it, so the loop below does nothing
 * between GetMemoryMap and ExitBootServices, and on a stale key (the
 * firmware's own events may change the map) frees, grows and retries. */
static void boot_exit_services(EFI_HANDLE image)
{
	for (uint32_t attempt = 1; attempt <= 8; attempt++) {
		UINTN size = 0, key = 0, desc_size = 0;
		UINT32 desc_ver = 0;
		EFI_STATUS st = uefi_call_wrapper(BS->GetMemoryMap, 5, &size, NULL, &key,
						  &desc_size, &desc_ver);
		if (st != EFI_BUFFER_TOO_SMALL)
			boot_fail(L"GetMemoryMap(size)", st);
		size += 16 * desc_size; /* room for the pool allocation itself */
		uint8_t *map = NULL;
		st = uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, size, (void **)&map);
		if (EFI_ERROR(st))
			boot_fail(L"AllocatePool(memory map)", st);
		st = uefi_call_wrapper(BS->GetMemoryMap, 5, &size, (EFI_MEMORY_DESCRIPTOR *)map,
				       &key, &desc_size, &desc_ver);
		if (EFI_ERROR(st))
			boot_fail(L"GetMemoryMap", st);
		st = uefi_call_wrapper(BS->ExitBootServices, 2, image, key);
		if (st == EFI_SUCCESS) {
			boot_info.tsc_exit = x86_rdtsc();
			boot_info.exit_attempts = attempt;
			boot_copy_mmap(map, size, desc_size);
			return;
		}
		if (st != EFI_INVALID_PARAMETER) /* anything but a stale key */
			boot_fail(L"ExitBootServices", st);
		uefi_call_wrapper(BS->FreePool, 1, map);
	}
	boot_fail(L"ExitBootServices (map key kept changing)", EFI_ABORTED);
}

/* Called by gnu-efi's crt0 with the SysV ABI: must not be EFIAPI. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab);
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	uint64_t tsc_entry = x86_rdtsc();

	InitializeLib(image, systab);
	boot_info.magic = BOOT_INFO_MAGIC;
	boot_info.version = BOOT_INFO_VERSION;
	boot_info.size = sizeof(boot_info);
	boot_info.tsc_entry = tsc_entry;
	/* The boot manager arms a 5 minute watchdog; ferry runs for days. */
	uefi_call_wrapper(BS->SetWatchdogTimer, 4, 0, 0, 0, NULL);
	boot_image_info(image);
	boot_find_rsdp(systab);
	Print(L"ferry: leaving UEFI\n");

	boot_exit_services(image);

	/* From here on: no firmware, interrupts off until the kernel has its
	 * own IDT. Switch to the kernel stack and never come back. */
	x86_cli();
	uint64_t top = (uint64_t)(uintptr_t)(boot_stack + sizeof(boot_stack));
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %1, %%rdi\n\t"
			 "call kernel_main\n\t"
			 "ud2"
			 :
			 : "r"(top), "r"(&boot_info)
			 : "memory");
	__builtin_unreachable();
}
