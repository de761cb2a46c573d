// Why: the embedded default (ARCHITECTURE.md, "The lab") is a whole cluster on one machine, built only
// from real parts: the API server emulator that kfc/kubectl talk to, netns nodes and pods with no link to
// the root namespace, the real controller and one real agent per node (in this process or as the child
// processes a cluster would run), a minimal kubelet+CNI that turns scheduled Pod objects into pod
// namespaces, and, for BGP top-of-rack, BIRD in the lab's router. Everything goes through the API the
// way it would in a cluster: Node objects with InternalIP and a subnet label, the ClusterNetwork through
// the admission rules (a bad one is denied with the webhook's message), Pods scheduled by nodeName.
//
// Readiness is observed, never assumed: waitForReady polls (bounded) until the ClusterNetwork reports
// phase Ready with realized == desired == the lab's nodes, every NodeNetwork's appliedHash equals its
// planHash, the kubelet has nothing pending, and that state has held for a settle window longer than the
// controller's coalescing interval (a write the controller has not processed yet cannot hide behind an
// old Ready). Teardown is crash-safe: destroyLab(prefix) runs at start and at close, and finds every
// namespace by prefix and every child process by its pid file.
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import type { Mode } from "../../src/api/cluster-network";
import { formatDiagnostic } from "../../src/api/diagnostics";
import { validateClusterNetwork, validateClusterNetworkUpdate, validateRecordedBlocks, type RecordedBlock } from "../../src/api/validate-cluster-network";
import { waitFor } from "../../src/base/wait";
import { mapBounded } from "../../src/base/limit";
import { BlockAffinityGVK, ClusterNetworkGVK, NodeNetworkGVK } from "../../src/kube/kinds";
import { WATCHED, type KObj, type WatchedKind } from "../../src/kube/store";
import type { Protocol } from "../../src/model/cluster";
import { startApiServer, type AdmissionHook, type ApiServer } from "../apiserver";
import { kubeBinaries, startKubeControlPlane, type KubeControlPlane } from "../control-plane/kubernetes";
import { startStallRelay, type StallRelay } from "../control-plane/stall-relay";
import { readFile, rm, writeFile } from "node:fs/promises";
import { labCniDirs } from "../cni-runtime";
import { waitForPodToLeaveApi } from "./pod-api";
import { installSwitchyard, type Installation } from "../control-plane/install";
import { agentRunDir, startLabAgent, startLabController, type DaemonHandle, type DaemonOptions } from "./daemons";
import { Mutex } from "./mutex";
import { addLabNode, nextLabNode, removeLabNode, restartLabNodeNamespace, subnetLetter } from "./nodes";
import { defaultClusterNetwork, SUBNET_LABEL, type ClusterNetworkObject } from "./samples";
import { expectedMatrix, readPolicySnapshot, type CellExpectation } from "./verdicts";
import { LabKubelet } from "../kubelet";
import { formatProbeMatrix, probeMatrix, stopAllPodAgents, type ProbeMatrixOptions, type ProbeMatrixResult } from "../pods";
import { applyTorRouter, stopTorRouter, TOR_AS_NUMBER, torKernelRoutes } from "../router";
import { createLab, destroyLab, dropPodWithNode, type DestroyReport, type Lab, type LabNode, type LabPod, type NodePlacement } from "../topology";

export { SUBNET_LABEL, type ClusterNetworkObject } from "./samples";
export { type CellExpectation } from "./verdicts";

export interface LabPodPort {
  readonly port: number;
  readonly protocol?: Protocol;
  /** The container port's name (NetworkPolicy named ports resolve against it). */
  readonly name?: string;
}

export interface LabPodTemplate {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly ports?: readonly LabPodPort[];
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface LabClusterOptions {
  /** Every namespace and run dir of the lab starts with this (ends with '-', e.g. "sylc1-"). */
  readonly prefix: string;
  readonly nodes?: number;
  readonly subnets?: number;
  readonly placement?: NodePlacement;
  /** The ClusterNetwork to apply; default: the shipped sample of `mode` (samples/*.yaml), adapted to the lab. */
  readonly clusterNetwork?: ClusterNetworkObject;
  /** Used when no clusterNetwork is given. Default vxlan. */
  readonly mode?: Mode;
  /** Pods generated per node when `pods` is not given (namespaces x and y, port 80/TCP "http"). Default 2. */
  readonly podsPerNode?: number;
  /** Exactly these pods instead of the generated ones. */
  readonly pods?: readonly LabPodTemplate[];
  /** Extra namespaces to create at start (the pods' namespaces are created anyway). */
  readonly namespaces?: readonly string[];
  /**
   * On the real control plane: the agents reach kube-apiserver through a TCP relay that a fault test can
   * stall (stallAgentConnections). Default false.
   */
  readonly agentApiRelay?: boolean;
  /** Agents AND controller in this process (default) or as child processes of bin/switchyard.mjs. */
  readonly agentsInProcess?: boolean;
  /** BIRD as top-of-rack router in the router namespace; default: when the ClusterNetwork is bgp with topology tor. */
  readonly torRouter?: boolean;
  /** Wait for Ready before startLabCluster returns. Default true. */
  readonly waitReady?: boolean;
  /**
   * Also accept phase Degraded once every agent applied its plan (e.g. host-gw across subnets reports
   * ModeCannotServePeers: a correct, inspectable outcome). Default false.
   */
  readonly acceptDegraded?: boolean;
  readonly readyTimeoutMs?: number;
  /** Log level of the controller and agents (pino). Default "warn". */
  readonly logLevel?: string;
  /** Progress lines (what is being built, convergence); default: silent. */
  readonly progress?: (line: string) => void;
  /** Where the emulator writes its kubeconfig; default: a temporary file. */
  readonly kubeconfigPath?: string;
  /** The controller's lease duration (s); short in fault tests so a restarted controller takes over fast. */
  readonly leaseDurationSec?: number;
  /**
   * `embedded` (default): the in-process API server emulator. `kubernetes`: the real etcd and kube-apiserver
   * (hack/build-kube.sh or KUBEBUILDER_ASSETS), Switchyard installed as a user would (CRDs, RBAC, admission),
   * and the controller and every agent as child processes logged in as their own service accounts.
   */
  readonly controlPlane?: ControlPlaneKind;
}

export type ControlPlaneKind = "embedded" | "kubernetes";

export interface ReadyReport {
  readonly ms: number;
  /** Ready, or Degraded when that was accepted. */
  readonly phase: string;
  readonly desired: number;
  readonly realized: number;
}

export interface LabMatrix {
  /** Rows and columns, sorted by namespace/name. */
  readonly pods: readonly LabPod[];
  readonly names: readonly string[];
  readonly result: ProbeMatrixResult;
  /** formatProbeMatrix with the pod names. */
  readonly text: string;
}

export interface CloseReport {
  readonly destroyed: DestroyReport;
  readonly errors: readonly string[];
}

export type ApplyResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

interface Readiness {
  readonly ready: boolean;
  readonly phase: string;
  readonly desired: number;
  readonly realized: number;
  readonly why: string;
  readonly fingerprint: string;
}

type CnObject = { metadata?: { generation?: number; resourceVersion?: string }; spec?: { mode?: string }; status?: { phase?: string; observedGeneration?: number; nodes?: { desired?: number; realized?: number }; conditions?: { type: string; status: string; reason?: string; message?: string }[] } };
type NnObject = {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { planHash?: string; block?: string; mode?: string; mtu?: number };
  status?: { appliedHash?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
};

export const LAB_BASE_NAMESPACES = ["default", "kube-system", "switchyard-system"];
const DEFAULT_PORTS: readonly LabPodPort[] = [{ port: 80, protocol: "TCP", name: "http" }];

/**
 * The admission rules of the Pepr module, as the emulator's validating hook, with the rule a real cluster's
 * ValidatingAdmissionPolicy switchyard-block-affinities adds: pools and block size keep every block the
 * BlockAffinities (`recorded`) hold, on create too (a re-created ClusterNetwork).
 */
export function clusterNetworkAdmission(recorded: () => readonly RecordedBlock[] = () => []): AdmissionHook {
  return (req) => {
    if (req.kind.kind !== "ClusterNetwork") return { allowed: true };
    const blocks = recorded();
    const d = req.operation === "UPDATE" ? validateClusterNetworkUpdate(req.oldObject, req.object, blocks) : [...validateClusterNetwork(req.object), ...validateRecordedBlocks(req.object, blocks)];
    return d.length > 0 ? { allowed: false, message: d.map(formatDiagnostic).join("; ") } : { allowed: true };
  };
}

/** The blocks the emulator's BlockAffinities record (none before the server runs). */
export function recordedBlocksIn(server: ApiServer | undefined): RecordedBlock[] {
  return (server?.store.list(`${BlockAffinityGVK.group}/${BlockAffinityGVK.version}`, BlockAffinityGVK.kind) ?? []).flatMap((o) => {
    const spec = o["spec"] as { node?: unknown; cidr?: unknown } | undefined;
    return typeof spec?.node === "string" && typeof spec.cidr === "string" ? [{ node: spec.node, cidr: spec.cidr }] : [];
  });
}

function errorText(e: unknown): string {
  const err = e as { message?: string; data?: { message?: string } | string; status?: number };
  const data = typeof err.data === "string" ? err.data : err.data?.message;
  return data ?? err.message ?? String(e);
}

function defaultPods(nodes: readonly LabNode[], perNode: number): LabPodTemplate[] {
  return nodes.flatMap((n) =>
    Array.from({ length: perNode }, (_, j) => ({
      namespace: j % 2 === 0 ? "x" : "y",
      name: `${n.name}-p${j + 1}`,
      node: n.name,
      labels: { app: `p${j + 1}`, "lab.switchyard.dev/node": n.name },
      ports: DEFAULT_PORTS,
    })),
  );
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * kfc reads the API address from process.env.KUBECONFIG, which is one per process: two lab clusters in one
 * process would talk to each other's API server. The one that owns it now (cleared by close()).
 */
let activeCluster: { readonly prefix: string; readonly token: symbol } | undefined;

async function listKind(k: WatchedKind): Promise<KObj[]> {
  const api =
    k === "ClusterNetwork" ? K8s(GenericKind, { kindOverride: ClusterNetworkGVK })
    : k === "NodeNetwork" ? K8s(GenericKind, { kindOverride: NodeNetworkGVK })
    : k === "BlockAffinity" ? K8s(GenericKind, { kindOverride: BlockAffinityGVK })
    : k === "Node" ? K8s(kind.Node)
    : k === "Pod" ? K8s(kind.Pod)
    : k === "Namespace" ? K8s(kind.Namespace)
    : K8s(kind.NetworkPolicy);
  return ((await api.Get()) as unknown as { items: KObj[] }).items;
}

export class LabCluster {
  readonly prefix: string;
  private labState: Lab | undefined;
  private apiServer: ApiServer | undefined;
  private kubeServer: KubeControlPlane | undefined;
  private installation: Installation | undefined;
  private relay: StallRelay | undefined;
  private kubelet: LabKubelet | undefined;
  private controllerHandle: DaemonHandle | undefined;
  private readonly agentHandles = new Map<string, DaemonHandle>();
  private readonly lock = new Mutex();
  private torRouter = false;
  private torOptions = { asNumber: TOR_AS_NUMBER, nodeAsNumber: 64512 };
  private starting: Promise<void> | undefined;
  private closing: Promise<CloseReport> | undefined;
  private closeRequested = false;
  /** This cluster passed the one-per-process check and owns its prefix (close() destroys it). */
  private claimed = false;
  private readonly token = Symbol("lab cluster");
  private previousKubeconfig: string | undefined;
  private readonly progress: (line: string) => void;
  /** Milliseconds spent per start stage. */
  readonly timings: Record<string, number> = {};

  constructor(readonly options: LabClusterOptions) {
    this.prefix = options.prefix;
    this.progress = options.progress ?? (() => undefined);
  }

  get lab(): Lab {
    if (this.labState === undefined) throw new Error(`lab cluster ${this.prefix} has no lab yet`);
    return this.labState;
  }

  get api(): ApiServer {
    if (this.apiServer === undefined) throw new Error(`lab cluster ${this.prefix} has no API server yet`);
    return this.apiServer;
  }

  /** The admin's kubeconfig (either control plane). */
  get kubeconfigPath(): string {
    if (this.kubeServer) return this.kubeServer.kubeconfigPath;
    return this.api.kubeconfigPath;
  }

  get apiUrl(): string {
    return this.kubeServer?.url ?? this.api.url;
  }

  get controlPlane(): ControlPlaneKind {
    return this.options.controlPlane ?? "embedded";
  }

  /** The real control plane, when the lab runs one. */
  get kube(): KubeControlPlane {
    if (this.kubeServer === undefined) throw new Error(`lab cluster ${this.prefix} runs the ${this.controlPlane} control plane, not kubernetes`);
    return this.kubeServer;
  }

  get agents(): ReadonlyMap<string, DaemonHandle> {
    return this.agentHandles;
  }

  get controller(): DaemonHandle | undefined {
    return this.controllerHandle;
  }

  hasTorRouter(): boolean {
    return this.torRouter;
  }

  // ==== MIGRATION HOOK (the migration driver's owner fills this in) ====
  /** Whether this lab can run a canary mode migration (the controller's migration driver). */
  migrationAvailable(): boolean {
    return true;
  }

  private checkpoint(): void {
    if (this.closeRequested) throw new Error(`lab cluster ${this.prefix} was closed while starting`);
  }

  /** Builds everything; on failure the caller (startLabCluster) closes what was built. */
  start(): Promise<void> {
    this.starting ??= this.startNow();
    return this.starting;
  }

  private async timed<T>(stage: string, fn: () => Promise<T>): Promise<T> {
    this.checkpoint();
    const t0 = Date.now();
    const r = await fn();
    this.timings[stage] = Date.now() - t0;
    return r;
  }

  private async startNow(): Promise<void> {
    const o = this.options;
    const t0 = Date.now();
    if (activeCluster !== undefined) throw new Error(`lab cluster ${activeCluster.prefix} is running in this process: close it before starting ${this.prefix} (KUBECONFIG is per process)`);
    activeCluster = { prefix: this.prefix, token: this.token };
    this.claimed = true;
    const leftovers = await destroyLab(this.prefix);
    if (leftovers.namespaces.length > 0) this.progress(`removed ${leftovers.namespaces.length} namespaces left by an earlier ${this.prefix} lab`);
    // On the real control plane every daemon logs in as its own service account: a process of its own.
    const inProcess = this.controlPlane === "kubernetes" ? false : (o.agentsInProcess ?? true);
    const logLevel = o.logLevel ?? "warn";

    const lab = await this.timed("lab", async () => {
      const l = await createLab({ prefix: this.prefix, nodes: o.nodes ?? 4, subnets: o.subnets ?? 2, ...(o.placement ? { placement: o.placement } : {}) });
      this.labState = l;
      return l;
    });
    this.progress(`lab: ${lab.nodes.length} node namespaces on ${lab.subnets.length} subnets (${lab.nodes.map((n) => `${n.name}=${n.ip}`).join(" ")}) in ${this.timings["lab"]} ms`);

    const templates = o.pods ?? defaultPods(lab.nodes, o.podsPerNode ?? 2);
    const strays = templates.filter((t) => !lab.nodes.some((n) => n.name === t.node));
    if (strays.length > 0) throw new Error(`pods on nodes the lab does not have: ${strays.map((t) => `${t.namespace}/${t.name} on ${t.node}`).join(", ")}`);
    const namespaces = [...new Set([...LAB_BASE_NAMESPACES, ...(o.namespaces ?? []), ...templates.map((t) => t.namespace)])];
    await this.timed("api", async () => {
      this.previousKubeconfig = process.env["KUBECONFIG"];
      if (this.controlPlane === "kubernetes") {
        const binDir = await kubeBinaries(this.progress);
        this.kubeServer = await startKubeControlPlane({ runDir: lab.runDir, binDir, progress: this.progress, ...(o.kubeconfigPath ? { kubeconfigPath: o.kubeconfigPath } : {}) });
        process.env["KUBECONFIG"] = this.kubeServer.kubeconfigPath;
      } else {
        this.apiServer = await startApiServer({ namespaces, validate: clusterNetworkAdmission(() => recordedBlocksIn(this.apiServer)), ...(o.kubeconfigPath ? { kubeconfigPath: o.kubeconfigPath } : {}) });
        // kfc reads KUBECONFIG on every request: the controller, agents and kubelet of this process use it.
        process.env["KUBECONFIG"] = this.apiServer.kubeconfigPath;
      }
    });
    this.progress(`api server: ${this.apiUrl} (kubeconfig ${this.kubeconfigPath})`);
    if (this.kubeServer) {
      const kube = this.kubeServer;
      this.installation = await this.timed("install", () => installSwitchyard(kube, { namespaces, progress: this.progress }));
      if (o.agentApiRelay) this.relay = await startStallRelay(kube.url);
    }

    await this.timed("nodes", () => mapBounded(lab.nodes, 4, (n) => this.applyNodeObject(n)));
    const cn = o.clusterNetwork ?? defaultClusterNetwork(o.mode ?? "vxlan", lab, TOR_AS_NUMBER);
    const spec = (cn.spec ?? {}) as { mode?: string; bgp?: { topology?: string; asNumber?: number; peers?: { address?: string; asNumber?: number }[] } };
    const gateways = new Set(lab.subnets.map((s) => s.gateway));
    this.torRouter = o.torRouter ?? (spec.mode === "bgp" && spec.bgp?.topology === "tor");
    this.torOptions = {
      asNumber: spec.bgp?.peers?.find((p) => p.address !== undefined && gateways.has(p.address))?.asNumber ?? TOR_AS_NUMBER,
      nodeAsNumber: spec.bgp?.asNumber ?? 64512,
    };
    const applied = await this.applyClusterNetwork(cn);
    if (!applied.ok) throw new Error(`the ClusterNetwork was refused: ${applied.message}`);
    this.progress(`ClusterNetwork default: mode ${spec.mode ?? "?"}${this.torRouter ? " (BIRD top-of-rack router in the router namespace)" : ""}`);

    if (this.torRouter) {
      await this.timed("router", async () => {
        const r = await applyTorRouter(lab, this.torOptions);
        if (!r.ok) throw new Error(`top-of-rack BIRD: ${r.reason}: ${r.message}`);
      });
    }
    await this.timed("agents", () =>
      mapBounded(lab.nodes, 4, async (n) => {
        this.checkpoint();
        this.agentHandles.set(n.name, await startLabAgent(lab, n, await this.agentDaemonOptions(n.name)));
      }),
    );
    this.progress(`agents: ${lab.nodes.length} started ${inProcess ? "in this process" : "as child processes"} in ${this.timings["agents"]} ms`);
    await this.timed("controller", async () => {
      this.controllerHandle = await startLabController(lab, await this.controllerDaemonOptions());
    });
    await this.timed("kubelet", async () => {
      this.kubelet = new LabKubelet({ getLab: () => this.lab, lock: this.lock, log: (l) => (logLevel === "debug" || logLevel === "info" ? this.progress(l) : undefined) });
      await this.kubelet.start();
    });
    this.progress(`controller and kubelet started`);

    await this.timed("pods", async () => {
      await mapBounded(templates, 8, (t) => this.createPod(t.namespace, t.name, t.node, t.labels ?? {}, t.ports ?? DEFAULT_PORTS, { wait: false, ...(t.annotations ? { annotations: t.annotations } : {}) }));
      await this.waitForPods(templates, 60_000);
    });
    this.progress(`pods: ${templates.length} running in ${this.timings["pods"]} ms`);

    if (o.waitReady ?? true) {
      const r = await this.timed("ready", () => this.waitForReady(o.readyTimeoutMs ?? 60_000, { acceptDegraded: o.acceptDegraded ?? false }));
      this.progress(`${r.phase}: ${r.realized}/${r.desired} nodes realized, ${Date.now() - t0} ms after start`);
      if (r.phase !== "Ready") {
        const cond = (await this.clusterNetwork()).status?.conditions?.find((c) => c.type === "Degraded");
        const msg = cond?.message ?? "see its conditions";
        this.progress(`WARNING: the ClusterNetwork is ${r.phase}: ${msg.length > 300 ? `${msg.slice(0, 300)}... (kubectl get clusternetwork default -o yaml)` : msg}`);
      }
    }
    this.timings["total"] = Date.now() - t0;
  }

  private async waitForPods(pods: readonly { namespace: string; name: string }[], timeoutMs: number): Promise<void> {
    const keys = new Set(pods.map((p) => `${p.namespace}/${p.name}`));
    let last = "";
    try {
      await waitFor(
        `${keys.size} pods to run`,
        () => {
          this.checkpoint();
          const states = (this.kubelet?.podStates() ?? []).filter((s) => keys.has(s.key));
          const running = states.filter((s) => s.state === "running").length;
          const others = (this.kubelet?.podStates() ?? []).filter((s) => !keys.has(s.key) && s.reason !== undefined);
          last = [...states.filter((s) => s.state !== "running"), ...others].map((s) => `${s.key}: ${s.reason ?? "pending"}`).slice(0, 3).join("; ");
          return running === keys.size && this.kubelet?.settled() ? true : undefined;
        },
        timeoutMs,
        25,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}${last ? ` (${last})` : ""}`);
    }
  }

  private async applyNodeObject(n: LabNode): Promise<void> {
    await K8s(kind.Node).Apply(
      { metadata: { name: n.name, labels: { [SUBNET_LABEL]: subnetLetter(n.subnet), "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux" } } },
      { force: true },
    );
    await K8s(kind.Node).PatchStatus({
      metadata: { name: n.name },
      status: {
        addresses: [
          { type: "InternalIP", address: n.ip },
          { type: "Hostname", address: n.name },
        ],
        conditions: [{ type: "Ready", status: "True", reason: "LabNodeReady", message: `lab namespace ${n.netns}` }],
      },
    });
  }

  /** Applies (server-side) a ClusterNetwork; a denial by the admission rules comes back as a value. */
  async applyClusterNetwork(obj: ClusterNetworkObject): Promise<ApplyResult> {
    try {
      await K8s(GenericKind, { kindOverride: ClusterNetworkGVK }).Apply({ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", ...obj } as never, { force: true });
      return { ok: true };
    } catch (e) {
      return { ok: false, message: errorText(e) };
    }
  }

  async clusterNetwork(): Promise<CnObject & ClusterNetworkObject> {
    return (await K8s(GenericKind, { kindOverride: ClusterNetworkGVK }).Get("default")) as unknown as CnObject & ClusterNetworkObject;
  }

  async nodeNetworks(): Promise<NnObject[]> {
    const list = (await K8s(GenericKind, { kindOverride: NodeNetworkGVK }).Get()) as unknown as { items: NnObject[] };
    return list.items;
  }

  private async readiness(acceptDegraded: boolean): Promise<Readiness> {
    let cn: CnObject;
    try {
      cn = await this.clusterNetwork();
    } catch (e) {
      return { ready: false, phase: "-", desired: 0, realized: 0, why: `no ClusterNetwork default: ${errorText(e)}`, fingerprint: "" };
    }
    const nns = await this.nodeNetworks();
    const st = cn.status;
    const desired = st?.nodes?.desired ?? 0;
    const realized = st?.nodes?.realized ?? 0;
    const phase = st?.phase ?? "Pending";
    const want = this.lab.nodes.length;
    const lagging = nns.filter((n) => n.status?.appliedHash !== n.spec?.planHash).map((n) => n.metadata?.name ?? "?");
    const readyCond = st?.conditions?.find((c) => c.type === "Ready");
    const firstProblem = nns
      .flatMap((n) => (n.status?.conditions ?? []).filter((c) => (c.type === "Applied" && c.status === "False") || (c.type !== "Applied" && c.status === "True")).map((c) => `${n.metadata?.name}: ${c.type}: ${c.message ?? ""}`))
      .at(0)
      ?.slice(0, 300);
    const problems = [
      phase !== "Ready" && !(acceptDegraded && phase === "Degraded") ? `phase ${phase}${readyCond?.message ? `: ${readyCond.message}` : ""}` : "",
      st?.observedGeneration !== cn.metadata?.generation ? `status is for generation ${st?.observedGeneration ?? "-"}, spec is ${cn.metadata?.generation ?? "-"}` : "",
      desired !== want ? `${desired} nodes desired, the lab has ${want}` : "",
      nns.length !== want ? `${nns.length} NodeNetworks for ${want} nodes` : "",
      lagging.length > 0 ? `not applied on ${lagging.join(", ")}${firstProblem ? ` (${firstProblem})` : ""}` : "",
      this.kubelet?.settled() === false ? "kubelet busy" : "",
    ].filter((p) => p !== "");
    if (problems.length === 0 && !(await this.controllerCaughtUp())) problems.push("the controller has not processed the latest changes yet");
    if (this.torRouter && problems.length === 0) {
      // The controller's Ready says the agents applied their plans; with a ToR the routes also have to
      // cross the router's BGP sessions, so wait until its kernel has the block of every node that
      // speaks BGP (a node in another mode runs no BIRD and announces nothing).
      const have = new Set(await torKernelRoutes(this.lab));
      const speaking = nns.filter((n) => ((n.spec as { routing?: { bgp?: unknown } } | undefined)?.routing?.bgp) !== undefined);
      const missing = speaking.map((n) => n.spec?.block).filter((b): b is string => b !== undefined && !have.has(b));
      if (missing.length > 0) problems.push(`the top-of-rack router has no route yet to ${missing.join(", ")}`);
    }
    const fingerprint = [cn.metadata?.resourceVersion ?? "", ...nns.map((n) => `${n.metadata?.name}@${n.metadata?.resourceVersion}`).sort()].join(",");
    return { ready: problems.length === 0 && realized === desired, phase, desired, realized, why: problems.join("; ") || `realized ${realized}/${desired}`, fingerprint };
  }

  /**
   * For an in-process controller: true when its cache holds exactly what the API holds (every watched
   * kind, by resourceVersion) and its scheduler has no pass pending or running, i.e. every write made so
   * far has been compiled and published. A child-process controller cannot be looked into: the settle
   * window of waitForReady covers it instead.
   */
  private async controllerCaughtUp(): Promise<boolean> {
    const c = this.controllerHandle?.controller;
    if (c === undefined) return true;
    for (const k of WATCHED) {
      const items = await listKind(k);
      const cache = c.store.caches[k];
      if (cache.items.size !== items.length) return false;
      for (const o of items) {
        const key = o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : (o.metadata?.name ?? "");
        if (cache.get(key)?.metadata?.resourceVersion !== o.metadata?.resourceVersion) return false;
      }
    }
    await Promise.race([c.scheduler.idle(), delay(1_000)]);
    return true;
  }

  /**
   * Waits until the cluster is Ready and has stayed so (same ClusterNetwork and NodeNetwork versions) for
   * `settleMs`, reporting convergence (nodes realized/desired) as it changes. Throws with the last reason
   * on timeout, or when a child agent/controller died.
   */
  async waitForReady(timeoutMs = 60_000, opts: { readonly settleMs?: number; readonly acceptDegraded?: boolean } = {}): Promise<ReadyReport> {
    // In-process, controllerCaughtUp makes Ready exact and the window only absorbs the agents' status
    // echo; a child-process controller gets a window longer than its coalescing and reaction time.
    const settleMs = opts.settleMs ?? (this.controllerHandle?.controller ? 150 : 1_000);
    const started = Date.now();
    let stableSince: number | undefined;
    let fingerprint = "";
    let lastLine = "";
    for (;;) {
      this.checkpoint();
      const dead = [this.controllerHandle, ...this.agentHandles.values()].map((h) => h?.exitReason()).filter((r): r is string => r !== undefined);
      if (dead.length > 0) throw new Error(`lab cluster ${this.prefix}: ${dead.join("; ")}`);
      const r = await this.readiness(opts.acceptDegraded ?? false);
      const line = `nodes realized ${r.realized}/${r.desired} (${r.phase})`;
      if (line !== lastLine) {
        this.progress(`  ${line} at ${((Date.now() - started) / 1000).toFixed(2)} s`);
        lastLine = line;
      }
      const now = Date.now();
      if (r.ready) {
        if (stableSince === undefined || r.fingerprint !== fingerprint) {
          stableSince = now;
          fingerprint = r.fingerprint;
        } else if (now - stableSince >= settleMs) {
          return { ms: now - started, desired: r.desired, realized: r.realized, phase: r.phase };
        }
      } else {
        stableSince = undefined;
      }
      if (now - started > timeoutMs) throw new Error(`lab cluster ${this.prefix} not Ready after ${timeoutMs} ms: ${r.why}`);
      await delay(50);
    }
  }

  /** Creates a namespace (labels merged) if needed. */
  async createNamespace(name: string, labels: Readonly<Record<string, string>> = {}): Promise<void> {
    await K8s(kind.Namespace).Apply({ metadata: { name, labels: { ...labels } } }, { force: true });
  }

  /**
   * Creates a Pod scheduled on `node`; the kubelet gives it an address, a namespace and an agent serving
   * `ports`. With wait (default) resolves once the Pod runs (status podIP written).
   */
  async createPod(
    namespace: string,
    name: string,
    node: string,
    labels: Readonly<Record<string, string>> = {},
    ports: readonly LabPodPort[] = DEFAULT_PORTS,
    opts: { readonly annotations?: Readonly<Record<string, string>>; readonly wait?: boolean; readonly timeoutMs?: number } = {},
  ): Promise<LabPod | undefined> {
    if (!this.lab.nodes.some((n) => n.name === node)) throw new Error(`lab ${this.prefix} has no node ${node} (nodes: ${this.lab.nodes.map((n) => n.name).join(", ")})`);
    const existing = await K8s(kind.Namespace).Get().then((l) => l.items.some((n) => n.metadata?.name === namespace));
    if (!existing) await this.createNamespace(namespace);
    await K8s(kind.Pod).Apply(
      {
        metadata: { name, namespace, labels: { ...labels }, ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}) },
        spec: {
          nodeName: node,
          containers: [{ name: "app", image: "switchyard.dev/lab-pod-agent", ports: ports.map((p) => ({ containerPort: p.port, protocol: p.protocol ?? "TCP", ...(p.name ? { name: p.name } : {}) })) }],
        },
      },
      { force: true },
    );
    if (opts.wait === false) return undefined;
    await this.waitForPods([{ namespace, name }], opts.timeoutMs ?? 30_000);
    await waitFor(`pod ${namespace}/${name} status Running`, async () => ((await K8s(kind.Pod).InNamespace(namespace).Get(name)).status?.phase === "Running" ? true : undefined), opts.timeoutMs ?? 30_000, 25);
    return this.lab.pods.find((p) => p.namespace === namespace && p.name === name);
  }

  /** Deletes a Pod; with wait (default) resolves once its namespace is gone. */
  async deletePod(namespace: string, name: string, opts: { readonly wait?: boolean } = {}): Promise<void> {
    await K8s(kind.Pod).InNamespace(namespace).Delete(name);
    if (opts.wait === false) return;
    await waitFor(`pod ${namespace}/${name} to be removed`, () => (this.lab.pods.some((p) => p.namespace === namespace && p.name === name) ? undefined : true), 30_000, 25);
    await waitForPodToLeaveApi(namespace, name, 30_000, 25);
  }

  /** Sets (string) or removes (null) labels of a Pod. */
  async labelPod(namespace: string, name: string, labels: Readonly<Record<string, string | null>>): Promise<void> {
    const pod = await K8s(kind.Pod).InNamespace(namespace).Get(name);
    const next: Record<string, string> = { ...(pod.metadata?.labels ?? {}) };
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    await K8s(kind.Pod, { name, namespace }).Patch([{ op: pod.metadata?.labels ? "replace" : "add", path: "/metadata/labels", value: next }]);
  }

  /** Applies a NetworkPolicy (server-side apply); a refusal comes back as a value. */
  async applyPolicy(obj: Record<string, unknown>): Promise<ApplyResult> {
    try {
      await K8s(kind.NetworkPolicy).Apply({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", ...obj } as never, { force: true });
      return { ok: true };
    } catch (e) {
      return { ok: false, message: errorText(e) };
    }
  }

  async deletePolicy(namespace: string, name: string): Promise<void> {
    await K8s(kind.NetworkPolicy).InNamespace(namespace).Delete(name);
  }

  /**
   * A new node: its namespace on the fabric, its Node object, its agent (and a router session for
   * BGP tor). It joins the cluster when its agent has annotated it; waitForReady to see it realized.
   */
  async addNode(opts: { readonly subnet?: number } = {}): Promise<LabNode> {
    const node = await this.lock.run(async () => {
      const lab = this.lab;
      const n = nextLabNode(lab, opts.subnet ?? lab.nodes.length % lab.subnets.length);
      this.labState = await addLabNode(lab, n);
      return n;
    });
    await this.applyNodeObject(node);
    this.agentHandles.set(node.name, await startLabAgent(this.lab, node, await this.agentDaemonOptions(node.name)));
    if (this.torRouter) {
      const r = await applyTorRouter(this.lab, this.torOptions);
      if (!r.ok) throw new Error(`top-of-rack BIRD: ${r.reason}: ${r.message}`);
    }
    this.progress(`node ${node.name} added (${node.ip}, subnet ${subnetLetter(node.subnet)})`);
    return node;
  }

  /**
   * Removes a node the way an operator drains and deletes one: its Pods are deleted (the kubelet removes
   * their namespaces), its agent is torn down (BIRD and rules removed), its Node object is deleted (the
   * controller deletes its NodeNetwork, releases its block and updates the peers' plans), then its namespace.
   */
  async removeNode(name: string, opts: { readonly timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    if (!this.lab.nodes.some((n) => n.name === name)) throw new Error(`lab ${this.prefix} has no node ${name}`);
    const pods = (await K8s(kind.Pod).Get()).items.filter((p) => p.spec?.nodeName === name);
    await Promise.all(pods.map((p) => K8s(kind.Pod).InNamespace(p.metadata?.namespace ?? "default").Delete(p.metadata?.name ?? "")));
    await waitFor(`pods of ${name} to be removed`, () => (this.lab.pods.some((p) => p.node === name) ? undefined : true), timeoutMs, 25);
    const agent = this.agentHandles.get(name);
    this.agentHandles.delete(name);
    await agent?.teardown();
    await K8s(kind.Node).Delete(name);
    await waitFor(`NodeNetwork ${name} to be deleted`, async () => ((await this.nodeNetworks()).some((n) => n.metadata?.name === name) ? undefined : true), timeoutMs, 50);
    await this.lock.run(async () => {
      this.labState = await removeLabNode(this.lab, name);
    });
    if (this.torRouter) await applyTorRouter(this.lab, this.torOptions);
    this.progress(`node ${name} removed`);
  }

  /** Every running lab pod, sorted by namespace/name. */
  private daemonOptions(): DaemonOptions {
    return {
      inProcess: this.controlPlane === "kubernetes" ? false : (this.options.agentsInProcess ?? true),
      kubeconfig: this.kubeconfigPath,
      logLevel: this.options.logLevel ?? "warn",
      ...(this.options.leaseDurationSec ? { leaseDurationSec: this.options.leaseDurationSec } : {}),
    };
  }

  /** An agent's options: on the real control plane, its own kubeconfig (service account, token bound to its Node). */
  private async agentDaemonOptions(node: string): Promise<DaemonOptions> {
    const base = this.daemonOptions();
    if (!this.installation) return base;
    const kubeconfig = await this.installation.agentKubeconfig(node);
    if (!this.relay || !this.kubeServer) return { ...base, kubeconfig };
    // The same identity, through the relay.
    const relayed = `${kubeconfig}.relay`;
    await writeFile(relayed, (await readFile(kubeconfig, "utf8")).replaceAll(this.kubeServer.url, this.relay.url), { mode: 0o600 });
    return { ...base, kubeconfig: relayed };
  }

  /** Freezes every agent connection to the API server open now (watch streams stall, nothing closes); returns how many. */
  stallAgentConnections(): number {
    if (!this.relay) throw new Error(`lab cluster ${this.prefix} runs without agentApiRelay`);
    return this.relay.stall();
  }

  /** The API server goes away (kube-apiserver stopped; etcd keeps the data) until startApiServer. */
  async stopApiServer(): Promise<void> {
    await this.kube.stopApiServer();
  }

  /** kube-apiserver again on the same address; resolves with ms to ready. */
  startApiServer(): Promise<number> {
    return this.kube.startApiServer();
  }

  /**
   * A node reboots: its agent dies (SIGKILL), its pods' sandboxes are lost (no CNI DEL), its namespace is
   * made again empty (no rules, routes or tunnels), then the agent starts again, and the kubelet puts the
   * pods back once it can reach the API server. `whileAgentDown` runs in between (e.g. stop the API server).
   */
  async restartNode(name: string, opts: { readonly whileAgentDown?: () => Promise<void> } = {}): Promise<void> {
    await this.killAgent(name);
    await this.lock.run(async () => {
      const lab = this.lab;
      for (const pod of lab.pods.filter((p) => p.node === name)) await dropPodWithNode(lab, pod);
      await restartLabNodeNamespace(lab, name);
      // What lived in /run is gone with the reboot: the agent's run dir and the plugin's markers (node
      // ready, pods' policy programmed). The plugin's address allocations and the saved plan are on disk.
      await rm(agentRunDir(lab, name), { recursive: true, force: true });
      await rm(labCniDirs(lab.runDir, name).stateDir, { recursive: true, force: true });
    });
    await opts.whileAgentDown?.();
    await this.startAgent(name);
    this.kubelet?.resync();
  }

  private async controllerDaemonOptions(): Promise<DaemonOptions> {
    const base = this.daemonOptions();
    return this.installation ? { ...base, kubeconfig: await this.installation.controllerKubeconfig() } : base;
  }

  /**
   * Ends the controller as a crash would: SIGKILL for a child process; in-process, it stops without
   * releasing its lease. A new controller (startController) must resume from what is in the API.
   */
  async killController(): Promise<void> {
    const h = this.controllerHandle;
    if (!h) return;
    if (h.pid !== undefined) {
      try {
        process.kill(h.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
      await h.stop();
    } else {
      await h.controller?.stop({ releaseLease: false });
    }
    this.controllerHandle = undefined;
  }

  /** Another controller replica (a child process with its own lease identity), for fencing tests; the caller stops it. */
  async startExtraController(identity: string): Promise<DaemonHandle> {
    return startLabController(this.lab, { ...(await this.controllerDaemonOptions()), inProcess: false, identity, key: `controller-${identity}` });
  }

  async startController(): Promise<void> {
    if (this.controllerHandle) return;
    this.controllerHandle = await startLabController(this.lab, await this.controllerDaemonOptions());
  }

  /** Ends one node's agent as a crash would (its applied plan stays in the kernel). */
  async killAgent(node: string): Promise<void> {
    const h = this.agentHandles.get(node);
    if (!h) return;
    if (h.pid !== undefined) {
      try {
        process.kill(h.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    await h.stop();
    this.agentHandles.delete(node);
  }

  async startAgent(node: string): Promise<void> {
    if (this.agentHandles.has(node)) return;
    const n = this.lab.nodes.find((x) => x.name === node);
    if (!n) throw new Error(`no lab node ${node}`);
    this.agentHandles.set(node, await startLabAgent(this.lab, n, await this.agentDaemonOptions(node)));
  }

  podsSorted(): LabPod[] {
    return [...this.lab.pods].sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  }

  /** Real probes from every pod to every pod on port/protocol. */
  async matrix(port = 80, protocol: Protocol = "TCP", opts: ProbeMatrixOptions = {}): Promise<LabMatrix> {
    const pods = this.podsSorted();
    const result = await probeMatrix(this.lab, pods, pods, port, protocol, opts);
    const names = pods.map((p) => `${p.namespace}/${p.name}`);
    return { pods, names, result, text: formatProbeMatrix(names, names, result.matrix) };
  }

  /** What NetworkPolicy (the reference evaluator, on the API's objects) says every cell should show. */
  async expected(port = 80, protocol: Protocol = "TCP", pods: readonly LabPod[] = this.podsSorted()): Promise<CellExpectation[][]> {
    return expectedMatrix(await readPolicySnapshot(), pods, pods, port, protocol);
  }

  /** Per-node agent run dir (BIRD files, agent state). */
  agentRunDir(node: string): string {
    return agentRunDir(this.lab, node);
  }

  /** Tears everything down (idempotent; also after a failed start). */
  close(): Promise<CloseReport> {
    this.closeRequested = true;
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<CloseReport> {
    const errors: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    // A start in flight stops at its next checkpoint (every stage is bounded).
    await this.starting?.catch(() => undefined);
    await step("kubelet", async () => this.kubelet?.stop());
    await step("controller", async () => this.controllerHandle?.stop());
    await step("agents", () => Promise.all([...this.agentHandles.values()].map((a) => a.stop())));
    this.agentHandles.clear();
    if (this.labState !== undefined) {
      const lab = this.labState;
      if (this.torRouter) await step("router", () => stopTorRouter(lab));
      await step("pod agents", () => stopAllPodAgents(lab));
    }
    await step("installation", async () => this.installation?.close());
    await step("api relay", async () => this.relay?.close());
    await step("api server", async () => this.apiServer?.close());
    await step("kube-apiserver and etcd", async () => this.kubeServer?.stop());
    if (this.apiServer !== undefined || this.kubeServer !== undefined) {
      if (this.previousKubeconfig === undefined) delete process.env["KUBECONFIG"];
      else process.env["KUBECONFIG"] = this.previousKubeconfig;
    }
    if (activeCluster?.token === this.token) activeCluster = undefined;
    let destroyed: DestroyReport = { namespaces: [], stoppedPids: [] };
    // A cluster refused at start (another one runs in this process) built nothing and owns nothing.
    if (this.claimed) {
      await step("destroy lab", async () => {
        destroyed = await destroyLab(this.prefix);
      });
    }
    return { destroyed, errors };
  }
}

/** Builds and starts a LabCluster; on any failure everything built so far is torn down and the error rethrown. */
export async function startLabCluster(options: LabClusterOptions): Promise<LabCluster> {
  const cluster = new LabCluster(options);
  try {
    await cluster.start();
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}
