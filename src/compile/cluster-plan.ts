// compileClusterPlans: the whole cluster's desired state in one pure step — node blocks (IPAM), each
// node's routing plan and NetworkPolicy slice, and the plan hash that decides whether anything is written.
// Level-triggered: the controller calls it with the full current snapshot every time; the same snapshot
// always yields byte-identical plans, so an unchanged cluster writes nothing.
import type { ClusterNetworkSpec, Mode } from "../api/cluster-network";
import type { NodeNetworkSpec } from "../api/node-network";
import { cidrContains, parseCidr, parseIPv4 } from "../api/ipv4";
import type { NamespaceInfo, PodInfo } from "../model/cluster";
import { shortHash } from "../model/names";
import { allocateBlocks } from "./ipam/ipam";
import { canonicalJson, compilePolicies, slicePolicyForNode, type NodePolicySlice } from "./policy";
import { compileRoutingPlan } from "./routing/compile-routing";
import type { RoutingNode, RoutingPlan } from "./routing/types";

export interface ClusterNode {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip: string;
  readonly underlayCIDR: string;
  readonly underlayMtu?: number;
}

export interface ClusterPlanInput {
  readonly clusterNetwork: string;
  readonly generation: number;
  readonly spec: ClusterNetworkSpec;
  readonly nodes: readonly ClusterNode[];
  readonly namespaces: readonly NamespaceInfo[];
  readonly pods: readonly PodInfo[];
  readonly policies: readonly unknown[];
  /** Blocks recorded before (from the published NodeNetworks): a node keeps its block. */
  readonly previousBlocks: Readonly<Record<string, string>>;
  /** The mode each node sends with now; nodes not listed send with `defaultMode`. */
  readonly nodeModes?: Readonly<Record<string, Mode>>;
  /** The mode nodes not in nodeModes send with (the active mode; spec.mode outside migrations). */
  readonly defaultMode?: Mode;
  /** Every mode in use (source and target during a migration); defaults to the modes nodes send with. */
  readonly modesInUse?: readonly Mode[];
  /** Settings of a migration's source mode once the spec no longer carries them. */
  readonly sourceConfig?: Parameters<typeof compileRoutingPlan>[2];
  /** During a migration gate: agents probe peers' health addresses for this epoch. */
  readonly probe?: { readonly epoch: number; readonly intervalMs: number; readonly maxTargets?: number };
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

/** The plan hash: content only (routing, policy, backend, health probing), never bookkeeping such as the generation. */
export function planHash(routing: RoutingPlan, policy: NodePolicySlice & { backend: string }, health?: NodeNetworkSpec["health"]): string {
  return shortHash(canonicalJson({ routing, policy, ...(health ? { health } : {}) }), 16);
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
  const alloc = allocateBlocks(input.spec.podCIDRs, input.spec.blockSize, nodeNames, input.previousBlocks);
  for (const d of alloc.diagnostics) diagnostics.push({ node: d.node, reason: "PoolExhausted", message: d.message });

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

  const model = compilePolicies({ namespaces: input.namespaces, pods: input.pods, policies: input.policies });
  for (const d of model.diagnostics) diagnostics.push({ reason: "PolicyNotHonoured", message: `${d.path}: ${d.message}` });

  const plans = new Map<string, NodeNetworkSpec>();
  for (const node of [...input.nodes].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const routing = compileRoutingPlan({ spec: input.spec, nodes: routingNodes, modesInUse, borrowed }, node.name, input.sourceConfig ?? {});
    for (const d of routing.diagnostics) diagnostics.push({ node: node.name, reason: d.reason, message: d.message });
    const policy = { ...slicePolicyForNode(model, node.name), backend: input.spec.policy.backend };
    const health: NodeNetworkSpec["health"] = input.probe
      ? {
          epoch: input.probe.epoch,
          intervalMs: input.probe.intervalMs,
          targets: healthTargets(
            node.name,
            routingNodes.map((n) => ({ name: n.name, ...(n.block ? { address: n.block.split("/")[0]! } : {}) })),
            input.probe.maxTargets ?? 8,
          ),
        }
      : undefined;
    const spec: NodeNetworkSpec = {
      nodeName: node.name,
      clusterNetwork: input.clusterNetwork,
      generation: input.generation,
      planHash: planHash(routing, policy, health),
      ...(health ? { health } : {}),
      nodeIP: node.ip,
      ...(routing.block ? { block: routing.block } : {}),
      mode: routing.mode,
      mtu: routing.podMtu,
      routing: routing as unknown as Record<string, unknown>,
      policy: policy as unknown as Record<string, unknown>,
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
