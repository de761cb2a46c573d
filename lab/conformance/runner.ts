// The NetworkPolicy conformance runner: every case of a corpus (../shared/conformance/FORMAT.md) on the
// real kernel. Pods are spread over the lab's nodes (both same-node and cross-node pairs occur), placed at
// the corpus's IPs, and every node gets the compiled slice for its own pods, rendered for the chosen
// backend and applied the way the agent applies it: a whole-table transaction, or only the set elements
// when only group membership changed. Ingress is thus enforced on the destination's node and egress on the
// source's. The stored expectation of each matrix is cross-checked against the reference evaluator (a
// disagreement is reported: it means the corpus or the evaluator is wrong) and then against real packets.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { applyIptables, removeIptables } from "../../src/agent/policy/iptables";
import { applyNftRuleset, applyNftSetUpdate, removeSwitchyardTable } from "../../src/agent/policy/nftables";
import { runCommand } from "../../src/base/exec";
import { mapBounded } from "../../src/base/limit";
import { compilePolicies, evaluateConnection, slicePolicyForNode, type NodePolicySlice } from "../../src/compile/policy";
import { applyCorpusAction, buildCorpusSnapshot, corpusPodServes, initialCorpusState, parseConformanceCorpus, type ConformanceCorpus, type CorpusCase, type CorpusProbe, type CorpusState } from "./corpus";
import { allocateBlocks, assignPodAddresses } from "../../src/compile/ipam/ipam";
import { renderIptables } from "../../src/render/iptables";
import { renderNftables, renderNftablesSetUpdate } from "../../src/render/nftables";
import { probeMatrix, startPodAgent, stopAllPodAgents, type PodServer } from "../pods";
import { addPod, createLab, destroyLab, installStaticPodRoutes, removePod, type Lab } from "../topology";

export type PolicyBackend = "nftables" | "iptables";

/** The pool the corpus's pod addresses come from. */
const LAB_POOL = "10.0.0.0/16";

export interface ConformanceOptions {
  readonly file: string;
  readonly backend: PolicyBackend;
  /** Only these case ids (all when empty). */
  readonly cases?: readonly string[];
  readonly prefix?: string;
  /** Nodes the pods are spread over (>= 3). */
  readonly nodes?: number;
  /** Per-probe timeout: what a denied cell costs. */
  readonly timeoutMs?: number;
  /** Extra attempts for a cell that disagrees with the expectation (upstream polls too). */
  readonly retries?: number;
  readonly log: (line: string) => void;
  /** Details of failures and cross-check notes. */
  readonly verbose?: boolean;
}

export interface CaseResult {
  readonly id: string;
  readonly passed: boolean;
  readonly matrices: number;
  readonly ms: number;
  readonly failures: readonly string[];
  readonly notes: readonly string[];
}

export interface ConformanceReport {
  readonly passed: number;
  readonly failed: number;
  readonly results: readonly CaseResult[];
  readonly applies: { readonly full: number; readonly incremental: number; readonly failed: number };
}

export class ConformanceInputError extends Error {}

/** Reads and validates a corpus file; throws ConformanceInputError with a one-line reason. */
export function loadCorpus(file: string): ConformanceCorpus {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConformanceInputError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: -1 });
  } catch (e) {
    throw new ConformanceInputError(`cannot parse ${file}: ${(e as Error).message.split("\n")[0]}`);
  }
  const parsed = parseConformanceCorpus(doc);
  if (!parsed.ok) throw new ConformanceInputError(`${file} is not a conformance corpus (schema_version 1): ${parsed.errors.slice(0, 5).join("; ")}`);
  return parsed.corpus;
}

type NodeState = { slice?: NodePolicySlice };

class Runner {
  readonly nodeStates = new Map<string, NodeState>();
  readonly placement = new Map<string, string>();
  readonly applies = { full: 0, incremental: 0, failed: 0 };
  /** Pods currently in the lab, with the servers their agent runs (JSON). */
  readonly labPods = new Map<string, { ip: string; servers: string }>();

  constructor(
    readonly lab: Lab,
    readonly corpus: ConformanceCorpus,
    readonly opts: ConformanceOptions,
  ) {
    corpus.podOrder.forEach((ref, i) => this.placement.set(ref, lab.nodes[i % lab.nodes.length]!.name));
  }

  nodeOf(ref: string): string {
    let node = this.placement.get(ref);
    if (node === undefined) {
      // Pods created mid-case go to the node with the fewest pods, by name order on ties.
      const counts = new Map(this.lab.nodes.map((n) => [n.name, 0]));
      for (const [r, n] of this.placement) if (this.labPods.has(r)) counts.set(n, (counts.get(n) ?? 0) + 1);
      node = [...counts.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
      this.placement.set(ref, node);
    }
    return node;
  }

  /**
   * The corpus's pod IPs are static per-pod requests, honoured by IPAM as Calico users know it: each node
   * gets a block from the lab pool, and a requested address outside the pod's node block is "borrowed"
   * (routed as a /32). A request IPAM refuses fails the case instead of being silently placed.
   */
  addresses(state: CorpusState): Map<string, string> {
    const pool = [LAB_POOL];
    const blocks = allocateBlocks(pool, 26, this.lab.nodes.map((n) => n.name)).blocks;
    const reqs = [...state.pods.entries()].map(([ref, p]) => ({ key: ref, node: this.nodeOf(ref), ...(p.ip ? { requested: p.ip } : {}) }));
    const r = assignPodAddresses(pool, blocks, reqs);
    if (r.diagnostics.length > 0) throw new Error(`IPAM refused pod addresses: ${r.diagnostics.map((d) => `${d.key}: ${d.message}`).join("; ")}`);
    return new Map(Object.entries(r.addresses));
  }

  /** Makes the lab's pods (and their servers) equal to the state's. */
  async syncPods(state: CorpusState): Promise<void> {
    const addrs = this.addresses(state);
    for (const ref of [...this.labPods.keys()]) {
      const want = state.pods.get(ref);
      if (!want || want.ip !== this.labPods.get(ref)!.ip) {
        const [namespace, name] = ref.split("/") as [string, string];
        await removePod(this.lab, { namespace, name });
        this.labPods.delete(ref);
      }
    }
    let added = false;
    await mapBounded([...state.pods.entries()], 4, async ([ref, pod]) => {
      const servers: PodServer[] = pod.servers.map((s) => ({ port: s.port, protocol: s.protocol }));
      const key = JSON.stringify(servers);
      const have = this.labPods.get(ref);
      if (!have) {
        await addPod(this.lab, { namespace: pod.namespace, name: pod.name, node: this.nodeOf(ref), ip: addrs.get(ref)! });
        added = true;
      }
      if (!have || have.servers !== key) {
        await startPodAgent(this.lab, { namespace: pod.namespace, name: pod.name }, servers);
        this.labPods.set(ref, { ip: pod.ip, servers: key });
      }
    });
    if (added) await installStaticPodRoutes(this.lab);
  }

  /** Compiles the state and applies every node's slice; returns the compile diagnostics. */
  async applyPolicies(state: CorpusState): Promise<string[]> {
    const snapshot = buildCorpusSnapshot(this.corpus, state, (ref) => this.nodeOf(ref));
    const model = compilePolicies(snapshot);
    const problems: string[] = model.diagnostics.map((d) => `${d.path}: ${d.message}`);
    await mapBounded(this.lab.nodes, 4, async (node) => {
      const slice = slicePolicyForNode(model, node.name);
      const st = this.nodeStates.get(node.name) ?? {};
      this.nodeStates.set(node.name, st);
      if (this.opts.backend === "nftables") {
        const update = st.slice ? renderNftablesSetUpdate(st.slice, slice) : undefined;
        if (update !== undefined) {
          const r = await applyNftSetUpdate(node.netns, update);
          if (r.ok) {
            this.applies.incremental++;
            st.slice = slice;
            return;
          }
          problems.push(`${node.name}: incremental update failed, replacing the table: ${r.error}`);
        }
        const r = await applyNftRuleset(node.netns, renderNftables(slice));
        if (!r.ok) {
          this.applies.failed++;
          problems.push(`${node.name}: nft transaction failed (previous rules stay in force): ${r.error}`);
          return;
        }
        this.applies.full++;
      } else {
        const r = await applyIptables(node.netns, renderIptables(slice));
        if (!r.ok) {
          this.applies.failed++;
          problems.push(`${node.name}: iptables apply failed at ${r.stage} (previous rules stay in force): ${r.error}`);
          return;
        }
        this.applies.full++;
      }
      st.slice = slice;
    });
    return problems;
  }

  async resetNodes(): Promise<void> {
    await mapBounded(this.lab.nodes, 4, async (node) => {
      await removeSwitchyardTable(node.netns);
      await removeIptables(node.netns);
      // New connections only: a case must not inherit a flow another case allowed.
      await runCommand("conntrack", ["-F"], { netns: node.netns, timeoutMs: 10_000 });
    });
    this.nodeStates.clear();
  }

  /** The expected matrix, cross-checked against the reference evaluator; returns [expected, notes]. */
  expected(state: CorpusState, probe: CorpusProbe): { rows: boolean[][]; notes: string[] } {
    const snapshot = buildCorpusSnapshot(this.corpus, state, (ref) => this.nodeOf(ref));
    const notes: string[] = [];
    const rows = probe.pods.map((from) =>
      probe.pods.map((to, j) => {
        const stored = probe.matrix[from]?.[j] === ".";
        const [tn, tname] = to.split("/") as [string, string];
        const [fn, fname] = from.split("/") as [string, string];
        const serves = corpusPodServes(state, to, probe.port, probe.protocol);
        const verdict = evaluateConnection(snapshot, { from: { namespace: fn, name: fname }, to: { namespace: tn, name: tname }, port: probe.port, protocol: probe.protocol });
        const computed = serves && verdict.allowed;
        if (computed !== stored && !(from === to && this.corpus.ignoreLoopback)) {
          notes.push(`stored expectation ${from}->${to} ${stored ? "." : "X"} disagrees with the reference evaluator (${computed ? "." : "X"}): ${verdict.explanation.split("\n")[0]}`);
        }
        return stored;
      }),
    );
    return { rows, notes };
  }

  async runCase(c: CorpusCase): Promise<CaseResult> {
    const started = Date.now();
    const failures: string[] = [];
    const notes: string[] = [];
    let matrices = 0;
    await this.resetNodes();
    let state = initialCorpusState(this.corpus, c);
    await this.syncPods(state);
    await this.applyPolicies(state);
    for (const step of c.steps) {
      for (const action of step.actions) state = applyCorpusAction(state, action, c);
      await this.syncPods(state);
      const problems = await this.applyPolicies(state);
      notes.push(...problems.map((p) => `step ${step.step}: ${p}`));
      for (const probe of step.probes) {
        matrices++;
        const { rows, notes: cross } = this.expected(state, probe);
        notes.push(...cross.map((n) => `step ${step.step} ${probe.protocol}/${probe.port}: ${n}`));
        const refs = probe.pods.map((r) => {
          const [namespace, name] = r.split("/") as [string, string];
          return { namespace, name, ip: state.pods.get(r)?.ip ?? "0.0.0.0" };
        });
        const result = await probeMatrix(this.lab, refs, refs, probe.port, probe.protocol, {
          timeoutMs: this.opts.timeoutMs ?? 800,
          expected: rows,
          retries: this.opts.retries ?? 2,
          retryIntervalMs: 200,
        });
        for (const m of result.mismatches) {
          const from = probe.pods[m.from]!;
          const to = probe.pods[m.to]!;
          if (from === to && this.corpus.ignoreLoopback) continue;
          const want = rows[m.from]![m.to]!;
          failures.push(`step ${step.step} ${probe.protocol}/${probe.port}: ${from} -> ${to} expected ${want ? "connected" : "denied"}, got ${want ? "denied" : "connected"} (${result.results[m.from]![m.to]!.error ?? "ok"})`);
        }
      }
    }
    return { id: c.id, passed: failures.length === 0, matrices, ms: Date.now() - started, failures, notes };
  }
}

/** Runs the corpus; prints one line per case and the final `N passed, M failed`. */
export async function runConformance(opts: ConformanceOptions): Promise<ConformanceReport> {
  const corpus = loadCorpus(opts.file);
  const wanted = new Set(opts.cases ?? []);
  const cases = corpus.cases.filter((c) => wanted.size === 0 || wanted.has(c.id));
  const unknown = [...wanted].filter((id) => !corpus.cases.some((c) => c.id === id));
  if (unknown.length > 0) throw new ConformanceInputError(`no such case in ${opts.file}: ${unknown.join(", ")}`);
  const prefix = opts.prefix ?? "sycf-";
  const nodes = Math.max(3, opts.nodes ?? 3);
  await destroyLab(prefix); // a previous run that crashed
  // Every node's CNI config names the whole lab pool as its block: the runner itself places each pod at its
  // address (static requests, some borrowed outside the pod's node block), and each node's plugin only has
  // to honour them; IPAM proper is the lab cluster's (blocks from the controller, through the agents).
  const lab = await createLab({ prefix, nodes, subnets: 1, podMtu: 1500, podBlocks: Array.from({ length: nodes }, () => LAB_POOL) });
  const results: CaseResult[] = [];
  let runner: Runner | undefined;
  try {
    runner = new Runner(lab, corpus, opts);
    opts.log(`# ${corpus.title || opts.file}: ${cases.length} case(s), backend ${opts.backend}, ${nodes} nodes`);
    for (const c of cases) {
      const r = await runner.runCase(c);
      results.push(r);
      opts.log(`${r.passed ? "PASS" : "FAIL"} ${r.id} (${r.matrices} matrix${r.matrices === 1 ? "" : "es"}, ${(r.ms / 1000).toFixed(1)} s)`);
      if (!r.passed) for (const f of r.failures.slice(0, opts.verbose ? undefined : 8)) opts.log(`     ${f}`);
      if (opts.verbose || !r.passed) for (const n of r.notes) opts.log(`     note: ${n}`);
    }
  } finally {
    await stopAllPodAgents(lab).catch(() => undefined);
    await destroyLab(prefix);
  }
  const passed = results.filter((r) => r.passed).length;
  const failed = results.length - passed;
  opts.log(`# applies: ${runner?.applies.full ?? 0} full, ${runner?.applies.incremental ?? 0} incremental, ${runner?.applies.failed ?? 0} failed`);
  opts.log(`${passed} passed, ${failed} failed`);
  return { passed, failed, results, applies: runner?.applies ?? { full: 0, incremental: 0, failed: 0 } };
}
