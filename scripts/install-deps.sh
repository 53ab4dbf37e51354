#!/usr/bin/env bash
# Installs, with apt only, every Debian package crisp needs to build, run and test.
# Idempotent: installs only what is missing, and runs `apt-get update` only then.
# Shared by `make run`, `make test` and CI.
set -euo pipefail

packages=(
  # build
  pkg-config libarchive-dev libsqlite3-dev zlib1g-dev zstd protobuf-compiler gcc libc6-dev
  # run: OCI runtimes, the container monitor, CNI plugins
  runc crun conmon containernetworking-plugins iproute2 iptables util-linux
  # checkpoint/restore (enable_criu_support): runc runs criu from PATH
  criu
  # /etc/containers/policy.json (accept every image): crispd refuses to pull without a policy
  golang-github-containers-common
  # tests: a real registry, test images, filesystems
  docker-registry busybox-static btrfs-progs e2fsprogs xfsprogs curl openssl bc python3 python3-websocket
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# docker-registry starts a system service on :5000 when installed; the tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $SUDO systemctl stop docker-registry || true
fi
