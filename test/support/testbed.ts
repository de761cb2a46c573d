// Kernel-test support for the agent's routing tests (test/agent-routing.test.ts, test/agent-bird.test.ts):
// a small, self-contained namespace topology, kept apart from src/lab (the product's lab) so the agent's
// tests do not depend on it. Layout (kernel-lab.md §1):
//
//   PREFIXfab (bridge br0)                      PREFIXrtr                     PREFIXn4 192.168.20.14
//     n1 192.168.10.11 ─┐                   ┌─ eth0 192.168.10.1
//     n2 192.168.10.12 ─┼─ br0 ─────────────┘   eth1 192.168.20.1 ─────────── eth0
//     n3 192.168.10.13 ─┘
//   one pod per node (PREFIXpN, 10.244.N.2), wired Calico-style; blocks 10.244.N.0/24.
//
// Safety: NO namespace has a link into the root namespace: every veth is created from inside a testbed
// namespace with its peer placed straight into another. Teardown deletes only namespaces with the prefix
// and ends only processes running inside them (ours by construction), each by its pid.
import { mkdir, rm } from "node:fs/promises";
import { runCommand, runOk } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import type { RoutingNode } from "../../src/model/routing-plan";
import type { Mode } from "../../src/api/cluster-network";

export interface TestbedPod {
  readonly netns: string;
  readonly ip: string;
  /** The node-side veth. */
  readonly hostVeth: string;
}

export interface TestbedNode {
  readonly name: string;
  readonly netns: string;
  readonly ip: string;
  readonly underlayCIDR: string;
  readonly gateway: string;
  readonly block: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly pod: TestbedPod;
}

export interface Testbed {
  readonly prefix: string;
  readonly fabric: string;
  readonly router: string;
  readonly nodes: readonly TestbedNode[];
  /** Per-test scratch directory (BIRD run dirs). */
  readonly runDir: string;
}

const HOST_VETH = "syvpod0";

async function batch(netns: string, lines: readonly string[]): Promise<void> {
  await runOk("ip", ["-batch", "-"], { netns, stdin: lines.join("\n") + "\n" });
}

async function sysctl(netns: string, settings: readonly string[]): Promise<void> {
  await runOk("sysctl", ["-q", "-w", ...settings], { netns });
}

/** Namespaces whose name starts with `prefix`. */
export async function listNamespaces(prefix: string): Promise<string[]> {
  const r = await runCommand("ip", ["netns", "list"]);
  return r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.startsWith(prefix));
}

/** Builds the topology; on failure, removes what it built and rethrows. `prefix` must start with "syrt". */
export async function createTestbed(prefix: string): Promise<Testbed> {
  if (!/^syrt[a-z0-9]*-$/.test(prefix)) throw new Error(`testbed prefix must look like "syrt1-", got ${prefix}`);
  await destroyTestbed(prefix);
  const fabric = `${prefix}fab`;
  const router = `${prefix}rtr`;
  const nodes: TestbedNode[] = [1, 2, 3, 4].map((i) => {
    const far = i === 4;
    return {
      name: `n${i}`,
      netns: `${prefix}n${i}`,
      ip: far ? "192.168.20.14" : `192.168.10.1${i}`,
      underlayCIDR: far ? "192.168.20.0/24" : "192.168.10.0/24",
      gateway: far ? "192.168.20.1" : "192.168.10.1",
      block: `10.244.${i}.0/24`,
      labels: { subnet: far ? "b" : "a", ...(i === 1 ? { rr: "true" } : {}) },
      pod: { netns: `${prefix}p${i}`, ip: `10.244.${i}.2`, hostVeth: HOST_VETH },
    };
  });
  const runDir = `/tmp/${prefix}run`;
  try {
    for (const ns of [fabric, router, ...nodes.flatMap((n) => [n.netns, n.pod.netns])]) await runOk("ip", ["netns", "add", ns]);
    await rm(runDir, { recursive: true, force: true });
    await mkdir(runDir, { recursive: true });

    const fab: string[] = ["link set lo up", "link add br0 type bridge", "link set br0 up"];
    for (const n of nodes.slice(0, 3)) fab.push(`link add ${n.name} type veth peer name eth0 netns ${n.netns}`, `link set ${n.name} master br0 up`);
    fab.push(`link add rtr type veth peer name eth0 netns ${router}`, "link set rtr master br0 up");
    await batch(fabric, fab);

    const n4 = nodes[3]!;
    await batch(router, ["link set lo up", "addr add 192.168.10.1/24 dev eth0", "link set eth0 up", `link add eth1 type veth peer name eth0 netns ${n4.netns}`, "addr add 192.168.20.1/24 dev eth1", "link set eth1 up"]);
    await sysctl(router, ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]);

    for (const n of nodes) {
      const prefixLen = n.underlayCIDR.split("/")[1]!;
      await batch(n.netns, [
        "link set lo up",
        `addr add ${n.ip}/${prefixLen} dev eth0`,
        "link set eth0 up",
        // proxy_arp answers for 169.254.1.1 only with a route to it through another interface (pitfall 8).
        `route add default via ${n.gateway}`,
        `link add ${HOST_VETH} type veth peer name eth0 netns ${n.pod.netns}`,
        `link set ${HOST_VETH} up`,
        `route add ${n.pod.ip}/32 dev ${HOST_VETH} scope link`,
      ]);
      await sysctl(n.netns, [`net.ipv4.conf.${HOST_VETH}.proxy_arp=1`, `net.ipv4.neigh.${HOST_VETH}.proxy_delay=0`]);
      await batch(n.pod.netns, [
        "link set lo up",
        `addr add ${n.pod.ip}/32 dev eth0`,
        "link set eth0 up",
        "route add 169.254.1.1 dev eth0 scope link",
        "route add default via 169.254.1.1 dev eth0",
      ]);
    }
    return { prefix, fabric, router, nodes, runDir };
  } catch (e) {
    await destroyTestbed(prefix);
    throw e;
  }
}

/** Sets the pod MTU on both ends of every pod veth (the CNI's job in a cluster). */
export async function setPodMtu(tb: Testbed, mtu: number): Promise<void> {
  for (const n of tb.nodes) {
    await runOk("ip", ["link", "set", "dev", n.pod.hostVeth, "mtu", String(mtu)], { netns: n.netns });
    await runOk("ip", ["link", "set", "dev", "eth0", "mtu", String(mtu)], { netns: n.pod.netns });
  }
}

/** Pids of processes inside a namespace (`ip netns pids`). */
async function namespacePids(netns: string): Promise<number[]> {
  const r = await runCommand("ip", ["netns", "pids", netns]);
  return r.stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((p) => Number.isInteger(p) && p > 0);
}

/**
 * Removes every namespace starting with `prefix` (a `syrt...-` prefix: ours only). Processes still running
 * inside them (BIRDs or pings a failed test left) can only be ours: each is ended by its pid first, so no
 * process outlives its namespace.
 */
export async function destroyTestbed(prefix: string): Promise<void> {
  if (!prefix.startsWith("syrt")) throw new Error(`refusing to destroy namespaces outside the syrt prefix: ${prefix}`);
  const namespaces = await listNamespaces(prefix);
  for (const ns of namespaces) {
    for (const pid of await namespacePids(ns)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
  for (const ns of namespaces) await runCommand("ip", ["netns", "del", ns]);
  await waitFor("testbed namespaces to disappear", async () => ((await listNamespaces(prefix)).length === 0 ? true : undefined), 5_000, 20);
  await rm(`/tmp/${prefix}run`, { recursive: true, force: true });
}

/** The compile input nodes of the testbed, every node sending with `mode` unless `modes` says otherwise. */
export function routingNodes(tb: Testbed, mode: Mode, modes: Partial<Record<string, Mode>> = {}, only?: readonly string[]): RoutingNode[] {
  return tb.nodes
    .filter((n) => only === undefined || only.includes(n.name))
    .map((n) => ({ name: n.name, labels: n.labels, ip: n.ip, underlayCIDR: n.underlayCIDR, block: n.block, mode: modes[n.name] ?? mode }));
}

/** One bounded ping (`-c 1 -W 1`); extra args e.g. ["-M", "do", "-s", "1422"]. */
export async function pingOnce(fromNetns: string, ip: string, extra: readonly string[] = []): Promise<boolean> {
  const r = await runCommand("ping", ["-n", "-q", "-c", "1", "-W", "1", ...extra, ip], { netns: fromNetns, timeoutMs: 5_000 });
  return r.code === 0;
}

/** Pings until one reply or `timeoutMs` (the first packet may wait for ARP); bounded in count and time. */
export async function canReach(fromNetns: string, ip: string, timeoutMs = 3_000): Promise<boolean> {
  try {
    await waitFor(`${fromNetns} -> ${ip}`, async () => ((await pingOnce(fromNetns, ip)) ? true : undefined), timeoutMs, 50);
    return true;
  } catch {
    return false;
  }
}

/** "src->dst" for every ordered pair of the given nodes' pods that cannot reach each other (empty = all good). */
export async function unreachablePairs(tb: Testbed, names: readonly string[], timeoutMs = 3_000): Promise<string[]> {
  const nodes = tb.nodes.filter((n) => names.includes(n.name));
  const failures: string[] = [];
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      if (!(await canReach(a.pod.netns, b.pod.ip, timeoutMs))) failures.push(`${a.name}->${b.name}`);
    }
  }
  return failures;
}
