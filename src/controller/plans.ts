// Compile, the second stage of a pass: every node's plan for where the migration stands, through the pure
// compiler (src/compile). A full compile costs seconds at 1,000 nodes while most passes only count agents'
// reports, so the last result stands while its inputs are unchanged (see compilePlans), and the per-node
// parts of the last compile (PlanCache) let a migration step recompile only the nodes it moves.
import type { Mode } from "../api/cluster-network";
import type { NodeNetworkSpec } from "../api/node-network";
import { compileClusterPlans, type PlanCache, type PlanDiagnostic } from "../compile/cluster-plan";
import { namespaceFromObject, podFromObject } from "../kube/objects";
import { layoutOf } from "../migration/machine";
import type { MigrationState } from "../migration/types";
import type { ClusterObservation } from "./observe";

/** Where the cluster stands: the migration state (if any) and the mode nodes send with outside it. Together they fix every node's layout. */
export interface MigrationPosition {
  readonly state: MigrationState | undefined;
  readonly activeMode: Mode;
}

/** The result of one compile as the rest of a pass uses it. `specs` (the plan bodies) only right after a compile. */
export type CompiledPlans = {
  /** Every compile input except the recorded blocks: store input version, ClusterNetwork identity, layout. */
  readonly key: string;
  /** The blocks NodeNetworks carried when it was compiled (hints for nodes that hold none). */
  readonly previousBlocks: Readonly<Record<string, string>>;
  /** The blocks BlockAffinities held when it was compiled (the allocation's source of truth). */
  readonly heldBlocks: Readonly<Record<string, string>>;
  /** The blocks it allocated. */
  readonly blocks: Readonly<Record<string, string>>;
  readonly hashes: ReadonlyMap<string, string>;
  /** The pod MTU each node's plan sets. */
  readonly mtus: ReadonlyMap<string, number>;
  readonly diagnostics: readonly PlanDiagnostic[];
  readonly ipam: { readonly allocatedBlocks: number; readonly freeBlocks: number };
  readonly specs?: ReadonlyMap<string, NodeNetworkSpec>;
};

/** What the compile step remembers between passes (part of the controller's state). */
export interface CompileMemory {
  /** The last compile whose plans were all published, without the plan bodies. */
  readonly lastCompile: CompiledPlans | undefined;
  /** Per-node parts of the last compile; the compiler updates it. */
  readonly planCache: PlanCache;
  /** The plan hash published per node. */
  readonly published: ReadonlyMap<string, string>;
}

/** Every entry of `a` is in `b`. */
const within = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => Object.entries(a).every(([k, v]) => b[k] === v);

/** The blocks NodeNetworks carry: only a hint, for nodes that hold no block yet (a cluster from before BlockAffinities). */
function recordedBlocks(o: ClusterObservation): Record<string, string> {
  const blocks: Record<string, string> = {};
  for (const [name, nn] of o.nodeNetworks) if (nn.block && name) blocks[name] = nn.block;
  return blocks;
}

/** The blocks BlockAffinities hold, terminating ones included (they stay held until released). */
function heldBlocks(o: ClusterObservation): Record<string, string> {
  return Object.fromEntries([...o.affinities].map(([node, a]) => [node, a.cidr]));
}

/**
 * The plans for `at`. The compile is pure, so the last result stands while its inputs are unchanged: the
 * same store input version, ClusterNetwork and layout; recorded blocks (NodeNetworks, BlockAffinities)
 * that include the ones it was compiled with and agree with what it allocated (our own writes arriving:
 * allocateBlocks keeps recorded blocks and gives the others the lowest free block in name order, so the
 * allocation comes out the same); a released block (its BlockAffinity gone) compiles afresh;
 * and every plan already published, since plan bodies are not kept between passes (they are large).
 */
export function compilePlans(o: ClusterObservation, at: MigrationPosition, memory: CompileMemory): CompiledPlans {
  const layout = layoutOf(at.state, at.activeMode, o.nodeNames, o.settings);
  const previousBlocks = recordedBlocks(o);
  const held = heldBlocks(o);
  const options = {
    clusterNetwork: o.clusterNetwork.name,
    generation: o.generation,
    spec: o.spec,
    defaultMode: at.activeMode,
    nodeModes: layout.nodeModes,
    modesInUse: layout.modesInUse,
    sourceConfig: o.sourceConfig,
    ...(layout.probe ? { probe: layout.probe } : {}),
  };
  const key = JSON.stringify([o.inputVersion, o.clusterNetwork.uid, options]);
  const last = memory.lastCompile;
  if (
    last?.key === key &&
    within(last.previousBlocks, previousBlocks) &&
    within(previousBlocks, last.blocks) &&
    within(last.heldBlocks, held) &&
    // Held blocks since then are our own records of what it allocated.
    Object.entries(held).every(([node, cidr]) => last.heldBlocks[node] === cidr || last.blocks[node] === cidr) &&
    [...last.hashes].every(([node, hash]) => memory.published.get(node) === hash || o.nodeNetworks.get(node)?.planHash === hash)
  ) {
    return last;
  }
  const plans = compileClusterPlans({
    ...options,
    nodes: o.nodes,
    namespaces: o.namespaces.map(namespaceFromObject),
    pods: o.pods.map(podFromObject).filter((p): p is NonNullable<typeof p> => p !== undefined),
    policies: o.policies,
    previousBlocks,
    heldBlocks: held,
    cache: memory.planCache,
    policyInputKey: o.policyInputKey,
  });
  const blocks = Object.fromEntries([...plans.plans].flatMap(([n, p]) => (p.block ? [[n, p.block]] : []))) as Record<string, string>;
  return {
    key,
    previousBlocks: { ...previousBlocks },
    heldBlocks: held,
    blocks,
    hashes: new Map([...plans.plans].map(([n, p]) => [n, p.planHash])),
    mtus: new Map([...plans.plans].map(([n, p]) => [n, p.mtu])),
    diagnostics: plans.diagnostics,
    ipam: plans.ipam,
    specs: plans.plans,
  };
}
