// Whether BGP can carry a node's routes to a peer. A plain iBGP mesh (or route reflection) cannot serve a
// peer on another subnet: its next hop does not resolve and BIRD installs an unreachable route
// (kernel-lab.md §4c, pitfall 1). The tor topology can, as long as both nodes have a top-of-rack peer.
import type { RoutingNode } from "../../model/routing-plan";
import { sameSubnet } from "../backend";
import { torPeersOf, type BgpSettings } from "./tor-peers";

export type BgpReach = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export function bgpReachability(bgp: BgpSettings | undefined, self: RoutingNode, peer: RoutingNode): BgpReach {
  if (!bgp) return { ok: false, reason: "spec.bgp is not set" };
  if (bgp.topology === "tor") {
    if (torPeersOf(bgp, self).length === 0) return { ok: false, reason: `${self.name} matches no spec.bgp.peers[].nodeSelector, so it has no top-of-rack peer` };
    if (torPeersOf(bgp, peer).length === 0) return { ok: false, reason: `${peer.name} has no top-of-rack peer, so its block is never announced` };
    return { ok: true };
  }
  if (!sameSubnet(self, peer)) {
    return {
      ok: false,
      reason: `BGP ${bgp.topology} cannot reach ${peer.name} on ${peer.underlayCIDR} from ${self.underlayCIDR}: iBGP next hops on another subnet do not resolve; use topology tor`,
    };
  }
  return { ok: true };
}
