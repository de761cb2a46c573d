// API objects as the controller's watches deliver them, for unit tests with no server: Nodes as their
// agents annotate them, a ClusterNetwork, Pods, Namespaces; and what a node's agent reports in its
// NodeNetwork status. Small on purpose: each test states the few fields its case turns on.
import { POD_MTU_ANNOTATION, UNDERLAY_CIDR_ANNOTATION, UNDERLAY_MTU_ANNOTATION } from "../../src/api/annotations";

type Obj = Record<string, unknown>;

/** A ready node on the 192.168.10.0/24 underlay (n1 = .11, n2 = .12, ...). */
export function nodeObject(name: string, opts: { ip?: string; cidr?: string; mtu?: number; labels?: Record<string, string> } = {}): Obj {
  const index = Number(name.replace(/\D/g, "")) || 1;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: opts.labels ?? {}, annotations: { [UNDERLAY_CIDR_ANNOTATION]: opts.cidr ?? "192.168.10.0/24", [UNDERLAY_MTU_ANNOTATION]: String(opts.mtu ?? 1500) } },
    status: { addresses: [{ type: "InternalIP", address: opts.ip ?? `192.168.10.${10 + index}` }] },
  };
}

/** A node its agent has not annotated yet: no plan can be compiled for it (NodeNotReady). */
export function unannotatedNodeObject(name: string, ip: string): Obj {
  return { apiVersion: "v1", kind: "Node", metadata: { name }, status: { addresses: [{ type: "InternalIP", address: ip }] } };
}

export function clusterNetworkObject(spec: Obj = {}, metadata: Obj = {}): Obj {
  return {
    apiVersion: "switchyard.dev/v1alpha1",
    kind: "ClusterNetwork",
    metadata: { name: "default", ...metadata },
    spec: { podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "vxlan", ...spec },
  };
}

export function namespaceObject(name: string, labels: Record<string, string> = {}): Obj {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

/** A running pod; `mtu` is what its CNI recorded for its interface. */
export function podObject(namespace: string, name: string, node: string, opts: { ip?: string; mtu?: number; labels?: Record<string, string> } = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace, name, labels: opts.labels ?? {}, ...(opts.mtu !== undefined ? { annotations: { [POD_MTU_ANNOTATION]: String(opts.mtu) } } : {}) },
    spec: { nodeName: node, containers: [{ name: "c" }] },
    status: { phase: "Running", ...(opts.ip ? { podIP: opts.ip } : {}) },
  };
}

/** What every lab kernel can do, as an agent reports it. */
export const ALL_CAPABILITIES: Readonly<Record<string, boolean>> = { vxlan: true, ipip: true, bird: true, nftables: true, iptables: true, ipset: true, wireguard: false };
