// The fault suite, on the real kernel and the real kube-apiserver: the controller and every agent are
// processes of their own, the agents reach the API server through a relay that can stall their streams.
// Four faults, one after another, while a guard probes the denied flows without pause:
//   1. an agent killed with SIGKILL during a transaction (right after its plan changed);
//   2. the API server away for 60 s, and a node rebooting in that time (its agent must put the saved plan
//      in force before it can ask the API for anything);
//   3. every agent's watch stream stalled without closing, then a policy change they must still follow;
//   4. a node's namespace restarted (a reboot: kernel state, pods' sandboxes and the agent all gone).
// What must hold throughout: no isolated pod ever answers a denied probe; after each fault every node
// converges (the plan of the moment applied, allowed flows open); no pod changes its address. Prefix syft-.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LabCluster } from "../../lab/cluster/lab-cluster";
import { probe } from "../../lab/pods";
import { listSwitchyardTable } from "../../src/agent/policy/nftables";
import { waitFor } from "../../src/base/wait";
import { runCommand } from "../../src/base/exec";
import { kubeUnavailable } from "../support/kube";

const unavailable = await kubeUnavailable();
if (unavailable) console.warn(unavailable);

const PREFIX = "syft-";
const HTTP = [{ port: 80, name: "http" }];
type Ref = { readonly namespace: string; readonly name: string };
const CLIENT: Ref = { namespace: "x", name: "client" };
const OTHER: Ref = { namespace: "x", name: "other" };
const LATE: Ref = { namespace: "x", name: "late" };
const WEB: Ref = { namespace: "y", name: "web" };
const WEB2: Ref = { namespace: "y", name: "web2" };
/** Denied by the policy from start to end: the guard probes these all the time. */
const DENIED: readonly (readonly [Ref, Ref])[] = [
  [OTHER, WEB],
  [OTHER, WEB2],
  [WEB2, WEB],
  [WEB, WEB2],
];

/** y's pods admit TCP 80 from pods labelled role=client (any namespace), nothing else. */
const POLICY = {
  metadata: { namespace: "y", name: "clients-only" },
  spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }], ports: [{ protocol: "TCP", port: 80 }] }] },
};
/** Toggled by fault 1: a second policy on y (its chains change: a full apply on the nodes of y's pods). */
const EXTRA = {
  metadata: { namespace: "y", name: "extra" },
  spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { role: "client" } } }], ports: [{ protocol: "TCP", port: 8080 }] }] },
};

describe.skipIf(unavailable !== undefined)("fault suite on the real control plane", () => {
  let cluster: LabCluster;
  const violations: string[] = [];
  const guard = { stop: false, probes: 0, skipped: 0, done: Promise.resolve() };
  const figures: string[] = [];
  let addresses: Record<string, string> = {};

  const podIP = (r: Ref): string => {
    const p = cluster.lab.pods.find((x) => x.namespace === r.namespace && x.name === r.name);
    // A pod the kubelet is still setting up has no address yet (""): there is nothing to probe.
    if (!p || p.ip === "") throw new Error(`no wired lab pod ${r.namespace}/${r.name}`);
    return p.ip;
  };
  const reaches = async (from: Ref, to: Ref): Promise<boolean> => {
    try {
      return (await probe(cluster.lab, from, podIP(to), 80, "TCP", 500)).ok;
    } catch {
      return false; // a pod whose node is rebooting has no agent to probe from
    }
  };
  /** The flow reaches its verdict within 60 s (each node's apply is asynchronous to the API's state). */
  const settles = async (from: Ref, to: Ref, allowed: boolean): Promise<void> => {
    await waitFor(`${from.name} -> ${to.name}:80 ${allowed ? "allowed" : "denied"}`, async () => ((await reaches(from, to)) === allowed ? true : undefined), 60_000, 200);
  };
  /** Every node applied the plan of the moment, and the allowed flows are open again. */
  const converged = async (what: string): Promise<void> => {
    const t0 = Date.now();
    await cluster.waitForReady(120_000, { settleMs: 500 });
    await settles(CLIENT, WEB, true);
    await settles(CLIENT, WEB2, true);
    figures.push(`${what}: converged ${Date.now() - t0} ms after the fault ended`);
  };
  /** For a violation: where the lab has the pod, and what its node holds. */
  const whereIs = async (r: Ref): Promise<string> => {
    const p = cluster.lab.pods.find((x) => x.namespace === r.namespace && x.name === r.name);
    if (!p) return "(not in the lab)";
    const node = `${PREFIX}${p.node}`;
    const links = (await runCommand("ip", ["-br", "link"], { netns: node })).stdout.replace(/\n/g, " | ");
    const tables = (await runCommand("nft", ["list", "tables"], { netns: node })).stdout.replace(/\n/g, " ");
    const pod = (await runCommand("ip", ["-br", "addr"], { netns: p.netns })).stdout.replace(/\n/g, " | ");
    return `[pod ${JSON.stringify(p)} addrs: ${pod}; node links: ${links}; tables: ${tables}]`;
  };
  const apiAddresses = async (): Promise<Record<string, string>> => {
    const r = await cluster.kube.kubectl(["get", "pods", "-A", "-o", "json"]);
    const items = (JSON.parse(r.stdout) as { items: { metadata: { namespace: string; name: string }; status?: { podIP?: string } }[] }).items;
    return Object.fromEntries(items.filter((p) => ["x", "y"].includes(p.metadata.namespace)).map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p.status?.podIP ?? ""]));
  };

  beforeAll(async () => {
    cluster = new LabCluster({
      controlPlane: "kubernetes",
      prefix: PREFIX,
      nodes: 3,
      subnets: 1,
      mode: "vxlan",
      agentApiRelay: true,
      ...(process.env["SYFT_KEEP_LOGS"] ? { logLevel: "info" } : {}),
      pods: [
        { ...CLIENT, node: "n1", labels: { role: "client" }, ports: HTTP },
        { ...OTHER, node: "n2", labels: { app: "other" }, ports: HTTP },
        { ...LATE, node: "n1", labels: { app: "late" }, ports: HTTP },
        { ...WEB, node: "n3", labels: { app: "web" }, ports: HTTP },
        { ...WEB2, node: "n2", labels: { app: "web2" }, ports: HTTP },
      ],
    });
    await cluster.start();
    expect((await cluster.applyPolicy(POLICY)).ok).toBe(true);
    await converged("start");
    for (const [from, to] of DENIED) await settles(from, to, false);
    addresses = await apiAddresses();
    // The guard: the denied flows, probed one after another for as long as the suite runs (bounded).
    guard.done = (async () => {
      const t0 = Date.now();
      while (!guard.stop && guard.probes < 20_000 && Date.now() - t0 < 30 * 60_000) {
        for (const [from, to] of DENIED) {
          let ok = false;
          try {
            ok = (await probe(cluster.lab, from, podIP(to), 80, "TCP", 250)).ok;
            guard.probes++;
          } catch {
            guard.skipped++;
            await new Promise((r) => setTimeout(r, 50)); // a pod of a rebooting node: nothing to probe from yet
          }
          if (ok) violations.push(`${new Date().toISOString()} ${from.name} -> ${to.name}:80 answered${violations.length < 3 ? ` ${await whereIs(to)}` : ""}`);
        }
      }
    })();
  }, 240_000);

  afterAll(async () => {
    guard.stop = true;
    await guard.done;
    console.log(`fault suite: ${guard.probes} denied probes (${guard.skipped} skipped while a pod was down), ${violations.length} answered\n  ${[...figures, ...violations.slice(0, 20)].join("\n  ")}`);
    if (process.env["SYFT_KEEP_LOGS"]) await runCommand("cp", ["-r", `/tmp/switchyard-lab/${PREFIX}/logs`, process.env["SYFT_KEEP_LOGS"]]);
    await cluster?.close();
  }, 120_000);

  it("an agent killed with SIGKILL during a transaction: the node converges, nothing opens", async () => {
    // Injection timing: 0, 30 and 120 ms after the node's new plan is published (mid-apply, or just after).
    for (const [i, delayMs] of [0, 30, 120].entries()) {
      const before = (await cluster.nodeNetworks()).find((n) => n.metadata?.name === "n3")?.spec?.planHash;
      if (i % 2 === 0) expect((await cluster.applyPolicy(EXTRA)).ok).toBe(true);
      else await cluster.deletePolicy("y", "extra");
      await waitFor("n3's new plan to be published", async () => ((await cluster.nodeNetworks()).find((n) => n.metadata?.name === "n3")?.spec?.planHash !== before ? true : undefined), 30_000, 5);
      await new Promise((r) => setTimeout(r, delayMs));
      await cluster.killAgent("n3");
      await cluster.startAgent("n3");
      await converged(`kill -9 ${delayMs} ms into the apply`);
    }
    expect(violations).toEqual([]);
  }, 300_000);

  it("the API server away for 60 s, a node rebooting meanwhile: the saved plan is in force before the API is back", async () => {
    const t0 = Date.now();
    await cluster.stopApiServer();
    try {
      await cluster.restartNode("n3", {
        whileAgentDown: async () => {
          expect(await listSwitchyardTable(`${PREFIX}n3`)).toBeUndefined(); // a fresh node: no rules at all
        },
      });
      const restarted = Date.now();
      await waitFor("n3's policy table to be back from the saved plan", async () => ((await listSwitchyardTable(`${PREFIX}n3`)) !== undefined ? true : undefined), 30_000, 50);
      figures.push(`API away: n3's saved plan in force ${Date.now() - restarted} ms after its agent started, with no API server`);
      // The outage lasts its 60 s (the fault's length, not a wait for a condition).
      await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - t0))));
    } finally {
      const readyMs = await cluster.startApiServer();
      figures.push(`API away: kube-apiserver ready ${readyMs} ms after its restart`);
    }
    await converged("API away 60 s + n3 rebooted");
    expect(violations).toEqual([]);
  }, 300_000);

  it("every agent's watch stream stalled without closing: a policy change still reaches every node", async () => {
    const stalled = cluster.stallAgentConnections();
    expect(stalled).toBeGreaterThanOrEqual(3);
    expect(await reaches(LATE, WEB)).toBe(false);
    const t0 = Date.now();
    await cluster.labelPod(LATE.namespace, LATE.name, { role: "client" });
    await settles(LATE, WEB, true);
    figures.push(`watch stall: the change in force through stalled streams after ${Date.now() - t0} ms (${stalled} connections frozen)`);
    await converged("watch stall");
    expect(violations).toEqual([]);
  }, 300_000);

  it("a node's namespace restarted: its pods come back with their addresses, policy in force before they answer", async () => {
    await cluster.restartNode("n2");
    await waitFor("n2's pods to be back", async () => (["other", "web2"].every((n) => cluster.lab.pods.some((p) => p.name === n)) ? true : undefined), 120_000, 100);
    await converged("n2 restarted");
    for (const [from, to] of DENIED) await settles(from, to, false);
    expect(violations).toEqual([]);
    expect(await apiAddresses()).toEqual(addresses);
  }, 300_000);
});
