#!/usr/bin/env bash
# tools/fetch-lwip.sh CACHE: fetch lwIP 2.1.3's source from Debian's `lwip`
# source package (apt-get source; tools/deps.sh adds the deb-src entry) into
# CACHE/lwip-2.1.3. Reuses the cache when present.
set -euo pipefail
cache=$1
dst=$cache/lwip-2.1.3
[ -f "$dst/.done" ] && exit 0
work=$cache/lwip-fetch.$$
rm -rf "$work" "$dst"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source --download-only lwip >fetch.log 2>&1) \
  || { cat "$work/fetch.log" >&2; echo "fetch-lwip: apt-get source lwip failed (is a deb-src entry present? run tools/deps.sh as root)" >&2; exit 1; }
tarball=$(ls "$work"/lwip_2.1.3*.orig.tar.* | head -1)
mkdir -p "$work/src" && tar -C "$work/src" -xf "$tarball"
top=$(ls -d "$work"/src/*/ | head -1)
mv "$top" "$dst"
touch "$dst/.done"
echo "lwip: fetched into $dst"
