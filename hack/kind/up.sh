#!/usr/bin/env bash
# Brings Switchyard up on a real (kind) Kubernetes cluster: a 4-node kind cluster without a default CNI,
# the switchyard image built and loaded into the nodes, then the CRDs (crds/), the Pepr module (the
# ClusterNetwork admission webhook, `npx pepr build` output in dist/), the controller and agent
# workloads (deploy/), and a sample ClusterNetwork; waits until the ClusterNetwork reports Ready.
#
# NEEDS DOCKER (and kind, kubectl, network access to pull the kind node image and Pepr's controller
# image). It CANNOT run on the project's CI machine, which has no Docker and no network beyond the
# package registries: there, `switchyard lab up` / `npm run demo` are the embedded equivalent.
#
# Pods get their interface from switchyard-cni, which each node's agent installs into /opt/cni/bin with
# the node's conflist in /etc/cni/net.d (its block and MTU) once the controller has given the node a
# block; kind's nodes come without a default CNI (kind-config.yaml), so nothing else wires pods.
#
# Usage: hack/kind/up.sh [sample]   (default samples/vxlan.yaml; hack/kind/down.sh removes the cluster)
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${KIND_CLUSTER:-switchyard}"
IMAGE="${SWITCHYARD_IMAGE:-switchyard:dev}"
SAMPLE="${1:-samples/vxlan.yaml}"

for bin in docker kind kubectl; do
  command -v "$bin" >/dev/null 2>&1 || { echo "error: $bin is required (this script needs Docker; see its header)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "error: the Docker daemon is not reachable" >&2; exit 1; }

step() { printf '\n==> %s\n' "$*"; }

step "kind cluster $CLUSTER (no default CNI)"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config hack/kind/kind-config.yaml --wait 0s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

step "image $IMAGE"
docker build -f deploy/Dockerfile -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "CRDs"
kubectl apply -f crds/
kubectl wait --for condition=established --timeout=60s crd/clusternetworks.switchyard.dev crd/nodenetworks.switchyard.dev crd/blockaffinities.switchyard.dev

step "Pepr module (ClusterNetwork admission webhook)"
if [ ! -s dist/pepr-module-switchyard.yaml ]; then bash hack/pepr-build.sh; fi
kubectl apply -f dist/pepr-module-switchyard.yaml
kubectl -n pepr-system rollout status deploy/pepr-switchyard --timeout=180s

step "controller and agents"
kubectl apply -k deploy/
kubectl -n switchyard-system rollout status deploy/switchyard-controller --timeout=180s
kubectl -n switchyard-system rollout status ds/switchyard-agent --timeout=180s

step "ClusterNetwork from $SAMPLE"
kubectl apply -f "$SAMPLE"

step "switchyard-cni installed by every node's agent"
for node in $(kubectl get nodes -o jsonpath='{.items[*].metadata.name}'); do
  ok=""
  for _ in $(seq 1 60); do
    if docker exec "$node" test -x /opt/cni/bin/switchyard-cni -a -s /etc/cni/net.d/10-switchyard.conflist; then ok=1; break; fi
    sleep 2
  done
  [ -n "$ok" ] || { echo "error: the agent on $node did not install switchyard-cni within 120 s (kubectl -n switchyard-system logs ds/switchyard-agent)" >&2; exit 1; }
  echo "   $node: block $(kubectl get nodenetwork "$node" -o jsonpath='{.spec.block}'), mtu $(kubectl get nodenetwork "$node" -o jsonpath='{.spec.mtu}')"
done

step "waiting for the ClusterNetwork to be Ready"
kubectl wait --for=jsonpath='{.status.phase}'=Ready clusternetwork/default --timeout=300s
kubectl get clusternetworks,nodenetworks
