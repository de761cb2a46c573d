// `switchyard demo`: the main job on the embedded default. Each stage is real work on this machine:
// 1. every shipped sample validated with the admission rules;
// 2. a 4-node, 2-subnet lab cluster (API server emulator, controller, one agent per node, the lab kubelet)
//    in VXLAN mode with 2 pods per node, converging while we watch;
// 3. three NetworkPolicies applied through the API; the reachability matrix from real packets, every
//    denied cell naming the policies that deny it (the reference evaluator), and every cell cross-checked
//    against the probes;
// 4. the ClusterNetwork status as kubectl shows it;
// 5. a canary migration (a hook for the migration driver).
// Everything is torn down at the end, on failure, and on Ctrl-C (the signal handler awaits close()).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { LabCluster, type CellExpectation, type LabPodTemplate } from "../../lab/cluster/lab-cluster";
import { runValidate } from "./validate";
import { migrateLab } from "../../lab/migration";

export type DemoOptions = { root: string };

const DEMO_PREFIX = "sydemo-";
const PORT = 8080;
const http = [{ port: PORT, protocol: "TCP" as const, name: "http" }];

/** Stage 1: every shipped sample ClusterNetwork validated with the admission rules. */
function demoValidateSamples(root: string): number {
  const dir = join(root, "samples");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();
  console.log(`\n== 1. Validating the ${files.length} shipped sample ClusterNetworks (the admission webhook's rules)`);
  let bad = 0;
  for (const f of files) {
    const lines: string[] = [];
    const code = runValidate({ file: join(dir, f) }, { out: (l) => lines.push(l), err: () => undefined });
    console.log(`   ${code === 0 ? "valid  " : "INVALID"} samples/${f}`);
    for (const l of lines) console.log(`          ${l}`);
    if (code !== 0) bad++;
  }
  return bad;
}

/** Two pods per node: the shop application and some neighbours in another namespace. */
export const DEMO_PODS: readonly LabPodTemplate[] = [
  { namespace: "shop", name: "web", node: "n1", labels: { app: "web", tier: "frontend" }, ports: http },
  { namespace: "other", name: "client", node: "n1", labels: { app: "client" }, ports: http },
  { namespace: "shop", name: "api", node: "n2", labels: { app: "api", tier: "backend" }, ports: http },
  { namespace: "other", name: "batch", node: "n2", labels: { app: "batch" }, ports: http },
  { namespace: "shop", name: "db", node: "n3", labels: { app: "db", tier: "data" }, ports: http },
  { namespace: "other", name: "monitor", node: "n3", labels: { app: "monitor" }, ports: http },
  { namespace: "shop", name: "web-2", node: "n4", labels: { app: "web", tier: "frontend" }, ports: http },
  { namespace: "other", name: "scanner", node: "n4", labels: { app: "scanner" }, ports: http },
];

export const DEMO_POLICIES: readonly { summary: string; object: Record<string, unknown> }[] = [
  {
    summary: "shop/default-deny-ingress: every pod in shop accepts nothing unless another policy allows it",
    object: { metadata: { namespace: "shop", name: "default-deny-ingress" }, spec: { podSelector: {}, policyTypes: ["Ingress"] } },
  },
  {
    summary: 'shop/allow-web-to-api: api accepts web on its named port "http"',
    object: {
      metadata: { namespace: "shop", name: "allow-web-to-api" },
      spec: { podSelector: { matchLabels: { app: "api" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: "http", protocol: "TCP" }] }] },
    },
  },
  {
    summary: `shop/allow-api-to-db: db accepts api on ${PORT}/TCP`,
    object: {
      metadata: { namespace: "shop", name: "allow-api-to-db" },
      spec: { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "api" } } }], ports: [{ port: PORT, protocol: "TCP" }] }] },
    },
  },
];

/** Stage 5: a canary migration between modes on the running lab, under continuous traffic. */
export async function demoMigration(cluster: LabCluster): Promise<number> {
  console.log("\n== 5. Canary migration VXLAN -> BGP (top-of-rack peers), canary first, health gates, under traffic");
  const pods = cluster.podsSorted();
  const byNode = (n: string) => pods.filter((p) => p.node === n);
  const nodes = cluster.lab.nodes.map((n) => n.name);
  // Ping streams between pods on different nodes (across the router too), one long-lived TCP connection,
  // and a flow the policies deny, probed all along.
  const pairs = nodes.map((n, i) => [byNode(n)[0]!, byNode(nodes[(i + 1) % nodes.length]!)[0]!] as const);
  const expected = await cluster.expected(PORT, "TCP");
  const deniedCell = expected.flatMap((row, i) => row.map((c, j) => ({ c, i, j }))).find((x) => !x.c.connects && x.i !== x.j);
  const deniedFlow = deniedCell ? [{ from: pods[deniedCell.i]!, to: pods[deniedCell.j]!, port: PORT, protocol: "TCP" as const }] : [];
  const run = await migrateLab(cluster, "bgp", {
    rollout: { canary: { nodes: 1 }, batchSize: 1, healthGate: { successfulRounds: 2, probeInterval: "1s", timeout: "60s" } },
    traffic: { pingPairs: pairs, tcpPairs: [[pairs[0]![0], pairs[0]![1]]], tcpPort: 7007, denied: deniedFlow },
    timeoutMs: 120_000,
    progress: (l) => console.log(`   ${l}`),
  });
  const t = run.traffic!;
  const lost = t.pings.reduce((a, p) => a + p.lost, 0);
  const sent = t.pings.reduce((a, p) => a + p.transmitted, 0);
  console.log(`   pings: ${sent} sent on ${t.pings.length} pairs at ${Math.min(...t.pings.map((p) => p.ratePerSecond))}-${Math.max(...t.pings.map((p) => p.ratePerSecond))}/s, ${lost} lost; longest gap between replies ${Math.max(...t.pings.map((p) => p.maxGapMs))} ms`);
  for (const c of t.tcp) console.log(`   TCP ${c.from} -> ${c.to}: ${c.alive ? "alive" : "BROKEN"}, ${c.echoed} echoes, longest stall ${c.maxGapMs} ms${c.error ? ` (${c.error})` : ""}`);
  for (const d of t.denied) console.log(`   denied flow ${d.from} -> ${d.to}:${PORT}: ${d.probes} probes during the migration, ${d.leaked} got through`);
  const phase = run.final?.migration?.phase;
  console.log(`   migration ${phase ?? "did not finish"} in ${(run.ms / 1000).toFixed(1)} s; active mode ${run.final?.activeMode ?? "?"}`);
  const ok = phase === "Completed" && lost === 0 && t.tcp.every((c) => c.alive) && t.denied.every((d) => d.leaked === 0);
  return ok ? 0 : 1;
}

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWYZ";

/** Stage 3's matrix: '.' connects, a letter = denied, the letter naming the policies that deny it. */
function renderPolicyMatrix(names: readonly string[], expected: readonly (readonly CellExpectation[])[], probed: readonly (readonly boolean[])[]): { lines: string[]; disagreements: string[] } {
  const legend = new Map<string, { letter: string; example: string; cells: number }>();
  const disagreements: string[] = [];
  const rows = expected.map((row, i) =>
    row
      .map((cell, j) => {
        const real = probed[i]?.[j] ?? false;
        if (real !== cell.connects) disagreements.push(`${names[i]} -> ${names[j]}: probe ${real ? "connected" : "blocked"}, evaluator: ${cell.reason}`);
        if (cell.connects) return real ? "." : "!";
        const key = cell.deniedBy.join(" + ") || cell.reason;
        let entry = legend.get(key);
        if (entry === undefined) {
          entry = { letter: LETTERS[legend.size % LETTERS.length] ?? "?", example: `${names[i]} -> ${names[j]}: ${cell.verdict.ingress.allowed ? cell.verdict.egress.reason : cell.verdict.ingress.reason}`, cells: 0 };
          legend.set(key, entry);
        }
        entry.cells++;
        return real ? "!" : entry.letter;
      })
      .join(""),
  );
  const width = Math.max(...names.map((n) => n.length));
  const lines = [
    `   ${" ".repeat(width)}  ${names.map((_, i) => String(i % 10)).join("")}`,
    ...rows.map((r, i) => `   ${(names[i] ?? "").padEnd(width)}  ${r}   ${i % 10} = ${names[i]}`),
    "",
    "   '.' connected; a letter: denied, by the policies below ('!' would mark a probe that disagrees):",
    ...[...legend.entries()].flatMap(([policies, e]) => [`   ${e.letter}  ${e.cells} cells, denied by ${policies}`, `        e.g. ${e.example}`]),
  ];
  return { lines, disagreements };
}

function kubectlLikeStatus(cn: Awaited<ReturnType<LabCluster["clusterNetwork"]>>): string[] {
  const st = cn.status as (typeof cn.status & { activeMode?: string; ipam?: { allocatedBlocks?: number; freeBlocks?: number } }) | undefined;
  const cols = [
    ["NAME", "MODE", "ACTIVE", "PHASE", "REALIZED", "DESIRED"],
    ["default", String(cn.spec?.["mode"] ?? "-"), st?.activeMode ?? "-", st?.phase ?? "-", String(st?.nodes?.realized ?? "-"), String(st?.nodes?.desired ?? "-")],
  ];
  const widths = cols[0]!.map((_, i) => Math.max(...cols.map((r) => (r[i] ?? "").length)));
  return [
    ...cols.map((r) => `   ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("   ")}`),
    ...(st?.ipam ? [`   pod blocks: ${st.ipam.allocatedBlocks ?? 0} allocated, ${st.ipam.freeBlocks ?? 0} free`] : []),
    "   conditions:",
    ...(st?.conditions ?? []).map((c) => `     ${c.type.padEnd(17)} ${c.status.padEnd(6)} ${(c.reason ?? "").padEnd(17)} ${c.message ?? ""}`),
  ];
}

async function demoCluster(cluster: LabCluster): Promise<number> {
  const t0 = Date.now();
  const secs = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  console.log("\n== 2. A 4-node cluster on 2 subnets, on this machine (VXLAN; API server emulator, controller, 4 agents)");
  await cluster.start();
  console.log(`   ${secs()} in all. Nodes and pods (pod addresses from each node's block):`);
  const nns = await cluster.nodeNetworks();
  for (const n of cluster.lab.nodes) {
    const nn = nns.find((x) => x.metadata?.name === n.name);
    const pods = cluster.podsSorted().filter((p) => p.node === n.name);
    console.log(`     ${n.name} ${n.ip.padEnd(13)} subnet ${n.subnet === 0 ? "a" : "b"}  block ${nn?.spec?.block ?? "-"}  mtu ${nn?.spec?.mtu ?? "-"}  ${pods.map((p) => `${p.namespace}/${p.name}=${p.ip}`).join("  ")}`);
  }

  console.log("\n== 3. NetworkPolicies, applied through the API");
  for (const p of DEMO_POLICIES) {
    const r = await cluster.applyPolicy(p.object);
    console.log(`   ${r.ok ? "applied" : "REFUSED"} ${p.summary}${r.ok ? "" : `: ${r.message}`}`);
    if (!r.ok) return 1;
  }
  const t1 = Date.now();
  const ready = await cluster.waitForReady(30_000);
  console.log(`   every agent applied its new plan in ${Date.now() - t1} ms (${ready.realized}/${ready.desired} nodes)`);

  const expected = await cluster.expected(PORT, "TCP");
  const want = expected.map((row) => row.map((c) => c.connects));
  const m = await cluster.matrix(PORT, "TCP", { expected: want, retries: 3, retryIntervalMs: 200 });
  const cells = m.result.matrix.flat().length;
  console.log(`\n   Reachability on TCP/${PORT}, from row to column: ${cells} real probes in ${m.result.ms} ms, each compared with the reference evaluator`);
  const { lines, disagreements } = renderPolicyMatrix(m.names, expected, m.result.matrix);
  for (const l of lines) console.log(l);
  const connected = m.result.matrix.flat().filter((c) => c).length;
  if (disagreements.length === 0) {
    console.log(`   cross-check: all ${cells} cells agree with the evaluator (${connected} connected, ${cells - connected} denied)`);
  } else {
    console.log(`   cross-check: ${disagreements.length} of ${cells} cells DISAGREE with the evaluator:`);
    for (const d of disagreements) console.log(`     ${d}`);
  }

  console.log("\n== 4. ClusterNetwork status (kubectl get clusternetworks)");
  for (const l of kubectlLikeStatus(await cluster.clusterNetwork())) console.log(l);

  const migration = await demoMigration(cluster);
  return disagreements.length === 0 && migration === 0 ? 0 : 1;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const started = Date.now();
  console.log("Switchyard demo");
  const bad = demoValidateSamples(opts.root);
  if (bad > 0) return 1;

  const cluster = new LabCluster({
    prefix: DEMO_PREFIX,
    nodes: 4,
    subnets: 2,
    mode: "vxlan",
    // The router also runs BIRD as a top-of-rack peer, ready for stage 5's move to BGP.
    torRouter: true,
    pods: DEMO_PODS,
    progress: (line) => console.log(`   ${line}`),
  });
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = true;
    console.log(`\n${sig}: tearing the lab down...`);
    void cluster.close().then((r) => {
      console.log(`removed ${r.destroyed.namespaces.length} namespaces`);
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await demoCluster(cluster);
  } catch (e) {
    if (!interrupted) console.error(`\ndemo failed: ${(e as Error).message}`);
    code = 1;
  } finally {
    const t = Date.now();
    const r = await cluster.close();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    console.log(`\n== Torn down in ${Date.now() - t} ms: ${r.destroyed.namespaces.length} namespaces removed${r.errors.length > 0 ? `; problems: ${r.errors.join("; ")}` : ""}`);
  }
  console.log(`Demo ${code === 0 ? "finished" : "FAILED"} in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  return code;
}
