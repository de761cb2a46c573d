// The migration's bridge to the API: its settings from ClusterNetwork.spec.migration, and its state to and
// from ClusterNetwork.status.migration (times as RFC 3339 there, epoch milliseconds in the machine). Pure.
import type { ClusterNetworkSpec, ClusterNetworkStatus } from "../api/cluster-network";
import { parseDurationMs } from "../api/common";
import type { NodeInfo } from "../model/cluster";
import { matchesLabelSelector } from "../model/label-selector";
import type { MigrationSettings, MigrationState } from "./types";

type MigrationStatus = NonNullable<ClusterNetworkStatus["migration"]>;

/** The rollout knobs, with the canary selector resolved against the nodes (by name, sorted). */
export function migrationSettings(spec: ClusterNetworkSpec, nodes: readonly Pick<NodeInfo, "name" | "labels">[]): MigrationSettings {
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
