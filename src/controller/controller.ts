// The Switchyard controller. Data flow (docs/design.md): watch events only update the store; a coalescing,
// bounded-rate scheduler runs full, level-triggered passes: compile every node's plan (pure), publish by
// server-side apply only the NodeNetworks whose plan hash changed, garbage-collect plans of deleted
// nodes, and aggregate ClusterNetwork status from what agents report. Nothing is published before every
// watched kind has been listed once (a half-filled cache must never wipe a node's rules), and only the
// lease holder writes. A periodic relist repairs anything a lost event left behind.
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import type { ClusterNetworkStatus, Mode } from "../api/cluster-network";
import { formatDiagnostic } from "../api/diagnostics";
import { parseClusterNetwork } from "../api/validate-cluster-network";
import type { NodeNetworkSpec } from "../api/node-network";
import { compileClusterPlans, PlanCache, type PlanDiagnostic } from "../compile/cluster-plan";
import { type ClusterNode } from "../model/cluster";
import { mapBounded } from "../base/limit";
import { shortHash } from "../model/names";
import { ClusterNetworkGVK, NodeNetworkGVK } from "../kube/kinds";
import { LeaderElector } from "../kube/leader";
import { createLogger, type Logger } from "../base/log";
import { ControllerMetrics } from "./metrics";
import { CoalescingScheduler } from "../base/scheduler";
import { namespaceFromObject, nodeFromObject, podFromObject } from "../kube/objects";
import { healthOf } from "./observe";
import { computeClusterStatus, mergePatchFor, type NodeRealization } from "./status";
import { ClusterStore, type KObj, type Phase, type WatchedKind, WATCHED } from "../kube/store";
import { layoutOf, transition } from "../migration/machine";
import { TERMINAL_PHASES, type MigrationState } from "../migration/types";
import { annotationPath, MIGRATION_CONTROL_ANNOTATION, POD_MTU_ANNOTATION } from "../api/annotations";
import { preflightBlockers } from "../migration/preflight";
import { migrationSettings, stateFromStatus, statusFromState } from "../migration/status";

export interface ControllerOptions {
  readonly identity?: string;
  readonly leaseNamespace?: string;
  readonly leaseDurationSec?: number;
  /** Minimum time between two passes (coalescing window). */
  readonly minIntervalMs?: number;
  /** Full relist of every watched kind (drift and lost-event repair). */
  readonly resyncIntervalMs?: number;
  /** Use kfc watchers (standalone); false when Pepr bindings feed `handleEvent`. */
  readonly ownWatches?: boolean;
  readonly leaderElection?: boolean;
  readonly log?: Logger;
  readonly metrics?: ControllerMetrics;
  readonly now?: () => number;
}

type Api = ReturnType<typeof K8s>;

function apiFor(k: WatchedKind): Api {
  switch (k) {
    case "ClusterNetwork":
      return K8s(GenericKind, { kindOverride: ClusterNetworkGVK }) as unknown as Api;
    case "NodeNetwork":
      return K8s(GenericKind, { kindOverride: NodeNetworkGVK }) as unknown as Api;
    case "Node":
      return K8s(kind.Node) as unknown as Api;
    case "Pod":
      return K8s(kind.Pod) as unknown as Api;
    case "Namespace":
      return K8s(kind.Namespace) as unknown as Api;
    case "NetworkPolicy":
      return K8s(kind.NetworkPolicy) as unknown as Api;
  }
}

/** An error as a log line: kfc rejects with the API server's response (status and Status body), not an Error. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  const r = e as { status?: number; statusText?: string; data?: { message?: string } } | undefined;
  if (r && typeof r === "object" && (r.status !== undefined || r.data !== undefined)) return `${r.status ?? "?"} ${r.statusText ?? ""}: ${r.data?.message ?? JSON.stringify(r.data)}`.trim();
  return String(e);
}

/** What a gate's new probe epoch changes in a plan; every other field is compared by identity (the plan cache shares them). */
const HEALTH_FIELDS: ReadonlySet<string> = new Set(["health", "planHash", "generation"]);

/** True when two plans of a node differ in health probing (and what follows from it) only. */
function differsOnlyInHealth(a: NodeNetworkSpec, b: NodeNetworkSpec): boolean {
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) if (!HEALTH_FIELDS.has(k) && x[k] !== y[k]) return false;
  return true;
}

/** How many plans one pass writes at a time. */
const PUBLISH_CONCURRENCY = 8;

type PendingDelay = { seenAt: number; targets: Map<string, string> };

/** The result of one compile as the rest of a pass uses it. `specs` (the plan bodies) only right after a compile. */
type CompiledPlans = {
  /** Every compile input except the recorded blocks: store input version, ClusterNetwork identity, layout. */
  readonly key: string;
  /** The recorded blocks (from NodeNetworks) it was compiled with. */
  readonly previousBlocks: Readonly<Record<string, string>>;
  /** The blocks it allocated. */
  readonly blocks: Readonly<Record<string, string>>;
  readonly hashes: ReadonlyMap<string, string>;
  /** The pod MTU each node's plan sets. */
  readonly mtus: ReadonlyMap<string, number>;
  readonly diagnostics: readonly PlanDiagnostic[];
  readonly ipam: { readonly allocatedBlocks: number; readonly freeBlocks: number };
  readonly specs?: ReadonlyMap<string, NodeNetworkSpec>;
};

/** Every entry of `a` is in `b`. */
const within = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => Object.entries(a).every(([k, v]) => b[k] === v);

export class Controller {
  readonly store = new ClusterStore();
  readonly metrics: ControllerMetrics;
  readonly log: Logger;
  readonly scheduler: CoalescingScheduler;
  private readonly leader: LeaderElector | undefined;
  private readonly watchers: { close(): void }[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Plans published per node (hash), to skip identical writes even before our own watch event returns. */
  private readonly published = new Map<string, string>();
  private readonly pendingDelays: PendingDelay[] = [];
  private lastEventKey = new Map<string, string>();
  private lastStatusJson = "";
  /** The last compile, without plan bodies (see compileFor in reconcile). */
  private lastCompile: CompiledPlans | undefined;
  /** Per-node parts of the last compile: a migration step recompiles only the nodes it changes. */
  private readonly planCache = new PlanCache();
  /** The plan body last published per node (shared with planCache): a change of health probing alone is a small patch. */
  private readonly publishedSpecs = new Map<string, NodeNetworkSpec>();
  /** The migration layout whose plans were all published, and when (migration step timeouts count from then). */
  private layoutPublished: { key: string; at: number } | undefined;
  /** Counters for tests and benchmarks. */
  readonly counters = { publishes: 0, deletes: 0, statusWrites: 0, passes: 0, events: 0 };

  constructor(private readonly opts: ControllerOptions = {}) {
    this.log = opts.log ?? createLogger("controller");
    this.metrics = opts.metrics ?? new ControllerMetrics();
    this.scheduler = new CoalescingScheduler({
      minIntervalMs: opts.minIntervalMs ?? 100,
      run: () => this.reconcile(),
      onError: (e) => {
        this.metrics.reconcileErrors.inc();
        this.log.warn({ err: describeError(e) }, "reconcile failed; retrying with backoff");
      },
      ...(opts.now ? { now: opts.now } : {}),
    });
    if (opts.leaderElection !== false) {
      this.leader = new LeaderElector({
        namespace: opts.leaseNamespace ?? "switchyard-system",
        name: "switchyard-controller",
        identity: opts.identity ?? `controller-${process.pid}-${shortHash(String(Math.random()), 6)}`,
        leaseDurationSec: opts.leaseDurationSec ?? 15,
        renewEveryMs: Math.max(500, ((opts.leaseDurationSec ?? 15) * 1000) / 3),
        log: this.log,
        onChange: (leader) => {
          this.metrics.leader.set(leader ? 1 : 0);
          if (leader) {
            // A new leader starts from what is in the API, not from what a previous holder wrote.
            this.published.clear();
            this.scheduler.trigger();
          }
        },
        ...(opts.now ? { now: opts.now } : {}),
      });
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  isLeader(): boolean {
    return this.leader ? this.leader.isLeader() : true;
  }

  /** Feeds one watch event into the store (kfc watchers and Pepr bindings both land here). */
  handleEvent(k: WatchedKind, phase: Phase, obj: KObj): void {
    const inputVersion = this.store.planInputVersion;
    const changed = this.store.apply(k, phase, obj, this.now());
    if (k === "NodeNetwork") this.observeRealization();
    // A ClusterNetwork event that moved no input (our own status write coming back) needs no pass.
    if (changed && (k !== "ClusterNetwork" || this.store.planInputVersion !== inputVersion)) this.scheduler.trigger();
  }

  /** Lists every watched kind and replaces the store's content (initial sync and periodic repair). */
  async relistAll(): Promise<void> {
    await Promise.all(
      WATCHED.map(async (k) => {
        const list = (await apiFor(k).Get()) as unknown as { metadata?: { resourceVersion?: string }; items: KObj[] };
        const items = list.items.map((o) => ({ ...o, kind: o.kind ?? k }));
        const listRv = Number.parseInt(list.metadata?.resourceVersion ?? "", 10);
        if (this.store.replaceAll(k, items, this.now(), Number.isFinite(listRv) ? listRv : undefined)) this.scheduler.trigger();
      }),
    );
    this.observeRealization();
  }

  async start(): Promise<void> {
    this.leader?.start();
    await this.relistAll();
    if (this.opts.ownWatches !== false) {
      for (const k of WATCHED) {
        const w = apiFor(k).Watch(
          (obj, phase) => {
            if (phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED") this.handleEvent(k, phase, { ...(obj as KObj), kind: (obj as KObj).kind ?? k });
          },
          { resyncDelaySec: 1, relistIntervalSec: 600, lastSeenLimitSeconds: 300 },
        );
        await w.start();
        this.watchers.push(w);
      }
    }
    const every = this.opts.resyncIntervalMs ?? 300_000;
    const resync = () => {
      if (this.stopped) return;
      this.relistAll()
        .catch((e: unknown) => this.log.warn({ err: String(e) }, "periodic relist failed"))
        .finally(() => {
          if (!this.stopped) this.resyncTimer = setTimeout(resync, every);
        });
    };
    this.resyncTimer = setTimeout(resync, every);
    this.scheduler.trigger();
    this.log.info({ synced: this.store.isSynced() }, "controller started");
  }

  /** Stops watching and publishing; `releaseLease: false` behaves like a crash (a standby waits for expiry). */
  async stop(opts: { releaseLease?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const w of this.watchers.splice(0)) w.close();
    this.scheduler.stop();
    await this.leader?.stop(opts.releaseLease ?? true);
  }

  private pickClusterNetwork(): KObj | undefined {
    const all = this.store.caches.ClusterNetwork.list().filter((o) => !o.metadata?.deletionTimestamp);
    return all.find((o) => o.metadata?.name === "default") ?? all.sort((a, b) => ((a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1))[0];
  }

  private async emitEvent(cn: KObj, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const key = `${reason}`;
    if (this.lastEventKey.get(key) === message) return;
    this.lastEventKey.set(key, message);
    const nowIso = new Date(this.now()).toISOString();
    try {
      await K8s(kind.CoreEvent).Create({
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `${cn.metadata?.name}.${shortHash(`${reason}/${message}/${nowIso}`, 10)}`, namespace: "default" },
        involvedObject: { apiVersion: cn.apiVersion, kind: "ClusterNetwork", name: cn.metadata?.name, uid: cn.metadata?.uid },
        reason,
        message: message.slice(0, 1024),
        type,
        source: { component: "switchyard-controller" },
        firstTimestamp: nowIso,
        lastTimestamp: nowIso,
        count: 1,
      } as never);
      this.counters.events++;
      this.metrics.writes.inc({ kind: "Event", verb: "create" });
    } catch (e) {
      this.log.debug({ err: String(e) }, "event not recorded");
    }
  }

  private wakeTimer: NodeJS.Timeout | undefined;
  /** Runs a pass at `at` even if nothing changes (migration timeouts and grace periods). */
  private wakeAt(at: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.scheduler.trigger(), Math.max(0, at - this.now()) + 5);
  }

  /** Observes the implementation delay of changes whose affected nodes have now all applied their plans. */
  private observeRealization(): void {
    if (this.pendingDelays.length === 0) return;
    const applied = new Map<string, string | undefined>();
    for (const nn of this.store.caches.NodeNetwork.list()) {
      applied.set(nn.metadata?.name ?? "", (nn["status"] as { appliedHash?: string } | undefined)?.appliedHash);
    }
    const now = this.now();
    for (let i = this.pendingDelays.length - 1; i >= 0; i--) {
      const p = this.pendingDelays[i]!;
      const done = [...p.targets].every(([node, hash]) => applied.get(node) === hash || this.published.get(node) !== hash);
      if (done) {
        this.metrics.implementationDelay.observe((now - p.seenAt) / 1000);
        this.pendingDelays.splice(i, 1);
      }
    }
  }

  /**
   * Writes one node's plan: by server-side apply, or, when only health probing changed since our last
   * write (a migration gate's new epoch), by a JSON patch of those few fields guarded by a test of the
   * plan hash we wrote, so that a gate does not resend every node's routes. A failed guard falls back to
   * the full apply.
   */
  private async publishPlan(cn: KObj, nodeSpec: NodeNetworkSpec): Promise<void> {
    const node = nodeSpec.nodeName;
    const prev = this.publishedSpecs.get(node);
    let patched = false;
    if (prev !== undefined && differsOnlyInHealth(prev, nodeSpec)) {
      const ops = [
        { op: "test", path: "/spec/planHash", value: prev.planHash },
        { op: "replace", path: "/spec/planHash", value: nodeSpec.planHash },
        { op: "replace", path: "/spec/generation", value: nodeSpec.generation },
        nodeSpec.health ? { op: "add", path: "/spec/health", value: nodeSpec.health } : { op: "remove", path: "/spec/health" },
      ];
      if (!nodeSpec.health && !prev.health) ops.pop();
      patched = await K8s(GenericKind, { kindOverride: NodeNetworkGVK, name: node })
        .Patch(ops as never)
        .then(() => true)
        .catch((e: unknown) => {
          this.log.debug({ node, err: describeError(e) }, "health patch refused; applying the whole plan");
          return false;
        });
      if (patched) this.metrics.writes.inc({ kind: "NodeNetwork", verb: "patch" });
    }
    if (!patched) {
      // Fields a JSON patch changed (the probe epoch) belong to that patch's manager, and an apply that
      // leaves out spec.health would strip only our fields of it and keep the epoch (an invalid plan).
      // So health probing ends by removing the whole section first.
      const live = this.store.caches.NodeNetwork.get(node)?.["spec"] as { health?: unknown } | undefined;
      if (!nodeSpec.health && (live?.health !== undefined || prev?.health !== undefined)) {
        await K8s(GenericKind, { kindOverride: NodeNetworkGVK, name: node })
          .Patch([{ op: "remove", path: "/spec/health" }] as never)
          .catch((e: unknown) => this.log.debug({ node, err: describeError(e) }, "no health section to remove"));
      }
      await K8s(GenericKind, { kindOverride: NodeNetworkGVK }).Apply(
        {
          apiVersion: `${NodeNetworkGVK.group}/${NodeNetworkGVK.version}`,
          kind: "NodeNetwork",
          metadata: {
            name: node,
            labels: { "switchyard.dev/cluster-network": cn.metadata?.name ?? "default" },
            ownerReferences: [{ apiVersion: cn.apiVersion ?? "", kind: "ClusterNetwork", name: cn.metadata?.name ?? "", uid: cn.metadata?.uid ?? "", controller: true }],
          },
          spec: nodeSpec,
        } as never,
        { force: true },
      );
      this.metrics.writes.inc({ kind: "NodeNetwork", verb: "apply" });
    }
    this.published.set(node, nodeSpec.planHash);
    this.publishedSpecs.set(node, nodeSpec);
    this.counters.publishes++;
  }

  /** Compiles and publishes. Runs under the scheduler: never concurrently. */
  async reconcile(): Promise<void> {
    if (!this.store.isSynced() || !this.isLeader() || this.stopped) {
      this.log.debug({ synced: this.store.isSynced(), leader: this.isLeader() }, "pass skipped");
      return;
    }
    const endTimer = this.metrics.reconcileDuration.startTimer();
    this.counters.passes++;
    const inputVersion = this.store.planInputVersion;
    const cn = this.pickClusterNetwork();
    if (!cn) {
      this.log.debug("no ClusterNetwork yet");
      endTimer();
      return;
    }
    const parsed = parseClusterNetwork({ ...cn, apiVersion: cn.apiVersion, kind: "ClusterNetwork", metadata: { name: cn.metadata?.name }, status: undefined });
    if (!parsed.ok) {
      const msg = parsed.diagnostics.map(formatDiagnostic).join("; ");
      this.log.error({ clusterNetwork: cn.metadata?.name, problems: msg }, "ClusterNetwork is invalid; keeping the plans in force");
      await this.emitEvent(cn, "Warning", "InvalidSpec", msg);
      endTimer();
      return;
    }
    const spec = parsed.value.spec;
    const generation = cn.metadata?.generation ?? 1;
    const prevStatus = cn["status"] as ClusterNetworkStatus | undefined;
    let activeMode: Mode = prevStatus?.activeMode ?? spec.mode;

    const nodes: ClusterNode[] = [];
    const diagnostics: PlanDiagnostic[] = [];
    for (const o of this.store.caches.Node.list()) {
      const r = nodeFromObject(o);
      if (r.node) nodes.push(r.node);
      else diagnostics.push({ node: o.metadata?.name ?? "?", reason: "NodeNotReady", message: r.problem ?? "not ready" });
    }
    const previousBlocks: Record<string, string> = {};
    for (const nn of this.store.caches.NodeNetwork.list()) {
      const b = (nn["spec"] as { block?: string } | undefined)?.block;
      if (b && nn.metadata?.name) previousBlocks[nn.metadata.name] = b;
    }
    // The migration driver: the layout (who sends with what, what everyone receives, gate probing)
    // follows the state persisted in status.migration; transition() decides the next step from what the
    // agents report for the plans of the current step.
    const now = this.now();
    const nodeNames = nodes.map((n) => n.name).sort();
    const settings = migrationSettings(spec, nodes);
    const sourceConfig = { ...(prevStatus?.activeConfig?.vxlan ? { vxlan: prevStatus.activeConfig.vxlan } : {}), ...(prevStatus?.activeConfig?.bgp ? { bgp: prevStatus.activeConfig.bgp } : {}) };
    const existingHashOf = (node: string): string | undefined => (this.store.caches.NodeNetwork.get(node)?.["spec"] as { planHash?: string } | undefined)?.planHash;
    // A full compile costs seconds at 1,000 nodes, and most passes only count agents' status reports. The
    // compile is pure, so the last result stands while its inputs are unchanged: the same store input
    // version, ClusterNetwork and layout; recorded blocks that include the ones it was compiled with and
    // agree with what it allocated (our own publishes arriving: allocateBlocks keeps recorded blocks and
    // gives the others the lowest free block in name order, so the allocation comes out the same); and
    // every plan already published, since plan bodies are not kept between passes (they are large).
    const compileFor = (state: MigrationState | undefined, active: Mode): CompiledPlans => {
      const layout = layoutOf(state, active, nodeNames, settings);
      const options = {
        clusterNetwork: cn.metadata?.name ?? "default",
        generation,
        spec,
        defaultMode: active,
        nodeModes: layout.nodeModes,
        modesInUse: layout.modesInUse,
        sourceConfig,
        ...(layout.probe ? { probe: layout.probe } : {}),
      };
      const key = JSON.stringify([inputVersion, cn.metadata?.uid, options]);
      const last = this.lastCompile;
      if (
        last?.key === key &&
        within(last.previousBlocks, previousBlocks) &&
        within(previousBlocks, last.blocks) &&
        [...last.hashes].every(([node, hash]) => this.published.get(node) === hash || existingHashOf(node) === hash)
      ) {
        return last;
      }
      const plans = compileClusterPlans({
        ...options,
        nodes,
        namespaces: this.store.caches.Namespace.list().map(namespaceFromObject),
        pods: this.store.caches.Pod.list().map(podFromObject).filter((p): p is NonNullable<typeof p> => p !== undefined),
        policies: this.store.caches.NetworkPolicy.list(),
        previousBlocks,
        cache: this.planCache,
        policyInputKey: `${this.store.kindVersions.Pod}/${this.store.kindVersions.Namespace}/${this.store.kindVersions.NetworkPolicy}`,
      });
      const blocks = Object.fromEntries([...plans.plans].flatMap(([n, p]) => (p.block ? [[n, p.block]] : []))) as Record<string, string>;
      return {
        key,
        previousBlocks: { ...previousBlocks },
        blocks,
        hashes: new Map([...plans.plans].map(([n, p]) => [n, p.planHash])),
        mtus: new Map([...plans.plans].map(([n, p]) => [n, p.mtu])),
        diagnostics: plans.diagnostics,
        ipam: plans.ipam,
        specs: plans.plans,
      };
    };
    const state0 = stateFromStatus(prevStatus?.migration, now);
    const layoutKey = (state: MigrationState | undefined, active: Mode) => JSON.stringify([cn.metadata?.uid, generation, layoutOf(state, active, nodeNames, settings)]);
    let plans = compileFor(state0, activeMode);
    const nnByName = new Map(this.store.caches.NodeNetwork.list().map((o) => [o.metadata?.name ?? "", o]));
    const lagging = nodeNames.filter((n) => (nnByName.get(n)?.["status"] as { appliedHash?: string } | undefined)?.appliedHash !== plans.hashes.get(n));
    const control = cn.metadata?.annotations?.[MIGRATION_CONTROL_ANNOTATION];
    const starting = spec.mode !== activeMode && (!state0 || TERMINAL_PHASES.includes(state0.phase));
    const blockers =
      starting || state0?.phase === "Preflight"
        ? preflightBlockers(spec.mode, spec, nodes, plans.blocks, new Map(nodeNames.map((n) => [n, (nnByName.get(n)?.["status"] as { capabilities?: Record<string, boolean> } | undefined)?.capabilities])), sourceConfig)
        : [];
    const decision = transition(state0, {
      now,
      specMode: spec.mode,
      activeMode,
      generation,
      settings,
      nodes: nodeNames,
      ...(control === "pause" || control === "resume" || control === "abort" || control === "retry" ? { control } : {}),
      blockers,
      lagging,
      health: Object.fromEntries(nodeNames.map((n) => [n, healthOf(nnByName.get(n))])),
      ...(this.layoutPublished?.key === layoutKey(state0, activeMode) ? { publishedAt: this.layoutPublished.at } : {}),
    });
    if (JSON.stringify(decision.state) !== JSON.stringify(state0) || decision.activeMode !== activeMode) {
      plans = compileFor(decision.state, decision.activeMode);
      activeMode = decision.activeMode;
    }
    for (const e of decision.events) await this.emitEvent(cn, e.type, e.reason, e.message);
    if (control !== undefined) {
      await K8s(GenericKind, { kindOverride: ClusterNetworkGVK, name: cn.metadata?.name ?? "default" })
        .Patch([{ op: "remove", path: annotationPath(MIGRATION_CONTROL_ANNOTATION) }])
        .catch((e: unknown) => this.log.warn({ err: String(e) }, "could not clear the migration control annotation"));
    }
    if (decision.wakeAt !== undefined) this.wakeAt(decision.wakeAt);
    // Pods whose interface MTU (as their CNI recorded it) exceeds their node's plan MTU: after a move to a
    // mode with more overhead they rely on PMTU discovery until restarted. Reported, not changed.
    const tooLarge: string[] = [];
    for (const o of this.store.caches.Pod.list()) {
      const m = Number(o.metadata?.annotations?.[POD_MTU_ANNOTATION]);
      const node = (o["spec"] as { nodeName?: string } | undefined)?.nodeName;
      const planMtu = node ? plans.mtus.get(node) : undefined;
      if (Number.isFinite(m) && planMtu !== undefined && m > planMtu) tooLarge.push(`${o.metadata?.namespace}/${o.metadata?.name} (${m} > ${planMtu} on ${node})`);
    }
    tooLarge.sort();
    const mtuCondition = tooLarge.length > 0
      ? { type: "PodMTUTooLarge", status: "True" as const, reason: "PodsNeedRestart", message: `${tooLarge.length} pod(s) have a larger MTU than the pod network now allows and rely on path-MTU discovery until restarted: ${tooLarge.slice(0, 10).join(", ")}${tooLarge.length > 10 ? ", ..." : ""}`, observedGeneration: generation }
      : { type: "PodMTUTooLarge", status: "False" as const, reason: "PodMTUsFit", message: "every pod's MTU fits the pod network", observedGeneration: generation };
    if (tooLarge.length > 0) await this.emitEvent(cn, "Warning", "PodMTUTooLarge", mtuCondition.message);
    const migrationStatus = statusFromState(decision.state);
    const migrating = decision.state !== undefined && !TERMINAL_PHASES.includes(decision.state.phase);
    diagnostics.push(...plans.diagnostics);

    // Publish changed plans (server-side apply, our field manager), then garbage-collect.
    const seenAt = Math.min(...[...this.store.changeSeenAt.entries()].filter(([v]) => v <= inputVersion).map(([, t]) => t), this.now());
    const changedTargets = new Map<string, string>();
    const toPublish: NodeNetworkSpec[] = [];
    for (const [node, planHash] of plans.hashes) {
      if (existingHashOf(node) === planHash || this.published.get(node) === planHash) {
        this.published.set(node, planHash);
        continue;
      }
      const nodeSpec = plans.specs?.get(node);
      if (!nodeSpec) {
        // Unreachable: a reused compile has every plan published. Compile afresh on the retry.
        this.lastCompile = undefined;
        throw new Error(`no plan body for ${node}`);
      }
      toPublish.push(nodeSpec);
    }
    // Plans of one pass are independent of each other (the zero-loss order is between migration steps,
    // never within one), so they go out several at a time.
    await mapBounded(toPublish, PUBLISH_CONCURRENCY, (nodeSpec) => this.publishPlan(cn, nodeSpec));
    for (const nodeSpec of toPublish) changedTargets.set(nodeSpec.nodeName, nodeSpec.planHash);
    for (const nn of this.store.caches.NodeNetwork.list()) {
      const name = nn.metadata?.name ?? "";
      if (!plans.hashes.has(name) && !this.store.caches.Node.get(name)) {
        await K8s(GenericKind, { kindOverride: NodeNetworkGVK }).Delete(name);
        this.published.delete(name);
        this.publishedSpecs.delete(name);
        this.counters.deletes++;
        this.metrics.writes.inc({ kind: "NodeNetwork", verb: "delete" });
        this.log.info({ node: name }, "deleted the plan of a node that is gone");
      }
    }
    if (changedTargets.size > 0) {
      this.pendingDelays.push({ seenAt, targets: changedTargets });
      this.log.info({ nodes: [...changedTargets.keys()], inputVersion }, "published plans");
      await this.emitEvent(cn, "Normal", "PlansPublished", `published new plans for ${changedTargets.size} node(s): ${[...changedTargets.keys()].slice(0, 10).join(", ")}`);
    }
    for (const v of [...this.store.changeSeenAt.keys()]) if (v <= inputVersion) this.store.changeSeenAt.delete(v);
    // Every plan of this compile is published now; keep it without the bodies.
    const { specs: _bodies, ...kept } = plans;
    this.lastCompile = kept;
    const publishedKey = layoutKey(decision.state, activeMode);
    if (this.layoutPublished?.key !== publishedKey) this.layoutPublished = { key: publishedKey, at: this.now() };

    // Status from realization.
    const realizations: NodeRealization[] = [...plans.hashes].map(([node, planHash]) => {
      const nn = this.store.caches.NodeNetwork.get(node);
      const st = (nn?.["status"] ?? {}) as { appliedHash?: string; conditions?: { type: string; status: string; message?: string }[] };
      const problems = (st.conditions ?? []).filter((c) => (c.type === "Applied" && c.status === "False") || (c.type !== "Applied" && c.type !== "Ready" && c.status === "True")).map((c) => `${c.type}: ${c.message ?? ""}`);
      return { node, planHash, ...(st.appliedHash ? { appliedHash: st.appliedHash } : {}), agentProblems: problems };
    });
    const status = computeClusterStatus({
      generation,
      activeMode,
      targetMode: spec.mode,
      nodes: realizations,
      diagnostics,
      ipam: plans.ipam,
      ...(prevStatus ? { previous: prevStatus } : {}),
      now: new Date(this.now()).toISOString(),
      ...(migrationStatus ? { migration: migrationStatus } : {}),
      activeConfig: migrating || activeMode !== spec.mode ? (prevStatus?.activeConfig ?? {}) : { ...(spec.vxlan ? { vxlan: spec.vxlan } : {}), ...(spec.bgp ? { bgp: spec.bgp } : {}) },
      extraConditions: [
        decision.state?.phase === "Blocked"
          ? { type: "MigrationBlocked", status: "True" as const, reason: "PreflightFailed", message: decision.state.reason ?? decision.state.message, observedGeneration: generation }
          : { type: "MigrationBlocked", status: "False" as const, reason: "NotBlocked", message: "no migration is blocked", observedGeneration: generation },
        migrating
          ? { type: "Migrating", status: "True" as const, reason: decision.state!.phase, message: decision.state!.message, observedGeneration: generation }
          : { type: "Migrating", status: "False" as const, reason: decision.state?.phase ?? "Idle", message: decision.state?.message ?? "no migration in progress", observedGeneration: generation },
        mtuCondition,
      ],
    });
    this.metrics.nodes.set({ state: "desired" }, status.nodes?.desired ?? 0);
    this.metrics.nodes.set({ state: "realized" }, status.nodes?.realized ?? 0);
    const comparable = JSON.stringify({ ...status, conditions: status.conditions?.map((c) => ({ ...c, lastTransitionTime: "" })) });
    if (comparable !== this.lastStatusJson) {
      await K8s(GenericKind, { kindOverride: ClusterNetworkGVK }).PatchStatus({ metadata: { name: cn.metadata?.name }, status: mergePatchFor(prevStatus, status) } as never);
      this.lastStatusJson = comparable;
      this.counters.statusWrites++;
      this.metrics.writes.inc({ kind: "ClusterNetwork", verb: "patch-status" });
      const degraded = status.conditions?.find((c) => c.type === "Degraded");
      if (degraded?.status === "True") await this.emitEvent(cn, "Warning", "Degraded", degraded.message);
    }
    this.observeRealization();
    endTimer();
  }
}
