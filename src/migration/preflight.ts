// Preflight: why a cluster cannot move to a mode, before anything changes. Every blocker names the nodes.
// Pure: the nodes, their blocks and what their agents reported come in as arguments. What is specific to
// the target mode comes from its backend (src/modes): the capabilities it needs (and what to install),
// the pairs its send decision refuses, and its overhead.
import type { ClusterNetworkSpec, Mode } from "../api/cluster-network";
import type { ClusterNode } from "../model/cluster";
import { type compileRoutingPlan, refusedPeers } from "../compile/routing/compile-routing";
import { backendOf } from "../modes/registry";
import type { RoutingNode } from "../model/routing-plan";

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
  const target = backendOf(to);
  const missingReport = nodes.filter((n) => !capabilities.get(n.name)).map((n) => n.name);
  if (missingReport.length > 0) blockers.push(`${missingReport.join(", ")}: the agent has not reported the node's capabilities yet`);
  for (const need of target.needs) {
    const lacking = nodes.filter((n) => capabilities.get(n.name)?.[need.capability] === false).map((n) => n.name);
    if (lacking.length > 0) blockers.push(`${lacking.join(", ")}: mode ${to} needs ${need.install ?? need.what}, which the node lacks`);
  }
  const routingNodes: RoutingNode[] = nodes.map((n) => ({ ...n, ...(blocks[n.name] ? { block: blocks[n.name] } : {}), mode: to }));
  const targetSpec = { ...spec, mode: to };
  const refusedBy = new Map<string, string[]>();
  for (const n of nodes) {
    for (const p of refusedPeers({ spec: targetSpec, nodes: routingNodes, modesInUse: [to] }, n.name, sourceConfig)) {
      const pairs = refusedBy.get(p.reason) ?? [];
      pairs.push(`${n.name}->${p.peer}`);
      refusedBy.set(p.reason, pairs);
    }
  }
  for (const [reason, pairs] of refusedBy) blockers.push(`${pairs.length} node pair(s) cannot be served (${pairs.slice(0, 6).join(", ")}${pairs.length > 6 ? ", ..." : ""}): ${reason}`);
  if (spec.mtu > 0) {
    const tight = nodes.filter((n) => spec.mtu > (n.underlayMtu ?? 1500) - target.overhead).map((n) => n.name);
    if (tight.length > 0) blockers.push(`${tight.join(", ")}: spec.mtu ${spec.mtu} leaves no room for ${to}'s ${target.overhead} bytes of overhead on a ${nodes[0]?.underlayMtu ?? 1500}-byte underlay; lower spec.mtu or set it to 0 (auto)`);
  }
  return blockers;
}
