// `switchyard lab up|status|probe|down`: a LabCluster that outlives the command that started it, so a
// user can `export KUBECONFIG=...` and use kubectl against it. Why this shape:
// - The cluster lives in a detached supervisor process (`switchyard lab serve`, hidden), because the API
//   server emulator, the controller, the agents and the pod agents (the probers) are in-process objects.
//   `lab up` starts it, follows its log until it reports Ready, prints the kubeconfig and returns.
// - Probes need the pod agents' stdin, which only the supervisor holds: it serves one read-only endpoint
//   on 127.0.0.1 (GET /probe) that runs probeMatrix; `lab probe` calls it.
// - Nothing needs memory to be torn down: the supervisor's pid (with its start time, so a recycled pid is
//   never signalled) is in the CLI state dir, and everything else is found by destroyLab(prefix) (pid
//   files, namespaces by prefix). `lab down` works the same after the supervisor was SIGKILLed.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import type { Mode } from "../api/cluster-network";
import { waitFor } from "../base/wait";
import { ClusterNetworkGVK, NodeNetworkGVK } from "../kube/kinds";
import { PROTOCOLS, type Protocol } from "../model/cluster";
import { LabCluster, type ControlPlaneKind } from "../../lab/cluster/lab-cluster";
import { kubeBinaries } from "../../lab/control-plane/kubernetes";
import { buildImages, startRealCluster, type RealCluster } from "../../lab/nodes/real-cluster";
import { switchyardBin } from "../../lab/cluster/daemons";
import { subnetLetter } from "../../lab/cluster/nodes";
import type { ClusterNetworkObject } from "../../lab/cluster/samples";
import { formatProbeMatrix } from "../../lab/pods";
import { labCniDirs } from "../../lab/cni-runtime";
import { readProcessStartTime, stopPid } from "../../lab/processes";
import { assertLabPrefix, destroyLab, listLabNamespaces, loadLab } from "../../lab/topology";
import { DEFAULT_LAB_PREFIX } from "./lab-defaults";
import { readValidClusterNetwork } from "./validate";

export { DEFAULT_LAB_PREFIX };
const CLI_ROOT = "/tmp/switchyard-lab-cli";

export interface LabIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** `lab up`/`lab serve` flags, the numbers and choices already parsed and checked by src/cli/flags.ts. */
export interface LabUpOptions {
  readonly prefix?: string;
  readonly nodes: number;
  readonly subnets: number;
  readonly mode: Mode;
  readonly clusterNetwork?: string;
  readonly processes?: boolean;
  readonly podsPerNode: number;
  readonly timeout: number;
  readonly controlPlane: ControlPlaneKind;
  readonly kubelet?: boolean;
}

/** `lab probe` flags, parsed and checked by src/cli/flags.ts. */
export interface LabProbeOptions {
  readonly prefix?: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly timeout: number;
  readonly json?: boolean;
}

interface SupervisorRecord {
  readonly pid: number;
  readonly startTime: string | undefined;
  readonly prefix: string;
  readonly startedAt: string;
}

interface ReadyRecord {
  readonly pid: number;
  readonly prefix: string;
  /** The supervisor's probe endpoint on 127.0.0.1. */
  readonly port: number;
  readonly kubeconfig: string;
  readonly apiUrl: string;
  readonly readyMs: number;
  readonly timings: Readonly<Record<string, number>>;
}

export interface LabProbeReply {
  readonly port: number;
  readonly protocol: Protocol;
  readonly names: string[];
  readonly matrix: boolean[][];
  readonly ms: number;
}

export function labCliDir(prefix: string): string {
  assertLabPrefix(prefix);
  return join(CLI_ROOT, prefix);
}
const files = (prefix: string) => {
  const dir = labCliDir(prefix);
  return { dir, supervisor: join(dir, "supervisor.json"), ready: join(dir, "ready.json"), log: join(dir, "supervisor.log"), kubeconfig: join(dir, "kubeconfig") };
};

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

async function supervisorAlive(rec: SupervisorRecord | undefined): Promise<boolean> {
  if (rec === undefined) return false;
  const st = await readProcessStartTime(rec.pid);
  return st !== undefined && (rec.startTime === undefined || st === rec.startTime);
}

interface ServeConfig {
  readonly prefix: string;
  readonly nodes: number;
  readonly subnets: number;
  readonly podsPerNode: number;
  readonly mode: Mode;
  readonly clusterNetwork?: ClusterNetworkObject;
  readonly processes: boolean;
  readonly controlPlane: ControlPlaneKind;
  /** Real nodes: kubelet + containerd per node, Switchyard from deploy/ (lab/nodes). */
  readonly kubelet: boolean;
}

/** Flags to a checked config, or a sentence saying what is wrong. */
function parseUpOptions(opts: LabUpOptions): ServeConfig | string {
  const prefix = opts.prefix ?? DEFAULT_LAB_PREFIX;
  try {
    assertLabPrefix(prefix);
  } catch (e) {
    return (e as Error).message;
  }
  let clusterNetwork: ClusterNetworkObject | undefined;
  if (opts.clusterNetwork !== undefined) {
    // Checked as `switchyard validate` checks it, before a namespace is made (each problem with its line).
    const read = readValidClusterNetwork(opts.clusterNetwork);
    if (!read.ok) return `--cluster-network ${opts.clusterNetwork} is not a valid ClusterNetwork:\n  ${read.problems.join("\n  ")}`;
    clusterNetwork = read.value as ClusterNetworkObject;
  }
  const { nodes, subnets, podsPerNode, mode, controlPlane } = opts;
  if (opts.kubelet === true && controlPlane !== "kubernetes") return "--kubelet needs --control-plane kubernetes (kubelets register with the real API server)";
  return { prefix, nodes, subnets, podsPerNode, mode, ...(clusterNetwork ? { clusterNetwork } : {}), processes: opts.processes === true, controlPlane, kubelet: opts.kubelet === true };
}

function serveArgs(opts: LabUpOptions, prefix: string): string[] {
  return [
    "lab",
    "serve",
    "--prefix",
    prefix,
    "--nodes",
    String(opts.nodes),
    "--subnets",
    String(opts.subnets),
    "--mode",
    opts.mode,
    "--pods-per-node",
    String(opts.podsPerNode),
    ...(opts.clusterNetwork ? ["--cluster-network", opts.clusterNetwork] : []),
    ...(opts.processes ? ["--processes"] : []),
    "--timeout",
    String(opts.timeout),
    "--control-plane",
    opts.controlPlane,
    ...(opts.kubelet ? ["--kubelet"] : []),
  ];
}

/** `lab up`: starts the supervisor, follows its progress, returns once the cluster is Ready. */
export async function runLabUp(opts: LabUpOptions, io: LabIo): Promise<number> {
  const cfg = parseUpOptions(opts);
  if (typeof cfg === "string") {
    io.err(`error: ${cfg}`);
    return 2;
  }
  const timeoutMs = opts.timeout * 1000;
  const f = files(cfg.prefix);
  const running = await readJson<SupervisorRecord>(f.supervisor);
  if (await supervisorAlive(running)) {
    io.err(`error: lab ${cfg.prefix} is already up (supervisor pid ${running?.pid}); \`switchyard lab down --prefix ${cfg.prefix}\` first`);
    return 1;
  }
  if (cfg.controlPlane === "kubernetes") {
    // Built (or found) here, in the foreground: a first build takes minutes and is not the lab's start-up.
    try {
      io.out(`kube-apiserver, etcd and kubectl${cfg.kubelet ? ", kubelet, kube-controller-manager and kube-scheduler" : ""}: ${await kubeBinaries((l) => io.out(l), { nodes: cfg.kubelet })}`);
      if (cfg.kubelet) io.out(`images: ${await buildImages((l) => io.out(l))}`);
    } catch (e) {
      io.err(`error: ${(e as Error).message}`);
      return 1;
    }
  }
  // Leftovers of a crashed run (no live supervisor): remove them before building anew.
  await destroyLab(cfg.prefix);
  await rm(f.dir, { recursive: true, force: true });
  await mkdir(f.dir, { recursive: true });

  const started = Date.now();
  const fd = openSync(f.log, "a");
  let child;
  try {
    child = spawn(process.execPath, [switchyardBin(), ...serveArgs(opts, cfg.prefix)], { detached: true, stdio: ["ignore", fd, fd], env: { ...process.env } });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    io.err("error: could not start the lab supervisor");
    return 1;
  }
  let exited: string | undefined;
  child.once("exit", (code, signal) => {
    exited = signal ?? `code ${code}`;
  });
  child.unref();
  const record: SupervisorRecord = { pid, startTime: await readProcessStartTime(pid), prefix: cfg.prefix, startedAt: new Date().toISOString() };
  await writeFile(f.supervisor, `${JSON.stringify(record)}\n`);
  io.out(`lab ${cfg.prefix}: supervisor pid ${pid} (log ${f.log})`);

  // Follow the supervisor's log (its progress lines) until it reports Ready, dies, or the time is up.
  let offset = 0;
  const follow = (): void => {
    let text: string;
    try {
      text = readFileSync(f.log, "utf8");
    } catch {
      return;
    }
    const end = text.lastIndexOf("\n") + 1;
    if (end <= offset) return;
    for (const line of text.slice(offset, end).split("\n")) if (line !== "" && !line.startsWith("{")) io.out(`  ${line}`);
    offset = end;
  };
  // Ctrl-C while waiting takes the half-built lab down again instead of leaving it behind.
  let interrupted: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = sig;
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let ready: ReadyRecord | undefined;
  try {
    ready = await waitFor(
      "the lab to be Ready",
      async () => {
        if (interrupted !== undefined) throw new Error(`${interrupted} received`);
        follow();
        const r = await readJson<ReadyRecord>(f.ready);
        if (r !== undefined && r.pid === pid) return r;
        if (exited !== undefined || !(await supervisorAlive(record))) throw new Error(`the supervisor exited (${exited ?? "gone"}) before the lab was Ready`);
        return undefined;
      },
      timeoutMs,
      100,
    );
  } catch (e) {
    follow();
    if (interrupted === undefined) {
      // The log goes with the lab: show its end (errors, agent and controller warnings) first.
      const tail = (() => {
        try {
          return readFileSync(f.log, "utf8").trimEnd().split("\n").slice(-15);
        } catch {
          return [];
        }
      })();
      for (const line of tail) io.err(`  | ${line}`);
    }
    io.err(`error: ${(e as Error).message}; cleaning up`);
    await labDown(cfg.prefix);
    return interrupted !== undefined ? 130 : 1;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
  follow();
  io.out(`lab ${cfg.prefix} is up in ${((Date.now() - started) / 1000).toFixed(1)} s (cluster settled ${(ready.readyMs / 1000).toFixed(1)} s after the supervisor started)`);
  io.out(`export KUBECONFIG=${ready.kubeconfig}`);
  io.out(`  kubectl get clusternetworks,nodenetworks     switchyard lab status     switchyard lab probe     switchyard lab down${cfg.prefix === DEFAULT_LAB_PREFIX ? "" : ` --prefix ${cfg.prefix}`}`);
  return 0;
}

/** The hidden `lab serve`: hosts the LabCluster until SIGTERM/SIGINT, serving probes on 127.0.0.1. */
export async function runLabServe(opts: LabUpOptions, io: LabIo): Promise<number> {
  const cfg = parseUpOptions(opts);
  if (typeof cfg === "string") {
    io.err(`error: ${cfg}`);
    return 2;
  }
  const f = files(cfg.prefix);
  await mkdir(f.dir, { recursive: true });
  if (cfg.kubelet) return serveRealNodes(cfg, f, opts.timeout, io);
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(2)}s`;
  const cluster = new LabCluster({
    prefix: cfg.prefix,
    nodes: cfg.nodes,
    subnets: cfg.subnets,
    podsPerNode: cfg.podsPerNode,
    mode: cfg.mode,
    ...(cfg.clusterNetwork ? { clusterNetwork: cfg.clusterNetwork } : {}),
    agentsInProcess: !cfg.processes,
    controlPlane: cfg.controlPlane,
    // A mode that cannot serve every pair (host-gw across subnets) is a result to inspect, not a failure.
    acceptDegraded: true,
    // Give up (and say why) before `lab up` does.
    readyTimeoutMs: Math.max(10, opts.timeout - 10) * 1000,
    kubeconfigPath: f.kubeconfig,
    progress: (line) => io.out(`${stamp()} ${line}`),
  });
  // Created now, listening only once the cluster is Ready.
  const server: Server = createServer((req, res) => {
    void handleRequest(cluster, req.url ?? "/").then(({ status, body }) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(`${JSON.stringify(body)}\n`);
    });
  });
  let stopping: Promise<void> | undefined;
  let signalled: (sig: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    signalled = resolve;
  });
  const stop = (sig: string): void => {
    stopping ??= (async () => {
      io.out(`${stamp()} ${sig}: tearing the lab down`);
      await rm(f.ready, { force: true });
      await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
      const r = await cluster.close();
      io.out(`${stamp()} down: ${r.destroyed.namespaces.length} namespaces removed${r.errors.length > 0 ? `; problems: ${r.errors.join("; ")}` : ""}`);
    })();
    signalled(sig);
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => stop(sig));

  try {
    await cluster.start();
  } catch (e) {
    io.err(`${stamp()} error: the lab did not come up: ${(e as Error).message}`);
    stop("start failure");
    await stopping;
    return 1;
  }
  const readyMs = Date.now() - t0;
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a !== null ? a.port : 0);
    });
  });
  const ready: ReadyRecord = { pid: process.pid, prefix: cfg.prefix, port, kubeconfig: cluster.kubeconfigPath, apiUrl: cluster.apiUrl, readyMs, timings: cluster.timings };
  await writeFile(f.ready, `${JSON.stringify(ready)}\n`);
  io.out(`${stamp()} serving probes on http://127.0.0.1:${port}/probe`);
  await stopped;
  await stopping;
  return 0;
}

/** `lab serve --kubelet`: hosts a cluster of real nodes (lab/nodes) until SIGTERM/SIGINT. */
async function serveRealNodes(cfg: ServeConfig, f: ReturnType<typeof files>, timeoutSec: number, io: LabIo): Promise<number> {
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(2)}s`;
  let cluster: RealCluster;
  try {
    cluster = await startRealCluster({
      prefix: cfg.prefix,
      nodes: cfg.nodes,
      subnets: cfg.subnets,
      mode: cfg.mode,
      ...(cfg.clusterNetwork ? { clusterNetwork: cfg.clusterNetwork } : {}),
      readyTimeoutMs: Math.max(10, timeoutSec - 10) * 1000,
      progress: (line) => io.out(`${stamp()} ${line}`),
    });
  } catch (e) {
    io.err(`${stamp()} error: the lab did not come up: ${(e as Error).message}`);
    return 1;
  }
  const stopped = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolve(sig));
  });
  const ready: ReadyRecord = { pid: process.pid, prefix: cfg.prefix, port: 0, kubeconfig: cluster.kubeconfigPath, apiUrl: cluster.kube.url, readyMs: Date.now() - t0, timings: cluster.timings };
  await writeFile(f.ready, `${JSON.stringify(ready)}\n`);
  io.out(`${stamp()} kubectl get nodes -o wide; kubectl get pods -A -o wide (lab probe is for lab-kubelet pods)`);
  const sig = await stopped;
  io.out(`${stamp()} ${sig}: tearing the lab down`);
  await rm(f.ready, { force: true });
  await cluster.close();
  io.out(`${stamp()} down`);
  return 0;
}

async function handleRequest(cluster: LabCluster, url: string): Promise<{ status: number; body: unknown }> {
  const u = new URL(url, "http://127.0.0.1");
  if (u.pathname === "/healthz") return { status: 200, body: { ok: true, prefix: cluster.prefix } };
  if (u.pathname !== "/probe") return { status: 404, body: { error: `no ${u.pathname}: try /probe?port=80&protocol=TCP` } };
  const port = Number(u.searchParams.get("port") ?? "80");
  const protocol = (u.searchParams.get("protocol") ?? "TCP").toUpperCase();
  const timeoutMs = Number(u.searchParams.get("timeout") ?? "800");
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { status: 400, body: { error: `port must be 1..65535` } };
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) return { status: 400, body: { error: `protocol must be one of ${PROTOCOLS.join(", ")}` } };
  if (!Number.isInteger(timeoutMs) || timeoutMs < 50 || timeoutMs > 10_000) return { status: 400, body: { error: "timeout must be 50..10000 ms" } };
  try {
    const m = await cluster.matrix(port, protocol as Protocol, { timeoutMs });
    const reply: LabProbeReply = { port, protocol: protocol as Protocol, names: [...m.names], matrix: m.result.matrix, ms: m.result.ms };
    return { status: 200, body: reply };
  } catch (e) {
    return { status: 500, body: { error: (e as Error).message } };
  }
}

export interface LabStatus {
  readonly prefix: string;
  readonly up: boolean;
  readonly supervisor?: { readonly pid: number; readonly alive: boolean };
  readonly kubeconfig?: string;
  readonly clusterNetwork?: { readonly phase?: string; readonly mode?: string; readonly desired?: number; readonly realized?: number; readonly conditions: readonly { type: string; status: string; reason?: string; message?: string }[] };
  readonly nodes: readonly { name: string; netns: string; ip: string; subnet: string; cniBinDir: string; cniConfDir: string; block?: string; mode?: string; applied?: boolean }[];
  readonly pods: readonly { namespace: string; name: string; node?: string; netns?: string; ip?: string; phase?: string }[];
  /** Namespaces of the lab that exist (what `lab down` would remove). */
  readonly namespaces: readonly string[];
  readonly problems: readonly string[];
}

/** Everything known about a lab: state.json, the supervisor record, and (when it answers) the API. */
export async function readLabStatus(prefix: string): Promise<LabStatus> {
  const f = files(prefix);
  const sup = await readJson<SupervisorRecord>(f.supervisor);
  const alive = await supervisorAlive(sup);
  const ready = await readJson<ReadyRecord>(f.ready);
  const lab = await loadLab(prefix);
  const namespaces = await listLabNamespaces(prefix);
  const problems: string[] = [];
  type NN = { metadata?: { name?: string }; spec?: { block?: string; mode?: string; planHash?: string }; status?: { appliedHash?: string } };
  let nns: NN[] = [];
  let pods: { metadata?: { name?: string; namespace?: string }; spec?: { nodeName?: string }; status?: { podIP?: string; phase?: string } }[] = [];
  let cn: LabStatus["clusterNetwork"];
  if (alive && ready !== undefined) {
    process.env["KUBECONFIG"] = ready.kubeconfig;
    try {
      const [nnList, podList, cnObj] = await Promise.all([
        K8s(GenericKind, { kindOverride: NodeNetworkGVK }).Get() as unknown as Promise<{ items: NN[] }>,
        K8s(kind.Pod).Get(),
        K8s(GenericKind, { kindOverride: ClusterNetworkGVK }).Get("default") as unknown as Promise<{ spec?: { mode?: string }; status?: { phase?: string; nodes?: { desired?: number; realized?: number }; conditions?: { type: string; status: string; reason?: string; message?: string }[] } }>,
      ]);
      nns = nnList.items;
      pods = podList.items;
      cn = { ...(cnObj.status?.phase ? { phase: cnObj.status.phase } : {}), ...(cnObj.spec?.mode ? { mode: cnObj.spec.mode } : {}), ...(cnObj.status?.nodes?.desired !== undefined ? { desired: cnObj.status.nodes.desired } : {}), ...(cnObj.status?.nodes?.realized !== undefined ? { realized: cnObj.status.nodes.realized } : {}), conditions: cnObj.status?.conditions ?? [] };
    } catch (e) {
      problems.push(`the API server did not answer: ${(e as Error).message}`);
    }
  } else if (sup !== undefined || namespaces.length > 0) {
    problems.push(alive ? "the supervisor is starting (not Ready yet)" : "the supervisor is not running: `switchyard lab down` removes what is left");
  }
  const nodes = (lab?.nodes ?? []).map((n) => {
    const nn = nns.find((x) => x.metadata?.name === n.name);
    return {
      name: n.name,
      netns: n.netns,
      ip: n.ip,
      subnet: subnetLetter(n.subnet),
      cniBinDir: labCniDirs(lab?.runDir ?? "", n.name).binDir,
      cniConfDir: labCniDirs(lab?.runDir ?? "", n.name).confDir,
      ...(nn?.spec?.block ? { block: nn.spec.block } : {}),
      ...(nn?.spec?.mode ? { mode: nn.spec.mode } : {}),
      ...(nn ? { applied: nn.status?.appliedHash !== undefined && nn.status.appliedHash === nn.spec?.planHash } : {}),
    };
  });
  const labPods = lab?.pods ?? [];
  const podRows =
    pods.length > 0
      ? pods.map((p) => {
          const ns = p.metadata?.namespace ?? "default";
          const name = p.metadata?.name ?? "";
          const lp = labPods.find((x) => x.namespace === ns && x.name === name);
          return { namespace: ns, name, ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}), ...(lp ? { netns: lp.netns } : {}), ...(p.status?.podIP ? { ip: p.status.podIP } : {}), ...(p.status?.phase ? { phase: p.status.phase } : {}) };
        })
      : labPods.map((p) => ({ namespace: p.namespace, name: p.name, node: p.node, netns: p.netns, ip: p.ip }));
  podRows.sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  return {
    prefix,
    up: alive && ready !== undefined,
    ...(sup ? { supervisor: { pid: sup.pid, alive } } : {}),
    ...(ready ? { kubeconfig: ready.kubeconfig } : {}),
    ...(cn ? { clusterNetwork: cn } : {}),
    nodes,
    pods: podRows,
    namespaces,
    problems,
  };
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  "));
}

export async function runLabStatus(opts: { prefix?: string; json?: boolean }, io: LabIo): Promise<number> {
  const prefix = opts.prefix ?? DEFAULT_LAB_PREFIX;
  try {
    assertLabPrefix(prefix);
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 2;
  }
  const s = await readLabStatus(prefix);
  if (opts.json) {
    io.out(JSON.stringify(s, null, 2));
    return s.up ? 0 : 1;
  }
  if (!s.up && s.nodes.length === 0 && s.namespaces.length === 0) {
    io.out(`lab ${prefix} is not up (\`switchyard lab up${prefix === DEFAULT_LAB_PREFIX ? "" : ` --prefix ${prefix}`}\`)`);
    return 1;
  }
  io.out(`lab ${prefix}: ${s.up ? "up" : "NOT RUNNING"}${s.supervisor ? ` (supervisor pid ${s.supervisor.pid}${s.supervisor.alive ? "" : ", gone"})` : ""}`);
  if (s.up && s.kubeconfig) io.out(`export KUBECONFIG=${s.kubeconfig}`);
  if (s.clusterNetwork) {
    const c = s.clusterNetwork;
    io.out(`ClusterNetwork default: mode ${c.mode ?? "?"}, phase ${c.phase ?? "?"}, nodes realized ${c.realized ?? "?"}/${c.desired ?? "?"}`);
    for (const cond of c.conditions) io.out(`  ${cond.type}=${cond.status} ${cond.reason ?? ""}: ${cond.message ?? ""}`);
  }
  io.out("");
  io.out(table([["NODE", "NETNS", "IP", "SUBNET", "BLOCK", "MODE", "APPLIED"], ...s.nodes.map((n) => [n.name, n.netns, n.ip, n.subnet, n.block ?? "-", n.mode ?? "-", n.applied === undefined ? "?" : n.applied ? "yes" : "no"])]).join("\n"));
  io.out("");
  io.out(table([["POD", "NODE", "NETNS", "IP", "PHASE"], ...s.pods.map((p) => [`${p.namespace}/${p.name}`, p.node ?? "-", p.netns ?? "-", p.ip ?? "-", p.phase ?? "-"])]).join("\n"));
  for (const p of s.problems) io.err(`note: ${p}`);
  return s.up ? 0 : 1;
}

export async function runLabProbe(opts: LabProbeOptions, io: LabIo): Promise<number> {
  const prefix = opts.prefix ?? DEFAULT_LAB_PREFIX;
  try {
    assertLabPrefix(prefix);
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 2;
  }
  const f = files(prefix);
  const ready = await readJson<ReadyRecord>(f.ready);
  if (ready === undefined || !(await supervisorAlive(await readJson<SupervisorRecord>(f.supervisor)))) {
    io.err(`error: lab ${prefix} is not up`);
    return 1;
  }
  const q = new URLSearchParams({ port: String(opts.port), protocol: opts.protocol, timeout: String(opts.timeout) });
  let reply: LabProbeReply;
  try {
    const res = await fetch(`http://127.0.0.1:${ready.port}/probe?${q.toString()}`, { signal: AbortSignal.timeout(120_000) });
    const body = (await res.json()) as LabProbeReply & { error?: string };
    if (!res.ok) {
      io.err(`error: ${body.error ?? res.statusText}`);
      return res.status === 400 ? 2 : 1;
    }
    reply = body;
  } catch (e) {
    io.err(`error: the lab supervisor did not answer: ${(e as Error).message}`);
    return 1;
  }
  if (opts.json) {
    io.out(JSON.stringify(reply, null, 2));
    return 0;
  }
  const cells = reply.matrix.flat();
  io.out(`reachability ${reply.protocol}/${reply.port} from row to column ('.' connected, 'X' not), ${reply.ms} ms:`);
  io.out(formatProbeMatrix(reply.names, reply.names, reply.matrix));
  reply.names.forEach((n, i) => io.out(`  ${i % 10} = ${n}`));
  io.out(`${cells.filter((c) => c).length}/${cells.length} connected`);
  return 0;
}

/** Stops the supervisor (by its recorded pid and start time) and removes whatever of the lab is left. */
export async function labDown(prefix: string): Promise<{ supervisorStopped: boolean; namespaces: number; pids: number }> {
  const f = files(prefix);
  const sup = await readJson<SupervisorRecord>(f.supervisor);
  let supervisorStopped = false;
  if (sup !== undefined && (await supervisorAlive(sup))) {
    // SIGTERM lets it tear down in order; after 30 s it is killed and destroyLab below cleans up.
    supervisorStopped = await stopPid(sup.pid, sup.startTime, 30_000);
  }
  const destroyed = await destroyLab(prefix);
  await rm(f.dir, { recursive: true, force: true });
  return { supervisorStopped, namespaces: destroyed.namespaces.length, pids: destroyed.stoppedPids.length };
}

export async function runLabDown(opts: { prefix?: string }, io: LabIo): Promise<number> {
  const prefix = opts.prefix ?? DEFAULT_LAB_PREFIX;
  try {
    assertLabPrefix(prefix);
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 2;
  }
  const known = existsSync(files(prefix).dir);
  const t0 = Date.now();
  const r = await labDown(prefix);
  if (!known && r.namespaces === 0) {
    io.out(`lab ${prefix}: nothing to remove`);
    return 0;
  }
  io.out(`lab ${prefix} down in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${r.supervisorStopped ? "supervisor stopped, " : ""}${r.namespaces} leftover namespaces and ${r.pids} leftover processes removed`);
  return 0;
}
