// The migration driver's I/O-free helpers: settings from the spec, the state to and from
// ClusterNetwork.status.migration, preflight blockers, lagging nodes and health from NodeNetwork
// status. The controller calls transition() with what these observe and publishes the layout it implies.
import type { ClusterNetworkSpec, ClusterNetworkStatus, Mode } from "../api/cluster-network";
import { parseDurationMs } from "../api/common";
import type { ClusterNode } from "../compile/cluster-plan";
import { type compileRoutingPlan, refusedPeers } from "../compile/routing/compile-routing";
import { MODE_OVERHEAD, type RoutingNode } from "../compile/routing/types";
import { matchesLabelSelector } from "../model/label-selector";
import type { MigrationSettings, MigrationState, NodeHealth } from "../migration/types";
import type { KObj } from "./store";

type MigrationStatus = NonNullable<ClusterNetworkStatus["migration"]>;

/** Annotation `switchyard migrate pause|resume|abort|retry` writes; the controller consumes and removes it. */
export const MIGRATION_CONTROL_ANNOTATION = "switchyard.dev/migration-control";

export function migrationSettings(spec: ClusterNetworkSpec, nodes: readonly ClusterNode[]): MigrationSettings {
  const m = spec.migration;
  const canary = m.canary.nodeSelector
    ? { nodeNames: nodes.filter((n) => matchesLabelSelector(m.canary.nodeSelector, n.labels)).map((n) => n.name).sort() }
    : { nodes: m.canary.nodes ?? 1 };
  return {
    canary,
    batchSize: m.batchSize,
    successfulRounds: m.healthGate.successfulRounds,
    probeIntervalMs: parseDurationMs(m.healthGate.probeInterval) ?? 2000,
    timeoutMs: parseDurationMs(m.healthGate.timeout) ?? 60_000,
    autoRollback: m.autoRollback,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
const ms = (s: string | undefined, fallback: number) => (s ? Date.parse(s) : fallback);

export function stateFromStatus(st: MigrationStatus | undefined, now: number): MigrationState | undefined {
  if (!st) return undefined;
  return {
    phase: st.phase,
    from: st.from,
    to: st.to,
    generation: st.generation ?? 0,
    startedAt: ms(st.startedAt, now),
    since: ms(st.since, now),
    ...(st.waitingFor !== undefined ? { waitingFor: st.waitingFor } : {}),
    batches: st.batches ?? [],
    migratedBatches: st.migratedBatches ?? 0,
    epoch: st.epoch ?? 0,
    ...(st.stage ? { stage: st.stage } : {}),
    ...(st.pausedFrom ? { pausedFrom: st.pausedFrom } : {}),
    ...(st.reason ? { reason: st.reason } : {}),
    message: st.message ?? "",
  };
}

export function statusFromState(s: MigrationState | undefined): MigrationStatus | undefined {
  if (!s) return undefined;
  const nodesTotal = s.batches.flat().length;
  return {
    phase: s.phase,
    from: s.from,
    to: s.to,
    generation: s.generation,
    startedAt: iso(s.startedAt),
    since: iso(s.since),
    ...(s.waitingFor !== undefined ? { waitingFor: s.waitingFor } : {}),
    ...(s.stage ? { stage: s.stage } : {}),
    ...(s.pausedFrom ? { pausedFrom: s.pausedFrom } : {}),
    batches: s.batches.map((b) => [...b]),
    migratedBatches: s.migratedBatches,
    epoch: s.epoch,
    nodesTotal,
    nodesMigrated: s.phase === "Completed" ? nodesTotal : s.batches.slice(0, s.migratedBatches).flat().length,
    ...(s.reason ? { reason: s.reason } : {}),
    message: s.message,
  };
}

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
  nodeNetworks: ReadonlyMap<string, KObj>,
  sourceConfig: Parameters<typeof compileRoutingPlan>[2],
): string[] {
  const blockers: string[] = [];
  const need: Record<Mode, string | undefined> = { vxlan: "vxlan", ipip: "ipip", bgp: "bird", "host-gw": undefined };
  const feature = need[to];
  const missingReport: string[] = [];
  const lacking: string[] = [];
  for (const n of nodes) {
    const caps = (nodeNetworks.get(n.name)?.["status"] as { capabilities?: Record<string, boolean> } | undefined)?.capabilities;
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

export function healthOf(nn: KObj | undefined): NodeHealth | undefined {
  const h = (nn?.["status"] as { health?: { epoch: number; okRounds: number; failedRounds: number; lastFailure?: string; waiting?: string } } | undefined)?.health;
  return h ? { epoch: h.epoch, okRounds: h.okRounds, failedRounds: h.failedRounds, ...(h.lastFailure ? { lastFailure: h.lastFailure } : {}), ...(h.waiting ? { waiting: h.waiting } : {}) } : undefined;
}
