// The identities of Switchyard's own resources: group, version, kind and the names the API serves them
// under. One definition, read by the CRD generator, the Kubernetes clients and the tests.
import { API_GROUP, API_VERSION } from "./common";

export interface ResourceKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
}

export const CLUSTER_NETWORK: ResourceKind = { group: API_GROUP, version: API_VERSION, kind: "ClusterNetwork", plural: "clusternetworks", singular: "clusternetwork", shortNames: ["cn", "cnet"] };
export const NODE_NETWORK: ResourceKind = { group: API_GROUP, version: API_VERSION, kind: "NodeNetwork", plural: "nodenetworks", singular: "nodenetwork", shortNames: ["nn", "nnet"] };
export const BLOCK_AFFINITY: ResourceKind = { group: API_GROUP, version: API_VERSION, kind: "BlockAffinity", plural: "blockaffinities", singular: "blockaffinity", shortNames: ["ba"] };

/** Group, version, kind and plural: what Kubernetes clients (kfc's kindOverride, Pepr's bindings) name a kind by. */
export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
}

const gvkOf = (k: ResourceKind): GroupVersionKind => ({ group: k.group, version: k.version, kind: k.kind, plural: k.plural });

export const ClusterNetworkGVK = gvkOf(CLUSTER_NETWORK);
export const NodeNetworkGVK = gvkOf(NODE_NETWORK);
export const BlockAffinityGVK = gvkOf(BLOCK_AFFINITY);
