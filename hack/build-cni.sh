#!/usr/bin/env bash
# Builds the Go side into dist/cni/: switchyard-cni (the CNI plugin) and cni-driver (a libcni driver the
# tests and bench/cni.ts run the plugin through, as a container runtime does). Static (CGO_ENABLED=0),
# -trimpath. Only when stale: when a .go file (not a test), go.mod or go.sum under cni/ (or this script) is newer than
# a binary, or a binary is missing; the check is one `find` over cni/. GOMODCACHE and GOCACHE stay at
# Go's defaults, outside the repository. Binaries are written beside their place and renamed into it,
# so a process starting while this runs never executes half a file.
# Usage: hack/build-cni.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
OUT=dist/cni
BINS=(switchyard-cni cni-driver)

stale=""
if [ "${1:-}" = "--force" ]; then stale="forced"; fi
for bin in "${BINS[@]}"; do
  if [ -z "$stale" ] && [ ! -x "$OUT/$bin" ]; then stale="$OUT/$bin is missing"; fi
done
if [ -z "$stale" ]; then
  # The oldest binary is the reference: anything newer than it is an input it may not contain.
  oldest="$(ls -tr "${BINS[@]/#/$OUT/}" | head -n 1)"
  newer="$(find cni hack/build-cni.sh \( \( -name '*.go' ! -name '*_test.go' \) -o -name go.mod -o -name go.sum -o -name build-cni.sh \) -newer "$oldest" -print -quit)"
  if [ -n "$newer" ]; then stale="$newer changed"; fi
fi
if [ -z "$stale" ]; then exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  echo "build-cni: no go command (expected at /usr/local/go/bin/go); cannot build $OUT ($stale)" >&2
  exit 1
fi
echo "==> building $OUT ($stale)"
mkdir -p "$OUT"
rev="$(git rev-parse --short HEAD 2>/dev/null || echo dev)"
for bin in "${BINS[@]}"; do
  tmp="$OUT/.$bin.$$.tmp"
  (cd cni && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$rev" -o "../$tmp" "./cmd/$bin")
  mv -f "$tmp" "$OUT/$bin"
done
