#!/usr/bin/env bash
# Fetches the real bookworm .debs of the test archive (curl, jq, procps and
# everything they depend on, recommends left out) for amd64 and arm64 into
# $GANTRY_DEBIAN_DEBS (default /var/cache/gantry-e2e/debian-debs/<arch>/),
# once: a directory that has them is left alone. Needs apt-get and a Debian
# mirror; the tests themselves only read the directory (layers/debian skips
# its archive tests with a message when it is empty).
set -euo pipefail
OUT=${GANTRY_DEBIAN_DEBS:-/var/cache/gantry-e2e/debian-debs}
PKGS=(curl jq procps)
ARCHS=(amd64 arm64)
native=$(dpkg --print-architecture)
for a in "${ARCHS[@]}"; do
  if [ -f "$OUT/$a/.complete" ]; then echo "$OUT/$a cached"; continue; fi
  if [ "$a" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$a"; then
    dpkg --add-architecture "$a"
    updated=
  fi
  if [ -z "${updated:-}" ]; then apt-get update -q >/dev/null; updated=1; fi
  # the closure over Depends and Pre-Depends, the way apt sees it
  mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
      --no-breaks --no-replaces --no-enhances "${PKGS[@]/%/:$a}" | grep -v '^[ <]' | awk -F: -v a="$a" 'NF == 1 || $2 == a {print $1}' | sort -u)
  mkdir -p "$OUT/$a.tmp"
  # Architecture: all packages have no :ARCH name for a foreign architecture
  names=()
  for p in "${closure[@]}"; do
    if [[ $(apt-cache show --no-all-versions "$p:$a" 2>/dev/null) == *"Architecture: $a"* ]]; then names+=("$p:$a"); else names+=("$p"); fi
  done
  (cd "$OUT/$a.tmp" && apt-get download -qq "${names[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
  n=$(find "$OUT/$a.tmp" -name '*.deb' | wc -l)
  [ "$n" = "${#names[@]}" ] || { echo "$OUT/$a.tmp: got $n of ${#names[@]} packages" >&2; exit 1; }
  for d in "$OUT/$a.tmp"/*.deb; do
    da=$(dpkg-deb -f "$d" Architecture)
    [ "$da" = "$a" ] || [ "$da" = all ] || { echo "$d is for $da, not $a" >&2; exit 1; }
  done
  touch "$OUT/$a.tmp/.complete"
  rm -rf "$OUT/$a"; mv "$OUT/$a.tmp" "$OUT/$a"
  echo "$OUT/$a: $(ls "$OUT/$a" | wc -l) packages"
done
