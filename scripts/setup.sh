#!/usr/bin/env bash
# Installs what berth needs on a Debian machine, only what is missing:
# Debian packages (host tools) and the npm packages from the lock file.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
pkgs="runc conmon iproute2 nftables util-linux passwd curl wrk busybox-static catatonit gcc libc6-dev tmux procps attr docker-registry skopeo apache2-utils mmdebstrap zstd xz-utils bzip2 python3-docker docker-compose golang-github-containers-common chromium docker.io git openssh-client qemu-user-static"
need=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  echo "setup: installing Debian packages:$need"
  if [ "$(id -u)" != 0 ]; then echo "setup: run as root to install packages" >&2; exit 1; fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # docker.io is for the tests (Docker's own registry client, in a dockerd each test starts for itself):
  # its package must not start a machine-wide dockerd, which would set the FORWARD policy to DROP.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1; fi
  rc=0; apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need >/dev/null || rc=$?
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || exit "$rc"
fi
if ! command -v node >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
stamp=node_modules/.berth-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
getent group berth >/dev/null 2>&1 || groupadd --system berth 2>/dev/null || true
# Foreign architectures (multi-platform builds): binfmt_misc + qemu-aarch64, an arm64 busybox-static.
[ "$(id -u)" != 0 ] || bash scripts/foreign-arch.sh
