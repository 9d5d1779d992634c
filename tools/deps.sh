#!/usr/bin/env bash
# tools/deps.sh: install every Debian package ferry's build, tests and demo
# need, and the deb-src entry `apt-get source lwip` needs. Idempotent: does
# nothing when everything is present. Non-interactive; needs root (prints the
# exact command otherwise).
set -euo pipefail

PKGS=(
  build-essential gnu-efi newlib-source xz-utils
  qemu-system-x86 ovmf mtools dosfstools xorriso
  bochs bochsbios vgabios bochs-term
  libcmocka-dev libxxhash-dev libjsmn-dev
  clang libclang-rt-14-dev
  python3-pytest python3-pexpect python3-matplotlib dpkg-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

SRCLIST=/etc/apt/sources.list.d/ferry-deb-src.sources
need_src=0
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ 2>/dev/null &&
   ! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
  need_src=1
fi

[ ${#missing[@]} -eq 0 ] && [ $need_src -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]:-none}" >&2
  echo "deps: as root, run: apt-get update && apt-get install -y --no-install-recommends ${missing[*]:-}" >&2
  [ $need_src -eq 1 ] && echo "deps: and add a deb-src entry (see tools/deps.sh) for 'apt-get source lwip'" >&2
  exit 1
fi

if [ $need_src -eq 1 ]; then
  # Same mirror and keyring as the stock debian.sources entry.
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=http://deb.debian.org/debian
  cat > "$SRCLIST" <<SRC
Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${#missing[@]} Debian package(s): ${missing[*]:-none} (first run only, a minute or two)"
apt-get update -qq
[ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}"
