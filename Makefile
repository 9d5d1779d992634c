# ferry: one Makefile for the EFI image, the host-built codec, its tests,
# fuzzers, benchmarks and tools. `make V=1` shows full commands.

.DEFAULT_GOAL := all
SHELL := /bin/bash

V ?= 0
ifeq ($(V),1)
Q :=
else
Q := @
endif

BUILD := build
HOST := $(BUILD)/host

# ---------------------------------------------------------------------------
# Host side: codec/ compiled natively for unit tests, fuzzers, benchmarks and
# the host tools. The same sources go into the kernel (see below).

HOST_CC ?= gcc
HOST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Iinclude -MMD -MP
HOST_LDLIBS :=

# Portable sources shared by kernel and host (explicit list).
CODEC_SRCS := codec/xbzrle.c codec/xbzrle_simd.c codec/pcache.c
CODEC_SRCS += codec/crc32c.c codec/digest.c codec/digest_scalar.c codec/digest_vector.c \
	codec/stream_names.c codec/stream_writer.c codec/stream_reader.c codec/stream_check.c \
	codec/stream_apply.c codec/mig_policy.c codec/qmp.c

# Host unit tests: tests/unit/NAME.c -> $(HOST)/tests/NAME, linked with the codec.
UNIT_TESTS := test_xbzrle test_uleb128 test_xbzrle_paths test_pcache test_pcache_reserve
UNIT_TESTS += test_crc32c test_stream_rt test_stream_reader test_stream_whole test_stream_switchover
UNIT_TESTS += test_stream_apply
UNIT_TESTS += net_inet_sum net_lro
UNIT_TESTS += test_mig_policy test_mig_xbzrle test_digest test_qmp
# The migration engine on the simulator (tests/sim/; SIM_TESTS' link rule).
UNIT_TESTS += test_mig_engine test_mig_failover

# Benchmarks: tests/bench/NAME.c -> $(HOST)/bench/NAME (-O2 -march=native).
BENCHES := bench_xbzrle bench_pcache
BENCHES += bench_stream

# libFuzzer targets: tests/fuzz/NAME.c -> $(HOST)/fuzz/NAME (clang, ASan, UBSan).
FUZZERS := fuzz_xbzrle_decode fuzz_xbzrle_roundtrip
FUZZERS += fuzz_stream_reader fuzz_qmp_line

# Host tools: tools/NAME.c -> $(HOST)/tools/NAME.
TOOLS :=
TOOLS += ferry-stream
# A tool of several files lists them and gets its own link rule (below).
FERRY_STREAM_SRCS := tools/ferry-stream.c tools/fstream_io.c tools/fstream_dump.c \
	tools/fstream_net.c tools/fstream_gen.c

# ---------------------------------------------------------------------------
# The EFI image: boot/ + kernel/ + codec/, linked with gnu-efi and newlib.
# newlib and lwIP are fetched/built by tools/ into FERRY_CACHE (outside the
# tree) and reused while present.

FERRY_CACHE ?= $(or $(HOME),/root)/.cache/ferry
TC_BIN := $(FERRY_CACHE)/toolchain-v1/bin
NEWLIB := $(FERRY_CACHE)/newlib-3.3.0-v1/x86_64-elf
# lwIP 2.1.3 with tools/lwip-patches applied; bump the suffix whenever the
# patch set changes.
LWIP_NAME := lwip-2.1.3-ferry3
LWIP := $(FERRY_CACHE)/$(LWIP_NAME)
KCC := $(TC_BIN)/x86_64-elf-gcc
LIBGCC := $(shell gcc -print-libgcc-file-name)
EFI_LIB := /usr/lib
K := $(BUILD)/k

# -fbuiltin: the toolchain wrapper's -ffreestanding also turns off every
# builtin, so even an 8-byte memcpy became a call into newlib (whose small
# copies use rep movsb, one byte per step under QEMU TCG). newlib is a full
# C library here, so the builtins' semantics hold.
KCFLAGS := -std=gnu11 -O2 -g -fbuiltin -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
	-isystem $(NEWLIB)/include -isystem $(K)/sysinc -Iinclude -Inet -isystem $(LWIP)/src/include -MMD -MP
# lwIP's own sources: its code, not ours, so only -Wall, no -Werror.
LWIP_CFLAGS := -std=gnu11 -O2 -g -fbuiltin -Wall -fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
	-isystem $(NEWLIB)/include -Inet -I$(LWIP)/src/include -MMD -MP
BOOT_CFLAGS := $(KCFLAGS) -isystem /usr/include/efi -isystem /usr/include/efi/x86_64 \
	-DGNU_EFI_USE_MS_ABI -maccumulate-outgoing-args

BOOT_SRCS := boot/efi_main.c
KERNEL_SRCS := kernel/main.c kernel/serial.c kernel/cpu.c kernel/gdt.c kernel/trap.c \
	kernel/trap_entry.S kernel/pmm.c kernel/paging.c kernel/clock.c kernel/acpi.c \
	kernel/console.c kernel/qmp_cmds.c kernel/qmp_mig.c kernel/sys_cmds.c kernel/syscalls.c kernel/version.c
# The guest part (issue 5): hypervisor backends, dirty logging, guest commands.
KERNEL_SRCS += kernel/hv/hv.c kernel/hv/hv_entry.S kernel/hv/pte.c kernel/hv/svm.c kernel/hv/vmx.c \
	kernel/dirtylog.c kernel/dirtylog_cmds.c kernel/guest_cmds.c kernel/guest_bench.c kernel/guest/image.S
# The virtual platform an OS guest sees, and the Linux loader.
KERNEL_SRCS += kernel/vm/vm.c kernel/vm/linux_boot.c kernel/vm/cpuid.c kernel/vm/msr.c kernel/vm/pic.c \
	kernel/vm/pit.c kernel/vm/uart.c kernel/vm/cmos.c kernel/vm/vm_state.c
# The network (issue 4): PCI, NIC drivers, lwIP glue, network commands.
KERNEL_SRCS += kernel/pci.c kernel/ioapic.c net/virtio_net.c net/e1000.c net/nic.c net/lwip_port.c net/netif.c \
	net/inet_sum.c net/lro.c net/net_cmds.c net/net_bench.c net/net_ping.c
# Live migration: the transport over lwIP TCP, CPU-state checks, the engine.
# The engine (kernel/mig/) is written against mig/mig_env.h, which
# kernel/mig_env.c and net/mig_tcp.c implement here (tests/sim/ on the host).
MIG_ENGINE_SRCS := kernel/mig/mig_engine.c kernel/mig/mig_src.c kernel/mig/mig_src_rounds.c \
	kernel/mig/mig_src_switch.c kernel/mig/mig_dst.c kernel/mig/mig_verify.c
KERNEL_SRCS += net/mig_tcp.c kernel/hv/hv_check.c kernel/mig_cpu.c kernel/mig_env.c kernel/mig_pick.c \
	kernel/mig_cmds.c kernel/mig_params.c $(MIG_ENGINE_SRCS)

# lwIP 2.1.3 (NO_SYS=1, IPv4, raw API): the files of its COREFILES/CORE4FILES
# lists we use, plus the Ethernet layer. Built with relaxed warnings into
# $(K)/lwip/ from $(LWIP)/src.
LWIP_SRCS := core/init.c core/def.c core/inet_chksum.c core/ip.c core/mem.c core/memp.c \
	core/netif.c core/pbuf.c core/raw.c core/stats.c core/sys.c core/tcp.c core/tcp_in.c \
	core/tcp_out.c core/timeouts.c core/udp.c core/ipv4/etharp.c core/ipv4/icmp.c \
	core/ipv4/ip4_frag.c core/ipv4/ip4.c core/ipv4/ip4_addr.c netif/ethernet.c
LWIP_OBJS := $(LWIP_SRCS:%.c=$(K)/lwip/%.o)
LWIP_STAMP := $(LWIP)/.done

KOBJS := $(BOOT_SRCS:%.c=$(K)/%.o) $(patsubst %,$(K)/%.o,$(basename $(KERNEL_SRCS) $(CODEC_SRCS))) \
	$(LWIP_OBJS)

FERRY_BUILD_ID := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
FERRY_BUILD_DATE := $(shell date -u +%Y-%m-%d)

$(NEWLIB)/lib/libc.a:
	$(Q)bash tools/build-newlib.sh $(FERRY_CACHE)
$(KCC): $(NEWLIB)/lib/libc.a
$(LWIP_STAMP):
	$(Q)bash tools/fetch-lwip.sh $(FERRY_CACHE) $(LWIP_NAME)

# lwIP's sources appear only once the fetch has run: tell make that the
# fetch is what makes them, or on an empty cache it finds "no rule".
$(LWIP_SRCS:%=$(LWIP)/src/%): | $(LWIP_STAMP) ;
# Every kernel object depends on which patch level it was built against
# ($(K)/lwip-name, rewritten only when LWIP_NAME changes): another level
# may change lwIP's structures, so nothing built against one level's
# headers may be linked with the other's.
$(K)/lwip-name: FORCE
	@mkdir -p $(dir $@)
	@echo '$(LWIP_NAME)' | cmp -s - $@ || echo '$(LWIP_NAME)' > $@
$(K)/lwip/%.o: $(LWIP)/src/%.c $(KCC) $(K)/lwip-name | $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      lwip/$*.c")
	$(Q)$(KCC) $(LWIP_CFLAGS) -c $< -o $@

# The host headers the kernel may see: xxHash (header-only, Debian's
# libxxhash-dev), exposed alone so -nostdinc keeps the rest of /usr/include out.
$(K)/sysinc/xxhash.h: /usr/include/xxhash.h
	@mkdir -p $(dir $@)
	$(Q)ln -sf $< $@
$(KCC): $(K)/sysinc/xxhash.h
# jsmn (Debian's libjsmn-dev, one header) for the console's JSON mode.
$(K)/sysinc/jsmn.h: /usr/include/jsmn.h
	@mkdir -p $(dir $@)
	$(Q)ln -sf $< $@
$(KCC): $(K)/sysinc/jsmn.h

# Guest workload images: freestanding position-independent code linked at 0
# into one flat binary that ferry copies into guest memory (hypercall.h).
# Absolute relocations would break under pte (loaded at mem_base): refused.
GUEST_SRCS := kernel/guest/entry.S kernel/guest/workloads.c
GUEST_CFLAGS := -std=gnu11 -O2 -g0 -Wall -Wextra -Werror -mgeneral-regs-only -fpie -fvisibility=hidden -fno-jump-tables \
	-fno-tree-loop-distribute-patterns -fno-asynchronous-unwind-tables -Iinclude -MMD -MP
GUEST_OBJS := $(patsubst %,$(K)/g/%.o,$(basename $(GUEST_SRCS)))
$(K)/g/%.o: %.c $(KCC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTCC $<")
	$(Q)$(KCC) $(GUEST_CFLAGS) -c $< -o $@
$(K)/g/%.o: %.S $(KCC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTAS $<")
	$(Q)$(KCC) $(GUEST_CFLAGS) -c $< -o $@
$(K)/guest.bin: $(GUEST_OBJS) kernel/guest/guest.ld
	@$(if $(Q),echo "  GUESTLD $@")
	$(Q)if readelf -rW $(GUEST_OBJS) | grep -E 'R_X86_64_(64|32|32S|GOT[A-Z0-9]*) '; then \
		echo "error: guest code needs absolute relocations (see above)"; exit 1; fi
	$(Q)ld -nostdlib -static -z noexecstack --no-warn-rwx-segments -T kernel/guest/guest.ld -o $(K)/guest.elf $(GUEST_OBJS)
	$(Q)objcopy -O binary $(K)/guest.elf $@
	$(Q)test $$(stat -c %s $@) -le 131072 || { echo "error: $@ exceeds GUEST_IMAGE_MAX"; exit 1; }
$(K)/kernel/guest/image.o: kernel/guest/image.S $(K)/guest.bin $(KCC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AS      $<")
	$(Q)$(KCC) $(KCFLAGS) -DGUEST_BIN='"$(K)/guest.bin"' -c $< -o $@

$(K)/boot/%.o: boot/%.c $(KCC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(KCC) $(BOOT_CFLAGS) -c $< -o $@

$(K)/%.o: %.c $(KCC) $(K)/lwip-name | $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(KCC) $(KCFLAGS) -c $< -o $@

$(K)/%.o: %.S $(KCC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AS      $<")
	$(Q)$(KCC) $(KCFLAGS) -c $< -o $@

# The build id changes with every commit: only version.o depends on it.
$(K)/kernel/version.o: kernel/version.c $(KCC) $(K)/build-id
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(KCC) $(KCFLAGS) -DFERRY_BUILD_ID='"$(FERRY_BUILD_ID)"' \
		-DFERRY_BUILD_DATE='"$(FERRY_BUILD_DATE)"' -c $< -o $@
$(K)/build-id: FORCE
	@mkdir -p $(dir $@)
	@echo '$(FERRY_BUILD_ID) $(FERRY_BUILD_DATE)' | cmp -s - $@ || echo '$(FERRY_BUILD_ID) $(FERRY_BUILD_DATE)' > $@

# libefi.a defines memcpy/memset too: a copy with them weak lets newlib's win.
$(K)/libefi-weak.a: $(EFI_LIB)/libefi.a
	@mkdir -p $(dir $@)
	$(Q)objcopy -W memcpy -W memset $< $@

$(BUILD)/ferry.so: $(KOBJS) $(K)/libefi-weak.a linker.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)ld -nostdlib -znocombreloc -shared -Bsymbolic -z noexecstack -T linker.ld \
		-o $@ $(EFI_LIB)/crt0-efi-x86_64.o $(KOBJS) --start-group $(NEWLIB)/lib/libc.a \
		$(NEWLIB)/lib/libm.a $(LIBGCC) $(K)/libefi-weak.a $(EFI_LIB)/libgnuefi.a --end-group
	$(Q)if readelf -r $@ | grep -v -E 'R_X86_64_RELATIVE|R_X86_64_NONE|^$$|^Relocation section|Offset' | grep -q .; then \
		echo "error: $@ has relocations other than R_X86_64_RELATIVE:"; readelf -r $@ | grep -v RELATIVE | head; exit 1; fi

$(BUILD)/ferry.efi: $(BUILD)/ferry.so
	@$(if $(Q),echo "  EFI     $@")
	$(Q)objcopy -j .text -j .rodata -j .sdata -j .data -j .dynamic -j .dynsym -j .rel \
		-j .rela -j '.rel.*' -j '.rela.*' -j .reloc -j .bss --target efi-app-x86_64 \
		--subsystem=10 $< $@
	@mkdir -p $(BUILD)/esp/EFI/BOOT && cp $@ $(BUILD)/esp/EFI/BOOT/BOOTX64.EFI

# El Torito EFI ISO for Bochs (which cannot use QEMU's fat: directories).
$(BUILD)/ferry.iso: $(BUILD)/ferry.efi
	@$(if $(Q),echo "  ISO     $@")
	$(Q)rm -f $(BUILD)/efiboot.img && mformat -i $(BUILD)/efiboot.img -C -f 2880 :: && \
		mmd -i $(BUILD)/efiboot.img ::/EFI ::/EFI/BOOT && \
		mcopy -i $(BUILD)/efiboot.img $< ::/EFI/BOOT/BOOTX64.EFI && \
		mkdir -p $(BUILD)/iso && cp $(BUILD)/efiboot.img $(BUILD)/iso/ && \
		xorriso -as mkisofs -quiet -o $@ -e efiboot.img -no-emul-boot $(BUILD)/iso 2>$(BUILD)/xorriso.log \
		|| { cat $(BUILD)/xorriso.log; exit 1; }

# ---------------------------------------------------------------------------
# The Linux guest image (build/linux/): Debian 12's stock kernel and
# busybox-static, fetched by tools/fetch-linux.sh into FERRY_CACHE (its
# resolution of the current package, ~1 s, runs on every build; the files
# here change only when Debian's do), and an initramfs of busybox, /init and
# the tests/linux programs. ferry boots it from \ferry\ on its ESP.
LX := $(BUILD)/linux
LINUX_PROGS := stamp sparse idle synthetic
LINUX_PROG_BINS := $(LINUX_PROGS:%=$(LX)/bin/%)
# Static, so the initramfs needs no shared libraries; stripped (-s) to keep
# the image small.
LINUX_PROG_CFLAGS := -std=gnu11 -O2 -static -s -Wall -Wextra -Werror -MMD -MP
# The kernel's command line, read by ferry from \ferry\cmdline:
#   console=ttyS0  the kernel's messages and /dev/console on the 16550 at
#                  0x3F8 (IRQ 4), which is where /init's shell talks;
#   nolapic        use the 8259 PIC and the 8254 PIT only. Without it, a
#                  CPU that reports an APIC gets its local APIC used even
#                  with no ACPI or MP tables ("virtual wire" mode), and ferry
#                  gives the guest no local APIC;
#   acpi=off       ferry's platform has no ACPI tables: without it the
#                  kernel reports a missing RSDP as a firmware bug.
# `make linux-guest LINUX_CMDLINE='...'` writes another.
LINUX_CMDLINE ?= console=ttyS0 nolapic acpi=off

$(LX)/vmlinuz $(LX)/busybox $(LX)/versions &: FORCE
	$(Q)bash tools/fetch-linux.sh $(FERRY_CACHE) $(LX)

$(LX)/bin/%: tests/linux/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUESTCC $@")
	$(Q)$(HOST_CC) $(LINUX_PROG_CFLAGS) -o $@ $<

$(LX)/initrd.img: tools/mkinitrd.py tests/linux/init $(LX)/busybox $(LINUX_PROG_BINS)
	@$(if $(Q),echo "  INITRD  $@")
	$(Q)/usr/bin/python3 tools/mkinitrd.py $@ init=tests/linux/init bin/busybox=$(LX)/busybox \
		$(foreach p,$(LINUX_PROGS),bin/$(p)=$(LX)/bin/$(p))

$(LX)/cmdline: FORCE
	@mkdir -p $(dir $@)
	@echo '$(LINUX_CMDLINE)' | cmp -s - $@ || echo '$(LINUX_CMDLINE)' > $@

.PHONY: linux-guest
linux-guest: $(LX)/vmlinuz $(LX)/initrd.img $(LX)/cmdline

# The same with the Linux guest in \ferry\ (Bochs tests of an OS guest
# under ept): a 32 MiB FAT boot image, which El Torito emulates no more
# than as a plain image (no-emulation mode).
$(BUILD)/ferry-linux.iso: $(BUILD)/ferry.efi $(LX)/vmlinuz $(LX)/initrd.img $(LX)/cmdline
	@$(if $(Q),echo "  ISO     $@")
	$(Q)rm -f $(BUILD)/efiboot-linux.img && mformat -i $(BUILD)/efiboot-linux.img -C -T 65536 -h 64 -s 32 :: && \
		mmd -i $(BUILD)/efiboot-linux.img ::/EFI ::/EFI/BOOT ::/ferry && \
		mcopy -i $(BUILD)/efiboot-linux.img $< ::/EFI/BOOT/BOOTX64.EFI && \
		mcopy -i $(BUILD)/efiboot-linux.img $(LX)/vmlinuz $(LX)/initrd.img $(LX)/cmdline ::/ferry/ && \
		mkdir -p $(BUILD)/iso-linux && cp $(BUILD)/efiboot-linux.img $(BUILD)/iso-linux/ && \
		xorriso -as mkisofs -quiet -o $@ -e efiboot-linux.img -no-emul-boot $(BUILD)/iso-linux \
		2>$(BUILD)/xorriso.log || { cat $(BUILD)/xorriso.log; exit 1; }

.PHONY: efi iso linux-iso run FORCE
linux-iso: $(BUILD)/ferry-linux.iso
efi: $(BUILD)/ferry.efi
iso: $(BUILD)/ferry.iso
FORCE:

QEMU := qemu-system-x86_64
QEMU_BASE := -machine q35 -accel tcg -m 256M -nodefaults -display none \
	-bios /usr/share/ovmf/OVMF.fd -device isa-debug-exit,iobase=0xf4,iosize=0x04

# One instance, its console on this terminal (Ctrl-A X quits QEMU).
run: deps $(BUILD)/ferry.efi
	$(QEMU) $(QEMU_BASE) -cpu max -drive format=raw,file=fat:rw:$(BUILD)/esp -serial mon:stdio

# Integration tests (pytest), run by `make check` after the unit tests.
PYTEST := /usr/bin/python3 -m pytest

HOST_CODEC_OBJS = $(CODEC_SRCS:%.c=$(HOST)/%.o)

$(HOST)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $<")
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -c $< -o $@

$(HOST)/tests/%: $(HOST)/tests/unit/%.o $(HOST_CODEC_OBJS)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -o $@ $^ -lcmocka $(HOST_LDLIBS)

# Benchmarks and fuzzers compile their sources in one command (different
# flags from the unit build), so they depend on every header by hand.
CODEC_HDRS = $(wildcard include/*.h codec/*.h)

BENCH_CFLAGS := $(filter-out -O2,$(HOST_CFLAGS)) -O2 -march=native
$(HOST)/bench/%: tests/bench/%.c $(CODEC_SRCS) $(CODEC_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(HOST_CC) $(BENCH_CFLAGS) -o $@ $(filter %.c,$^) $(HOST_LDLIBS)

FUZZ_CC := clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Iinclude -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
$(HOST)/fuzz/%: tests/fuzz/%.c $(CODEC_SRCS) $(CODEC_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

$(HOST)/tools/%: $(HOST)/tools/%.o $(HOST_CODEC_OBJS)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -o $@ $^ $(HOST_LDLIBS)

$(HOST)/tools/ferry-stream: $(FERRY_STREAM_SRCS:%.c=$(HOST)/%.o) $(HOST_CODEC_OBJS)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -o $@ $^ $(HOST_LDLIBS)

# net/inet_sum.c is portable too, tested on the host on its own.
$(HOST)/tests/net_inet_sum: $(HOST)/tests/unit/net_inet_sum.o $(HOST)/net/inet_sum.o
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -o $@ $^ -lcmocka $(HOST_LDLIBS)
$(HOST)/tests/net_lro: $(HOST)/tests/unit/net_lro.o $(HOST)/net/lro.o $(HOST)/net/inet_sum.o
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -o $@ $^ -lcmocka $(HOST_LDLIBS)

# ---------------------------------------------------------------------------
# The engine on the host (tests/sim/): kernel/mig/ and the codec built as a
# shared object, loaded twice by the simulator (one copy per end, each with
# its own statics), its environment (mig_env.h, mig_tcp.h) answered by
# tests/sim/. The scaled build, where a page stands for 1024 (the 1 TiB
# table), batches one page, buffers four and scales the verify deadline.
SIM := $(HOST)/sim
SIM_PIC_FLAGS := $(HOST_CFLAGS) -fPIC
SIM_SCALED_DEFS := -DSRC_BATCH=1 -DSRC_OBUF_BYTES=16384 -DMIG_SIM_SCALE=1024
SIM_ENGINE_SRCS := $(MIG_ENGINE_SRCS) $(CODEC_SRCS)
SIM_SRCS := tests/sim/sim_world.c tests/sim/sim_env.c tests/sim/sim_link.c kernel/mig_cpu.c
SIM_OBJS := $(SIM_SRCS:%.c=$(SIM)/obj/%.o)
$(SIM)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $< (pic)")
	$(Q)$(HOST_CC) $(SIM_PIC_FLAGS) -c $< -o $@
$(SIM)/scaled/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $< (scaled)")
	$(Q)$(HOST_CC) $(SIM_PIC_FLAGS) $(SIM_SCALED_DEFS) -c $< -o $@
$(SIM)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $<")
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -Ikernel -Itests/sim -c $< -o $@
# -Bsymbolic: each copy's references to its own symbols stay its own.
$(SIM)/libmigengine.so: $(SIM_ENGINE_SRCS:%.c=$(SIM)/pic/%.o)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -shared -Wl,-Bsymbolic -o $@ $^
$(SIM)/libmigengine-scaled.so: $(SIM_ENGINE_SRCS:%.c=$(SIM)/scaled/%.o)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -shared -Wl,-Bsymbolic -o $@ $^
$(SIM)/%-a.so: $(SIM)/%.so
	$(Q)cp $< $@
$(SIM)/%-b.so: $(SIM)/%.so
	$(Q)cp $< $@
SIM_LIBS := $(foreach v,libmigengine libmigengine-scaled,$(SIM)/$(v)-a.so $(SIM)/$(v)-b.so)
# A program on the simulator exports the environment to the engine's copies.
SIM_TESTS := test_mig_engine test_mig_failover
$(SIM_TESTS:%=$(HOST)/tests/%): $(HOST)/tests/%: $(SIM)/obj/tests/unit/%.o $(SIM_OBJS) $(HOST_CODEC_OBJS) | $(SIM_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -rdynamic -o $@ $^ -lcmocka -ldl $(HOST_LDLIBS)
$(HOST)/bench/mig_sim: $(SIM)/obj/tests/bench/mig_sim.o $(SIM_OBJS) $(HOST_CODEC_OBJS) | $(SIM_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -rdynamic -o $@ $^ -ldl $(HOST_LDLIBS)

UNIT_BINS := $(UNIT_TESTS:%=$(HOST)/tests/%)
BENCH_BINS := $(BENCHES:%=$(HOST)/bench/%)
FUZZ_BINS := $(FUZZERS:%=$(HOST)/fuzz/%)
TOOL_BINS := $(TOOLS:%=$(HOST)/tools/%)

# Seconds each fuzzer runs in `make check`; `make fuzz FUZZ_SECONDS=3600`.
FUZZ_CHECK_SECONDS ?= 20
FUZZ_SECONDS ?= 600

.PHONY: all host unit check check-slow fuzz-check fuzz bench deps clean
# Objects are never throw-away intermediates: keep them between links.
# (.PRECIOUS on their patterns, not a bare .SECONDARY: that makes every
# target intermediate, and make then skips a missing object, or a new lwIP
# patch level, while the image is newer than the sources it knows.)
.PRECIOUS: $(K)/%.o $(HOST)/%.o
all: efi host
host: $(UNIT_BINS) $(TOOL_BINS)

deps:
	$(Q)bash tools/deps.sh

unit: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

fuzz-check: $(FUZZ_BINS)
	$(Q)set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(HOST)/corpus/$$n; \
	  echo "== $$n ($(FUZZ_CHECK_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_CHECK_SECONDS) -print_final_stats=1 $(HOST)/corpus/$$n $$(test -d tests/fuzz/seeds/$$n && echo tests/fuzz/seeds/$$n) 2>&1 \
	    | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' ; test $${PIPESTATUS[0]} -eq 0; done

fuzz: $(FUZZ_BINS)
	$(Q)set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(HOST)/corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(HOST)/corpus/$$n $$(test -d tests/fuzz/seeds/$$n && echo tests/fuzz/seeds/$$n); done

bench: $(BENCH_BINS) $(BUILD)/ferry.efi bench-hv
	$(Q)set -e; for b in $(BENCH_BINS); do echo "== $$b"; $$b; done
	$(Q)$(MAKE) --no-print-directory bench-sim
	@echo "== boot time"
	$(Q)/usr/bin/python3 tests/bench/boot_time.py 5
	@echo "== console input (tests/bench/console_bench.py)"
	$(Q)/usr/bin/python3 tests/bench/console_bench.py
	$(Q)$(MAKE) --no-print-directory bench-net
	$(Q)$(MAKE) --no-print-directory bench-mig
	@echo "== tests/bench/linux_bench.py (skips without build/linux: make linux-guest)"
	$(Q)/usr/bin/python3 tests/bench/linux_bench.py

# The engine on the simulator: a 1 TiB guest at 10 and 100 Gbit/s with this
# CPU's per-page costs (tests/bench/mig_sim.c; about 3 minutes).
.PHONY: bench-sim
bench-sim: $(HOST)/bench/mig_sim
	@echo "== $(HOST)/bench/mig_sim"
	$(Q)$(HOST)/bench/mig_sim | grep -v '^migration\|^  [a-z]\|^$$'

# Guest harvest and VM-exit costs, measured inside ferry under QEMU.
.PHONY: bench-hv
bench-hv: $(BUILD)/ferry.efi
	@echo "== tests/bench/hv_bench.py"
	$(Q)/usr/bin/python3 tests/bench/hv_bench.py

# TCP goodput vs raw frame rate per NIC, two instances under QEMU TCG.
.PHONY: bench-net
bench-net: efi
	$(Q)/usr/bin/python3 tests/bench/net_bench.py

# Migration speed against the same link's TCP throughput, per NIC: a
# stopped guest's bulk pass and a live guest's downtime (QEMU TCG); and the
# downtime by guest size, memory verified after the pause against in it.
.PHONY: bench-mig
bench-mig: efi
	$(Q)/usr/bin/python3 tests/bench/mig_bench.py
	@echo "== tests/bench/switchover_bench.py"
	$(Q)/usr/bin/python3 tests/bench/switchover_bench.py
	@echo "== tests/bench/constraints_bench.py"
	$(Q)/usr/bin/python3 tests/bench/constraints_bench.py

# Live migration of a running guest between two instances, with progress
# and the final statistics (tools/demo.py; bounded, cleans up its QEMUs).
.PHONY: demo
demo: deps
	$(Q)$(MAKE) --no-print-directory efi
	$(Q)if bash tools/fetch-linux.sh $(FERRY_CACHE) $(LX); then $(MAKE) --no-print-directory linux-guest; \
	  else echo "demo: the Linux guest's packages cannot be fetched (above): the built-in guest moves instead"; fi
	$(Q)/usr/bin/python3 tools/demo.py

# Everything: unit tests, short fuzz runs, the Linux guest image (unless its
# packages cannot be fetched: only its tests need it, and they skip), then
# the integration tests that boot real images under QEMU and Bochs
# (pytest's summary line ends the run).
check: deps
	$(Q)$(MAKE) --no-print-directory efi iso host
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory fuzz-check
	$(Q)if bash tools/fetch-linux.sh $(FERRY_CACHE) $(LX); then $(MAKE) --no-print-directory linux-guest; \
	  else echo "check: the Linux guest's packages cannot be fetched (above): its tests will be skipped"; fi
	$(Q)if [ -f $(LX)/vmlinuz ]; then $(MAKE) --no-print-directory linux-iso; fi
	$(Q)$(PYTEST) -m "not slow" tests/integration

# The long runs: fault matrices and emulator runs of minutes (a Linux guest
# moved from Bochs's ept to QEMU's npt), before an issue is called done.
check-slow: deps
	$(Q)$(MAKE) --no-print-directory efi iso host linux-guest linux-iso
	$(Q)$(PYTEST) -m slow tests/integration

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
