#!/usr/bin/env bash
# Makes the small signed Debian archive beside it that the TaskFlow
# backend's system layer installs tini from (an init for PID 1: it reaps
# zombies and passes SIGTERM on, which Kubernetes relies on), so that the
# example builds offline. It downloads bookworm's tini for amd64 and arm64,
# indexes them with apt-ftparchive and signs the Release with a new
# throwaway key whose public half is archive.gpg. Needs apt-get (a Debian
# mirror), apt-ftparchive (apt-utils) and gpg; run from anywhere:
#
#   bash testdata/taskflow/backend/apt/generate.sh
set -euo pipefail
cd "$(dirname "$0")"
rm -rf pool dists archive.gpg
mkdir -p pool/main
for a in amd64 arm64; do
  if [ "$a" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$a"; then
    dpkg --add-architecture "$a" && apt-get update -q >/dev/null
  fi
done
(cd pool/main && apt-get download -qq -o APT::Sandbox::User=root tini:amd64 tini:arm64)
for a in amd64 arm64; do
  dir=dists/bookworm/main/binary-$a
  mkdir -p "$dir"
  apt-ftparchive --arch "$a" packages pool/main >"$dir/Packages"
  gzip -9n <"$dir/Packages" >"$dir/Packages.gz"
  rm "$dir/Packages"
done
apt-ftparchive -o APT::FTPArchive::Release::Suite=bookworm -o APT::FTPArchive::Release::Codename=bookworm \
  -o APT::FTPArchive::Release::Architectures="amd64 arm64" -o APT::FTPArchive::Release::Components=main \
  -o APT::FTPArchive::Release::Date="$(date -u -d @0 '+%a, %d %b %Y %H:%M:%S UTC')" \
  release dists/bookworm >dists/bookworm/Release.tmp
mv dists/bookworm/Release.tmp dists/bookworm/Release
GNUPGHOME=$(mktemp -d /tmp/gpg.XXXXXX)
export GNUPGHOME
trap 'gpgconf --kill all; rm -rf "$GNUPGHOME"' EXIT
gpg --batch -q --pinentry-mode loopback --passphrase '' --quick-gen-key "gantry TaskFlow example archive <taskflow@example.invalid>" ed25519 sign never
gpg --batch -q --yes --clearsign -o dists/bookworm/InRelease dists/bookworm/Release
gpg --batch -q --export >archive.gpg
rm dists/bookworm/Release
ls -R . | head -20
