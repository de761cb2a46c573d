// Simulated node agents for the control-plane benchmark, and the clock that times the benchmark's events.
// 1,000 real agents each watching their own NodeNetwork would be 1,000 watch streams and kernels; the
// controller cannot tell the difference between that and ONE shared NodeNetwork watch that, for every
// plan whose planHash is not yet applied, reports status the way src/agent/node-agent.ts does (appliedHash
// = planHash, observedGeneration = the object's generation, an Applied condition), through the API, after
// an optional simulated apply delay. Reports go through kfc PatchStatus like the real agent's, so the
// emulator and the controller see the same traffic; only the watch side is shared.
//
// The clock (NodeNetworkClock) reads the emulator's change history directly instead of a watch, so the time
// it stamps on "plan published" and "plan applied" is the commit time (within one poll interval), not the
// commit time plus a watch's serialization and parse delay.
import { GenericKind, K8s } from "kubernetes-fluent-client";
import type { ApiServer, StoreEvent } from "../lab/apiserver";
import { NodeNetworkGVK } from "../src/kube/kinds";

/** The parts of a NodeNetwork the agents and the clock read. */
export interface NodeNetworkLike {
  metadata?: { name?: string; generation?: number; resourceVersion?: string };
  spec?: { planHash?: string };
  status?: { appliedHash?: string; conditions?: { type: string; status: string; lastTransitionTime?: string }[] };
}

type Listener = (phase: "ADDED" | "MODIFIED" | "DELETED", nn: NodeNetworkLike) => void;

const NODE_NETWORKS = `${NodeNetworkGVK.group}/${NodeNetworkGVK.plural}`;

/** Polls the emulator's change history for NodeNetwork events (no HTTP, no copies: the objects are frozen). */
export class HistoryFeed {
  private rv: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<Listener>();
  /** Events the history had already dropped when polled (must stay 0: raise historySize otherwise). */
  lost = 0;

  constructor(
    private readonly api: ApiServer,
    private readonly intervalMs = 2,
  ) {
    this.rv = api.store.resourceVersion;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  start(): void {
    const tick = () => {
      this.poll();
      this.timer = setTimeout(tick, this.intervalMs);
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  /** Delivers every NodeNetwork event committed since the last poll. */
  poll(): void {
    const events: StoreEvent[] | undefined = this.api.store.history(this.rv);
    if (events === undefined) {
      this.lost++;
      this.rv = this.api.store.resourceVersion;
      return;
    }
    for (const e of events) {
      this.rv = e.rv;
      if (e.resource !== NODE_NETWORKS) continue;
      for (const l of this.listeners) l(e.type, e.object as NodeNetworkLike);
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export interface Stamp {
  readonly hash: string;
  readonly at: number;
}

/** When each node's current plan was published and when its agent reported it applied (commit times). */
export class NodeNetworkClock {
  readonly published = new Map<string, Stamp>();
  readonly applied = new Map<string, Stamp>();
  /** Spec writes (a new generation) per node since the clock started. */
  specWrites = 0;
  private readonly generation = new Map<string, number>();
  private readonly off: () => void;

  constructor(
    feed: HistoryFeed,
    private readonly now: () => number,
  ) {
    this.off = feed.subscribe((phase, nn) => this.observe(phase, nn));
  }

  private observe(phase: "ADDED" | "MODIFIED" | "DELETED", nn: NodeNetworkLike): void {
    const name = nn.metadata?.name ?? "";
    if (phase === "DELETED") {
      this.published.delete(name);
      this.applied.delete(name);
      this.generation.delete(name);
      return;
    }
    const at = this.now();
    const gen = nn.metadata?.generation ?? 0;
    if (gen !== this.generation.get(name)) {
      this.generation.set(name, gen);
      this.specWrites++;
    }
    const planHash = nn.spec?.planHash;
    if (planHash && this.published.get(name)?.hash !== planHash) this.published.set(name, { hash: planHash, at });
    const appliedHash = nn.status?.appliedHash;
    if (appliedHash && this.applied.get(name)?.hash !== appliedHash) this.applied.set(name, { hash: appliedHash, at });
  }

  close(): void {
    this.off();
  }
}

export interface SimulatedAgentsOptions {
  /** Where the agents learn about plans: one kfc watch over HTTP (default), or the emulator's history. */
  readonly feed: "kfc" | HistoryFeed;
  /** Simulated time to apply a plan before reporting it (default 0). */
  readonly applyDelayMs?: number;
  /** Status reports in flight at once (the real agents are independent; 1,000 sockets would only queue). */
  readonly concurrency?: number;
}

/** N agents behind one watch: report every new planHash as applied, like the real agent does after its apply. */
export class SimulatedAgents {
  /** Status writes made (one per applied plan, the real agent's number). */
  reports = 0;
  failures = 0;
  /** node -> the planHash we last reported applied. */
  readonly reported = new Map<string, string>();
  private readonly queue = new Map<string, { hash: string; generation: number }>();
  private readonly inFlight = new Map<string, string>();
  private active = 0;
  private watcher: { close(): void } | undefined;
  private off: (() => void) | undefined;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: SimulatedAgentsOptions) {}

  async start(): Promise<void> {
    if (this.opts.feed === "kfc") {
      const w = K8s(GenericKind, { kindOverride: NodeNetworkGVK }).Watch(
        (obj, phase) => {
          if (phase === "ADDED" || phase === "MODIFIED") this.onPlan(obj as unknown as NodeNetworkLike);
        },
        { resyncDelaySec: 1, relistIntervalSec: 3600, lastSeenLimitSeconds: 3600 },
      );
      await w.start();
      this.watcher = w;
    } else {
      this.off = this.opts.feed.subscribe((phase, nn) => {
        if (phase !== "DELETED") this.onPlan(nn);
      });
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.off?.();
    this.queue.clear();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Nothing queued or being reported. */
  isIdle(): boolean {
    return this.queue.size === 0 && this.active === 0;
  }

  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private onPlan(nn: NodeNetworkLike): void {
    const name = nn.metadata?.name;
    const hash = nn.spec?.planHash;
    if (!name || !hash || this.stopped) return;
    if (nn.status?.appliedHash === hash) {
      this.reported.set(name, hash);
      return;
    }
    if (this.inFlight.get(name) === hash || this.queue.get(name)?.hash === hash) return;
    this.queue.set(name, { hash, generation: nn.metadata?.generation ?? 0 });
    this.pump();
  }

  private pump(): void {
    const limit = this.opts.concurrency ?? 32;
    while (!this.stopped && this.active < limit && this.queue.size > 0) {
      const [name, job] = this.queue.entries().next().value as [string, { hash: string; generation: number }];
      this.queue.delete(name);
      this.active++;
      this.inFlight.set(name, job.hash);
      void this.report(name, job.hash, job.generation).finally(() => {
        this.active--;
        if (this.inFlight.get(name) === job.hash) this.inFlight.delete(name);
        this.pump();
        if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async report(name: string, hash: string, generation: number): Promise<void> {
    const delay = this.opts.applyDelayMs ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (this.stopped) return;
    const now = new Date().toISOString();
    const status = {
      observedGeneration: generation,
      appliedHash: hash,
      appliedAt: now,
      conditions: [{ type: "Applied", status: "True", reason: "PlanApplied", message: `plan ${hash} is in force (simulated agent)`, observedGeneration: generation, lastTransitionTime: now }],
    };
    try {
      await K8s(GenericKind, { kindOverride: NodeNetworkGVK }).PatchStatus({ metadata: { name }, status } as never);
      this.reports++;
      this.reported.set(name, hash);
    } catch {
      // The real agent reports again on its next pass; here: queue it again unless a newer plan came.
      this.failures++;
      if (!this.stopped && !this.queue.has(name) && this.failures < 1000) this.queue.set(name, { hash, generation });
    }
  }
}
