// compileClusterPlans: the whole cluster's desired state in one pure step — node blocks (IPAM), each
// node's routing plan and NetworkPolicy slice, and the plan hash that decides whether anything is written.
// Level-triggered: the controller calls it with the full current snapshot every time; the same snapshot
// always yields byte-identical plans, so an unchanged cluster writes nothing.
import type { ClusterNetworkSpec, Mode } from "../api/cluster-network";
import type { NodeNetworkSpec } from "../api/node-network";
import { cidrContains, parseCidr, parseIPv4 } from "../api/ipv4";
import type { ClusterNode, NamespaceInfo, PodInfo } from "../model/cluster";
import { shortHash } from "../model/names";
import { allocateBlocks } from "./ipam/ipam";
import { canonicalJson, compilePolicies, slicePolicyForNode, type NodePolicySlice } from "./policy";
import { compileRoutingPlan } from "./routing/compile-routing";
import type { RoutingNode, RoutingPlan } from "../model/routing-plan";

export interface ClusterPlanInput {
  readonly clusterNetwork: string;
  readonly generation: number;
  readonly spec: ClusterNetworkSpec;
  readonly nodes: readonly ClusterNode[];
  readonly namespaces: readonly NamespaceInfo[];
  readonly pods: readonly PodInfo[];
  readonly policies: readonly unknown[];
  /** Blocks the published NodeNetworks carry: a hint for nodes that hold no block yet (see allocateBlocks). */
  readonly previousBlocks: Readonly<Record<string, string>>;
  /** The allocation as recorded in BlockAffinity objects (node -> block), the source of truth: a node keeps its block. */
  readonly heldBlocks?: Readonly<Record<string, string>>;
  /** The mode each node sends with now; nodes not listed send with `defaultMode`. */
  readonly nodeModes?: Readonly<Record<string, Mode>>;
  /** The mode nodes not in nodeModes send with (the active mode; spec.mode outside migrations). */
  readonly defaultMode?: Mode;
  /** Every mode in use (source and target during a migration); defaults to the modes nodes send with. */
  readonly modesInUse?: readonly Mode[];
  /** Settings of a migration's source mode once the spec no longer carries them. */
  readonly sourceConfig?: Parameters<typeof compileRoutingPlan>[2];
  /** During a migration: agents probe peers' health addresses and report rounds for this epoch. */
  readonly probe?: { readonly epoch: number; readonly intervalMs: number; readonly rounds?: number; readonly maxTargets?: number };
  /** Keeps per-node results between compiles (see PlanCache); the result is the same with or without it. */
  readonly cache?: PlanCache;
  /**
   * A version of the policy inputs (pods, namespaces, policies): while it is unchanged a cache reuses the
   * policy model and slices. Without it the policy part is compiled afresh every time.
   */
  readonly policyInputKey?: string;
}

export interface PlanDiagnostic {
  readonly node?: string;
  readonly reason: string;
  readonly message: string;
}

export interface ClusterPlans {
  /** node name -> the NodeNetwork spec to publish. */
  readonly plans: ReadonlyMap<string, NodeNetworkSpec>;
  readonly ipam: { readonly allocatedBlocks: number; readonly freeBlocks: number };
  readonly diagnostics: readonly PlanDiagnostic[];
}

const partHash = (value: unknown): string => shortHash(canonicalJson(value), 16);

/** The plan hash from its parts' hashes: content only (routing, policy, backend, health probing), never bookkeeping such as the generation. */
function combineHashes(routing: string, policy: string, health: string | undefined): string {
  return shortHash(`${routing}/${policy}/${health ?? "-"}`, 16);
}

/** The plan hash: content only (routing, policy, backend, health probing), never bookkeeping such as the generation. */
export function planHash(routing: RoutingPlan, policy: NodePolicySlice & { backend: string }, health?: NodeNetworkSpec["health"]): string {
  return combineHashes(partHash(routing), partHash(policy), health ? partHash(health) : undefined);
}

type PolicyPart = NodePolicySlice & { backend: string };

/**
 * Per-node results of the last compile, so that a compile which differs in a few nodes recomputes only
 * those: a migration step changes the sending mode of one batch, a gate only the probe epoch. Routing
 * plans are kept by (routing inputs, node, mode), policy slices while the policy input key and backend
 * are unchanged, probe targets while the node set and blocks are; each with its hash. Only what the last
 * compile used is kept. The compile's output is byte-identical with or without a cache.
 */
export class PlanCache {
  private routingKey = "";
  private routing = new Map<string, { plan: RoutingPlan; hash: string }>();
  private policyKey: string | undefined;
  private policyModel: ReturnType<typeof compilePolicies> | undefined;
  private slices = new Map<string, { slice: PolicyPart; hash: string }>();
  private targetsKey = "";
  private targets = new Map<string, { node: string; address: string }[]>();
  /** Counters for tests and benchmarks: parts computed vs reused in the last compile. */
  readonly last = { routingComputed: 0, routingReused: 0, policyComputed: 0, policyReused: 0 };

  /** @internal */ beginRouting(key: string): Map<string, { plan: RoutingPlan; hash: string }> {
    const previous = key === this.routingKey ? this.routing : new Map<string, { plan: RoutingPlan; hash: string }>();
    this.routingKey = key;
    this.routing = new Map();
    this.last.routingComputed = this.last.routingReused = 0;
    return previous;
  }
  /** @internal */ keepRouting(key: string, part: { plan: RoutingPlan; hash: string }, reused: boolean): void {
    this.routing.set(key, part);
    if (reused) this.last.routingReused++;
    else this.last.routingComputed++;
  }
  /** @internal */ beginPolicy(key: string | undefined, make: () => ReturnType<typeof compilePolicies>): { model: ReturnType<typeof compilePolicies>; previous: Map<string, { slice: PolicyPart; hash: string }> } {
    const same = key !== undefined && key === this.policyKey && this.policyModel !== undefined;
    const model = same ? this.policyModel! : make();
    const previous = same ? this.slices : new Map<string, { slice: PolicyPart; hash: string }>();
    this.policyKey = key;
    this.policyModel = key === undefined ? undefined : model;
    this.slices = new Map();
    this.last.policyComputed = this.last.policyReused = 0;
    return { model, previous };
  }
  /** @internal */ keepSlice(node: string, part: { slice: PolicyPart; hash: string }, reused: boolean): void {
    this.slices.set(node, part);
    if (reused) this.last.policyReused++;
    else this.last.policyComputed++;
  }
  /** @internal */ targetsFor(key: string): Map<string, { node: string; address: string }[]> {
    if (key !== this.targetsKey) {
      this.targetsKey = key;
      this.targets = new Map();
    }
    return this.targets;
  }
}

/** Up to `max` peers to probe, a deterministic spread over the cluster (so migrated and unmigrated nodes both appear). */
export function healthTargets(self: string, peers: readonly { name: string; address?: string }[], max: number): { node: string; address: string }[] {
  return peers
    .filter((p) => p.name !== self && p.address !== undefined)
    .map((p) => ({ node: p.name, address: p.address!, key: shortHash(`${self}/${p.name}`, 8) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, max)
    .map(({ node, address }) => ({ node, address }))
    .sort((a, b) => (a.node < b.node ? -1 : 1));
}

export function compileClusterPlans(input: ClusterPlanInput): ClusterPlans {
  const diagnostics: PlanDiagnostic[] = [];
  const nodeNames = input.nodes.map((n) => n.name).sort();
  const alloc = allocateBlocks(input.spec.podCIDRs, input.spec.blockSize, nodeNames, input.previousBlocks, input.heldBlocks);
  for (const d of alloc.diagnostics) diagnostics.push({ node: d.node, reason: d.reason, message: d.message });

  const defaultMode = input.defaultMode ?? input.spec.mode;
  const modeOf = (n: string): Mode => input.nodeModes?.[n] ?? defaultMode;
  const modesInUse = [...new Set(input.modesInUse ?? nodeNames.map(modeOf))].sort();
  const routingNodes: RoutingNode[] = input.nodes.map((n) => ({
    name: n.name,
    labels: n.labels,
    ip: n.ip,
    underlayCIDR: n.underlayCIDR,
    ...(n.underlayMtu !== undefined ? { underlayMtu: n.underlayMtu } : {}),
    ...(alloc.blocks[n.name] ? { block: alloc.blocks[n.name] } : {}),
    mode: modeOf(n.name),
  }));

  // Pods whose address lies outside their node's block (static requests) are routed as /32s.
  const borrowed = input.pods
    .filter((p) => p.ip && !p.hostNetwork && alloc.blocks[p.node] && !ipInCidr(p.ip, alloc.blocks[p.node]!))
    .map((p) => ({ ip: p.ip!, node: p.node }))
    .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));

  const cache = input.cache ?? new PlanCache();
  const { model, previous: previousSlices } = cache.beginPolicy(input.policyInputKey === undefined ? undefined : `${input.policyInputKey}/${input.spec.policy.backend}`, () =>
    compilePolicies({ namespaces: input.namespaces, pods: input.pods, policies: input.policies }),
  );
  for (const d of model.diagnostics) diagnostics.push({ reason: "PolicyNotHonoured", message: `${d.path}: ${d.message}` });

  // Everything a node's routing plan depends on besides its own name and mode.
  const sourceConfig = input.sourceConfig ?? {};
  const routingKey = shortHash(
    canonicalJson({ spec: input.spec, nodes: routingNodes.map(({ mode: _m, ...n }) => n), modesInUse, borrowed, sourceConfig }),
    16,
  );
  const previousRouting = cache.beginRouting(routingKey);
  const probeNodes = routingNodes.map((n) => ({ name: n.name, ...(n.block ? { address: n.block.split("/")[0]! } : {}) }));
  const targetsCache = input.probe ? cache.targetsFor(canonicalJson([probeNodes, input.probe.maxTargets ?? 8])) : undefined;

  const plans = new Map<string, NodeNetworkSpec>();
  for (const node of [...input.nodes].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const routingCacheKey = `${node.name}\u0000${modeOf(node.name)}`;
    const keptRouting = previousRouting.get(routingCacheKey);
    const routingPart = keptRouting ?? (() => {
      const plan = compileRoutingPlan({ spec: input.spec, nodes: routingNodes, modesInUse, borrowed }, node.name, sourceConfig);
      return { plan, hash: partHash(plan) };
    })();
    cache.keepRouting(routingCacheKey, routingPart, keptRouting !== undefined);
    const routing = routingPart.plan;
    for (const d of routing.diagnostics) diagnostics.push({ node: node.name, reason: d.reason, message: d.message });
    const keptSlice = previousSlices.get(node.name);
    const policyPart = keptSlice ?? (() => {
      const slice: PolicyPart = { ...slicePolicyForNode(model, node.name), backend: input.spec.policy.backend };
      return { slice, hash: partHash(slice) };
    })();
    cache.keepSlice(node.name, policyPart, keptSlice !== undefined);
    const policy = policyPart.slice;
    let health: NodeNetworkSpec["health"];
    if (input.probe && targetsCache) {
      let targets = targetsCache.get(node.name);
      if (!targets) {
        targets = healthTargets(node.name, probeNodes, input.probe.maxTargets ?? 8);
        targetsCache.set(node.name, targets);
      }
      health = { epoch: input.probe.epoch, intervalMs: input.probe.intervalMs, ...(input.probe.rounds !== undefined ? { rounds: input.probe.rounds } : {}), targets };
    }
    const spec: NodeNetworkSpec = {
      nodeName: node.name,
      clusterNetwork: input.clusterNetwork,
      generation: input.generation,
      planHash: combineHashes(routingPart.hash, policyPart.hash, health ? partHash(health) : undefined),
      ...(health ? { health } : {}),
      nodeIP: node.ip,
      ...(routing.block ? { block: routing.block } : {}),
      mode: routing.mode,
      mtu: routing.podMtu,
      routing: routing as NodeNetworkSpec["routing"],
      policy: policy as NodeNetworkSpec["policy"],
    };
    plans.set(node.name, spec);
  }
  return { plans, ipam: { allocatedBlocks: Object.keys(alloc.blocks).length, freeBlocks: alloc.freeBlocks }, diagnostics };
}

function ipInCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  const a = parseIPv4(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
}
