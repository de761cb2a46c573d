// bench/datapath: (1) pod-to-pod TCP throughput of each mode as a ratio to host-gw, measured in
// interleaved rounds in one run (every mode once per round), on two lab nodes of one subnet, programmed by
// the real agent (applyRoutingPlan, BIRD for bgp); ipip needs the qemu kernel and is reported as skipped
// here; (2) the agent's time to apply a full plan for a 1,000-node cluster (999 peers: routes, and for
// VXLAN also FDB + neighbour entries), an unchanged re-apply, and a one-peer change.
// Run: `npx tsx bench/datapath.ts [--rounds N] [--seconds S] [--peers 999]` (root; lab prefix sybd-).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ClusterNetworkSpecSchema, type Mode } from "../src/api/cluster-network";
import { applyBirdConfig, stopBird } from "../src/agent/bird";
import { runCommand, runOk } from "../src/base/exec";
import { waitFor } from "../src/base/wait";
import { applyRoutingPlan } from "../src/agent/routing/apply";
import { compileRoutingPlan } from "../src/compile/routing/compile-routing";
import type { RoutingNode, RoutingPlan } from "../src/model/routing-plan";
import { addPod, createLab, destroyLab, findLabPod, type Lab } from "../lab/topology";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "3" }, seconds: { type: "string", default: "3" }, peers: { type: "string", default: "999" }, "skip-throughput": { type: "boolean", default: false } } });
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const PREFIX = "sybd-";
const fmt = (n: number, d = 2) => n.toFixed(d);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function plansFor(lab: Lab, mode: Mode): Map<string, RoutingPlan> {
  const spec = ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode, ...(mode === "bgp" ? { bgp: { asNumber: 64512 } } : {}) });
  const nodes: RoutingNode[] = lab.nodes.map((n, i) => ({ name: n.name, labels: {}, ip: n.ip, underlayCIDR: `192.168.${10 * (n.subnet + 1)}.0/24`, block: `10.244.${i + 1}.0/24`, mode }));
  return new Map(nodes.map((n) => [n.name, compileRoutingPlan({ spec, nodes, modesInUse: [mode] }, n.name)]));
}

async function throughput(): Promise<void> {
  await destroyLab(PREFIX);
  const lab = await createLab({ prefix: PREFIX, nodes: 2, subnets: 1, podMtu: 1450, podBlocks: ["10.244.1.0/24", "10.244.2.0/24"] });
  const dir = mkdtempSync(join(tmpdir(), "sy-bd-"));
  let serverPid: number | undefined;
  try {
    const client = { namespace: "b", name: "client", node: "n1", ip: "10.244.1.10", mtu: 1450 };
    const server = { namespace: "b", name: "server", node: "n2", ip: "10.244.2.10", mtu: 1450 };
    await addPod(lab, client);
    await addPod(lab, server);
    const pidFile = join(dir, "iperf3.pid");
    await runOk("ip", ["netns", "exec", findLabPod(lab, server).netns, "iperf3", "-s", "-D", "--pidfile", pidFile]);
    await waitFor("iperf3 pid file", () => {
      try {
        return Number(readFileSync(pidFile, "utf8").trim()) || undefined;
      } catch {
        return undefined;
      }
    }, 5000).then((p) => (serverPid = p));
    const modes: Mode[] = ["host-gw", "vxlan", "bgp"];
    const results = new Map<Mode, number[]>(modes.map((m) => [m, []]));
    const birds = lab.nodes.map((n) => ({ netns: n.netns, runDir: join(dir, `bird-${n.name}`) }));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of modes) {
        const plans = plansFor(lab, mode);
        for (const n of lab.nodes) {
          const r = await applyRoutingPlan(n.netns, plans.get(n.name)!);
          if (!r.ok) throw new Error(`${mode} on ${n.name}: ${r.errors.map((e) => e.message).join("; ")}`);
        }
        if (mode === "bgp") {
          for (const [i, n] of lab.nodes.entries()) {
            const b = await applyBirdConfig(birds[i]!, plans.get(n.name)!.bgp!);
            if (!b.ok) throw new Error(b.message);
          }
          await waitFor("BGP routes", async () => {
            const r = await runCommand("ip", ["-j", "route", "show", "proto", "bird"], { netns: lab.nodes[0]!.netns });
            return r.stdout.includes("10.244.2.0") ? true : undefined;
          }, 15_000, 50);
        } else {
          for (const b of birds) await stopBird(b);
        }
        const r = await runCommand("iperf3", ["-c", server.ip, "-t", String(SECONDS), "-J"], { netns: findLabPod(lab, client).netns, timeoutMs: (SECONDS + 15) * 1000 });
        const gbps = ((JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } }).end?.sum_received?.bits_per_second ?? 0) / 1e9;
        results.get(mode)!.push(gbps);
        process.stderr.write(`round ${round}: ${mode} ${fmt(gbps)} Gbit/s\n`);
      }
    }
    for (const b of birds) await stopBird(b);
    const base = median(results.get("host-gw")!);
    console.log(`\n## (1) pod-to-pod TCP throughput by mode (${ROUNDS} interleaved rounds x ${SECONDS} s, 2 lab nodes, pod MTU 1450)`);
    console.log("| mode | median Gbit/s | ratio to host-gw |");
    console.log("|---|---|---|");
    for (const m of modes) console.log(`| ${m} | ${fmt(median(results.get(m)!))} | **${fmt(median(results.get(m)!) / base)}** |`);
    console.log("| ipip | - | not measurable here: this kernel has no ipip module (its data path is checked in the qemu kernel, hack/qemu-ipip.sh) |");
  } finally {
    if (serverPid) {
      try {
        process.kill(serverPid, "SIGTERM");
      } catch {
        /* gone */
      }
    }
    await destroyLab(PREFIX);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function applyAtScale(): Promise<void> {
  const peers = Number(args.peers);
  const ns = `${PREFIX}scale`;
  const peerNs = `${PREFIX}scale-peer`;
  await runCommand("ip", ["netns", "del", ns]);
  await runCommand("ip", ["netns", "del", peerNs]);
  await runOk("ip", ["netns", "add", ns]);
  await runOk("ip", ["netns", "add", peerNs]);
  try {
    // One underlay link (a veth between two namespaces, never the root one) holding a /16 for 1,000 nodes.
    await runOk("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peerNs]);
    await runOk("ip", ["-n", ns, "addr", "add", "172.31.0.1/16", "dev", "eth0"]);
    await runOk("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    await runOk("ip", ["-n", ns, "link", "set", "lo", "up"]);
    await runOk("ip", ["-n", peerNs, "link", "set", "eth0", "up"]);
    const ip = (i: number) => `172.31.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`;
    const nodes = (count: number): RoutingNode[] =>
      Array.from({ length: count + 1 }, (_, i) => ({ name: `n${String(i).padStart(4, "0")}`, labels: {}, ip: ip(i), underlayCIDR: "172.31.0.0/16", block: `10.${Math.floor(i / 256)}.${i % 256}.0/24`, mode: "vxlan" as Mode }));
    console.log(`\n## (2) agent apply time for one node of a ${peers + 1}-node cluster (wall clock, incl. reading kernel state)`);
    console.log("| mode | first apply | unchanged re-apply | one peer added |");
    console.log("|---|---|---|---|");
    for (const mode of ["vxlan", "host-gw"] as Mode[]) {
      const spec = ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.0.0.0/8"], blockSize: 24, mode });
      const all = nodes(peers).map((n) => ({ ...n, mode }));
      const self = all[0]!.name;
      const plan = compileRoutingPlan({ spec, nodes: all, modesInUse: [mode] }, self);
      const first = await applyRoutingPlan(ns, plan);
      if (!first.ok) throw new Error(first.errors.map((e) => e.message).join("; "));
      const again = await applyRoutingPlan(ns, plan);
      const changes = Object.values(again.changes).reduce((a, b) => a + b, 0);
      const more = nodes(peers + 1).map((n) => ({ ...n, mode }));
      const plus = await applyRoutingPlan(ns, compileRoutingPlan({ spec, nodes: more, modesInUse: [mode] }, self));
      console.log(`| ${mode} (${plan.routes.length} routes${mode === "vxlan" ? `, ${plan.fdb.length} FDB, ${plan.neighbors.length} neighbours` : ""}) | ${fmt(first.durationMs, 0)} ms | ${fmt(again.durationMs, 0)} ms (${changes} changes) | ${fmt(plus.durationMs, 0)} ms |`);
      // Clean between modes so each first apply starts empty.
      await applyRoutingPlan(ns, { ...plan, routes: [], fdb: [], neighbors: [], devices: {}, nat: { ...plan.nat, enabled: false } } as RoutingPlan);
    }
  } finally {
    await runCommand("ip", ["netns", "del", ns]);
    await runCommand("ip", ["netns", "del", peerNs]);
  }
}

async function main(): Promise<void> {
  console.log(`# bench/datapath (${new Date().toISOString()}, ${process.version})`);
  if (!args["skip-throughput"]) await throughput();
  await applyAtScale();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
