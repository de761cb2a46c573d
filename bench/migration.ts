// bench/migration: a mode migration of a simulated 1,000-node cluster with the default strategy (canary 1
// node, batches of 25%, 3 healthy rounds every 2 s per gate), through the real controller and the lab's
// API server; the agents are simulated (no kernel): they report every published plan applied, their
// capabilities, and healthy probe rounds while a plan asks for them, as status writes that the API server
// commits and sends to the controller's watch like any other. They write in-process (the API server's
// own write path, without HTTP): 1,000 real agents run on 1,000 machines, and one process playing them
// over HTTP would spend this machine's CPU on parsing their 0.4 MiB responses instead of on the
// controller and the API server.
// Prints total time, time per batch, and API writes by kind. The lab's lost-packet counts per scenario
// come from test/migration-lab.test.ts and the demo (docs/benchmarks.md).
// Run: `npx tsx bench/migration.ts [--nodes 1000] [--from vxlan --to host-gw]`.
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import type { Mode } from "../src/api/cluster-network";
import { Controller } from "../src/controller/controller";
import { ClusterNetworkGVK } from "../src/kube/kinds";
import { createLogger } from "../src/base/log";
import { startApiServer, type ApiServer } from "../lab/apiserver";

const { values: args } = isMainThread
  ? parseArgs({ options: { nodes: { type: "string", default: "1000" }, from: { type: "string", default: "vxlan" }, to: { type: "string", default: "host-gw" } } })
  : { values: workerData as { nodes: string; from: string; to: string } };
const N = Number(args.nodes);
const FROM = args.from as Mode;
const TO = args.to as Mode;

type NN = { metadata?: { name?: string; generation?: number }; spec?: { planHash?: string; health?: { epoch: number; intervalMs: number; rounds?: number } }; status?: { appliedHash?: string; health?: { epoch: number } } };

/** One loop that plays every agent: applies (reports) each new plan, and runs probe rounds during gates. */
class SimulatedAgents {
  private timer: NodeJS.Timeout | undefined;
  private readonly rounds = new Map<string, { epoch: number; ok: number; next: number }>();
  writes = 0;
  constructor(private readonly api: ApiServer) {}
  start(): void {
    const tick = async () => {
      const now = Date.now();
      const nns = this.api.store.list("switchyard.dev/v1alpha1", "NodeNetwork") as NN[];
      const patches: Promise<unknown>[] = [];
      for (const nn of nns) {
        const name = nn.metadata?.name ?? "";
        const status: Record<string, unknown> = {};
        if (nn.spec?.planHash && nn.status?.appliedHash !== nn.spec.planHash) {
          Object.assign(status, { appliedHash: nn.spec.planHash, observedGeneration: nn.metadata?.generation ?? 0, capabilities: { vxlan: true, ipip: true, bird: true, nftables: true, iptables: true, ipset: true, wireguard: false } });
        }
        const h = nn.spec?.health;
        if (h) {
          const r = this.rounds.get(name);
          if (!r || r.epoch !== h.epoch) this.rounds.set(name, { epoch: h.epoch, ok: 0, next: now });
          const cur = this.rounds.get(name)!;
          if (now >= cur.next) {
            cur.ok++;
            cur.next = now + h.intervalMs;
            // As real agents do: one write when the gate has the rounds it needs (rounds never fail here).
            if (cur.ok === (h.rounds ?? 1)) status["health"] = { epoch: h.epoch, okRounds: cur.ok, failedRounds: 0, at: new Date(now).toISOString() };
          }
        }
        if (Object.keys(status).length > 0) {
          this.writes++;
          patches.push(this.api.store.patchStatus("switchyard.dev/v1alpha1", "NodeNetwork", name, undefined, status as never, "switchyard-agent").catch(() => undefined));
          if (patches.length >= 64) await Promise.all(patches.splice(0));
        }
      }
      await Promise.all(patches);
      this.timer = setTimeout(() => void tick(), 50);
    };
    this.timer = setTimeout(() => void tick(), 50);
  }
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

/**
 * The worker thread: the API server and the simulated agents (the cluster's side), so that the controller
 * on the main thread has a core of its own, as it would in a cluster. Answers "writes" and "stop".
 */
async function clusterSide(): Promise<void> {
  const api = await startApiServer({ namespaces: ["default", "switchyard-system"], historySize: 500_000 });
  const sim = new SimulatedAgents(api);
  parentPort!.on("message", (m: string) => {
    if (m === "start-agents") sim.start();
    else if (m === "writes") parentPort!.postMessage({ writes: sim.writes });
    else if (m === "stop") {
      sim.stop();
      void api.close().then(() => parentPort!.postMessage({ stopped: true }));
    }
  });
  parentPort!.postMessage({ kubeconfigPath: api.kubeconfigPath });
}

/** Sends a message to the cluster side and waits for the reply that has `key`. */
function ask<T>(worker: Worker, message: string, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (key in m) {
        worker.off("message", on);
        resolve(m[key] as T);
      }
    };
    worker.on("message", on);
    worker.postMessage(message);
  });
}

async function main(): Promise<void> {
  console.log(`# bench/migration (${new Date().toISOString()}, ${process.version}): ${N} simulated nodes, ${FROM} -> ${TO}, default strategy`);
  // The worker runs this same file; it needs tsx's loader registered in its own thread first.
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const boot = `import { register } from ${JSON.stringify(tsxApi)}; register(); await import(${JSON.stringify(import.meta.url)});`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), { workerData: args });
  const kubeconfigPath = await new Promise<string>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("message", (m: { kubeconfigPath: string }) => resolve(m.kubeconfigPath));
  });
  process.env["KUBECONFIG"] = kubeconfigPath;
  const sim = { start: () => worker.postMessage("start-agents"), writes: () => ask<number>(worker, "writes", "writes") };
  const controller = new Controller({ log: createLogger("controller", "warn"), leaderElection: false, minIntervalMs: 100 });
  try {
    for (let i = 0; i < N; i++) {
      const name = `n${String(i).padStart(4, "0")}`;
      const ip = `172.16.${Math.floor(i / 250)}.${(i % 250) + 1}`;
      await K8s(kind.Node).Apply({ metadata: { name, annotations: { "switchyard.dev/underlay-cidr": "172.16.0.0/16" } } } as never, { force: true });
      await K8s(kind.Node).PatchStatus({ metadata: { name }, status: { addresses: [{ type: "InternalIP", address: ip }] } } as never);
    }
    await K8s(GenericKind, { kindOverride: ClusterNetworkGVK }).Apply({ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "default" }, spec: { podCIDRs: ["10.0.0.0/8"], blockSize: 24, mode: FROM } } as never, { force: true });
    sim.start();
    const t0 = Date.now();
    await controller.start();
    const cnApi = K8s(GenericKind, { kindOverride: ClusterNetworkGVK });
    const waitFor = async (pred: (st: Record<string, unknown> & { migration?: Record<string, unknown> }) => boolean, what: string, onChange?: (st: Record<string, unknown>) => void) => {
      let last = "";
      for (;;) {
        const st = ((await cnApi.Get("default")) as { status?: Record<string, unknown> & { migration?: Record<string, unknown> } }).status ?? {};
        const key = `${st["phase"]}/${st.migration?.["phase"]}/${st.migration?.["migratedBatches"]}/${st.migration?.["stage"]}`;
        if (key !== last) {
          last = key;
          onChange?.(st);
        }
        if (pred(st)) return st;
        if (Date.now() - t0 > 30 * 60_000) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitFor((st) => st["phase"] === "Ready", "initial Ready");
    console.log(`initial convergence: ${N} nodes Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Counted by the writers themselves (the API server's request log is bounded).
    const writes = async () => {
      const byVerb = new Map(((await controller.metrics.writes.get()).values).map((v) => [`${v.labels["kind"]}/${v.labels["verb"]}`, v.value]));
      return { apply: byVerb.get("NodeNetwork/apply") ?? 0, patch: byVerb.get("NodeNetwork/patch") ?? 0, cnStatus: controller.counters.statusWrites, agents: await sim.writes() };
    };
    const writesBefore = await writes();
    const m0 = Date.now();
    await K8s(GenericKind, { kindOverride: ClusterNetworkGVK, name: "default" }).Patch([{ op: "replace", path: "/spec/mode", value: TO }] as never);
    const steps: { at: number; label: string }[] = [];
    const final = await waitFor(
      (st) => ["Completed", "RolledBack", "Blocked", "Failed"].includes(String(st.migration?.["phase"])) && st["phase"] === "Ready",
      "migration end",
      (st) => {
        const m = st["migration"] as Record<string, unknown> | undefined;
        const label = `${m?.["phase"] ?? "-"}${m?.["stage"] ? `/${m["stage"]}` : ""} batch ${m?.["migratedBatches"] ?? 0}/${(m?.["batches"] as unknown[] | undefined)?.length ?? 0}`;
        steps.push({ at: Date.now() - m0, label });
        console.log(`  ${((Date.now() - m0) / 1000).toFixed(1).padStart(7)} s  ${label}  ${String(m?.["message"] ?? "").slice(0, 160)}`);
      },
    );
    const total = Date.now() - m0;
    const m = final["migration"] as { phase: string; batches: string[][] };
    console.log(`\n| step (first seen) | at | nodes in batch |`);
    console.log(`|---|---|---|`);
    for (const s of steps) {
      const b = /batch (\d+)\//.exec(s.label);
      const idx = b ? Number(b[1]) - 1 : -1;
      console.log(`| ${s.label} | ${(s.at / 1000).toFixed(1)} s | ${idx >= 0 && s.label.startsWith("Canary") || s.label.startsWith("Rolling") ? (m.batches[idx]?.length ?? "") : ""} |`);
    }
    const batchStarts = steps.filter((s) => s.label.startsWith("Canary") || s.label.startsWith("Rolling"));
    const perBatch = batchStarts.slice(1).map((s, i) => s.at - batchStarts[i]!.at);
    const after = await writes();
    console.log(`\n| figure | value |`);
    console.log(`|---|---|`);
    console.log(`| result | ${m.phase} (${m.batches.length} batches: ${m.batches.map((b) => b.length).join(", ")} nodes) |`);
    console.log(`| total migration time | **${(total / 1000).toFixed(1)} s** |`);
    console.log(`| time per batch (switch + gate), median | ${perBatch.length ? (perBatch.sort((a, b) => a - b)[Math.floor(perBatch.length / 2)]! / 1000).toFixed(1) : "-"} s |`);
    console.log(`| NodeNetwork plan writes (controller): whole plans by server-side apply | ${after.apply - writesBefore.apply} |`);
    console.log(`| NodeNetwork plan writes (controller): probe epoch only, by JSON patch | ${after.patch - writesBefore.patch} |`);
    console.log(`| NodeNetwork status writes (simulated agents: applied + probe rounds) | ${after.agents - writesBefore.agents} |`);
    console.log(`| ClusterNetwork status writes (controller) | ${after.cnStatus - writesBefore.cnStatus} |`);
    console.log(`| controller heap after | ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB (main thread: the controller; the API server and the simulated agents run in a worker thread) |`);
  } finally {
    await controller.stop();
    await ask(worker, "stop", "stopped");
    await worker.terminate();
  }
}

if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  void clusterSide();
}
// Ctrl-C (or `timeout -s INT`) ends the run through a normal exit, so --cpu-prof profiles are written.
if (isMainThread) process.once("SIGINT", () => process.exit(130));
