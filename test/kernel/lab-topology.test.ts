// Kernel test: the lab topology (fabric + router + 4 nodes over 2 subnets, 2 Calico-style pods per node),
// lab-only static pod routes, pod agents serving TCP/UDP/SCTP-over-raw, and a teardown that needs no
// memory. Asserts with `ip -j` and real packets. Namespaces: prefix sylt1-.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOk } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import { podInterfaceName } from "../../src/model/names";
import { probeMatrix, formatProbeMatrix, startPodAgent, type PodServer } from "../../lab/pods";
import { readProcessStartTime } from "../../lab/processes";
import {
  addPod,
  createLab,
  destroyLab,
  installStaticPodRoutes,
  LAB_ROUTE_PROTO,
  listLabNamespaces,
  loadLab,
  removePod,
  removeStaticPodRoutes,
  type Lab,
  type PodSpec,
} from "../../lab/topology";

const PREFIX = "sylt1-";
const SERVERS: PodServer[] = [
  { port: 8080, protocol: "TCP" },
  { port: 8081, protocol: "UDP" },
  { port: 8082, protocol: "SCTP" },
];

interface IpAddrInfo {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  scope?: string;
  protocol?: string;
}

async function ipJson<T>(netns: string | undefined, args: string[]): Promise<T> {
  const out = await runOk("ip", netns === undefined ? ["-j", ...args] : ["-j", "-n", netns, ...args], { timeoutMs: 10_000 });
  return JSON.parse(out.trim() === "" ? "[]" : out) as T;
}

/** What must not change in the root namespace: its links (by index, name, type, MTU, master). */
async function rootLinks(): Promise<string[]> {
  const links = await ipJson<{ ifindex: number; ifname: string; link_type?: string; mtu?: number; master?: string }[]>(undefined, ["link", "show"]);
  return links.map((l) => `${l.ifindex} ${l.ifname} ${l.link_type ?? ""} ${l.mtu ?? ""} ${l.master ?? ""}`).sort();
}

async function readSysctl(netns: string, key: string): Promise<string> {
  return (await runOk("sysctl", ["-n", key], { netns, timeoutMs: 10_000 })).trim();
}

function podSpecs(): (PodSpec & { ip: string })[] {
  // 2 pods per node: 10.244.N.2 and 10.244.N.3 on node nN.
  return [1, 2, 3, 4].flatMap((n) => [2, 3].map((host) => ({ namespace: "lab", name: `n${n}-p${host - 1}`, node: `n${n}`, ip: `10.244.${n}.${host}` })));
}

describe("lab topology", () => {
  let lab: Lab;
  let rootBefore: string[];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    await destroyLab(PREFIX); // leftovers of a crashed earlier run
    rootBefore = await rootLinks();
    let t = Date.now();
    lab = await createLab({ prefix: PREFIX, nodes: 4, subnets: 2, podBlocks: [1, 2, 3, 4].map((n) => `10.244.${n}.0/24`) });
    timings["createLab (4 nodes, 2 subnets)"] = Date.now() - t;
    t = Date.now();
    await Promise.all(podSpecs().map((p) => addPod(lab, p)));
    timings["addPod x8 (parallel)"] = Date.now() - t;
    t = Date.now();
    await installStaticPodRoutes(lab);
    timings["installStaticPodRoutes"] = Date.now() - t;
    t = Date.now();
    await Promise.all(lab.pods.map((p) => startPodAgent(lab, p, SERVERS)));
    timings["startPodAgent x8"] = Date.now() - t;
  });

  afterAll(async () => {
    await destroyLab(PREFIX);
    console.info(`lab timings (ms): ${JSON.stringify(timings)}`);
  });

  it("spreads nodes contiguously over the subnets, each with eth0 on its subnet and a default route via its router", async () => {
    const expected = [
      { node: "n1", ip: "192.168.10.11", gw: "192.168.10.1" },
      { node: "n2", ip: "192.168.10.12", gw: "192.168.10.1" },
      { node: "n3", ip: "192.168.20.13", gw: "192.168.20.1" },
      { node: "n4", ip: "192.168.20.14", gw: "192.168.20.1" },
    ];
    for (const e of expected) {
      const ns = `${PREFIX}${e.node}`;
      const [eth0] = await ipJson<IpAddrInfo[]>(ns, ["addr", "show", "dev", "eth0"]);
      expect(eth0?.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${e.ip}/24`]);
      const defaults = await ipJson<IpRoute[]>(ns, ["route", "show", "default"]);
      expect(defaults.map((r) => r.gateway)).toEqual([e.gw]);
      expect(await readSysctl(ns, "net.ipv4.ip_forward")).toBe("1");
      expect(await readSysctl(ns, "net.ipv4.conf.all.rp_filter")).toBe("0");
      expect(await readSysctl(ns, "net.ipv4.conf.default.rp_filter")).toBe("0");
    }
    const rtrAddrs = await ipJson<IpAddrInfo[]>(lab.routerNetns, ["addr", "show"]);
    expect(rtrAddrs.flatMap((l) => l.addr_info.filter((a) => a.family === "inet" && a.local !== "127.0.0.1").map((a) => a.local)).sort()).toEqual(["192.168.10.1", "192.168.20.1"]);
    expect(await readSysctl(lab.routerNetns, "net.ipv4.ip_forward")).toBe("1");
  });

  it("wires pods Calico-style: /32 on eth0, default via 169.254.1.1, proxy ARP on the node veth named podInterfaceName", async () => {
    const pod = lab.pods.find((p) => p.name === "n3-p2")!;
    const veth = podInterfaceName("lab", "n3-p2");
    expect(pod.hostInterface).toBe(veth);
    const [eth0] = await ipJson<IpAddrInfo[]>(pod.netns, ["addr", "show", "dev", "eth0"]);
    expect(eth0?.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`)).toEqual(["10.244.3.3/32"]);
    const podRoutes = await ipJson<IpRoute[]>(pod.netns, ["route", "show"]);
    expect(podRoutes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: "default", gateway: "169.254.1.1", dev: "eth0" }),
        expect.objectContaining({ dst: "169.254.1.1", dev: "eth0", scope: "link" }),
      ]),
    );
    const node = `${PREFIX}n3`;
    const nodeRoutes = await ipJson<IpRoute[]>(node, ["route", "show", "10.244.3.3/32"]);
    expect(nodeRoutes).toEqual([expect.objectContaining({ dst: "10.244.3.3", dev: veth, scope: "link" })]);
    expect(await readSysctl(node, `net.ipv4.conf.${veth}.proxy_arp`)).toBe("1");
    expect(await readSysctl(node, `net.ipv4.neigh.${veth}.proxy_delay`)).toBe("0");
  });

  it("routes pods of same-subnet nodes via that node and pods of other subnets via the router; the router knows every pod", async () => {
    const routesOf = async (ns: string): Promise<Record<string, string | undefined>> =>
      Object.fromEntries((await ipJson<IpRoute[]>(ns, ["route", "show", "proto", LAB_ROUTE_PROTO])).map((r) => [r.dst, r.gateway]));
    const n1 = await routesOf(`${PREFIX}n1`);
    expect(n1).toEqual({
      "10.244.2.2": "192.168.10.12",
      "10.244.2.3": "192.168.10.12",
      "10.244.3.2": "192.168.10.1",
      "10.244.3.3": "192.168.10.1",
      "10.244.4.2": "192.168.10.1",
      "10.244.4.3": "192.168.10.1",
    });
    const rtr = await routesOf(lab.routerNetns);
    expect(Object.keys(rtr).sort()).toEqual(lab.pods.map((p) => p.ip).sort());
    expect(rtr["10.244.4.2"]).toBe("192.168.20.14");
  });

  it.each(["TCP", "UDP", "SCTP"] as const)("lets every pod reach every pod over %s with static routes", async (protocol) => {
    const port = SERVERS.find((s) => s.protocol === protocol)!.port;
    const t = Date.now();
    const r = await probeMatrix(lab, lab.pods, lab.pods, port, protocol, { timeoutMs: 1000 });
    timings[`probeMatrix 8x8 ${protocol}`] = Date.now() - t;
    const names = lab.pods.map((p) => p.name);
    expect(formatProbeMatrix(names, names, r.matrix)).toBe(formatProbeMatrix(names, names, r.matrix.map((row) => row.map(() => true))));
  });

  it("needs the static routes for cross-node traffic: without them only same-node pods reach each other", async () => {
    await removeStaticPodRoutes(lab);
    try {
      expect(await ipJson<IpRoute[]>(lab.routerNetns, ["route", "show", "proto", LAB_ROUTE_PROTO])).toEqual([]);
      const r = await probeMatrix(lab, lab.pods, lab.pods, 8080, "TCP", { timeoutMs: 600 });
      const sameNode = lab.pods.map((a) => lab.pods.map((b) => a.node === b.node));
      const names = lab.pods.map((p) => p.name);
      expect(formatProbeMatrix(names, names, r.matrix)).toBe(formatProbeMatrix(names, names, sameNode));
    } finally {
      await installStaticPodRoutes(lab);
    }
  });

  it("reports a port nobody serves as not connected (TCP refused at once, SCTP unanswered)", async () => {
    const from = lab.pods.slice(0, 2);
    const to = lab.pods.slice(4, 6);
    const tcp = await probeMatrix(lab, from, to, 9999, "TCP", { timeoutMs: 600 });
    expect(tcp.matrix.flat()).toEqual([false, false, false, false]);
    expect(tcp.results.flat().every((r) => r.error === "refused")).toBe(true);
    const sctp = await probeMatrix(lab, from, to, 9999, "SCTP", { timeoutMs: 600 });
    expect(sctp.matrix.flat()).toEqual([false, false, false, false]);
  });

  it("probes a cell again only while it does not match the expected value (retry-on-mismatch), within a bounded time", async () => {
    const from = lab.pods.slice(0, 2);
    const to = lab.pods.slice(2, 4);
    // Every cell is reachable; cell [1][0] is wrongly expected to be denied, so only it is retried.
    const expected = [
      [true, true],
      [false, true],
    ];
    const r = await probeMatrix(lab, from, to, 8080, "TCP", { timeoutMs: 600, expected, retries: 2, retryIntervalMs: 20 });
    expect(r.matrix).toEqual([
      [true, true],
      [true, true],
    ]);
    expect(r.attempts).toEqual([
      [1, 1],
      [3, 1],
    ]);
    expect(r.mismatches).toEqual([{ from: 1, to: 0 }]);
    expect(r.ms).toBeLessThan(2_000);
  });

  it("keeps static routes idempotent, drops the routes of a removed pod, and re-adds a pod under the same name", async () => {
    const snapshot = async (): Promise<IpRoute[]> => ipJson<IpRoute[]>(`${PREFIX}n1`, ["route", "show", "proto", LAB_ROUTE_PROTO]);
    const before = await snapshot();
    await installStaticPodRoutes(lab);
    expect(await snapshot()).toEqual(before);

    const spec = podSpecs().find((p) => p.name === "n4-p2")!;
    await removePod(lab, spec);
    await installStaticPodRoutes(lab);
    expect((await snapshot()).map((r) => r.dst)).not.toContain(spec.ip);
    expect(await listLabNamespaces(PREFIX)).not.toContain(`${PREFIX}p-lab-n4-p2`);
    expect((await loadLab(PREFIX))?.pods.map((p) => p.name)).not.toContain("n4-p2");

    await addPod(lab, spec);
    await installStaticPodRoutes(lab);
    expect(await snapshot()).toEqual(before);
    await startPodAgent(lab, spec, SERVERS);
    const back = await probeMatrix(lab, [lab.pods[0]!], [{ ...spec }], 8080, "TCP", { timeoutMs: 1000 });
    expect(back.matrix).toEqual([[true]]);
  });

  it("changes nothing in the root namespace", async () => {
    expect(await rootLinks()).toEqual(rootBefore);
  });

  it("destroyLab removes every namespace, process and the run dir without in-memory state, also when called twice", async () => {
    // A process this test starts inside a lab namespace and records nowhere: destroyLab must still find
    // it (via `ip netns pids`), since after a crash nothing in memory would know about it.
    const stray = spawn("ip", ["netns", "exec", `${PREFIX}n2`, "sleep", "60"], { stdio: "ignore" });
    const strayPid = stray.pid!;
    try {
      await waitFor("the stray process to enter the namespace", async () => ((await runOk("ip", ["netns", "pids", `${PREFIX}n2`])).split("\n").includes(String(strayPid)) ? true : undefined), 5_000);
      const agentPids = (await Promise.all(lab.pods.map(async (p) => (await runOk("ip", ["netns", "pids", p.netns])).split("\n").filter((l) => l.length > 0).map(Number)))).flat();
      expect(agentPids.length).toBe(lab.pods.length);

      const t = Date.now();
      const first = await destroyLab(PREFIX);
      timings["destroyLab"] = Date.now() - t;
      expect(first.namespaces.length).toBe(2 + 4 + 8);
      expect(first.stoppedPids).toEqual(expect.arrayContaining([...agentPids, strayPid]));
      expect(await listLabNamespaces(PREFIX)).toEqual([]);
      for (const pid of [...agentPids, strayPid]) expect(await readProcessStartTime(pid)).toBeUndefined();
      expect(existsSync(lab.runDir)).toBe(false);

      const second = await destroyLab(PREFIX);
      expect(second).toEqual({ namespaces: [], stoppedPids: [] });
      expect(await rootLinks()).toEqual(rootBefore);
    } finally {
      if ((await readProcessStartTime(strayPid)) !== undefined) process.kill(strayPid, "SIGKILL");
    }
  });
});
