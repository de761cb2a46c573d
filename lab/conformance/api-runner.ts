// The conformance corpus through a whole cluster: where runner.ts compiles each case's policies itself and
// applies them straight to the nodes (the quick check of the compiler and renderers), this one writes the
// case's Namespaces, Pods and NetworkPolicies to the lab's API server (on CI the real kube-apiserver),
// and the real controller compiles them, publishes NodeNetworks, the agents apply them, switchyard-cni wires
// every pod at the corpus's address, and only then are the matrices probed with real packets. So the corpus
// also proves what the API server does to its objects (validation, defaulting), the controller's watch and
// pipeline, and the agents. Each pod goes to the node whose block holds its address: the corpus's nine
// addresses (10.0.0.10-.32) all fall in one /26 block, and switchyard-cni gives a pod only an address of
// its node's block that is neither the block's first (the node's own) nor its last, so they share a node
// here: every packet still crosses that node's forward hook (pods are /32-routed veths), but the
// cross-node pairs of the corpus are proven by runner.ts, not by this runner.
import { K8s, kind } from "kubernetes-fluent-client";
import { cidrContains, parseCidr, parseIPv4 } from "../../src/api/ipv4";
import { mapBounded } from "../../src/base/limit";
import { describeError } from "../../src/kube/client";
import { STATIC_IP_ANNOTATION } from "../../src/api/annotations";
import { LabCluster, type ApplyResult, type ControlPlaneKind, type LabPodPort } from "../cluster/lab-cluster";
import { startRealCluster } from "../nodes/real-cluster";
import type { Lab } from "../topology";
import { probeMatrix } from "../pods";
import { applyCorpusAction, corpusPortName, initialCorpusState, substituteDeep, type ConformanceCorpus, type CorpusCase, type CorpusState } from "./corpus";
import { loadCorpus, type CaseResult, type ConformanceReport, type PolicyBackend } from "./runner";

export interface ClusterConformanceOptions {
  readonly file: string;
  readonly backend: PolicyBackend;
  readonly controlPlane: ControlPlaneKind;
  readonly cases?: readonly string[];
  readonly prefix?: string;
  readonly log: (line: string) => void;
  /** The lab's own progress (the kubelet's lines at log level info). */
  readonly progress?: (line: string) => void;
  readonly logLevel?: string;
}

type ApiPod = { metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: { containers?: { ports?: { containerPort: number; protocol?: string; name?: string }[] }[] } };

const POOL = "10.0.0.0/16";

/** What the runner needs of a cluster: a LabCluster (lab kubelet) or a RealCluster (kubelet and containerd). */
export interface ConformanceCluster {
  readonly lab: Lab;
  nodeNetworks(): Promise<readonly { metadata?: { name?: string }; spec?: { block?: string } }[]>;
  applyPolicy(obj: Record<string, unknown>): Promise<ApplyResult>;
  labelPod(namespace: string, name: string, labels: Readonly<Record<string, string | null>>): Promise<void>;
  deletePod(namespace: string, name: string): Promise<void>;
  createPod(namespace: string, name: string, node: string, labels: Readonly<Record<string, string>>, ports: readonly LabPodPort[], opts: { readonly annotations?: Readonly<Record<string, string>>; readonly wait?: boolean; readonly timeoutMs?: number }): Promise<unknown>;
  waitForReady(timeoutMs?: number): Promise<unknown>;
  /**
   * How often a cell that disagrees is probed again, and how long apart: on real nodes the controller is a
   * pod among others on two cores, and a plan may land after the readiness window closed.
   */
  readonly probeRetries?: { readonly retries: number; readonly intervalMs: number };
}

class ClusterRunner {
  /** node name -> its block, as the controller allocated them. */
  private blocks = new Map<string, string>();

  constructor(
    readonly cluster: ConformanceCluster,
    readonly corpus: ConformanceCorpus,
  ) {}

  async readBlocks(): Promise<void> {
    this.blocks = new Map((await this.cluster.nodeNetworks()).map((n) => [n.metadata?.name ?? "", n.spec?.block ?? ""]));
  }

  /** The node whose block holds `ip`; else the node with the fewest pods (a pod with no fixed address). */
  nodeFor(ip: string | undefined, counts: Map<string, number>): string {
    const addr = ip !== undefined ? parseIPv4(ip) : undefined;
    if (addr !== undefined) {
      for (const [node, block] of this.blocks) {
        const c = parseCidr(block);
        if (c && cidrContains(c, addr)) return node;
      }
    }
    return [...counts.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  }

  private portsOf(state: CorpusState, ref: string) {
    return (state.pods.get(ref)?.servers ?? []).map((s) => ({ port: s.port, protocol: s.protocol, name: corpusPortName(this.corpus, s) }));
  }

  /** Makes the API's namespaces, pods and policies equal to the state's, then waits until the cluster applied them. */
  async sync(state: CorpusState): Promise<void> {
    for (const [name, labels] of state.namespaces) {
      await K8s(kind.Namespace).Apply({ metadata: { name, labels: { ...labels } } }, { force: true });
    }
    // Policies: remove what the state no longer has, apply the rest (templates expanded with the pods' addresses).
    const ipOf = (ref: string): string | undefined => state.pods.get(ref)?.ip;
    // Only the corpus's namespaces: a cluster of real nodes also runs Switchyard's own pods (switchyard-system).
    const ours = (o: { metadata?: { namespace?: string } }) => state.namespaces.has(o.metadata?.namespace ?? "");
    const current = (await K8s(kind.NetworkPolicy).Get()).items.filter(ours);
    for (const p of current) {
      const key = `${p.metadata?.namespace}/${p.metadata?.name}`;
      if (!state.policies.has(key)) await K8s(kind.NetworkPolicy).InNamespace(p.metadata?.namespace ?? "default").Delete(p.metadata?.name ?? "");
    }
    for (const obj of state.policies.values()) {
      const r = await this.cluster.applyPolicy(substituteDeep(obj, ipOf) as Record<string, unknown>);
      if (!r.ok) throw new Error(`the API server refused a policy of the corpus: ${r.message}`);
    }
    // Pods: a pod whose address or ports differ is replaced (ports are immutable); labels are patched.
    const pods = ((await K8s(kind.Pod).Get()).items as ApiPod[]).filter(ours);
    const wantPorts = (ref: string) => JSON.stringify(this.portsOf(state, ref).map((p) => [p.port, p.protocol, p.name]));
    const havePorts = (p: ApiPod) => JSON.stringify((p.spec?.containers?.[0]?.ports ?? []).map((x) => [x.containerPort, x.protocol ?? "TCP", x.name]));
    const keep = new Set<string>();
    await mapBounded(pods, 8, async (p) => {
      const ref = `${p.metadata?.namespace}/${p.metadata?.name}`;
      const want = state.pods.get(ref);
      const ip = p.metadata?.annotations?.[STATIC_IP_ANNOTATION];
      if (want && ip === JSON.stringify([want.ip]) && havePorts(p) === wantPorts(ref)) {
        keep.add(ref);
        const labels = p.metadata?.labels ?? {};
        const change: Record<string, string | null> = { ...want.labels };
        for (const k of Object.keys(labels)) if (!(k in want.labels)) change[k] = null;
        if (JSON.stringify(Object.entries(labels).sort()) !== JSON.stringify(Object.entries(want.labels).sort())) await this.cluster.labelPod(want.namespace, want.name, change);
      } else {
        await this.cluster.deletePod(p.metadata?.namespace ?? "", p.metadata?.name ?? "");
      }
    });
    const counts = new Map([...this.blocks.keys()].map((n) => [n, 0]));
    const toCreate = [...state.pods.entries()].filter(([ref]) => !keep.has(ref));
    await mapBounded(toCreate, 8, async ([ref, p]) => {
      const node = this.nodeFor(p.ip, counts);
      counts.set(node, (counts.get(node) ?? 0) + 1);
      await this.cluster.createPod(p.namespace, p.name, node, p.labels, this.portsOf(state, ref), { annotations: { [STATIC_IP_ANNOTATION]: JSON.stringify([p.ip]) }, wait: true, timeoutMs: 60_000 });
    });
    await this.cluster.waitForReady(60_000);
  }

  async runCase(c: CorpusCase): Promise<CaseResult> {
    const started = Date.now();
    const failures: string[] = [];
    let matrices = 0;
    let state = initialCorpusState(this.corpus, c);
    try {
      await this.sync(state);
      for (const step of c.steps) {
        for (const action of step.actions) state = applyCorpusAction(state, action, c);
        await this.sync(state);
        for (const probe of step.probes) {
          matrices++;
          const rows = probe.pods.map((from) => probe.pods.map((_, j) => probe.matrix[from]?.[j] === "."));
          const refs = probe.pods.map((r) => {
            const [namespace, name] = r.split("/") as [string, string];
            return { namespace, name, ip: state.pods.get(r)?.ip ?? "0.0.0.0" };
          });
          const result = await probeMatrix(this.cluster.lab, refs, refs, probe.port, probe.protocol, { timeoutMs: 800, expected: rows, retries: this.cluster.probeRetries?.retries ?? 2, retryIntervalMs: this.cluster.probeRetries?.intervalMs ?? 200 });
          for (const m of result.mismatches) {
            const from = probe.pods[m.from]!;
            const to = probe.pods[m.to]!;
            if (from === to && this.corpus.ignoreLoopback) continue;
            const want = rows[m.from]![m.to]!;
            failures.push(`step ${step.step} ${probe.protocol}/${probe.port}: ${from} -> ${to} expected ${want ? "connected" : "denied"}, got ${want ? "denied" : "connected"}`);
          }
        }
      }
    } catch (e) {
      failures.push(describeError(e));
    }
    return { id: c.id, passed: failures.length === 0, matrices, ms: Date.now() - started, failures, notes: [] };
  }
}

/** The corpus's ClusterNetwork: its addresses (10.0.0.10-.32) in /26 blocks of 10.0.0.0/16. */
function corpusClusterNetwork(backend: PolicyBackend) {
  return { metadata: { name: "default" }, spec: { podCIDRs: [POOL], blockSize: 26, mode: "vxlan", vxlan: { vni: 1, port: 8472 }, policy: { backend } } };
}

async function runCases(cluster: ConformanceCluster, corpus: ConformanceCorpus, cases: readonly CorpusCase[], header: string, log: (line: string) => void): Promise<ConformanceReport> {
  const results: CaseResult[] = [];
  const runner = new ClusterRunner(cluster, corpus);
  await runner.readBlocks();
  log(header);
  for (const c of cases) {
    const r = await runner.runCase(c);
    results.push(r);
    log(`${r.passed ? "PASS" : "FAIL"} ${r.id} (${r.matrices} matrix${r.matrices === 1 ? "" : "es"}, ${(r.ms / 1000).toFixed(1)} s)`);
    for (const f of r.failures.slice(0, 8)) log(`     ${f}`);
  }
  const passed = results.filter((r) => r.passed).length;
  log(`${passed} passed, ${results.length - passed} failed`);
  return { passed, failed: results.length - passed, results, applies: { full: 0, incremental: 0, failed: 0 } };
}

function selectCases(corpus: ConformanceCorpus, ids: readonly string[] | undefined): CorpusCase[] {
  const wanted = new Set(ids ?? []);
  return corpus.cases.filter((c) => wanted.size === 0 || wanted.has(c.id));
}

/** Runs the corpus through a lab cluster (API server, controller, agents, CNI); one line per case. */
export async function runConformanceOnCluster(opts: ClusterConformanceOptions): Promise<ConformanceReport> {
  const corpus = loadCorpus(opts.file);
  const cases = selectCases(corpus, opts.cases);
  const cluster = new LabCluster({
    prefix: opts.prefix ?? "sycc-",
    controlPlane: opts.controlPlane,
    nodes: 3,
    subnets: 1,
    pods: [],
    namespaces: corpus.namespaces.map((n) => n.name),
    ...(opts.progress ? { progress: opts.progress } : {}),
    ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
    clusterNetwork: corpusClusterNetwork(opts.backend),
  });
  try {
    await cluster.start();
    return await runCases(cluster, corpus, cases, `# ${corpus.title || opts.file}: ${cases.length} case(s) through the ${opts.controlPlane} control plane, backend ${opts.backend}`, opts.log);
  } finally {
    await cluster.close();
  }
}

/**
 * Runs the corpus on real nodes: kubelet and containerd run every pod of the corpus (the workload image),
 * switchyard-cni wires it through containerd, Switchyard runs from deploy/ (lab/nodes/real-cluster.ts).
 */
export async function runConformanceOnRealNodes(opts: Omit<ClusterConformanceOptions, "controlPlane" | "logLevel">): Promise<ConformanceReport> {
  const corpus = loadCorpus(opts.file);
  const cases = selectCases(corpus, opts.cases);
  const cluster = await startRealCluster({
    prefix: opts.prefix ?? "sycr-",
    nodes: 3,
    namespaces: corpus.namespaces.map((n) => n.name),
    clusterNetwork: corpusClusterNetwork(opts.backend),
    ...(opts.progress ? { progress: opts.progress } : {}),
  });
  try {
    return await runCases(cluster, corpus, cases, `# ${corpus.title || opts.file}: ${cases.length} case(s) on kubelet nodes (containerd), backend ${opts.backend}`, opts.log);
  } finally {
    await cluster.close();
  }
}
