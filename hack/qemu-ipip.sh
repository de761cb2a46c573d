#!/usr/bin/env bash
# Why: IPIP cannot be tested on the build machines' kernel (no ipip module), so this boots Debian's cloud
# kernel in qemu and runs Switchyard's REAL routing code there: test/qemu/guest/ipip-check.ts, bundled with
# esbuild, compiles plans with compileRoutingPlan and applies them with the agent's applyRoutingPlan in
# network namespaces inside the VM, then checks them with real packets. Exit 0 iff the guest printed a
# final `N passed, 0 failed` with N > 0. Everything is cached under
# ${SWITCHYARD_CACHE:-~/.cache/switchyard}/qemu; the initramfs is rebuilt only when its inputs change.
# How-to and timings: docs/qemu.md.
#
# Environment: SWITCHYARD_CACHE (cache root), SWITCHYARD_QEMU_TIMEOUT (seconds for the VM, default 600),
# SWITCHYARD_QEMU_KERNEL_DEB (pin a kernel .deb instead of apt's current one).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
# shellcheck source=hack/qemu/lib.sh
source hack/qemu/lib.sh

# What the checks create: ipip/vxlan tunnels, veths, the fabric bridge, and the agent's NAT table (nft
# loads expression modules on demand; nft_* covers them). modules.dep adds the dependencies.
MODULES=(ipip tunnel4 ip_tunnel vxlan veth bridge nf_tables nfnetlink 'nft_*' nf_nat nf_conntrack)
# TCG keys translated code by virtual address: without randomisation every `ip`/`nft` the agent spawns reuses
# the code translated for the previous one (3x faster per spawn under TCG; docs/qemu.md).
QEMU_KERNEL_ARGS="norandmaps"

[ "$(id -u)" -eq 0 ] || qemu_die "run as root: apt installs, and qemu's console must be usable (full-kernel-vm.md)"
limit="${SWITCHYARD_QEMU_TIMEOUT:-600}"
started="$(qemu_now)"
QEMU_PID=""
QEMU_TAIL_PID=""
QEMU_STAGING=""
work=""
trap 'qemu_cleanup; [ -z "$work" ] || rm -rf "$work"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

qemu_ensure_host_packages
mkdir -p "$QEMU_CACHE/logs"
work="$(mktemp -d)"

# The check program, bundled for the guest (node 20, ESM, every dependency inlined).
t="$(qemu_now)"
mkdir -p "$work/bundle"
"$REPO/node_modules/.bin/esbuild" test/qemu/guest/ipip-check.ts --bundle --platform=node --format=esm --target=node20 \
  --log-level=warning --outfile="$work/bundle/check.mjs" \
  --banner:js="import { createRequire as __syCreateRequire } from 'node:module'; const require = __syCreateRequire(import.meta.url);"
# Pods get their interface from switchyard-cni, as on the host: the static binary goes along.
bash "$REPO/hack/build-cni.sh"
cp "$REPO/dist/cni/switchyard-cni" "$work/bundle/"
qemu_log "bundled test/qemu/guest/ipip-check.ts ($(du -k "$work/bundle/check.mjs" | cut -f1) KB) in $(qemu_since "$t") s"

# The kernel and the initramfs; the lock keeps concurrent runs from building the same files at once.
t="$(qemu_now)"
exec 9>"$QEMU_CACHE/.lock"
flock -w 600 9 || qemu_die "another run holds $QEMU_CACHE/.lock for more than 600 s"
qemu_fetch_kernel
qemu_build_initramfs ipip "$QEMU_KDIR" "$QEMU_KVER" "$work/bundle" "${MODULES[@]}"
flock -u 9
qemu_log "kernel $QEMU_KVER and initramfs ready in $(qemu_since "$t") s"

log="$QEMU_CACHE/logs/ipip-$(date +%Y%m%dT%H%M%S)-$$.log"
qemu_log "booting (TCG, -smp 2, no NIC, limit $limit s); console log: $log"
t="$(qemu_now)"
status=0
qemu_boot "$QEMU_KDIR" "$QEMU_KVER" "$QEMU_CPIO" "$log" "$limit" || status=$?
qemu_log "qemu exited with status $status after $(qemu_since "$t") s (whole run $(qemu_since "$started") s)"
# Keep the last 20 console logs.
find "$QEMU_CACHE/logs" -maxdepth 1 -name 'ipip-*.log' -printf '%T@ %p\n' | sort -rn | tail -n +21 | cut -d' ' -f2- | xargs -r rm -f
[ "$status" -ne 124 ] && [ "$status" -ne 137 ] || qemu_die "the VM did not finish within $limit s"
if qemu_verdict "$log"; then
  qemu_log "PASS: $(qemu_clean <"$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)"
else
  qemu_log "FAIL (console log: $log)"
  exit 1
fi
