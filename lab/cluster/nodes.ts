// Why: createLab builds every node at once, but a LabCluster also grows and shrinks (a node joins, a node
// is drained and deleted). These add and remove one node namespace with exactly the wiring createLab gives
// its nodes (kernel-lab.md §1): a veth created inside the fabric namespace with its peer placed straight
// into the new node namespace (never a link into the root namespace), the node's address on its subnet,
// the default route via the subnet's router address (proxy ARP needs it, §8.8), forwarding on, rp_filter
// off. The Lab object is immutable for callers (createLab returns readonly arrays), so both return a new
// Lab and mirror it to state.json, which `switchyard lab status` and crash-safe teardown read.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand, runOk } from "../../src/base/exec";
import { stopPid } from "../processes";
import type { Lab, LabNode } from "../topology";

const NODE_SYSCTLS = ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"];

async function ipBatch(netns: string, lines: readonly string[]): Promise<void> {
  await runOk("ip", ["-n", netns, "-batch", "-"], { stdin: `${lines.join("\n")}\n`, timeoutMs: 30_000 });
}

/** The subnet letter the cluster's labels use: subnet 0 = "a", 1 = "b", ... */
export function subnetLetter(index: number): string {
  return String.fromCharCode(97 + index);
}

/** The next node a lab would get: name n<k> (k = highest existing + 1) and address .<10+k> on the subnet. */
export function nextLabNode(lab: Lab, subnet: number): LabNode {
  const s = lab.subnets[subnet];
  if (s === undefined) throw new Error(`lab ${lab.prefix} has no subnet ${subnet} (it has ${lab.subnets.length})`);
  const k = Math.max(0, ...lab.nodes.map((n) => Number(n.name.slice(1))).filter(Number.isInteger)) + 1;
  if (10 + k > 254) throw new Error(`lab ${lab.prefix}: no address left for node n${k}`);
  const octet = s.gateway.split(".").slice(0, 3).join(".");
  return { name: `n${k}`, netns: `${lab.prefix}n${k}`, subnet, ip: `${octet}.${10 + k}`, gateway: s.gateway };
}

/** Mirrors the lab to state.json (the format loadLab reads). */
export async function saveLabState(lab: Lab): Promise<void> {
  await writeFile(join(lab.runDir, "state.json"), `${JSON.stringify(lab, null, 2)}\n`);
}

/** Creates one more node namespace wired like createLab's nodes; returns the grown lab. */
export async function addLabNode(lab: Lab, node: LabNode): Promise<Lab> {
  const s = lab.subnets[node.subnet];
  if (s === undefined) throw new Error(`lab ${lab.prefix} has no subnet ${node.subnet}`);
  if (lab.nodes.some((n) => n.name === node.name || n.ip === node.ip)) throw new Error(`lab ${lab.prefix} already has a node ${node.name} or ${node.ip}`);
  await runOk("ip", ["netns", "add", node.netns], { timeoutMs: 10_000 });
  try {
    await ipBatch(lab.fabricNetns, [`link add ${node.name} type veth peer name eth0 netns ${node.netns}`, `link set ${node.name} master ${s.bridge}`, `link set ${node.name} up`]);
    await ipBatch(node.netns, ["link set lo up", `addr add ${node.ip}/24 dev eth0`, "link set eth0 up", `route add default via ${node.gateway} dev eth0`]);
    await runOk("sysctl", ["-q", "-w", ...NODE_SYSCTLS], { netns: node.netns, timeoutMs: 10_000 });
  } catch (e) {
    await removeLabNodeNamespace(lab, node);
    throw e;
  }
  const grown: Lab = { ...lab, nodes: [...lab.nodes, node] };
  await saveLabState(grown);
  return grown;
}

async function removeLabNodeNamespace(lab: Lab, node: LabNode): Promise<void> {
  // Processes started inside the node (BIRD) go first, by pid: a namespace with live processes lingers.
  const pids = await runCommand("ip", ["netns", "pids", node.netns], { timeoutMs: 10_000 });
  const inside = pids.stdout.split("\n").map((l) => Number(l.trim())).filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
  await Promise.all(inside.map((pid) => stopPid(pid, undefined, 1_000)));
  // The fabric side explicitly: namespace teardown frees devices asynchronously.
  await runCommand("ip", ["-n", lab.fabricNetns, "link", "del", node.name], { timeoutMs: 10_000 });
  await runCommand("ip", ["netns", "del", node.netns], { timeoutMs: 10_000 });
}

/**
 * A node's namespace as after a reboot: deleted (with every process inside it) and made again with the
 * same name, address and fabric port, holding nothing of what was programmed into it. Pods must be gone.
 */
export async function restartLabNodeNamespace(lab: Lab, name: string): Promise<void> {
  const node = lab.nodes.find((n) => n.name === name);
  if (node === undefined) throw new Error(`lab ${lab.prefix} has no node ${name}`);
  await removeLabNodeNamespace(lab, node);
  await addLabNode({ ...lab, nodes: lab.nodes.filter((n) => n.name !== name) }, node);
  await saveLabState(lab);
}

/** Deletes a node's namespace and its fabric port; returns the shrunk lab. Pods must be gone already. */
export async function removeLabNode(lab: Lab, name: string): Promise<Lab> {
  const node = lab.nodes.find((n) => n.name === name);
  if (node === undefined) return lab;
  const left = lab.pods.filter((p) => p.node === name);
  if (left.length > 0) throw new Error(`node ${name} still has pods: ${left.map((p) => `${p.namespace}/${p.name}`).join(", ")}`);
  await removeLabNodeNamespace(lab, node);
  const shrunk: Lab = { ...lab, nodes: lab.nodes.filter((n) => n.name !== name) };
  await saveLabState(shrunk);
  return shrunk;
}
