// Why: the last imitation in the lab was the node. Here the whole thing is real apart from the machine
// sharing: lab namespaces as the nodes' network, the real control plane (kube-apiserver, etcd,
// kube-controller-manager, kube-scheduler), on every node containerd + runc + kubelet (real-node.ts), the
// images built without a registry (hack/build-images.sh), and Switchyard installed from crds/ and deploy/
// with kubectl as a user installs it: the controller Deployment and the agent DaemonSet come up as pods the
// scheduler places, the agents install switchyard-cni, the nodes turn Ready, and workload pods get their
// interfaces from switchyard-cni through containerd.
import { existsSync } from "node:fs";
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import type { ClusterNetworkStatus } from "../../src/api/cluster-network";
import { describeError } from "../../src/kube/client";
import { ClusterNetworkGVK, NodeNetworkGVK } from "../../src/kube/kinds";
import { podInterfaceName } from "../../src/model/names";
import type { ApplyResult, LabPodPort } from "../cluster/lab-cluster";
import { startPodAgent, stopAllPodAgents, stopPodAgent, type PodServer } from "../pods";
import { join } from "node:path";
import { runCommand, runOk } from "../../src/base/exec";
import { mapBounded } from "../../src/base/limit";
import { packagePath } from "../../src/base/package-root";
import { waitFor } from "../../src/base/wait";
import type { Mode } from "../../src/api/cluster-network";
import { defaultClusterNetwork, SUBNET_LABEL, type ClusterNetworkObject } from "../cluster/samples";
import { subnetLetter } from "../cluster/nodes";
import { waitForPodToLeaveApi } from "../cluster/pod-api";
import { installSwitchyard, SYSTEM_NAMESPACE, type Installation } from "../control-plane/install";
import { kubeBinaries, spawnRecorded, startKubeControlPlane, type Child, type KubeControlPlane } from "../control-plane/kubernetes";
import { forgetProcess, stopPid } from "../processes";
import { TOR_AS_NUMBER } from "../router";
import { createLab, destroyLab, podNetnsName, type Lab, type LabPod } from "../topology";
import { startRealNode, WORKLOAD_IMAGE, type RealNode } from "./real-node";

export interface RealClusterOptions {
  /** Lab namespace prefix (ends with '-'). */
  readonly prefix: string;
  readonly nodes?: number;
  readonly subnets?: number;
  readonly mode?: Mode;
  /** The ClusterNetwork to apply instead of the mode's sample. */
  readonly clusterNetwork?: ClusterNetworkObject;
  /** Namespaces to create for workloads. */
  readonly namespaces?: readonly string[];
  readonly progress?: (line: string) => void;
  /** Give up when Switchyard is not Ready by then (ms). */
  readonly readyTimeoutMs?: number;
  /** Leave a cluster that failed to start running, to look at (`lab down` removes it). */
  readonly keepOnFailure?: boolean;
}

export interface RealCluster {
  readonly lab: Lab;
  readonly kube: KubeControlPlane;
  readonly nodes: readonly RealNode[];
  readonly kubeconfigPath: string;
  /** Milliseconds per start stage, and per node from kubelet start to Node Ready. */
  readonly timings: Readonly<Record<string, number>>;
  /** kubectl as the admin; throws with kubectl's message on a non-zero exit. */
  kubectl(args: readonly string[], stdin?: string): Promise<string>;
  clusterNetwork(): Promise<CnObject>;
  nodeNetworks(): Promise<NnObject[]>;
  /**
   * Creates a Pod of the workload image on `node` serving `ports` (TCP and UDP in its container; SCTP,
   * which this kernel has no sockets for, by the lab's raw-socket responder in the pod's namespace) and
   * waits until it runs; the pod then is a LabPod of `lab` (its network namespace attached under the lab's
   * prefix) with a prober in it, so probeMatrix and startTraffic reach it as they reach lab pods.
   */
  createPod(namespace: string, name: string, node: string, labels?: Readonly<Record<string, string>>, ports?: readonly LabPodPort[], opts?: { readonly annotations?: Readonly<Record<string, string>>; readonly wait?: boolean; readonly timeoutMs?: number }): Promise<LabPod | undefined>;
  /** A running pod (of a Deployment, say) as a LabPod with a prober: see createPod. */
  adoptPod(namespace: string, name: string): Promise<LabPod>;
  deletePod(namespace: string, name: string): Promise<void>;
  labelPod(namespace: string, name: string, labels: Readonly<Record<string, string | null>>): Promise<void>;
  applyPolicy(obj: Record<string, unknown>): Promise<ApplyResult>;
  /** Conformance probes: a disagreeing cell is probed again up to 10 times, 300 ms apart (3 s in all). */
  readonly probeRetries: { readonly retries: number; readonly intervalMs: number };
  /** Resolves once the ClusterNetwork is Ready and every node applied its current plan, for `settleMs` on end. */
  waitForReady(timeoutMs?: number, opts?: { readonly settleMs?: number; readonly acceptDegraded?: boolean }): Promise<void>;
  close(): Promise<void>;
}

type CnObject = { metadata?: { name?: string; generation?: number }; spec?: Record<string, unknown>; status?: ClusterNetworkStatus };
type NnObject = { metadata?: { name?: string }; spec?: { block?: string; planHash?: string }; status?: { appliedHash?: string } };
type PodObject = { metadata?: { name?: string; namespace?: string; labels?: Record<string, string> }; spec?: { nodeName?: string }; status?: { phase?: string; podIP?: string; containerStatuses?: { containerID?: string }[] } };

/** The output directory of hack/build-images.sh (building the images the first time). */
export async function buildImages(progress: (line: string) => void = () => undefined): Promise<string> {
  progress("images: hack/build-images.sh (switchyard:dev, switchyard-pause:dev, switchyard-workload:dev; cached by input hash)");
  const r = await runCommand("bash", [packagePath("hack", "build-images.sh"), "--quiet"], { timeoutMs: 15 * 60_000 });
  const dir = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.code !== 0 || dir === "") throw new Error(`hack/build-images.sh failed: ${r.stderr.trim().split("\n").slice(-5).join(" ")}`);
  return dir;
}

type NodeObject = { metadata: { name: string }; status?: { conditions?: { type: string; status: string; reason?: string }[] } };

export async function startRealCluster(o: RealClusterOptions): Promise<RealCluster> {
  const progress = o.progress ?? (() => undefined);
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  const stage = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    const r = await fn();
    timings[name] = Date.now() - s;
    return r;
  };
  await destroyLab(o.prefix);
  const [binDir, imageDir] = await stage("binaries", async () => [await kubeBinaries(progress, { nodes: true }), await buildImages(progress)] as const);
  const lab = await stage("lab", () => createLab({ prefix: o.prefix, nodes: o.nodes ?? 3, subnets: o.subnets ?? 1 }));
  const nodes: RealNode[] = [];
  let kube: KubeControlPlane | undefined;
  let installation: Installation | undefined;
  let relay: Child | undefined;
  const close = async (): Promise<void> => {
    await stopAllPodAgents(lab).catch(() => undefined);
    await mapBounded([...nodes], 4, (n) => n.stop().catch((e: unknown) => progress(`warning: stopping ${n.name}: ${(e as Error).message}`)));
    await installation?.close();
    if (relay) {
      if (relay.exit === undefined) {
        await stopPid(relay.pid, relay.record.startTime, 5_000);
        await relay.exited;
      }
      await forgetProcess(lab.runDir, relay.key);
    }
    await kube?.stop();
    await destroyLab(o.prefix);
  };
  try {
    const k = await stage("control plane", () => startKubeControlPlane({ runDir: lab.runDir, binDir, nodes: true, progress }));
    kube = k;
    // kfc reads KUBECONFIG on every request: what this process reads and writes goes to this cluster.
    process.env["KUBECONFIG"] = k.kubeconfigPath;
    const kubectl = async (args: readonly string[], stdin?: string): Promise<string> => {
      const r = await k.kubectl(args, { ...(stdin !== undefined ? { stdin } : {}), timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
      return r.stdout;
    };
    const apiSocket = join(lab.runDir, "api.sock");
    relay = await spawnRecorded(lab.runDir, "api-relay", "the API relay", process.execPath, [packagePath("lab", "nodes", "api-relay.mjs"), `unix:${apiSocket}`, `tcp:${new URL(k.url).host}`]);
    const r = relay;
    await waitFor("the API relay to listen", async () => (r.exit ? Promise.reject(new Error(r.exit)) : existsSync(apiSocket) || undefined), 10_000, 20);

    const namespaces = ["default", SYSTEM_NAMESPACE, ...(o.namespaces ?? [])];
    installation = await stage("install", () => installSwitchyard(k, { namespaces, progress }));
    // The ClusterNetwork first (the controller plans from it), then the daemons from deploy/, unchanged.
    await kubectl(["apply", "--server-side", "--field-manager=switchyard-lab", "-f", "-"], JSON.stringify({ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", ...(o.clusterNetwork ?? defaultClusterNetwork(o.mode ?? "vxlan", lab, TOR_AS_NUMBER)) }));
    await kubectl(["apply", "-f", packagePath("deploy", "controller.yaml"), "-f", packagePath("deploy", "agent.yaml")]);
    progress("applied deploy/controller.yaml and deploy/agent.yaml");

    const started = new Map<string, number>();
    await stage("nodes", () =>
      mapBounded(lab.nodes, 3, async (n) => {
        const node = await startRealNode({ prefix: o.prefix, runDir: lab.runDir, node: n, kube: k, apiSocket, imageDir, labels: { [SUBNET_LABEL]: subnetLetter(n.subnet) }, progress });
        nodes.push(node);
        started.set(n.name, Date.now());
      }),
    );
    const readyAt = new Map<string, number>();
    await stage("ready", async () => {
      let last = "";
      await waitFor(
        "every node Ready, Switchyard's pods Running and the ClusterNetwork Ready",
        async () => {
          const dead = nodes.map((n) => n.exitReason()).find((e) => e !== undefined);
          if (dead) throw new Error(dead);
          const list = JSON.parse(await kubectl(["get", "nodes", "-o", "json"])) as { items: NodeObject[] };
          for (const item of list.items) {
            if (!readyAt.has(item.metadata.name) && item.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) readyAt.set(item.metadata.name, Date.now());
          }
          const pods = JSON.parse(await kubectl(["get", "pods", "-n", SYSTEM_NAMESPACE, "-o", "json"])) as { items: { metadata: { name: string }; status?: { phase?: string; containerStatuses?: { ready?: boolean }[] } }[] };
          const running = pods.items.filter((p) => p.status?.phase === "Running" && (p.status.containerStatuses ?? []).every((c) => c.ready === true)).length;
          const cn = JSON.parse(await kubectl(["get", "clusternetwork", "default", "-o", "json"])) as { status?: { phase?: string } };
          last = `${readyAt.size}/${lab.nodes.length} nodes Ready, ${running}/${pods.items.length} switchyard pods Running and ready, ClusterNetwork ${cn.status?.phase ?? "-"}`;
          return readyAt.size === lab.nodes.length && pods.items.length >= lab.nodes.length + 1 && running === pods.items.length && cn.status?.phase === "Ready" ? true : undefined;
        },
        o.readyTimeoutMs ?? 240_000,
        500,
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message} (last: ${last})`);
      });
    });
    for (const [name, at] of readyAt) timings[`ready:${name}`] = at - (started.get(name) ?? at);
    timings["total"] = Date.now() - t0;
    progress(`real cluster up in ${timings["total"]} ms: ${lab.nodes.length} kubelet nodes Ready, Switchyard Running from deploy/`);
    return { lab, kube: k, nodes, kubeconfigPath: k.kubeconfigPath, timings, kubectl, close, ...workloads(lab, nodes) };
  } catch (e) {
    if (o.keepOnFailure) progress(`left running for inspection: logs in ${join(lab.runDir, "logs")}, admin kubeconfig ${kube?.kubeconfigPath ?? "-"}`);
    else await close().catch(() => undefined);
    throw e;
  }
}

/** The pod-level half of a RealCluster: workload pods as LabPods, policies, readiness. */
function workloads(lab: Lab, nodes: readonly RealNode[]): Pick<RealCluster, "clusterNetwork" | "nodeNetworks" | "createPod" | "adoptPod" | "deletePod" | "labelPod" | "applyPolicy" | "waitForReady" | "probeRetries"> {
  const cnApi = () => K8s(GenericKind, { kindOverride: ClusterNetworkGVK });
  const nnApi = () => K8s(GenericKind, { kindOverride: NodeNetworkGVK });
  const podsMut = lab.pods as LabPod[];
  const adopt = async (namespace: string, name: string, sctp: readonly PodServer[] = []): Promise<LabPod> => {
    const pod = (await K8s(kind.Pod).InNamespace(namespace).Get(name)) as PodObject;
    const node = nodes.find((n) => n.name === pod.spec?.nodeName);
    const cid = pod.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, "");
    if (!node || !cid || !pod.status?.podIP) throw new Error(`pod ${namespace}/${name} is not running on a node of this lab`);
    const task = (await node.ctr(["tasks", "ls"])).split("\n").map((l) => l.trim().split(/\s+/)).find((f) => f[0] === cid);
    const pid = Number(task?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`pod ${namespace}/${name}: container ${cid} has no running task on ${node.name}`);
    const netns = podNetnsName(lab.prefix, namespace, name);
    await runCommand("ip", ["netns", "del", netns], { timeoutMs: 10_000 });
    await runOk("ip", ["netns", "attach", netns, String(pid)], { timeoutMs: 10_000 });
    const labPod: LabPod = { namespace, name, node: node.name, ip: pod.status.podIP, netns, hostInterface: podInterfaceName(namespace, name), mtu: lab.podMtu };
    const at = podsMut.findIndex((p) => p.namespace === namespace && p.name === name);
    if (at >= 0) podsMut.splice(at, 1);
    podsMut.push(labPod);
    await startPodAgent(lab, { namespace, name }, sctp);
    return labPod;
  };
  const forget = async (namespace: string, name: string): Promise<void> => {
    const at = podsMut.findIndex((p) => p.namespace === namespace && p.name === name);
    if (at < 0) return;
    const netns = podsMut[at]!.netns;
    await stopPodAgent(lab, { namespace, name });
    await runCommand("ip", ["netns", "del", netns], { timeoutMs: 10_000 });
    const now = podsMut.findIndex((p) => p.namespace === namespace && p.name === name);
    if (now >= 0) podsMut.splice(now, 1);
  };
  const nodeNetworks = async () => (await nnApi().Get()).items as NnObject[];
  return {
    clusterNetwork: async () => (await cnApi().Get("default")) as CnObject,
    nodeNetworks,
    probeRetries: { retries: 10, intervalMs: 300 },
    async createPod(namespace, name, node, labels = {}, ports = [{ port: 80, protocol: "TCP" }], opts = {}) {
      const list = (proto: string) => ports.filter((p) => (p.protocol ?? "TCP") === proto).map((p) => p.port).join(",");
      await K8s(kind.Pod).Apply(
        {
          metadata: { name, namespace, labels: { ...labels }, ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}) },
          spec: {
            nodeName: node,
            terminationGracePeriodSeconds: 0,
            containers: [
              {
                name: "workload",
                image: WORKLOAD_IMAGE,
                imagePullPolicy: "Never",
                args: ["--tcp", list("TCP"), "--udp", list("UDP")],
                env: [{ name: "POD_NAME", value: `${namespace}/${name}` }],
                ports: ports.map((p) => ({ containerPort: p.port, protocol: p.protocol ?? "TCP", ...(p.name ? { name: p.name } : {}) })),
              },
            ],
          },
        } as never,
        { force: true },
      );
      if (opts.wait === false) return undefined;
      await waitFor(`pod ${namespace}/${name} to run`, async () => (((await K8s(kind.Pod).InNamespace(namespace).Get(name)) as PodObject).status?.phase === "Running" ? true : undefined), opts.timeoutMs ?? 60_000, 50);
      const sctp = ports.filter((p) => p.protocol === "SCTP").map((p) => ({ port: p.port, protocol: "SCTP" as const }));
      return adopt(namespace, name, sctp);
    },
    adoptPod: (namespace, name) => adopt(namespace, name),
    async deletePod(namespace, name) {
      await forget(namespace, name);
      try {
        await K8s(kind.Pod).InNamespace(namespace).Delete(name);
      } catch (e) {
        if ((e as { status?: number }).status !== 404) throw e;
      }
      await waitForPodToLeaveApi(namespace, name, 60_000, 50);
    },
    async labelPod(namespace, name, labels) {
      await K8s(kind.Pod, { name, namespace }).Patch([{ op: "add", path: "/metadata/labels", value: await nextLabels(namespace, name, labels) }]);
    },
    async applyPolicy(obj) {
      try {
        await K8s(kind.NetworkPolicy).Apply({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", ...obj } as never, { force: true });
        return { ok: true };
      } catch (e) {
        return { ok: false, message: describeError(e) };
      }
    },
    async waitForReady(timeoutMs = 60_000, opts = {}) {
      // The controller is a pod among others here: a change may reach it after a 1 s window.
      const settleMs = opts.settleMs ?? 2_000;
      let since: number | undefined;
      await waitFor("the ClusterNetwork Ready and every plan applied", async () => {
        const cn = (await cnApi().Get("default")) as CnObject;
        const nns = await nodeNetworks();
        const phase = cn.status?.phase;
        const ok = (phase === "Ready" || (opts.acceptDegraded && phase === "Degraded")) && nns.length === nodes.length && nns.every((n) => n.status?.appliedHash === n.spec?.planHash);
        if (!ok) since = undefined;
        else since ??= Date.now();
        return since !== undefined && Date.now() - since >= settleMs ? true : undefined;
      }, timeoutMs, 100);
    },
  };
}

async function nextLabels(namespace: string, name: string, change: Readonly<Record<string, string | null>>): Promise<Record<string, string>> {
  const pod = (await K8s(kind.Pod).InNamespace(namespace).Get(name)) as PodObject;
  const next: Record<string, string> = { ...(pod.metadata?.labels ?? {}) };
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return next;
}
