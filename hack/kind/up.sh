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
# Known gap: pods also need a CNI plugin on every node to get their veth. Switchyard's own plugin (host
# veth named like the lab's, podInterfaceName(ns, name), which the nftables policy keys on) does not
# exist yet; until it does, this script writes a `ptp` + `host-local` conflist per node from the node's
# NodeNetwork block, which gives pods addresses and routes (the routing modes work) but NOT NetworkPolicy
# enforcement.
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
kubectl wait --for condition=established --timeout=60s crd/clusternetworks.switchyard.dev crd/nodenetworks.switchyard.dev

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

step "CNI conflist per node (ptp + host-local on the node's block; see the header's known gap)"
for node in $(kubectl get nodes -o jsonpath='{.items[*].metadata.name}'); do
  block=""
  for _ in $(seq 1 60); do
    block="$(kubectl get nodenetwork "$node" -o jsonpath='{.spec.block}' 2>/dev/null || true)"
    [ -n "$block" ] && break
    sleep 2
  done
  [ -n "$block" ] || { echo "error: NodeNetwork $node has no block after 120 s" >&2; exit 1; }
  mtu="$(kubectl get nodenetwork "$node" -o jsonpath='{.spec.mtu}')"
  docker exec -i "$node" sh -c 'cat > /etc/cni/net.d/10-switchyard.conflist' <<CONF
{
  "cniVersion": "0.4.0",
  "name": "switchyard",
  "plugins": [
    { "type": "ptp", "mtu": ${mtu:-1450},
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$block" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CONF
  echo "   $node: $block (mtu ${mtu:-1450})"
done

step "waiting for the ClusterNetwork to be Ready"
kubectl wait --for=jsonpath='{.status.phase}'=Ready clusternetwork/default --timeout=300s
kubectl get clusternetworks,nodenetworks
