// Kernel test: a pod never runs unprotected. A pod that a default-deny policy isolates (ingress and
// egress) is wired by switchyard-cni while traffic to and from it is already being sent, first before
// its node's plan has it (its interface is unknown to the policy table), then with its default-deny
// chains in force: from its first packet it sends and receives nothing, on both policy backends. The
// listeners and senders run before ADD is even started: the pod's own ones in its network namespace
// (before it has an interface), the peer's toward the pod's static address. Controls (a peer pair that is
// not isolated) show the probes work, and the drop counters show it was the policy table that dropped.
// Namespaces: prefix sycf2-.
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand, runOk } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import { compilePolicies, slicePolicyForNode } from "../../src/compile/policy";
import type { PodInfo } from "../../src/model/cluster";
import { policyBackend } from "../../src/agent/policy/backends";
import type { AppliedPolicy, PolicyBackendName } from "../../src/agent/policy/backend";
import { sliceHash } from "../../src/compile/policy/slice";
import { addPod, createLab, destroyLab, installStaticPodRoutes, podNetnsName, removePod, type Lab } from "../../lab/topology";
import { cniAdd, labCniDirs } from "../../lab/cni-runtime";
import { podInterfaceName } from "../../src/model/names";
import { buildNamespace, buildPod, buildPolicy, buildSnapshot } from "../support/policy-builders";

const PREFIX = "sycf2-";
const PORT = 7070;
/** The control pair's port (p2 -> p1, not isolated): shows the probes get through where policy allows. */
const CONTROL_PORT = 7071;
/** Every sender stops after this long (and at most this many datagrams): the loops are bounded. */
const SEND_MS = 6_000;
const SEND_EVERY_MS = 5;

// n1: the isolated pod (iso/x) and a peer (open/p1); n2: the peer that probes it (open/p2).
const X = { namespace: "iso", name: "x", node: "n1", ip: "10.0.1.50" };
const P1 = { namespace: "open", name: "p1", node: "n1", ip: "10.0.1.10" };
const P2 = { namespace: "open", name: "p2", node: "n2", ip: "10.0.2.10" };

const DEFAULT_DENY = buildPolicy("iso/default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });

function podInfo(p: typeof X, withIp: boolean): PodInfo {
  return buildPod(`${p.namespace}/${p.name}`, { app: p.name }, { node: p.node, ...(withIp ? { ip: p.ip } : {}) });
}

/** The node slices for the given pods (and the default-deny policy in iso). */
function slices(pods: readonly PodInfo[]) {
  const model = compilePolicies(buildSnapshot([buildNamespace("iso"), buildNamespace("open")], pods, [DEFAULT_DENY]));
  return { n1: slicePolicyForNode(model, "n1"), n2: slicePolicyForNode(model, "n2") };
}

// A receiver counting UDP datagrams on PORT until killed; a sender of `count` datagrams (errors such as
// "network unreachable" before the pod has an interface are counted as not sent, and it goes on).
const RECEIVER = `
import socket, sys, signal
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.2)
n = 0
def done(*_):
    print(n, flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, done)
print("listening", flush=True)
while True:
    try:
        s.recvfrom(2048); n += 1
    except socket.timeout:
        pass
`;
const SENDER = `
import socket, sys, time
dst, port, count, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
deadline = time.time() + count * every + 2
for i in range(count):
    if time.time() > deadline: break
    try:
        s.sendto(b"x", (dst, port)); sent += 1
    except OSError:
        pass
    time.sleep(every)
print(sent, flush=True)
`;

interface Running {
  readonly child: ChildProcess;
  readonly output: Promise<string>;
}

function start(netns: string, script: string, args: readonly string[] = []): Running {
  const child = spawn("ip", ["netns", "exec", netns, "python3", "-c", script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  const output = new Promise<string>((resolve) => child.on("close", () => resolve(out)));
  return { child, output };
}

async function startReceiver(netns: string, port = PORT): Promise<Running> {
  const r = start(netns, RECEIVER, [String(port)]);
  let seen = "";
  r.child.stdout!.on("data", (b: Buffer) => (seen += b.toString()));
  await waitFor(`a receiver in ${netns}`, () => seen.includes("listening"), 5_000, 20);
  return r;
}

async function received(r: Running): Promise<number> {
  r.child.kill("SIGTERM");
  const out = await r.output;
  return Number(out.trim().split("\n").at(-1));
}

async function sent(r: Running): Promise<number> {
  return Number((await r.output).trim().split("\n").at(-1));
}

/** Packets the "not in this node's plan" rules dropped on a node, per backend. */
async function unknownInterfaceDrops(backend: PolicyBackendName, netns: string): Promise<number> {
  if (backend === "nftables") {
    const listing = JSON.parse(await runOk("nft", ["-j", "list", "chain", "inet", "switchyard", "forward"], { netns })) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] };
    return listing.nftables.filter((o) => o.rule?.comment?.includes("not in this node's plan")).reduce((n, o) => n + (o.rule!.expr.find((e) => e.counter)?.counter?.packets ?? 0), 0);
  }
  const out = await runOk("iptables", ["-w", "-L", "SY-FROM-POD", "-v", "-x", "-n"], { netns });
  const out2 = await runOk("iptables", ["-w", "-L", "SY-TO-POD", "-v", "-x", "-n"], { netns });
  return [out, out2].reduce((n, text) => n + text.split("\n").filter((l) => l.includes("DROP")).reduce((m, l) => m + Number(l.trim().split(/\s+/)[0]), 0), 0);
}

describe.each(["nftables", "iptables"] as const)("a pod wired by switchyard-cni never runs unprotected (%s)", (backendName) => {
  let lab: Lab;
  const backend = policyBackend(backendName);
  const applied: Record<string, AppliedPolicy | undefined> = {};

  async function applySlices(pods: readonly PodInfo[]): Promise<void> {
    const s = slices(pods);
    for (const node of ["n1", "n2"] as const) {
      const r = await backend.apply(`${PREFIX}${node}`, s[node], sliceHash(s[node]), applied[node]);
      if (!r.ok) throw new Error(r.error);
      applied[node] = r.applied;
    }
  }

  beforeAll(async () => {
    await destroyLab(PREFIX);
    lab = await createLab({ prefix: PREFIX, nodes: 2, subnets: 1, podBlocks: ["10.0.1.0/24", "10.0.2.0/24"] });
    for (const p of [P1, P2]) await addPod(lab, p);
    // The pods' routes between nodes (lab-only static routes; x's is added once it exists).
    await installStaticPodRoutes(lab);
    await applySlices([podInfo(P1, true), podInfo(P2, true)]);
  }, 60_000);

  afterAll(async () => {
    await destroyLab(PREFIX);
  });

  it("sends and receives nothing from its first packet: before its plan has it, and under its default deny", async () => {
    const xNetns = podNetnsName(PREFIX, X.namespace, X.name);
    await runOk("ip", ["netns", "add", xNetns]);
    // Receivers everywhere, then senders: into x from both peers, out of x to both peers, and a control
    // pair (p2 -> p1) that no policy isolates. All of it runs before ADD starts.
    const recvX = await startReceiver(xNetns);
    const recvP1 = await startReceiver(`${PREFIX}p-open-p1`);
    const recvP2 = await startReceiver(`${PREFIX}p-open-p2`);
    const recvControl = await startReceiver(`${PREFIX}p-open-p1`, CONTROL_PORT);
    const count = String(Math.floor(SEND_MS / SEND_EVERY_MS));
    const every = String(SEND_EVERY_MS / 1000);
    const port = String(PORT);
    const senders = {
      p1ToX: start(`${PREFIX}p-open-p1`, SENDER, [X.ip, port, count, every]),
      p2ToX: start(`${PREFIX}p-open-p2`, SENDER, [X.ip, port, count, every]),
      xToP1: start(xNetns, SENDER, [P1.ip, port, count, every]),
      xToP2: start(xNetns, SENDER, [P2.ip, port, count, every]),
      control: start(`${PREFIX}p-open-p2`, SENDER, [P1.ip, String(CONTROL_PORT), count, every]),
    };
    try {
      // 1. The runtime wires x (the node's plan does not have it yet: no wait for policy in this lab).
      const node = lab.nodes.find((n) => n.name === X.node)!;
      const added = await cniAdd({ nodeNetns: node.netns, dirs: labCniDirs(lab.runDir, X.node), containerId: xNetns, podNetns: xNetns, namespace: X.namespace, name: X.name, ip: X.ip });
      expect(added.ip).toBe(X.ip);
      lab.pods.push({ ...X, netns: xNetns, hostInterface: podInterfaceName(X.namespace, X.name), mtu: lab.podMtu });
      await installStaticPodRoutes(lab);
      // x now has an interface and routes both ways; the unknown-interface rules are all that stop it.
      await waitFor("packets from and to x to be dropped as an unknown pod interface", async () => (await unknownInterfaceDrops(backendName, node.netns)) > 0, 5_000, 50);
      // 2. The plan gets x (scheduled, then addressed), isolated by iso/default-deny.
      await applySlices([podInfo(P1, true), podInfo(P2, true), podInfo(X, false)]);
      await applySlices([podInfo(P1, true), podInfo(P2, true), podInfo(X, true)]);
      const [sentP1ToX, sentP2ToX, sentXToP1, sentXToP2, sentControl] = await Promise.all([senders.p1ToX, senders.p2ToX, senders.xToP1, senders.xToP2, senders.control].map(sent)) as [number, number, number, number, number];
      // The senders did send, from x too once it had an interface (the datagrams existed and were dropped).
      expect(sentP1ToX).toBeGreaterThan(100);
      expect(sentP2ToX).toBeGreaterThan(100);
      expect(sentXToP1 + sentXToP2).toBeGreaterThan(100);
      expect(sentControl).toBeGreaterThan(100);
      const [inX, inP1, inP2, inControl] = await Promise.all([recvX, recvP1, recvP2, recvControl].map(received));
      expect(inX, "datagrams x received").toBe(0);
      expect(inP1, "datagrams p1 received from x").toBe(0);
      expect(inP2, "datagrams p2 received from x").toBe(0);
      expect(inControl, "the control pair (not isolated) gets through").toBeGreaterThan(sentControl / 2);
    } finally {
      for (const r of [recvX, recvP1, recvP2, recvControl, ...Object.values(senders)]) r.child.kill("SIGKILL");
      await removePod(lab, X).catch(() => undefined);
      await runCommand("ip", ["netns", "del", xNetns]);
    }
  }, 60_000);
});
