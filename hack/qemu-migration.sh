#!/usr/bin/env bash
# Why: the "Safe mode migration" acceptance item (IPIP -> BGP with 0 packets lost, every TCP connection
# alive with no stall over 200 ms, a denied flow denied at every instant) needs IPIP, which the build
# machines' kernel lacks. This boots Debian's cloud kernel in qemu (hack/qemu/lib.sh) and runs the WHOLE
# real stack in the guest: test/qemu/guest/migration-check.ts, bundled with esbuild, starts the lab API server
# emulator, the Controller and four NodeAgents on two subnets (with BIRD 2, copied into the initramfs with its
# libraries; a fifth BIRD is the top-of-rack router the nodes peer with in BGP),
# drives the migration under live traffic (ping streams, TCP echo streams and connect probes from the
# per-pod helper test/qemu/guest/pod-traffic.ts) and prints `ok`/`not ok` lines, every measured number as `#`
# lines, and `N passed, M failed`. Exit 0 iff that verdict has N > 0 and M == 0.
# How-to, measurements: docs/qemu.md ("The migration check").
#
# Environment: SWITCHYARD_CACHE (cache root), SWITCHYARD_QEMU_TIMEOUT (seconds for the VM, default 480),
# SWITCHYARD_QEMU_KERNEL_DEB (pin a kernel .deb instead of apt's current one).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
# shellcheck source=hack/qemu/lib.sh
source hack/qemu/lib.sh

# IPIP tunnels, pod veths, the fabric bridge, the agents' NetworkPolicy and NAT tables (nft_* covers the
# expressions, including ct and masquerade); vxlan only so the agents' capability probe sees a full kernel.
MODULES=(ipip tunnel4 ip_tunnel vxlan veth bridge nf_tables nfnetlink 'nft_*' nf_nat nf_conntrack)
# BIRD 2 for the BGP side (the agents start one per node), ss for the kernel's TCP retransmission counters,
# chrt (util-linux) to run the measuring processes (ping streams, traffic helpers) SCHED_FIFO.
QEMU_EXTRA_PROGRAMS=(/usr/sbin/bird /usr/sbin/birdc /usr/bin/ss /usr/bin/chrt)
# The control plane saturates the guest's two emulated CPUs, mostly forking and exec'ing tools, which under
# TCG spends long stretches in the kernel. Debian's kernel preempts only voluntarily by default, so even a
# real-time instrument waits for those to reach a preemption point (measured: TCP echo gaps up to 0.5 s with
# SCHED_FIFO helpers, 40-90 ms with preempt=full; docs/qemu.md). Full preemption changes scheduling only.
# norandmaps: TCG keys translated code by virtual address, so with address-space randomisation every new
# process (the agents spawn thousands of ip/nft/sysctl) is translated from scratch: 2.3 MB of host code per
# `ip` run, the 1 GiB translation cache filled every ~30 s, and each full flush stopped the whole guest for
# 100-300 ms (measured with qemu's `info jit`; docs/qemu.md). Without randomisation a tool's code is
# translated once and reused: `ip` runs 3x faster and the cache does not fill within a run.
QEMU_KERNEL_ARGS="preempt=full norandmaps"
# The guest program's own limit (/init kills it after this) stays below the VM's, so the guest can still
# print a verdict and power off.
GUEST_LIMIT=450

[ "$(id -u)" -eq 0 ] || qemu_die "run as root: apt installs, and qemu's console must be usable (full-kernel-vm.md)"
limit="${SWITCHYARD_QEMU_TIMEOUT:-480}"
started="$(qemu_now)"
QEMU_PID=""
QEMU_TAIL_PID=""
QEMU_STAGING=""
work=""
trap 'qemu_cleanup; [ -z "$work" ] || rm -rf "$work"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

qemu_ensure_host_packages /usr/sbin/bird=bird2 /usr/sbin/birdc=bird2 /usr/bin/ss=iproute2 /usr/bin/chrt=util-linux
mkdir -p "$QEMU_CACHE/logs"
work="$(mktemp -d)"

# The check program and the per-pod traffic helper, bundled for the guest (node 20, ESM, every dependency
# inlined). --keep-names: kfc finds a kind's API group by its model class's name (kind.Pod.name), which
# esbuild would otherwise rename (`_V1Pod`). The CRDs go along for the API server emulator.
t="$(qemu_now)"
mkdir -p "$work/bundle/crds"
"$REPO/node_modules/.bin/esbuild" check=test/qemu/guest/migration-check.ts pod-traffic=test/qemu/guest/pod-traffic.ts \
  --bundle --keep-names --platform=node --format=esm --target=node20 --log-level=warning \
  --outdir="$work/bundle" --out-extension:.js=.mjs \
  --banner:js="import { createRequire as __syCreateRequire } from 'node:module'; const require = __syCreateRequire(import.meta.url);"
cp crds/*.yaml "$work/bundle/crds/"
# Pods get their interface from switchyard-cni, which the agents install, as on the host.
bash "$REPO/hack/build-cni.sh"
cp "$REPO/dist/cni/switchyard-cni" "$work/bundle/"
echo "$GUEST_LIMIT" >"$work/bundle/limit"
qemu_log "bundled test/qemu/guest/migration-check.ts and pod-traffic.ts ($(du -sk "$work/bundle" | cut -f1) KB) in $(qemu_since "$t") s"

t="$(qemu_now)"
exec 9>"$QEMU_CACHE/.lock"
flock -w 600 9 || qemu_die "another run holds $QEMU_CACHE/.lock for more than 600 s"
qemu_fetch_kernel
qemu_build_initramfs migration "$QEMU_KDIR" "$QEMU_KVER" "$work/bundle" "${MODULES[@]}"
flock -u 9
qemu_log "kernel $QEMU_KVER and initramfs ready in $(qemu_since "$t") s"

log="$QEMU_CACHE/logs/migration-$(date +%Y%m%dT%H%M%S)-$$.log"
qemu_log "booting (TCG, -smp 2, ${QEMU_MEMORY_MB} MiB, no NIC, kernel args '$QEMU_KERNEL_ARGS', limit $limit s, guest program limit $GUEST_LIMIT s); console log: $log"
t="$(qemu_now)"
status=0
qemu_boot "$QEMU_KDIR" "$QEMU_KVER" "$QEMU_CPIO" "$log" "$limit" || status=$?
qemu_log "qemu exited with status $status after $(qemu_since "$t") s (whole run $(qemu_since "$started") s)"
find "$QEMU_CACHE/logs" -maxdepth 1 -name 'migration-*.log' -printf '%T@ %p\n' | sort -rn | tail -n +21 | cut -d' ' -f2- | xargs -r rm -f
[ "$status" -ne 124 ] && [ "$status" -ne 137 ] || qemu_die "the VM did not finish within $limit s"
if qemu_verdict "$log"; then
  qemu_log "PASS: $(qemu_clean <"$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)"
else
  qemu_log "FAIL (console log: $log)"
  exit 1
fi
