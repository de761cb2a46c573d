#!/usr/bin/env bash
# Deletes the kind cluster made by hack/kind/up.sh (needs Docker and kind; not for the CI machine).
set -euo pipefail
kind delete cluster --name "${KIND_CLUSTER:-switchyard}"
