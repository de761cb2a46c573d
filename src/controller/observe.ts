// Observe, the first stage of a pass: the store read once into a plain Observation, so that everything
// after it (compile, decide) works on values and never on the live cache. Reading is cheap; the costly
// conversions of pods and namespaces are left to the compile, which usually reuses its last result.
import type { ClusterNetworkSpec, ClusterNetworkStatus } from "../api/cluster-network";
import { formatDiagnostic } from "../api/diagnostics";
import { parseClusterNetwork } from "../api/validate-cluster-network";
import { MIGRATION_CONTROL_ANNOTATION } from "../api/annotations";
import type { PlanDiagnostic } from "../compile/cluster-plan";
import type { ClusterNode } from "../model/cluster";
import { nodeFromObject } from "../kube/objects";
import type { ClusterStore, KObj } from "../kube/store";
import { migrationSettings } from "../migration/status";
import type { MigrationSettings, NodeHealth } from "../migration/types";

/** The ClusterNetwork a pass works for, as the writes name it. */
export interface ClusterNetworkRef {
  readonly name: string;
  readonly uid: string | undefined;
  readonly apiVersion: string | undefined;
}

/** What a node's NodeNetwork says: the plan we published (spec) and what its agent reports (status). */
export interface NodeReport {
  readonly planHash?: string;
  readonly block?: string;
  /** The published plan has a health section. */
  readonly probing: boolean;
  readonly appliedHash?: string;
  readonly capabilities?: Readonly<Record<string, boolean>>;
  readonly health?: NodeHealth;
  readonly conditions: readonly { readonly type: string; readonly status: string; readonly message?: string }[];
}

/** A node's recorded block (its BlockAffinity). */
export interface HeldBlock {
  readonly cidr: string;
  /** Someone asked to delete it: it stays held (the finalizer) until the controller releases it. */
  readonly terminating: boolean;
  readonly finalizers: readonly string[];
}

/** The NodeNetworks (in store order), the recorded blocks by node, and the names of every Node object, ready or not. */
export interface NodesSeen {
  readonly nodeNetworks: ReadonlyMap<string, NodeReport>;
  readonly affinities: ReadonlyMap<string, HeldBlock>;
  readonly nodeObjects: ReadonlySet<string>;
}

export interface ClusterObservation extends NodesSeen {
  readonly kind: "cluster";
  /** The store's plan-input version this observation was read at. */
  readonly inputVersion: number;
  /** When the oldest plan-input change up to inputVersion was seen (none pending: undefined). */
  readonly oldestChangeSeenAt: number | undefined;
  readonly clusterNetwork: ClusterNetworkRef;
  readonly generation: number;
  readonly spec: ClusterNetworkSpec;
  readonly previousStatus: ClusterNetworkStatus | undefined;
  /** The migration-control annotation (`switchyard migrate pause|resume|abort|retry`), as written. */
  readonly control: string | undefined;
  /** Nodes ready for a plan; the others appear in nodeProblems. */
  readonly nodes: readonly ClusterNode[];
  readonly nodeNames: readonly string[];
  readonly nodeProblems: readonly PlanDiagnostic[];
  readonly settings: MigrationSettings;
  /** The source mode's settings kept in status.activeConfig while a migration no longer has them in spec. */
  readonly sourceConfig: { readonly vxlan?: NonNullable<ClusterNetworkSpec["vxlan"]>; readonly bgp?: NonNullable<ClusterNetworkSpec["bgp"]> };
  /** The compile's raw inputs (converted only when it compiles afresh). */
  readonly pods: readonly KObj[];
  readonly namespaces: readonly KObj[];
  readonly policies: readonly KObj[];
  /** A version of pods, namespaces and policies: while it holds, the compile reuses its policy model. */
  readonly policyInputKey: string;
}

export type Observation =
  | { readonly kind: "none" }
  | { readonly kind: "invalid"; readonly clusterNetwork: ClusterNetworkRef; readonly problems: string }
  | ClusterObservation;

/** The ClusterNetwork named "default", else the first by name, ignoring ones being deleted. */
function pickClusterNetwork(store: ClusterStore): KObj | undefined {
  const all = store.caches.ClusterNetwork.list().filter((o) => !o.metadata?.deletionTimestamp);
  return all.find((o) => o.metadata?.name === "default") ?? all.sort((a, b) => ((a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1))[0];
}

/** The health-probe rounds a node's agent reported for the current gate (NodeNetwork status.health). */
export function healthOf(nn: KObj | undefined): NodeHealth | undefined {
  const h = (nn?.["status"] as { health?: { epoch: number; okRounds: number; failedRounds: number; lastFailure?: string; waiting?: string } } | undefined)?.health;
  return h ? { epoch: h.epoch, okRounds: h.okRounds, failedRounds: h.failedRounds, ...(h.lastFailure ? { lastFailure: h.lastFailure } : {}), ...(h.waiting ? { waiting: h.waiting } : {}) } : undefined;
}

function reportOf(nn: KObj): NodeReport {
  const spec = nn["spec"] as { planHash?: string; block?: string; health?: unknown } | undefined;
  const status = nn["status"] as { appliedHash?: string; capabilities?: Record<string, boolean>; conditions?: { type: string; status: string; message?: string }[] } | undefined;
  const health = healthOf(nn);
  return {
    ...(spec?.planHash !== undefined ? { planHash: spec.planHash } : {}),
    ...(spec?.block ? { block: spec.block } : {}),
    probing: spec?.health !== undefined,
    ...(status?.appliedHash ? { appliedHash: status.appliedHash } : {}),
    ...(status?.capabilities ? { capabilities: status.capabilities } : {}),
    ...(health ? { health } : {}),
    conditions: status?.conditions ?? [],
  };
}

/** The BlockAffinities with a block, by name (the node's). */
export function observeAffinities(store: ClusterStore): Map<string, HeldBlock> {
  const out = new Map<string, HeldBlock>();
  for (const o of store.caches.BlockAffinity.list()) {
    const cidr = (o["spec"] as { cidr?: unknown } | undefined)?.cidr;
    const name = o.metadata?.name;
    if (typeof cidr !== "string" || !name) continue;
    out.set(name, { cidr, terminating: o.metadata?.deletionTimestamp !== undefined && o.metadata.deletionTimestamp !== null, finalizers: o.metadata?.finalizers ?? [] });
  }
  return out;
}

/** The NodeNetworks, BlockAffinities and Node names as the store holds them now (also read again once a pass's plans are written). */
export function observeNodes(store: ClusterStore): NodesSeen {
  return {
    nodeNetworks: new Map(store.caches.NodeNetwork.list().map((nn) => [nn.metadata?.name ?? "", reportOf(nn)])),
    affinities: observeAffinities(store),
    nodeObjects: new Set(store.caches.Node.list().map((o) => o.metadata?.name ?? "")),
  };
}

/** The appliedHash each NodeNetwork's agent reports (for the implementation-delay metric). */
export function observeAppliedHashes(store: ClusterStore): Map<string, string | undefined> {
  return new Map(store.caches.NodeNetwork.list().map((nn) => [nn.metadata?.name ?? "", (nn["status"] as { appliedHash?: string } | undefined)?.appliedHash]));
}

/** Reads the store for one pass. */
export function observeCluster(store: ClusterStore): Observation {
  const inputVersion = store.planInputVersion;
  const cn = pickClusterNetwork(store);
  if (!cn) return { kind: "none" };
  const clusterNetwork = { name: cn.metadata?.name ?? "default", uid: cn.metadata?.uid, apiVersion: cn.apiVersion };
  const parsed = parseClusterNetwork({ ...cn, apiVersion: cn.apiVersion, kind: "ClusterNetwork", metadata: { name: cn.metadata?.name }, status: undefined });
  if (!parsed.ok) return { kind: "invalid", clusterNetwork, problems: parsed.diagnostics.map(formatDiagnostic).join("; ") };
  const spec = parsed.value.spec;
  const previousStatus = cn["status"] as ClusterNetworkStatus | undefined;
  const nodes: ClusterNode[] = [];
  const nodeProblems: PlanDiagnostic[] = [];
  for (const o of store.caches.Node.list()) {
    const r = nodeFromObject(o);
    if (r.node) nodes.push(r.node);
    else nodeProblems.push({ node: o.metadata?.name ?? "?", reason: "NodeNotReady", message: r.problem ?? "not ready" });
  }
  const seenAt = [...store.changeSeenAt.entries()].filter(([v]) => v <= inputVersion).map(([, t]) => t);
  const active = previousStatus?.activeConfig;
  return {
    kind: "cluster",
    inputVersion,
    oldestChangeSeenAt: seenAt.length > 0 ? Math.min(...seenAt) : undefined,
    clusterNetwork,
    generation: cn.metadata?.generation ?? 1,
    spec,
    previousStatus,
    control: cn.metadata?.annotations?.[MIGRATION_CONTROL_ANNOTATION],
    nodes,
    nodeNames: nodes.map((n) => n.name).sort(),
    nodeProblems,
    settings: migrationSettings(spec, nodes),
    sourceConfig: { ...(active?.vxlan ? { vxlan: active.vxlan } : {}), ...(active?.bgp ? { bgp: active.bgp } : {}) },
    pods: store.caches.Pod.list(),
    namespaces: store.caches.Namespace.list(),
    policies: store.caches.NetworkPolicy.list(),
    policyInputKey: `${store.kindVersions.Pod}/${store.kindVersions.Namespace}/${store.kindVersions.NetworkPolicy}`,
    ...observeNodes(store),
  };
}

