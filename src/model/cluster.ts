// The controller's view of the cluster objects that matter to the network, reduced to what compile needs.
// Built by the controller's store (or the lab/conformance runner) from API objects; consumed by the pure
// compilers. Plain data, JSON-serialisable.

export type Protocol = "TCP" | "UDP" | "SCTP";
export const PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol: Protocol;
}

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The node the pod is scheduled on. */
  readonly node: string;
  /** The pod's IPv4 address; undefined while the pod is not yet addressed. */
  readonly ip?: string;
  /** Host-network pods share the node's address; NetworkPolicy does not isolate them. */
  readonly hostNetwork: boolean;
  readonly ports: readonly ContainerPort[];
}

export interface NamespaceInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface NodeInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The node's underlay (InternalIP) address. */
  readonly ip: string;
}

/** A node as the plan compiler sees it: where it is on the underlay, which decides how peers reach it. */
export interface ClusterNode extends NodeInfo {
  /** The underlay subnet of its address (e.g. 192.168.10.0/24): decides L2 adjacency. */
  readonly underlayCIDR: string;
  /** The MTU of its underlay interface; 1500 when unknown. */
  readonly underlayMtu?: number;
}

/** Everything the policy compiler reads. `policies` are networking.k8s.io/v1 NetworkPolicy objects as the API returns them. */
export interface PolicySnapshot {
  readonly namespaces: readonly NamespaceInfo[];
  readonly pods: readonly PodInfo[];
  readonly policies: readonly unknown[];
}

export function podKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}
