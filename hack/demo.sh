#!/usr/bin/env bash
# The main job (`npm run demo`): installs what a fresh machine lacks, then runs `switchyard demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/ensure-deps.sh --no-kube
export PATH="/usr/sbin:/sbin:$PATH"
exec node bin/switchyard.mjs demo "$@"
