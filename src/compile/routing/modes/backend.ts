// One interface for every mode (one file per mode beside this one): how a node sending with the mode
// reaches a peer, what that needs from the kernel, and the mode's encapsulation overhead.
import type { Mode } from "../../../api/cluster-network";
import type { RoutingNode, Transport } from "../../../model/routing-plan";

export type KernelFeature = "vxlan" | "ipip" | "bird";

export interface PairContext {
  readonly self: RoutingNode;
  readonly peer: RoutingNode;
  /** Both nodes' addresses are on one underlay subnet (L2 adjacency). */
  readonly sameSubnet: boolean;
  readonly crossSubnet: boolean;
  /** For bgp: whether BGP can carry routes between these two nodes, and if not, why. */
  readonly bgpReach: { readonly ok: boolean; readonly reason?: string };
}

export type SendDecision = { readonly transport: Transport } | { readonly transport: "none"; readonly reason: string };

export interface ModeBackend {
  readonly mode: Mode;
  /** Bytes of encapsulation per packet. */
  readonly overhead: number;
  /** What a node must have to send (and receive) with this mode. */
  readonly requires: readonly KernelFeature[];
  /** How `self` sends to `peer` when `self` sends with this mode. */
  decideSend(ctx: PairContext): SendDecision;
}
