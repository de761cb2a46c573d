// Why: the controller reads pods from Pod objects (spec.nodeName, status.podIP, labels, ports), so the lab
// needs what a real node provides between "a Pod is scheduled" and "the Pod has an address": a kubelet
// and a CNI plugin. This is the minimal pair, and it is level-triggered like the controller: watch events
// only update a cache and ask for a pass; one pass at a time compares the Pod objects scheduled on lab
// nodes with the pod namespaces that exist, and makes them agree.
// - Sandbox: a pod network namespace, wired by switchyard-cni through the CNI exec protocol (addPod,
//   lab/cni.ts) with the conflist the node's agent installed: the plugin picks the address from the
//   node's block (a static request annotation goes along as IP=), sets the plan's MTU and waits until the
//   agent has programmed the pod's policy. A pod whose node has no conflist yet waits (next NodeNetwork
//   event). Then a pod agent serving the container ports (spec.containers[].ports) and answering probes.
// - Status: podIP, hostIP and phase Running through the status subresource, or Pending with the reason.
// - A deleted Pod (or one re-created under the same name: a new uid) loses its namespace.
// Failures are values on the pod (reason, status message) and the pass is retried with backoff.
import { annotationPath, POD_MTU_ANNOTATION, STATIC_IP_ANNOTATION } from "../src/api/annotations";
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import { mapBounded } from "../src/base/limit";
import { ClusterNetworkGVK, NodeNetworkGVK } from "../src/kube/kinds";
import { CoalescingScheduler } from "../src/base/scheduler";
import { ResourceCache, type KObj, type Phase } from "../src/kube/store";
import type { Protocol } from "../src/model/cluster";
import { Mutex } from "./cluster/mutex";
import { startPodAgent, type PodServer } from "./pods";
import { addPod, removePod, type Lab, type LabPod } from "./topology";
import { labCniDirs } from "./cni-runtime";
import { CNI_CONFLIST_NAME } from "../src/agent/cni-install";
import { existsSync } from "node:fs";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { join } from "node:path";

type PodObject = InstanceType<typeof kind.Pod>;

/** The kubelet's last word on a Pod it tore down: delete with grace 0, only that exact Pod (uid). */
async function finalizePodDeletion(namespace: string, name: string, uid: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  try {
    await kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
  } catch (e) {
    // Already gone (404) or replaced by a new Pod of that name (409): nothing of ours is left to delete.
    const code = (e as { code?: number }).code;
    if (code !== 404 && code !== 409) throw e;
  }
}

export interface KubeletOptions {
  /** The lab as it is now (it grows and shrinks with nodes). */
  readonly getLab: () => Lab;
  /** Held during a pass, so node changes and passes never interleave. */
  readonly lock?: Mutex;
  readonly log?: (line: string) => void;
  /** Pods set up at once. Default 4. */
  readonly parallel?: number;
  /** Full relist period (lost-event repair). Default 10 s. */
  readonly resyncIntervalMs?: number;
}

export interface KubeletPodState {
  /** namespace/name */
  readonly key: string;
  readonly node: string;
  readonly ip?: string;
  readonly state: "running" | "pending";
  readonly reason?: string;
}

interface Desired {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly hostNetwork: boolean;
  readonly requested?: string;
  readonly statusIP?: string;
  readonly phase?: string;
  readonly statusMessage?: string;
  readonly servers: PodServer[];
  readonly hasAnnotations: boolean;
  readonly mtuAnnotation?: string;
}

export { POD_MTU_ANNOTATION };

const keyOf = (ns: string, name: string): string => `${ns}/${name}`;

/** The static address a pod asks for: `["10.244.1.10"]` (Calico's form) or a bare address. */
export function requestedAddress(annotations: Readonly<Record<string, string>> | undefined): string | undefined {
  const raw = annotations?.[STATIC_IP_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    if (Array.isArray(v) && typeof v[0] === "string") return v[0];
    if (typeof v === "string") return v;
  } catch {
    // not JSON: a bare address
  }
  return raw.trim();
}

/** What the pod's agent serves: every container port, once. */
export function serversOf(pod: PodObject): PodServer[] {
  const seen = new Map<string, PodServer>();
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      const protocol = (p.protocol ?? "TCP") as Protocol;
      seen.set(`${protocol}/${p.containerPort}`, { port: p.containerPort, protocol });
    }
  }
  return [...seen.values()].sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : 1));
}

export class LabKubelet {
  private readonly cache = new ResourceCache();
  private readonly scheduler: CoalescingScheduler;
  private readonly lock: Mutex;
  private readonly log: (line: string) => void;
  /** uid of the Pod object each realized pod namespace was made for. */
  private readonly uids = new Map<string, string>();
  private readonly reasons = new Map<string, string>();
  private readonly watchers: { close(): void }[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** A pass is wanted or running; cleared when a pass ends with nothing new asked for. */
  private busy = false;
  private requested = 0;
  private lastPassPending = 0;
  /** Pods waiting for a NodeNetwork or ClusterNetwork change (then those events start a pass). */
  private waitingForPlans = false;
  readonly counters = { passes: 0, added: 0, removed: 0, statusWrites: 0, failures: 0 };

  constructor(private readonly opts: KubeletOptions) {
    this.lock = opts.lock ?? new Mutex();
    this.log = opts.log ?? (() => undefined);
    this.scheduler = new CoalescingScheduler({
      minIntervalMs: 20,
      maxBackoffMs: 2_000,
      run: () => this.pass(),
      onError: (e) => this.log(`kubelet: pass failed, retrying: ${(e as Error).message}`),
    });
  }

  private trigger(): void {
    if (this.stopped) return;
    this.busy = true;
    this.requested++;
    this.scheduler.trigger();
  }

  private onPod(phase: Phase, obj: PodObject): void {
    if (this.cache.apply(phase, obj as unknown as KObj)) this.trigger();
  }

  async start(): Promise<void> {
    await this.relist();
    const pods = K8s(kind.Pod).Watch(
      (obj, phase) => {
        if (phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED") this.onPod(phase, obj);
      },
      { resyncDelaySec: 1, relistIntervalSec: 600 },
    );
    await pods.start();
    this.watchers.push(pods);
    for (const gvk of [NodeNetworkGVK, ClusterNetworkGVK]) {
      const w = K8s(GenericKind, { kindOverride: gvk }).Watch(
        () => {
          if (this.waitingForPlans) this.trigger();
        },
        { resyncDelaySec: 1, relistIntervalSec: 600 },
      );
      await w.start();
      this.watchers.push(w);
    }
    const every = this.opts.resyncIntervalMs ?? 10_000;
    const resync = (): void => {
      if (this.stopped) return;
      this.relist()
        .catch((e: unknown) => this.log(`kubelet: relist failed: ${(e as Error).message}`))
        .finally(() => {
          if (!this.stopped) this.resyncTimer = setTimeout(resync, every);
        });
    };
    this.resyncTimer = setTimeout(resync, every);
    this.trigger();
  }

  private async relist(): Promise<void> {
    const list = await K8s(kind.Pod).Get();
    // With the list's resourceVersion, a pod deleted while the list was in flight is not brought back.
    const rv = Number((list as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion);
    if (this.cache.replaceAll(list.items as unknown as KObj[], Number.isFinite(rv) ? rv : undefined)) this.trigger();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    for (const w of this.watchers.splice(0)) w.close();
    this.scheduler.stop();
    // A pass in flight finishes under the lock; wait for it so teardown does not race a pod being set up.
    await this.lock.run(async () => undefined);
  }

  /** Asks for a pass now (e.g. after a node restart took its pods' namespaces away). */
  resync(): void {
    this.trigger();
  }

  /** True when every scheduled pod has its namespace, agent and status, and no pass is due. */
  settled(): boolean {
    return !this.busy && this.lastPassPending === 0;
  }

  /** Pods on lab nodes as the kubelet sees them. */
  podStates(): KubeletPodState[] {
    const lab = this.opts.getLab();
    return this.desired(lab).map((d) => {
      const pod = lab.pods.find((p) => p.namespace === d.namespace && p.name === d.name);
      const reason = this.reasons.get(d.key);
      return pod !== undefined && this.uids.get(d.key) === d.uid
        ? { key: d.key, node: d.node, ip: pod.ip, state: "running" as const }
        : { key: d.key, node: d.node, ...(d.hostNetwork && d.statusIP ? { ip: d.statusIP } : {}), state: d.hostNetwork && d.phase === "Running" ? ("running" as const) : ("pending" as const), ...(reason ? { reason } : {}) };
    });
  }

  private desired(lab: Lab): Desired[] {
    const nodes = new Set(lab.nodes.map((n) => n.name));
    const out: Desired[] = [];
    for (const o of this.cache.list()) {
      const pod = o as unknown as PodObject;
      const node = pod.spec?.nodeName;
      const namespace = pod.metadata?.namespace ?? "default";
      const name = pod.metadata?.name ?? "";
      if (node === undefined || !nodes.has(node) || pod.metadata?.deletionTimestamp !== undefined) continue;
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
      const requested = requestedAddress(pod.metadata?.annotations);
      out.push({
        key: keyOf(namespace, name),
        namespace,
        name,
        uid: pod.metadata?.uid ?? "",
        node,
        hostNetwork: pod.spec?.hostNetwork === true,
        ...(requested !== undefined ? { requested } : {}),
        ...(pod.status?.podIP ? { statusIP: pod.status.podIP } : {}),
        ...(pod.status?.phase ? { phase: pod.status.phase } : {}),
        ...(pod.status?.message ? { statusMessage: pod.status.message } : {}),
        servers: serversOf(pod),
        hasAnnotations: pod.metadata?.annotations !== undefined,
        ...(pod.metadata?.annotations?.[POD_MTU_ANNOTATION] !== undefined ? { mtuAnnotation: pod.metadata.annotations[POD_MTU_ANNOTATION] } : {}),
      });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async pass(): Promise<void> {
    const seen = this.requested;
    await this.lock.run(() => this.passLocked());
    // Idle only after a pass that succeeded with no event arriving meanwhile (else another pass is due;
    // a failed pass is retried by the scheduler and leaves the kubelet busy).
    if (this.requested === seen) this.busy = false;
  }

  private async passLocked(): Promise<void> {
    if (this.stopped) return;
    this.counters.passes++;
    const lab = this.opts.getLab();
    const desired = this.desired(lab);
    const byKey = new Map(desired.map((d) => [d.key, d]));
    const parallel = this.opts.parallel ?? 4;
    let failures = 0;

    // 1. Pod namespaces without a Pod object (deleted, re-created, moved to host network) go first.
    const stale = lab.pods.filter((p) => {
      const d = byKey.get(keyOf(p.namespace, p.name));
      return d === undefined || d.hostNetwork || d.node !== p.node || d.uid !== this.uids.get(keyOf(p.namespace, p.name));
    });
    await mapBounded(stale, parallel, async (p) => {
      await removePod(lab, p);
      this.uids.delete(keyOf(p.namespace, p.name));
      this.counters.removed++;
      this.log(`kubelet: removed pod ${p.namespace}/${p.name} from ${p.node}`);
    });
    for (const key of [...this.reasons.keys()]) if (!byKey.has(key)) this.reasons.delete(key);

    // 1b. A Pod deleted gracefully on a real API server stays, with a deletionTimestamp, until its kubelet
    // has torn it down and says so with a delete of grace 0 (the emulator removes it at once).
    const terminating = this.cache
      .list()
      .map((o) => o as unknown as PodObject)
      .filter((p) => p.metadata?.deletionTimestamp !== undefined && p.spec?.nodeName !== undefined && lab.nodes.some((n) => n.name === p.spec?.nodeName))
      .filter((p) => !lab.pods.some((x) => x.namespace === (p.metadata?.namespace ?? "default") && x.name === p.metadata?.name));
    await mapBounded(terminating, parallel, async (p) => {
      await finalizePodDeletion(p.metadata?.namespace ?? "default", p.metadata?.name ?? "", p.metadata?.uid ?? "");
    });

    // 2. Scheduled pods without a namespace: address, sandbox, agent.
    const realized = (d: Desired): LabPod | undefined => lab.pods.find((p) => p.namespace === d.namespace && p.name === d.name);
    const toAdd = desired.filter((d) => !d.hostNetwork && realized(d) === undefined);
    this.waitingForPlans = false;
    await mapBounded(toAdd, parallel, async (d) => {
      if (!existsSync(join(labCniDirs(lab.runDir, d.node).confDir, CNI_CONFLIST_NAME))) {
        this.waitingForPlans = true;
        this.reasons.set(d.key, `waiting for the CNI configuration of ${d.node} (its agent installs it once the node has a pod block)`);
        return;
      }
      try {
        // The runtime's part: a sandbox, then the node's conflist through the CNI exec protocol; the plugin
        // picks the address (a static request goes along as IP=) and waits for the pod's policy.
        const pod = await addPod(lab, { namespace: d.namespace, name: d.name, node: d.node, ...(d.requested !== undefined ? { ip: d.requested } : {}) });
        try {
          await startPodAgent(lab, pod, d.servers);
        } catch (e) {
          await removePod(lab, pod);
          throw e;
        }
        this.uids.set(d.key, d.uid);
        this.reasons.delete(d.key);
        this.counters.added++;
        this.log(`kubelet: pod ${d.key} on ${d.node} at ${pod.ip} (mtu ${pod.mtu}, serving ${d.servers.map((s) => `${s.port}/${s.protocol}`).join(",") || "nothing"})`);
      } catch (e) {
        failures++;
        this.counters.failures++;
        this.reasons.set(d.key, `sandbox failed: ${(e as Error).message.split("\n")[0] ?? ""}`);
        this.log(`kubelet: sandbox of ${d.key} on ${d.node} failed: ${(e as Error).message.split("\n").slice(0, 3).join(" | ")}`);
      }
    });

    // 3. Status: what the API says must match what exists.
    let pending = 0;
    await mapBounded(desired, parallel, async (d) => {
      const node = lab.nodes.find((n) => n.name === d.node);
      const pod = realized(d);
      const running = d.hostNetwork ? node !== undefined : pod !== undefined && this.uids.get(d.key) === d.uid;
      const ip = d.hostNetwork ? node?.ip : pod?.ip;
      if (running && ip !== undefined) {
        // Like a CNI plugin recording what it configured: the pod's interface MTU, so the controller can
        // report pods whose MTU exceeds a lowered plan MTU (they rely on PMTU discovery until restarted).
        if (!d.hostNetwork && pod !== undefined && d.mtuAnnotation !== String(pod.mtu)) await this.writeMtu(d, pod.mtu);
        if (d.phase === "Running" && d.statusIP === ip) return;
        await this.writeStatus(d, { phase: "Running", podIP: ip, hostIP: node?.ip });
        return;
      }
      pending++;
      const reason = this.reasons.get(d.key) ?? "waiting for the sandbox";
      if (d.phase !== "Pending" || d.statusMessage !== reason) await this.writeStatus(d, { phase: "Pending", message: reason, hostIP: node?.ip });
    });
    this.lastPassPending = pending;
    if (failures > 0) throw new Error(`${failures} pod sandbox(es) failed; see the pods' status messages`);
  }

  private async writeMtu(d: Desired, mtu: number): Promise<void> {
    const path = annotationPath(POD_MTU_ANNOTATION);
    const ops = d.hasAnnotations ? [{ op: "add" as const, path, value: String(mtu) }] : [{ op: "add" as const, path: "/metadata/annotations", value: { [POD_MTU_ANNOTATION]: String(mtu) } }];
    try {
      await K8s(kind.Pod, { name: d.name, namespace: d.namespace }).Patch(ops);
    } catch (e) {
      this.log(`kubelet: mtu annotation of ${d.key} not written: ${(e as Error).message}`);
    }
  }

  private async writeStatus(d: Desired, s: { phase: "Running" | "Pending"; podIP?: string; hostIP?: string | undefined; message?: string }): Promise<void> {
    const now = new Date().toISOString();
    const ready = s.phase === "Running";
    const status = {
      phase: s.phase,
      ...(s.podIP !== undefined ? { podIP: s.podIP, podIPs: [{ ip: s.podIP }] } : {}),
      ...(s.hostIP !== undefined ? { hostIP: s.hostIP, hostIPs: [{ ip: s.hostIP }] } : {}),
      ...(s.message !== undefined ? { message: s.message, reason: "SandboxPending" } : {}),
      conditions: [
        { type: "PodScheduled", status: "True", lastTransitionTime: now },
        { type: "Ready", status: ready ? "True" : "False", lastTransitionTime: now, ...(ready ? {} : { reason: "SandboxPending", message: s.message ?? "" }) },
      ],
      ...(ready ? { startTime: now } : {}),
    };
    try {
      await K8s(kind.Pod).PatchStatus({ metadata: { name: d.name, namespace: d.namespace }, status } as never);
      this.counters.statusWrites++;
    } catch (e) {
      // Deleted in the meantime: the DELETED event starts the next pass.
      this.log(`kubelet: status of ${d.key} not written: ${(e as Error).message}`);
    }
  }
}
