// Every annotation and label Switchyard reads or writes on objects it does not own the schema of (Nodes,
// Pods, its own ClusterNetwork metadata): the names are part of the public contract, like the CRD fields.

/** On a Node: the underlay subnet of its InternalIP, set by the node's agent (the controller's L2-adjacency input). */
export const UNDERLAY_CIDR_ANNOTATION = "switchyard.dev/underlay-cidr";
/** On a Node: the MTU of the interface holding its InternalIP, set by the node's agent. */
export const UNDERLAY_MTU_ANNOTATION = "switchyard.dev/underlay-mtu";
/** On a Pod: the MTU its interface was given, set by the CNI side. */
export const POD_MTU_ANNOTATION = "switchyard.dev/mtu";
/** On a Pod: a fixed address it asks for, as Calico users know it (`["10.0.0.10"]`). */
export const STATIC_IP_ANNOTATION = "switchyard.dev/ip-addrs";
/** On a ClusterNetwork: `pause|resume|abort|retry`, written by `switchyard migrate`, consumed (and removed) by the controller. */
export const MIGRATION_CONTROL_ANNOTATION = "switchyard.dev/migration-control";
/** On a NodeNetwork: the ClusterNetwork it was compiled from. */
export const CLUSTER_NETWORK_LABEL = "switchyard.dev/cluster-network";

/** The JSON-patch path of an annotation (RFC 6901: `/` in the key is written `~1`). */
export function annotationPath(key: string): string {
  return `/metadata/annotations/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
}
