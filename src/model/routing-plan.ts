// The routing plan: for one node, the devices, routes, FDB and neighbour entries (and BIRD settings) that
// carry pod traffic to every peer. Compiled (pure) by compileRoutingPlan; applied by the agent, which owns
// exactly what a plan lists and removes what no longer appears in it. What is specific to one mode (its
// device's attributes, its overhead, how it reaches a peer) lives in that mode's folder under src/modes;
// this file only says what every room needs to read a plan.
import type { BgpPasswordSecretRef, ClusterNetworkSpec, Mode } from "../api/cluster-network";

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

/**
 * How packets cross from a node to a peer: `native` (plain routing over the underlay: host-gw, and
 * crossSubnet within a subnet), or the transport of the mode named so (vxlan, ipip: encapsulation; bgp:
 * routes BIRD learns). src/modes/registry.ts maps each transport to the backend that provides it.
 */
export type Transport = Mode | "native";

/**
 * The settings block of each mode that has one, by mode name (spec.vxlan, spec.bgp): the spec's, or the
 * source mode's kept from before a migration (status.activeConfig).
 */
export type ModeSettings = { readonly [M in Extract<keyof ClusterNetworkSpec, Mode>]?: ClusterNetworkSpec[M] };

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

/**
 * A tunnel device a mode keeps on a node (`devices.<mode>` in the plan). Every device has a name and an
 * MTU, and may have a MAC and its own address; the rest of its attributes are the mode's
 * (src/modes/<mode>/device.ts describes them and how the agent creates and checks the device).
 */
export interface PlanDevice {
  readonly name: string;
  readonly mtu: number;
  /** The link's MAC, when the mode fixes it (the agent corrects it in place). */
  readonly mac?: string;
  /** The device's own address, /32 (the agent keeps exactly this one on a device that owns its addresses). */
  readonly address?: string;
}

export interface PlanRoute {
  readonly dst: string;
  readonly via?: string;
  readonly dev?: string;
  readonly onlink?: boolean;
  readonly metric: number;
  /** The transport the route sends with (a static route: native or a tunnel, never a daemon's). */
  readonly transport: Transport;
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

/** A prefix a peer may announce, with the more specific ones up to maxLength (BIRD: `cidr{len,maxLength}`). */
export interface BgpAcceptPrefix {
  readonly cidr: string;
  readonly maxLength: number;
}

export interface BgpPeerPlan {
  /** BIRD protocol name: derived from the peer (node name or router address). */
  readonly name: string;
  readonly address: string;
  readonly asNumber: number;
  readonly routeReflectorClient?: boolean;
  readonly allowLocalAs?: boolean;
  /**
   * The session's password, by reference only (a Secret in Switchyard's namespace): the agent reads it,
   * so the password never appears in a NodeNetwork, which every agent can read.
   */
  readonly passwordSecretRef?: BgpPasswordSecretRef;
  /** What this peer may announce beyond pod blocks (a top-of-rack router's spec.bgp.peers[].acceptPrefixes). */
  readonly acceptPrefixes?: readonly BgpAcceptPrefix[];
  readonly description: string;
}

export interface BgpPlan {
  readonly asNumber: number;
  readonly routerId: string;
  /**
   * What any peer may announce: prefixes of exactly blockSize (nodes' blocks) and /32s (borrowed pod
   * addresses) inside these pools. Everything else is rejected on import.
   */
  readonly podCIDRs: readonly string[];
  readonly blockSize: number;
  /** Prefixes this node originates: its block and borrowed /32s. */
  readonly originate: readonly string[];
  readonly kernelMetric: number;
  readonly routeReflectorClusterId?: string;
  readonly peers: readonly BgpPeerPlan[];
  /** Underlay interface pattern for `protocol direct` (next-hop resolution). */
  readonly underlayInterface: string;
}

/** The parts of a plan that belong to one mode beyond devices and entries (bgp: BIRD's configuration). */
export type ModePlanParts = Pick<RoutingPlan, "bgp">;

/** A problem of a node with its mode: becomes a condition on the node and the ClusterNetwork. */
export interface PlanDiagnostic {
  readonly reason: string;
  readonly message: string;
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
  /** The tunnel device of every mode in use that has one, keyed by mode (devices.vxlan, devices.ipip). */
  readonly devices: { readonly [M in Mode]?: PlanDevice };
  readonly neighbors: readonly PlanNeighbor[];
  readonly fdb: readonly PlanFdb[];
  readonly routes: readonly PlanRoute[];
  readonly peers: readonly PeerDecision[];
  /** BIRD's configuration, when bgp is in use (a mode's own part of the plan: see ModePlanParts). */
  readonly bgp?: BgpPlan;
  readonly nat: { readonly enabled: boolean; readonly podCIDRs: readonly string[]; readonly nodeIP: string };
  /** Problems of this node with the mode: become a condition on the node and the ClusterNetwork. */
  readonly diagnostics: readonly PlanDiagnostic[];
}
