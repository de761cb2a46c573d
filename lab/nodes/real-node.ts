// Why: the lab kubelet (lab/kubelet.ts) makes pods by hand; a real cluster's pods come from a kubelet and a
// container runtime, which call the CNI plugin the Switchyard agent installed. This runs a kind node's
// parts for one lab node, with no container engine: Debian's containerd and runc and the kubelet of the
// control plane's release, in the node's network namespace and a mount namespace of the node's own.
//
// The mount namespace is what makes several nodes share one machine: in it the host paths deploy/ mounts
// (/etc/cni/net.d, /opt/cni/bin, /run/switchyard, /var/lib/switchyard/{cni,agent}) and /var/log/containers are the
// node's own directories, so each agent installs its CNI config where its node's containerd reads it, as
// on a machine of its own. containerd and the kubelet share that namespace (the kubelet's volume mounts
// must be visible to the runtime); containerd's state, socket and images are per node, as are the
// kubelet's root dir and its cgroup root (`/sylab-<prefix>-<node>` in every cgroup v1 hierarchy).
//
// The node reaches the API server at the `kubernetes` Service's ClusterIP (10.96.0.1:443, on the node's
// loopback device) through lab/nodes/api-relay.mjs: the address in-cluster clients (the agent and the
// controller, host-network pods) are given by the kubelet. Everything is recorded in the lab's pid files;
// stopRealNodeLeftovers removes what a crashed run left (containers by cgroup, shims by socket address).
import { copyFile, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { runCommand, runOk } from "../../src/base/exec";
import { mapBounded } from "../../src/base/limit";
import { packagePath } from "../../src/base/package-root";
import { waitFor } from "../../src/base/wait";
import { KUBERNETES_SERVICE_IP, spawnRecorded, type Child, type KubeControlPlane } from "../control-plane/kubernetes";
import { forgetProcess, readProcessStartTime, stopPid } from "../processes";
import type { LabNode } from "../topology";

/** The host paths deploy/agent.yaml mounts (and the kubelet's container log links): per node, by bind mount. */
export const NODE_BIND_PATHS = ["/etc/cni/net.d", "/opt/cni/bin", "/run/switchyard", "/var/lib/switchyard/cni", "/var/lib/switchyard/agent", "/var/log/containers"] as const;
/** The images every node's containerd gets (hack/build-images.sh). */
export const NODE_IMAGES = ["pause", "workload", "switchyard"] as const;
export const PAUSE_IMAGE = "docker.io/library/switchyard-pause:dev";
export const WORKLOAD_IMAGE = "docker.io/library/switchyard-workload:dev";
export const SWITCHYARD_IMAGE = "docker.io/library/switchyard:dev";
const CGROUP_ROOT = "/sys/fs/cgroup";

export interface RealNodeOptions {
  readonly prefix: string;
  readonly runDir: string;
  readonly node: LabNode;
  readonly kube: KubeControlPlane;
  /** The root namespace's relay socket to the API server. */
  readonly apiSocket: string;
  /** Labels the kubelet registers its Node with. */
  readonly labels?: Readonly<Record<string, string>>;
  /** hack/build-images.sh's output directory. */
  readonly imageDir: string;
  readonly progress?: (line: string) => void;
}

export interface RealNode {
  readonly name: string;
  readonly dir: string;
  /** containerd's socket (`ctr --address`, `crictl --runtime-endpoint`). */
  readonly containerdSocket: string;
  readonly containerdPid: number;
  /** Milliseconds from starting containerd to the kubelet started (images imported). */
  readonly startMs: number;
  /** `ctr` against this node's containerd, in the k8s.io namespace. */
  ctr(args: readonly string[]): Promise<string>;
  /** Why a process of the node ended, when one did. */
  exitReason(): string | undefined;
  stop(): Promise<void>;
}

/** The cgroup root of a node's pods, the same path in every cgroup v1 hierarchy. */
export function nodeCgroupRoot(prefix: string, node: string): string {
  return `/sylab-${prefix}-${node}`;
}

async function cgroupHierarchies(): Promise<string[]> {
  const entries = await readdir(CGROUP_ROOT, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && e.name !== "unified").map((e) => join(CGROUP_ROOT, e.name));
}

/** Creates the node's cgroup root in every hierarchy (cpuset needs its cpus and mems copied from the parent). */
async function makeCgroupRoot(path: string): Promise<void> {
  for (const h of await cgroupHierarchies()) {
    const dir = join(h, path);
    await mkdir(dir, { recursive: true });
    if (h.endsWith("/cpuset")) {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) await writeFile(join(dir, f), (await readFile(join(h, f), "utf8")).trim());
    }
  }
}

function kubeletConfig(o: { node: LabNode; cgroupRoot: string; socket: string; podLogs: string; caFile: string }): string {
  return stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: o.node.ip,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: 10248,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: o.caFile } },
    authorization: { mode: "Webhook" },
    cgroupDriver: "cgroupfs",
    cgroupRoot: o.cgroupRoot,
    cgroupsPerQOS: true,
    containerRuntimeEndpoint: `unix://${o.socket}`,
    // This machine: cgroup v1 (1.34 warns only), no swap accounting of its own.
    failCgroupV1: false,
    failSwapOn: false,
    podLogsDir: o.podLogs,
    // Several kubelets share one disk and one memory: none may evict or collect images for the others' use.
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    localStorageCapacityIsolation: false,
    serializeImagePulls: false,
    resolvConf: "/etc/resolv.conf",
    nodeStatusUpdateFrequency: "5s",
    syncFrequency: "10s",
    rotateCertificates: false,
    serverTLSBootstrap: false,
  });
}

function containerdConfig(o: { dir: string; socket: string }): string {
  return [
    "version = 2",
    `root = "${join(o.dir, "containerd")}"`,
    `state = "${join(o.dir, "containerd-state")}"`,
    `disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]`,
    "[grpc]",
    `  address = "${o.socket}"`,
    `[plugins."io.containerd.internal.v1.opt"]`,
    `  path = "${join(o.dir, "containerd-opt")}"`,
    `[plugins."io.containerd.grpc.v1.cri"]`,
    `  sandbox_image = "${PAUSE_IMAGE}"`,
    "  netns_mounts_under_state_dir = true",
    // This machine withholds CAP_SYS_RESOURCE: no score below containerd's own (the kubelet asks -998 for sandboxes).
    "  restrict_oom_score_adj = true",
    `  [plugins."io.containerd.grpc.v1.cri".containerd]`,
    `    snapshotter = "overlayfs"`,
    `    default_runtime_name = "runc"`,
    `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
    `      runtime_type = "io.containerd.runc.v2"`,
    `  [plugins."io.containerd.grpc.v1.cri".cni]`,
    `    bin_dir = "/opt/cni/bin"`,
    `    conf_dir = "/etc/cni/net.d"`,
    "",
  ].join("\n");
}

export async function startRealNode(o: RealNodeOptions): Promise<RealNode> {
  const t0 = Date.now();
  const { node, runDir } = o;
  const progress = o.progress ?? (() => undefined);
  const dir = join(runDir, "nodes", node.name);
  const socket = join(dir, "containerd.sock");
  const binDir = o.kube.binDir;
  const children: Child[] = [];
  const stop = async (): Promise<void> => {
    for (const c of [...children].reverse()) {
      if (c.exit === undefined) {
        await stopPid(c.pid, c.record.startTime, 10_000);
        await c.exited;
      }
      await forgetProcess(runDir, c.key);
      // With the kubelet gone, the pods' processes and their shims: nothing restarts them any more.
      if (c.key.startsWith("kubelet-")) await stopNodeContainers(o.prefix, node.name, socket);
    }
    await removeCgroupRoot(nodeCgroupRoot(o.prefix, node.name));
  };
  try {
    const binds = NODE_BIND_PATHS.map((p) => ({ host: p, node: join(dir, "fs", p.slice(1).replaceAll("/", "-")) }));
    for (const b of binds) {
      await mkdir(b.node, { recursive: true });
      // The mount point must exist on the host; an empty directory is all that is added there.
      await mkdir(b.host, { recursive: true });
    }
    // A host-path volume of deploy/agent.yaml (no type): runc needs its source to exist.
    await mkdir("/lib/modules", { recursive: true });
    // As a node's OS provides them (Debian's containernetworking-plugins): loopback, which containerd 1.6
    // sets up each pod's lo with, and portmap, which the agent chains after switchyard-cni.
    const opt = binds.find((b) => b.host === "/opt/cni/bin")!.node;
    for (const plugin of ["loopback", "portmap"]) await copyFile(`/usr/lib/cni/${plugin}`, join(opt, plugin));
    for (const d of ["containerd", "containerd-state", "containerd-opt", "kubelet", "pod-logs"]) await mkdir(join(dir, d), { recursive: true });
    const cgroupRoot = nodeCgroupRoot(o.prefix, node.name);
    await makeCgroupRoot(cgroupRoot);
    const configPath = join(dir, "containerd.toml");
    await writeFile(configPath, containerdConfig({ dir, socket }));

    const mounts = binds.map((b) => `mount --bind '${b.node}' '${b.host}'`).join(" && ");
    const containerd = await spawnRecorded(runDir, `containerd-${node.name}`, `containerd of ${node.name}`, "nsenter", [
      `--net=/run/netns/${node.netns}`,
      "--",
      "unshare",
      "--mount",
      "--propagation",
      "slave",
      "--",
      "sh",
      "-c",
      `${mounts} && exec containerd --config '${configPath}'`,
    ]);
    children.push(containerd);
    const ctr = async (args: readonly string[]): Promise<string> => runOk("ctr", ["--address", socket, "-n", "k8s.io", ...args], { timeoutMs: 120_000 });
    await waitFor(`containerd of ${node.name} to serve`, async () => {
      if (containerd.exit) throw new Error(containerd.exit);
      return existsSync(socket) && (await runCommand("ctr", ["--address", socket, "version"], { timeoutMs: 5_000 })).code === 0 ? true : undefined;
    }, 30_000, 50);
    for (const image of NODE_IMAGES) await ctr(["images", "import", "--no-unpack=false", join(o.imageDir, `${image}.tar`)]);
    progress(`${node.name}: containerd up, ${NODE_IMAGES.length} images imported (${Date.now() - t0} ms)`);

    // The API server at the `kubernetes` Service's address, inside the node.
    await runCommand("ip", ["-n", node.netns, "addr", "add", `${KUBERNETES_SERVICE_IP}/32`, "dev", "lo"], { timeoutMs: 10_000 });
    const relay = await spawnRecorded(runDir, `api-relay-${node.name}`, `API relay of ${node.name}`, "nsenter", [
      `--net=/run/netns/${node.netns}`,
      "--",
      process.execPath,
      packagePath("lab", "nodes", "api-relay.mjs"),
      `tcp:${KUBERNETES_SERVICE_IP}:443`,
      `unix:${o.apiSocket}`,
    ]);
    children.push(relay);

    const kubeconfig = await o.kube.nodeKubeconfig(node.name, join(dir, "kubelet.kubeconfig"), `https://${KUBERNETES_SERVICE_IP}:443`);
    const kubeletConfigPath = join(dir, "kubelet.yaml");
    await writeFile(kubeletConfigPath, kubeletConfig({ node, cgroupRoot, socket, podLogs: join(dir, "pod-logs"), caFile: o.kube.ca.caCert }));
    const kubelet = await spawnRecorded(runDir, `kubelet-${node.name}`, `kubelet of ${node.name}`, "nsenter", [
      "-t",
      String(containerd.pid),
      "--net",
      "--mount",
      "--",
      join(binDir, "kubelet"),
      `--config=${kubeletConfigPath}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${join(dir, "kubelet")}`,
      `--cert-dir=${join(dir, "kubelet", "pki")}`,
      `--hostname-override=${node.name}`,
      `--node-ip=${node.ip}`,
      `--node-labels=${Object.entries(o.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(",")}`,
      "--v=1",
    ]);
    children.push(kubelet);
    return {
      name: node.name,
      dir,
      containerdSocket: socket,
      containerdPid: containerd.pid,
      startMs: Date.now() - t0,
      ctr,
      exitReason: () => children.map((c) => c.exit).find((e) => e !== undefined),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Pids of every process in a cgroup directory and below. */
async function cgroupPids(dir: string): Promise<number[]> {
  const out: number[] = [];
  const walk = async (d: string): Promise<void> => {
    try {
      for (const l of (await readFile(join(d, "cgroup.procs"), "utf8")).split("\n")) if (l.trim()) out.push(Number(l));
      for (const e of await readdir(d, { withFileTypes: true })) if (e.isDirectory()) await walk(join(d, e.name));
    } catch {
      // removed meanwhile
    }
  };
  await walk(dir);
  return out;
}

/** Removes a cgroup tree, deepest first (a cgroup is removed with rmdir once it has no processes). */
async function removeCgroupTree(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  await waitFor(`cgroup ${dir} to be removed`, async () => {
    try {
      await rmdir(dir);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ENOENT" ? true : undefined;
    }
  }, 10_000, 50).catch(() => undefined);
}

async function removeCgroupRoot(path: string): Promise<void> {
  for (const h of await cgroupHierarchies()) {
    const dir = join(h, path);
    for (const pid of await cgroupPids(dir)) await stopPid(pid, undefined, 2_000);
    await removeCgroupTree(dir);
  }
}

/** containerd's shims for `socket` (their command line names it: `-address <socket>`). */
async function shimPids(socket: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = (await readFile(`/proc/${e}/cmdline`, "utf8")).split("\0");
      if (argv[0]?.includes("containerd-shim") && argv.includes(socket)) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Stops the containers of a node (every process under its cgroup root) and their shims. */
async function stopNodeContainers(prefix: string, node: string, socket: string): Promise<void> {
  const root = nodeCgroupRoot(prefix, node);
  const pids = new Set<number>();
  for (const h of await cgroupHierarchies()) for (const p of await cgroupPids(join(h, root))) pids.add(p);
  await mapBounded([...pids], 16, (p) => stopPid(p, undefined, 2_000));
  for (const p of await shimPids(socket)) if ((await readProcessStartTime(p)) !== undefined) await stopPid(p, undefined, 2_000);
}

/** What real nodes of `prefix` left behind (a crashed run): their containers, shims and cgroup roots. */
export async function stopRealNodeLeftovers(prefix: string, runDir: string): Promise<void> {
  const nodesDir = join(runDir, "nodes");
  let nodes: string[] = [];
  try {
    nodes = await readdir(nodesDir);
  } catch {
    // no real nodes
  }
  for (const n of nodes) await stopNodeContainers(prefix, n, join(nodesDir, n, "containerd.sock"));
  for (const h of await cgroupHierarchies().catch(() => [])) {
    for (const e of await readdir(h).catch(() => [] as string[])) if (e.startsWith(`sylab-${prefix}-`)) await removeCgroupRoot(`/${e}`);
  }
}
