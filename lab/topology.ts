// Why: the lab is a small cluster made of network namespaces on one machine (kernel-lab.md §1). The
// underlay is one bridge per subnet inside a `fabric` namespace and a `rtr` namespace routes between the
// subnets, so NO namespace has a link into the root namespace: every veth is created from inside a lab
// namespace with its peer placed straight into another lab namespace, and no packet can leave the lab.
// Pods get their interface from Switchyard's CNI plugin (switchyard-cni), which the lab runs through the
// CNI exec protocol as a container runtime does (lab/cni.ts): Calico-style wiring (/32 on eth0, default
// via 169.254.1.1, proxy_arp on the node's veth, a /32 route per pod on the node), so every pod packet,
// same-node ones too, is routed through the node's forward hook, where policy lives, and the node's veth
// is named by podInterfaceName (policy keys on it). Each node's conflist is written by its agent (the lab
// cluster) or, for labs without agents, by createLab from `podBlocks`.
//
// Everything is discoverable without this process's memory: namespaces by their prefix (`ip netns list`),
// processes by pid files under the run dir, the layout in run-dir/state.json. So destroyLab works after a
// crash, and a later `switchyard lab status` can read what exists. Commands go through `ip -batch` per
// namespace: one process per namespace instead of one per command keeps lab creation to about a second.
import { readFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand, runOk } from "../src/base/exec";
import { waitFor } from "../src/base/wait";
import { mapBounded } from "../src/base/limit";
import { podInterfaceName } from "../src/model/names";
import { parseIPv4 } from "../src/api/ipv4";
import { packagePath } from "../src/base/package-root";
import { installCni, type CniInstallOptions } from "../src/agent/cni-install";
import { cniAdd, cniDel, labCniDirs, type LabCniDirs } from "./cni-runtime";
import { stopAllRecordedProcesses, stopPid, stopRecordedProcess } from "./processes";
import { stopRealNodeLeftovers } from "./nodes/real-node";

/**
 * How nodes are spread over the subnets: "contiguous" (n1,n2 | n3,n4, as in kernel-lab.md), "round-robin",
 * or the subnet index of every node in order (e.g. [0, 0, 0, 1]: three nodes on the first subnet, one behind
 * the router).
 */
export type NodePlacement = "contiguous" | "round-robin" | readonly number[];

export interface LabOptions {
  /** Every namespace of the lab starts with this; lower-case letters, digits and '-', ending with '-' (e.g. "sylt1-"). */
  readonly prefix: string;
  readonly nodes: number;
  /** Underlay subnets 192.168.10.0/24, 192.168.20.0/24, ... routed by the rtr namespace. */
  readonly subnets: number;
  /** MTU of pod veths unless addPod says otherwise. Default 1500 (use 1450 when an overlay will run). */
  readonly podMtu?: number;
  /** How nodes are spread over subnets. Default "contiguous". */
  readonly placement?: NodePlacement;
  /**
   * IPv6 off in every node and pod namespace. For checks that count packets on tunnel devices: the
   * kernel's IPv6 autoconfiguration (router solicitations, MLD reports) would add packets of its own.
   */
  readonly disableIpv6?: boolean;
  /** Default /tmp/switchyard-lab/<prefix>. */
  readonly runDir?: string;
  /**
   * Each node's pod block, in node order, for labs without agents: createLab writes each node's conflist
   * (no wait for policy). Without it the node's agent installs the conflist once the node has a block.
   */
  readonly podBlocks?: readonly string[];
  /** The switchyard-cni binary. Default: the package's dist/cni/switchyard-cni (hack/build-cni.sh). */
  readonly cniPlugin?: string;
}

export interface LabSubnet {
  readonly index: number;
  readonly cidr: string;
  /** The router's address on this subnet (.1): every node's default gateway. */
  readonly gateway: string;
  /** The bridge in the fabric namespace. */
  readonly bridge: string;
}

export interface LabNode {
  /** The node's name ("n1"), as the cluster sees it. */
  readonly name: string;
  readonly netns: string;
  readonly subnet: number;
  /** eth0 address (the node's InternalIP). */
  readonly ip: string;
  readonly gateway: string;
}

export interface LabPod {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly netns: string;
  /** The node-side veth: podInterfaceName(namespace, name). */
  readonly hostInterface: string;
  readonly mtu: number;
}

export interface Lab {
  readonly prefix: string;
  readonly runDir: string;
  readonly fabricNetns: string;
  readonly routerNetns: string;
  readonly podMtu: number;
  readonly subnets: readonly LabSubnet[];
  readonly nodes: readonly LabNode[];
  /** IPv6 is off in every node and pod namespace (LabOptions.disableIpv6). */
  readonly ipv6Disabled?: boolean;
  /** The switchyard-cni binary the nodes install. */
  readonly cniPlugin: string;
  /** Kept current by addPod/removePod (and mirrored to state.json). */
  readonly pods: LabPod[];
}

export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  /** Node name ("n1"). */
  readonly node: string;
  /** A static address (in the node's block); without it the plugin's IPAM picks one. */
  readonly ip?: string;
  /** A pod MTU other than the node's (set on both veth ends after ADD, as a misconfigured pod would have). */
  readonly mtu?: number;
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

/** `ip route ... proto 201`: the lab's static pod routes, so they can be found and removed as a group. */
export const LAB_ROUTE_PROTO = "201";
const LAB_RUN_ROOT = "/tmp/switchyard-lab";
const PARALLEL = 8;

export function assertLabPrefix(prefix: string): void {
  // The trailing '-' keeps "sylt1-" from matching "sylt10-..." when namespaces are discovered by prefix.
  if (!/^[a-z0-9][a-z0-9-]{0,30}-$/.test(prefix)) {
    throw new Error(`lab prefix ${JSON.stringify(prefix)} must be lower-case letters, digits and '-', at most 32 characters, ending with '-'`);
  }
}

export function labRunDir(prefix: string): string {
  assertLabPrefix(prefix);
  return join(LAB_RUN_ROOT, prefix);
}

/** `<prefix>p-<ns>-<name>`, sanitised to [a-z0-9.-]. Collisions are refused by addPod. */
export function podNetnsName(prefix: string, namespace: string, name: string): string {
  const clean = (s: string): string => s.toLowerCase().replace(/[^a-z0-9.-]/g, "-");
  return `${prefix}p-${clean(namespace)}-${clean(name)}`;
}

export function findLabNode(lab: Lab, name: string): LabNode {
  const node = lab.nodes.find((n) => n.name === name);
  if (node === undefined) throw new Error(`lab ${lab.prefix}: no node ${name} (nodes: ${lab.nodes.map((n) => n.name).join(", ")})`);
  return node;
}

export function findLabPod(lab: Lab, ref: PodRef): LabPod {
  const pod = lab.pods.find((p) => p.namespace === ref.namespace && p.name === ref.name);
  if (pod === undefined) throw new Error(`lab ${lab.prefix}: no pod ${ref.namespace}/${ref.name}`);
  return pod;
}

/** Names of existing namespaces that start with `prefix`. */
export async function listLabNamespaces(prefix: string): Promise<string[]> {
  assertLabPrefix(prefix);
  const out = await runOk("ip", ["netns", "list"], { timeoutMs: 10_000 });
  return out
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(prefix));
}

async function ipBatch(netns: string | undefined, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  const args = netns === undefined ? ["-batch", "-"] : ["-n", netns, "-batch", "-"];
  await runOk("ip", args, { stdin: `${lines.join("\n")}\n`, timeoutMs: 30_000 });
}

async function sysctl(netns: string, settings: readonly string[]): Promise<void> {
  await runOk("sysctl", ["-q", "-w", ...settings], { netns, timeoutMs: 10_000 });
}

const NODE_SYSCTLS = ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"];
const IPV6_OFF = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];

/** Builds fabric, router and nodes. Refuses when namespaces with the prefix exist (destroyLab first). */
export async function createLab(options: LabOptions): Promise<Lab> {
  const { prefix, nodes: nodeCount, subnets: subnetCount } = options;
  assertLabPrefix(prefix);
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 200) throw new Error(`nodes must be 1..200, got ${nodeCount}`);
  if (!Number.isInteger(subnetCount) || subnetCount < 1 || subnetCount > 25) throw new Error(`subnets must be 1..25, got ${subnetCount}`);
  const existing = await listLabNamespaces(prefix);
  if (existing.length > 0) throw new Error(`lab ${prefix} already has namespaces (${existing.slice(0, 3).join(", ")}...): destroyLab first`);

  const runDir = options.runDir ?? labRunDir(prefix);
  const subnets: LabSubnet[] = Array.from({ length: subnetCount }, (_, i) => {
    const octet = 10 * (i + 1);
    return { index: i, cidr: `192.168.${octet}.0/24`, gateway: `192.168.${octet}.1`, bridge: `br${octet}` };
  });
  const placement = options.placement ?? "contiguous";
  if (typeof placement !== "string") {
    if (placement.length !== nodeCount) throw new Error(`placement lists ${placement.length} subnets for ${nodeCount} nodes`);
    const bad = placement.find((s) => !Number.isInteger(s) || s < 0 || s >= subnetCount);
    if (bad !== undefined) throw new Error(`placement subnet ${bad} is not one of 0..${subnetCount - 1}`);
  }
  const nodes: LabNode[] = Array.from({ length: nodeCount }, (_, i) => {
    const subnet = typeof placement !== "string" ? placement[i]! : placement === "round-robin" ? i % subnetCount : Math.floor((i * subnetCount) / nodeCount);
    const s = subnets[subnet]!;
    return { name: `n${i + 1}`, netns: `${prefix}n${i + 1}`, subnet, ip: `192.168.${10 * (subnet + 1)}.${11 + i}`, gateway: s.gateway };
  });
  if (options.podBlocks !== undefined && options.podBlocks.length !== nodeCount) throw new Error(`podBlocks lists ${options.podBlocks.length} blocks for ${nodeCount} nodes`);
  const lab: Lab = {
    prefix,
    runDir,
    fabricNetns: `${prefix}fabric`,
    routerNetns: `${prefix}rtr`,
    podMtu: options.podMtu ?? 1500,
    subnets,
    nodes,
    pods: [],
    ...(options.disableIpv6 ? { ipv6Disabled: true } : {}),
    cniPlugin: options.cniPlugin ?? packagePath("dist", "cni", "switchyard-cni"),
  };

  try {
    await mkdir(runDir, { recursive: true });
    await ipBatch(undefined, [lab.fabricNetns, lab.routerNetns, ...nodes.map((n) => n.netns)].map((ns) => `netns add ${ns}`));
    // The fabric: one bridge per subnet, a veth to every node and one to the router per subnet.
    await ipBatch(lab.fabricNetns, [
      "link set lo up",
      ...subnets.flatMap((s) => [`link add ${s.bridge} type bridge`, `link set ${s.bridge} up`]),
      ...nodes.flatMap((n) => [`link add ${n.name} type veth peer name eth0 netns ${n.netns}`, `link set ${n.name} master ${subnets[n.subnet]!.bridge}`, `link set ${n.name} up`]),
      ...subnets.flatMap((s) => [`link add r${s.bridge.slice(2)} type veth peer name eth${s.bridge.slice(2)} netns ${lab.routerNetns}`, `link set r${s.bridge.slice(2)} master ${s.bridge}`, `link set r${s.bridge.slice(2)} up`]),
    ]);
    // A dumb wire: bridged frames are not handed to the fabric's own netfilter (-e: key may not exist).
    await runOk("sysctl", ["-q", "-e", "-w", "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-arptables=0"], { netns: lab.fabricNetns, timeoutMs: 10_000 });
    await ipBatch(lab.routerNetns, ["link set lo up", ...subnets.flatMap((s) => [`addr add ${s.gateway}/24 dev eth${s.bridge.slice(2)}`, `link set eth${s.bridge.slice(2)} up`])]);
    await sysctl(lab.routerNetns, NODE_SYSCTLS);
    await mapBounded(nodes, PARALLEL, async (n) => {
      // The default route matters beyond reaching the router: proxy_arp answers for 169.254.1.1 only when
      // the node has a route to it through another interface (kernel-lab.md §8.8).
      // IPv6 off first, when asked, so no interface ever autoconfigures.
      await sysctl(n.netns, [...(lab.ipv6Disabled ? IPV6_OFF : []), ...NODE_SYSCTLS]);
      await ipBatch(n.netns, ["link set lo up", `addr add ${n.ip}/24 dev eth0`, "link set eth0 up", `route add default via ${n.gateway} dev eth0`]);
    });
    if (options.podBlocks !== undefined) {
      for (const [i, n] of nodes.entries()) configureLabNodeCni(lab, n.name, { block: options.podBlocks[i]!, mtu: lab.podMtu });
    }
    await writeLabState(lab);
    return lab;
  } catch (e) {
    await destroyLab(prefix, { runDir });
    throw e;
  }
}

/** The CNI install a node's agent would make (here: from the lab, for labs without agents). */
export function labCniInstall(lab: Pick<Lab, "runDir" | "cniPlugin">, node: string, policyWaitSeconds: number): CniInstallOptions & { readonly dirs: LabCniDirs } {
  const dirs = labCniDirs(lab.runDir, node);
  // The lab runs only switchyard-cni: hostPorts are tested against a real chain in test/kernel/cni-libcni.test.ts.
  return { binDir: dirs.binDir, confDir: dirs.confDir, stateDir: dirs.stateDir, dataDir: dirs.dataDir, pluginBinary: lab.cniPlugin, policyWaitSeconds, chain: [], dirs };
}

/** Writes a node's conflist and plugin as its agent would (labs without agents), ready at once. */
export function configureLabNodeCni(lab: Pick<Lab, "runDir" | "cniPlugin">, node: string, plan: { readonly block: string; readonly mtu: number }): void {
  installCni(labCniInstall(lab, node, 0), plan);
}

/** Adds a pod as a runtime does: its namespace, then the node's conflist through the CNI exec protocol (switchyard-cni). */
export async function addPod(lab: Lab, spec: PodSpec): Promise<LabPod> {
  const node = findLabNode(lab, spec.node);
  if (spec.ip !== undefined && parseIPv4(spec.ip) === undefined) throw new Error(`pod ${spec.namespace}/${spec.name}: invalid IPv4 address ${JSON.stringify(spec.ip)}`);
  const netns = podNetnsName(lab.prefix, spec.namespace, spec.name);
  const clash = lab.pods.find((p) => p.netns === netns || (p.namespace === spec.namespace && p.name === spec.name));
  if (clash !== undefined) throw new Error(`pod ${spec.namespace}/${spec.name} (${netns}) clashes with pod ${clash.namespace}/${clash.name} (${clash.ip})`);
  const placeholder: LabPod = { namespace: spec.namespace, name: spec.name, node: node.name, ip: spec.ip ?? "", netns, hostInterface: podInterfaceName(spec.namespace, spec.name), mtu: spec.mtu ?? lab.podMtu };

  await runOk("ip", ["netns", "add", netns], { timeoutMs: 10_000 });
  lab.pods.push(placeholder);
  let pod = placeholder;
  try {
    // IPv6 off before the interface exists, when asked, so it never autoconfigures.
    if (lab.ipv6Disabled) await sysctl(netns, IPV6_OFF);
    const added = await cniAdd(cniInvocation(lab, node, placeholder, spec.ip));
    const mtu = conflistMtu(lab, node.name) ?? lab.podMtu;
    pod = { ...placeholder, ip: added.ip, mtu: spec.mtu ?? mtu };
    lab.pods[lab.pods.indexOf(placeholder)] = pod;
    if (spec.mtu !== undefined && spec.mtu !== mtu) await setPodMtu(lab, spec.mtu, [pod]);
  } catch (e) {
    await removePod(lab, pod);
    throw e;
  }
  await writeLabState(lab);
  return pod;
}

function cniInvocation(lab: Lab, node: LabNode, pod: Pick<LabPod, "namespace" | "name" | "netns">, ip: string | undefined) {
  return { nodeNetns: node.netns, dirs: labCniDirs(lab.runDir, node.name), containerId: pod.netns, podNetns: pod.netns, namespace: pod.namespace, name: pod.name, ...(ip !== undefined ? { ip } : {}) };
}

function conflistMtu(lab: Lab, node: string): number | undefined {
  try {
    const list = JSON.parse(readFileSync(join(labCniDirs(lab.runDir, node).confDir, "10-switchyard.conflist"), "utf8")) as { plugins?: { mtu?: number }[] };
    return list.plugins?.[0]?.mtu;
  } catch {
    return undefined;
  }
}

/** Stops the pod's processes and deletes its veth and namespace; a no-op for an unknown pod. */
export async function removePod(lab: Lab, ref: PodRef): Promise<void> {
  const index = lab.pods.findIndex((p) => p.namespace === ref.namespace && p.name === ref.name);
  if (index < 0) return;
  const pod = lab.pods[index]!;
  await stopRecordedProcess(lab.runDir, pod.netns);
  await stopNamespaceProcesses(pod.netns);
  const node = lab.nodes.find((n) => n.name === pod.node);
  if (node !== undefined) {
    // DEL as a runtime does (frees the address, removes the veth and the host route); the explicit veth
    // delete after it covers a DEL that failed: namespace teardown frees devices asynchronously, and
    // re-adding the same pod right away would otherwise find its veth name still taken.
    await cniDel(cniInvocation(lab, node, pod, undefined)).catch(() => undefined);
    await runCommand("ip", ["-n", node.netns, "link", "del", pod.hostInterface], { timeoutMs: 10_000 });
  }
  await runCommand("ip", ["netns", "del", pod.netns], { timeoutMs: 10_000 });
  // By identity, not by the index found before the awaits: pods removed meanwhile (the kubelet removes
  // several at once) shift the array, and a stale index drops another pod's entry and keeps this one.
  const now = lab.pods.indexOf(pod);
  if (now >= 0) lab.pods.splice(now, 1);
  await writeLabState(lab);
}

/**
 * A pod lost with its node (a reboot): its processes and namespace go, and nothing else happens: no CNI
 * DEL (the runtime never got to run one), so its address allocation stays on the node's disk, as it would.
 */
export async function dropPodWithNode(lab: Lab, ref: PodRef): Promise<void> {
  const pod = lab.pods.find((p) => p.namespace === ref.namespace && p.name === ref.name);
  if (pod === undefined) return;
  await stopRecordedProcess(lab.runDir, pod.netns);
  await stopNamespaceProcesses(pod.netns);
  await runCommand("ip", ["netns", "del", pod.netns], { timeoutMs: 10_000 });
  const now = lab.pods.indexOf(pod);
  if (now >= 0) lab.pods.splice(now, 1);
  await writeLabState(lab);
}

/** Sets the MTU on both ends of every pod's veth, as a CNI plugin gives both sides the pod MTU. */
export async function setPodMtu(lab: Lab, mtu: number, pods: readonly LabPod[] = lab.pods): Promise<void> {
  await mapBounded(pods, PARALLEL, async (pod) => {
    await ipBatch(findLabNode(lab, pod.node).netns, [`link set dev ${pod.hostInterface} mtu ${mtu}`]);
    await ipBatch(pod.netns, [`link set dev eth0 mtu ${mtu}`]);
  });
}

/**
 * Lab-only inter-node routing until a routing agent exists: every node gets `podIP/32 via <node of the pod>`
 * for pods on same-subnet nodes and `podIP/32 via <its router>` for the others; the router gets every pod
 * via its node. Idempotent (`route replace`), and routes of pods that are gone are removed (all carry
 * proto LAB_ROUTE_PROTO).
 */
export async function installStaticPodRoutes(lab: Lab): Promise<void> {
  const nodeByName = new Map(lab.nodes.map((n) => [n.name, n]));
  const desiredFor = (netns: string): Map<string, string> => {
    const want = new Map<string, string>();
    const self = lab.nodes.find((n) => n.netns === netns);
    for (const pod of lab.pods) {
      const home = nodeByName.get(pod.node);
      if (home === undefined || home === self) continue;
      const via = self === undefined || self.subnet === home.subnet ? home.ip : self.gateway;
      want.set(`${pod.ip}/32`, via);
    }
    return want;
  };
  await mapBounded([...lab.nodes.map((n) => n.netns), lab.routerNetns], PARALLEL, async (netns) => {
    const want = desiredFor(netns);
    const current = await listLabRoutes(netns);
    await ipBatch(netns, [
      ...current.filter((dst) => !want.has(dst)).map((dst) => `route del ${dst} proto ${LAB_ROUTE_PROTO}`),
      ...[...want].map(([dst, via]) => `route replace ${dst} via ${via} proto ${LAB_ROUTE_PROTO}`),
    ]);
  });
}

/** Removes every static pod route installStaticPodRoutes made (e.g. before a routing agent takes over). */
export async function removeStaticPodRoutes(lab: Lab): Promise<void> {
  await mapBounded([...lab.nodes.map((n) => n.netns), lab.routerNetns], PARALLEL, async (netns) => {
    await runOk("ip", ["-n", netns, "route", "flush", "proto", LAB_ROUTE_PROTO], { timeoutMs: 10_000 });
  });
}

async function listLabRoutes(netns: string): Promise<string[]> {
  const out = await runOk("ip", ["-j", "-n", netns, "route", "show", "proto", LAB_ROUTE_PROTO], { timeoutMs: 10_000 });
  const routes = JSON.parse(out.trim() === "" ? "[]" : out) as { dst?: string }[];
  return routes.map((r) => (r.dst !== undefined && !r.dst.includes("/") ? `${r.dst}/32` : (r.dst ?? ""))).filter((d) => d.length > 0);
}

async function stopNamespaceProcesses(netns: string): Promise<number[]> {
  const r = await runCommand("ip", ["netns", "pids", netns], { timeoutMs: 10_000 });
  if (r.code !== 0) return [];
  const pids = r.stdout.split("\n").map((l) => Number(l.trim())).filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
  await Promise.all(pids.map((pid) => stopPid(pid, undefined, 300)));
  return pids;
}

export interface DestroyReport {
  readonly namespaces: readonly string[];
  readonly stoppedPids: readonly number[];
}

/**
 * Tears down every trace of the lab `prefix`: processes recorded in its run dir, any other process still
 * inside one of its namespaces, every namespace whose name starts with the prefix, and the run dir.
 * Needs no in-memory state, so it works after a crash; calling it again is a no-op.
 */
export async function destroyLab(prefix: string, options: { readonly runDir?: string } = {}): Promise<DestroyReport> {
  assertLabPrefix(prefix);
  const runDir = options.runDir ?? labRunDir(prefix);
  const stoppedPids = await stopAllRecordedProcesses(runDir);
  const namespaces = await listLabNamespaces(prefix);
  const inside = await mapBounded(namespaces, PARALLEL, stopNamespaceProcesses);
  stoppedPids.push(...inside.flat());
  // Real nodes' containers live in namespaces of containerd's making: found by their cgroups instead.
  await stopRealNodeLeftovers(prefix, runDir);
  if (namespaces.length > 0) {
    await runCommand("ip", ["-force", "-batch", "-"], { stdin: `${namespaces.map((ns) => `netns del ${ns}`).join("\n")}\n`, timeoutMs: 30_000 });
    await waitFor(`namespaces ${prefix}* to be deleted`, async () => ((await listLabNamespaces(prefix)).length === 0 ? true : undefined), 10_000);
  }
  await rm(runDir, { recursive: true, force: true });
  return { namespaces, stoppedPids };
}

function stateFile(runDir: string): string {
  return join(runDir, "state.json");
}

// Concurrent addPod calls each rewrite the state file: queue the writes so none interleave.
const stateWrites = new Map<string, Promise<void>>();
function writeLabState(lab: Lab): Promise<void> {
  const write = async (): Promise<void> => {
    await mkdir(lab.runDir, { recursive: true });
    await writeFile(stateFile(lab.runDir), `${JSON.stringify(lab, null, 2)}\n`);
  };
  const next = (stateWrites.get(lab.runDir) ?? Promise.resolve()).then(write, write);
  stateWrites.set(lab.runDir, next.catch(() => undefined));
  return next;
}

/** The lab as last written by createLab/addPod/removePod, or undefined when there is none. */
export async function loadLab(prefix: string, options: { readonly runDir?: string } = {}): Promise<Lab | undefined> {
  const runDir = options.runDir ?? labRunDir(prefix);
  try {
    return JSON.parse(await readFile(stateFile(runDir), "utf8")) as Lab;
  } catch {
    return undefined;
  }
}
