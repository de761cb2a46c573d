#!/usr/bin/env bash
# Installs what Switchyard needs on a fresh Debian machine, and nothing when it is already there:
# Debian packages for the lab's real kernel tools (only the missing ones), npm packages from the lock
# file (only when node_modules does not match it), the compiled command in dist/cli (only when a
# source changed since the last build: a stat of each input, see hack/build-stamp.mjs), and the Go CNI
# plugin in dist/cni (hack/build-cni.sh, as cheap when nothing changed; Go itself is expected at
# /usr/local/go/bin), and kube-apiserver, kubectl and etcd from Go modules in ~/.cache/switchyard
# (hack/build-kube.sh: minutes the first time, then nothing), with the node binaries the real-node tests
# run (kubelet, kube-controller-manager, kube-scheduler; containerd and runc are Debian's). Safe to run
# again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

# binary -> Debian package
declare -A PKG=(
  [nft]=nftables [iptables]=iptables [iptables-restore]=iptables [ipset]=ipset [ip]=iproute2 [bridge]=iproute2
  [bird]=bird2 [birdc]=bird2 [iperf3]=iperf3 [ping]=iputils-ping [conntrack]=conntrack [python3]=python3
  [openssl]=openssl [containerd]=containerd [ctr]=containerd [runc]=runc
)
missing=()
for bin in "${!PKG[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$bin" ] && ! [ -x "/sbin/$bin" ]; then
    missing+=("${PKG[$bin]}")
  fi
done
# The reference CNI plugins (portmap, bandwidth, tuning, ptp, host-local) in /usr/lib/cni, off PATH: the CNI
# tests chain them after switchyard-cni, and bench/cni.ts measures ptp + host-local beside it.
if ! [ -x /usr/lib/cni/portmap ]; then missing+=(containernetworking-plugins); fi
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="/usr/sbin:/sbin:$PATH"

# npm packages, from the lock file, when node_modules was not installed from this exact lock file.
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.switchyard-lock 2>/dev/null)" != "$lock_hash" ]; then
  echo "==> installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.switchyard-lock
fi

# The switchyard command runs the bundle in dist/cli (`npm ci` builds it through `prepare`).
node hack/build.mjs --if-stale
# The CNI plugin and its libcni driver in dist/cni (Go, from cni/), when a Go source changed.
bash hack/build-cni.sh
# The real control plane (kube-apiserver, kubectl, etcd) in the cache outside the repository, once: the
# tests prove the lab on it. With --no-kube (the demo), not needed. Without Go, the tests that need it
# say so and the lab tests fall back to the emulator.
if [ "${1:-}" != "--no-kube" ]; then
  bash hack/build-kube.sh --nodes >/dev/null || echo "note: no real control plane binaries (see above); its tests will say they skip" >&2
fi
