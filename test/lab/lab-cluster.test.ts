// End-to-end on the embedded default: a LabCluster (API server emulator, 4 netns nodes on 2 subnets, the
// real controller and agents, the lab kubelet) in VXLAN mode. Asserts with the API's objects, `ip -j` and
// real packets: Ready from realization, full reachability, a policy applied through the API denying
// exactly what the reference evaluator denies, a node joining and leaving, and a teardown that leaves no
// namespace. Namespaces: prefix sylc1-.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand, runOk } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import { labCniDirs } from "../../lab/cni-runtime";
import { cidrContains, parseCidr, parseIPv4 } from "../../src/api/ipv4";
import { STATIC_IP_ANNOTATION } from "../../src/api/annotations";
import { startLabCluster, type LabCluster } from "../../lab/cluster/lab-cluster";
import { probe } from "../../lab/pods";
import { torKernelRoutes, torStatus } from "../../lab/router";
import { listLabNamespaces, labRunDir } from "../../lab/topology";

const PREFIX = "sylc1-";
const BGP_PREFIX = "sylc4-";
let cluster: LabCluster;

function inBlock(ip: string, block: string | undefined): boolean {
  const c = block === undefined ? undefined : parseCidr(block);
  const a = parseIPv4(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
}

describe("LabCluster (vxlan, 4 nodes on 2 subnets)", () => {
  beforeAll(async () => {
    cluster = await startLabCluster({ prefix: PREFIX, nodes: 4, subnets: 2, mode: "vxlan", podsPerNode: 2 });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  }, 60_000);

  it("reports Ready from realization: every node applied its plan, pods addressed from their node's block", async () => {
    const cn = await cluster.clusterNetwork();
    expect(cn.status?.phase).toBe("Ready");
    expect(cn.status?.nodes).toEqual({ desired: 4, realized: 4 });
    const nns = await cluster.nodeNetworks();
    expect(nns.map((n) => n.metadata?.name).sort()).toEqual(["n1", "n2", "n3", "n4"]);
    for (const nn of nns) expect(nn.status?.appliedHash).toBe(nn.spec?.planHash);
    expect(new Set(nns.map((n) => n.spec?.block)).size).toBe(4);
    const pods = cluster.podsSorted();
    expect(pods).toHaveLength(8);
    for (const p of pods) {
      const nn = nns.find((n) => n.metadata?.name === p.node);
      expect(inBlock(p.ip, nn?.spec?.block), `${p.namespace}/${p.name} ${p.ip} in ${nn?.spec?.block}`).toBe(true);
      const links = JSON.parse(await runOk("ip", ["-j", "-n", p.netns, "link", "show", "eth0"])) as { mtu: number }[];
      expect(links[0]?.mtu).toBe(nn?.spec?.mtu);
    }
    // The nodes are labelled by subnet, as the samples' node selectors expect.
    expect(cluster.lab.nodes.map((n) => n.subnet)).toEqual([0, 0, 1, 1]);
  });

  it("wires every pod with switchyard-cni, which each node's agent installed with the node's block and MTU", async () => {
    const nns = await cluster.nodeNetworks();
    for (const nn of nns) {
      const node = nn.metadata?.name ?? "";
      const dirs = labCniDirs(cluster.lab.runDir, node);
      expect(existsSync(join(dirs.binDir, "switchyard-cni")), `${node}: the plugin in its cniBinDir`).toBe(true);
      const conf = JSON.parse(readFileSync(join(dirs.confDir, "10-switchyard.conflist"), "utf8")) as { cniVersion: string; plugins: { type: string; blocks: string[]; mtu: number; policyWaitSeconds: number }[] };
      expect(conf.plugins[0], node).toMatchObject({ type: "switchyard-cni", blocks: [nn.spec?.block], mtu: nn.spec?.mtu, policyWaitSeconds: 10 });
      // STATUS says ready (the agent applied a complete plan), through the CNI exec protocol.
      const status = await runCommand(join(dirs.binDir, "switchyard-cni"), [], { env: { CNI_COMMAND: "STATUS", CNI_PATH: dirs.binDir }, stdin: JSON.stringify({ ...conf.plugins[0], cniVersion: conf.cniVersion, name: "switchyard" }) });
      expect(status.code, status.stdout).toBe(0);
      // One endpoint marker per pod of the plan; the pods' addresses are the plugin's allocations.
      const pods = cluster.lab.pods.filter((p) => p.node === node);
      expect(readdirSync(join(dirs.stateDir, "endpoints")).sort()).toEqual(pods.map((p) => p.hostInterface).sort());
      for (const p of pods) expect(readdirSync(dirs.dataDir)).toContain(p.ip);
      expect(nn.status?.conditions?.find((c) => c.type === "PodInterfacesMissing")).toMatchObject({ status: "False" });
    }
  });

  it("refuses a static address outside the node's block with the plugin's message, and names the pod without an interface", async () => {
    const pod = await cluster.createPod("y", "foreign", "n2", { app: "foreign" }, [{ port: 80, name: "http" }], { annotations: { [STATIC_IP_ANNOTATION]: JSON.stringify(["10.99.0.7"]) }, wait: false });
    expect(pod).toBeUndefined();
    const pending = await waitFor("the pod to be refused", async () => {
      const p = (await K8s(kind.Pod).InNamespace("y").Get("foreign")) as { status?: { phase?: string; message?: string } };
      return p.status?.message?.includes("10.99.0.7") ? p.status : undefined;
    }, 30_000, 100);
    expect(pending.phase).toBe("Pending");
    expect(pending.message).toMatch(/switchyard-cni.*10\.99\.0\.7.*10\.244\./);
    const condition = await waitFor("n2's agent to name the pod without an interface", async () => {
      const nn = (await cluster.nodeNetworks()).find((n) => n.metadata?.name === "n2");
      const c = nn?.status?.conditions?.find((x) => x.type === "PodInterfacesMissing");
      return c?.status === "True" ? c : undefined;
    }, 30_000, 100);
    expect(condition.message).toContain("y/foreign");
    const n2 = (await cluster.nodeNetworks()).find((n) => n.metadata?.name === "n2");
    expect(n2?.status?.conditions?.find((c) => c.type === "Applied")).toMatchObject({ status: "False", reason: "PodInterfacesMissing" });
    await cluster.deletePod("y", "foreign", { wait: false });
    await cluster.waitForReady(30_000);
  }, 60_000);

  it("connects every pod to every pod, same node, same subnet and across the router", async () => {
    const m = await cluster.matrix(80, "TCP");
    expect(m.result.matrix.flat().every((ok) => ok), `\n${m.text}`).toBe(true);
  });

  it("denies a ClusterNetwork the admission rules refuse, with the rule's message", async () => {
    const r = await cluster.applyClusterNetwork({ metadata: { name: "default" }, spec: { podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "vxlan", bgp: { asNumber: 64512 } } });
    expect(r.ok).toBe(false);
    expect(r.ok ? "" : r.message).toMatch(/spec\.bgp: only valid when spec\.mode is bgp/);
    expect((await cluster.clusterNetwork()).spec?.["bgp"]).toBeUndefined();
  });

  it("enforces NetworkPolicy applied through the API exactly as the reference evaluator decides", async () => {
    const node = "lab.switchyard.dev/node";
    const policies = [
      {
        // Pods in x accept http only from pods on n1 (any namespace).
        metadata: { namespace: "x", name: "http-from-n1" },
        spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { [node]: "n1" } } }], ports: [{ port: "http", protocol: "TCP" }] }] },
      },
      {
        // The y pod on n2 may only talk to pods on subnet a's nodes.
        metadata: { namespace: "y", name: "n2-egress-subnet-a" },
        spec: { podSelector: { matchLabels: { [node]: "n2" } }, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: node, operator: "In", values: ["n1", "n2"] }] } }] }] },
      },
    ];
    for (const p of policies) expect(await cluster.applyPolicy(p)).toEqual({ ok: true });
    await cluster.waitForReady(30_000);
    const expected = await cluster.expected(80, "TCP");
    const want = expected.map((row) => row.map((c) => c.connects));
    const offDiagonal = expected.flatMap((row, i) => row.filter((_, j) => i !== j));
    expect(offDiagonal.some((c) => !c.connects)).toBe(true);
    expect(offDiagonal.some((c) => c.connects)).toBe(true);
    for (const c of offDiagonal.filter((x) => !x.connects)) expect(c.deniedBy.length).toBeGreaterThan(0);
    // Retries only absorb a late apply; the answer is compared cell by cell.
    const m = await cluster.matrix(80, "TCP", { expected: want, retries: 3, retryIntervalMs: 200 });
    const diff = m.result.mismatches.map(({ from, to }) => `${m.names[from]} -> ${m.names[to]}: probe ${m.result.matrix[from]![to]}, evaluator ${expected[from]![to]!.reason}`);
    expect(diff, `\n${m.text}`).toEqual([]);

    // Relabelling a pod moves it into the allowed peer set: the plans follow, and so do the packets.
    await cluster.labelPod("y", "n3-p2", { [node]: "n1" });
    await cluster.waitForReady(30_000);
    const relabelled = await cluster.expected(80, "TCP");
    const row = m.names.indexOf("y/n3-p2");
    const col = m.names.indexOf("x/n2-p1");
    expect(expected[row]![col]!.connects).toBe(false);
    expect(relabelled[row]![col]!.connects).toBe(true);
    const m2 = await cluster.matrix(80, "TCP", { expected: relabelled.map((r) => r.map((c) => c.connects)), retries: 3, retryIntervalMs: 200 });
    expect(m2.result.mismatches, `\n${m2.text}`).toEqual([]);
    await cluster.labelPod("y", "n3-p2", { [node]: "n3" });

    for (const p of policies) await cluster.deletePolicy(p.metadata.namespace, p.metadata.name);
    await cluster.waitForReady(30_000);
    const open = await cluster.matrix(80, "TCP", { expected: want.map((row) => row.map(() => true)), retries: 3, retryIntervalMs: 200 });
    expect(open.result.mismatches).toEqual([]);
  }, 60_000);

  it("honours a static address request, and a deleted Pod loses its namespace", async () => {
    const block = (await cluster.nodeNetworks()).find((n) => n.metadata?.name === "n2")?.spec?.block ?? "";
    const ip = block.replace(/\.0\/24$/, ".77");
    const pod = await cluster.createPod("y", "static", "n2", { app: "static" }, [{ port: 80, name: "http" }], { annotations: { [STATIC_IP_ANNOTATION]: JSON.stringify([ip]) } });
    expect(pod?.ip).toBe(ip);
    await cluster.waitForReady(30_000);
    const r = await probe(cluster.lab, { namespace: "x", name: "n3-p1" }, ip, 80, "TCP", 1_000);
    expect(r.ok, r.error).toBe(true);
    await cluster.deletePod("y", "static");
    expect(await listLabNamespaces(PREFIX)).not.toContain(pod?.netns);
    await cluster.waitForReady(30_000);
  }, 60_000);

  it("adds a node (NodeNetwork, block, peers' plans) and removes it again (block released, plans restored)", async () => {
    const before = new Map((await cluster.nodeNetworks()).map((n) => [n.metadata?.name ?? "", n]));
    const allocatedBefore = ((await cluster.clusterNetwork()).status as { ipam?: { allocatedBlocks?: number } } | undefined)?.ipam?.allocatedBlocks;

    const n5 = await cluster.addNode({ subnet: 1 });
    expect(n5.name).toBe("n5");
    await cluster.waitForReady(30_000);
    const grown = await cluster.nodeNetworks();
    const nn5 = grown.find((n) => n.metadata?.name === "n5");
    expect(nn5?.spec?.block).toBeDefined();
    expect([...before.values()].map((n) => n.spec?.block)).not.toContain(nn5?.spec?.block);
    for (const [name, old] of before) expect(grown.find((n) => n.metadata?.name === name)?.spec?.planHash, `${name} learns of n5`).not.toBe(old.spec?.planHash);
    expect(((await cluster.clusterNetwork()).status as { ipam?: { allocatedBlocks?: number } }).ipam?.allocatedBlocks).toBe((allocatedBefore ?? 0) + 1);

    const pod = await cluster.createPod("x", "n5-p1", "n5", { app: "p1", "lab.switchyard.dev/node": "n5" }, [{ port: 80, name: "http" }]);
    expect(inBlock(pod?.ip ?? "", nn5?.spec?.block)).toBe(true);
    await cluster.waitForReady(30_000);
    const m = await cluster.matrix(80, "TCP", { expected: cluster.podsSorted().map(() => cluster.podsSorted().map(() => true)), retries: 3, retryIntervalMs: 200 });
    expect(m.result.mismatches, `\n${m.text}`).toEqual([]);

    await cluster.removeNode("n5");
    await cluster.waitForReady(30_000);
    const after = await cluster.nodeNetworks();
    expect(after.map((n) => n.metadata?.name).sort()).toEqual(["n1", "n2", "n3", "n4"]);
    // Same inputs, same plans: the peers' plans are byte-for-byte what they were before n5.
    for (const [name, old] of before) expect(after.find((n) => n.metadata?.name === name)?.spec?.planHash, name).toBe(old.spec?.planHash);
    expect(((await cluster.clusterNetwork()).status as { ipam?: { allocatedBlocks?: number } }).ipam?.allocatedBlocks).toBe(allocatedBefore);
    expect(await listLabNamespaces(PREFIX)).not.toContain(`${PREFIX}n5`);
    expect(cluster.lab.pods.some((p) => p.node === "n5")).toBe(false);
  }, 90_000);

  it("tears everything down: no sylc1- namespace, no run dir", async () => {
    const r = await cluster.close();
    expect(r.errors).toEqual([]);
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
    expect(existsSync(labRunDir(PREFIX))).toBe(false);
  }, 60_000);
});

describe("LabCluster (bgp, top-of-rack router)", () => {
  let bgp: LabCluster | undefined;
  afterAll(async () => {
    await bgp?.close();
  }, 60_000);

  it("refuses a second cluster in the same process (KUBECONFIG is per process) without touching the first", async () => {
    bgp = await startLabCluster({ prefix: BGP_PREFIX, nodes: 3, subnets: 2, mode: "bgp", podsPerNode: 1 });
    await expect(startLabCluster({ prefix: BGP_PREFIX, nodes: 1, subnets: 1 })).rejects.toThrow(/is running in this process/);
    expect((await listLabNamespaces(BGP_PREFIX)).length).toBeGreaterThan(0);
  }, 120_000);

  it("peers every node with BIRD in the router (eBGP, AS 64500) and routes pods across subnets", async () => {
    const c = bgp!;
    expect(c.hasTorRouter()).toBe(true);
    const status = await torStatus(c.lab);
    expect(status.sessions).toEqual({ n1: "Established", n2: "Established", n3: "Established" });
    const blocks = (await c.nodeNetworks()).map((n) => n.spec?.block).sort();
    expect(await torKernelRoutes(c.lab)).toEqual(blocks);
    // The ClusterNetwork's peers are the router's address on each subnet, selected by the subnet label.
    const cn = await c.clusterNetwork();
    expect((cn.spec?.["bgp"] as { peers?: unknown[] }).peers).toEqual([
      { address: "192.168.10.1", asNumber: 64500, nodeSelector: { matchLabels: { "topology.switchyard.dev/subnet": "a" } } },
      { address: "192.168.20.1", asNumber: 64500, nodeSelector: { matchLabels: { "topology.switchyard.dev/subnet": "b" } } },
    ]);
    const m = await c.matrix(80, "TCP");
    expect(m.result.matrix.flat().every((ok) => ok), `\n${m.text}`).toBe(true);
    const r = await c.close();
    expect(r.errors).toEqual([]);
    expect(await listLabNamespaces(BGP_PREFIX)).toEqual([]);
  }, 60_000);
});
