// ClusterNetwork status from realization: the controller never reports Ready from what it wrote, only
// from what agents report they applied (their appliedHash equals the published planHash), as counts and
// standard conditions. Pure: takes the time as an argument.
import type { ClusterNetworkStatus, Mode } from "../api/cluster-network";
import type { Condition } from "../api/common";
import type { PlanDiagnostic } from "../compile/cluster-plan";

export interface NodeRealization {
  readonly node: string;
  readonly planHash: string;
  readonly appliedHash?: string;
  /** Problems the agent reports (conditions with status True of a problem type, or Applied=False). */
  readonly agentProblems: readonly string[];
}

export interface StatusInput {
  readonly generation: number;
  readonly activeMode: Mode;
  readonly targetMode: Mode;
  readonly nodes: readonly NodeRealization[];
  readonly diagnostics: readonly PlanDiagnostic[];
  readonly ipam: { readonly allocatedBlocks: number; readonly freeBlocks: number };
  readonly previous?: ClusterNetworkStatus;
  readonly now: string;
  /** Extra conditions owned by other parts (e.g. the migration driver). */
  readonly extraConditions?: readonly Omit<Condition, "lastTransitionTime">[];
  readonly migration?: ClusterNetworkStatus["migration"];
  readonly activeConfig?: ClusterNetworkStatus["activeConfig"];
}

function cond(type: string, ok: boolean, reason: string, message: string, generation: number): Omit<Condition, "lastTransitionTime"> {
  return { type, status: ok ? "True" : "False", reason, message, observedGeneration: generation };
}

/** Keeps lastTransitionTime when the status of a condition did not change. */
export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly Omit<Condition, "lastTransitionTime">[], now: string): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    return { ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now };
  });
}

export function summarize(nodes: readonly NodeRealization[]): { desired: number; realized: number; lagging: string[]; failing: string[] } {
  const realized = nodes.filter((n) => n.appliedHash === n.planHash);
  return {
    desired: nodes.length,
    realized: realized.length,
    lagging: nodes.filter((n) => n.appliedHash !== n.planHash).map((n) => n.node).sort(),
    failing: nodes.filter((n) => n.agentProblems.length > 0).map((n) => `${n.node}: ${n.agentProblems.join("; ")}`).sort(),
  };
}

export function computeClusterStatus(input: StatusInput): ClusterNetworkStatus {
  const s = summarize(input.nodes);
  const degradedBy = [
    ...input.diagnostics.map((d) => (d.node ? `${d.node}: ${d.message}` : d.message)),
    ...s.failing,
  ];
  const uniqueDegraded = [...new Set(degradedBy)].sort();
  const progressing = s.realized < s.desired;
  const degraded = uniqueDegraded.length > 0;
  const ready = !progressing && s.desired > 0 && !degraded;
  const shorten = (xs: string[]) => (xs.length > 5 ? `${xs.slice(0, 5).join("; ")}; and ${xs.length - 5} more` : xs.join("; "));
  const conditions = [
    cond(
      "Ready",
      ready,
      ready ? "AllNodesRealized" : s.desired === 0 ? "NoNodes" : progressing ? "NodesPending" : "Degraded",
      ready ? `all ${s.desired} nodes applied the current plan` : s.desired === 0 ? "no node has a plan yet" : progressing ? `${s.realized}/${s.desired} nodes applied the current plan; waiting for ${shorten(s.lagging)}` : `all nodes applied their plans, but: ${shorten(uniqueDegraded)}`,
      input.generation,
    ),
    cond("Progressing", progressing, progressing ? "NodesApplying" : "Stable", progressing ? `${s.desired - s.realized} node(s) still applying` : "every published plan is applied", input.generation),
    cond("Degraded", degraded, degraded ? reasonOf(input.diagnostics, s.failing) : "NoProblems", degraded ? shorten(uniqueDegraded) : "no node reports a problem", input.generation),
    ...(input.extraConditions ?? []),
  ];
  const phase: ClusterNetworkStatus["phase"] =
    input.migration && !["Completed", "RolledBack", "Failed", "Blocked"].includes(input.migration.phase) ? "Migrating" : s.desired === 0 ? "Pending" : progressing ? "Progressing" : degraded ? "Degraded" : "Ready";
  return {
    observedGeneration: input.generation,
    phase,
    activeMode: input.activeMode,
    targetMode: input.targetMode,
    nodes: { desired: s.desired, realized: s.realized },
    ipam: input.ipam,
    ...(input.activeConfig ? { activeConfig: input.activeConfig } : {}),
    ...(input.migration ? { migration: input.migration } : {}),
    conditions: mergeConditions(input.previous?.conditions, conditions, input.now),
  };
}

function reasonOf(diags: readonly PlanDiagnostic[], failing: readonly string[]): string {
  if (diags.length > 0) return [...new Set(diags.map((d) => d.reason))].sort().join(",");
  return failing.length > 0 ? "AgentProblems" : "NoProblems";
}

/**
 * A JSON merge patch (RFC 7386) that turns `prev` into `next`: keys that disappeared are set to null,
 * which is how a merge patch deletes them (a status written without them would keep the stale values).
 */
export function mergePatchFor(prev: unknown, next: unknown): unknown {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(prev) || !isObj(next)) return next;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(next)) out[k] = isObj(v) && isObj(prev[k]) ? mergePatchFor(prev[k], v) : v;
  for (const k of Object.keys(prev)) if (!(k in next)) out[k] = null;
  return out;
}
