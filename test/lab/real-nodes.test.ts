// Real nodes (lab/nodes): three kubelets with containerd and runc in the lab's node namespaces, the real
// control plane with kube-controller-manager and kube-scheduler, the images built without a registry, and
// Switchyard installed from crds/ and deploy/ with kubectl. Proven here: the nodes turn Ready once the
// agents (DaemonSet pods) installed switchyard-cni; the controller and agents run from the local image
// exactly as deploy/ declares them, with probes and metrics that answer; Deployments' pods get addresses
// from their nodes' blocks through containerd; NetworkPolicy holds on them; VXLAN -> BGP migrates under
// traffic between kubelet pods without a lost packet. Figures are printed for docs/benchmarks.md.
// Lab prefix: syrt-.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { runCommand } from "../../src/base/exec";
import { packagePath } from "../../src/base/package-root";
import { cidrContains, parseCidr, parseIPv4 } from "../../src/api/ipv4";
import { migrateLab } from "../../lab/migration";
import { probe } from "../../lab/pods";
import { startRealCluster, type RealCluster } from "../../lab/nodes/real-cluster";
import { SWITCHYARD_IMAGE } from "../../lab/nodes/real-node";
import type { LabPod } from "../../lab/topology";
import { realNodesUnavailable } from "../support/kube";

const unavailable = await realNodesUnavailable();
if (unavailable) console.warn(unavailable);

type Pod = { metadata: { name: string; namespace: string; creationTimestamp: string }; spec: { nodeName?: string; hostNetwork?: boolean; containers: { image: string; args?: string[] }[] }; status: { phase?: string; podIP?: string; conditions?: { type: string; status: string; lastTransitionTime?: string }[]; containerStatuses?: { image: string; imageID: string; ready: boolean }[] } };
type Workload = { kind: string; metadata: { name: string }; spec: { template: { spec: { containers: { args?: string[] }[] } } } };

const ROLLOUT = { canary: { nodes: 1 }, batchSize: 1, healthGate: { successfulRounds: 2, probeInterval: "500ms", timeout: "30s" } };

function deployment(namespace: string, name: string): Record<string, unknown> {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { namespace, name },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          // One replica per node: the pods cross nodes, and every node's CNI is used.
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: name } } }],
          terminationGracePeriodSeconds: 0,
          containers: [
            {
              name: name,
              image: "switchyard-workload:dev",
              imagePullPolicy: "Never",
              args: ["--tcp", "80,81", "--udp", "80"],
              ports: [{ containerPort: 80 }],
              readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

/** Probes src -> dst:port until the verdict is `allowed` (true once it is), for at most 15 s (bounded count too). */
async function settlesTo(c: RealCluster, src: LabPod, dst: LabPod, port: number, allowed: boolean): Promise<boolean> {
  const t0 = Date.now();
  for (let i = 0; i < 100 && Date.now() - t0 < 15_000; i++) {
    if ((await probe(c.lab, src, dst.ip, port, "TCP", 500)).ok === allowed) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe.skipIf(unavailable !== undefined)("real nodes: kubelet and containerd run the pods, Switchyard installed from deploy/", () => {
  let c: RealCluster;
  const figures: string[] = [];
  const pods = async (namespace: string): Promise<Pod[]> => (JSON.parse(await c.kubectl(["get", "pods", "-n", namespace, "-o", "json"])) as { items: Pod[] }).items;

  beforeAll(async () => {
    c = await startRealCluster({ prefix: "syrt-", nodes: 3, namespaces: ["web", "api"], progress: (l) => console.log(l) });
    const ready = Object.entries(c.timings).filter(([k]) => k.startsWith("ready:")).map(([, v]) => v);
    figures.push(`cluster up ${(c.timings["total"]! / 1000).toFixed(1)} s (control plane ${c.timings["control plane"]} ms, install ${c.timings["install"]} ms); node Ready after its kubelet started: ${Math.min(...ready)}-${Math.max(...ready)} ms`);
  }, 600_000);
  afterAll(async () => {
    console.log(`# figures\n${figures.map((f) => `# ${f}`).join("\n")}`);
    await c?.close();
  }, 120_000);

  it("registers three kubelet nodes of the pinned release on containerd, Ready once the agent installed switchyard-cni", async () => {
    console.log(await c.kubectl(["get", "nodes", "-o", "wide"]));
    const nodes = (JSON.parse(await c.kubectl(["get", "nodes", "-o", "json"])) as { items: { metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string }; conditions: { type: string; status: string }[] } }[] }).items;
    expect(nodes.map((n) => n.metadata.name).sort()).toEqual(["n1", "n2", "n3"]);
    for (const n of nodes) {
      expect(n.status.nodeInfo.kubeletVersion).toBe("v1.34.4");
      expect(n.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\./);
      expect(n.status.conditions.find((x) => x.type === "Ready")?.status).toBe("True");
    }
    // The conflist is where that node's containerd reads it (the node's own /etc/cni/net.d).
    for (const n of c.nodes) expect(readFileSync(`${n.dir}/fs/etc-cni-net.d/10-switchyard.conflist`, "utf8")).toMatch(/"type":\s*"switchyard-cni"/);
  });

  it("runs the controller and every agent from the locally built image, exactly as deploy/ declares them, with probes and metrics that answer", async () => {
    // An agent is not ready while it applies a new plan (its readiness means "my node's plan is in force").
    await c.kubectl(["wait", "--for=condition=Ready", "pods", "--all", "-n", "switchyard-system", "--timeout=60s"]);
    console.log(await c.kubectl(["get", "pods", "-A", "-o", "wide"]));
    const system = await pods("switchyard-system");
    expect(system.filter((p) => p.metadata.name.startsWith("switchyard-agent-")).map((p) => p.spec.nodeName).sort()).toEqual(["n1", "n2", "n3"]);
    expect(system.filter((p) => p.metadata.name.startsWith("switchyard-controller-"))).toHaveLength(2);
    const imported = await c.nodes[0]!.ctr(["images", "ls"]);
    for (const p of system) {
      expect(p.status.phase, p.metadata.name).toBe("Running");
      expect(p.status.containerStatuses?.[0]?.ready, `${p.metadata.name} ready`).toBe(true);
      expect(p.status.containerStatuses?.[0]?.image).toBe(SWITCHYARD_IMAGE);
      expect(imported).toContain(p.status.containerStatuses![0]!.imageID.replace(/^.*@/, ""));
    }
    // What runs is deploy/ as it is in the repository: the live objects' arguments are the files' own.
    for (const file of ["controller.yaml", "agent.yaml"]) {
      const doc = parseAllDocuments(readFileSync(packagePath("deploy", file), "utf8")).map((d) => d.toJSON() as Workload)[0]!;
      const live = JSON.parse(await c.kubectl(["get", doc.kind.toLowerCase(), "-n", "switchyard-system", doc.metadata.name, "-o", "json"])) as Workload;
      expect(live.spec.template.spec.containers[0]!.args, file).toEqual(doc.spec.template.spec.containers[0]!.args);
    }
    // Metrics from outside the node (the router namespace), and each agent's readiness says its plan is applied.
    for (const ip of new Set(system.filter((p) => p.metadata.name.startsWith("switchyard-controller-")).map((p) => p.status.podIP!))) {
      const r = await runCommand("ip", ["netns", "exec", c.lab.routerNetns, "curl", "-sf", "-m", "5", `http://${ip}:9464/metrics`], { timeoutMs: 10_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("switchyard_policy_implementation_delay_seconds");
    }
    for (const n of c.lab.nodes) {
      const r = await runCommand("ip", ["netns", "exec", n.netns, "curl", "-s", "-m", "5", "http://127.0.0.1:9465/readyz"], { timeoutMs: 10_000 });
      expect(r.stdout).toMatch(/^plan [0-9a-f]+ applied/);
      // The agent's metrics on the node's own address (not loopback): reachable from outside the node.
      const m = await runCommand("ip", ["netns", "exec", c.lab.routerNetns, "curl", "-sf", "-m", "5", `http://${n.ip}:9466/metrics`], { timeoutMs: 10_000 });
      expect(m.code, m.stderr).toBe(0);
      expect(m.stdout).toMatch(/^switchyard_agent_plan_applied 1$/m);
      expect(m.stdout).toMatch(/^switchyard_agent_policy_dropped_packets_total \d+$/m);
      expect(m.stdout).toMatch(/^process_resident_memory_bytes /m);
    }
  });

  it("gives the pods of Deployments in two namespaces addresses from their nodes' blocks, on all three nodes", async () => {
    const t0 = Date.now();
    await c.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [deployment("web", "web"), deployment("api", "api")] }));
    await c.kubectl(["rollout", "status", "-n", "web", "deployment/web", "--timeout=120s"]);
    await c.kubectl(["rollout", "status", "-n", "api", "deployment/api", "--timeout=120s"]);
    const all = [...(await pods("web")), ...(await pods("api"))];
    const blocks = new Map((await c.nodeNetworks()).map((n) => [n.metadata?.name ?? "", parseCidr(n.spec?.block ?? "")]));
    expect(all).toHaveLength(6);
    const readyAfter: number[] = [];
    for (const p of all) {
      const block = blocks.get(p.spec.nodeName ?? "");
      expect(block, p.metadata.name).toBeDefined();
      expect(cidrContains(block!, parseIPv4(p.status.podIP ?? "")!), `${p.metadata.name} ${p.status.podIP} in ${p.spec.nodeName}'s block`).toBe(true);
      const ready = p.status.conditions?.find((x) => x.type === "Ready" && x.status === "True")?.lastTransitionTime;
      if (ready) readyAfter.push(Date.parse(ready) - Date.parse(p.metadata.creationTimestamp));
    }
    expect(new Set(all.map((p) => p.spec.nodeName)).size).toBe(3);
    figures.push(`6 Deployment pods Ready ${((Date.now() - t0) / 1000).toFixed(1)} s after the apply; pod Ready after create (API timestamps, 1 s resolution): ${Math.min(...readyAfter) / 1000}-${Math.max(...readyAfter) / 1000} s`);
  }, 180_000);

  it("enforces NetworkPolicy on kubelet pods across nodes, and measures the policy implementation delay", async () => {
    const web: LabPod[] = [];
    const api: LabPod[] = [];
    for (const p of await pods("web")) web.push(await c.adoptPod("web", p.metadata.name));
    for (const p of await pods("api")) api.push(await c.adoptPod("api", p.metadata.name));
    const from = web.find((p) => p.node === "n1")!;
    const to = api.find((p) => p.node === "n3")!;
    expect((await probe(c.lab, from, to.ip, 80, "TCP")).ok).toBe(true);
    // Ingress to api only from namespace web, on port 80: web -> api:80 stays allowed, api:81 is denied.
    const t0 = Date.now();
    const applied = await c.applyPolicy({
      metadata: { namespace: "api", name: "from-web-80" },
      spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "web" } } }], ports: [{ port: 80 }] }] },
    });
    expect(applied.ok).toBe(true);
    // Probed back to back (an allowed probe answers in about a millisecond), for at most 30 s.
    let delay: number | undefined;
    for (let i = 0; i < 3000 && delay === undefined && Date.now() - t0 < 30_000; i++) {
      if (!(await probe(c.lab, from, to.ip, 81, "TCP", 200)).ok) delay = Date.now() - t0;
      else await new Promise((r) => setTimeout(r, 10));
    }
    expect(delay, "port 81 was never denied").toBeDefined();
    figures.push(`policy implementation delay (NetworkPolicy written -> its first denied packet, n1 -> n3): ${delay} ms`);
    await c.waitForReady(60_000);
    // The steady state, on every pair: each cell must reach its verdict within 15 s of the cluster looking
    // settled (in one CI run a same-node cell of n3 still connected on 81 right after the readiness window;
    // the status then said every node had applied its plan).
    for (const src of web) for (const dst of api) {
      expect(await settlesTo(c, src, dst, 80, true), `${src.name}@${src.node} -> ${dst.name}@${dst.node}:80`).toBe(true);
      expect(await settlesTo(c, src, dst, 81, false), `${src.name}@${src.node} -> ${dst.name}@${dst.node}:81`).toBe(true);
    }
    // From api's own pods: not in namespace web, denied on 80 too.
    expect(await settlesTo(c, api.find((p) => p.node === "n2")!, to, 80, false)).toBe(true);
  }, 180_000);

  it("migrates VXLAN -> BGP under traffic between kubelet pods: 0 packets lost, the TCP stream alive, the denied flow never let through", async () => {
    const web = c.lab.pods.filter((p) => p.namespace === "web").sort((a, b) => (a.node < b.node ? -1 : 1));
    const api = c.lab.pods.filter((p) => p.namespace === "api");
    const pingPairs = web.map((p, i) => [p, web[(i + 1) % web.length]!] as const);
    // The denied flow is denied before the migration starts: what is measured is the migration's effect.
    const deniedTo = api.find((p) => p.name !== api[0]!.name)!;
    expect(await settlesTo(c, api[0]!, deniedTo, 80, false), "api -> api:80 denied before the migration").toBe(true);
    const run = await migrateLab(c, "bgp", {
      rollout: ROLLOUT,
      timeoutMs: 180_000,
      traffic: { pingPairs, tcpPairs: [pingPairs[0]!], tcpPort: 7007, denied: [{ from: api[0]!, to: deniedTo, port: 80, protocol: "TCP" }] },
    });
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
    expect(run.final?.activeMode).toBe("bgp");
    const t = run.traffic!;
    const summary = JSON.stringify({ pings: t.pings.map((p) => [p.from, p.to, p.transmitted, p.lost, p.maxGapMs]), tcp: t.tcp, denied: t.denied });
    for (const p of t.pings) {
      expect(p.transmitted, summary).toBeGreaterThan(50);
      expect(p.lost, summary).toBe(0);
    }
    for (const s of t.tcp) expect(s.alive, summary).toBe(true);
    for (const d of t.denied) {
      expect(d.probes, summary).toBeGreaterThan(5);
      expect(d.leaked, summary).toBe(0);
    }
    const routes = await runCommand("ip", ["-n", c.lab.nodes[0]!.netns, "route", "show", "proto", "bird"], { timeoutMs: 10_000 });
    expect(routes.stdout).toContain("10.244.");
    figures.push(`VXLAN -> BGP on kubelet pods: ${(run.ms / 1000).toFixed(1)} s, ${t.pings.reduce((s, p) => s + p.transmitted, 0)} pings ${t.pings.reduce((s, p) => s + p.lost, 0)} lost, longest TCP gap ${Math.max(...t.tcp.map((s) => s.maxGapMs))} ms, denied flow leaked ${t.denied.reduce((s, d) => s + d.leaked, 0)} of ${t.denied.reduce((s, d) => s + d.probes, 0)} probes`);
  }, 300_000);
});
