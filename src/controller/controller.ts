// The Switchyard controller. Data flow (docs/design.md): watch events only update the store; a coalescing,
// bounded-rate scheduler runs full, level-triggered passes, each a pipeline: observe the store, compile
// every node's plan (pure, memoised: plans.ts), decide (pure: decide.ts) the migration step, which plans
// to write and how, which plans of deleted nodes to remove and the ClusterNetwork status from what agents
// report, and act (act.ts) through the KubeClient port. Nothing is published before every watched kind has
// been listed once (a half-filled cache must never wipe a node's rules), and only the lease holder writes.
// A periodic relist repairs anything a lost event left behind.
import { shortHash } from "../model/names";
import { describeError, fencedWrites, type KubeClient } from "../kube/client";
import { KfcClient } from "../kube/kfc-client";
import { LeaderElector } from "../kube/leader";
import { createLogger, type Logger } from "../base/log";
import { ControllerMetrics } from "./metrics";
import { CoalescingScheduler } from "../base/scheduler";
import { ClusterStore, type KObj, type Phase, type WatchedKind, WATCHED } from "../kube/store";
import { observeAppliedHashes, observeCluster, observeNodes } from "./observe";
import { compilePlans } from "./plans";
import { currentPosition, decideFollowUp, decideInvalidSpec, decideMigrationStep, decidePlanWrites } from "./decide";
import { actOnFollowUp, actOnInvalidSpec, actOnPlanWrites, recordRealizedDelays, type ActContext, type ControllerCounters } from "./act";
import { newControllerState, type ControllerState } from "./state";

export interface ControllerOptions {
  readonly identity?: string;
  readonly leaseNamespace?: string;
  readonly leaseDurationSec?: number;
  /** Minimum time between two passes (coalescing window). */
  readonly minIntervalMs?: number;
  /** Full relist of every watched kind (drift and lost-event repair). */
  readonly resyncIntervalMs?: number;
  /** Use our own watches (standalone); false when Pepr bindings feed `handleEvent`. */
  readonly ownWatches?: boolean;
  readonly leaderElection?: boolean;
  readonly log?: Logger;
  readonly metrics?: ControllerMetrics;
  readonly now?: () => number;
  /** The API (kubernetes-fluent-client unless given; tests pass an in-memory fake). */
  readonly client?: KubeClient;
}

export class Controller {
  readonly store = new ClusterStore();
  readonly metrics: ControllerMetrics;
  readonly log: Logger;
  readonly scheduler: CoalescingScheduler;
  /** Counters for tests and benchmarks. */
  readonly counters: ControllerCounters = { publishes: 0, deletes: 0, statusWrites: 0, passes: 0, events: 0 };
  /** What the controller remembers between passes: decide reads it, act updates it. */
  readonly state: ControllerState = newControllerState();
  private readonly client: KubeClient;
  private readonly io: ActContext;
  private readonly leader: LeaderElector | undefined;
  private readonly watchers: { close(): void }[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: ControllerOptions = {}) {
    this.log = opts.log ?? createLogger("controller");
    this.metrics = opts.metrics ?? new ControllerMetrics();
    this.client = opts.client ?? new KfcClient();
    // The pipeline writes through the fence; the lease itself (below) is renewed on the bare client.
    this.io = { client: fencedWrites(this.client, () => this.isLeader()), state: this.state, store: this.store, counters: this.counters, metrics: this.metrics, log: this.log, now: () => this.now(), wakeAt: (at) => this.wakeAt(at) };
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
        client: this.client,
        onChange: (leader) => {
          this.metrics.leader.set(leader ? 1 : 0);
          if (leader) {
            // A new leader starts from what is in the API, not from what a previous holder wrote.
            this.state.published.clear();
            this.state.recordedBlocks.clear();
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

  /**
   * Readiness: the informer caches are synced, so this replica can act at once (the leader) or take over
   * at once (a standby). Not ready while starting or stopping.
   */
  readiness(): { ok: boolean; reason: string } {
    if (this.stopped) return { ok: false, reason: "stopping" };
    if (!this.store.isSynced()) return { ok: false, reason: "watches not synced yet" };
    return { ok: true, reason: this.isLeader() ? "synced, leader" : "synced, standby" };
  }

  isLeader(): boolean {
    return this.leader ? this.leader.isLeader() : true;
  }

  /** Feeds one watch event into the store (our watches and Pepr bindings both land here). */
  handleEvent(k: WatchedKind, phase: Phase, obj: KObj): void {
    const inputVersion = this.store.planInputVersion;
    const changed = this.store.apply(k, phase, obj, this.now());
    if (changed && phase === "DELETED") this.forgetWritten(k, obj.metadata?.name ?? "");
    if (k === "NodeNetwork") this.observeRealization();
    // A ClusterNetwork event that moved no input (our own status write coming back) needs no pass.
    if (changed && (k !== "ClusterNetwork" || this.store.planInputVersion !== inputVersion)) this.scheduler.trigger();
  }

  /** Lists every watched kind and replaces the store's content (initial sync and periodic repair). */
  async relistAll(): Promise<void> {
    await Promise.all(
      WATCHED.map(async (k) => {
        const list = await this.client.list(k);
        const listRv = Number.parseInt(list.resourceVersion ?? "", 10);
        if (this.store.replaceAll(k, list.items, this.now(), Number.isFinite(listRv) ? listRv : undefined)) this.scheduler.trigger();
        // Objects deleted while no watch ran: whatever we remember writing there is gone too (at worst an
        // object of ours the list did not see yet is written once more).
        if (k === "NodeNetwork") for (const name of [...this.state.published.keys()]) if (!this.store.caches.NodeNetwork.get(name)) this.forgetWritten(k, name);
        if (k === "BlockAffinity") for (const name of [...this.state.recordedBlocks.keys()]) if (!this.store.caches.BlockAffinity.get(name)) this.forgetWritten(k, name);
      }),
    );
    this.observeRealization();
  }

  async start(): Promise<void> {
    this.leader?.start();
    await this.relistAll();
    if (this.opts.ownWatches !== false) {
      for (const k of WATCHED) this.watchers.push(await this.client.watch(k, (phase, obj) => this.handleEvent(k, phase, obj)));
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

  /**
   * An object of ours was deleted (by a user, or by the ClusterNetwork's garbage collection): what we
   * remember writing there no longer is in the API, so the next pass writes it again instead of taking it
   * for published (a stale cache here left a deleted NodeNetwork unpublished until the next relist).
   */
  private forgetWritten(k: WatchedKind, name: string): void {
    if (k === "NodeNetwork") {
      this.state.published.delete(name);
      this.state.publishedSpecs.delete(name);
    }
    if (k === "BlockAffinity") this.state.recordedBlocks.delete(name);
  }

  /** Runs a pass at `at` even if nothing changes (migration timeouts and grace periods). */
  private wakeAt(at: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.scheduler.trigger(), Math.max(0, at - this.now()) + 5);
  }

  /** Observes the implementation delay of changes whose affected nodes have now all applied their plans. */
  private observeRealization(): void {
    if (this.state.pendingDelays.length > 0) recordRealizedDelays(observeAppliedHashes(this.store), this.io);
  }

  /**
   * One pass: observe -> compile -> decide -> act, twice decided: the migration step and the plan writes,
   * then (on the cache as the writes leave it) deletions and status. Runs under the scheduler: never concurrently.
   */
  async reconcile(): Promise<void> {
    if (!this.store.isSynced() || !this.isLeader() || this.stopped) {
      this.log.debug({ synced: this.store.isSynced(), leader: this.isLeader() }, "pass skipped");
      return;
    }
    const endTimer = this.metrics.reconcileDuration.startTimer();
    this.counters.passes++;
    const seen = observeCluster(this.store);
    if (seen.kind === "none") this.log.debug("no ClusterNetwork yet");
    if (seen.kind === "invalid") await actOnInvalidSpec(decideInvalidSpec(seen, this.state), this.io);
    if (seen.kind === "cluster") {
      const now = this.now();
      const at = currentPosition(seen, now);
      const current = compilePlans(seen, at, this.state);
      const step = decideMigrationStep(seen, at, current, this.state, now);
      const plans = step.moved ? compilePlans(seen, step.next, this.state) : current;
      const written = decidePlanWrites(seen, step, plans, this.state);
      const sent = await actOnPlanWrites(written, this.io);
      const followUp = decideFollowUp(seen, observeNodes(this.store), step, plans, written, this.state, this.now());
      await actOnFollowUp(followUp, sent, this.io);
      this.observeRealization();
    }
    endTimer();
  }
}
