#!/usr/bin/env bash
# tools/fetch-linux.sh CACHE OUT: the stock parts of the Linux guest image.
#
# Resolves, from the local apt lists, the kernel package Debian 12's
# linux-image-amd64 currently depends on (linux-image-6.1.0-NN-amd64, so an
# ABI bump is followed without editing anything) and busybox-static's
# version; `apt-get download`s each and keeps only /boot/ (vmlinuz, config,
# System.map: not the 400 MB of modules) and /bin/busybox in
# CACHE/NAME_VERSION-v1 (reused while its .done stamp is there).
# Then copies them to OUT/vmlinuz and OUT/busybox, and writes OUT/versions,
# each only when its content changed (make rebuilds what depends on them by
# their times). No root needed. Exits non-zero with a precise message when a
# package cannot be resolved or fetched.
set -euo pipefail
cache=$1
out=$2

die() { echo "fetch-linux: $*" >&2; exit 1; }

# One apt-cache call (~1 s): the kernel's exact package name and version
# from linux-image-amd64's Depends, busybox-static's version.
show=$(apt-cache show --no-all-versions linux-image-amd64 busybox-static 2>&1) \
  || die "apt-cache show linux-image-amd64 busybox-static failed (no apt lists? run apt-get update): $show"
read -r kpkg kver < <(awk '/^Package: linux-image-amd64$/ {p=1} /^Package: / && !/linux-image-amd64$/ {p=0}
  p && /^Depends:/ { if (match($0, /linux-image-[0-9][^ ,]*-amd64 \(= [^)]*\)/)) {
      s = substr($0, RSTART, RLENGTH); gsub(/[(=)]/, "", s); print s; exit } }' <<<"$show") || true
bbver=$(awk '/^Package: busybox-static$/ {p=1} p && /^Version:/ {print $2; exit}' <<<"$show")
[ -n "${kpkg:-}" ] && [ -n "${kver:-}" ] \
  || die "cannot find linux-image-6.1.0-NN-amd64 in linux-image-amd64's Depends (is this Debian 12 with its apt lists?)"
[ -n "$bbver" ] || die "busybox-static is not in the apt lists (run apt-get update)"
krel=${kpkg#linux-image-}

# fetch PKG VERSION DIR KEEP: download PKG=VERSION, unpack it and keep its
# folder KEEP (a path inside the package) as DIR/KEEP.
fetch() {
  local pkg=$1 ver=$2 dir=$3 keep=$4 work
  [ -f "$dir/.done" ] && return 0
  echo "fetch-linux: downloading $pkg $ver into $dir (first run only)"
  work=$dir.tmp.$$
  rm -rf "$work" "$dir"; mkdir -p "$work"
  if ! (cd "$work" && apt-get download "$pkg=$ver" >fetch.log 2>&1); then
    cat "$work/fetch.log" >&2; rm -rf "$work"
    die "apt-get download $pkg=$ver failed (stale apt lists? run apt-get update)"
  fi
  dpkg-deb -x "$work"/*.deb "$work/root" || { rm -rf "$work"; die "dpkg-deb -x of $pkg failed"; }
  [ -d "$work/root/$keep" ] || { rm -rf "$work"; die "$pkg $ver has no /$keep"; }
  mv "$work/root/$keep" "$work/$keep"
  rm -rf "$work/root" "$work"/*.deb
  mv "$work" "$dir"
  touch "$dir/.done"
}

kdir=$cache/${kpkg}_${kver}-v1
bdir=$cache/busybox-static_${bbver#*:}-v1
fetch "$kpkg" "$kver" "$kdir" boot
fetch busybox-static "$bbver" "$bdir" bin
[ -f "$kdir/boot/vmlinuz-$krel" ] || die "$kdir has no boot/vmlinuz-$krel"
[ -x "$bdir/bin/busybox" ] || die "$bdir has no bin/busybox"

# update SRC DST: copy only when the content differs, so make sees a change
# only when there is one.
update() { cmp -s "$1" "$2" || cp "$1" "$2"; }
mkdir -p "$out"
update "$kdir/boot/vmlinuz-$krel" "$out/vmlinuz"
update "$bdir/bin/busybox" "$out/busybox"
printf 'kernel %s %s %s\nbusybox-static %s\n' "$kpkg" "$kver" "$krel" "$bbver" >"$out/versions.new"
update "$out/versions.new" "$out/versions"
rm -f "$out/versions.new"
