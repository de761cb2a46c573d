// bench/control-plane: the controller end to end, in ONE process, against the lab's API server emulator
// and simulated agents (no kernel): what a cluster of N nodes / P pods / K policies costs the control plane.
//   (1) initial convergence: controller start -> ClusterNetwork Ready with realized == desired == N, the
//       API requests it made, and its passes;
//   (2) changes (a policy added, a policy modified, a pod relabelled out of its group): time from the write
//       to every AFFECTED NodeNetwork published, and to every affected one reported applied; how many
//       NodeNetworks were rewritten (only the affected ones may be); the delay histogram's observation;
//   (3) memory of the process (after a full GC) before the controller, converged, after the changes, and
//       once the controller is stopped and collected (the difference is the controller's heap);
//   (4) a restart: a new controller must rewrite ZERO unchanged NodeNetworks; time to its first full pass;
//       then one timed relist of every kind (the periodic repair).
// Why simulated agents and one process: the question is what the controller and the API traffic cost at
// 1,000 nodes, which needs neither kernels nor 1,000 watch streams (see bench/sim-agents.ts). The emulator,
// the agents and the controller share the same cores and heap, so the times are upper bounds for the
// controller. Times come from the emulator's commit history (NodeNetworkClock), never from sleeps.
// Figures and the bottlenecks they showed: docs/benchmarks-control-plane.md.
//
// Run: `npx tsx bench/control-plane.ts [--nodes 1000 --pods 30000 --policies 3000] [--policy-mix wide|narrow]
//       [--quick] [--agent-feed kfc]` (kfc: the agents read plans through one kfc watch instead of the
//       emulator's history). Full size needs NODE_OPTIONS=--max-old-space-size=12288.
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { K8s, kind } from "kubernetes-fluent-client";
import { Controller } from "../src/controller/controller";
import { ClusterNetworkGVK, NodeNetworkGVK } from "../src/kube/kinds";
import { createLogger } from "../src/base/log";
import { type ApiServer, startApiServer } from "../lab/apiserver";
import { waitFor } from "../src/base/wait";
import { APPS, buildWorkload, nodeObject, nsName, podObject, podStatus, policyObject, type PolicyObject, type Workload, type WorkloadSize } from "./control-plane-workload";
import { HistoryFeed, NodeNetworkClock, SimulatedAgents } from "./sim-agents";

export interface ControlPlaneBenchOptions extends WorkloadSize {
  /** Repetitions of each change kind. */
  readonly repeats: number;
  readonly applyDelayMs: number;
  readonly agentFeed: "kfc" | "history";
  /** The controller's coalescing window. */
  readonly minIntervalMs?: number;
  /** Upper bound on every wait (a stuck run fails instead of hanging). */
  readonly timeoutMs?: number;
  /** Progress lines (stderr in the CLI). */
  readonly progress?: (line: string) => void;
}

export interface RequestCount {
  readonly verb: string;
  readonly resource: string;
  readonly count: number;
  /** Answered with an HTTP error (>= 400). */
  readonly failed: number;
}

export interface MemoryFigures {
  readonly heapUsedMiB: number;
  readonly rssMiB: number;
}

export interface ChangeResult {
  readonly kind: "policy-add" | "policy-modify" | "pod-relabel";
  readonly what: string;
  /** Duration of the write itself (the kfc call), and write start -> the controller's store has it. */
  readonly writtenMs: number;
  readonly seenMs: number;
  /** NodeNetworks whose planHash changed. */
  readonly affected: number;
  readonly total: number;
  /** NodeNetwork spec writes (PATCH nodenetworks, not status) in the window. */
  readonly rewritten: number;
  /** Write of the change -> last affected NodeNetwork committed. */
  readonly publishedMs: number;
  /** Write of the change -> last affected NodeNetwork reported applied. */
  readonly realizedMs: number;
  /** CPU time the whole process used from the write until the controller was idle and every affected node had reported. */
  readonly cpuMs: number;
  /** The delay histogram's new observations (count, and their sum in ms). */
  readonly histogramCount: number;
  readonly histogramSumMs: number;
  /** Every affected node reported the new plan applied. */
  readonly allRealized: boolean;
  /** Controller passes from the write until quiet again (atMs from the write). */
  readonly passes: readonly PassRecord[];
}

export interface ControlPlaneBenchResult {
  readonly size: WorkloadSize;
  readonly setupMs: number;
  readonly initial: {
    readonly readyMs: number;
    /** CPU time the whole process used until Ready (user + system; the machine is shared). */
    readonly cpuMs: number;
    readonly firstPublishMs: number;
    readonly lastPublishMs: number;
    readonly lastAppliedMs: number;
    readonly desired: number;
    readonly realized: number;
    readonly publishes: number;
    readonly statusWrites: number;
    /** Every controller pass until Ready. */
    readonly passes: readonly PassRecord[];
    readonly histogram: { readonly count: number; readonly sumMs: number };
    readonly requests: readonly RequestCount[];
    readonly agentReports: number;
    readonly largestNodeNetworkKiB: number;
    readonly meanNodeNetworkKiB: number;
  };
  readonly changes: readonly ChangeResult[];
  readonly memory: {
    readonly before: MemoryFigures;
    readonly converged: MemoryFigures;
    readonly afterChanges: MemoryFigures;
    /** After the first controller stopped and was dropped: afterChanges - controllerStopped is its heap. */
    readonly controllerStopped: MemoryFigures;
    /** The stopped controller was garbage-collected (so the difference is its heap). */
    readonly released: boolean;
    readonly gc: boolean;
  };
  /** One full relist of every watched kind (the periodic repair), or why it failed. */
  readonly relistMs: number | undefined;
  readonly restart:
    | {
    readonly firstPassMs: number;
    readonly readyMs: number;
    readonly nodeNetworkPatches: number;
    readonly statusPatches: number;
    readonly passes: number;
    readonly requests: readonly RequestCount[];
  }
    | undefined;
  /** Sections that failed (a change, the relist, the restart), with the error. */
  readonly errors: readonly string[];
  readonly agentFailures: number;
  readonly historyLost: number;
}

// A full GC without --expose-gc on the command line (tsx does not forward it reliably): the V8 flag can be
// set at run time, and a fresh context then exposes `gc`.
function makeGc(): (() => void) | undefined {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? () => (gc as () => void)() : undefined;
  } catch {
    return undefined;
  }
}

const MiB = 2 ** 20;
function memory(gc: (() => void) | undefined): MemoryFigures {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { heapUsedMiB: m.heapUsed / MiB, rssMiB: m.rss / MiB };
}

export const median = (values: readonly number[]): number => {
  const xs = values.filter((x) => Number.isFinite(x));
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function countRequests(api: ApiServer): RequestCount[] {
  const by = new Map<string, { count: number; failed: number }>();
  for (const r of api.requests.find()) {
    if (r.verb === "discovery" || r.verb === "other") continue;
    const key = `${r.verb}\t${r.resource ?? ""}${r.subresource ? `/${r.subresource}` : ""}`;
    const c = by.get(key) ?? { count: 0, failed: 0 };
    c.count++;
    if (r.status >= 400) c.failed++;
    by.set(key, c);
  }
  return [...by]
    .map(([k, c]) => {
      const [verb = "", resource = ""] = k.split("\t");
      return { verb, resource, ...c };
    })
    .sort((a, b) => b.count - a.count || (a.resource < b.resource ? -1 : 1));
}

const errorText = (e: unknown): string => {
  if (e instanceof Error) return e.message.slice(0, 300);
  if (typeof e === "object" && e !== null) {
    // kfc rejects with { status, statusText, data } rather than an Error.
    const { status, statusText, data } = e as { status?: unknown; statusText?: unknown; data?: unknown };
    if (status !== undefined) return `HTTP ${String(status)} ${String(statusText ?? "")}: ${JSON.stringify(data ?? null)}`.slice(0, 300);
    return JSON.stringify(e).slice(0, 300);
  }
  return String(e).slice(0, 300);
};

async function histogramOf(controller: Controller, name: "implementationDelay" | "reconcileDuration"): Promise<{ count: number; sum: number }> {
  const m = await controller.metrics[name].get();
  let count = 0;
  let sum = 0;
  for (const v of m.values) {
    const metricName = (v as { metricName?: string }).metricName ?? "";
    if (metricName.endsWith("_count")) count = v.value;
    if (metricName.endsWith("_sum")) sum = v.value;
  }
  return { count, sum };
}

interface ClusterNetworkStatusLike {
  phase?: string;
  nodes?: { desired?: number; realized?: number };
}

function clusterNetworkStatus(api: ApiServer): ClusterNetworkStatusLike | undefined {
  return api.store.get(`${ClusterNetworkGVK.group}/${ClusterNetworkGVK.version}`, "ClusterNetwork", "default")?.status as ClusterNetworkStatusLike | undefined;
}

function isReady(api: ApiServer, n: number): boolean {
  const s = clusterNetworkStatus(api);
  return s?.phase === "Ready" && s.nodes?.desired === n && s.nodes.realized === n;
}

function planHashes(api: ApiServer): Map<string, string> {
  const out = new Map<string, string>();
  for (const nn of api.store.list(`${NodeNetworkGVK.group}/${NodeNetworkGVK.version}`, "NodeNetwork")) {
    out.set(nn.metadata.name, String((nn.spec as { planHash?: unknown } | undefined)?.planHash ?? ""));
  }
  return out;
}

/** Bulk setup through the emulator's own writer (same validation, RVs and events as HTTP, without 60,000 round trips). */
async function createCluster(api: ApiServer, w: Workload, progress: (l: string) => void): Promise<void> {
  const inChunks = async <T>(items: readonly T[], fn: (x: T) => Promise<unknown>): Promise<void> => {
    for (let i = 0; i < items.length; i += 500) await Promise.all(items.slice(i, i + 500).map(fn));
  };
  for (const ns of w.namespaces) await api.store.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns.name, labels: { ...ns.labels } } });
  await inChunks(w.nodes, async (n) => {
    const o = nodeObject(n);
    await api.store.create(o);
    await api.store.patchStatus("v1", "Node", n.name, undefined, o.status);
  });
  progress(`${w.nodes.length} nodes`);
  await inChunks(w.pods, async (p) => {
    await api.store.create(podObject(p));
    await api.store.patchStatus("v1", "Pod", p.name, p.namespace, podStatus(p));
  });
  progress(`${w.pods.length} pods`);
  await inChunks(w.policies, (p) => api.store.create(p));
  progress(`${w.policies.length} policies`);
  await api.store.create(w.clusterNetwork);
}

export interface PassRecord {
  /** Start, from the controller's start. */
  readonly atMs: number;
  readonly ms: number;
  readonly publishes: number;
}

/** Records every pass the scheduler runs (it calls `controller.reconcile()` through the instance). */
function recordPasses(c: Controller, t0: number, into: PassRecord[]): void {
  const original = c.reconcile.bind(c);
  c.reconcile = async () => {
    const passes = c.counters.passes;
    const publishes = c.counters.publishes;
    const start = performance.now();
    try {
      await original();
    } finally {
      if (c.counters.passes > passes) into.push({ atMs: start - t0, ms: performance.now() - start, publishes: c.counters.publishes - publishes });
    }
  };
}

interface Harness {
  readonly api: ApiServer;
  readonly w: Workload;
  readonly feed: HistoryFeed;
  readonly clock: NodeNetworkClock;
  readonly agents: SimulatedAgents;
  readonly gc: (() => void) | undefined;
  readonly opts: ControlPlaneBenchOptions;
  readonly timeoutMs: number;
  readonly progress: (l: string) => void;
}

function newController(opts: ControlPlaneBenchOptions): Controller {
  // No periodic relist during the run (it is timed once on its own); everything else is the default.
  return new Controller({ log: createLogger("controller", "warn"), resyncIntervalMs: 3_600_000, minIntervalMs: opts.minIntervalMs ?? 100 });
}

const NN_API = `${NodeNetworkGVK.group}/${NodeNetworkGVK.version}`;

/** (1)-(3) with the first controller; it is stopped (and unreachable) when this returns. */
async function firstController(
  h: Harness,
  errors: string[],
): Promise<Pick<ControlPlaneBenchResult, "initial" | "changes"> & { converged: MemoryFigures; afterChanges: MemoryFigures; ref: WeakRef<Controller> }> {
  const { api, w, feed, clock, agents, gc, opts, timeoutMs, progress } = h;
  const N = w.nodes.length;
  api.requests.clear();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const controller = newController(opts);
  const passes: PassRecord[] = [];
  recordPasses(controller, t0, passes);
  try {
    // (1) initial convergence
    await controller.start();
    await waitFor(`ClusterNetwork Ready with ${N} nodes realized`, () => isReady(api, N), timeoutMs, 5);
    const readyMs = performance.now() - t0;
    const cpuReady = process.cpuUsage(cpu0);
    feed.poll();
    progress(`ready after ${(readyMs / 1000).toFixed(1)} s`);
    const initialRequests = countRequests(api);
    const published = [...clock.published.values()].map((s) => s.at - t0);
    const applied = [...clock.applied.values()].map((s) => s.at - t0);
    await waitFor("the initial plans' delay observation", async () => (await histogramOf(controller, "implementationDelay")).count > 0, timeoutMs, 20);
    const initHist = await histogramOf(controller, "implementationDelay");
    const nns = api.store.list(NN_API, "NodeNetwork");
    const nnSizes = nns.map((o) => JSON.stringify(o).length);
    // The workload's pod addresses assume the controller's IPAM gives each node the block buildWorkload computed.
    const blocks = new Map(w.nodes.map((n) => [n.name, n.block]));
    for (const nn of nns) {
      const got = (nn.spec as { block?: string } | undefined)?.block;
      if (blocks.get(nn.metadata.name) !== got) throw new Error(`NodeNetwork ${nn.metadata.name} has block ${got}, the workload assumed ${blocks.get(nn.metadata.name)}: pod addresses would be borrowed /32s`);
    }
    const initialPasses = passes.filter((p) => p.atMs <= readyMs);
    const initial = {
      readyMs,
      cpuMs: (cpuReady.user + cpuReady.system) / 1000,
      firstPublishMs: Math.min(...published),
      lastPublishMs: Math.max(...published),
      lastAppliedMs: Math.max(...applied),
      desired: clusterNetworkStatus(api)?.nodes?.desired ?? 0,
      realized: clusterNetworkStatus(api)?.nodes?.realized ?? 0,
      publishes: controller.counters.publishes,
      statusWrites: controller.counters.statusWrites,
      passes: initialPasses.map((p) => ({ ...p })),
      histogram: { count: initHist.count, sumMs: initHist.sum * 1000 },
      requests: initialRequests,
      agentReports: agents.reports,
      largestNodeNetworkKiB: Math.max(...nnSizes) / 1024,
      meanNodeNetworkKiB: nnSizes.reduce((a, b) => a + b, 0) / nnSizes.length / 1024,
    };
    const converged = memory(gc);

    // (2) changes
    const quiesce = async () => {
      await controller.scheduler.idle();
      await agents.idle();
      await waitFor("Ready again", () => isReady(api, N), timeoutMs, 5);
      await controller.scheduler.idle();
    };
    const changes: ChangeResult[] = [];
    const measure = (k: ChangeResult["kind"], what: string, write: () => Promise<unknown>): Promise<void> =>
      measureOne(k, what, write).catch((e: unknown) => {
        errors.push(`${k} ${what}: ${errorText(e)}`);
        progress(`${k} ${what} FAILED: ${errorText(e)}`);
      });
    const measureOne = async (k: ChangeResult["kind"], what: string, write: () => Promise<unknown>): Promise<void> => {
      await quiesce();
      feed.poll();
      const hashesBefore = planHashes(api);
      const histBefore = await histogramOf(controller, "implementationDelay");
      const inputBefore = controller.store.planInputVersion;
      const passesBefore = passes.length;
      api.requests.clear();
      const tw = performance.now();
      const cpuW = process.cpuUsage();
      await write();
      const writtenMs = performance.now() - tw;
      // The controller saw the change, then a pass that started after that has finished.
      await waitFor(`the controller to see ${what}`, () => controller.store.planInputVersion > inputBefore, timeoutMs, 1);
      const seenMs = performance.now() - tw;
      const started = controller.counters.passes;
      await waitFor(`a pass after ${what}`, () => controller.counters.passes > started, timeoutMs, 1);
      await controller.scheduler.idle();
      const after = planHashes(api);
      const affected = [...after].filter(([n, hash]) => hashesBefore.get(n) !== hash).map(([n, hash]) => ({ n, hash }));
      const allRealized = await waitFor(
        `the affected nodes to report ${what} applied`,
        () => {
          feed.poll();
          return affected.every(({ n, hash }) => clock.applied.get(n)?.hash === hash);
        },
        timeoutMs,
        2,
      ).then(
        () => true,
        () => false,
      );
      const cpu = process.cpuUsage(cpuW);
      if (affected.length > 0) {
        await waitFor("the delay observation", async () => (await histogramOf(controller, "implementationDelay")).count > histBefore.count, 60_000, 20).catch(() => undefined);
      }
      await quiesce();
      const histAfter = await histogramOf(controller, "implementationDelay");
      const rewritten = api.requests.count({ verb: "patch", resource: "nodenetworks" }) - api.requests.count({ verb: "patch", resource: "nodenetworks", subresource: "status" });
      const pub = affected.map(({ n }) => (clock.published.get(n)?.at ?? Number.NaN) - tw);
      const real = affected.map(({ n }) => (clock.applied.get(n)?.at ?? Number.NaN) - tw);
      const r: ChangeResult = {
        kind: k,
        what,
        writtenMs,
        seenMs,
        affected: affected.length,
        total: after.size,
        rewritten,
        publishedMs: affected.length ? Math.max(...pub) : 0,
        realizedMs: affected.length ? Math.max(...real) : 0,
        cpuMs: (cpu.user + cpu.system) / 1000,
        histogramCount: histAfter.count - histBefore.count,
        histogramSumMs: (histAfter.sum - histBefore.sum) * 1000,
        allRealized,
        passes: passes.slice(passesBefore).map((p) => ({ ...p, atMs: p.atMs - (tw - t0) })),
      };
      changes.push(r);
      progress(`${k} ${what}: published ${r.affected} of ${r.total} (${r.rewritten} rewritten) in ${r.publishedMs.toFixed(0)} ms, realized in ${r.realizedMs.toFixed(0)} ms; passes ${r.passes.map((p) => p.ms.toFixed(0)).join("+")} ms`);
    };
    const nNs = opts.namespaces;
    for (let r = 0; r < opts.repeats; r++) {
      const ns = nsName((r * 3 + 1) % nNs);
      const p: PolicyObject = {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { namespace: ns, name: `bench-add-${r}` },
        spec: {
          podSelector: { matchLabels: { app: `a${(r * 7 + 3) % Math.max(1, Math.min(APPS, Math.floor(opts.pods / nNs)))}` } },
          policyTypes: ["Ingress"],
          ingress: [{ from: [{ podSelector: { matchLabels: { tier: "t1" } } }], ports: [{ protocol: "TCP", port: 9000 + r }] }],
        },
      };
      await measure("policy-add", `${ns}/${p.metadata.name}`, () => K8s(kind.NetworkPolicy).Apply(p as never, { force: true }));
    }
    for (let r = 0; r < opts.repeats; r++) {
      const j = (r * 37 + 5) % opts.policies;
      const p = policyObject(j, nNs, 81 + r, opts.policyMix ?? "wide");
      await measure("policy-modify", `${p.metadata.namespace}/${p.metadata.name} port 80->${81 + r}`, () => K8s(kind.NetworkPolicy).Apply(p as never, { force: true }));
    }
    // Relabel pods some policy selects (app index below policies/namespaces) out of their group.
    const selectedApps = Math.max(1, Math.min(APPS, Math.floor(opts.policies / nNs)));
    const candidates = w.pods.filter((p) => Number((p.labels["app"] ?? "a0").slice(1)) < selectedApps);
    for (let r = 0; r < opts.repeats; r++) {
      const pod = candidates[(r * 101 + 17) % candidates.length]!;
      const from = pod.labels["app"] ?? "a0";
      const to = `a${(Number(from.slice(1)) + APPS / 2) % APPS}`;
      await measure("pod-relabel", `${pod.namespace}/${pod.name} app ${from}->${to}`, () =>
        K8s(kind.Pod, { name: pod.name, namespace: pod.namespace }).Patch([{ op: "replace", path: "/metadata/labels/app", value: to }]),
      );
    }
    await quiesce().catch((e: unknown) => errors.push(`quiet after the changes: ${errorText(e)}`));
    const afterChanges = memory(gc);
    return { initial, changes, converged, afterChanges, ref: new WeakRef(controller) };
  } finally {
    await controller.stop();
  }
}

/** (4): a new controller over the same API; it must find every plan current and rewrite none. Then one timed relist. */
async function restartController(h: Harness, errors: string[]): Promise<Pick<ControlPlaneBenchResult, "restart" | "relistMs">> {
  const { api, w, opts, timeoutMs } = h;
  api.requests.clear();
  const t1 = performance.now();
  const second = newController(opts);
  try {
    await second.start();
    await waitFor("the new controller's first pass", () => second.counters.passes > 0, timeoutMs, 1);
    await second.scheduler.idle();
    const firstPassMs = performance.now() - t1;
    await waitFor("Ready after the restart", () => isReady(api, w.nodes.length), timeoutMs, 5);
    const readyMs = performance.now() - t1;
    await second.scheduler.idle();
    const restart = {
      firstPassMs,
      readyMs,
      nodeNetworkPatches: api.requests.count({ verb: "patch", resource: "nodenetworks" }) - api.requests.count({ verb: "patch", resource: "nodenetworks", subresource: "status" }),
      statusPatches: api.requests.count({ verb: "patch", resource: "clusternetworks", subresource: "status" }),
      passes: second.counters.passes,
      requests: countRequests(api),
    };
    // The periodic repair (every resyncIntervalMs, 30 s by default): one full relist of every watched kind.
    let relistMs: number | undefined;
    try {
      const r0 = performance.now();
      await second.relistAll();
      relistMs = performance.now() - r0;
    } catch (e) {
      errors.push(`periodic relist: ${errorText(e)}`);
    }
    return { restart, relistMs };
  } finally {
    await second.stop();
  }
}

export async function runControlPlaneBench(opts: ControlPlaneBenchOptions): Promise<ControlPlaneBenchResult> {
  const progress = opts.progress ?? (() => undefined);
  const gc = makeGc();
  const w = buildWorkload(opts);
  const api = await startApiServer({
    namespaces: ["default", "kube-system", "kube-public", "kube-node-lease", "switchyard-system"],
    historySize: 200_000,
    crdValidation: true,
  });
  const previousKubeconfig = process.env.KUBECONFIG;
  process.env.KUBECONFIG = api.kubeconfigPath;
  const feed = new HistoryFeed(api);
  const clock = new NodeNetworkClock(feed, () => performance.now());
  const agents = new SimulatedAgents({ feed: opts.agentFeed === "kfc" ? "kfc" : feed, applyDelayMs: opts.applyDelayMs });
  const h: Harness = { api, w, feed, clock, agents, gc, opts, timeoutMs: opts.timeoutMs ?? 15 * 60_000, progress };
  try {
    const s0 = performance.now();
    await createCluster(api, w, progress);
    const setupMs = performance.now() - s0;
    progress(`setup ${(setupMs / 1000).toFixed(1)} s`);
    feed.start();
    await agents.start();
    const before = memory(gc);
    const errors: string[] = [];
    const first = await firstController(h, errors);
    // The first controller is stopped and unreachable now: what the heap gave back is its share.
    api.requests.clear();
    const stopped = memory(gc);
    const released = first.ref.deref() === undefined;
    const { restart, relistMs } = await restartController(h, errors).catch((e: unknown) => {
      errors.push(`restart: ${errorText(e)}`);
      return { restart: undefined, relistMs: undefined };
    });
    return {
      size: { nodes: opts.nodes, pods: opts.pods, policies: opts.policies, namespaces: opts.namespaces, subnets: opts.subnets, policyMix: opts.policyMix ?? "wide" },
      setupMs,
      initial: first.initial,
      changes: first.changes,
      memory: { before, converged: first.converged, afterChanges: first.afterChanges, controllerStopped: stopped, released, gc: gc !== undefined },
      relistMs,
      restart,
      errors,
      agentFailures: agents.failures,
      historyLost: feed.lost,
    };
  } finally {
    agents.stop();
    feed.stop();
    clock.close();
    await api.close();
    if (previousKubeconfig === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = previousKubeconfig;
  }
}

const s = (ms: number): string => (ms / 1000).toFixed(2);
const mib = (x: number): string => x.toFixed(0);

export function formatReport(r: ControlPlaneBenchResult, note: string): string {
  const out: string[] = [];
  const z = r.size;
  out.push(`# control plane: ${z.nodes} nodes / ${z.pods} pods / ${z.policies} policies / ${z.namespaces} namespaces (${note})`);
  out.push(`run at ${new Date().toISOString()}; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(" ")} on ${cpus().length} CPUs (shared machine)`);
  out.push(`setup (objects written straight into the emulator): ${s(r.setupMs)} s`);
  out.push("", "## (1) initial convergence (controller start -> ClusterNetwork Ready, realized == desired)");
  const i = r.initial;
  out.push("| measure | value |", "|---|---|");
  out.push(`| time to Ready | **${s(i.readyMs)} s** |`);
  out.push(`| CPU used by the process until Ready (user+sys) | ${s(i.cpuMs)} s |`);
  out.push(`| first / last NodeNetwork published | ${s(i.firstPublishMs)} s / ${s(i.lastPublishMs)} s |`);
  out.push(`| last agent report | ${s(i.lastAppliedMs)} s |`);
  out.push(`| desired / realized | ${i.desired} / ${i.realized} |`);
  out.push(`| NodeNetworks published / status writes | ${i.publishes} / ${i.statusWrites} |`);
  out.push(`| controller passes until Ready (start at +s: duration s, publishes) | ${i.passes.map((p) => `+${s(p.atMs)}: ${s(p.ms)} (${p.publishes})`).join("; ")} |`);
  out.push(`| delay histogram (initial plans) | ${i.histogram.count} observation(s), ${s(i.histogram.sumMs)} s |`);
  out.push(`| NodeNetwork object size (largest / mean) | ${i.largestNodeNetworkKiB.toFixed(0)} KiB / ${i.meanNodeNetworkKiB.toFixed(0)} KiB |`);
  out.push(`| simulated agent status reports | ${i.agentReports} |`);
  out.push("", "API requests during convergence:", "", "| verb | resource | count |", "|---|---|---|");
  for (const q of i.requests) out.push(`| ${q.verb} | ${q.resource} | ${q.count}${q.failed ? ` (**${q.failed} failed**)` : ""} |`);

  out.push("", "## (2) changes (medians; each kind repeated, different targets)");
  out.push("| change | affected NodeNetworks (published of total) | rewritten | write -> all affected published | write -> all affected realized | histogram observation | process CPU (write -> controller idle, all realized) |", "|---|---|---|---|---|---|---|");
  for (const k of ["policy-add", "policy-modify", "pod-relabel"] as const) {
    const xs = r.changes.filter((c) => c.kind === k);
    if (xs.length === 0) continue;
    out.push(`| ${k} (x${xs.length}) | ${median(xs.map((c) => c.affected))} of ${xs[0]!.total} | ${median(xs.map((c) => c.rewritten))} | ${median(xs.map((c) => c.publishedMs)).toFixed(0)} ms | ${median(xs.map((c) => c.realizedMs)).toFixed(0)} ms | ${median(xs.map((c) => (c.histogramCount ? c.histogramSumMs / c.histogramCount : Number.NaN))).toFixed(0)} ms | ${median(xs.map((c) => c.cpuMs)).toFixed(0)} ms |`);
  }
  out.push("", "Each run (times from the start of the write; passes: start +ms, duration ms, publishes):", "", "| change | write returned | controller saw it | affected | rewritten | published | realized | histogram (n, sum) | passes |", "|---|---|---|---|---|---|---|---|---|");
  for (const c of r.changes) {
    const ps = c.passes.map((p) => `+${p.atMs.toFixed(0)}: ${p.ms.toFixed(0)} (${p.publishes})`).join("; ");
    out.push(`| ${c.kind}: ${c.what} | ${c.writtenMs.toFixed(0)} ms | ${c.seenMs.toFixed(0)} ms | ${c.affected} of ${c.total} | ${c.rewritten} | ${c.publishedMs.toFixed(0)} ms | ${c.realizedMs.toFixed(0)} ms${c.allRealized ? "" : " (NOT all)"} | ${c.histogramCount}, ${c.histogramSumMs.toFixed(0)} ms | ${ps} |`);
  }

  out.push("", `## (3) memory of the whole process (emulator + controller + simulated agents), after a full GC${r.memory.gc ? "" : " (gc unavailable: no GC forced)"}`);
  out.push("| point | heap used | rss |", "|---|---|---|");
  out.push(`| cluster written, before the controller | ${mib(r.memory.before.heapUsedMiB)} MiB | ${mib(r.memory.before.rssMiB)} MiB |`);
  out.push(`| converged | ${mib(r.memory.converged.heapUsedMiB)} MiB | ${mib(r.memory.converged.rssMiB)} MiB |`);
  out.push(`| after the changes | ${mib(r.memory.afterChanges.heapUsedMiB)} MiB | ${mib(r.memory.afterChanges.rssMiB)} MiB |`);
  out.push(`| first controller stopped and dropped | ${mib(r.memory.controllerStopped.heapUsedMiB)} MiB | ${mib(r.memory.controllerStopped.rssMiB)} MiB |`);
  out.push(`| **controller's heap** (after the changes - stopped${r.memory.released ? ", the instance was collected" : "; NOT collected: not a valid estimate"}) | **${mib(r.memory.afterChanges.heapUsedMiB - r.memory.controllerStopped.heapUsedMiB)} MiB** | |`);
  out.push(`| growth while converging (converged - before: controller + the emulator's new NodeNetworks and history) | ${mib(r.memory.converged.heapUsedMiB - r.memory.before.heapUsedMiB)} MiB | ${mib(r.memory.converged.rssMiB - r.memory.before.rssMiB)} MiB |`);

  out.push("", "## (4) restart (controller stopped, a new one started)");
  const rs = r.restart;
  if (rs) {
    out.push("| measure | value |", "|---|---|");
    out.push(`| NodeNetwork spec writes (PATCH nodenetworks) | **${rs.nodeNetworkPatches}** |`);
    out.push(`| ClusterNetwork status writes | ${rs.statusPatches} |`);
    out.push(`| time to its first full pass / to Ready | ${s(rs.firstPassMs)} s / ${s(rs.readyMs)} s |`);
    out.push(`| passes | ${rs.passes} |`);
    out.push(`| requests | ${rs.requests.map((q) => `${q.verb} ${q.resource} ${q.count}${q.failed ? ` (${q.failed} failed)` : ""}`).join(", ")} |`);
  } else out.push("**failed** (see below)");
  out.push("", `periodic relist of every watched kind (the 30 s repair): ${r.relistMs === undefined ? "**failed**" : `${s(r.relistMs)} s`}; agent report failures: ${r.agentFailures}; history events lost: ${r.historyLost}`);
  if (r.errors.length > 0) out.push("", "Failures:", "", ...r.errors.map((e) => `- ${e}`));
  return out.join("\n");
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      nodes: { type: "string", default: "1000" },
      pods: { type: "string", default: "30000" },
      policies: { type: "string", default: "3000" },
      namespaces: { type: "string", default: "100" },
      subnets: { type: "string", default: "4" },
      repeats: { type: "string", default: "3" },
      "apply-delay-ms": { type: "string", default: "0" },
      "agent-feed": { type: "string", default: "history" },
      "min-interval-ms": { type: "string", default: "100" },
      "policy-mix": { type: "string", default: "wide" },
      "timeout-min": { type: "string", default: "10" },
      quick: { type: "boolean", default: false },
    },
  });
  const quick = a.quick;
  const feed = a["agent-feed"];
  if (feed !== "kfc" && feed !== "history") throw new Error("--agent-feed is kfc or history");
  const mix = a["policy-mix"];
  if (mix !== "wide" && mix !== "narrow") throw new Error("--policy-mix is wide or narrow");
  const opts: ControlPlaneBenchOptions = {
    nodes: quick ? 20 : Number(a.nodes),
    pods: quick ? 200 : Number(a.pods),
    policies: quick ? 20 : Number(a.policies),
    namespaces: quick ? 10 : Number(a.namespaces),
    subnets: Number(a.subnets),
    repeats: Number(a.repeats),
    applyDelayMs: Number(a["apply-delay-ms"]),
    agentFeed: feed,
    policyMix: mix,
    timeoutMs: Number(a["timeout-min"]) * 60_000,
    minIntervalMs: Number(a["min-interval-ms"]),
    progress: (l) => process.stderr.write(`[bench] ${l}\n`),
  };
  const r = await runControlPlaneBench(opts);
  console.log(formatReport(r, `policy mix ${mix}; agents: ${opts.agentFeed} feed, apply delay ${opts.applyDelayMs} ms; Node ${process.version}`));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
