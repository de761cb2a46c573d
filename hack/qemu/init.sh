#!/bin/bash
# Why: this is /init of the qemu guest (hack/qemu/lib.sh builds the initramfs around it). It mounts what
# `ip netns` and node need, runs the bundled check program under a time limit and powers the VM off,
# whatever happens: a guest that hangs or panics would otherwise hold the host's timeout for minutes.
# The check program prints the verdict (`N passed, M failed`); if it dies before that, this script prints
# a failing verdict itself, so the host always sees one. bash, not busybox sh: busybox sh would run its
# own `ip` applet (no netns support) ahead of PATH (full-kernel-vm.md, "Things to know").
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
# The check program refuses to build its namespaces anywhere else.
export SWITCHYARD_QEMU_GUEST=1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns /root
# Kernel messages (module loads, link state) would interleave with the check's lines on the console.
echo 1 >/proc/sys/kernel/printk
ip link set lo up

echo "# guest: $(uname -r), /init after $(cut -d' ' -f1 /proc/uptime) s"

poweroff_now() {
  sync
  poweroff -f 2>/dev/null
  echo o >/proc/sysrq-trigger
  # Not reached; if it were, /init exiting makes the kernel panic, and panic=-1 with -no-reboot ends qemu.
  exit 0
}

# Exit status of the check: 0 = all passed, 1 = it printed a verdict with failures, else it crashed.
limit=480
# An entry point may ship its own limit in seconds as /check/limit (hack/qemu-migration.sh does).
if [ -f /check/limit ] && [[ "$(cat /check/limit)" =~ ^[0-9]+$ ]]; then limit="$(cat /check/limit)"; fi
if [ -f /check/check.mjs ]; then
  timeout "$limit" node /check/check.mjs
  rc=$?
else
  echo "not ok - /check/check.mjs is missing from the initramfs"
  rc=2
fi
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
  [ "$rc" -eq 143 ] && echo "not ok - the check program did not finish within $limit s (killed)"
  echo "not ok - the check program exited with status $rc before its verdict"
  echo "0 passed, 1 failed"
fi
echo "# guest: done after $(cut -d' ' -f1 /proc/uptime) s"
poweroff_now
