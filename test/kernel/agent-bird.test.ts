// BGP through BIRD 2, supervised by the agent (src/agent/bird.ts), on the same kind of namespace testbed as
// agent-routing.test.ts: full mesh, route reflector, a top-of-rack router running its own BIRD, withdraw
// on stop, recovery after SIGKILL, a config that fails `bird -p`, and an agent restart that adopts the
// running BIRD. Every wait is on kernel state (`ip -j route show proto bird`) with a bounded deadline.
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ClusterNetworkSpecSchema } from "../../src/api/cluster-network";
import { compileRoutingPlan } from "../../src/compile/routing/compile-routing";
import { METRIC, type BgpPlan, type RoutingPlan } from "../../src/model/routing-plan";
import { runCommand, runOk } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import { applyBirdConfig, applyBirdConfigText, birdPaths, birdProtocols, detectBird, parseBirdProtocols, stopBird, type BirdInstance } from "../../src/agent/bird";
import { applyRoutingPlan } from "../../src/agent/routing/apply";
import { canReach, createTestbed, destroyTestbed, routingNodes, unreachablePairs, type Testbed, type TestbedNode } from "../support/testbed";

const PREFIX = "syrt2-";
const CONVERGE_MS = 15_000;
let tb: Testbed;
const times: string[] = [];

beforeAll(async () => {
  tb = await createTestbed(PREFIX);
}, 60_000);

afterAll(async () => {
  try {
    for (const inst of [...tb.nodes.map((n) => instance(n.name)), routerInstance()]) await stopBird(inst);
  } finally {
    await destroyTestbed(PREFIX);
    console.log(`agent-bird timings: ${times.join("; ")}`);
  }
}, 60_000);

function node(name: string): TestbedNode {
  const n = tb.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}
function instance(name: string): BirdInstance {
  return { netns: node(name).netns, runDir: join(tb.runDir, name) };
}
function routerInstance(): BirdInstance {
  return { netns: tb.router, runDir: join(tb.runDir, "rtr") };
}

function compileBgp(bgp: Record<string, unknown>): Map<string, RoutingPlan> {
  const spec = ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "bgp", bgp });
  const nodes = routingNodes(tb, "bgp");
  return new Map(nodes.map((n) => [n.name, compileRoutingPlan({ spec, nodes, modesInUse: ["bgp"] }, n.name)]));
}
const FULL_MESH = { asNumber: 64512 };
const RR = { asNumber: 64512, topology: "route-reflectors", routeReflectors: { nodeSelector: { matchLabels: { rr: "true" } } } };
const TOR = {
  asNumber: 64512,
  topology: "tor",
  peers: [
    { address: "192.168.10.1", asNumber: 64500, nodeSelector: { matchLabels: { subnet: "a" } } },
    { address: "192.168.20.1", asNumber: 64500, nodeSelector: { matchLabels: { subnet: "b" } } },
  ],
};

function bgpOf(plans: Map<string, RoutingPlan>, name: string): BgpPlan {
  const bgp = plans.get(name)?.bgp;
  if (!bgp) throw new Error(`plan of ${name} has no bgp`);
  return bgp;
}

interface JsonRoute {
  dst: string;
  gateway?: string;
  metric?: number;
}
async function birdRoutes(netns: string): Promise<JsonRoute[]> {
  return JSON.parse(await runOk("ip", ["-j", "-4", "route", "show", "proto", "bird"], { netns })) as JsonRoute[];
}

/** Waits until every listed namespace has exactly `expected(ns)` as its `proto bird` destinations; returns ms. */
async function waitForBirdRoutes(what: string, want: Record<string, readonly string[]>): Promise<number> {
  const t0 = Date.now();
  await waitFor(
    what,
    async () => {
      for (const [netns, dsts] of Object.entries(want)) {
        const have = (await birdRoutes(netns)).map((r) => r.dst).sort();
        if (JSON.stringify(have) !== JSON.stringify([...dsts].sort())) return undefined;
      }
      return true;
    },
    CONVERGE_MS,
    50,
  );
  const ms = Date.now() - t0;
  times.push(`${what}: ${ms} ms`);
  return ms;
}

function blocksExcept(names: readonly string[], self: string): string[] {
  return names.filter((n) => n !== self).map((n) => node(n).block);
}

async function established(name: string): Promise<string[]> {
  const r = await birdProtocols(birdPaths(instance(name).runDir).socket);
  if (!r.ok) throw new Error(r.error);
  return r.protocols.filter((p) => p.proto === "BGP" && p.info === "Established").map((p) => p.name);
}

const ROUTER_CONFIG = (log: string): string => `log "${log}" all;
router id 192.168.10.1;
protocol device { scan time 10; }
protocol direct { ipv4; interface "eth*"; }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }
template bgp node {
  local as 64500;
  ipv4 { import all; export where source = RTS_BGP; };
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  hold time 9; keepalive time 3; startup hold time 5;
}
protocol bgp n1 from node { neighbor 192.168.10.11 as 64512; }
protocol bgp n2 from node { neighbor 192.168.10.12 as 64512; }
protocol bgp n3 from node { neighbor 192.168.10.13 as 64512; }
protocol bgp n4 from node { neighbor 192.168.20.14 as 64512; }
`;

describe("BIRD supervised by the agent, on a real kernel", () => {
  const mesh = ["n1", "n2", "n3"];

  it("parses birdc show protocols", () => {
    const text = [
      "BIRD 2.0.12 ready.",
      "Name       Proto      Table      State  Since         Info",
      "device1    Device     ---        up     23:46:13.660  ",
      "node_n2    BGP        ---        up     2026-11-20 23:46:14  Established   ",
      "node_n3    BGP        ---        start  23:46:13.660  Active        Socket: Connection refused",
      "",
    ].join("\n");
    expect(parseBirdProtocols(text)).toEqual([
      { name: "device1", proto: "Device", table: "---", state: "up", since: "23:46:13.660", info: "" },
      { name: "node_n2", proto: "BGP", table: "---", state: "up", since: "2026-11-20 23:46:14", info: "Established" },
      { name: "node_n3", proto: "BGP", table: "---", state: "start", since: "23:46:13.660", info: "Active Socket: Connection refused" },
    ]);
  });

  it("full mesh on n1..n3 converges (proto bird routes at the BIRD metric) and the pods reach each other", async () => {
    const plans = compileBgp(FULL_MESH);
    for (const name of ["n1", "n2", "n3", "n4"]) expect((await applyRoutingPlan(node(name).netns, plans.get(name)!)).errors).toEqual([]);
    const t0 = Date.now();
    for (const name of mesh) {
      const r = await applyBirdConfig(instance(name), bgpOf(plans, name));
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, action: "started", adopted: false });
    }
    await waitForBirdRoutes("full mesh n1..n3 converged", Object.fromEntries(mesh.map((n) => [node(n).netns, blocksExcept(mesh, n)])));
    times.push(`full mesh from first start: ${Date.now() - t0} ms`);
    expect(await birdRoutes(node("n1").netns)).toEqual([
      expect.objectContaining({ dst: "10.244.2.0/24", gateway: "192.168.10.12", metric: METRIC.bird }),
      expect.objectContaining({ dst: "10.244.3.0/24", gateway: "192.168.10.13", metric: METRIC.bird }),
    ]);
    expect((await established("n1")).sort()).toEqual(["node_n2", "node_n3"]);
    expect(await unreachablePairs(tb, mesh)).toEqual([]);
  });

  it("an unchanged plan leaves the running BIRD alone; a config that fails bird -p is rejected and the old one keeps running", async () => {
    const inst = instance("n1");
    const plan = bgpOf(compileBgp(FULL_MESH), "n1");
    const before = await detectBird(inst);
    expect(before?.responsive).toBe(true);
    const sinceBefore = await birdProtocols(birdPaths(inst.runDir).socket);
    const same = await applyBirdConfig(inst, plan);
    expect(same).toMatchObject({ ok: true, action: "unchanged", pid: before!.pid });

    const liveText = await readFile(birdPaths(inst.runDir).config, "utf8");
    const broken = liveText.replace('if proto = "pods"', "if proto = pods");
    expect(broken).not.toBe(liveText);
    const bad = await applyBirdConfigText(inst, broken);
    expect(bad).toMatchObject({ ok: false, reason: "ConfigInvalid", pid: before!.pid });
    if (!bad.ok) expect(bad.message).toMatch(/bird\.conf:\d+:\d+/);
    expect(await readFile(birdPaths(inst.runDir).config, "utf8")).toBe(liveText);
    expect((await detectBird(inst))?.pid).toBe(before!.pid);
    // No session was touched: same protocols, same "since" times (to the second: BIRD may move one by a
    // millisecond without touching the session, see the next test), routes still there.
    expect(coarseSince(await birdProtocols(birdPaths(inst.runDir).socket))).toEqual(coarseSince(sinceBefore));
    expect((await birdRoutes(node("n1").netns)).map((r) => r.dst)).toEqual(["10.244.2.0/24", "10.244.3.0/24"]);
  });

  it("a restarted agent (fresh module state, same run dir) adopts the running BIRD without restarting it", async () => {
    const inst = instance("n2");
    const plan = bgpOf(compileBgp(FULL_MESH), "n2");
    const before = await detectBird(inst);
    const protocolsBefore = await birdProtocols(birdPaths(inst.runDir).socket);
    vi.resetModules();
    const fresh = await import("../../src/agent/bird");
    const r = await fresh.applyBirdConfig(inst, plan);
    expect(r).toMatchObject({ ok: true, action: "unchanged", adopted: true, pid: before!.pid });
    // The same sessions, still up. BIRD may move a session's "since" by a millisecond without touching it
    // (seen once in CI: 07.053 -> 07.054); a restarted BIRD would have no session Established yet.
    expect(coarseSince(await fresh.birdProtocols(birdPaths(inst.runDir).socket))).toEqual(coarseSince(protocolsBefore));
  });

  it("route reflector: n1 reflects, clients peer only with it and learn each other's blocks through it", async () => {
    const plans = compileBgp(RR);
    const t0 = Date.now();
    for (const name of mesh) expect(await applyBirdConfig(instance(name), bgpOf(plans, name))).toMatchObject({ ok: true, action: "reconfigured", adopted: true });
    // Converged = each client has exactly one session (to n1) AND the other client's block reflected by n1.
    await waitFor(
      "route reflection to converge",
      async () => {
        for (const [client, other] of [["n2", "n3"], ["n3", "n2"]] as const) {
          if (JSON.stringify(await established(client)) !== '["node_n1"]') return undefined;
          // birdc exits non-zero while the prefix is not in the table ("Network not found").
          const shown = await runCommand("birdc", ["-s", birdPaths(instance(client).runDir).socket, "show", "route", node(other).block, "all"]);
          if (!/BGP\.cluster_list: 192\.168\.10\.11/.test(shown.stdout)) return undefined;
          const kernel = (await birdRoutes(node(client).netns)).find((x) => x.dst === node(other).block);
          if (kernel?.gateway !== node(other).ip) return undefined;
        }
        return true;
      },
      CONVERGE_MS,
      50,
    );
    times.push(`route reflector reconverged: ${Date.now() - t0} ms`);
    expect((await established("n1")).sort()).toEqual(["node_n2", "node_n3"]);
    expect(await unreachablePairs(tb, mesh)).toEqual([]);
  });

  it("top-of-rack: the router's own BIRD peers with every node by eBGP, and n4 across the router becomes reachable", async () => {
    const plans = compileBgp(TOR);
    expect(plans.get("n4")!.diagnostics).toEqual([]);
    const rtr = routerInstance();
    const t0 = Date.now();
    expect(await applyBirdConfigText(rtr, ROUTER_CONFIG(birdPaths(rtr.runDir).log))).toMatchObject({ ok: true, action: "started" });
    expect((await applyRoutingPlan(node("n4").netns, plans.get("n4")!)).errors).toEqual([]);
    for (const name of ["n1", "n2", "n3", "n4"]) expect(await applyBirdConfig(instance(name), bgpOf(plans, name))).toMatchObject({ ok: true });
    const all = ["n1", "n2", "n3", "n4"];
    await waitForBirdRoutes("ToR converged", { ...Object.fromEntries(all.map((n) => [node(n).netns, blocksExcept(all, n)])), [tb.router]: all.map((n) => node(n).block) });
    times.push(`ToR from router start: ${Date.now() - t0} ms`);
    expect((await birdRoutes(node("n1").netns)).find((r) => r.dst === "10.244.4.0/24")).toMatchObject({ gateway: "192.168.10.1", metric: METRIC.bird });
    expect((await birdRoutes(node("n4").netns)).every((r) => r.gateway === "192.168.20.1")).toBe(true);
    expect(await established("n4")).toEqual(["tor_192_168_20_1"]);
    expect(await unreachablePairs(tb, all)).toEqual([]);
  });

  it("stopping a node's BIRD withdraws its block everywhere; starting it again brings the block back", async () => {
    const all = ["n1", "n2", "n3", "n4"];
    const others = all.filter((n) => n !== "n3");
    const stopped = await stopBird(instance("n3"));
    expect(stopped).toMatchObject({ stopped: true, forced: false });
    expect(await detectBird(instance("n3"))).toBeUndefined();
    await waitForBirdRoutes("n3 block withdrawn after stop", { ...Object.fromEntries(others.map((n) => [node(n).netns, blocksExcept(others, n)])), [tb.router]: others.map((n) => node(n).block), [node("n3").netns]: [] });
    expect(await canReach(node("n1").pod.netns, node("n3").pod.ip, 500)).toBe(false);
    expect(await applyBirdConfig(instance("n3"), bgpOf(compileBgp(TOR), "n3"))).toMatchObject({ ok: true, action: "started" });
    await waitForBirdRoutes("n3 block back after start", { ...Object.fromEntries(all.map((n) => [node(n).netns, blocksExcept(all, n)])), [tb.router]: all.map((n) => node(n).block) });
    expect(await canReach(node("n1").pod.netns, node("n3").pod.ip)).toBe(true);
  });

  it("a BIRD killed with SIGKILL is replaced by the next apply, in graceful restart recovery, and its session comes back", async () => {
    const all = ["n1", "n2", "n3", "n4"];
    const inst = instance("n2");
    const victim = await detectBird(inst);
    expect(victim?.responsive).toBe(true);
    process.kill(victim!.pid, "SIGKILL");
    await waitFor("the killed BIRD to be gone", async () => ((await detectBird(inst)) === undefined ? true : undefined), 5_000);
    const r = await applyBirdConfig(inst, bgpOf(compileBgp(TOR), "n2"));
    // The killed BIRD left its kernel routes: the new one starts with -R (bgp-hardening.test.ts shows that
    // no route leaves any kernel meanwhile).
    expect(r).toMatchObject({ ok: true, action: "started", adopted: false, recovery: true });
    expect(r.ok && r.pid).not.toBe(victim!.pid);
    await waitFor("n2's session to the router to come back", async () => (JSON.stringify(await established("n2")) === '["tor_192_168_10_1"]' ? true : undefined), CONVERGE_MS, 50);
    await waitForBirdRoutes("routes in place after SIGKILL + apply", { ...Object.fromEntries(all.map((n) => [node(n).netns, blocksExcept(all, n)])), [tb.router]: all.map((n) => node(n).block) });
    expect(await unreachablePairs(tb, ["n2", "n4"])).toEqual([]);
  });
});

type ListedProtocols = { readonly ok: true; readonly protocols: readonly { since?: string }[] } | { readonly ok: false; readonly error: string };
/** `birdc show protocols` with each session's "since" cut to the second. */
function coarseSince(r: ListedProtocols): unknown {
  return r.ok ? { ok: true, protocols: r.protocols.map((x) => ({ ...x, since: x.since?.replace(/\.\d+$/, "") })) } : r;
}
