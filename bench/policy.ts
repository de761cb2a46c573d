// bench/policy: the policy engine's cost, measured side by side in one run.
//   (a) pod-to-pod TCP throughput through the receiving node with 1,000 policies and 10,000 peer IPs
//       installed, as a ratio to no policy, next to the same traffic through a linear iptables chain of
//       10,000 rules (the baseline per-peer engines are measured against), interleaved rounds;
//   (b) compile time and memory for 50,000 pods / 5,000 policies / 1,000 nodes;
//   (c) time to apply a full ruleset, and one group-membership change.
// Run: `npx tsx bench/policy.ts [--rounds N] [--seconds S] [--skip-throughput]` (root; builds a lab `sybp-`).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { runCommand, runOk } from "../src/base/exec";
import { applyIpsetUpdate, applyIptables, removeIptables } from "../src/agent/policy/iptables";
import { applyNftRuleset, applyNftSetUpdate, nftablesBackend, removeSwitchyardTable } from "../src/agent/policy/nftables";
import type { AppliedPolicy } from "../src/agent/policy/backend";
import { sliceHash } from "../src/compile/policy/slice";
import { compilePolicies, type NodePolicySlice, slicePolicyForNode } from "../src/compile/policy";
import type { PodInfo, PolicySnapshot } from "../src/model/cluster";
import { podInterfaceName } from "../src/model/names";
import { ipsetName, renderIptables } from "../src/render/iptables";
import { renderNftables, renderNftablesSetUpdate } from "../src/render/nftables";
import { addPod, createLab, destroyLab, findLabPod, installStaticPodRoutes, type Lab } from "../lab/topology";
import { BENCH_CLIENT, BENCH_PORT, BENCH_SERVER, buildScaleSnapshot, buildThroughputSnapshot } from "./policy-workloads";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "3" },
    "skip-throughput": { type: "boolean", default: false },
    policies: { type: "string", default: "1000" },
    peers: { type: "string", default: "10000" },
  },
});
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const PREFIX = "sybp-";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (n: number, d = 2): string => n.toFixed(d);

function benchCompileAtScale(): void {
  console.log("\n## (b) compile at scale: 50,000 pods / 5,000 policies / 1,000 nodes");
  const snapshot = buildScaleSnapshot();
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const model = compilePolicies(snapshot);
  const t1 = performance.now();
  let maxSlice = 0;
  let totalSlice = 0;
  let serialize = 0;
  for (let n = 0; n < 1000; n++) {
    const slice = slicePolicyForNode(model, `n${n}`);
    const ts = performance.now();
    const size = JSON.stringify(slice).length;
    serialize += performance.now() - ts;
    maxSlice = Math.max(maxSlice, size);
    totalSlice += size;
  }
  const t2 = performance.now();
  const heap1 = process.memoryUsage().heapUsed;
  console.log(`| step | time |`);
  console.log(`|---|---|`);
  console.log(`| compilePolicies (groups, rules, spans) | ${fmt((t1 - t0) / 1000)} s |`);
  console.log(`| slicePolicyForNode x 1,000 nodes (incl. JSON.stringify of each slice, ${fmt(serialize / 1000)} s) | ${fmt((t2 - t1) / 1000)} s |`);
  console.log(`| full compile (both) | **${fmt((t2 - t0) / 1000)} s** |`);
  console.log(`heap growth ${fmt((heap1 - heap0) / 2 ** 20, 0)} MiB (rss ${fmt(process.memoryUsage().rss / 2 ** 20, 0)} MiB); ${model.appliedToGroups.length} applied-to groups, ${model.peerGroups.length} peer groups; largest node slice ${fmt(maxSlice / 1024, 1)} KiB, mean ${fmt(totalSlice / 1000 / 1024, 1)} KiB (etcd limit ~1,536 KiB)`);
}

/** `add`/`del` lines on the ipsets that turn `a`'s address/cidr group members into `b`'s (same groups in both). */
function ipsetDiff(a: NodePolicySlice, b: NodePolicySlice): string {
  const before = new Map(a.groups.flatMap((g) => (g.kind === "named-port" ? [] : [[g.id, new Set(g.members)] as const])));
  const lines: string[] = [];
  for (const g of b.groups) {
    if (g.kind === "named-port") continue;
    const old = before.get(g.id) ?? new Set<string>();
    const now = new Set(g.members);
    for (const m of old) if (!now.has(m)) lines.push(`del ${ipsetName(g)} ${m}`);
    for (const m of now) if (!old.has(m)) lines.push(`add ${ipsetName(g)} ${m}`);
  }
  if (lines.length === 0) throw new Error("a membership change did not change any ipset");
  return `${lines.join("\n")}\n`;
}

async function iperfOnce(lab: Lab): Promise<number> {
  const client = findLabPod(lab, BENCH_CLIENT);
  const r = await runCommand("iperf3", ["-c", BENCH_SERVER.ip, "-p", String(BENCH_PORT), "-t", String(SECONDS), "-J"], { netns: client.netns, timeoutMs: (SECONDS + 15) * 1000 });
  if (r.code !== 0) throw new Error(`iperf3 failed: ${r.stderr || r.stdout.slice(0, 300)}`);
  const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  return (j.end?.sum_received?.bits_per_second ?? 0) / 1e9;
}

/** A linear chain of one rule per peer, with no conntrack fast path: the classic per-peer iptables layout. */
function linearRestore(peers: readonly string[], serverIf: string): string {
  const lines = ["*filter", ":BENCH-LINEAR - [0:0]", `-A FORWARD -o ${serverIf} -j BENCH-LINEAR`];
  for (const p of peers) lines.push(`-A BENCH-LINEAR -s ${p}/32 -p tcp --dport ${BENCH_PORT} -j ACCEPT`);
  lines.push(`-A BENCH-LINEAR -s ${BENCH_CLIENT.ip}/32 -p tcp --dport ${BENCH_PORT} -j ACCEPT`, "-A BENCH-LINEAR -j DROP", "COMMIT", "");
  return lines.join("\n");
}
async function removeLinear(netns: string): Promise<void> {
  const serverIf = podInterfaceName(BENCH_SERVER.namespace, BENCH_SERVER.name);
  await runCommand("iptables-nft", ["-D", "FORWARD", "-o", serverIf, "-j", "BENCH-LINEAR"], { netns });
  await runCommand("iptables-nft", ["-F", "BENCH-LINEAR"], { netns });
  await runCommand("iptables-nft", ["-X", "BENCH-LINEAR"], { netns });
}

async function benchLab(): Promise<void> {
  const nPolicies = Number(args.policies);
  const nPeers = Number(args.peers);
  const snapshot = buildThroughputSnapshot(nPolicies, nPeers);
  const slice = slicePolicyForNode(compilePolicies(snapshot), BENCH_SERVER.node);
  const nftText = renderNftables(slice);
  const ipt = renderIptables(slice);
  const peers = snapshot.pods.filter((p) => p.namespace === "peers").map((p) => p.ip!);
  await destroyLab(PREFIX);
  const lab = await createLab({ prefix: PREFIX, nodes: 2, subnets: 1, podBlocks: ["10.244.1.0/24", "10.244.2.0/24"] });
  const dir = mkdtempSync(join(tmpdir(), "sy-bench-"));
  let serverPid: number | undefined;
  try {
    await addPod(lab, BENCH_CLIENT);
    await addPod(lab, BENCH_SERVER);
    await installStaticPodRoutes(lab);
    const n2 = lab.nodes.find((n) => n.name === BENCH_SERVER.node)!.netns;
    const server = findLabPod(lab, BENCH_SERVER);
    const pidFile = join(dir, "iperf3.pid");
    await runOk("ip", ["netns", "exec", server.netns, "iperf3", "-s", "-p", String(BENCH_PORT), "-D", "--pidfile", pidFile], { timeoutMs: 10_000 });
    for (let i = 0; i < 100 && serverPid === undefined; i++) {
      try {
        serverPid = Number(readFileSync(pidFile, "utf8").trim()) || undefined;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }

    const clear = async (): Promise<void> => {
      await removeSwitchyardTable(n2);
      await removeIptables(n2);
      await removeLinear(n2);
    };
    type Case = { name: string; setup: () => Promise<void> };
    const cases: Case[] = [
      { name: "no policy (baseline)", setup: clear },
      {
        name: `switchyard nftables: ${nPolicies} policies, ${nPeers} peer IPs`,
        setup: async () => {
          await clear();
          const r = await applyNftRuleset(n2, nftText);
          if (!r.ok) throw new Error(r.error);
        },
      },
      {
        name: `switchyard iptables+ipset: ${nPolicies} policies, ${nPeers} peer IPs`,
        setup: async () => {
          await clear();
          const r = await applyIptables(n2, ipt);
          if (!r.ok) throw new Error(`${r.stage}: ${r.error}`);
        },
      },
      {
        name: `linear iptables-nft chain: ${nPeers} rules, no conntrack fast path`,
        setup: async () => {
          await clear();
          await runOk("iptables-nft-restore", ["--noflush"], { netns: n2, stdin: linearRestore(peers, podInterfaceName(BENCH_SERVER.namespace, BENCH_SERVER.name)), timeoutMs: 60_000 });
        },
      },
    ];
    if (!args["skip-throughput"]) {
      console.log(`\n## (a) pod-to-pod TCP throughput through the receiving node (${ROUNDS} interleaved rounds x ${SECONDS} s)`);
      const results = new Map<string, number[]>(cases.map((c) => [c.name, []]));
      for (let round = 1; round <= ROUNDS; round++) {
        for (const c of cases) {
          await c.setup();
          const g = await iperfOnce(lab);
          results.get(c.name)!.push(g);
          process.stderr.write(`round ${round}: ${c.name}: ${fmt(g)} Gbit/s\n`);
        }
      }
      const base = median(results.get(cases[0]!.name)!);
      console.log("| case | median Gbit/s | ratio to no policy |");
      console.log("|---|---|---|");
      for (const c of cases) {
        const m = median(results.get(c.name)!);
        console.log(`| ${c.name} | ${fmt(m)} | **${fmt(m / base)}** |`);
      }
    }

    console.log(`\n## (c) apply times on a lab node (${nPolicies} policies, ${nPeers} peer IPs; wall clock incl. process start)`);
    await clear();
    const full: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = await applyNftRuleset(n2, nftText);
      if (!r.ok) throw new Error(r.error);
      full.push(performance.now() - t);
    }
    // One membership change: a new peer pod joins group g0 (and leaves again), as a pod label change would do.
    const extra: PodInfo = { namespace: "peers", name: "newcomer", labels: { grp: "g0" }, node: "far0", ip: "10.250.0.1", hostNetwork: false, ports: [] };
    const withExtra: PolicySnapshot = { ...snapshot, pods: [...snapshot.pods, extra] };
    const sliceB = slicePolicyForNode(compilePolicies(withExtra), BENCH_SERVER.node);
    const add = renderNftablesSetUpdate(slice, sliceB);
    const del = renderNftablesSetUpdate(sliceB, slice);
    if (add === undefined || del === undefined) throw new Error("a membership change did not render as a set update");
    const member: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const r = await applyNftSetUpdate(n2, i % 2 === 0 ? add : del);
      if (!r.ok) throw new Error(r.error);
      member.push(performance.now() - t);
    }
    await clear();
    const iptFull: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const r = await applyIptables(n2, ipt);
      if (!r.ok) throw new Error(r.error);
      iptFull.push(performance.now() - t);
    }
    // The cases inside that median, apart: a fresh apply (no sets or chains yet), and one where every set's
    // members change (every peer address moved), alternating with the original ruleset.
    const iptFresh: number[] = [];
    const iptChanged: number[] = [];
    const moved: NodePolicySlice = { ...slice, groups: slice.groups.map((g) => (g.kind === "address" ? { ...g, members: g.members.map((m) => m.replace(/^10\.200\./, "10.210.")) } : g)) };
    const iptMoved = renderIptables(moved);
    for (let i = 0; i < 3; i++) {
      await clear();
      let t = performance.now();
      let r = await applyIptables(n2, ipt);
      if (!r.ok) throw new Error(r.error);
      iptFresh.push(performance.now() - t);
      t = performance.now();
      r = await applyIptables(n2, iptMoved);
      if (!r.ok) throw new Error(r.error);
      iptChanged.push(performance.now() - t);
    }
    await applyIptables(n2, ipt);
    // The same membership change through the iptables backend: `add`/`del` on the live ipset (the renderer
    // has no incremental form; the script is the element diff of the two slices' groups).
    const ipsetAdd = ipsetDiff(slice, sliceB);
    const ipsetDel = ipsetDiff(sliceB, slice);
    const iptMember: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const r = await applyIpsetUpdate(n2, i % 2 === 0 ? ipsetAdd : ipsetDel);
      if (!r.ok) throw new Error(r.error);
      iptMember.push(performance.now() - t);
    }
    // Through the agent's backend (what an apply costs the agent): the same kernel calls; drift is judged on
    // the repair timer against the rendered reference, which the first check after a change takes (the
    // slice applied once in a scratch namespace and listed) and later checks reuse.
    await clear();
    const backendFull: number[] = [];
    const backendMember: number[] = [];
    const firstCheck: number[] = [];
    const laterCheck: number[] = [];
    const hashA = sliceHash(slice);
    const hashB = sliceHash(sliceB);
    let previous: AppliedPolicy | undefined;
    for (let i = 0; i < 5; i++) {
      await clear();
      const t = performance.now();
      const r = await nftablesBackend.apply(n2, slice, hashA, undefined);
      if (!r.ok) throw new Error(r.error);
      backendFull.push(performance.now() - t);
      previous = r.applied;
    }
    for (let i = 0; i < 6; i++) {
      // Each round a slice the reference cache has not seen (the peer address differs), as a real change is.
      const next = i % 2 === 0 ? ({ ...sliceB, groups: sliceB.groups.map((g) => ({ ...g, members: g.members.map((m) => (m === "10.250.0.1" ? `10.250.0.${i + 2}` : m)) })) } as NodePolicySlice) : slice;
      const t = performance.now();
      const r = await nftablesBackend.apply(n2, next, i % 2 === 0 ? `${hashB}-${i}` : `${hashA}-${i}`, previous);
      if (!r.ok) throw new Error(r.error);
      if (r.change !== "incremental") throw new Error(`a membership change went ${r.change}`);
      backendMember.push(performance.now() - t);
      previous = r.applied;
      let d = performance.now();
      if (!(await nftablesBackend.inForce(n2, r.applied))) throw new Error("not in force right after the apply");
      firstCheck.push(performance.now() - d);
      d = performance.now();
      if (!(await nftablesBackend.inForce(n2, r.applied))) throw new Error("not in force on the second check");
      laterCheck.push(performance.now() - d);
    }
    console.log("| operation | median ms |");
    console.log("|---|---|");
    console.log(`| nft: full ruleset, one transaction (${fmt(nftText.length / 1024, 0)} KiB) | ${fmt(median(full), 1)} |`);
    console.log(`| nft: one membership change (set element add/delete) | **${fmt(median(member), 1)}** |`);
    console.log(`| iptables-restore + ipset: full ruleset (median of 3 applies after a clear) | ${fmt(median(iptFull), 1)} |`);
    console.log(`| iptables-restore + ipset: full ruleset, fresh (no sets or chains yet) | ${fmt(median(iptFresh), 1)} |`);
    console.log(`| iptables-restore + ipset: full ruleset, every set's members changed | ${fmt(median(iptChanged), 1)} |`);
    console.log(`| ipset: one membership change (ipset add/del) | **${fmt(median(iptMember), 1)}** |`);
    console.log(`| agent's nftables backend: whole ruleset | ${fmt(median(backendFull), 1)} (x${fmt(median(backendFull) / median(full))} the bare transaction) |`);
    console.log(`| agent's nftables backend: one membership change | ${fmt(median(backendMember), 1)} (x${fmt(median(backendMember) / median(member))} the bare update) |`);
    console.log(`| repair timer: first drift check after a change (takes the rendered reference in a scratch namespace) | ${fmt(median(firstCheck), 1)} |`);
    console.log(`| repair timer: later drift checks (live listing against the cached reference) | ${fmt(median(laterCheck), 1)} |`);
    await clear();
  } finally {
    if (serverPid !== undefined) {
      try {
        process.kill(serverPid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
    await destroyLab(PREFIX);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`# bench/policy (${new Date().toISOString()}, ${process.version})`);
  benchCompileAtScale();
  await benchLab();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
