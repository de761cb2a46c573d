#!/usr/bin/env bash
# The test command (`npm test`): installs what a fresh machine lacks, then typecheck, lint, the CRD drift
# check, the Pepr build check, and every test (unit, property, CLI and real-kernel lab tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/ensure-deps.sh
export PATH="/usr/sbin:/sbin:$PWD/node_modules/.bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
step "typecheck";            npx --no-install tsc --noEmit -p tsconfig.json
step "lint";                 npx --no-install eslint .
step "CRD drift check";      npx --no-install tsx hack/gen-crds.ts --check
step "pepr build";           bash hack/pepr-build.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root; the kernel tests need root to create network namespaces and will say so" >&2
fi
# The upstream Kubernetes NetworkPolicy e2e scenarios as data (a copy of shared/conformance, see its FORMAT.md).
CORPUS="${SWITCHYARD_CORPUS:-test/fixtures/conformance/netpol-upstream.yaml}"
step "NetworkPolicy conformance, nftables backend"; node bin/switchyard.mjs conformance "$CORPUS" --backend nftables
step "NetworkPolicy conformance, iptables backend"; node bin/switchyard.mjs conformance "$CORPUS" --backend iptables
step "tests (vitest)";       npx --no-install vitest run
