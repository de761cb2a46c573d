// The agent's routing side against the real kernel: plans compiled by compileRoutingPlan, applied by
// applyRoutingPlan to a 4-node namespace testbed (n1..n3 on 192.168.10.0/24, n4 behind a router on
// 192.168.20.0/24, one Calico-style pod per node), asserted with `ip -j`, `bridge -j`, `nft -j`,
// `ip monitor` and real packets. Natively routed BGP is covered in agent-bird.test.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterNetworkSpecSchema, type Mode } from "../../src/api/cluster-network";
import { compileRoutingPlan } from "../../src/compile/routing/compile-routing";
import { vtepMac } from "../../src/modes/vxlan";
import { METRIC, type RoutingInput, type RoutingPlan } from "../../src/model/routing-plan";
import { runCommand, runOk } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import { detectCapabilities, checkModeRequirements, type Capabilities } from "../../src/agent/capabilities";
import { applyRoutingPlan, startRoutingRepair, type ApplyReport } from "../../src/agent/routing/apply";
import { canReach, createTestbed, destroyTestbed, pingOnce, routingNodes, setPodMtu, unreachablePairs, type Testbed, type TestbedNode } from "../support/testbed";

const PREFIX = "syrt1-";
let tb: Testbed;
let caps: Capabilities;
const timings: Record<string, number[]> = {};
const started: ChildProcess[] = [];

beforeAll(async () => {
  tb = await createTestbed(PREFIX);
  caps = await detectCapabilities(node("n1").netns);
}, 60_000);

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  await destroyTestbed(PREFIX);
  console.log(`agent-routing apply times (ms): ${Object.entries(timings).map(([k, v]) => `${k}=[${v.join(", ")}]`).join("; ")}`);
}, 60_000);

function node(name: string): TestbedNode {
  const n = tb.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}

interface PlanSet {
  readonly spec?: Record<string, unknown>;
  readonly modesInUse: readonly Mode[];
  readonly mode: Mode;
  readonly modes?: Partial<Record<string, Mode>>;
  /** Nodes the cluster knows (default all four). */
  readonly members?: readonly string[];
  readonly borrowed?: RoutingInput["borrowed"];
}

function compilePlans(p: PlanSet): Map<string, RoutingPlan> {
  const spec = ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: p.mode, ...p.spec });
  const nodes = routingNodes(tb, p.mode, p.modes ?? {}, p.members);
  const input: RoutingInput = { spec, nodes, modesInUse: [...p.modesInUse], ...(p.borrowed ? { borrowed: p.borrowed } : {}) };
  return new Map(nodes.map((n) => [n.name, compileRoutingPlan(input, n.name)]));
}

/** Applies each node's plan (in node order) and returns the reports; `label` collects timings. */
async function applyPlans(plans: Map<string, RoutingPlan>, label: string, names = [...plans.keys()]): Promise<Map<string, ApplyReport>> {
  const reports = new Map<string, ApplyReport>();
  for (const name of names) {
    const report = await applyRoutingPlan(node(name).netns, plans.get(name)!);
    reports.set(name, report);
    (timings[label] ??= []).push(report.durationMs);
  }
  return reports;
}

function expectClean(reports: Map<string, ApplyReport>): void {
  for (const [name, r] of reports) expect(r.errors, `${name}: ${JSON.stringify(r.errors)}`).toEqual([]);
}

interface JsonRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string;
  flags?: string[];
  scope?: string;
}

async function routes(netns: string, ...filter: string[]): Promise<JsonRoute[]> {
  return JSON.parse(await runOk("ip", ["-j", "-4", "route", "show", "table", "main", ...filter], { netns })) as JsonRoute[];
}

function totalChanges(r: ApplyReport): number {
  return Object.values(r.changes).reduce((a, b) => a + b, 0);
}

/** A long-running observer in a namespace, ended by its pid. */
function startObserver(netns: string, argv: readonly string[]): { child: ChildProcess; output: () => string } {
  const child = spawn("ip", ["netns", "exec", netns, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
  started.push(child);
  let out = "";
  child.stdout?.on("data", (b: Buffer) => (out += b.toString("utf8")));
  child.stderr?.on("data", (b: Buffer) => (out += b.toString("utf8")));
  return { child, output: () => out };
}

async function stopObserver(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {
    return;
  }
  await exited;
}

describe("agent routing on a real kernel", () => {
  it("preflight probes by doing: vxlan works, and a missing ipip module becomes a clear condition", async () => {
    expect(caps.vxlan, caps.details.vxlan).toBe(true);
    expect(caps.nftables, caps.details.nftables).toBe(true);
    expect(caps.bird, caps.details.bird).toBe(true);
    const links = JSON.parse(await runOk("ip", ["-j", "link", "show"], { netns: node("n1").netns })) as { ifname: string }[];
    expect(links.map((l) => l.ifname).filter((n) => n.startsWith("sy-probe"))).toEqual([]);
    const ipipPlan = compilePlans({ mode: "ipip", modesInUse: ["ipip"] }).get("n1")!;
    const conditions = checkModeRequirements(ipipPlan, caps);
    if (caps.ipip) {
      console.log(`preflight: this kernel has ipip (${caps.details.ipip}); the missing-module condition is not observable here`);
      expect(conditions).toEqual([]);
    } else {
      expect(conditions).toEqual([
        expect.objectContaining({ reason: "KernelFeatureMissing", feature: "ipip", message: expect.stringMatching(/^mode ipip needs the ipip kernel module, which this node's kernel lacks \(creating a probe ipip device failed: .+\)$/) }),
      ]);
    }
    expect(checkModeRequirements(compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }).get("n1")!, caps)).toEqual([]);
  });

  it("host-gw: n1..n3 pods reach each other; n4 carries ModeCannotServePeers and stays unreachable", async () => {
    const plans = compilePlans({ mode: "host-gw", modesInUse: ["host-gw"] });
    const reports = await applyPlans(plans, "host-gw");
    expectClean(reports);
    expect(await routes(node("n1").netns, "proto", "77")).toEqual([
      { dst: "10.244.2.0/24", gateway: "192.168.10.12", dev: "eth0", metric: METRIC.preferred, flags: [] },
      { dst: "10.244.3.0/24", gateway: "192.168.10.13", dev: "eth0", metric: METRIC.preferred, flags: [] },
    ]);
    expect(await unreachablePairs(tb, ["n1", "n2", "n3"])).toEqual([]);
    const n4 = plans.get("n4")!;
    expect(n4.diagnostics.map((d) => d.reason)).toEqual(["ModeCannotServePeers"]);
    expect(n4.routes).toEqual([]);
    expect(await pingOnce(node("n1").pod.netns, node("n4").pod.ip)).toBe(false);
    // The sysctl stage made the nodes forwarders with loose reverse-path filtering.
    const sys = await runOk("sysctl", ["-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"], { netns: node("n2").netns });
    expect(sys.trim().split("\n")[0]).toBe("1");
    expect(sys.trim().split("\n").slice(1).every((v) => v === "0" || v === "2")).toBe(true);
  });

  it("vxlan: the device, FDB and permanent neighbours are programmed and all 4 nodes' pods reach each other across the router", async () => {
    const plans = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] });
    const reports = await applyPlans(plans, "vxlan");
    expectClean(reports);
    const n1 = node("n1").netns;
    const [link] = JSON.parse(await runOk("ip", ["-j", "-d", "link", "show", "dev", "sy-vxlan"], { netns: n1 })) as {
      address: string;
      mtu: number;
      flags: string[];
      linkinfo: { info_kind: string; info_data: { id: number; port: number; local: string; link: string; learning: boolean } };
    }[];
    expect(link).toMatchObject({ address: vtepMac("n1"), mtu: 1450, linkinfo: { info_kind: "vxlan", info_data: { id: 1, port: 8472, local: "192.168.10.11", link: "eth0", learning: false } } });
    expect(link!.flags).toContain("UP");
    const fdb = JSON.parse(await runOk("bridge", ["-j", "fdb", "show", "dev", "sy-vxlan"], { netns: n1 })) as { mac: string; dst: string }[];
    expect(fdb.map((e) => `${e.mac} ${e.dst}`).sort()).toEqual([`${vtepMac("n2")} 192.168.10.12`, `${vtepMac("n3")} 192.168.10.13`, `${vtepMac("n4")} 192.168.20.14`].sort());
    const neigh = JSON.parse(await runOk("ip", ["-j", "neigh", "show", "dev", "sy-vxlan"], { netns: n1 })) as { dst: string; lladdr: string; state: string[] }[];
    expect(neigh.filter((n) => n.state.includes("PERMANENT")).map((n) => `${n.dst} ${n.lladdr}`).sort()).toEqual(["10.244.2.0", "10.244.3.0", "10.244.4.0"].map((ip, i) => `${ip} ${vtepMac(`n${i + 2}`)}`));
    expect(await routes(n1, "proto", "77")).toContainEqual({ dst: "10.244.4.0/24", gateway: "10.244.4.0", dev: "sy-vxlan", metric: METRIC.preferred, flags: ["onlink"] });
    expect(await unreachablePairs(tb, ["n1", "n2", "n3", "n4"])).toEqual([]);
  });

  it("MTU: a DF ping at exactly the pod MTU crosses the tunnel, one byte more does not", async () => {
    const mtu = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }).get("n1")!.podMtu;
    expect(mtu).toBe(1450);
    await setPodMtu(tb, mtu);
    const from = node("n1").pod.netns;
    const to = node("n4").pod.ip;
    expect(await pingOnce(from, to, ["-M", "do", "-s", String(mtu - 28)])).toBe(true);
    expect(await pingOnce(from, to, ["-M", "do", "-s", String(mtu - 27)])).toBe(false);
    // With the pod allowed one byte more, the tunnel itself (sy-vxlan MTU 1450) refuses it: the limit is the path's.
    await setPodMtu(tb, mtu + 1);
    try {
      expect(await pingOnce(from, to, ["-M", "do", "-s", String(mtu - 27)])).toBe(false);
    } finally {
      await setPodMtu(tb, mtu);
    }
    expect(await pingOnce(from, to, ["-M", "do", "-s", String(mtu - 28)])).toBe(true);
  });

  it("vxlan crossSubnet: native routes within the subnet, VXLAN across it, every pod reaches every pod", async () => {
    const plans = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"], spec: { crossSubnet: true } });
    const reports = await applyPlans(plans, "vxlan-crossSubnet");
    expectClean(reports);
    const r1 = await routes(node("n1").netns, "proto", "77");
    expect(r1).toEqual([
      { dst: "10.244.2.0/24", gateway: "192.168.10.12", dev: "eth0", metric: METRIC.preferred, flags: [] },
      { dst: "10.244.3.0/24", gateway: "192.168.10.13", dev: "eth0", metric: METRIC.preferred, flags: [] },
      { dst: "10.244.4.0/24", gateway: "10.244.4.0", dev: "sy-vxlan", metric: METRIC.preferred, flags: ["onlink"] },
    ]);
    expect((await routes(node("n4").netns, "proto", "77")).every((r) => r.dev === "sy-vxlan")).toBe(true);
    expect(await unreachablePairs(tb, ["n1", "n2", "n3", "n4"])).toEqual([]);
  });

  it("is idempotent: applying an unchanged plan issues no command and the kernel reports no event", async () => {
    const plans = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"], spec: { crossSubnet: true } });
    const n1 = node("n1").netns;
    const ipmon = startObserver(n1, ["ip", "monitor", "label"]);
    const nftmon = startObserver(n1, ["nft", "monitor"]);
    try {
      // Markers bracket the window: everything the apply caused is printed between them.
      await runOk("ip", ["route", "add", "blackhole", "10.123.0.1/32", "proto", "static"], { netns: n1 });
      await runOk("nft", ["add", "table", "ip", "syrt_marker"], { netns: n1 });
      // The monitors subscribe some time after they start: re-announce the markers until both saw them.
      await waitFor(
        "monitors to see the start markers",
        async () => {
          if (ipmon.output().includes("10.123.0.1") && nftmon.output().includes("syrt_marker")) return true;
          await runOk("ip", ["route", "del", "blackhole", "10.123.0.1/32", "proto", "static"], { netns: n1 });
          await runOk("ip", ["route", "add", "blackhole", "10.123.0.1/32", "proto", "static"], { netns: n1 });
          await runOk("nft", ["delete", "table", "ip", "syrt_marker"], { netns: n1 });
          await runOk("nft", ["add", "table", "ip", "syrt_marker"], { netns: n1 });
          return undefined;
        },
        10_000,
        250,
      );
      const ipStart = ipmon.output().length;
      const nftStart = nftmon.output().length;
      const reports = await applyPlans(plans, "unchanged");
      await runOk("ip", ["route", "del", "blackhole", "10.123.0.1/32", "proto", "static"], { netns: n1 });
      await runOk("nft", ["delete", "table", "ip", "syrt_marker"], { netns: n1 });
      await waitFor("monitors to see the end markers", () => (/Deleted.*10\.123\.0\.1/.test(ipmon.output().slice(ipStart)) && nftmon.output().slice(nftStart).includes("delete table ip syrt_marker") ? true : undefined), 5_000);
      for (const [name, r] of reports) {
        expect(r.errors, name).toEqual([]);
        expect(r.commands, name).toEqual([]);
        expect(totalChanges(r), name).toBe(0);
      }
      const ipEvents = ipmon
        .output()
        .slice(ipStart)
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.includes("10.123.0.1"))
        // Neighbour aging on the underlay and pod veths is the kernel's, not an apply's.
        .filter((l) => !(l.startsWith("[NEIGH]") && !l.includes("sy-")))
        // So is IPv6 autoconfiguration of a tunnel device created just before: its link-local address
        // (and that address's local route) can appear after DAD, within this window (seen once in CI). The
        // agent manages no IPv6 address; an IPv4 address event keeps its own [ADDR] line and still fails.
        .filter((l) => !(/^\[(ADDR|ROUTE)\]/.test(l) && /fe80::|ff00::/.test(l)) && !/^\s+valid_lft /.test(l));
      expect(ipEvents).toEqual([]);
      const nftEvents = nftmon
        .output()
        .slice(nftStart)
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.includes("syrt_marker") && !l.startsWith("# new generation"));
      expect(nftEvents).toEqual([]);
    } finally {
      await stopObserver(ipmon.child);
      await stopObserver(nftmon.child);
    }
  });

  it("leaves unrelated routes and nft tables alone, and reports a planned key held by a foreign route instead of taking it", async () => {
    const n1 = node("n1").netns;
    await runOk("ip", ["-batch", "-"], {
      netns: n1,
      stdin: ["route add 10.99.0.0/24 via 192.168.10.1 proto static", "route add 10.98.0.0/24 via 192.168.10.1 metric 50", "route add 10.97.0.0/24 via 192.168.10.1 metric 100 proto bird", "route add 10.244.9.9/32 via 192.168.10.1 metric 50 proto static", ""].join("\n"),
    });
    await runOk("nft", ["-f", "-"], { netns: n1, stdin: "table inet syrt_other {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    counter\n  }\n}\n" });
    const foreign = async (): Promise<JsonRoute[]> => (await routes(n1)).filter((r) => r.protocol !== "77");
    const before = await foreign();
    const otherTable = async (): Promise<string> => runOk("nft", ["list", "table", "inet", "syrt_other"], { netns: n1 });
    const otherBefore = await otherTable();
    expect(before.map((r) => r.dst)).toEqual(expect.arrayContaining(["10.97.0.0/24", "10.98.0.0/24", "10.99.0.0/24", "10.244.1.2", "10.244.9.9", "default"]));

    // A borrowed pod address on n2: the plan wants 10.244.9.9/32 at metric 50, which a proto static route holds.
    const withBorrowed = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"], spec: { crossSubnet: true }, borrowed: [{ ip: "10.244.9.9", node: "n2" }] });
    const r1 = await applyRoutingPlan(n1, withBorrowed.get("n1")!);
    expect(r1.errors).toEqual([expect.objectContaining({ stage: "routes", reason: "RouteConflict", message: expect.stringContaining("10.244.9.9/32 metric 50") })]);
    // Another mode and back: everything of ours churns, nothing of anyone else's moves.
    expectClean(await applyPlans(compilePlans({ mode: "host-gw", modesInUse: ["host-gw"] }), "host-gw", ["n1"]));
    expectClean(await applyPlans(compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }), "vxlan", ["n1"]));
    expect(await foreign()).toEqual(before);
    expect(await otherTable()).toBe(otherBefore);

    // Once the foreign route is gone, the planned one is installed as ours.
    await runOk("ip", ["route", "del", "10.244.9.9/32", "metric", "50", "proto", "static"], { netns: n1 });
    const r2 = await applyRoutingPlan(n1, withBorrowed.get("n1")!);
    expect(r2.errors).toEqual([]);
    expect((await routes(n1, "proto", "77")).find((r) => r.dst === "10.244.9.9")).toMatchObject({ gateway: "192.168.10.12", dev: "eth0", metric: METRIC.preferred });
    await runOk("ip", ["-batch", "-"], { netns: n1, stdin: "route del 10.99.0.0/24 proto static\nroute del 10.98.0.0/24 metric 50\nroute del 10.97.0.0/24 metric 100 proto bird\n" });
    await runOk("nft", ["delete", "table", "inet", "syrt_other"], { netns: n1 });
  });

  it("removing a peer from the plan removes its routes, FDB and neighbour entries, and only those", async () => {
    const n1 = node("n1").netns;
    expectClean(await applyPlans(compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }), "vxlan"));
    const without = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"], members: ["n1", "n2", "n4"] });
    const r = await applyRoutingPlan(n1, without.get("n1")!);
    expect(r.errors).toEqual([]);
    expect(r.removals).toMatchObject({ route: 1, fdb: 1, neighbor: 1, device: 0 });
    expect(totalChanges(r)).toBe(3);
    expect((await routes(n1, "proto", "77")).map((x) => x.dst)).toEqual(["10.244.2.0/24", "10.244.4.0/24"]);
    const fdb = JSON.parse(await runOk("bridge", ["-j", "fdb", "show", "dev", "sy-vxlan"], { netns: n1 })) as { mac: string }[];
    expect(fdb.map((e) => e.mac)).not.toContain(vtepMac("n3"));
    const neigh = JSON.parse(await runOk("ip", ["-j", "neigh", "show", "dev", "sy-vxlan"], { netns: n1 })) as { dst: string }[];
    expect(neigh.map((n) => n.dst)).not.toContain("10.244.3.0");
    expect(await canReach(node("n1").pod.netns, node("n4").pod.ip)).toBe(true);
    expect(await canReach(node("n1").pod.netns, node("n2").pod.ip)).toBe(true);
    expectClean(await applyPlans(compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }), "vxlan", ["n1"]));
  });

  it("drift repair: a route deleted by hand is back within the interval; runs never overlap", async () => {
    const n1 = node("n1").netns;
    const plan = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }).get("n1")!;
    const intervalMs = 500;
    const repair = startRoutingRepair(n1, () => plan, intervalMs);
    try {
      await runOk("ip", ["route", "del", "10.244.2.0/24", "metric", String(METRIC.preferred), "proto", "77"], { netns: n1 });
      const t0 = Date.now();
      await waitFor("the deleted route to come back", async () => ((await routes(n1, "proto", "77")).some((r) => r.dst === "10.244.2.0/24") ? true : undefined), intervalMs + 2_000, 20);
      const back = Date.now() - t0;
      console.log(`drift repair: route back after ${back} ms (interval ${intervalMs} ms)`);
      expect(back).toBeLessThan(intervalMs + 1_500);
      // Two explicit runs at once are serialised: the second finds nothing left to do.
      const [a, b] = await Promise.all([repair.runNow(), repair.runNow()]);
      expect(a && totalChanges(a)).toBe(0);
      expect(b && totalChanges(b)).toBe(0);
      expect(repair.runs).toBeGreaterThanOrEqual(3);
    } finally {
      await repair.stop();
    }
    const runsAtStop = repair.runs;
    await runOk("ip", ["route", "del", "10.244.2.0/24", "metric", String(METRIC.preferred), "proto", "77"], { netns: n1 });
    expect(await repair.runNow()).toBeUndefined();
    expect(repair.runs).toBe(runsAtStop);
    expect((await routes(n1, "proto", "77")).some((r) => r.dst === "10.244.2.0/24")).toBe(false);
    expectClean(await applyPlans(new Map([["n1", plan]]), "vxlan"));
  });

  it("natOutgoing: the SNAT rule is applied in its own table, pods reach a non-pod address through it, and disabling removes it", async () => {
    const n1 = node("n1").netns;
    const listing = JSON.parse(await runOk("nft", ["-j", "list", "table", "ip", "switchyard_nat"], { netns: n1 })) as { nftables: Record<string, Record<string, unknown>>[] };
    const rules = listing.nftables.filter((o) => o["rule"]).map((o) => o["rule"]!);
    expect(rules).toHaveLength(1);
    expect(JSON.stringify(rules[0]!["expr"])).toContain('{"snat":{"addr":"192.168.10.11"}}');
    // The router has no route back to 10.244.0.0/16: only a SNATed ping gets its reply.
    expect(await canReach(node("n1").pod.netns, "192.168.20.1")).toBe(true);
    const off = compilePlans({ mode: "vxlan", modesInUse: ["vxlan"], spec: { natOutgoing: false } }).get("n1")!;
    const r = await applyRoutingPlan(n1, off);
    expect(r.errors).toEqual([]);
    expect(r.changes.nat).toBe(1);
    expect(totalChanges(r)).toBe(1);
    expect(await runOk("nft", ["list", "table", "ip", "switchyard_nat"], { netns: n1 })).not.toContain("snat");
    expect(await pingOnce(node("n1").pod.netns, "192.168.20.1")).toBe(false);
    const on = await applyRoutingPlan(n1, compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }).get("n1")!);
    expect(on.changes.nat).toBe(1);
  });

  it("switches vxlan -> host-gw under a ping stream with no loss: mixed-mode plans stack metrics, devices go last", async () => {
    const all = ["n1", "n2", "n3", "n4"];
    expectClean(await applyPlans(compilePlans({ mode: "vxlan", modesInUse: ["vxlan"] }), "vxlan"));
    const from = node("n1").pod.netns;
    const to = node("n2").pod.ip;
    const ping = startObserver(from, ["ping", "-n", "-i", "0.02", "-c", "150", "-W", "1", to]);
    const done = new Promise<number>((resolve) => ping.child.once("close", (code) => resolve(code ?? -1)));
    try {
      await waitFor("the ping stream to be flowing", () => ((ping.output().match(/bytes from/g) ?? []).length >= 10 ? true : undefined), 5_000);
      const mixed = (switched: string[]) =>
        compilePlans({ mode: "host-gw", modesInUse: ["vxlan", "host-gw"], modes: Object.fromEntries(all.map((n) => [n, switched.includes(n) ? "host-gw" : "vxlan"])) });
      // Sender by sender: n1 first (the canary), then n2, then n3; every node keeps receiving VXLAN.
      const steps: [string, Map<string, RoutingPlan>][] = [
        ["mixed n1", mixed(["n1"])],
        ["mixed n1,n2", mixed(["n1", "n2"])],
        ["mixed n1..n3", mixed(["n1", "n2", "n3"])],
        ["final host-gw", compilePlans({ mode: "host-gw", modesInUse: ["host-gw"] })],
      ];
      for (const [label, plans] of steps) {
        const reports = await applyPlans(plans, "switch", all);
        expectClean(reports);
        expect(reports.get("n1")!.ok, label).toBe(true);
      }
      const code = await Promise.race([done, new Promise<number>((resolve) => setTimeout(() => resolve(-2), 20_000))]);
      const summary = /(\d+) packets transmitted, (\d+) received/.exec(ping.output());
      console.log(`vxlan -> host-gw switch under ping: ${summary?.[0] ?? ping.output().slice(-300)}`);
      expect(code).toBe(0);
      expect(summary?.[1]).toBe("150");
      expect(summary?.[2]).toBe("150");
    } finally {
      await stopObserver(ping.child);
    }
    expect(await routes(node("n1").netns, "proto", "77")).toEqual([
      { dst: "10.244.2.0/24", gateway: "192.168.10.12", dev: "eth0", metric: METRIC.preferred, flags: [] },
      { dst: "10.244.3.0/24", gateway: "192.168.10.13", dev: "eth0", metric: METRIC.preferred, flags: [] },
    ]);
    const links = JSON.parse(await runOk("ip", ["-j", "link", "show"], { netns: node("n1").netns })) as { ifname: string }[];
    expect(links.map((l) => l.ifname)).not.toContain("sy-vxlan");
  });

  it("ipip: a kernel without the module gets a DeviceUnsupported error value, the rest of the plan still applies", async () => {
    const n1 = node("n1").netns;
    const plan = compilePlans({ mode: "ipip", modesInUse: ["ipip"] }).get("n1")!;
    const r = await applyRoutingPlan(n1, plan);
    if (caps.ipip) {
      console.log("ipip: this kernel has the ipip module; the failure path is not observable here");
      expect(r.errors).toEqual([]);
    } else {
      expect(r.errors.map((e) => e.reason)).toEqual(["DeviceUnsupported", "DeviceMissing"]);
      expect(r.errors[0]!.message).toContain("sy-ipip");
      // With the capabilities known beforehand, the device is not even tried.
      const again = await applyRoutingPlan(n1, plan, { capabilities: caps });
      expect(again.commands.filter((c) => c.includes("sy-ipip"))).toEqual([]);
      expect(again.errors.map((e) => e.reason)).toEqual(["DeviceUnsupported", "DeviceMissing"]);
    }
    // Routes at the keys the skipped ipip routes would take stay as they were (traffic keeps flowing); NAT is in place.
    expect(await runCommand("nft", ["list", "table", "ip", "switchyard_nat"], { netns: n1 })).toMatchObject({ code: 0 });
    expectClean(await applyPlans(compilePlans({ mode: "host-gw", modesInUse: ["host-gw"] }), "host-gw", ["n1"]));
  });
});
