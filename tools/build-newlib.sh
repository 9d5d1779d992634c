#!/usr/bin/env bash
# tools/build-newlib.sh CACHE: build newlib 3.3.0 from Debian's newlib-source
# for a freestanding x86_64-elf target and install it under
# CACHE/newlib-3.3.0-v1/x86_64-elf/{include,lib}. Reuses the cache when present.
set -euo pipefail
cache=$1
prefix=$cache/newlib-3.3.0-v1
[ -f "$prefix/.done" ] && exit 0
tarball=/usr/src/newlib/newlib-3.3.0.tar.xz
[ -f "$tarball" ] || { echo "build-newlib: $tarball missing (apt-get install newlib-source)" >&2; exit 1; }
bin=$(bash "$(dirname "$0")/toolchain.sh" "$cache")
export PATH=$bin:$PATH
work=$cache/newlib-build.$$
rm -rf "$work" "$prefix"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "newlib: building 3.3.0 for the kernel into $prefix (first run only, about 2 minutes)"
tar -C "$work" -xJf "$tarball"
mkdir -p "$work/obj"
cd "$work/obj"
../newlib-salsa/configure --prefix="$prefix" --target=x86_64-elf \
  --disable-multilib --disable-nls --disable-newlib-supplied-syscalls \
  --enable-newlib-io-long-long --enable-newlib-io-c99-formats \
  --disable-newlib-multithread CFLAGS_FOR_TARGET="-O2 -g0" >configure.log 2>&1 \
  || { tail -30 configure.log >&2; exit 1; }
make -j"${JOBS:-2}" all-target-newlib >build.log 2>&1 || { tail -40 build.log >&2; exit 1; }
make install-target-newlib >install.log 2>&1 || { tail -20 install.log >&2; exit 1; }
touch "$prefix/.done"
echo "newlib: built in $(( $(date +%s) - start )) s into $prefix"
