#!/usr/bin/env bash
# Builds the Pepr module and checks that the output exists: `pepr build` exits 0 even when it fails
# (apiserver-emulator.md section 10), so its exit code proves nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/pepr-module-switchyard.yaml
rm -f "$out" dist/pepr-switchyard.cjs
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
npx --no-install pepr build >"$log" 2>&1 || true
if [ ! -s "$out" ] || [ ! -s dist/pepr-switchyard.cjs ]; then
  echo "pepr build produced no module; its output:" >&2
  tail -40 "$log" >&2
  exit 1
fi
if ! grep -q "clusternetworks" "$out" || ! grep -q "kind: ValidatingWebhookConfiguration" "$out"; then
  echo "pepr build output lacks the ClusterNetwork validating webhook" >&2
  exit 1
fi
echo "pepr build: $out ($(wc -c <"$out") bytes) with the ClusterNetwork validating webhook"
