// Decide, the pure stage of a pass: from what was observed, the compiled plans and what the controller
// remembers (read only), what to write and in which form. PURE, although src/controller is not one of the
// lint-pure rooms: no I/O, no timers, no Date.now, no randomness, no mutation of its inputs; the time comes
// in as an argument, so the same inputs always give the same decision (decide.test.ts holds it to that).
// act.ts carries the decisions out. A pass decides twice: before writing plans (the migration step, its
// events, which plans to write and how) and after (which NodeNetworks to delete, the ClusterNetwork status
// from what agents report by then), exactly where the writes used to read the cache.
import type { ClusterNetworkStatus } from "../api/cluster-network";
import type { Condition } from "../api/common";
import type { NodeNetworkSpec } from "../api/node-network";
import { BlockAffinityGVK, NodeNetworkGVK } from "../api/kinds";
import { BLOCK_IN_USE_FINALIZER } from "../api/block-affinity";
import { cidrContains, parseCidr, parseIPv4 } from "../api/ipv4";
import { annotationPath, CLUSTER_NETWORK_LABEL, MIGRATION_CONTROL_ANNOTATION, POD_MTU_ANNOTATION } from "../api/annotations";
import type { JsonPatchOp } from "../kube/client";
import type { KObj } from "../kube/store";
import { layoutOf, transition } from "../migration/machine";
import { preflightBlockers } from "../migration/preflight";
import { stateFromStatus, statusFromState } from "../migration/status";
import { TERMINAL_PHASES, type MigrationEvent } from "../migration/types";
import type { ClusterNetworkRef, ClusterObservation, NodeReport, NodesSeen } from "./observe";
import type { CompiledPlans, MigrationPosition } from "./plans";
import { computeClusterStatus, mergePatchFor, type NodeRealization } from "./status";

/** An Event to record on the ClusterNetwork. */
export interface EventNote {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

/** What decide reads of the controller's state (ControllerState, read only). */
export interface Memory {
  readonly published: ReadonlyMap<string, string>;
  readonly publishedSpecs: ReadonlyMap<string, NodeNetworkSpec>;
  readonly recordedBlocks: ReadonlyMap<string, string>;
  readonly lastEvents: ReadonlyMap<string, string>;
  readonly lastStatusJson: string;
  readonly layoutPublished: { readonly key: string; readonly at: number } | undefined;
}

/**
 * Drops the notes whose message is the last one recorded for their reason, in memory or earlier in these
 * groups (in order): the same Event is not recorded twice in a row.
 */
export function newEvents(groups: readonly (readonly EventNote[])[], last: ReadonlyMap<string, string>): EventNote[][] {
  const seen = new Map<string, string>();
  return groups.map((notes) =>
    notes.filter((n) => {
      const previous = seen.has(n.reason) ? seen.get(n.reason) : last.get(n.reason);
      seen.set(n.reason, n.message);
      return previous !== n.message;
    }),
  );
}

// ---- a ClusterNetwork that does not validate ----

export interface InvalidSpecDecision {
  readonly clusterNetwork: ClusterNetworkRef;
  readonly problems: string;
  readonly events: readonly EventNote[];
}

/** The plans in force stay; the problems become a Warning event. */
export function decideInvalidSpec(o: { readonly clusterNetwork: ClusterNetworkRef; readonly problems: string }, memory: Pick<Memory, "lastEvents">): InvalidSpecDecision {
  const [events = []] = newEvents([[{ type: "Warning", reason: "InvalidSpec", message: o.problems }]], memory.lastEvents);
  return { clusterNetwork: o.clusterNetwork, problems: o.problems, events };
}

// ---- the migration step ----

/** Where the cluster stands before this pass's step: the state persisted in status.migration and the active mode. */
export function currentPosition(o: ClusterObservation, now: number): MigrationPosition {
  return { state: stateFromStatus(o.previousStatus?.migration, now), activeMode: o.previousStatus?.activeMode ?? o.spec.mode };
}

/** Names the layout a position implies for this ClusterNetwork generation (the step-timeout clock is kept per layout). */
export function layoutKey(o: ClusterObservation, at: MigrationPosition): string {
  return JSON.stringify([o.clusterNetwork.uid, o.generation, layoutOf(at.state, at.activeMode, o.nodeNames, o.settings)]);
}

export interface MigrationStepDecision {
  readonly next: MigrationPosition;
  /** The step moved the position: the plans are compiled again for `next`. */
  readonly moved: boolean;
  readonly events: readonly MigrationEvent[];
  /** A pass is due then even if nothing changes (timeouts, grace periods). */
  readonly wakeAt?: number;
}

const CONTROLS = new Set(["pause", "resume", "abort", "retry"]);

/**
 * The migration driver: transition() (src/migration) decides the next step from what the agents report
 * for the plans of the current one (`plans`, compiled for `at`): who still lags, probe rounds, preflight
 * blockers (only while starting or in Preflight), the user's control, and when the step's plans were all
 * published.
 */
export function decideMigrationStep(o: ClusterObservation, at: MigrationPosition, plans: CompiledPlans, memory: Pick<Memory, "layoutPublished">, now: number): MigrationStepDecision {
  const lagging = o.nodeNames.filter((n) => o.nodeNetworks.get(n)?.appliedHash !== plans.hashes.get(n));
  const starting = o.spec.mode !== at.activeMode && (!at.state || TERMINAL_PHASES.includes(at.state.phase));
  const blockers =
    starting || at.state?.phase === "Preflight"
      ? preflightBlockers(o.spec.mode, o.spec, o.nodes, plans.blocks, new Map(o.nodeNames.map((n) => [n, o.nodeNetworks.get(n)?.capabilities])), o.sourceConfig)
      : [];
  const d = transition(at.state, {
    now,
    specMode: o.spec.mode,
    activeMode: at.activeMode,
    generation: o.generation,
    settings: o.settings,
    nodes: o.nodeNames,
    ...(o.control !== undefined && CONTROLS.has(o.control) ? { control: o.control as "pause" | "resume" | "abort" | "retry" } : {}),
    blockers,
    lagging,
    health: Object.fromEntries(o.nodeNames.map((n) => [n, o.nodeNetworks.get(n)?.health])),
    ...(memory.layoutPublished?.key === layoutKey(o, at) ? { publishedAt: memory.layoutPublished.at } : {}),
  });
  const next = { state: d.state, activeMode: d.activeMode };
  return {
    next,
    moved: JSON.stringify(d.state) !== JSON.stringify(at.state) || d.activeMode !== at.activeMode,
    events: d.events,
    ...(d.wakeAt !== undefined ? { wakeAt: d.wakeAt } : {}),
  };
}

// ---- which plans to write, and how ----

type ConditionNote = Omit<Condition, "lastTransitionTime">;

/**
 * Pods whose interface MTU (as their CNI recorded it) exceeds their node's plan MTU: after a move to a mode
 * with more overhead they rely on path-MTU discovery until restarted. Reported, not changed.
 */
export function podMtuCondition(o: Pick<ClusterObservation, "pods" | "generation">, mtus: ReadonlyMap<string, number>): ConditionNote {
  const tooLarge: string[] = [];
  for (const p of o.pods) {
    const m = Number(p.metadata?.annotations?.[POD_MTU_ANNOTATION]);
    const node = (p["spec"] as { nodeName?: string } | undefined)?.nodeName;
    const planMtu = node ? mtus.get(node) : undefined;
    if (Number.isFinite(m) && planMtu !== undefined && m > planMtu) tooLarge.push(`${p.metadata?.namespace}/${p.metadata?.name} (${m} > ${planMtu} on ${node})`);
  }
  tooLarge.sort();
  return tooLarge.length > 0
    ? { type: "PodMTUTooLarge", status: "True", reason: "PodsNeedRestart", message: `${tooLarge.length} pod(s) have a larger MTU than the pod network now allows and rely on path-MTU discovery until restarted: ${tooLarge.slice(0, 10).join(", ")}${tooLarge.length > 10 ? ", ..." : ""}`, observedGeneration: o.generation }
    : { type: "PodMTUTooLarge", status: "False", reason: "PodMTUsFit", message: "every pod's MTU fits the pod network", observedGeneration: o.generation };
}

/** What a gate's new probe epoch changes in a plan; every other field is compared by identity (the plan cache shares them). */
const HEALTH_FIELDS: ReadonlySet<string> = new Set(["health", "planHash", "generation"]);

/** True when two plans of a node differ in health probing (and what follows from it) only. */
export function differsOnlyInHealth(a: NodeNetworkSpec, b: NodeNetworkSpec): boolean {
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) if (!HEALTH_FIELDS.has(k) && x[k] !== y[k]) return false;
  return true;
}

/** A NodeNetwork as we apply it: the plan, labelled with and owned by its ClusterNetwork. */
export function nodeNetworkObject(cn: ClusterNetworkRef, spec: NodeNetworkSpec): KObj {
  return {
    apiVersion: `${NodeNetworkGVK.group}/${NodeNetworkGVK.version}`,
    kind: "NodeNetwork",
    metadata: {
      name: spec.nodeName,
      labels: { [CLUSTER_NETWORK_LABEL]: cn.name },
      ownerReferences: [{ apiVersion: cn.apiVersion ?? "", kind: "ClusterNetwork", name: cn.name, uid: cn.uid ?? "", controller: true }],
    },
    spec,
  } as KObj;
}

/**
 * A node's BlockAffinity as we create it: the record of its block, with no owner (the ClusterNetwork's
 * garbage collection must not take it) and the finalizer that makes a deletion wait for the release.
 */
export function blockAffinityObject(cn: ClusterNetworkRef, node: string, cidr: string): KObj {
  return {
    apiVersion: `${BlockAffinityGVK.group}/${BlockAffinityGVK.version}`,
    kind: "BlockAffinity",
    metadata: { name: node, finalizers: [BLOCK_IN_USE_FINALIZER] },
    spec: { node, cidr, clusterNetwork: cn.name },
  } as KObj;
}

/** One node's plan write. */
export interface PlanWrite {
  readonly node: string;
  readonly spec: NodeNetworkSpec;
  /**
   * Only health probing changed since our last write (a migration gate's new epoch): a JSON patch of those
   * few fields, guarded by a test of the plan hash we wrote, so a gate does not resend every node's routes.
   * When the server refuses it, the write falls back to the apply.
   */
  readonly healthPatch?: readonly JsonPatchOp[];
  /**
   * Before the apply, remove spec.health with a patch of its own: fields a JSON patch changed (the probe
   * epoch) belong to that patch's manager, and an apply that leaves out spec.health would strip only our
   * fields of it and keep the epoch (an invalid plan). So health probing ends by removing the section.
   */
  readonly removeHealthFirst: boolean;
  /** The server-side apply body. */
  readonly apply: KObj;
}

export function decidePlanWrite(cn: ClusterNetworkRef, spec: NodeNetworkSpec, previous: NodeNetworkSpec | undefined, live: NodeReport | undefined): PlanWrite {
  let healthPatch: JsonPatchOp[] | undefined;
  if (previous !== undefined && differsOnlyInHealth(previous, spec)) {
    healthPatch = [
      { op: "test", path: "/spec/planHash", value: previous.planHash },
      { op: "replace", path: "/spec/planHash", value: spec.planHash },
      { op: "replace", path: "/spec/generation", value: spec.generation },
    ];
    if (spec.health) healthPatch.push({ op: "add", path: "/spec/health", value: spec.health });
    else if (previous.health) healthPatch.push({ op: "remove", path: "/spec/health" });
  }
  return {
    node: spec.nodeName,
    spec,
    ...(healthPatch ? { healthPatch } : {}),
    removeHealthFirst: !spec.health && (live?.probing === true || previous?.health !== undefined),
    apply: nodeNetworkObject(cn, spec),
  };
}

export interface PlanWritesDecision {
  readonly clusterNetwork: ClusterNetworkRef;
  /** When the oldest change these plans carry was seen (the implementation delay counts from it). */
  readonly oldestChangeSeenAt?: number;
  /** The migration step's events (new ones only), recorded first. */
  readonly events: readonly EventNote[];
  /** The migration-control annotation's value this pass read: remove it (only if it still says that). */
  readonly clearControl?: string;
  readonly wakeAt?: number;
  readonly podMtu: { readonly condition: ConditionNote; readonly events: readonly EventNote[] };
  /** Blocks allocated this pass that no BlockAffinity records yet: created before any plan is written. */
  readonly affinities: readonly { readonly node: string; readonly cidr: string; readonly create: KObj }[];
  /** Plans already in force (the NodeNetwork has the hash, or we wrote it): recorded as published, not written. */
  readonly confirmed: ReadonlyMap<string, string>;
  /** Changed plans, in node order; written several at a time. */
  readonly writes: readonly PlanWrite[];
  /** A plan to write whose body a reused compile does not have (unreachable: a reused compile has every plan published). */
  readonly missingBody?: string;
}

/** Everything written before the plans, and the plans: only those whose hash is not already in force. */
export function decidePlanWrites(o: ClusterObservation, step: MigrationStepDecision, plans: CompiledPlans, memory: Pick<Memory, "published" | "publishedSpecs" | "recordedBlocks" | "lastEvents">): PlanWritesDecision {
  const mtu = podMtuCondition(o, plans.mtus);
  const mtuNotes: EventNote[] = mtu.status === "True" ? [{ type: "Warning", reason: "PodMTUTooLarge", message: mtu.message }] : [];
  const [events = [], mtuEvents = []] = newEvents([step.events, mtuNotes], memory.lastEvents);
  // The allocation is recorded before it is used: a NodeNetwork never carries a block no BlockAffinity holds.
  const affinities = Object.entries(plans.blocks)
    .filter(([node, cidr]) => o.affinities.get(node)?.cidr !== cidr && memory.recordedBlocks.get(node) !== cidr)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([node, cidr]) => ({ node, cidr, create: blockAffinityObject(o.clusterNetwork, node, cidr) }));
  const confirmed = new Map<string, string>();
  const writes: PlanWrite[] = [];
  let missingBody: string | undefined;
  for (const [node, hash] of plans.hashes) {
    if (o.nodeNetworks.get(node)?.planHash === hash || memory.published.get(node) === hash) {
      confirmed.set(node, hash);
      continue;
    }
    const spec = plans.specs?.get(node);
    if (!spec) {
      missingBody = node;
      break;
    }
    writes.push(decidePlanWrite(o.clusterNetwork, spec, memory.publishedSpecs.get(node), o.nodeNetworks.get(node)));
  }
  return {
    clusterNetwork: o.clusterNetwork,
    ...(o.oldestChangeSeenAt !== undefined ? { oldestChangeSeenAt: o.oldestChangeSeenAt } : {}),
    events,
    ...(o.control !== undefined ? { clearControl: o.control } : {}),
    ...(step.wakeAt !== undefined ? { wakeAt: step.wakeAt } : {}),
    podMtu: { condition: mtu, events: mtuEvents },
    affinities,
    confirmed,
    writes: missingBody === undefined ? writes : [],
    ...(missingBody !== undefined ? { missingBody } : {}),
  };
}

/**
 * The JSON patch that consumes the migration-control annotation the pass read. Guarded by a `test` of
 * that value: a pass that read a stale copy (the watch had not yet delivered the previous removal) must
 * not remove a newer control the user wrote since (a `resume` right after a `pause`); the newer one then
 * stays for the next pass.
 */
export function clearControlPatch(read: string): readonly JsonPatchOp[] {
  const path = annotationPath(MIGRATION_CONTROL_ANNOTATION);
  return [
    { op: "test", path, value: read },
    { op: "remove", path },
  ];
}

// ---- after the plans are written: garbage collection and status from realization ----

/** Each planned node against what its agent reports (conditions that name a problem count against it). */
export function realizationsOf(plans: Pick<CompiledPlans, "hashes">, nodeNetworks: ReadonlyMap<string, NodeReport>): NodeRealization[] {
  return [...plans.hashes].map(([node, planHash]) => {
    const nn = nodeNetworks.get(node);
    const problems = (nn?.conditions ?? [])
      .filter((c) => (c.type === "Applied" && c.status === "False") || (c.type !== "Applied" && c.type !== "Ready" && c.status === "True"))
      .map((c) => `${c.type}: ${c.message ?? ""}`);
    return { node, planHash, ...(nn?.appliedHash ? { appliedHash: nn.appliedHash } : {}), agentProblems: problems };
  });
}

/** The conditions the migration driver owns. */
export function migrationConditions(next: MigrationPosition, generation: number): ConditionNote[] {
  const s = next.state;
  const migrating = s !== undefined && !TERMINAL_PHASES.includes(s.phase);
  return [
    s?.phase === "Blocked"
      ? { type: "MigrationBlocked", status: "True", reason: "PreflightFailed", message: s.reason ?? s.message, observedGeneration: generation }
      : { type: "MigrationBlocked", status: "False", reason: "NotBlocked", message: "no migration is blocked", observedGeneration: generation },
    migrating
      ? { type: "Migrating", status: "True", reason: s.phase, message: s.message, observedGeneration: generation }
      : { type: "Migrating", status: "False", reason: s?.phase ?? "Idle", message: s?.message ?? "no migration in progress", observedGeneration: generation },
  ];
}

export interface FollowUpDecision {
  readonly clusterNetwork: ClusterNetworkRef;
  /** NodeNetworks whose node is gone (no Node object) and which have no plan, in store order. */
  readonly deletes: readonly string[];
  /** BlockAffinities to release: their node is gone and no pod holds an address in the block. */
  readonly releases: readonly { readonly node: string; readonly cidr: string; readonly finalizers: readonly string[]; readonly terminating: boolean }[];
  /** The plans written this pass (node -> hash): their implementation delay is measured once all are applied. */
  readonly published: ReadonlyMap<string, string>;
  /** The store input version the pass compiled: changes up to it are published. */
  readonly inputVersion: number;
  /** The compile to remember (its plans are all published now), without the plan bodies. */
  readonly compile: Omit<CompiledPlans, "specs">;
  /** PlansPublished, when plans were written (and the message is new). */
  readonly events: readonly EventNote[];
  /** The layout whose plans are now all published. */
  readonly layoutKey: string;
  readonly nodes: { readonly desired: number; readonly realized: number };
  /** The status to write as a merge patch, or none when it is unchanged since our last write. */
  readonly status?: {
    readonly patch: unknown;
    /** The status with transition times blanked: what the next pass compares against. */
    readonly comparable: string;
    /** Recorded once the status is written (Degraded, when it is True and its message new). */
    readonly events: readonly EventNote[];
  };
}

/**
 * The blocks that can be released: held by a node that is gone (no Node object, no plan) and holding no
 * pod's address. Why wait for the pods: a deleted Node's pods stay in the API until their garbage
 * collector (or kubelet) removes them, and while one holds an address of the block, handing the block to
 * another node could give two pods one address. A node that still exists keeps its block, even when its
 * BlockAffinity is being deleted: the finalizer holds that deletion until the node is gone.
 */
export function releasableBlocks(affinities: NodesSeen["affinities"], nodeObjects: ReadonlySet<string>, planned: ReadonlySet<string>, pods: readonly KObj[]): FollowUpDecision["releases"] {
  const gone = [...affinities].filter(([node]) => !nodeObjects.has(node) && !planned.has(node));
  if (gone.length === 0) return [];
  const blocks = gone.map(([node, a]) => ({ node, a, cidr: parseCidr(a.cidr) }));
  const inUse = new Set<string>();
  for (const p of pods) {
    const spec = p["spec"] as { hostNetwork?: boolean } | undefined;
    const status = p["status"] as { phase?: string; podIP?: string; podIPs?: { ip?: string }[] } | undefined;
    if (spec?.hostNetwork === true || status?.phase === "Succeeded" || status?.phase === "Failed") continue;
    const ips = [status?.podIP, ...(status?.podIPs ?? []).map((x) => x.ip)].map((t) => (t ? parseIPv4(t) : undefined));
    for (const b of blocks) if (b.cidr && ips.some((ip) => ip !== undefined && cidrContains(b.cidr!, ip))) inUse.add(b.node);
  }
  return blocks.filter((b) => b.cidr === undefined || !inUse.has(b.node)).map((b) => ({ node: b.node, cidr: b.a.cidr, finalizers: b.a.finalizers, terminating: b.a.terminating }));
}

/**
 * Once the plans are written: delete the plans of nodes that are gone, and the ClusterNetwork status from
 * realization, never from what was written: `after` is the cache as it is then (agents report while a
 * large cluster's plans are still being written).
 */
export function decideFollowUp(
  o: ClusterObservation,
  after: NodesSeen,
  step: MigrationStepDecision,
  plans: CompiledPlans,
  written: PlanWritesDecision,
  memory: Pick<Memory, "lastEvents" | "lastStatusJson">,
  now: number,
): FollowUpDecision {
  const deletes = [...after.nodeNetworks.keys()].filter((name) => !plans.hashes.has(name) && !after.nodeObjects.has(name));
  const releases = releasableBlocks(after.affinities, after.nodeObjects, new Set(plans.hashes.keys()), o.pods);
  const nodes = written.writes.map((w) => w.node);
  const publishedNotes: EventNote[] = nodes.length > 0 ? [{ type: "Normal", reason: "PlansPublished", message: `published new plans for ${nodes.length} node(s): ${nodes.slice(0, 10).join(", ")}` }] : [];
  const { state, activeMode } = step.next;
  const migration = statusFromState(state);
  const migrating = state !== undefined && !TERMINAL_PHASES.includes(state.phase);
  const prev = o.previousStatus;
  const status: ClusterNetworkStatus = computeClusterStatus({
    generation: o.generation,
    activeMode,
    targetMode: o.spec.mode,
    nodes: realizationsOf(plans, after.nodeNetworks),
    diagnostics: [...o.nodeProblems, ...plans.diagnostics],
    ipam: plans.ipam,
    ...(prev ? { previous: prev } : {}),
    now: new Date(now).toISOString(),
    ...(migration ? { migration } : {}),
    activeConfig: migrating || activeMode !== o.spec.mode ? (prev?.activeConfig ?? {}) : { ...(o.spec.vxlan ? { vxlan: o.spec.vxlan } : {}), ...(o.spec.bgp ? { bgp: o.spec.bgp } : {}) },
    extraConditions: [...migrationConditions(step.next, o.generation), written.podMtu.condition],
  });
  const comparable = JSON.stringify({ ...status, conditions: status.conditions?.map((c) => ({ ...c, lastTransitionTime: "" })) });
  const degraded = status.conditions?.find((c) => c.type === "Degraded");
  const degradedNotes: EventNote[] = degraded?.status === "True" ? [{ type: "Warning", reason: "Degraded", message: degraded.message }] : [];
  const changed = comparable !== memory.lastStatusJson;
  const [events = [], statusEvents = []] = newEvents([publishedNotes, changed ? degradedNotes : []], memory.lastEvents);
  const { specs: _bodies, ...compile } = plans;
  return {
    clusterNetwork: o.clusterNetwork,
    deletes,
    releases,
    published: new Map(written.writes.map((w) => [w.node, w.spec.planHash])),
    inputVersion: o.inputVersion,
    compile,
    events,
    layoutKey: layoutKey(o, step.next),
    nodes: { desired: status.nodes?.desired ?? 0, realized: status.nodes?.realized ?? 0 },
    ...(changed ? { status: { patch: mergePatchFor(prev, status), comparable, events: statusEvents } } : {}),
  };
}
