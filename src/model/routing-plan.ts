// The routing plan: for one node, the devices, routes, FDB and neighbour entries (and BIRD settings) that
// carry pod traffic to every peer. Compiled (pure) by compileRoutingPlan; applied by the agent, which owns
// exactly what a plan lists and removes what no longer appears in it.
import type { ClusterNetworkSpec, Mode } from "../api/cluster-network";

/** Route protocol number marking the routes Switchyard owns (`ip route ... proto 77`); BIRD's are `proto bird`. */
export const SWITCHYARD_RTPROTO = 77;

/**
 * Route metrics. The metric is part of a kernel route's key, so routes of two transports can coexist and
 * the lower metric wins. Switching a node's sending side is then "add the winner, delete the loser" with
 * no gap (reference: kernel-lab.md section 7, zero-loss order).
 */
export const METRIC = {
  /** Static routes of the transport the node sends with now. */
  preferred: 50,
  /** Routes BIRD installs (its kernel protocol metric). Beats standby, loses to preferred static routes. */
  bird: 100,
  /** Routes of another transport kept ready during a migration (instant fallback). */
  standby: 200,
} as const;

export type Transport = "vxlan" | "ipip" | "native" | "bgp";

export const MODE_OVERHEAD: Readonly<Record<Mode, number>> = { vxlan: 50, ipip: 20, "host-gw": 0, bgp: 0 };

export interface RoutingNode {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Underlay (InternalIP) address. */
  readonly ip: string;
  /** The underlay subnet of that address (e.g. 192.168.10.0/24): decides L2 adjacency. */
  readonly underlayCIDR: string;
  /** Underlay MTU (1500 when unknown). */
  readonly underlayMtu?: number;
  /** The node's pod block, when allocated. */
  readonly block?: string;
  /** The mode this node sends with now (differs from the spec's mode during a migration). */
  readonly mode: Mode;
}

export interface RoutingInput {
  readonly spec: ClusterNetworkSpec;
  readonly nodes: readonly RoutingNode[];
  /** Every mode some node sends with or will send with (source and target during a migration). */
  readonly modesInUse: readonly Mode[];
  /** Pod addresses outside their node's block (static requests): routed as /32s to their node. */
  readonly borrowed?: readonly { readonly ip: string; readonly node: string }[];
}

export interface VxlanDevice {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  readonly mac: string;
  readonly local: string;
  /** The device's own address: the first address of the node's block, /32. */
  readonly address?: string;
  readonly mtu: number;
}

export interface IpipDevice {
  readonly name: string;
  readonly local: string;
  readonly mtu: number;
}

export interface PlanRoute {
  readonly dst: string;
  readonly via?: string;
  readonly dev?: string;
  readonly onlink?: boolean;
  readonly metric: number;
  readonly transport: Exclude<Transport, "bgp">;
  /** The peer node this route reaches (for the comment-like audit trail and status). */
  readonly peer: string;
}

export interface PlanNeighbor {
  readonly dev: string;
  readonly ip: string;
  readonly mac: string;
}

export interface PlanFdb {
  readonly dev: string;
  readonly mac: string;
  readonly dst: string;
}

export interface BgpPeerPlan {
  /** BIRD protocol name: derived from the peer (node name or router address). */
  readonly name: string;
  readonly address: string;
  readonly asNumber: number;
  readonly routeReflectorClient?: boolean;
  readonly allowLocalAs?: boolean;
  readonly description: string;
}

export interface BgpPlan {
  readonly asNumber: number;
  readonly routerId: string;
  /** Prefixes this node originates: its block and borrowed /32s. */
  readonly originate: readonly string[];
  readonly kernelMetric: number;
  readonly routeReflectorClusterId?: string;
  readonly peers: readonly BgpPeerPlan[];
  /** Underlay interface pattern for `protocol direct` (next-hop resolution). */
  readonly underlayInterface: string;
}

export interface PeerDecision {
  readonly peer: string;
  /** How this node sends to the peer; `none` when the mode cannot serve this pair. */
  readonly transport: Transport | "none";
  readonly reason?: string;
}

export interface RoutingPlan {
  readonly node: string;
  readonly nodeIP: string;
  readonly underlayCIDR: string;
  readonly block?: string;
  readonly mode: Mode;
  readonly podMtu: number;
  /** The node's health address (its block's first address), kept on lo: peers probe it through pod routes. */
  readonly healthAddress?: string;
  readonly devices: { readonly vxlan?: VxlanDevice; readonly ipip?: IpipDevice };
  readonly neighbors: readonly PlanNeighbor[];
  readonly fdb: readonly PlanFdb[];
  readonly routes: readonly PlanRoute[];
  readonly peers: readonly PeerDecision[];
  readonly bgp?: BgpPlan;
  readonly nat: { readonly enabled: boolean; readonly podCIDRs: readonly string[]; readonly nodeIP: string };
  /** Problems of this node with the mode: become a condition on the node and the ClusterNetwork. */
  readonly diagnostics: readonly { readonly reason: string; readonly message: string }[];
}
