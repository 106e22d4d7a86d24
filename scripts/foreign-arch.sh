#!/usr/bin/env bash
# Foreign architectures for multi-platform builds (`berth build --platform linux/amd64,linux/arm64`),
# only what is missing, so it can run again and again:
# - binfmt_misc mounted and qemu-aarch64 (Debian's qemu-user-static) registered with the F flag (the kernel
#   opens the interpreter at registration, so it runs inside containers whose root has no qemu);
# - an arm64 busybox-static from Debian, for `berth image bootstrap --platform linux/arm64 busybox` (an arm64
#   base image with no registry): unpacked into /usr/local/lib/berth/busybox-static-arm64/bin/busybox.
# Needs root. On a machine that cannot mount binfmt_misc it warns and leaves the rest done.
set -eu
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" != 0 ]; then echo "foreign-arch: run as root" >&2; exit 1; fi
bf=/proc/sys/fs/binfmt_misc
if [ ! -e "$bf/register" ]; then
  mount -t binfmt_misc binfmt_misc "$bf" 2>/dev/null || echo "foreign-arch: warning: cannot mount binfmt_misc at $bf: foreign RUN steps will fail" >&2
fi
if [ -e "$bf/register" ]; then
  for a in aarch64; do
    conf=/usr/lib/binfmt.d/qemu-$a.conf
    # The package's own line (systemd-binfmt would write it at boot; a container has no systemd).
    if [ ! -e "$bf/qemu-$a" ] && [ -f "$conf" ]; then grep -v '^#' "$conf" | head -n1 > "$bf/register"; fi
  done
fi
dest=/usr/local/lib/berth/busybox-static-arm64
if [ ! -x "$dest/bin/busybox" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get -o DPkg::Lock::Timeout=600 update -qq
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 2>/dev/null) || { apt-get -o DPkg::Lock::Timeout=600 update -qq; (cd "$tmp" && apt-get download -qq busybox-static:arm64); }
  dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/x"
  mkdir -p "$dest/bin"
  install -m 0755 "$tmp/x/bin/busybox" "$dest/bin/busybox.new"
  mv "$dest/bin/busybox.new" "$dest/bin/busybox"
fi
