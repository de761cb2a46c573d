// Preflight: why a cluster cannot move to a mode, before anything changes. Every blocker names the nodes.
// Pure: the nodes, their blocks and what their agents reported come in as arguments.
import type { ClusterNetworkSpec, Mode } from "../api/cluster-network";
import type { ClusterNode } from "../model/cluster";
import { type compileRoutingPlan, refusedPeers } from "../compile/routing/compile-routing";
import { MODE_OVERHEAD, type RoutingNode } from "../model/routing-plan";

/**
 * Why `to` cannot be served: unmet kernel needs reported by agents, pairs the mode cannot reach (host-gw
 * across subnets, BGP mesh across subnets), and an explicit MTU that leaves no room for the overhead.
 * Every message names the nodes.
 */
export function preflightBlockers(
  to: Mode,
  spec: ClusterNetworkSpec,
  nodes: readonly ClusterNode[],
  blocks: Readonly<Record<string, string>>,
  /** What each node's agent reported it can do (NodeNetwork status.capabilities); undefined = not reported yet. */
  capabilities: ReadonlyMap<string, Readonly<Record<string, boolean>> | undefined>,
  sourceConfig: Parameters<typeof compileRoutingPlan>[2],
): string[] {
  const blockers: string[] = [];
  const need: Record<Mode, string | undefined> = { vxlan: "vxlan", ipip: "ipip", bgp: "bird", "host-gw": undefined };
  const feature = need[to];
  const missingReport: string[] = [];
  const lacking: string[] = [];
  for (const n of nodes) {
    const caps = capabilities.get(n.name);
    if (!caps) missingReport.push(n.name);
    else if (feature && caps[feature] === false) lacking.push(n.name);
  }
  if (missingReport.length > 0) blockers.push(`${missingReport.join(", ")}: the agent has not reported the node's capabilities yet`);
  if (lacking.length > 0) {
    const what = feature === "bird" ? "BIRD 2 (bird2 package)" : `the ${feature} kernel module`;
    blockers.push(`${lacking.join(", ")}: mode ${to} needs ${what}, which the node lacks`);
  }
  const routingNodes: RoutingNode[] = nodes.map((n) => ({ ...n, ...(blocks[n.name] ? { block: blocks[n.name] } : {}), mode: to }));
  const target = { ...spec, mode: to };
  const refusedBy = new Map<string, string[]>();
  for (const n of nodes) {
    for (const p of refusedPeers({ spec: target, nodes: routingNodes, modesInUse: [to] }, n.name, sourceConfig)) {
      const pairs = refusedBy.get(p.reason) ?? [];
      pairs.push(`${n.name}->${p.peer}`);
      refusedBy.set(p.reason, pairs);
    }
  }
  for (const [reason, pairs] of refusedBy) blockers.push(`${pairs.length} node pair(s) cannot be served (${pairs.slice(0, 6).join(", ")}${pairs.length > 6 ? ", ..." : ""}): ${reason}`);
  if (spec.mtu > 0) {
    const tight = nodes.filter((n) => spec.mtu > (n.underlayMtu ?? 1500) - MODE_OVERHEAD[to]).map((n) => n.name);
    if (tight.length > 0) blockers.push(`${tight.join(", ")}: spec.mtu ${spec.mtu} leaves no room for ${to}'s ${MODE_OVERHEAD[to]} bytes of overhead on a ${nodes[0]?.underlayMtu ?? 1500}-byte underlay; lower spec.mtu or set it to 0 (auto)`);
  }
  return blockers;
}
