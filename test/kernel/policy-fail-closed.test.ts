// Kernel test: the policy stays closed through what an agent does to it. A change of backend (nftables <->
// iptables) under one long-lived denied session (a ping at 500/s: one ICMP id, one conntrack flow) never
// gets a reply; drift is judged against what was rendered, so a flushed FORWARD chain (iptables) or an
// accept rule slipped in before an incremental nft update is found and repaired rather than adopted as the
// baseline. The nodes and pods are network namespaces of the lab's topology builder: prefix syfc-.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand, runOk } from "../../src/base/exec";
import { compilePolicies, slicePolicyForNode, type NodePolicySlice } from "../../src/compile/policy";
import { sliceHash } from "../../src/compile/policy/slice";
import { policyBackend } from "../../src/agent/policy/backends";
import { putPolicyInForce } from "../../src/agent/policy/put-in-force";
import { listSwitchyardTable } from "../../src/agent/policy/nftables";
import { removeStaleScratchNetns } from "../../src/agent/policy/scratch";
import type { AppliedPolicy } from "../../src/agent/policy/backend";
import { probe, startPodAgent, type PodServer } from "../../lab/pods";
import { addPod, createLab, destroyLab, installStaticPodRoutes, podNetnsName, type Lab } from "../../lab/topology";
import { waitFor } from "../../src/base/wait";
import { buildNamespace, buildPod, buildPolicy, buildSnapshot } from "../support/policy-builders";

const PREFIX = "syfc-";
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("policy-fail-closed: skipped (needs root to create network namespaces)");

const SERVERS: PodServer[] = [{ port: 80, protocol: "TCP" }];
// a (a client the policy admits) and b (a client it does not) on n1; c (isolated) and d on n2.
const A = { namespace: "x", name: "a", node: "n1", ip: "10.0.0.10" };
const B = { namespace: "x", name: "b", node: "n1", ip: "10.0.0.11" };
const C = { namespace: "y", name: "c", node: "n2", ip: "10.0.0.20" };
const D = { namespace: "y", name: "d", node: "n2", ip: "10.0.0.21" };
const NODE2 = `${PREFIX}n2`;
const DENY_MS = 600;

/** n2's slice: y/c admits TCP 80 from pods labelled role=client, nothing else (ICMP included). */
function sliceFor(clients: readonly string[]): NodePolicySlice {
  const pods = [A, B, C, D].map((p) => buildPod(`${p.namespace}/${p.name}`, clients.includes(p.name) ? { role: "client" } : { app: p.name }, { node: p.node, ip: p.ip }));
  const policy = buildPolicy("y/only-clients", {
    podSelector: { matchLabels: { app: "c" } },
    policyTypes: ["Ingress"],
    ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }], ports: [{ protocol: "TCP", port: 80 }] }],
  });
  return slicePolicyForNode(compilePolicies(buildSnapshot([buildNamespace("x"), buildNamespace("y")], pods, [policy])), "n2");
}

async function reaches(lab: Lab, from: typeof A, to: typeof C): Promise<boolean> {
  return (await probe(lab, from, to.ip, 80, "TCP", DENY_MS)).ok;
}

describe.skipIf(!isRoot)("policy fails closed on the real kernel", () => {
  let lab: Lab;

  beforeAll(async () => {
    await destroyLab(PREFIX);
    lab = await createLab({ prefix: PREFIX, nodes: 2, subnets: 1, podBlocks: ["10.0.0.0/28", "10.0.0.16/28"] });
    for (const p of [A, B, C, D]) await addPod(lab, p);
    await installStaticPodRoutes(lab);
    await Promise.all([A, B, C].map((p) => startPodAgent(lab, p, SERVERS)));
  }, 120_000);

  afterAll(async () => {
    await destroyLab(PREFIX);
  });

  it("changes backend under a long-lived denied session without a single reply", async () => {
    const slice = sliceFor(["a"]);
    const hash = sliceHash(slice);
    const first = await putPolicyInForce(NODE2, slice, hash, "nftables", undefined, { removeOthers: true });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(await reaches(lab, A, C)).toBe(true);
    expect(await reaches(lab, B, C)).toBe(false);

    // One session: echo requests 2 ms apart for 10 s (ping slows down while none is answered) from b to the isolated c, all under one ICMP id.
    const session = runCommand("ping", ["-n", "-q", "-i", "0.002", "-c", "4000", "-w", "10", C.ip], { netns: podNetnsName(PREFIX, B.namespace, B.name), timeoutMs: 30_000 });
    let ended = false;
    void session.then(() => (ended = true));
    // It is under way (and dropped) once the isolated pod's default-deny counter moves.
    await waitFor("the ping session to hit the default deny", async () => ((await dropCount(NODE2)) > 50 ? true : undefined), 5_000, 20);
    expect(await policyBackend("nftables").droppedPackets(NODE2)).toBeGreaterThan(50);

    let previous: AppliedPolicy = first.applied;
    const switches: string[] = [];
    for (const to of ["iptables", "nftables", "iptables"] as const) {
      const r = await putPolicyInForce(NODE2, slice, hash, to, previous);
      expect(r.ok, r.ok ? "" : r.error).toBe(true);
      if (!r.ok) return;
      expect(r.removed).toEqual([to === "iptables" ? "nftables" : "iptables"]);
      previous = r.applied;
      switches.push(to);
    }
    expect(ended, "the session outlived the three backend changes").toBe(false);
    const result = await session;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(result.stdout);
    expect(m, result.stdout + result.stderr).not.toBeNull();
    const [sent, received] = [Number(m![1]), Number(m![2])];
    expect(switches).toEqual(["iptables", "nftables", "iptables"]);
    expect(sent).toBeGreaterThan(200);
    expect(received, `${received} of ${sent} echo requests answered across the backend changes`).toBe(0);
    // The iptables backend alone is in force now, and still right for fresh sessions; its drop counters
    // saw the session (what switchyard_agent_policy_dropped_packets_total reads).
    expect(await listSwitchyardTable(NODE2)).toBeUndefined();
    expect(await policyBackend("iptables").droppedPackets(NODE2)).toBeGreaterThan(0);
    expect(await reaches(lab, A, C)).toBe(true);
    expect(await reaches(lab, B, C)).toBe(false);
  }, 90_000);

  it("finds a flushed FORWARD chain and a removed set member (iptables) and repairs them", async () => {
    const slice = sliceFor(["a"]);
    const backend = policyBackend("iptables");
    const r = await putPolicyInForce(NODE2, slice, sliceHash(slice), "iptables", undefined, { removeOthers: true });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(await backend.inForce(NODE2, r.applied)).toBe(true);

    await runOk("iptables-nft", ["-F", "FORWARD"], { netns: NODE2 });
    expect(await reaches(lab, B, C)).toBe(true); // the drift matters: c is open
    expect(await backend.inForce(NODE2, r.applied)).toBe(false);
    const repaired = await backend.apply(NODE2, slice, r.applied.hash, undefined);
    expect(repaired.ok).toBe(true);
    expect(await backend.inForce(NODE2, r.applied)).toBe(true);
    expect(await reaches(lab, B, C)).toBe(false);

    // A set lost a member (a's address): a is shut out, and that is drift too.
    const sets = (await runOk("ipset", ["list", "-n"], { netns: NODE2 })).split("\n").filter((n) => n.startsWith("sy-"));
    const holder = [];
    for (const s of sets) if ((await runCommand("ipset", ["test", s, A.ip], { netns: NODE2 })).code === 0) holder.push(s);
    expect(holder.length).toBeGreaterThan(0);
    await runOk("ipset", ["del", holder[0]!, A.ip], { netns: NODE2 });
    expect(await backend.inForce(NODE2, r.applied)).toBe(false);
    await backend.apply(NODE2, slice, r.applied.hash, undefined);
    expect(await backend.inForce(NODE2, r.applied)).toBe(true);
    expect(await reaches(lab, A, C)).toBe(true);
  }, 90_000);

  it("does not adopt drift present at an incremental nftables update as its baseline", async () => {
    const before = sliceFor(["a"]);
    const after = sliceFor(["a", "d"]); // only a group's members change: an incremental update
    const nft = policyBackend("nftables");
    const first = await putPolicyInForce(NODE2, before, sliceHash(before), "nftables", undefined, { removeOthers: true });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    // Someone slips an accept-all into the forward chain, just before the next plan arrives.
    await runOk("nft", ["insert", "rule", "inet", "switchyard", "forward", "accept"], { netns: NODE2 });
    expect(await reaches(lab, B, C)).toBe(true);
    expect(await nft.inForce(NODE2, first.applied)).toBe(false);

    // The membership change goes in as a one-transaction set update (the policy's critical path) ...
    const second = await putPolicyInForce(NODE2, after, sliceHash(after), "nftables", first.applied);
    expect(second.ok).toBe(true);
    if (!second.ok) return;
    expect(second.change).toBe("incremental");
    // ... and the accept-all is still drift afterwards (not the baseline), so the repair timer replaces it.
    expect(await nft.inForce(NODE2, second.applied)).toBe(false);
    const repaired = await nft.apply(NODE2, after, second.applied.hash, undefined);
    expect(repaired.ok).toBe(true);
    expect(await reaches(lab, B, C)).toBe(false);
    expect(await nft.inForce(NODE2, second.applied)).toBe(true);

    // And drift after it is drift: an element added to the pods' allow set by hand.
    const listing = await listSwitchyardTable(NODE2);
    const peerSet = listing?.sets.find((s) => String(s["name"]).startsWith("g_"));
    expect(peerSet).toBeDefined();
    await runOk("nft", ["add", "element", "inet", "switchyard", String(peerSet!["name"]), `{ ${B.ip} }`], { netns: NODE2 });
    expect(await nft.inForce(NODE2, second.applied)).toBe(false);
  }, 90_000);

  it("removes scratch namespaces whose agent is gone, and only those", async () => {
    const dead = `sy-verify-999999999-1`;
    const alive = `sy-verify-${process.pid}-999999`;
    await runOk("ip", ["netns", "add", dead]);
    await runOk("ip", ["netns", "add", alive]);
    try {
      const removed = await removeStaleScratchNetns();
      expect(removed).toContain(dead);
      expect(removed).not.toContain(alive);
    } finally {
      await runCommand("ip", ["netns", "del", dead]);
      await runCommand("ip", ["netns", "del", alive]);
    }
  });
});

/** Packets the isolated pods' default-deny rules dropped so far (the nftables backend's counters). */
async function dropCount(netns: string): Promise<number> {
  const listing = await listSwitchyardTable(netns);
  let n = 0;
  for (const rule of listing?.rules ?? []) {
    if (!String(rule["comment"] ?? "").startsWith("default deny")) continue;
    for (const e of (rule["expr"] as { counter?: { packets: number } }[] | undefined) ?? []) n += e.counter?.packets ?? 0;
  }
  return n;
}
