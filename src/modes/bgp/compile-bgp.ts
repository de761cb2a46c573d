// One node's BGP plan (rendered to bird.conf by src/render/bird.ts): the sessions of its topology, the
// prefixes it originates, and the kernel metric BIRD installs learned routes at (METRIC.bird: between the
// agent's preferred and standby static routes, so modes stack during a migration).
// - full-mesh: an iBGP session with every node on the same subnet;
// - route-reflectors: reflectors peer with every node on their subnet (non-reflectors as rr clients),
//   other nodes peer with the reflectors only;
// - tor: eBGP with the node's top-of-rack routers.
// Sessions exist only where next hops resolve (same subnet); other pairs are refused by bgpReachability.
// Every peer may announce only pod blocks (and borrowed /32s) inside the pools; a top-of-rack router also
// what its acceptPrefixes list. Passwords travel as Secret references, resolved by the agent.
import { matchesLabelSelector } from "../../model/label-selector";
import { METRIC, type BgpPeerPlan, type BgpPlan, type RoutingNode } from "../../model/routing-plan";
import { sameSubnet } from "../backend";
import { birdName, torPeersOf, type BgpSettings } from "./tor-peers";

export function compileBgp(
  bgp: BgpSettings,
  self: RoutingNode,
  others: readonly RoutingNode[],
  originate: readonly string[],
  pools: { readonly podCIDRs: readonly string[]; readonly blockSize: number },
): BgpPlan {
  const peers: BgpPeerPlan[] = [];
  const isRR = (n: RoutingNode) => bgp.topology === "route-reflectors" && matchesLabelSelector(bgp.routeReflectors?.nodeSelector, n.labels);
  const sessionPeer = (n: RoutingNode, rrClient: boolean): BgpPeerPlan => ({
    name: birdName("node", n.name),
    address: n.ip,
    asNumber: bgp.asNumber,
    ...(rrClient ? { routeReflectorClient: true } : {}),
    ...(bgp.passwordSecretRef ? { passwordSecretRef: bgp.passwordSecretRef } : {}),
    description: `node ${n.name}`,
  });
  const reachable = others.filter((n) => sameSubnet(self, n));
  if (bgp.topology === "full-mesh") {
    for (const n of reachable) peers.push(sessionPeer(n, false));
  } else if (bgp.topology === "route-reflectors") {
    if (isRR(self)) for (const n of reachable) peers.push(sessionPeer(n, !isRR(n)));
    else for (const n of reachable.filter(isRR)) peers.push(sessionPeer(n, false));
  } else {
    peers.push(...torPeersOf(bgp, self));
  }
  const rrId = bgp.topology === "route-reflectors" && isRR(self) ? self.ip : undefined;
  return {
    asNumber: bgp.asNumber,
    routerId: self.ip,
    podCIDRs: [...pools.podCIDRs],
    blockSize: pools.blockSize,
    originate: [...originate],
    kernelMetric: METRIC.bird,
    ...(rrId ? { routeReflectorClusterId: rrId } : {}),
    peers: peers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    underlayInterface: "eth*",
  };
}
