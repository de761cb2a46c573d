// The agent's kernel tests (test/kernel/agent-routing.test.ts, agent-bird.test.ts) run on a small lab built
// by the lab's own topology builder (lab/topology.ts, the one the lab cluster and the qemu checks use):
//
//   PREFIXfabric (bridges br10, br20)            PREFIXrtr (routes between the subnets)
//     n1 192.168.10.11, n2 .12, n3 .13 on br10     eth10 192.168.10.1, eth20 192.168.20.1
//     n4 192.168.20.14 on br20
//   one pod per node (10.244.N.2), wired Calico-style; blocks 10.244.N.0/24 (what IPAM would give).
//
// The routing between nodes is left to the code under test; no namespace has a link into the root
// namespace, and destroyTestbed removes every namespace and process of the prefix (ours by construction).
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Mode } from "../../src/api/cluster-network";
import { runCommand } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import type { RoutingNode } from "../../src/model/routing-plan";
import { addPod, createLab, destroyLab, listLabNamespaces, setPodMtu as setLabPodMtu, type Lab, type LabPod } from "../../lab/topology";

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
  readonly lab: Lab;
}

/** Namespaces whose name starts with `prefix`. */
export function listNamespaces(prefix: string): Promise<string[]> {
  return listLabNamespaces(prefix);
}

/** Test prefixes the testbed may create and destroy: "syrt1-" (routing tests), "syh5-" and the like. */
const TESTBED_PREFIX = /^sy(rt|h)[a-z0-9]*-$/;

/** Builds the topology; on failure, removes what it built and rethrows. `prefix` must look like "syrt1-". */
export async function createTestbed(prefix: string): Promise<Testbed> {
  if (!TESTBED_PREFIX.test(prefix)) throw new Error(`testbed prefix must look like "syrt1-" or "syh5-", got ${prefix}`);
  await destroyTestbed(prefix);
  const runDir = `/tmp/${prefix}run`;
  const lab = await createLab({ prefix, nodes: 4, subnets: 2, placement: [0, 0, 0, 1], runDir: join(runDir, "lab"), podBlocks: [1, 2, 3, 4].map((i) => `10.244.${i}.0/24`) });
  try {
    await mkdir(runDir, { recursive: true });
    const pods: LabPod[] = [];
    for (const [i, n] of lab.nodes.entries()) pods.push(await addPod(lab, { namespace: "testbed", name: `p${i + 1}`, node: n.name, ip: `10.244.${i + 1}.2` }));
    const nodes: TestbedNode[] = lab.nodes.map((n, i) => {
      const far = n.subnet === 1;
      const pod = pods[i]!;
      return {
        name: n.name,
        netns: n.netns,
        ip: n.ip,
        underlayCIDR: lab.subnets[n.subnet]!.cidr,
        gateway: n.gateway,
        block: `10.244.${i + 1}.0/24`,
        labels: { subnet: far ? "b" : "a", ...(i === 0 ? { rr: "true" } : {}) },
        pod: { netns: pod.netns, ip: pod.ip, hostVeth: pod.hostInterface },
      };
    });
    return { prefix, fabric: lab.fabricNetns, router: lab.routerNetns, nodes, runDir, lab };
  } catch (e) {
    await destroyTestbed(prefix);
    throw e;
  }
}

/** Sets the pod MTU on both ends of every pod veth (the CNI's job in a cluster). */
export async function setPodMtu(tb: Testbed, mtu: number): Promise<void> {
  await setLabPodMtu(tb.lab, mtu);
}

/**
 * Removes every namespace with `prefix` (a `syrt...-` or `syh...-` prefix: ours only), ending first each process still
 * inside them (BIRDs or pings a failed test left) by its pid, and the scratch directory.
 */
export async function destroyTestbed(prefix: string): Promise<void> {
  if (!TESTBED_PREFIX.test(prefix)) throw new Error(`refusing to destroy namespaces outside the testbed's prefixes: ${prefix}`);
  const runDir = `/tmp/${prefix}run`;
  await destroyLab(prefix, { runDir: join(runDir, "lab") });
  await rm(runDir, { recursive: true, force: true });
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
