# shellcheck shell=bash
# Sourced by e2e/run.sh after section 4: Debian packages installed into the
# TaskFlow backend by gantry, per platform, without RUN, then run.
#
# The archive is real bookworm .debs of curl, jq, procps and what they
# depend on, for amd64 and arm64 (testdata/debian/fetch-debs.sh, cached in
# $CACHE/debian-debs), indexed with apt-ftparchive, signed with a key made
# here, and served on 127.0.0.1 by python3's http.server.

section "4b. Debian packages: gantry append --apt-install curl jq procps on $BE, run under ${ARCHES[*]}"

APT=$WORK/apt
apt_archive() {
  local a
  GANTRY_DEBIAN_DEBS=$CACHE/debian-debs bash "$ROOT/testdata/debian/fetch-debs.sh" >"$WORK/fetch-debs.log" 2>&1 || { cat "$WORK/fetch-debs.log"; return 1; }
  for a in amd64 arm64; do
    mkdir -p "$APT/pool/main/$a" "$APT/dists/bookworm/main/binary-$a"
    for d in "$CACHE/debian-debs/$a"/*.deb; do ln -sf "$d" "$APT/pool/main/$a/$(basename "${d//%3a/:}")"; done
    (cd "$APT" && apt-ftparchive packages "pool/main/$a") | xz -T1 >"$APT/dists/bookworm/main/binary-$a/Packages.xz"
  done
  (cd "$APT/dists/bookworm" && apt-ftparchive -o APT::FTPArchive::Release::Suite=bookworm \
    -o APT::FTPArchive::Release::Architectures="amd64 arm64" -o APT::FTPArchive::Release::Components=main release . >"$WORK/Release" &&
    mv "$WORK/Release" Release)
  # a throwaway key; its agent is stopped at once
  local g=$WORK/gnupg rc=0
  mkdir -p "$g" && chmod 0700 "$g"
  GNUPGHOME=$g gpg --batch -q --pinentry-mode loopback --passphrase '' --quick-gen-key "gantry e2e archive <e2e@example.invalid>" ed25519 sign never &&
    GNUPGHOME=$g gpg --batch -q --yes --clearsign -o "$APT/dists/bookworm/InRelease" "$APT/dists/bookworm/Release" &&
    GNUPGHOME=$g gpg --batch -q --export >"$WORK/apt-key.gpg" || rc=1
  GNUPGHOME=$g gpgconf --kill all || true
  return $rc
}
must "a bookworm archive on loopback: the cached amd64 + arm64 .debs, apt-ftparchive, signed InRelease" apt_archive

# apt_up PORT PID: the server answers, or has died, within 5 s.
apt_up() {
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/dists/bookworm/InRelease" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
APT_URL=""
for port in $(shuf -i 20000-40000 -n 20); do
  setsid python3 -m http.server --bind 127.0.0.1 --directory "$APT" "$port" >"$WORK/apt-http.log" 2>&1 &
  PGIDS+=($!)
  if apt_up "$port" "$!"; then APT_URL=http://127.0.0.1:$port; break; fi
  kill -TERM -- "-$!" 2>/dev/null || true
done
must "the archive served by python3 -m http.server on 127.0.0.1 ($APT_URL)" test -n "$APT_URL"

APT_IMAGE=$REG/taskflow-apt/taskflow-backend:latest
apt_append() {
  "$WORK/bin/gantry" append --base "$BE" --apt-install curl --apt-install jq --apt-install procps \
    --apt-source "deb $APT_URL bookworm main" --apt-keyring "$WORK/apt-key.gpg" \
    --push "$APT_IMAGE" --json --cache-dir "$WORK/gantry-cache" >"$WORK/apt.json" 2>"$WORK/apt.log" || { cat "$WORK/apt.log"; return 1; }
  grep -q 'procps: its postinst script was not run' "$WORK/apt.log" || { echo "no warning about procps's postinst:"; cat "$WORK/apt.log"; return 1; }
}
t=$SECONDS
must "gantry append --base $BE --apt-install curl jq procps --push $APT_IMAGE (the postinst it cannot run is a warning)" apt_append
say "      installed and pushed in $((SECONDS - t))s"
grep -i 'debian' "$WORK/apt.log" | sed 's/^/      | /' | head -n 12

# apt_run ARCH: that platform's image pulled, unpacked and run once as its
# user, with a script of checks instead of its command.
apt_run() {
  local arch=$1 os a v unit=apt-$1 b=$WORK/bundle-apt-$1
  IFS=/ read -r os a v <<<"${PLATFORM[$arch]}"
  skopeo copy --quiet --src-tls-verify=false --override-os "$os" --override-arch "$a" ${v:+--override-variant "$v"} \
    "docker://$APT_IMAGE" "oci:$WORK/layout-apt:$arch" || return 1
  umoci unpack --image "$WORK/layout-apt:$arch" "$b" >/dev/null || return 1
  [ -L "$b/rootfs/bin" ] || { echo "/bin is no longer a symlink"; return 1; }
  jq --arg script 'set -e; uname -m; jq --version; curl --version | head -n 1; ps -o pid,comm; dpkg-query -W -f "\${Package} \${db:Status-Abbrev}\n" jq curl procps python3 libc6; command -v ps' \
    '.process.terminal = false | .process.args = ["/bin/sh", "-c", $script] | .linux.namespaces |= map(select(.type != "network"))' \
    "$b/config.json" >"$b/config.json.new" && mv "$b/config.json.new" "$b/config.json"
  CONTAINERS+=("gantry-$ID-$unit")
  runc --root "$RUNC_ROOT" run --bundle "$b" "gantry-$ID-$unit" >"$WORK/$unit.out" 2>&1 </dev/null || { cat "$WORK/$unit.out"; return 1; }
  local out
  out=$(cat "$WORK/$unit.out")
  for want in "^${UNAME_M[$arch]}\$" '^jq-1\.6' '^curl 7\.88' 'PID COMMAND' '^jq ii' '^curl ii' '^procps ii' '^python3 ii' '^libc6 ii' '^/usr/bin/ps$|^/bin/ps$'; do
    grep -Eq "$want" <<<"$out" || { echo "no line matching $want in:"; echo "$out"; return 1; }
  done
  sed 's/^/      | /' <<<"$out" | head -n 14
}
for arch in amd64 arm64; do
  if [ "$arch" = arm64 ] && [ -n "$ARM64_SKIP" ]; then SKIPPING=$ARM64_SKIP; fi
  check "$arch: the apt image runs jq --version, curl --version, ps; dpkg knows jq, curl, procps and the base's python3 and libc6; /bin is still a symlink" apt_run "$arch"
  SKIPPING=""
done
