#!/usr/bin/env bash
# tools/fetch-lwip.sh CACHE NAME: fetch lwIP 2.1.3's source from Debian's
# `lwip` source package (apt-get source; tools/deps.sh adds the deb-src
# entry) into CACHE/NAME, then apply tools/lwip-patches/*.patch in name order
# (ferry's own small changes; each patch says why). NAME carries the patch
# level (the Makefile's LWIP), so a changed patch set fetches afresh instead
# of reusing a tree patched differently. Reuses the cache when present.
set -euo pipefail
cache=$1
dst=$cache/$2
patches=$(cd "$(dirname "$0")/lwip-patches" && pwd)
[ -f "$dst/.done" ] && exit 0
work=$cache/lwip-fetch.$$
rm -rf "$work" "$dst"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
echo "lwip: fetching lwIP 2.1.3 (apt-get source lwip) and applying tools/lwip-patches (first run only, a few seconds)"
(cd "$work" && apt-get source --download-only lwip >fetch.log 2>&1) \
  || { cat "$work/fetch.log" >&2; echo "fetch-lwip: apt-get source lwip failed (is a deb-src entry present? run tools/deps.sh as root)" >&2; exit 1; }
tarball=$(ls "$work"/lwip_2.1.3*.orig.tar.* | head -1)
mkdir -p "$work/src" && tar -C "$work/src" -xf "$tarball"
top=$(ls -d "$work"/src/*/ | head -1)
for p in "$patches"/*.patch; do
  patch -s -p1 -d "$top" <"$p" || { echo "fetch-lwip: $p does not apply" >&2; exit 1; }
done
mv "$top" "$dst"
touch "$dst/.done"
echo "lwip: fetched into $dst"
