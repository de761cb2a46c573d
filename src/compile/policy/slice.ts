// slicePolicyForNode: the part of the PolicyModel one node needs, in the compact JSON form that goes into
// its NodeNetwork object (etcd's object limit is ~1.5 MiB, so groups are shipped once and referenced by id,
// never copied per rule). Pure and deterministic.
//
// Chains are per POLICY SET, not per pod: local pods selected (in a direction) by the same policies share
// one chain. For ingress the chain also depends on how the policies' named ports resolve on the pod
// itself, so pods whose named ports resolve differently get different chains; the chain id is the content
// hash of the resolved rules, so equal content always shares a chain.
import { type Protocol, PROTOCOLS, podKey } from "../../model/cluster";
import { shortHash } from "../../model/names";
import { canonicalJson, compareStrings, contentId } from "./canonical";
import type { CompiledPort, CompiledRule, Direction, ModelPod, NamedPortMember, PolicyModel } from "./compile";

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

/** The node's policy slice: its pods, the policy-set chains they use, and the groups those reference. */
export function slicePolicyForNode(model: PolicyModel, nodeName: string): NodePolicySlice {
  const policies = new Map(model.policies.map((p) => [p.key, p]));
  const chains = new Map<string, SliceChain>();
  const chainFor = (direction: Direction, policyKeys: readonly string[], pod: ModelPod): string | undefined => {
    if (policyKeys.length === 0) return undefined;
    const rules: SliceRule[] = [];
    for (const key of policyKeys) {
      const policy = policies.get(key);
      if (!policy) continue;
      for (const rule of direction === "ingress" ? policy.ingress : policy.egress) {
        const r = sliceRule(rule, pod);
        if (r) rules.push(r);
      }
    }
    const content = { direction, policies: [...policyKeys], rules };
    const id = contentId(content);
    if (!chains.has(id)) chains.set(id, { id, ...content });
    return id;
  };

  const pods: SlicePod[] = model.pods
    .filter((p) => p.node === nodeName && !p.hostNetwork)
    .sort((a, b) => compareStrings(podKey(a), podKey(b)))
    .map((p) => {
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

  const referenced = new Set<string>();
  for (const c of chains.values()) {
    for (const r of c.rules) {
      if (r.peers !== "any") r.peers.forEach((g) => referenced.add(g));
      if (r.namedPorts !== undefined) referenced.add(r.namedPorts);
    }
  }
  const groups: SliceGroup[] = model.peerGroups
    .filter((g) => referenced.has(g.id))
    .map((g) => (g.kind === "named-port" ? { id: g.id, kind: g.kind, members: g.members } : { id: g.id, kind: g.kind, members: g.members }))
    .sort((a, b) => compareStrings(a.id, b.id));

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
  return shortHash(canonicalJson(slice), 16);
}

/** Every node that has a pod in the model, sorted (the nodes a controller would slice for). */
export function listPolicyNodes(model: PolicyModel): string[] {
  return [...new Set(model.pods.map((p) => p.node))].sort(compareStrings);
}
