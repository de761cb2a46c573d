// A migration's progress as one line of text: what `switchyard migrate --wait`, `migrate status` and the
// lab print on every change. Pure.
import type { ClusterNetworkStatus } from "../api/cluster-network";

/** One line per change of what a user cares about: phase, batches, nodes done, the message. */
export function describeProgress(st: ClusterNetworkStatus | undefined): string {
  const m = st?.migration;
  if (!m) return `phase ${st?.phase ?? "?"}, active mode ${st?.activeMode ?? "?"} (no migration)`;
  const batches = m.batches?.length ?? 0;
  const stage = m.stage ? `/${m.stage}` : "";
  return `${m.from} -> ${m.to}: ${m.phase}${stage}  batches ${m.migratedBatches ?? 0}/${batches}  nodes ${m.nodesMigrated ?? 0}/${m.nodesTotal ?? 0}  realized ${st?.nodes?.realized ?? 0}/${st?.nodes?.desired ?? 0}  ${m.message ?? ""}`;
}
