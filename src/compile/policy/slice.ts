// slicePolicyForNode: the part of the PolicyModel one node needs, in the compact JSON form that goes into
// its NodeNetwork object (etcd's object limit is ~1.5 MiB, so groups are shipped once and referenced by id,
// never copied per rule). Pure and deterministic.
//
// Chains are per POLICY SET, not per pod: local pods selected (in a direction) by the same policies share
// one chain. For ingress the chain also depends on how the policies' named ports resolve on the pod
// itself, so pods whose named ports resolve differently get different chains; the chain id is the content
// hash of the resolved rules, so equal content always shares a chain.
import { type Protocol, PROTOCOLS, podKey } from "../../model/cluster";
import { canonicalJson, compareStrings, contentId, textId } from "./canonical";
import type { CompiledPolicy, CompiledPort, CompiledRule, Direction, ModelPod, NamedPortMember, PolicyModel } from "./compile";

/** Ports of one protocol; `ranges` absent = every port of the protocol. Ranges are sorted, merged, inclusive. */
export interface SlicePortMatch {
  readonly protocol: Protocol;
  readonly ranges?: readonly (readonly [number, number])[];
}

export interface SliceRule {
  /** The compiled rule's id. */
  readonly id: string;
  /** `ns/name ingress[0]`. */
  readonly source: string;
  /** "any", or peer group ids (address/cidr). The rule's peer-and-port part matches when the peer is in one of them. */
  readonly peers: "any" | readonly string[];
  /** "any" (every protocol and port) or the port matches; [] when only `namedPorts` can match. */
  readonly ports: "any" | readonly SlicePortMatch[];
  /** Egress only: a named-port group; the rule also matches when (daddr, protocol, dport) is a member. */
  readonly namedPorts?: string;
}

export interface SliceChain {
  readonly id: string;
  readonly direction: Direction;
  /** The policies (sorted `ns/name`) whose rules this chain holds. */
  readonly policies: readonly string[];
  /** In policy order, then rule index. Rules that can match nothing are left out. */
  readonly rules: readonly SliceRule[];
}

export interface SlicePod {
  readonly namespace: string;
  readonly name: string;
  readonly ip?: string;
  /** The pod's host-side veth (podInterfaceName). */
  readonly interface: string;
  /** Chain ids; absent when the pod is not isolated in that direction. */
  readonly ingress?: string;
  readonly egress?: string;
}

export type SliceGroup =
  | { readonly id: string; readonly kind: "address" | "cidr"; readonly members: readonly string[] }
  | { readonly id: string; readonly kind: "named-port"; readonly members: readonly NamedPortMember[] };

export interface NodePolicySlice {
  readonly version: 1;
  readonly node: string;
  /** Every pod-network pod on the node (sorted by namespace/name), isolated or not. */
  readonly pods: readonly SlicePod[];
  /** Sorted by id. */
  readonly chains: readonly SliceChain[];
  /** Every group a chain references, sorted by id. */
  readonly groups: readonly SliceGroup[];
}

const PROTOCOL_ORDER = new Map(PROTOCOLS.map((p, i) => [p, i]));

/** Numeric and protocol-wide port entries -> one match per protocol, with merged ranges. */
export function compilePortMatches(ports: readonly CompiledPort[]): SlicePortMatch[] {
  const byProtocol = new Map<Protocol, [number, number][] | "all">();
  for (const p of ports) {
    if (typeof p.port === "string") continue;
    const cur = byProtocol.get(p.protocol);
    if (p.port === undefined) {
      byProtocol.set(p.protocol, "all");
      continue;
    }
    if (cur === "all") continue;
    const list = cur ?? [];
    list.push([p.port, p.endPort ?? p.port]);
    byProtocol.set(p.protocol, list);
  }
  return [...byProtocol.entries()]
    .sort(([a], [b]) => PROTOCOL_ORDER.get(a)! - PROTOCOL_ORDER.get(b)!)
    .map(([protocol, ranges]) => (ranges === "all" ? { protocol } : { protocol, ranges: mergeRanges(ranges) }));
}

function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** Resolves ingress named ports against the selected pod's own container ports (same name and protocol). */
function resolveOnPod(ports: readonly CompiledPort[], pod: ModelPod): CompiledPort[] {
  return ports.flatMap((p) => {
    if (typeof p.port !== "string") return [p];
    const name = p.port;
    return pod.ports.filter((cp) => cp.name === name && cp.protocol === p.protocol).map((cp) => ({ protocol: p.protocol, port: cp.containerPort }));
  });
}

function sliceRule(rule: CompiledRule, pod: ModelPod): SliceRule | undefined {
  const ports: "any" | SlicePortMatch[] = rule.ports === "any" ? "any" : compilePortMatches(rule.direction === "ingress" ? resolveOnPod(rule.ports, pod) : rule.ports);
  const peerPartCanMatch = (rule.peers === "any" || rule.peers.length > 0) && (ports === "any" || ports.length > 0);
  if (!peerPartCanMatch && rule.namedPortGroup === undefined) return undefined;
  return {
    id: rule.id,
    source: rule.source,
    peers: peerPartCanMatch ? rule.peers : [],
    ports: peerPartCanMatch ? ports : [],
    ...(rule.namedPortGroup !== undefined ? { namedPorts: rule.namedPortGroup } : {}),
  };
}

/**
 * What every node's slice is assembled from, computed once per model (lazily, on the first slice) and
 * shared by all of them: the pods of each node, the policies by key, the slice form of every group, and
 * the chains already built. A chain's content depends only on its direction, its policy set and (ingress)
 * how the pod's named ports resolve, so it is built and hashed once for the whole cluster, not once per
 * node. Slices share these readonly objects; the output is the same as building everything per node.
 */
interface SliceIndex {
  readonly podsByNode: ReadonlyMap<string, readonly ModelPod[]>;
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  /** Slice-form groups by id (a list only so that a hand-built model with a duplicate id slices as before). */
  readonly groups: ReadonlyMap<string, readonly SliceGroup[]>;
  /** Built chains, found by walking direction -> policy keys -> (ingress with named ports) the pod's ports. */
  readonly chains: { readonly ingress: ChainNode; readonly egress: ChainNode };
}

/**
 * A trie node: `policies` continues the policy-set path, `ports` the pod's container ports (three levels
 * per port: name, protocol, number), so a lookup builds no key strings. At the end of a policy-set path,
 * `named` says whether the set's ingress rules name ports (then the chain depends on the pod's ports too).
 */
interface ChainNode {
  policies?: Map<string, ChainNode>;
  ports?: Map<string | number | undefined, ChainNode>;
  named?: boolean;
  built?: BuiltChain;
}

interface BuiltChain {
  readonly chain: SliceChain;
  /** Group ids the chain's rules reference, in first-reference order. */
  readonly refs: readonly string[];
}

function childOf<K>(map: Map<K, ChainNode>, key: K): ChainNode {
  let node = map.get(key);
  if (node === undefined) {
    node = {};
    map.set(key, node);
  }
  return node;
}

const sliceIndexes = new WeakMap<PolicyModel, SliceIndex>();

function sliceIndexOf(model: PolicyModel): SliceIndex {
  const cached = sliceIndexes.get(model);
  if (cached !== undefined) return cached;
  const podsByNode = new Map<string, ModelPod[]>();
  for (const p of model.pods) {
    if (p.hostNetwork) continue;
    const list = podsByNode.get(p.node);
    if (list === undefined) podsByNode.set(p.node, [p]);
    else list.push(p);
  }
  for (const list of podsByNode.values()) {
    const keyed = list.map((p) => ({ p, k: podKey(p) }));
    keyed.sort((a, b) => compareStrings(a.k, b.k));
    keyed.forEach(({ p }, i) => (list[i] = p));
  }
  const groups = new Map<string, SliceGroup[]>();
  for (const g of model.peerGroups) {
    const sg: SliceGroup = g.kind === "named-port" ? { id: g.id, kind: g.kind, members: g.members } : { id: g.id, kind: g.kind, members: g.members };
    const list = groups.get(g.id);
    if (list === undefined) groups.set(g.id, [sg]);
    else list.push(sg);
  }
  const index: SliceIndex = { podsByNode, policies: new Map(model.policies.map((p) => [p.key, p])), groups, chains: { ingress: {}, egress: {} } };
  sliceIndexes.set(model, index);
  return index;
}

function buildChain(index: SliceIndex, direction: Direction, policyKeys: readonly string[], pod: ModelPod): BuiltChain {
  const rules: SliceRule[] = [];
  for (const key of policyKeys) {
    const policy = index.policies.get(key);
    if (!policy) continue;
    for (const rule of direction === "ingress" ? policy.ingress : policy.egress) {
      const r = sliceRule(rule, pod);
      if (r) rules.push(r);
    }
  }
  const content = { direction, policies: [...policyKeys], rules };
  const refs = new Set<string>();
  for (const r of rules) {
    if (r.peers !== "any") r.peers.forEach((g) => refs.add(g));
    if (r.namedPorts !== undefined) refs.add(r.namedPorts);
  }
  return { chain: { id: contentId(content), ...content }, refs: [...refs] };
}

/** The node's policy slice: its pods, the policy-set chains they use, and the groups those reference. */
export function slicePolicyForNode(model: PolicyModel, nodeName: string): NodePolicySlice {
  const index = sliceIndexOf(model);
  const chains = new Map<string, SliceChain>();
  const referenced = new Set<string>();
  const chainFor = (direction: Direction, policyKeys: readonly string[], pod: ModelPod): string | undefined => {
    if (policyKeys.length === 0) return undefined;
    let node = index.chains[direction];
    for (const key of policyKeys) node = childOf((node.policies ??= new Map()), key);
    if (node.named === undefined) {
      node.named =
        direction === "ingress" &&
        policyKeys.some((k) => index.policies.get(k)?.ingress.some((r) => r.ports !== "any" && r.ports.some((p) => typeof p.port === "string")) ?? false);
    }
    // Ingress named ports resolve on the pod itself: pods with the same container ports resolve alike.
    if (node.named) {
      for (const cp of pod.ports) {
        node = childOf((node.ports ??= new Map()), cp.name);
        node = childOf((node.ports ??= new Map()), cp.protocol);
        node = childOf((node.ports ??= new Map()), cp.containerPort);
      }
    }
    const built = (node.built ??= buildChain(index, direction, policyKeys, pod));
    const { chain } = built;
    if (!chains.has(chain.id)) {
      chains.set(chain.id, chain);
      for (const g of built.refs) referenced.add(g);
    }
    return chain.id;
  };

  const pods: SlicePod[] = (index.podsByNode.get(nodeName) ?? []).map((p) => {
    const ingress = chainFor("ingress", p.ingressPolicies, p);
    const egress = chainFor("egress", p.egressPolicies, p);
    return {
      namespace: p.namespace,
      name: p.name,
      ...(p.ip !== undefined ? { ip: p.ip } : {}),
      interface: p.interface,
      ...(ingress !== undefined ? { ingress } : {}),
      ...(egress !== undefined ? { egress } : {}),
    };
  });

  const groups: SliceGroup[] = [];
  // The default sort orders by UTF-16 code units, as compareStrings does.
  for (const id of [...referenced].sort()) {
    const g = index.groups.get(id);
    if (g !== undefined) groups.push(...g);
  }

  return {
    version: 1,
    node: nodeName,
    pods,
    chains: [...chains.values()].sort((a, b) => compareStrings(a.id, b.id)),
    groups,
  };
}

/** Content hash of a slice (16 hex chars): equal slices, equal hash; the agent skips an unchanged one. */
export function sliceHash(slice: NodePolicySlice): string {
  return textId(canonicalJson(slice), 16);
}

/** Every node that has a pod in the model, sorted (the nodes a controller would slice for). */
export function listPolicyNodes(model: PolicyModel): string[] {
  return [...new Set(model.pods.map((p) => p.node))].sort(compareStrings);
}
