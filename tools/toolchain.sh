#!/usr/bin/env bash
# tools/toolchain.sh CACHE: create the x86_64-elf "cross" toolchain ferry,
# newlib and lwIP are built with: the host gcc/binutils run freestanding,
# with the host's Linux predefines removed (newlib otherwise turns on dynamic
# reentrancy and wants __getreent). Prints the bin directory.
set -euo pipefail
cache=$1
bin=$cache/toolchain-v1/bin
if [ ! -x "$bin/x86_64-elf-gcc" ]; then
  mkdir -p "$bin"
  gccinc=$(gcc -print-file-name=include)
  cat > "$bin/x86_64-elf-gcc.tmp" <<W
#!/bin/sh
exec gcc -nostdinc -isystem $gccinc -U__linux__ -U__linux -Ulinux -U__gnu_linux__ \\
  -U__unix__ -U__unix -Uunix -ffreestanding -fno-stack-protector -mno-red-zone \\
  -fPIC -fshort-wchar "\$@"
W
  chmod +x "$bin/x86_64-elf-gcc.tmp"
  ln -sf x86_64-elf-gcc "$bin/x86_64-elf-cc"
  for t in ar as ld nm ranlib objcopy objdump strip readelf; do
    ln -sf "$(command -v $t)" "$bin/x86_64-elf-$t"
  done
  mv "$bin/x86_64-elf-gcc.tmp" "$bin/x86_64-elf-gcc"
fi
echo "$bin"
