// A VXLAN node's tunnel endpoint as its peers see it: a MAC derived from the node's name (so no node has to
// read another's MAC back), and per peer the two entries that make the kernel encapsulate towards it
// without learning: a permanent neighbour (peer's VTEP address -> peer's VTEP MAC) and an FDB entry
// (peer's VTEP MAC -> peer's underlay address). Flannel's kernel VXLAN backend works the same way.
import { shortHash } from "../../model/names";
import type { PlanFdb, PlanNeighbor, RoutingNode } from "../../model/routing-plan";
import { blockGateway, memoize } from "../backend";

export const VXLAN_DEVICE = "sy-vxlan";

/** A deterministic, locally administered unicast MAC for a node's VTEP. */
export const vtepMac: (nodeName: string) => string = memoize((nodeName) => {
  const h = shortHash(`vtep/${nodeName}`, 10);
  return `0e:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}`;
});

/** The neighbour and FDB entries that reach `peer`'s VTEP (none while the peer has no block). */
export function vtepEntries(peer: RoutingNode): { neighbors: PlanNeighbor[]; fdb: PlanFdb[] } {
  const gw = peer.block ? blockGateway(peer.block) : undefined;
  if (!gw) return { neighbors: [], fdb: [] };
  return {
    neighbors: [{ dev: VXLAN_DEVICE, ip: gw, mac: vtepMac(peer.name) }],
    fdb: [{ dev: VXLAN_DEVICE, mac: vtepMac(peer.name), dst: peer.ip }],
  };
}
