// The controller end to end (issue "The controller end to end"): the real controller and agents, through
// the lab's API server, realize NetworkPolicy changes in the kernel (the delay is measured and printed);
// and the faults: every watch stream dropped plus repeated 410s lose no update, a restarted controller
// rewrites no plan whose hash is unchanged, a restarted agent loses no packet of an allowed flow and lets
// no denied flow through while it is down. Lab prefix: syce-.
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LabCluster, type ControlPlaneKind } from "../../lab/cluster/lab-cluster";
import { LAB_CONTROL_PLANE } from "../support/control-plane";
import { probe } from "../../lab/pods";
import { startTraffic } from "../../lab/traffic";
import type { LabPod } from "../../lab/topology";

const np = (ns: string, name: string, spec: Record<string, unknown>) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace: ns, name }, spec });

async function untilReach(cluster: LabCluster, from: LabPod, to: LabPod, want: boolean, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if ((await probe(cluster.lab, from, to.ip, 80, "TCP", 300)).ok === want) return Date.now() - t0;
  }
  throw new Error(`${from.namespace}/${from.name} -> ${to.namespace}/${to.name} never became ${want ? "allowed" : "denied"}`);
}

async function matrixAgreesWithEvaluator(cluster: LabCluster): Promise<string[]> {
  const expected = await cluster.expected(80, "TCP");
  const m = await cluster.matrix(80, "TCP", { expected: expected.map((r) => r.map((c) => c.connects)), retries: 3, retryIntervalMs: 200 });
  return m.result.mismatches.map((x) => `${m.names[x.from]} -> ${m.names[x.to]}`);
}

// On the real control plane (CI) and on the emulator, whose watch-fault injection and request counting
// have no counterpart on a real server: those two tests run on it only.
const CONTROL_PLANES: readonly ControlPlaneKind[] = LAB_CONTROL_PLANE === "kubernetes" ? ["kubernetes", "embedded"] : ["embedded"];

describe.each(CONTROL_PLANES)("controller end to end (%s control plane)", (controlPlane) => {
  let cluster: LabCluster;
  let pods: LabPod[];
  const byName = (n: string) => pods.find((p) => p.name === n)!;
  const onEmulator = controlPlane === "embedded" ? it : it.skip;
  const onRealServer = controlPlane === "kubernetes" ? it : it.skip;

  beforeAll(async () => {
    cluster = new LabCluster({ controlPlane, prefix: "syce-", nodes: 4, subnets: 2, mode: "vxlan", leaseDurationSec: 3 });
    await cluster.start();
    pods = cluster.podsSorted();
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it("applies policies through the API; Ready; the kernel matches the reference evaluator", async () => {
    // y pods admit only x pods labelled role=frontend.
    expect((await cluster.applyPolicy(np("y", "only-frontend", { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "frontend" } } }] }] }))).ok).toBe(true);
    const r = await cluster.waitForReady(30_000);
    expect(r.realized).toBe(4);
    expect(await matrixAgreesWithEvaluator(cluster)).toEqual([]);
  }, 60_000);

  it("a pod relabel, a policy update and a policy delete each reach the kernel (delays printed)", async () => {
    const client = pods.find((p) => p.namespace === "x" && p.node === "n1")!;
    const server = pods.find((p) => p.namespace === "y" && p.node === "n4")!;
    expect((await probe(cluster.lab, client, server.ip, 80, "TCP", 300)).ok).toBe(false);
    const delays: Record<string, number> = {};
    await cluster.labelPod(client.namespace, client.name, { role: "frontend" });
    delays["pod relabel (allows)"] = await untilReach(cluster, client, server, true);
    expect((await cluster.applyPolicy(np("y", "only-frontend", { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "backend" } } }] }] }))).ok).toBe(true);
    delays["policy update (denies)"] = await untilReach(cluster, client, server, false);
    await cluster.deletePolicy("y", "only-frontend");
    delays["policy delete (allows)"] = await untilReach(cluster, client, server, true);
    console.log(`change -> enforced in the kernel (ms): ${JSON.stringify(delays)}`);
    // In-process, the histogram itself; a child controller (the real control plane), its /metrics.
    const hist = await cluster.controller?.controller?.metrics.implementationDelay.get();
    const url = cluster.controller?.metricsUrl;
    const scraped = url ? await (await fetch(url)).text() : "";
    const sample = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(scraped)?.[1] ?? NaN);
    const count = hist ? (hist.values.find((v) => v.metricName === "switchyard_policy_implementation_delay_seconds_count")?.value ?? 0) : sample("switchyard_policy_implementation_delay_seconds_count");
    const sum = hist ? hist.values.find((v) => v.metricName?.endsWith("_sum"))?.value : sample("switchyard_policy_implementation_delay_seconds_sum");
    console.log(`switchyard_policy_implementation_delay_seconds: ${count} observations, sum ${sum?.toFixed(3)} s`);
    expect(count).toBeGreaterThanOrEqual(3);
    void byName;
  }, 90_000);

  it("each component writes under its own field manager", async () => {
    type Managed = { manager: string; operation: string; subresource?: string; fieldsV1?: unknown };
    const managers = async (path: string): Promise<Managed[]> => ((await K8s(kind.Node).Raw(path)) as { metadata: { managedFields?: Managed[] } }).metadata.managedFields ?? [];
    const nn = await managers("/apis/switchyard.dev/v1alpha1/nodenetworks/n1");
    expect(nn.find((m) => m.manager === "switchyard-controller" && m.operation === "Apply" && m.subresource === undefined), JSON.stringify(nn)).toBeDefined();
    expect(nn.find((m) => m.manager === "switchyard-agent" && m.subresource === "status"), JSON.stringify(nn)).toBeDefined();
    expect(nn.filter((m) => !["switchyard-controller", "switchyard-agent"].includes(m.manager)).map((m) => m.manager)).toEqual([]);
    const cn = await managers("/apis/switchyard.dev/v1alpha1/clusternetworks/default");
    expect(cn.find((m) => m.manager === "switchyard-controller" && m.subresource === "status"), JSON.stringify(cn)).toBeDefined();
    const node = await managers("/api/v1/nodes/n1");
    const agentOnNode = node.filter((m) => m.manager === "switchyard-agent");
    expect(agentOnNode.length, JSON.stringify(node)).toBe(1);
    // On its Node the agent owns its two annotations and nothing else ("." is the map itself, when it made it).
    expect(Object.keys((agentOnNode[0]?.fieldsV1 as { "f:metadata"?: { "f:annotations"?: Record<string, unknown> } })["f:metadata"]?.["f:annotations"] ?? {}).filter((k) => k !== ".").sort()).toEqual(["f:switchyard.dev/underlay-cidr", "f:switchyard.dev/underlay-mtu"]);
  });

  onRealServer("loses no update when the kube-apiserver restarts (every watch and connection drops, the lease lapses)", async () => {
    const client = pods.find((p) => p.namespace === "x" && p.node === "n2")!;
    const server = pods.find((p) => p.namespace === "y" && p.node === "n3")!;
    await cluster.waitForReady(30_000);
    const ms = await cluster.kube.restartApiServer();
    console.log(`kube-apiserver back ${ms} ms after its restart began`);
    expect((await cluster.applyPolicy(np("y", "deny-all", { podSelector: {}, policyTypes: ["Ingress"], ingress: [] }))).ok).toBe(true);
    await cluster.labelPod(server.namespace, server.name, { tier: "db" });
    await untilReach(cluster, client, server, false, 60_000);
    await cluster.waitForReady(60_000);
    expect(await matrixAgreesWithEvaluator(cluster)).toEqual([]);
  }, 120_000);

  onEmulator("loses no update when every watch stream is dropped and watches get 410 repeatedly", async () => {
    const client = pods.find((p) => p.namespace === "x" && p.node === "n2")!;
    const server = pods.find((p) => p.namespace === "y" && p.node === "n3")!;
    cluster.api.faults.dropWatches();
    cluster.api.faults.expireWatches({ mode: "error-event", times: 10 });
    expect((await cluster.applyPolicy(np("y", "deny-all", { podSelector: {}, policyTypes: ["Ingress"], ingress: [] }))).ok).toBe(true);
    cluster.api.faults.dropWatches({ abrupt: true });
    cluster.api.faults.expireWatches({ mode: "http-410", times: 10 });
    await cluster.labelPod(server.namespace, server.name, { tier: "db" });
    cluster.api.faults.dropWatches();
    await untilReach(cluster, client, server, false, 30_000);
    await cluster.waitForReady(60_000);
    expect(await matrixAgreesWithEvaluator(cluster)).toEqual([]);
    cluster.api.faults.reset();
  }, 120_000);

  onEmulator("a restarted controller rewrites no plan whose hash is unchanged", async () => {
    await cluster.waitForReady(30_000);
    const before = cluster.api.requests.count({ verb: "patch", resource: "nodenetworks" });
    await cluster.killController();
    await cluster.startController();
    await cluster.waitForReady(60_000);
    // Wait until the new controller (leader once the crashed one's lease expires) has done a full pass.
    const passes = async () => cluster.controller?.controller?.counters.passes ?? 0;
    const end = Date.now() + 20_000;
    while ((await passes()) < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(await passes()).toBeGreaterThanOrEqual(1);
    await cluster.controller?.controller?.scheduler.idle();
    expect(cluster.api.requests.count({ verb: "patch", resource: "nodenetworks" })).toBe(before);
  }, 120_000);

  it("a restarted agent loses no packet of an allowed flow and lets no denied flow through while down", async () => {
    const x = pods.filter((p) => p.namespace === "x");
    const y = pods.filter((p) => p.namespace === "y");
    const onN2 = x.find((p) => p.node === "n2")!;
    // The denied flow's policy, whatever the tests before left (idempotent).
    expect((await cluster.applyPolicy(np("y", "deny-all", { podSelector: {}, policyTypes: ["Ingress"], ingress: [] }))).ok).toBe(true);
    await cluster.waitForReady(30_000);
    const traffic = await startTraffic(cluster.lab, {
      pingPairs: x.filter((p) => p !== onN2).map((p) => [p, onN2] as const),
      tcpPairs: [[x.find((p) => p.node === "n1")!, onN2]],
      denied: [{ from: onN2, to: y.find((p) => p.node === "n2")!, port: 80, protocol: "TCP" }],
      maxDurationSec: 60,
    });
    await cluster.killAgent("n2");
    await new Promise((r) => setTimeout(r, 2000)); // the node runs without its agent for a while
    await cluster.startAgent("n2");
    await cluster.waitForReady(30_000);
    await new Promise((r) => setTimeout(r, 1000));
    const t = await traffic.stop();
    for (const p of t.pings) expect(p.lost, JSON.stringify(t.pings)).toBe(0);
    for (const c of t.tcp) expect(c.alive).toBe(true);
    for (const d of t.denied) {
      expect(d.probes).toBeGreaterThan(5);
      expect(d.leaked).toBe(0);
    }
  }, 120_000);
});
