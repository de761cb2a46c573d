// bench/migration: a mode migration of a simulated 1,000-node cluster with the default strategy (canary 1
// node, batches of 25%, 3 healthy rounds every 2 s per gate), through the real controller and the lab's
// API server; the agents are simulated (no kernel): they report every published plan applied, their
// capabilities, and healthy probe rounds while a plan asks for them, through the API as real agents do.
// Prints total time, time per batch, and API writes by kind. The lab's lost-packet counts per scenario
// come from test/migration-lab.test.ts and the demo (docs/benchmarks.md).
// Run: `npx tsx bench/migration.ts [--nodes 1000] [--from vxlan --to host-gw]`.
import { parseArgs } from "node:util";
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import type { Mode } from "../src/api/cluster-network";
import { Controller } from "../src/controller/controller";
import { ClusterNetworkGVK, NodeNetworkGVK } from "../src/controller/kinds";
import { createLogger } from "../src/controller/log";
import { startApiServer, type ApiServer } from "../src/lab/apiserver";

const { values: args } = parseArgs({ options: { nodes: { type: "string", default: "1000" }, from: { type: "string", default: "vxlan" }, to: { type: "string", default: "host-gw" } } });
const N = Number(args.nodes);
const FROM = args.from as Mode;
const TO = args.to as Mode;

type NN = { metadata?: { name?: string; generation?: number }; spec?: { planHash?: string; health?: { epoch: number; intervalMs: number } }; status?: { appliedHash?: string; health?: { epoch: number } } };

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
            status["health"] = { epoch: h.epoch, okRounds: cur.ok, failedRounds: 0, at: new Date(now).toISOString() };
          }
        }
        if (Object.keys(status).length > 0) {
          this.writes++;
          patches.push(K8s(GenericKind, { kindOverride: NodeNetworkGVK }).PatchStatus({ metadata: { name }, status } as never).catch(() => undefined));
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

async function main(): Promise<void> {
  console.log(`# bench/migration (${new Date().toISOString()}, ${process.version}): ${N} simulated nodes, ${FROM} -> ${TO}, default strategy`);
  const api = await startApiServer({ namespaces: ["default", "switchyard-system"], historySize: 500_000 });
  process.env["KUBECONFIG"] = api.kubeconfigPath;
  const sim = new SimulatedAgents(api);
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
    const writesBefore = { nn: api.requests.count({ verb: "patch", resource: "nodenetworks" }), nnStatus: api.requests.count({ verb: "patch", resource: "nodenetworks", subresource: "status" }), cnStatus: api.requests.count({ verb: "patch", resource: "clusternetworks", subresource: "status" }) };
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
    const after = { nn: api.requests.count({ verb: "patch", resource: "nodenetworks" }), nnStatus: api.requests.count({ verb: "patch", resource: "nodenetworks", subresource: "status" }), cnStatus: api.requests.count({ verb: "patch", resource: "clusternetworks", subresource: "status" }) };
    console.log(`\n| figure | value |`);
    console.log(`|---|---|`);
    console.log(`| result | ${m.phase} (${m.batches.length} batches: ${m.batches.map((b) => b.length).join(", ")} nodes) |`);
    console.log(`| total migration time | **${(total / 1000).toFixed(1)} s** |`);
    console.log(`| time per batch (switch + gate), median | ${perBatch.length ? (perBatch.sort((a, b) => a - b)[Math.floor(perBatch.length / 2)]! / 1000).toFixed(1) : "-"} s |`);
    console.log(`| NodeNetwork plan writes (controller, SSA) | ${after.nn - after.nnStatus - (writesBefore.nn - writesBefore.nnStatus)} |`);
    console.log(`| NodeNetwork status writes (simulated agents: applied + probe rounds) | ${after.nnStatus - writesBefore.nnStatus} |`);
    console.log(`| ClusterNetwork status writes (controller) | ${after.cnStatus - writesBefore.cnStatus} |`);
    console.log(`| controller heap after | ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB (whole process: emulator + controller + simulated agents) |`);
  } finally {
    sim.stop();
    await controller.stop();
    await api.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
