#!/usr/bin/env bash
# End-to-end test of gantry with real parts only (see e2e/README.md):
#
#   1. base images made from Debian packages for linux/amd64 and, under
#      qemu-user-static through binfmt_misc, linux/arm64/v8 (mmdebstrap
#      minbase bookworm: nginx-light + wget, and python3), shaped like Docker
#      Hub's nginx and python images (two-platform OCI index + attestation
#      manifests), pushed to Debian's docker-registry on 127.0.0.1;
#   2. `gantry build` of testdata/taskflow/gantry.yaml on those bases, pushed
#      to the same registry;
#   3. pulled back with skopeo (OCI layout), checked with oci-image-tool;
#   4. for each architecture in turn: that platform's images pulled,
#      unpacked with umoci and run with runc (host network): the
#      architecture seen inside, HTTP checks, uid, HEALTHCHECK from the
#      pushed config via `runc exec`, volume and read-only checks, stop signal;
#   5. uncompressed size of every pushed platform image, measured from the
#      registry's manifests and blobs, against the example's limits.
#
# Needs root and Debian's packages; installs what is missing with apt-get.
# Downloads nothing but Debian packages (and Go modules for `go build`).
# When this machine cannot run arm64 programs (binfmt_misc refused), every
# arm64 check is counted and shown as SKIP, never as PASS.
#
# Environment:
#   GANTRY_E2E_CACHE    rootfs cache (default /var/cache/gantry-e2e)
#   GANTRY_E2E_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   GANTRY_E2E_REFRESH  1: rebuild the cached root filesystems
#   GANTRY_E2E_KEEP     1: keep the work directory (logs, layouts, bundles)
#   GANTRY_E2E_ARM64    0: leave arm64 out (its checks SKIP), e.g. to test
#                       the skip path or for a quick amd64-only run
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${GANTRY_E2E_CACHE:-/var/cache/gantry-e2e}
MIRROR=${GANTRY_E2E_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
FRONTEND_PKGS=nginx-light,wget
BACKEND_PKGS=python3
FRONTEND_LIMIT=200000000 # maxSize: 200MB in testdata/taskflow/gantry.yaml
BACKEND_LIMIT=300000000  # maxSize: 300MB
FRONTEND_PORT=8080       # fixed by the example's nginx config and healthcheck
BACKEND_PORT=8000        # the backend's PORT default and healthcheck

# The architectures, as Debian, OCI, the kernel (uname -m) and ELF name them.
# SLOW scales the test's own waits (not the image's healthcheck timeout)
# for an architecture run under emulation.
declare -A PLATFORM=([amd64]=linux/amd64 [arm64]=linux/arm64/v8)
declare -A UNAME_M=([amd64]=x86_64 [arm64]=aarch64)
declare -A ELF_MACHINE=([amd64]=x86-64 [arm64]=aarch64)
declare -A SLOW=([amd64]=1 [arm64]=4)

# elf_machine HEX: the machine named by the first 20 bytes of an ELF file,
# as `od -An -tx1 -N20` prints them (e_machine is bytes 18-19).
elf_machine() {
  local hex=${1//[[:space:]]/}
  [ "${hex:0:8}" = 7f454c46 ] || { echo "not ELF (${hex:0:8})"; return 0; }
  case ${hex:36:4} in
    3e00) echo x86-64 ;;
    b700) echo aarch64 ;;
    *) echo "e_machine ${hex:36:4}" ;;
  esac
}

# --- root filesystems and the base images' own layers ----------------------

# Docker's debian:*-slim keeps no docs, man pages, translations or apt lists;
# neither do these bases. Run inside the finished rootfs directory.
slim_rootfs() {
  find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
  find usr/share/doc -mindepth 1 -type d -empty -delete
  rm -rf usr/share/man/* usr/share/info/* usr/share/locale/* usr/share/lintian/*
  rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb
  rm -rf var/cache/debconf/*-old var/lib/dpkg/*-old dev/* run/* tmp/* var/tmp/*
  find var/log -type f -delete
  rm -f etc/resolv.conf etc/hostname etc/hosts
  rm -f usr/sbin/policy-rc.d
}

# The nginx image's own layer, as the official Dockerfile makes it: an nginx
# user (101), nginx.conf including conf.d/*.conf, conf.d/default.conf on
# port 80, /usr/share/nginx/html/{index,50x}.html, logs linked to
# stdout/stderr, /var/cache/nginx, /docker-entrypoint.sh. Debian's default
# site is whited out. $1: the rootfs, $2: the layer directory.
shape_frontend() {
  local r=$1 l=$2
  mkdir -p "$l"/etc/nginx/conf.d "$l"/etc/nginx/sites-enabled "$l"/usr/share/nginx/html \
    "$l"/var/log/nginx "$l"/var/cache "$l"/docker-entrypoint.d
  { cat "$r/etc/passwd"; echo "nginx:x:101:101:nginx user:/nonexistent:/bin/false"; } >"$l/etc/passwd"
  { cat "$r/etc/group"; echo "nginx:x:101:"; } >"$l/etc/group"
  chmod 0644 "$l/etc/passwd" "$l/etc/group"
  : >"$l/etc/nginx/sites-enabled/.wh.default"
  install -d -o 101 -g 0 -m 0755 "$l/var/cache/nginx"
  ln -s /dev/stdout "$l/var/log/nginx/access.log"
  ln -s /dev/stderr "$l/var/log/nginx/error.log"
  cp "$r/usr/share/nginx/html/index.html" "$l/usr/share/nginx/html/index.html"
  cat >"$l/usr/share/nginx/html/50x.html" <<'EOF'
<!DOCTYPE html>
<html>
<head><title>Error</title></head>
<body><h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.</p></body>
</html>
EOF
  cat >"$l/etc/nginx/nginx.conf" <<'EOF'

user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;


events {
    worker_connections  1024;
}


http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    #tcp_nopush     on;

    keepalive_timeout  65;

    #gzip  on;

    include /etc/nginx/conf.d/*.conf;
}
EOF
  cat >"$l/etc/nginx/conf.d/default.conf" <<'EOF'
server {
    listen       80;
    listen  [::]:80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
EOF
  cat >"$l/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Abridged docker-library/nginx entrypoint: run /docker-entrypoint.d/*.sh
# before nginx, then exec the command.
set -e
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    for f in $(find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f -name '*.sh' | sort -V); do
        echo "$0: Launching $f"
        "$f"
    done
fi
exec "$@"
EOF
  chmod 0755 "$l/docker-entrypoint.sh"
  chmod 0644 "$l"/etc/nginx/nginx.conf "$l"/etc/nginx/conf.d/default.conf "$l"/usr/share/nginx/html/*.html
}

# The python image's own layer: python3 in /usr/local/bin, as there.
shape_backend() {
  local l=$2
  mkdir -p "$l/usr/local/bin"
  ln -s /usr/bin/python3 "$l/usr/local/bin/python3"
  ln -s python3 "$l/usr/local/bin/python"
}

# Writes a layer tarball of directory $1 to $2: numeric owners, sorted,
# names without "./" (as Docker Hub's layers have them).
tar_layer() {
  local names
  mapfile -t names < <(cd "$1" && ls -A)
  tar --numeric-owner --sort=name -C "$1" -cf - "${names[@]}" | gzip -n -6 >"$2"
}

# bootstrap ARCH PACKAGES DIR DEBS: Debian minbase of ARCH with PACKAGES in
# DIR. mmdebstrap, not debootstrap: for a foreign architecture it unpacks
# natively and runs only the maintainer scripts under qemu (through
# binfmt_misc), where debootstrap's second stage unpacks everything again
# under qemu; it was the faster of the two here (see e2e/README.md). The
# .deb files are kept in DEBS for the next rebuild.
bootstrap() {
  local arch=$1 pkgs=$2 dir=$3 debs=$4
  mkdir -p "$debs"
  mmdebstrap --mode=root --variant=minbase --arch="$arch" --include="$pkgs" \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="sync-in $debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $debs" \
    "$SUITE" "$dir" "$MIRROR"
}

# make_rootfs NAME ARCH PACKAGES: builds (or finds in the cache) NAME's two
# layer tarballs for ARCH and a metadata file; prints their path prefix. The
# metadata comes from running the root filesystem's own programs in a
# chroot, so an arm64 one has really run under emulation.
make_rootfs() {
  local name=$1 arch=$2 pkgs=$3 key prefix dir unit=$1-$2
  key=$(printf '%s\n' "$SUITE" "$arch" "$pkgs" "$(declare -f bootstrap slim_rootfs shape_frontend shape_backend tar_layer)" | sha256sum | cut -c1-16)
  prefix=$CACHE/rootfs/$unit-$key
  if [ -z "${GANTRY_E2E_REFRESH:-}" ] && [ -s "$prefix.rootfs.tar.gz" ] && [ -s "$prefix.shape.tar.gz" ] && [ -s "$prefix.env" ]; then
    echo "$prefix cached"
    return
  fi
  dir=$WORK/rootfs-$unit
  bootstrap "$arch" "$pkgs" "$dir" "$CACHE/debs-$unit" >"$WORK/mmdebstrap-$unit.log" 2>&1 || {
    tail -n 20 "$WORK/mmdebstrap-$unit.log" >&2
    return 1
  }
  chroot "$dir" /bin/true || { echo "chroot $dir /bin/true failed" >&2; return 1; }
  {
    echo "DEBIAN_VERSION=$(cat "$dir/etc/debian_version")"
    echo "DPKG_ARCH=$(chroot "$dir" dpkg --print-architecture)"
    echo "UNAME_M=$(chroot "$dir" uname -m)"
    echo "ELF_DPKG=\"$(elf_machine "$(od -An -tx1 -N20 "$dir/usr/bin/dpkg")")\""
    case $name in
      frontend)
        echo "NGINX_VERSION=$(chroot "$dir" dpkg-query -W -f='${Version}' nginx | sed 's/-.*//')"
        echo "WGET_VERSION=$(chroot "$dir" dpkg-query -W -f='${Version}' wget | sed 's/-.*//')"
        ;;
      backend) echo "PYTHON_VERSION=$(chroot "$dir" python3 -c 'import platform; print(platform.python_version())')" ;;
    esac
  } >"$WORK/$unit.env"
  (cd "$dir" && slim_rootfs)
  "shape_$name" "$dir" "$WORK/shape-$unit"
  tar_layer "$dir" "$WORK/$unit.rootfs.tar.gz"
  tar_layer "$WORK/shape-$unit" "$WORK/$unit.shape.tar.gz"
  rm -rf --one-file-system "$dir"
  mv "$WORK/$unit.rootfs.tar.gz" "$prefix.rootfs.tar.gz"
  mv "$WORK/$unit.shape.tar.gz" "$prefix.shape.tar.gz"
  mv "$WORK/$unit.env" "$prefix.env"
  # drop this image's tarballs made by an older recipe (and those of the
  # debootstrap recipe, keyed without the architecture, with its .deb cache)
  find "$CACHE/rootfs" -maxdepth 1 -name "$unit-*" -not -name "$unit-$key.*" -delete
  find "$CACHE/rootfs" -maxdepth 1 -regextype posix-extended -regex ".*/$name-[0-9a-f]{16}\.[a-z.]+" -delete
  rm -rf "${CACHE:?}/debs-$name"
  echo "$prefix built"
}

# Internal: e2e/run.sh --make-rootfs WORK NAME ARCH PACKAGES, run by the
# main script in a process group of its own.
if [ "${1:-}" = --make-rootfs ]; then
  WORK=$2
  make_rootfs "$3" "$4" "$5"
  exit
fi

pass=0 fail=0 skipped=0
WORK="" RUNC_ROOT="" REGISTRY_PID=""
CONTAINERS=() # runc container ids to delete on exit
PGIDS=()      # process groups (mmdebstrap) to kill on exit
last_err=""
SKIPPING="" # while set: the reason why the checks being reached are skipped

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s  [%ds]\n' "$*" "$SECONDS"; }
ok() {
  pass=$((pass + 1))
  printf 'PASS  %s\n' "$1"
}
bad() {
  fail=$((fail + 1))
  printf 'FAIL  %s\n' "$1"
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | head -n 30 | sed 's/^/      | /'; fi
}
skip() {
  skipped=$((skipped + 1))
  printf 'SKIP  %s (%s)\n' "$1" "$SKIPPING"
}
live() { [ -z "$SKIPPING" ]; } # false while the checks are being skipped
# check WHAT CMD...: one PASS or FAIL line, with the output on failure.
check() {
  local what=$1 out
  shift
  live || { skip "$what"; return 0; }
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what" "$out"; fi
}
# must WHAT CMD...: like check, but the rest cannot run without it.
must() {
  local what=$1 out
  shift
  live || { skip "$what"; return 0; }
  if out=$("$@" 2>&1); then
    ok "$what"
  else
    bad "$what" "$out"
    say "e2e: cannot go on after: $what"
    exit 1
  fi
}
die() {
  bad "$1" "${2:-}"
  exit 1
}

cleanup() {
  local id pg m
  for id in "${CONTAINERS[@]}"; do
    runc --root "$RUNC_ROOT" delete -f "$id" >/dev/null 2>&1 || true
  done
  for pg in "${PGIDS[@]}"; do
    kill -TERM -- "-$pg" 2>/dev/null || true
  done
  if [ -n "$REGISTRY_PID" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    # mmdebstrap mounts /proc, /sys and /dev in its target; never rm
    # through them (give a stopped one a moment to unmount them itself).
    if ((${#PGIDS[@]})); then sleep 2; fi
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r)
    if [ -n "${GANTRY_E2E_KEEP:-}" ]; then
      say "e2e: kept $WORK"
    else
      rm -rf --one-file-system "$WORK"
    fi
  fi
}
on_exit() {
  local rc=$?
  set +e
  trap - ERR
  SKIPPING=""
  if [ "$rc" -ne 0 ] && [ -n "$last_err" ]; then bad "aborted: $last_err (exit $rc)"; fi
  if [ "$rc" -ne 0 ] && [ -z "$last_err" ] && [ "$fail" -eq 0 ]; then bad "aborted (exit $rc)"; fi
  cleanup
  # The closing line alone, in the plain form CI reads; the time before it.
  printf '\ne2e: finished in %ds\n' "$SECONDS"
  printf 'e2e: %d passed, %d failed, %d skipped\n' "$pass" "$fail" "$skipped"
  if [ "$fail" -gt 0 ] && [ "$rc" -eq 0 ]; then rc=1; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'last_err="line $LINENO: $BASH_COMMAND"' ERR
trap 'last_err="interrupted by a signal"; exit 130' INT TERM

# ---------------------------------------------------------------------------
section "0. tools"

[ "$(id -u)" = 0 ] || die "running as root" "the e2e needs root: mmdebstrap, binfmt_misc, umoci unpack with real owners, runc"
[ "$(dpkg --print-architecture)" = amd64 ] || die "running on amd64" "this machine is $(dpkg --print-architecture); the e2e runs amd64 natively and arm64 under qemu"
need=(mmdebstrap arch-test qemu-user-static runc umoci skopeo oci-image-tool docker-registry jq curl podman apt-utils gnupg python3 xz-utils)
missing=()
for p in "${need[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
say "runc $(runc --version | awk 'NR==1{print $3}'), umoci $(umoci --version | awk '{print $3}'), skopeo $(skopeo --version | awk '{print $3}'), oci-image-tool $(oci-image-tool --version | awk '{print $3}'), $(docker-registry --version | awk '{print $1, $3}'), mmdebstrap $(mmdebstrap --version | awk '{print $2}'), $(qemu-aarch64-static --version | awk 'NR==1{print $1, $3}'), $(go version | awk '{print $3}')"

WORK=$(mktemp -d /tmp/gantry-e2e.XXXXXX)
RUNC_ROOT=$WORK/runc # a private runc state directory: nothing else is touched
mkdir -p "$WORK/bin" "$RUNC_ROOT" "$CACHE/rootfs"
ID=e2e$$-$RANDOM # unique per run: container ids are gantry-$ID-NAME-ARCH

# binfmt_misc: the kernel hands aarch64 ELF files to qemu-aarch64-static.
# The handler needs the F (fix-binary) flag: the kernel opens the
# interpreter when it is registered, so it runs aarch64 programs in a chroot
# or container whose root filesystem has no qemu (as the images have none).
# Debian's qemu-user-static ships the handler (magic and mask) in
# /usr/lib/binfmt.d; systemd-binfmt registers it at boot or install, where
# systemd runs. Elsewhere the test registers it with the same magic and
# mask. It stays registered after the test, as the package's own would.
BINFMT=/proc/sys/fs/binfmt_misc
binfmt_arm64() { # prints why not and fails when arm64 programs cannot run here
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf out _n type offset magic mask _i _f probe=$WORK/arm64-probe
  if ! mountpoint -q "$BINFMT"; then
    out=$(mount -t binfmt_misc binfmt_misc "$BINFMT" 2>&1) || { echo "cannot mount binfmt_misc on $BINFMT: $out"; return 1; }
    echo "mounted binfmt_misc on $BINFMT"
  fi
  if [ ! -e "$BINFMT/qemu-aarch64" ]; then
    [ -r "$conf" ] || { echo "no $conf from qemu-user-static"; return 1; }
    IFS=: read -r _ _n type offset magic mask _i _f <"$conf"
    out=$( (printf ':qemu-aarch64:%s:%s:%s:%s:/usr/bin/qemu-aarch64-static:F\n' "$type" "$offset" "$magic" "$mask" >"$BINFMT/register") 2>&1) ||
      { echo "cannot register qemu-aarch64 in $BINFMT/register: ${out:-refused}"; return 1; }
    echo "registered qemu-aarch64 in $BINFMT: Debian's magic and mask, interpreter /usr/bin/qemu-aarch64-static, flags F"
  fi
  [ "$(head -n 1 "$BINFMT/status")" = enabled ] || { echo "binfmt_misc is disabled ($BINFMT/status)"; return 1; }
  [ "$(head -n 1 "$BINFMT/qemu-aarch64")" = enabled ] || { echo "the qemu-aarch64 handler is disabled"; return 1; }
  grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" || {
    echo "the qemu-aarch64 handler has no F flag ($(grep -E '^(interpreter|flags)' "$BINFMT/qemu-aarch64" | tr '\n' ' ')): containers without qemu cannot run aarch64 programs"
    return 1
  }
  # arch-test's 552-byte static aarch64 program, alone in a directory: a
  # root with no qemu, like the containers'.
  mkdir -p "$probe"
  cp /usr/lib/arch-test/arm64 "$probe/probe"
  out=$(chroot "$probe" /probe 2>&1) && [ "$out" = ok ] || { echo "an aarch64 program does not run in a chroot without qemu: $out"; return 1; }
  echo "$(grep -E '^(interpreter|flags)' "$BINFMT/qemu-aarch64" | tr '\n' ' '); an aarch64 program ran in a chroot without qemu"
}
ARCHES=(amd64)
ARM64_SKIP=""
if [ "${GANTRY_E2E_ARM64:-1}" = 0 ]; then
  ARM64_SKIP="GANTRY_E2E_ARM64=0"
elif out=$(binfmt_arm64); then
  ARCHES+=(arm64)
  ok "binfmt_misc runs arm64 programs: $(tail -n 1 <<<"$out")"
  sed '$d' <<<"$out" | sed 's/^/      /'
else
  ARM64_SKIP="this machine cannot run arm64 programs: $(tail -n 1 <<<"$out")"
fi
if [ -n "$ARM64_SKIP" ]; then
  say "e2e: arm64 is not run, its checks are SKIPPED: $ARM64_SKIP"
  SKIPPING=$ARM64_SKIP
  skip "binfmt_misc runs arm64 programs"
  SKIPPING=""
fi

# ---------------------------------------------------------------------------
section "1. base images from Debian packages (${ARCHES[*]})"

# Every root filesystem at once (while gantry builds), each mmdebstrap in
# its own process group so that cleanup can stop it (and its dpkg and qemu
# children) by id.
t=$SECONDS
declare -A MAKE_PID=() PREFIX=() HOW=()
for name in frontend backend; do
  pkgs=FRONTEND_PKGS
  [ "$name" = backend ] && pkgs=BACKEND_PKGS
  for arch in "${ARCHES[@]}"; do
    setsid "$ROOT/e2e/run.sh" --make-rootfs "$WORK" "$name" "$arch" "${!pkgs}" >"$WORK/make-$name-$arch.out" 2>"$WORK/make-$name-$arch.err" &
    PGIDS+=($!)
    MAKE_PID[$name-$arch]=$!
  done
done

(cd "$ROOT" && go build -o "$WORK/bin/gantry" ./cmd/gantry && go build -o "$WORK/bin/mkbase" ./e2e/mkbase) >"$WORK/go-build.log" 2>&1 ||
  die "go build ./cmd/gantry ./e2e/mkbase" "$(cat "$WORK/go-build.log")"
say "built gantry and e2e/mkbase [${SECONDS}s]"

for unit in "${!MAKE_PID[@]}"; do
  if ! wait "${MAKE_PID[$unit]}"; then die "$unit rootfs from Debian packages" "$(cat "$WORK/make-$unit.err")"; fi
  read -r "PREFIX[$unit]" "HOW[$unit]" <"$WORK/make-$unit.out"
done
PGIDS=()
# shellcheck disable=SC1090 # the cache's metadata files
meta() { (. "${PREFIX[$1]}.env" && eval "echo \"\$$2\""); } # UNIT VAR: from the metadata file
rootfs_ok() { # NAME ARCH
  local u=$1-$2 got
  got="dpkg --print-architecture $(meta "$u" DPKG_ARCH), uname -m $(meta "$u" UNAME_M), /usr/bin/dpkg ELF $(meta "$u" ELF_DPKG)"
  echo "$got"
  [ "$got" = "dpkg --print-architecture $2, uname -m ${UNAME_M[$2]}, /usr/bin/dpkg ELF ${ELF_MACHINE[$2]}" ]
}
rootfs_report() { # NAME ARCH PKGS VERSIONS
  local out what="$1 rootfs ${PLATFORM[$2]} (mmdebstrap minbase $SUITE --arch=$2 + $3: $4)"
  if out=$(rootfs_ok "$1" "$2"); then
    ok "$what ${HOW[$1-$2]}, ran in a chroot: $out: ${PREFIX[$1-$2]}.*"
  else
    bad "$what ${HOW[$1-$2]}: not this architecture's" "$out"
  fi
}
for arch in amd64 arm64; do
  if [ "$arch" = arm64 ] && [ -n "$ARM64_SKIP" ]; then SKIPPING=$ARM64_SKIP; fi
  for name in frontend backend; do
    if ! live; then
      skip "$name rootfs ${PLATFORM[$arch]} from Debian packages, run in a chroot"
    elif [ "$name" = frontend ]; then
      rootfs_report frontend "$arch" "$FRONTEND_PKGS" "nginx $(meta "frontend-$arch" NGINX_VERSION), wget $(meta "frontend-$arch" WGET_VERSION)"
    else
      rootfs_report backend "$arch" "$BACKEND_PKGS" "Python $(meta "backend-$arch" PYTHON_VERSION)"
    fi
  done
  SKIPPING=""
done
FE_NGINX=$(meta frontend-amd64 NGINX_VERSION)
BE_PYTHON=$(meta backend-amd64 PYTHON_VERSION)
DEBIAN_VERSION=$(meta frontend-amd64 DEBIAN_VERSION)
same_versions() { # the images of all platforms are of the same Debian, nginx, wget and Python
  local v a out="" rc=0
  for v in frontend:DEBIAN_VERSION frontend:NGINX_VERSION frontend:WGET_VERSION backend:DEBIAN_VERSION backend:PYTHON_VERSION; do
    for a in "${ARCHES[@]}"; do
      out+="${v#*:} $a $(meta "${v%%:*}-$a" "${v#*:}"); "
      [ "$(meta "${v%%:*}-$a" "${v#*:}")" = "$(meta "${v%%:*}-amd64" "${v#*:}")" ] || rc=1
    done
  done
  echo "$out"
  [ "$rc" = 0 ] || echo "the cached root filesystems differ: rebuild them with GANTRY_E2E_REFRESH=1"
  return "$rc"
}
check "every platform's root filesystem has the same Debian $DEBIAN_VERSION, nginx $FE_NGINX, wget and Python $BE_PYTHON" same_versions
say "      root filesystems ready in $((SECONDS - t))s"

# The registry: Debian's docker-registry (CNCF distribution) on a free
# loopback port.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  port_open "$port" && continue
  mkdir -p "$WORK/registry"
  cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break 2
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill "$REGISTRY_PID" 2>/dev/null || true
  wait "$REGISTRY_PID" 2>/dev/null || true
  REGISTRY_PID=""
done
[ -n "$REGISTRY_PID" ] || die "docker-registry serving on 127.0.0.1" "$(cat "$WORK/registry/log" 2>/dev/null)"
REG=127.0.0.1:$port
ok "docker-registry serving on $REG (pid $REGISTRY_PID)"

# Docker Hub's configs for these images, with each platform's Debian
# versions.
for arch in "${ARCHES[@]}"; do
  jq -n --arg v "$(meta "frontend-$arch" NGINX_VERSION)" '{
    ExposedPorts: {"80/tcp": {}},
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ("NGINX_VERSION=" + $v)],
    Entrypoint: ["/docker-entrypoint.sh"],
    Cmd: ["nginx", "-g", "daemon off;"],
    Labels: {maintainer: "NGINX Docker Maintainers <docker-maint@nginx.com>"},
    StopSignal: "SIGQUIT"}' >"$WORK/frontend-base-config-$arch.json"
  jq -n --arg v "$(meta "backend-$arch" PYTHON_VERSION)" '{
    Env: ["PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", ("PYTHON_VERSION=" + $v)],
    Cmd: ["python3"]}' >"$WORK/backend-base-config-$arch.json"
done

FE_BASE=$REG/library/nginx:bookworm
BE_BASE=$REG/library/python:3-slim-bookworm
# The platforms pushed, as jq lists: OCI platform strings and index entries.
WANT_PLATFORMS=$(for a in "${ARCHES[@]}"; do echo "${PLATFORM[$a]}"; done | jq -Rsc 'split("\n") | map(select(. != ""))')
t=$SECONDS
push_base() { # NAME REF PURL PKGS CREATED_BY_OF_THE_SHAPE_LAYER
  local arch u args=()
  for arch in "${ARCHES[@]}"; do
    u=$1-$arch
    args+=(-platform "${PLATFORM[$arch]}" -config "$WORK/$1-base-config-$arch.json"
      -layer "${PREFIX[$u]}.rootfs.tar.gz=# mmdebstrap --variant=minbase --arch=$arch --include=$4 $SUITE (Debian $(meta "$u" DEBIAN_VERSION))"
      -layer "${PREFIX[$u]}.shape.tar.gz=$5")
  done
  "$WORK/bin/mkbase" -ref "$2" -purl "$3" "${args[@]}" >"$WORK/$1-base.json"
}
must "push base $FE_BASE (mkbase: go-containerregistry, ${ARCHES[*]} + attestations)" push_base frontend "$FE_BASE" pkg:docker/nginx@bookworm \
  "$FRONTEND_PKGS" "RUN useradd -u 101 nginx; ln -sf /dev/stdout /var/log/nginx/access.log; ... # e2e/run.sh shape_frontend"
must "push base $BE_BASE (mkbase: go-containerregistry, ${ARCHES[*]} + attestations)" push_base backend "$BE_BASE" pkg:docker/python@3-slim-bookworm \
  "$BACKEND_PKGS" "RUN ln -s /usr/bin/python3 /usr/local/bin/python3 # e2e/run.sh shape_backend"
say "      bases pushed in $((SECONDS - t))s"

# What a registry client sees of each base: Docker Hub's shape.
base_shape() { # REF
  local raw
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$1")
  jq -e --argjson want "$WANT_PLATFORMS" '
    .mediaType == "application/vnd.oci.image.index.v1+json" and
    ([.manifests[] | select(.platform.os == "linux") | .platform.os + "/" + .platform.architecture + (.platform.variant // "" | if . == "" then "" else "/" + . end)] == $want) and
    ([.manifests[] | select(.annotations["vnd.docker.reference.type"] == "attestation-manifest" and .platform.os == "unknown" and .platform.architecture == "unknown")] | length == ($want | length)) and
    ([.manifests[] | select(.annotations["vnd.docker.reference.type"] == "attestation-manifest") | .annotations["vnd.docker.reference.digest"]] ==
     [.manifests[] | select(.platform.os == "linux") | .digest])' <<<"$raw" >/dev/null || {
    echo "$raw"
    return 1
  }
}
check "base $FE_BASE: OCI index, $(jq -r 'join(" + ")' <<<"$WANT_PLATFORMS"), an attestation manifest naming each image" base_shape "$FE_BASE"
check "base $BE_BASE: OCI index, $(jq -r 'join(" + ")' <<<"$WANT_PLATFORMS"), an attestation manifest naming each image" base_shape "$BE_BASE"
# Each platform's image is its own: its config names its architecture and
# its layers are the ones made for it (the root filesystem layer is never
# another platform's).
base_platforms() { # REF NAME
  local raw m cfg arch want out=""
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$1")
  for arch in "${ARCHES[@]}"; do
    want=${PLATFORM[$arch]}
    m=$(jq -r --arg p "$want" '.manifests[] | select(.platform.os + "/" + .platform.architecture + (if .platform.variant then "/" + .platform.variant else "" end) == $p) | .digest' <<<"$raw")
    [ "$m" = "$(jq -r --arg p "$want" '.manifests[] | select(.platform == $p) | .digest' "$WORK/$2-base.json")" ] || { echo "$want: index entry $m is not mkbase's"; return 1; }
    cfg=$(skopeo inspect --tls-verify=false --config --raw "docker://${1%:*}@$m")
    [ "$(jq -r '.os + "/" + .architecture + (if .variant then "/" + .variant else "" end)' <<<"$cfg")" = "$want" ] || { echo "$want: config says $(jq -c '{os, architecture, variant}' <<<"$cfg")"; return 1; }
    out+="$want config $(jq -c '{architecture, variant}' <<<"$cfg"); "
  done
  jq -e '[.manifests[] | select(.kind == "image") | .layers[0]] | length == (unique | length)' "$WORK/$2-base.json" >/dev/null || {
    echo "two platforms share a root filesystem layer:"
    jq -c '.manifests[] | select(.kind == "image") | {platform, layers}' "$WORK/$2-base.json"
    return 1
  }
  echo "$out"
}
check "base $FE_BASE: each platform's config names its architecture; no two share a root filesystem layer" base_platforms "$FE_BASE" frontend
check "base $BE_BASE: each platform's config names its architecture; no two share a root filesystem layer" base_platforms "$BE_BASE" backend
base_config() { # REF JQ-FILTER
  local raw
  raw=$(skopeo inspect --tls-verify=false --config --raw "docker://$1")
  jq -e "$2" <<<"$raw" >/dev/null || {
    jq -c .config <<<"$raw"
    return 1
  }
}
check "base nginx config: Entrypoint, Cmd [nginx -g daemon off;], Env PATH+NGINX_VERSION, ExposedPorts 80/tcp, StopSignal SIGQUIT" \
  base_config "$FE_BASE" '.config | .Cmd == ["nginx","-g","daemon off;"] and (.Env | any(startswith("NGINX_VERSION="))) and (.Env | any(startswith("PATH="))) and .ExposedPorts == {"80/tcp":{}} and .StopSignal == "SIGQUIT" and .Entrypoint == ["/docker-entrypoint.sh"]'
check "base python config: Cmd [python3], Env PATH, LANG=C.UTF-8, PYTHON_VERSION" \
  base_config "$BE_BASE" '.config | .Cmd == ["python3"] and (.Env | index("LANG=C.UTF-8")) and (.Env | any(startswith("PYTHON_VERSION="))) and (.Env | any(startswith("PATH=")))'

# ---------------------------------------------------------------------------
section "2. gantry build testdata/taskflow/gantry.yaml --push $REG/taskflow"

t=$SECONDS
build() { # CACHE-DIR OUT
  (cd "$ROOT" && "$WORK/bin/gantry" build -f testdata/taskflow/gantry.yaml \
    --base "taskflow-frontend=$FE_BASE" --base "taskflow-backend=$BE_BASE" \
    --push "$REG/taskflow" --json --cache-dir "$1") >"$2" 2>"$2.log" || {
    cat "$2.log"
    return 1
  }
}
must "gantry build --push $REG/taskflow (exit 0)" build "$WORK/gantry-cache" "$WORK/build.json"
say "      built and pushed in $((SECONDS - t))s"
sed 's/^/      | /' "$WORK/build.json.log"
jq -c '{name, digest, platforms: [.platforms[] | {platform, uncompressedSize}]}' "$WORK/build.json" | sed 's/^/      /'

FE=$REG/taskflow/taskflow-frontend:latest
BE=$REG/taskflow/taskflow-backend:latest
pushed_index() { # REF BASE-JSON
  local raw
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$1")
  jq -e --arg base "$(jq -r .digest "$2")" --argjson want "$WANT_PLATFORMS" '
    .mediaType == "application/vnd.oci.image.index.v1+json" and
    ([.manifests[] | .platform.os + "/" + .platform.architecture + (if .platform.variant then "/" + .platform.variant else "" end)] == $want) and
    ([.manifests[] | select(.annotations["vnd.docker.reference.type"] != null)] | length == 0) and
    (.annotations["org.opencontainers.image.base.digest"] == $base)' <<<"$raw" >/dev/null || {
    echo "base index $(jq -r .digest "$2")"
    echo "$raw"
    return 1
  }
}
check "pushed $FE: index of $(jq -r 'join(" + ")' <<<"$WANT_PLATFORMS"), attestations dropped, base.digest = the base's index" pushed_index "$FE" "$WORK/frontend-base.json"
check "pushed $BE: index of $(jq -r 'join(" + ")' <<<"$WANT_PLATFORMS"), attestations dropped, base.digest = the base's index" pushed_index "$BE" "$WORK/backend-base.json"
skopeo inspect --tls-verify=false --config --raw "docker://$FE" >"$WORK/frontend-config.json"
skopeo inspect --tls-verify=false --config --raw "docker://$BE" >"$WORK/backend-config.json"
cfg_check() { # FILE JQ-FILTER
  jq -e "$2" "$1" >/dev/null || {
    jq -c .config "$1"
    return 1
  }
}
check "frontend config: User 1001:1001, base Entrypoint/Cmd/StopSignal kept, ports 80+8080, volumes, NGINX_VERSION kept, Healthcheck" \
  cfg_check "$WORK/frontend-config.json" '.config | .User == "1001:1001" and .Entrypoint == ["/docker-entrypoint.sh"] and .Cmd == ["nginx","-g","daemon off;"] and .StopSignal == "SIGQUIT" and (.ExposedPorts | has("80/tcp") and has("8080/tcp")) and .Volumes == {"/var/log/nginx":{},"/tmp/app":{}} and (.Env | any(startswith("NGINX_VERSION="))) and (.Env | index("NODE_ENV=production")) and (.Healthcheck.Test[0] | IN("CMD", "CMD-SHELL"))'
check "backend config: User 1001:1001, Entrypoint [/usr/bin/tini --], Cmd [python3 /app/server.py], WorkingDir /app, LANG kept, volumes, Healthcheck, no secrets in Env" \
  cfg_check "$WORK/backend-config.json" '.config | .User == "1001:1001" and .Entrypoint == ["/usr/bin/tini","--"] and .Cmd == ["python3","/app/server.py"] and .WorkingDir == "/app" and (.Env | index("LANG=C.UTF-8")) and (.Env | all(startswith("PYTHONPATH=") | not)) and .Volumes == {"/app/logs":{},"/app/config":{},"/tmp/app":{}} and (.Healthcheck.Test[0] | IN("CMD", "CMD-SHELL")) and (.Env | all(startswith("DATABASE_URL=") or startswith("OPENROUTER_API_KEY=") | not))'

# Podman reads HEALTHCHECK only from Docker-format images: the frontend,
# built again with --format docker, keeps its check under podman.
podman_healthcheck() {
  local ref=$REG/taskflow-docker/taskflow-frontend:latest hc
  (cd "$ROOT" && "$WORK/bin/gantry" build -f testdata/taskflow/gantry.yaml --image taskflow-frontend \
    --base "taskflow-frontend=$FE_BASE" --format docker --push "$REG/taskflow-docker" --cache-dir "$WORK/gantry-cache") \
    >"$WORK/docker-format.log" 2>&1 || { cat "$WORK/docker-format.log"; return 1; }
  skopeo inspect --tls-verify=false --raw "docker://$ref" | jq -e '.mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"' >/dev/null || {
    echo "skopeo reads $(skopeo inspect --tls-verify=false --raw "docker://$ref" | jq -r .mediaType), not a Docker manifest list"
    return 1
  }
  local p=(podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver vfs)
  "${p[@]}" pull -q --tls-verify=false "docker://$ref" >/dev/null || return 1
  hc=$("${p[@]}" image inspect --format '{{json .HealthCheck}}' "$ref") || return 1
  [ -n "$hc" ] && jq -e '(.Test | join(" ") | contains("wget")) and .Interval == 10000000000 and .Timeout == 5000000000' <<<"$hc" >/dev/null || {
    echo "podman sees HealthCheck: $hc"
    return 1
  }
}
check "frontend --format docker: skopeo reads a Docker manifest list; podman image inspect shows its HEALTHCHECK (wget, every 10 s, 5 s timeout)" podman_healthcheck

# A rebuild with the same cache changes no digest.
t=$SECONDS
rebuild_same() {
  build "$WORK/gantry-cache" "$WORK/rebuild.json" || return 1
  diff <(jq -c '{name, digest, p: [.platforms[].digest]}' "$WORK/build.json") <(jq -c '{name, digest, p: [.platforms[].digest]}' "$WORK/rebuild.json") || return 1
  # the registry's access log: the first build's PUTs are there (so the log
  # shows writes), the rebuild adds none
  head -n "$before" "$WORK/registry/log" | grep -E '"PUT /v2/taskflow/' >/dev/null || { echo "no PUT logged by the first build"; return 1; }
  tail -n +$((before + 1)) "$WORK/registry/log" | grep -E '"(PUT|PATCH) /v2/' && return 1
  return 0
}
before=$(wc -l <"$WORK/registry/log")
check "gantry rebuild with the same cache: same digests, and the registry saw no PUT or PATCH" rebuild_same

# ---------------------------------------------------------------------------
section "3. pull back every platform: skopeo copy --all -> OCI layout, oci-image-tool validate"

ACCEPT='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.docker.distribution.manifest.v2+json'
# The whole pushed index (every platform) into a layout of its own.
all_platforms() {
  skopeo copy --quiet --all --src-tls-verify=false "docker://$FE" "oci:$WORK/layout-all:frontend" &&
    skopeo copy --quiet --all --src-tls-verify=false "docker://$BE" "oci:$WORK/layout-all:backend" &&
    oci-image-tool validate --type image --ref name=frontend "$WORK/layout-all" &&
    oci-image-tool validate --type image --ref name=backend "$WORK/layout-all"
}
check "skopeo copy --all ($(jq -r 'join(" + ")' <<<"$WANT_PLATFORMS")) and oci-image-tool validate that layout" all_platforms

# --- per architecture: pull, unpack, look at the files, run ----------------
#
# A UNIT is IMAGE-ARCH (frontend-arm64): its layout ref, bundle, config,
# container (gantry-$ID-UNIT) and log are named after it. Each architecture
# has a layout of its own, WORK/layout-ARCH, with its two images:
# oci-image-tool 1.0.0-rc1's --ref filter skips an entry after each one it
# drops, so in an index of more than two refs it can keep a wrong one.

layout() { echo "$WORK/layout-${1##*-}"; } # UNIT or ARCH
ASSET=_next/static/chunks/main-3f9a1c2b7d4e5f60.js
platform_of() { jq -r '.os + "/" + .architecture + (if .variant then "/" + .variant else "" end)'; }

# pull IMAGE ARCH: skopeo picks ARCH's image from the pushed index, as
# `docker pull --platform` would, into the layout as IMAGE-ARCH.
pull() {
  local os a v
  IFS=/ read -r os a v <<<"${PLATFORM[$2]}"
  skopeo copy --quiet --src-tls-verify=false --override-os "$os" --override-arch "$a" ${v:+--override-variant "$v"} \
    "docker://$REG/taskflow/taskflow-$1:latest" "oci:$(layout "$2"):$1-$2"
}
# pulled_platform IMAGE ARCH: the layout holds the index's entry for ARCH,
# whose config names ARCH; writes that config to WORK/UNIT-config.json.
pulled_platform() {
  local want=${PLATFORM[$2]} idx d m c l
  l=$(layout "$2")
  idx=$(curl -fsS -H "Accept: $ACCEPT" "http://$REG/v2/taskflow/taskflow-$1/manifests/latest")
  d=$(jq -r --arg p "$want" '.manifests[] | select(.platform.os + "/" + .platform.architecture + (if .platform.variant then "/" + .platform.variant else "" end) == $p) | .digest' <<<"$idx")
  m=$(jq -r --arg r "$1-$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' "$l/index.json")
  [ -n "$d" ] && [ "$m" = "$d" ] || { echo "skopeo copied ${m:-nothing}; the index's $want is ${d:-missing}"; return 1; }
  c=$(jq -r .config.digest "$l/blobs/${m/://}")
  cp "$l/blobs/${c/://}" "$WORK/$1-$2-config.json"
  [ "$(platform_of <"$WORK/$1-$2-config.json")" = "$want" ] || { echo "config says $(platform_of <"$WORK/$1-$2-config.json")"; return 1; }
  echo "${m:7:12}"
}
validate_blobs() { # UNIT: the manifest and config blobs on their own
  local m c l
  l=$(layout "$1")
  m=$(jq -r --arg r "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' "$l/index.json")
  oci-image-tool validate --type manifest "$l/blobs/${m/://}"
  c=$(jq -r .config.digest "$l/blobs/${m/://}")
  oci-image-tool validate --type config "$l/blobs/${c/://}"
}
owner_is() { # PATH UID:GID
  local got
  got=$(stat -c %u:%g "$1") || return 1
  [ "$got" = "$2" ] || {
    echo "$1 is owned by $got, want $2"
    return 1
  }
}
passwd_ok() { # ROOTFS LAST-LINE LINE-PREFIX...
  local r=$1 last=$2 l
  shift 2
  for l; do grep -q "^$l" "$r/etc/passwd" || { echo "no $l in /etc/passwd:"; cat "$r/etc/passwd"; return 1; }; done
  [ "$(tail -n 1 "$r/etc/passwd")" = "$last" ] || { echo "last line: $(tail -n 1 "$r/etc/passwd")"; return 1; }
  grep -qx 'appgroup:x:1001:' "$r/etc/group" || { echo "no appgroup in /etc/group"; return 1; }
}
owns_ok() { # ROOTFS DIR...
  local r=$1 d
  shift
  for d; do owner_is "$r$d" 1001:1001 || return 1; done
}
# Application files are read-only for appuser (README: "A decision:
# application files are read-only"): no entry under them is writable by uid
# 1001 or gid 1001, whoever owns it.
not_writable_by_user() { # DIR [PRUNE...]
  local dir=$1 p prune=() bad
  shift
  for p; do prune+=(-path "$dir$p" -prune -o); done
  bad=$(find "$dir" "${prune[@]}" \( \( -uid 1001 -perm -u+w \) -o \( -gid 1001 -perm -g+w \) -o -perm -o+w \) -printf '/%P %U:%G %m\n' | head -n 5)
  [ -z "$bad" ] || { echo "writable by appuser: $bad"; return 1; }
}
# Read-only by mode only holds while appuser does not chmod what it owns.
owned_by_user() { # DIR [PRUNE...]
  local dir=$1 p prune=()
  shift
  for p; do prune+=(-path "$dir$p" -prune -o); done
  find "$dir" "${prune[@]}" -uid 1001 -print | wc -l
}
gz_siblings() { # ROOTFS
  local f
  cd "$ROOT/testdata/taskflow/frontend/out" || return 1
  while IFS= read -r f; do
    [ -f "$1/usr/share/nginx/html/$f.gz" ] || { echo "missing $f.gz"; return 1; }
    gzip -dc "$1/usr/share/nginx/html/$f.gz" | cmp - "$f" || return 1
  done < <(find . -type f \( -name '*.html' -o -name '*.js' -o -name '*.css' -o -name '*.svg' -o -name '*.txt' \))
}

# Runtime bundle config: umoci's, with the host's network namespace (so
# loopback works), no terminal, and runtime-only settings (a secret the
# backend must only report as configured).
#
# Volumes: umoci mounts an empty tmpfs on each declared volume, owned by root
# (runc gives it the image directory's mode, not its owner), so a non-root
# user could never write there. Docker instead initialises a new volume from
# the image: its contents, owner and mode. The bundle is given the same: each
# volume tmpfs gets the image directory's uid and gid and runc's "tmpcopyup"
# (copy the image's contents in).
prepare_bundle() { # UNIT
  local b=$WORK/bundle-$1 extra='[]' owners='{}' v
  [[ $1 == backend-* ]] && extra='["DATABASE_URL=postgres://e2e:e2e-secret-value@127.0.0.1/none"]'
  for v in $(jq -r '.config.Volumes // {} | keys[]' "$WORK/$1-config.json"); do
    owners=$(jq --arg v "$v" --arg o "$(stat -c %u:%g "$b/rootfs$v")" '. + {($v): $o}' <<<"$owners")
  done
  jq --argjson extra "$extra" --argjson owners "$owners" '
    .process.terminal = false
    | .process.env += $extra
    | .linux.namespaces |= map(select(.type != "network"))
    | .hostname = "gantry-e2e"
    | .mounts |= map(if .type == "tmpfs" and $owners[.destination] then
        .options += ["tmpcopyup", ("uid=" + ($owners[.destination] | split(":")[0])), ("gid=" + ($owners[.destination] | split(":")[1]))]
      else . end)' "$b/config.json" >"$b/config.json.new"
  mv "$b/config.json.new" "$b/config.json"
}
volume_mounts() { # UNIT: umoci mounts a tmpfs on each declared volume
  jq -e --slurpfile c "$WORK/$1-config.json" '[.mounts[] | select(.type == "tmpfs") | .destination] | sort as $m
    | ($c[0].config.Volumes | keys | sort) as $v | ($v - $m) == []' "$WORK/bundle-$1/config.json" >/dev/null || {
    jq -c '.mounts' "$WORK/bundle-$1/config.json"
    return 1
  }
}
start() { # UNIT
  local id=gantry-$ID-$1
  prepare_bundle "$1"
  runc --root "$RUNC_ROOT" run -d --bundle "$WORK/bundle-$1" "$id" >"$WORK/$1.log" 2>&1 </dev/null || {
    cat "$WORK/$1.log"
    return 1
  }
}
state() { runc --root "$RUNC_ROOT" state "gantry-$ID-$1" | jq -r "$2"; }
wait_http() { # URL SECONDS UNIT
  local i
  for i in $(seq $(($2 * 5))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    [ "$(state "$3" .status 2>/dev/null)" = running ] || {
      echo "container stopped; its log:"
      cat "$WORK/$3.log"
      return 1
    }
    sleep 0.2
  done
  echo "no answer from $1 in $2 s; log:"
  cat "$WORK/$3.log"
  return 1
}
# Every process of the container runs as 1001:1001 (nginx: master and workers).
uids() { # UNIT
  local pids p u g n=0
  pids=$(runc --root "$RUNC_ROOT" ps --format json "gantry-$ID-$1" | jq -r '.[]')
  for p in $pids; do
    u=$(awk '/^Uid:/ {print $2 ":" $3 ":" $4 ":" $5}' "/proc/$p/status")
    g=$(awk '/^Gid:/ {print $2 ":" $3 ":" $4 ":" $5}' "/proc/$p/status")
    echo "pid $p $(tr '\0' ' ' <"/proc/$p/cmdline") uid $u gid $g"
    [ "$u" = 1001:1001:1001:1001 ] && [ "$g" = 1001:1001:1001:1001 ] || return 1
    n=$((n + 1))
  done
  [ "$n" -ge 1 ]
}
exec_in() { # UNIT ARGS...: runs ARGS in the container as the image's user
  local n=$1
  shift
  runc --root "$RUNC_ROOT" exec "gantry-$ID-$n" "$@"
}
# py_native UNIT MACHINE: the installed native package loads its library,
# which is of MACHINE, and computes with it.
py_native() {
  local out
  out=$(exec_in "$1" python3 -c 'import tfnative; print(tfnative.arch(), tfnative.add(2, 3))') || return 1
  [ "$out" = "$2 5" ] || { echo "tfnative says: $out"; return 1; }
}

# json_true FILE JQ-ARGS...: FILE exists, is not empty, and the filter is
# true of it (jq -e alone passes on empty input).
json_true() {
  local f=$1
  shift
  [ -s "$f" ] || { echo "$f is missing or empty"; return 1; }
  jq -e "$@" "$f" >/dev/null
}

# console_script UNIT: taskflow-admin, installed from its wheel's entry
# point, starts with the base's interpreter and runs.
console_script() {
  local first out
  first=$(exec_in "$1" head -n1 /usr/local/bin/taskflow-admin) || return 1
  case "$first" in '#!/usr/local/bin/python3' | '#!/usr/bin/python3') ;; *) echo "shebang: $first"; return 1 ;; esac
  out=$(exec_in "$1" taskflow-admin "Hello World") || return 1
  [ "$out" = "taskflow-admin hello-world" ] || { echo "taskflow-admin printed: $out"; return 1; }
}

# tini_init UNIT ROOTFS MACHINE: the system layer's tini (a Debian package
# gantry installed) is PID 1, is of MACHINE, and dpkg lists it installed.
tini_init() {
  local comm status
  comm=$(exec_in "$1" cat /proc/1/comm) || return 1
  [ "$comm" = tini ] || { echo "PID 1 is $comm"; return 1; }
  [ "$(elf_machine "$(od -An -tx1 -N20 "$2/usr/bin/tini")")" = "$3" ] || { echo "/usr/bin/tini is $(elf_machine "$(od -An -tx1 -N20 "$2/usr/bin/tini")")"; return 1; }
  status=$(awk '/^Package: tini$/ {p=1} p && /^Status:/ {print; exit}' "$2/var/lib/dpkg/status")
  [ "$status" = "Status: install ok installed" ] || { echo "dpkg status of tini: '$status'"; return 1; }
}
exec_as() { # UNIT UID:GID ARGS...
  local n=$1 u=$2
  shift 2
  runc --root "$RUNC_ROOT" exec --user "$u" "gantry-$ID-$n" "$@"
}
exec_id() { # UNIT
  local out
  out=$(exec_in "$1" id) && [[ $out == "uid=1001(appuser) gid=1001(appgroup)"* ]] || {
    echo "$out"
    return 1
  }
}
# The architecture seen from inside the running container: the kernel's
# machine (qemu-user reports the guest's) and the ELF machine of programs.
arch_inside() { # UNIT ARCH PROGRAM...
  local u=$1 arch=$2 m p e
  shift 2
  m=$(exec_in "$u" uname -m)
  echo "uname -m: $m"
  [ "$m" = "${UNAME_M[$arch]}" ] || return 1
  for p; do
    e=$(elf_machine "$(exec_in "$u" od -An -tx1 -N20 "$p")")
    echo "$p: ELF $e"
    [ "$e" = "${ELF_MACHINE[$arch]}" ] || return 1
  done
}

http() { # URL OUT-PREFIX [CURL-ARGS...]: writes OUT.body and OUT.headers; prints the status
  local url=$1 out=$2
  shift 2
  curl -sS -o "$out.body" -D "$out.headers" -w '%{http_code}' "$@" "$url"
}
fe_health() {
  local code
  code=$(http "http://127.0.0.1:$FRONTEND_PORT/health" "$WORK/fe-health")
  [ "$code" = 200 ] && grep -qi '^content-type: application/json' "$WORK/fe-health.headers" &&
    jq -e '.status == "ok" and .service == "taskflow-frontend"' "$WORK/fe-health.body" >/dev/null || {
    echo "status $code"
    cat "$WORK/fe-health.headers" "$WORK/fe-health.body"
    return 1
  }
}
fe_index() {
  local code
  code=$(http "http://127.0.0.1:$FRONTEND_PORT/" "$WORK/fe-index")
  [ "$code" = 200 ] && cmp "$WORK/fe-index.body" "$ROOT/testdata/taskflow/frontend/out/index.html" &&
    grep -qi '^cache-control: no-cache' "$WORK/fe-index.headers" || {
    echo "status $code"
    cat "$WORK/fe-index.headers"
    head -c 300 "$WORK/fe-index.body"
    return 1
  }
}
fe_asset() { # ROOTFS
  local code gz=$1/usr/share/nginx/html/$ASSET.gz
  code=$(http "http://127.0.0.1:$FRONTEND_PORT/$ASSET" "$WORK/fe-asset" -H 'Accept-Encoding: gzip')
  [ "$code" = 200 ] || { echo "status $code"; cat "$WORK/fe-asset.headers"; return 1; }
  grep -qi '^content-encoding: gzip' "$WORK/fe-asset.headers" || { echo "not gzip-encoded:"; cat "$WORK/fe-asset.headers"; return 1; }
  # gzip_static sends the file: its exact bytes, with its length (on-the-fly
  # gzip would be chunked and compressed by nginx's zlib)
  cmp "$WORK/fe-asset.body" "$gz" || { echo "body is not the precompressed $ASSET.gz"; cat "$WORK/fe-asset.headers"; return 1; }
  grep -qi "^content-length: $(stat -c %s "$gz")" "$WORK/fe-asset.headers" || { echo "no Content-Length of the .gz file"; cat "$WORK/fe-asset.headers"; return 1; }
  gzip -dc "$WORK/fe-asset.body" | cmp - "$ROOT/testdata/taskflow/frontend/out/$ASSET" &&
    grep -qi '^cache-control: .*immutable' "$WORK/fe-asset.headers"
}
fe_asset_plain() {
  local code
  code=$(http "http://127.0.0.1:$FRONTEND_PORT/$ASSET" "$WORK/fe-plain")
  [ "$code" = 200 ] && ! grep -qi '^content-encoding' "$WORK/fe-plain.headers" &&
    cmp "$WORK/fe-plain.body" "$ROOT/testdata/taskflow/frontend/out/$ASSET"
}
be_health() { # URL OUT
  local code
  code=$(http "$1" "$2")
  [ "$code" = 200 ] && grep -qi '^content-type: application/json' "$2.headers" &&
    jq -e '.status == "ok" and .service == "taskflow-backend" and .config.database_url_configured == true and .config.openrouter_api_key_configured == false' "$2.body" >/dev/null &&
    ! grep -q e2e-secret-value "$2.body" || {
    echo "status $code"
    cat "$2.headers" "$2.body"
    return 1
  }
}
be_tasks() {
  local code
  code=$(http "http://127.0.0.1:$BACKEND_PORT/api/tasks" "$WORK/be-post" -X POST -H 'Content-Type: application/json' -d '{"title":"e2e"}')
  [ "$code" = 201 ] && jq -e '.title == "e2e"' "$WORK/be-post.body" >/dev/null || {
    echo "status $code"
    cat "$WORK/be-post.body"
    return 1
  }
}

# HEALTHCHECK: the pushed config's Test, run inside the container as the
# image's user, the way Docker runs it (CMD: exec form; CMD-SHELL: /bin/sh -c),
# with the image's own timeout on every architecture.
healthcheck() { # UNIT
  local cfg=$WORK/$1-config.json kind timeout retries i out argv=()
  kind=$(jq -r '.config.Healthcheck.Test[0]' "$cfg")
  mapfile -d '' -t argv < <(jq -j '.config.Healthcheck.Test[1:][] | (., "\u0000")' "$cfg")
  case $kind in
    CMD) ;;
    CMD-SHELL) argv=(/bin/sh -c "${argv[0]}") ;;
    *) echo "healthcheck kind $kind"; return 1 ;;
  esac
  timeout=$(jq '(.config.Healthcheck.Timeout // 30000000000) / 1e9 | ceil' "$cfg")
  retries=$(jq '.config.Healthcheck.Retries // 3' "$cfg")
  echo "Test: ${argv[*]} (timeout ${timeout}s, retries $retries)"
  for i in $(seq "$retries"); do
    if out=$(timeout "$((timeout + 5))" runc --root "$RUNC_ROOT" exec "gantry-$ID-$1" timeout "$timeout" "${argv[@]}" 2>&1); then
      echo "attempt $i: exit 0"
      return 0
    fi
    echo "attempt $i failed: $out"
    sleep 1
  done
  return 1
}
hc_report() { # ARCH UNIT
  local out what="$1: ${2%-*} HEALTHCHECK from the pushed config exits 0 in the container"
  live || { skip "$what"; return 0; }
  if out=$(healthcheck "$2"); then
    ok "$what: $(head -n 1 <<<"$out" | cut -c1-150)"
  else
    bad "$what" "$out"
  fi
}

# Volumes are writable by the user; the application files are not.
write_as_user() { # UNIT PATH
  exec_as "$1" 1001:1001 sh -c 'p="$1/.gantry-e2e-probe"; echo probe >"$p" && [ "$(cat "$p")" = probe ] && rm "$p"' sh "$2"
}
# denied UNIT CMD: CMD, run as 1001 in the container, must fail with EACCES.
denied() {
  local out
  if out=$(exec_as "$1" 1001:1001 sh -c "$2" 2>&1); then
    echo "succeeded as uid 1001: $2"
    return 1
  fi
  grep -q "Permission denied" <<<"$out" || {
    echo "failed, but not with Permission denied: $out"
    return 1
  }
}
volumes_ok() { # UNIT
  local v n=0
  for v in $(jq -r '.config.Volumes | keys[]' "$WORK/$1-config.json"); do
    exec_in "$1" sh -c 'grep -q "^[^ ]* [^ ]* [^ ]* [^ ]* $1 " /proc/self/mountinfo' sh "$v" || { echo "$v is not a mount in the container"; return 1; }
    [ "$(exec_in "$1" stat -c %u:%g "$v")" = 1001:1001 ] || { echo "$v is owned by $(exec_in "$1" stat -c %u:%g "$v") in the container"; return 1; }
    write_as_user "$1" "$v" || { echo "cannot write into $v as 1001"; return 1; }
    echo "wrote $v"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ]
}

# Stop each container with its image's StopSignal (Docker's default SIGTERM
# when none) and expect a clean exit.
stop() { # UNIT SECONDS
  local sig i
  sig=$(jq -r '.config.StopSignal // "SIGTERM"' "$WORK/$1-config.json")
  runc --root "$RUNC_ROOT" kill "gantry-$ID-$1" "$sig"
  for i in $(seq $(($2 * 5))); do
    [ "$(state "$1" .status)" = stopped ] && { echo "$sig"; return 0; }
    sleep 0.2
  done
  echo "still $(state "$1" .status) $2 s after $sig"
  return 1
}
stop_report() { # ARCH UNIT SECONDS
  local out what="$1: ${2%-*} stops on its image's stop signal within $3 s"
  live || { skip "$what"; return 0; }
  if out=$(stop "$2" "$3" 2>&1); then
    ok "$1: ${2%-*} stops on $out (its image's stop signal) within $3 s"
  else
    bad "$what" "$out"
  fi
  runc --root "$RUNC_ROOT" delete -f "gantry-$ID-$2" >/dev/null 2>&1 || true
}

# arch_checks ARCH: every check of one architecture's images, pulled from
# the pushed index, unpacked and run. Run once per architecture; while the
# architecture cannot run here, each check is shown as SKIP.
arch_checks() {
  local arch=$1 fe=frontend-$1 be=backend-$1 fer ber wait_s spec name dir prunes n t
  if [ "$arch" = arm64 ] && [ -n "$ARM64_SKIP" ]; then SKIPPING=$ARM64_SKIP; fi
  fer=$WORK/bundle-$fe/rootfs ber=$WORK/bundle-$be/rootfs
  wait_s=$((30 * SLOW[$arch]))

  # pull and validate
  for name in frontend backend; do
    must "$arch: skopeo copy --override-arch $arch docker://$REG/taskflow/taskflow-$name:latest oci:layout-$arch:$name-$arch" pull "$name" "$arch"
    check "$arch: the layout's $name-$arch is the pushed index's ${PLATFORM[$arch]} entry, its config says ${PLATFORM[$arch]}" pulled_platform "$name" "$arch"
    check "$arch: oci-image-tool validate --type image --ref name=$name-$arch (the layout)" \
      oci-image-tool validate --type image --ref "name=$name-$arch" "$(layout "$arch")"
    check "$arch: oci-image-tool validate --type manifest and --type config on $name-$arch's blobs" validate_blobs "$name-$arch"
    must "$arch: umoci unpack --image layout-$arch:$name-$arch bundle-$name-$arch" umoci unpack --image "$(layout "$arch"):$name-$arch" "$WORK/bundle-$name-$arch"
  done

  # the unpacked files
  check "$arch: frontend /etc/passwd: Debian's root and _apt, the base layer's nginx (101), then appuser 1001; appgroup 1001 in /etc/group" \
    passwd_ok "$fer" "appuser:x:1001:1001::/:/sbin/nologin" "root:x:0:0:" "_apt:x:42:" "nginx:x:101:101:"
  check "$arch: backend /etc/passwd: Debian's root and _apt, then appuser 1001 with home /app; appgroup 1001 in /etc/group" \
    passwd_ok "$ber" "appuser:x:1001:1001::/app:/sbin/nologin" "root:x:0:0:" "_apt:x:42:"
  check "$arch: frontend: Debian's default site whited out, conf.d/default.conf is the example's" \
    bash -c "[ ! -e '$fer/etc/nginx/sites-enabled/default' ] && cmp '$fer/etc/nginx/conf.d/default.conf' '$ROOT/testdata/taskflow/frontend/nginx/default.conf'"
  check "$arch: frontend user.owns /var/cache/nginx /var/log/nginx /tmp/nginx /tmp/app owned 1001:1001" \
    owns_ok "$fer" /var/cache/nginx /var/log/nginx /tmp/nginx /tmp/app
  check "$arch: backend user.owns /app/logs /app/config /tmp/app owned 1001:1001" \
    owns_ok "$ber" /app/logs /app/config /tmp/app
  check "$arch: frontend image: nothing under /usr/share/nginx/html is writable by uid/gid 1001" not_writable_by_user "$fer/usr/share/nginx/html"
  check "$arch: backend image: nothing under /app but the volumes /app/logs, /app/config is writable by uid/gid 1001" \
    not_writable_by_user "$ber/app" /logs /config
  if live && [ "$arch" = "${ARCHES[0]}" ]; then
    for spec in "frontend $fer/usr/share/nginx/html" "backend $ber/app /logs /config"; do
      read -r name dir prunes <<<"$spec"
      # shellcheck disable=SC2086 # prunes is a word list
      n=$(owned_by_user "$dir" $prunes)
      if [ "$n" -gt 0 ]; then
        say "INFO  $name: $n entries under ${dir#"$WORK"/bundle-$name-$arch/rootfs} are owned by appuser (read-only by mode only: appuser may chmod them writable again)"
      fi
    done
  fi
  check "$arch: frontend: every site file has its .gz sibling" gz_siblings "$fer"

  # the bundles
  if live; then
    for p in $FRONTEND_PORT $BACKEND_PORT; do
      if port_open "$p"; then die "port $p on 127.0.0.1 is free (the containers share the host network)" "something already listens on 127.0.0.1:$p"; fi
    done
  fi
  check "$arch: umoci's bundle runs the image's User: process.user 1001:1001 (frontend, backend)" \
    jq -se 'all(.[]; .process.user.uid == 1001 and .process.user.gid == 1001)' "$WORK/bundle-$fe/config.json" "$WORK/bundle-$be/config.json"
  check "$arch: frontend bundle args = Entrypoint + Cmd" jq -e '.process.args == ["/docker-entrypoint.sh","nginx","-g","daemon off;"]' "$WORK/bundle-$fe/config.json"
  check "$arch: umoci's frontend bundle mounts a tmpfs on each declared volume" volume_mounts "$fe"
  check "$arch: umoci's backend bundle mounts a tmpfs on each declared volume" volume_mounts "$be"

  # run, backend first
  t=$SECONDS
  # Registered here, in the main shell: check and must run their command in
  # a subshell, where an addition to CONTAINERS would be lost.
  live && CONTAINERS+=("gantry-$ID-$be" "gantry-$ID-$fe")
  must "$arch: runc run -d gantry-$ID-$be" start "$be"
  must "$arch: backend answers on 127.0.0.1:$BACKEND_PORT (within $wait_s s)" wait_http "http://127.0.0.1:$BACKEND_PORT/api/health" "$wait_s" "$be"
  must "$arch: runc run -d gantry-$ID-$fe" start "$fe"
  must "$arch: frontend answers on 127.0.0.1:$FRONTEND_PORT (within $wait_s s)" wait_http "http://127.0.0.1:$FRONTEND_PORT/health" "$wait_s" "$fe"
  live && say "      $arch: both containers up in $((SECONDS - t))s"

  check "$arch: inside the frontend: uname -m is ${UNAME_M[$arch]}, nginx and wget are ELF ${ELF_MACHINE[$arch]}" \
    arch_inside "$fe" "$arch" /usr/sbin/nginx /usr/bin/wget
  check "$arch: inside the backend: uname -m is ${UNAME_M[$arch]}, /usr/bin/python3 is ELF ${ELF_MACHINE[$arch]}" \
    arch_inside "$be" "$arch" /usr/bin/python3
  check "$arch: frontend: every process (nginx master + workers) runs as uid/gid 1001" uids "$fe"
  check "$arch: backend: the process runs as uid/gid 1001" uids "$be"
  check "$arch: runc exec in frontend runs as the image's user: id says uid=1001(appuser) gid=1001(appgroup)" exec_id "$fe"
  check "$arch: runc exec in backend runs as the image's user: id says uid=1001(appuser) gid=1001(appgroup)" exec_id "$be"

  check "$arch: frontend GET /health: 200, application/json, {status: ok, service: taskflow-frontend}" fe_health
  check "$arch: frontend GET /: 200, the example's index.html byte for byte, Cache-Control no-cache" fe_index
  check "$arch: frontend GET /$ASSET with Accept-Encoding: gzip: 200, the precompressed .gz file's bytes and length, immutable" fe_asset "$fer"
  check "$arch: frontend GET /$ASSET without Accept-Encoding: the plain file" fe_asset_plain
  check "$arch: backend GET /api/health: 200, application/json, status ok, DATABASE_URL reported set (value not shown)" \
    be_health "http://127.0.0.1:$BACKEND_PORT/api/health" "$WORK/be-health"
  check "$arch: frontend GET /api/health proxied to the backend on 127.0.0.1:$BACKEND_PORT: 200 JSON" \
    be_health "http://127.0.0.1:$FRONTEND_PORT/api/health" "$WORK/fe-api-health"
  check "$arch: backend POST /api/tasks: 201" be_tasks

  hc_report "$arch" "$fe"
  hc_report "$arch" "$be"

  check "$arch: frontend: each declared volume (/tmp/app, /var/log/nginx) is a mount owned 1001:1001 and writable as uid 1001" volumes_ok "$fe"
  check "$arch: backend: each declared volume (/app/config, /app/logs, /tmp/app) is a mount owned 1001:1001 and writable as uid 1001" volumes_ok "$be"
  check "$arch: frontend: creating a file in /usr/share/nginx/html as uid 1001 fails (Permission denied)" \
    denied "$fe" 'echo x >/usr/share/nginx/html/.gantry-e2e-probe'
  check "$arch: frontend: changing /usr/share/nginx/html/index.html as uid 1001 fails (Permission denied)" \
    denied "$fe" ': >>/usr/share/nginx/html/index.html'
  check "$arch: frontend: changing /etc/nginx/conf.d/default.conf as uid 1001 fails (Permission denied)" \
    denied "$fe" ': >>/etc/nginx/conf.d/default.conf'
  check "$arch: backend: creating a file in /app as uid 1001 fails (Permission denied)" \
    denied "$be" 'echo x >/app/.gantry-e2e-probe'
  check "$arch: backend: changing /app/server.py as uid 1001 fails (Permission denied)" \
    denied "$be" ': >>/app/server.py'
  check "$arch: backend: changing an installed package as uid 1001 fails (Permission denied)" \
    denied "$be" ': >>"$(python3 -c "import tfnative, os; print(os.path.dirname(tfnative.__file__))")/__init__.py"'

  # What mode-only read-only means when appuser owns the files: it can chmod.
  if live && [ "$arch" = "${ARCHES[0]}" ]; then
    for spec in "$fe /usr/share/nginx/html" "$be /app"; do
      read -r name dir <<<"$spec"
      if exec_as "$name" 1001:1001 sh -c 'chmod u+w "$1" && echo x >"$1/.gantry-e2e-probe" && rm "$1/.gantry-e2e-probe" && chmod u-w "$1"' sh "$dir" >/dev/null 2>&1; then
        say "INFO  ${name%-*}: as uid 1001, chmod u+w $dir then writing there works (appuser owns it; only root ownership would stop that)"
      fi
    done
  fi

  # per-arch checks: what must hold on every architecture goes here, once
  # (a native Python package import, a console script, `dpkg -s jq`, ...).
  # The containers $fe and $be are running; use exec_in / exec_as UNIT ...,
  # the unpacked roots $fer and $ber, and name each check "$arch: ...".
  local want_machine=${UNAME_M[$arch]}
  check "$arch: backend: tfnative's library is $want_machine and really loaded (ctypes call: add(2, 3) = 5)" \
    py_native "$be" "$want_machine"
  check "$arch: backend: /api/health reports the native library's machine $want_machine" \
    json_true "$WORK/be-health.body" --arg m "$want_machine" '.native.arch == $m and .native.add == 5'
  check "$arch: backend: the console script taskflow-admin runs (shebang: the base's python3)" \
    console_script "$be"
  check "$arch: backend: PID 1 is tini from the system layer (Debian package, ${ELF_MACHINE[$arch]}, dpkg says installed)" \
    tini_init "$be" "$ber" "${ELF_MACHINE[$arch]}"

  stop_report "$arch" "$fe" $((10 * SLOW[$arch]))
  stop_report "$arch" "$be" $((10 * SLOW[$arch]))
  SKIPPING=""
}

for arch in amd64 arm64; do
  section "4. $arch: pull ${PLATFORM[$arch]}, oci-image-tool validate, umoci unpack, run with runc (host network)"
  arch_checks "$arch"
done

# shellcheck source=e2e/debian.sh
. "$ROOT/e2e/debian.sh"

# ---------------------------------------------------------------------------
section "5. uncompressed sizes, measured from the pushed manifests"

declare -A layer_size=()
measure() { # REPO TAG LIMIT PLATFORM
  local repo=$1 tag=$2 limit=$3 plat=$4 idx m total mt d n gantry_n rc=0
  idx=$(curl -fsS -H "Accept: $ACCEPT" "http://$REG/v2/$repo/manifests/$tag")
  m=$(jq -r --arg p "$plat" '.manifests[] | select(.platform | .os + "/" + .architecture + (if .variant then "/" + .variant else "" end) == $p) | .digest' <<<"$idx")
  [ -n "$m" ] || { echo "no $plat in the index"; return 1; }
  total=0
  while read -r mt d; do
    if [ -z "${layer_size[$d]:-}" ]; then
      case $mt in
        *gzip) n=$(curl -fsS "http://$REG/v2/$repo/blobs/$d" | gzip -dc | wc -c) ;;
        *zstd) n=$(curl -fsS "http://$REG/v2/$repo/blobs/$d" | zstd -dc | wc -c) ;;
        *tar) n=$(curl -fsS "http://$REG/v2/$repo/blobs/$d" | wc -c) ;;
        *) echo "unknown layer type $mt"; return 1 ;;
      esac
      layer_size[$d]=$n
    fi
    total=$((total + layer_size[$d]))
  done < <(curl -fsS -H "Accept: $ACCEPT" "http://$REG/v2/$repo/manifests/$m" | jq -r '.layers[] | .mediaType + " " + .digest')
  gantry_n=$(jq -r --arg n "${repo#taskflow/}" --arg p "$plat" 'select(.name == $n) | .platforms[] | select(.platform == $p) | .uncompressedSize' "$WORK/build.json")
  printf '%d bytes (%d.%d MB); gantry --json said %s\n' "$total" $((total / 1000000)) $((total % 1000000 / 100000)) "${gantry_n:-?}"
  [ "$total" -lt "$limit" ] || rc=1
  [ "$gantry_n" = "$total" ] || { echo "  gantry reported $gantry_n"; rc=1; }
  return $rc
}
for arch in amd64 arm64; do
  if [ "$arch" = arm64 ] && [ -n "$ARM64_SKIP" ]; then SKIPPING=$ARM64_SKIP; fi
  for spec in "taskflow/taskflow-frontend $FRONTEND_LIMIT" "taskflow/taskflow-backend $BACKEND_LIMIT"; do
    read -r repo limit <<<"$spec"
    what="$repo ${PLATFORM[$arch]} uncompressed size under $((limit / 1000000)) MB (and equal to gantry's --json)"
    if ! live; then
      skip "$what"
    elif out=$(measure "$repo" latest "$limit" "${PLATFORM[$arch]}" 2>&1); then
      ok "$what: $out"
    else
      bad "$what" "$out"
    fi
  done
  SKIPPING=""
done

# The time limit: a cold cache builds every root filesystem (arm64 under
# emulation), a warm one none.
limit=300
for unit in "${!HOW[@]}"; do [ "${HOW[$unit]}" = built ] && limit=900; done
if [ "$SECONDS" -lt "$limit" ]; then
  ok "the whole e2e ran in ${SECONDS}s (limit $limit s with $( [ "$limit" = 300 ] && echo a warm || echo a cold) rootfs cache)"
else
  bad "the whole e2e ran in under $limit s" "took ${SECONDS}s"
fi
