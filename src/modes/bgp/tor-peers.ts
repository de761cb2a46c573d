// Top-of-rack peers: with topology tor, each node peers (eBGP) with the routers whose nodeSelector picks
// it, and those routers carry blocks between subnets. BIRD protocol names must be identifiers, so they
// are derived from the peer (`tor_192_168_10_1`, `node_n2`).
import type { ClusterNetworkSpec } from "../../api/cluster-network";
import { matchesLabelSelector } from "../../model/label-selector";
import type { BgpPeerPlan, RoutingNode } from "../../model/routing-plan";

export type BgpSettings = NonNullable<ClusterNetworkSpec["bgp"]>;

/** A BIRD protocol name: `<prefix>_<text with every non-identifier character as _>`. */
export function birdName(prefix: string, text: string): string {
  return `${prefix}_${text.replace(/[^A-Za-z0-9]/g, "_")}`;
}

/** The top-of-rack routers `node` peers with (none unless the topology is tor). */
export function torPeersOf(bgp: BgpSettings | undefined, node: RoutingNode): BgpPeerPlan[] {
  return (bgp?.topology === "tor" ? bgp.peers ?? [] : [])
    .filter((p) => matchesLabelSelector(p.nodeSelector, node.labels))
    .map((p) => ({
      name: birdName("tor", p.address),
      address: p.address,
      asNumber: p.asNumber,
      allowLocalAs: true,
      ...(p.passwordSecretRef ? { passwordSecretRef: p.passwordSecretRef } : {}),
      ...(p.acceptPrefixes?.length ? { acceptPrefixes: p.acceptPrefixes.map((a) => ({ cidr: a.cidr, maxLength: a.maxLength ?? Number(a.cidr.split("/")[1]) })) } : {}),
      description: `top-of-rack ${p.address}`,
    }));
}
