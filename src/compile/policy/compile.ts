// compilePolicies: PolicySnapshot -> PolicyModel, the cluster-wide compiled form of every NetworkPolicy.
// Pure and deterministic (everything sorted; identities are content hashes).
//
// Antrea's idea: selectors become GROUPS with content-hash identities, so identical selectors anywhere in
// the cluster share one group (one kernel set per node), and each group knows its SPAN, the nodes that
// need it (a node needs a group iff a policy applied to one of its pods references it). A node's slice
// (slice.ts) then holds only what its own pods need, and a pod change touches only the groups whose
// members changed.
//
// Groups:
// - applied-to groups: (namespace, podSelector) -> the pods a policy isolates (pod-network pods only;
//   pods without an address are isolated too: the kernel keys isolation on the pod's veth name).
// - address groups: one per pod-selector peer (namespace or namespaceSelector, podSelector) -> pod IPs.
// - cidr groups: one per ipBlock -> the cidr minus its excepts as disjoint prefixes (static members).
// - named-port groups: one per egress rule that names ports -> (ip, protocol, port) of every destination
//   pod that the rule's peers match and that resolves the name. Egress named ports resolve on the
//   destination, so they cannot be a static port list; ingress named ports resolve on the selected pod
//   itself and are resolved per chain in slice.ts instead.
import { type Diagnostic } from "../../api/diagnostics";
import { type NormalizedPeer, type NormalizedSelector, networkPolicyKey } from "../../api/network-policy";
import { type ContainerPort, type PodInfo, type PolicySnapshot, type Protocol, PROTOCOLS, podKey } from "../../model/cluster";
import { podInterfaceName } from "../../model/names";
import { parseIPv4 } from "../../api/ipv4";
import { canonicalJson, compareIPv4, compareNumbers, compareStrings, contentId, ipInBlock, sortedUniqueStrings, sortUniqueIPv4, subtractCidrs } from "./canonical";
import { matchesSelector } from "./selector";
import { parsePolicySnapshot } from "./snapshot";

export type Direction = "ingress" | "egress";

/** One (ip, protocol, port) element of a named-port group. */
export type NamedPortMember = readonly [ip: string, protocol: Protocol, port: number];

export type PodPeerDefinition = Extract<NormalizedPeer, { kind: "pods" }>;
export type IpBlockPeerDefinition = Extract<NormalizedPeer, { kind: "ipBlock" }>;

export interface NamedPortDefinition {
  /** The rule's peers ("any" = every destination, external addresses excepted). */
  readonly peers: "any" | readonly NormalizedPeer[];
  /** The names the rule lists, with their protocol, sorted. */
  readonly ports: readonly { readonly name: string; readonly protocol: Protocol }[];
}

export type PeerGroup =
  | { readonly id: string; readonly kind: "address"; readonly definition: PodPeerDefinition; readonly members: readonly string[]; readonly span: readonly string[] }
  | { readonly id: string; readonly kind: "cidr"; readonly definition: IpBlockPeerDefinition; readonly members: readonly string[]; readonly span: readonly string[] }
  | { readonly id: string; readonly kind: "named-port"; readonly definition: NamedPortDefinition; readonly members: readonly NamedPortMember[]; readonly span: readonly string[] };

export interface AppliedToGroup {
  readonly id: string;
  readonly namespace: string;
  readonly podSelector: NormalizedSelector;
  /** Pod keys (`ns/name`), sorted; host-network pods are never isolated and never listed. */
  readonly pods: readonly string[];
  readonly span: readonly string[];
}

/** A port entry of a compiled rule: numeric (port..endPort), protocol-wide (no port), or (ingress only) named. */
export interface CompiledPort {
  readonly protocol: Protocol;
  readonly port?: number | string;
  readonly endPort?: number;
}

export interface CompiledRule {
  /** Stable content identity of the rule (policy, direction, index and content). */
  readonly id: string;
  readonly policy: string;
  readonly direction: Direction;
  readonly index: number;
  /** `ns/name ingress[0]`: what kernel comments name. */
  readonly source: string;
  /** "any", or peer group ids (address and cidr groups), sorted. An empty list matches nothing. */
  readonly peers: "any" | readonly string[];
  /**
   * "any", or the port entries (an empty list matches nothing). Egress rules keep only numeric and
   * protocol-wide entries here: their named ports live in `namedPortGroup`.
   */
  readonly ports: "any" | readonly CompiledPort[];
  /** Egress only: the named-port group; the rule also matches when (daddr, proto, dport) is a member. */
  readonly namedPortGroup?: string;
}

export interface CompiledPolicy {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly appliedTo: string;
  readonly policyTypes: { readonly ingress: boolean; readonly egress: boolean };
  readonly ingress: readonly CompiledRule[];
  readonly egress: readonly CompiledRule[];
  /** Nodes running a pod this policy isolates, sorted. */
  readonly span: readonly string[];
}

export interface ModelPod {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip?: string;
  readonly hostNetwork: boolean;
  /** The pod's host-side veth (podInterfaceName). */
  readonly interface: string;
  readonly ports: readonly ContainerPort[];
  /** Policies (sorted keys) isolating the pod for ingress / egress. Always empty for host-network pods. */
  readonly ingressPolicies: readonly string[];
  readonly egressPolicies: readonly string[];
}

export interface PolicyModel {
  readonly policies: readonly CompiledPolicy[];
  readonly appliedToGroups: readonly AppliedToGroup[];
  readonly peerGroups: readonly PeerGroup[];
  readonly pods: readonly ModelPod[];
  readonly diagnostics: readonly Diagnostic[];
}

const PROTOCOL_ORDER = new Map(PROTOCOLS.map((p, i) => [p, i]));
const NO_POLICIES: readonly string[] = Object.freeze([]);

function compareNamedMembers(a: NamedPortMember, b: NamedPortMember): number {
  return compareIPv4(a[0], b[0]) || PROTOCOL_ORDER.get(a[1])! - PROTOCOL_ORDER.get(b[1])! || a[2] - b[2];
}

/**
 * Compiles every NetworkPolicy of the snapshot into groups, rules, spans and per-pod policy lists.
 *
 * Cost: selectors are answered from indexes, never by scanning every pod for every policy: pods by
 * namespace, and per namespace by label key and value (built on first use), so `app=web` in one namespace
 * looks at the pods labelled app=web there only. Each distinct (namespace, selector) and namespace
 * selector is evaluated once (cached by its normalized form), and a peer that recurs across policies is
 * resolved to its group once. Group members are sorted by parsed address (each pod's parsed once).
 */
export function compilePolicies(snapshot: PolicySnapshot): PolicyModel {
  const { policies, diagnostics } = parsePolicySnapshot(snapshot);
  // Pods in podKey order; everything below refers to a pod by its index in this order.
  const order = snapshot.pods.map((p) => ({ p, key: podKey(p) }));
  order.sort((a, b) => compareStrings(a.key, b.key));
  const pods = order.map((o) => o.p);
  const keys = order.map((o) => o.key);
  const index = new PodIndex(pods);
  const nsLabels = new Map(snapshot.namespaces.map((n) => [n.name, n.labels]));
  const namespaceNames = [...nsLabels.keys()];

  // parseIPv4 of each pod's address, on first use (NaN: not parsed yet).
  const addresses = new Float64Array(pods.length).fill(NaN);
  const addressOf = (i: number): number | undefined => {
    let a = addresses[i]!;
    if (Number.isNaN(a)) {
      a = parseIPv4(pods[i]!.ip ?? "") ?? -1;
      addresses[i] = a;
    }
    return a < 0 ? undefined : a;
  };

  /** Namespaces (names, in snapshot order) a namespace selector matches, cached by selector. */
  const nsMatches = new Map<string, string[]>();
  const namespacesMatching = (sel: NormalizedSelector): string[] => {
    const k = selectorKey(sel);
    let out = nsMatches.get(k);
    if (out === undefined) {
      out = namespaceNames.filter((n) => matchesSelector(sel, nsLabels.get(n)!));
      nsMatches.set(k, out);
    }
    return out;
  };

  /** Indices of the pod-network pods with an address that a pod peer matches (ascending per namespace). */
  const podPeerIndices = (peer: PodPeerDefinition): number[] => {
    const namespaces = "name" in peer.namespaces ? [peer.namespaces.name] : namespacesMatching(peer.namespaces.selector);
    const out: number[] = [];
    for (const ns of namespaces) for (const i of index.select(ns, peer.pods)) if (!pods[i]!.hostNetwork && pods[i]!.ip !== undefined) out.push(i);
    return out;
  };
  /** Indices (ascending) of the pods with an address that any of `peers` matches. */
  const peersIndices = (peers: readonly NormalizedPeer[]): number[] => {
    const hit = new Uint8Array(pods.length);
    for (const peer of peers) {
      if (peer.kind === "pods") {
        for (const i of podPeerIndices(peer)) hit[i] = 1;
      } else {
        pods.forEach((p, i) => {
          if (p.ip !== undefined && ipInBlock(p.ip, peer.cidr, peer.except)) hit[i] = 1;
        });
      }
    }
    const out: number[] = [];
    hit.forEach((h, i) => h && out.push(i));
    return out;
  };

  const groups = new Map<string, { kind: PeerGroup["kind"]; definition: unknown; members: unknown[]; span: Set<string> }>();
  const ensureGroup = (kind: PeerGroup["kind"], definition: unknown, computeMembers: () => unknown[]): string => {
    const id = contentId({ kind, definition });
    if (!groups.has(id)) groups.set(id, { kind, definition, members: computeMembers(), span: new Set() });
    return id;
  };

  // The same peer recurs in many policies. Its plain JSON text is a cheaper memo key than its canonical
  // form: equal plain text means equal content (same keys in the same order), so the same group id.
  const peerIds = new Map<string, string>();
  const peerGroupId = (peer: NormalizedPeer): string => {
    const text = JSON.stringify(peer);
    let id = peerIds.get(text);
    if (id === undefined) {
      id = computePeerGroupId(peer);
      peerIds.set(text, id);
    }
    return id;
  };
  const computePeerGroupId = (peer: NormalizedPeer): string => {
    if (peer.kind === "ipBlock") return ensureGroup("cidr", peer, () => subtractCidrs(peer.cidr, peer.except));
    return ensureGroup("address", peer, () => {
      const members = podPeerIndices(peer);
      return sortUniqueIPv4(
        members.map((i) => pods[i]!.ip!),
        members.map((i) => addressOf(i)),
      );
    });
  };

  const namedPortGroupId = (definition: NamedPortDefinition): string =>
    ensureGroup("named-port", definition, () => {
      const seen = new Set<string>();
      const members: NamedPortMember[] = [];
      const candidates = definition.peers === "any" ? pods.map((_, i) => i) : peersIndices(definition.peers);
      for (const i of candidates) {
        const pod = pods[i]!;
        if (pod.ip === undefined) continue;
        for (const want of definition.ports) {
          for (const cp of pod.ports) {
            if (cp.name !== want.name || cp.protocol !== want.protocol) continue;
            const m: NamedPortMember = [pod.ip, cp.protocol, cp.containerPort];
            const k = m.join(" ");
            if (!seen.has(k)) {
              seen.add(k);
              members.push(m);
            }
          }
        }
      }
      return members.sort(compareNamedMembers);
    });

  const appliedTo = new Map<string, { namespace: string; podSelector: NormalizedSelector; pods: number[] }>();
  const compiled: CompiledPolicy[] = [];
  // Per pod (by the index of the first pod with its key: duplicate keys share, as a map by key would).
  const ingressOf: (string[] | undefined)[] = [];
  const egressOf: (string[] | undefined)[] = [];
  const slot = keys.map((_, i) => i);
  for (let i = 1; i < keys.length; i++) if (keys[i] === keys[i - 1]) slot[i] = slot[i - 1]!;

  for (const policy of policies) {
    const key = networkPolicyKey(policy);
    const atId = contentId({ kind: "applied-to", namespace: policy.namespace, podSelector: policy.podSelector });
    if (!appliedTo.has(atId)) {
      const selected = index.select(policy.namespace, policy.podSelector).filter((i) => !pods[i]!.hostNetwork);
      appliedTo.set(atId, { namespace: policy.namespace, podSelector: policy.podSelector, pods: selected });
    }
    const selected = appliedTo.get(atId)!.pods;
    const span = sortedUniqueStrings(selected.map((i) => pods[i]!.node));
    for (const i of selected) {
      if (policy.policyTypes.ingress) (ingressOf[slot[i]!] ??= []).push(key);
      if (policy.policyTypes.egress) (egressOf[slot[i]!] ??= []).push(key);
    }
    const compileRules = (direction: Direction): CompiledRule[] =>
      (direction === "ingress" ? policy.ingress : policy.egress).map((rule, index) => {
        const peers = rule.peers === "any" ? "any" : sortedUniqueStrings(rule.peers.map(peerGroupId));
        let ports: "any" | CompiledPort[];
        let namedPortGroup: string | undefined;
        if (rule.ports === "any") {
          ports = "any";
        } else if (direction === "ingress") {
          ports = sortPorts(rule.ports);
        } else {
          ports = sortPorts(rule.ports.filter((p) => typeof p.port !== "string"));
          const named = rule.ports.flatMap((p) => (typeof p.port === "string" ? [{ name: p.port, protocol: p.protocol }] : []));
          if (named.length > 0) {
            const unique = [...new Map(named.map((n) => [`${n.protocol}/${n.name}`, n])).values()].sort(
              (a, b) => compareStrings(a.name, b.name) || PROTOCOL_ORDER.get(a.protocol)! - PROTOCOL_ORDER.get(b.protocol)!,
            );
            const peersDef = rule.peers === "any" ? "any" : [...new Map(rule.peers.map((p) => [canonicalJson(p), p])).entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, p]) => p);
            namedPortGroup = namedPortGroupId({ peers: peersDef, ports: unique });
          }
        }
        const source = `${key} ${direction}[${index}]`;
        const id = contentId({ policy: key, direction, index, peers, ports, namedPortGroup });
        return { id, policy: key, direction, index, source, peers, ports, ...(namedPortGroup ? { namedPortGroup } : {}) };
      });
    const ingress = policy.policyTypes.ingress ? compileRules("ingress") : [];
    const egress = policy.policyTypes.egress ? compileRules("egress") : [];
    for (const rule of [...ingress, ...egress]) {
      // An egress rule whose ports are all named matches through its named-port group only; its peer
      // groups are then not needed on any node (slice.ts leaves them out too).
      const peersNeeded = rule.peers !== "any" && (rule.ports === "any" || rule.ports.length > 0 || rule.direction === "ingress");
      const refs = [...(peersNeeded ? (rule.peers as readonly string[]) : []), ...(rule.namedPortGroup ? [rule.namedPortGroup] : [])];
      for (const id of refs) {
        const groupSpan = groups.get(id)!.span;
        for (const node of span) groupSpan.add(node);
      }
    }
    compiled.push({ key, namespace: policy.namespace, name: policy.name, appliedTo: atId, policyTypes: policy.policyTypes, ingress, egress, span });
  }

  const appliedToGroups: AppliedToGroup[] = [...appliedTo.entries()]
    .map(([id, g]) => ({ id, namespace: g.namespace, podSelector: g.podSelector, pods: g.pods.map((i) => keys[i]!), span: sortedUniqueStrings(g.pods.map((i) => pods[i]!.node)) }))
    .sort((a, b) => compareStrings(a.id, b.id));

  const peerGroups = [...groups.entries()]
    .map(([id, g]) => ({ id, kind: g.kind, definition: g.definition, members: g.members, span: sortedUniqueStrings(g.span) }) as PeerGroup)
    .sort((a, b) => compareStrings(a.id, b.id));

  // Pods selected by the same policies share one list: 50,000 pods, a few thousand distinct lists (a list
  // grown by push also carries spare capacity, which would otherwise stay allocated in the model).
  const interned = new Map<string, string[]>();
  for (const lists of [ingressOf, egressOf]) {
    lists.forEach((list, i) => {
      if (list === undefined) return;
      const k = list.join("\u0000");
      const shared = interned.get(k);
      if (shared !== undefined) lists[i] = shared;
      else interned.set(k, (lists[i] = list.slice()));
    });
  }
  const modelPods: ModelPod[] = pods.map((p, i) => ({
    key: keys[i]!,
    namespace: p.namespace,
    name: p.name,
    node: p.node,
    ...(p.ip !== undefined ? { ip: p.ip } : {}),
    hostNetwork: p.hostNetwork,
    interface: podInterfaceName(p.namespace, p.name),
    ports: p.ports.length <= 1 ? [...p.ports] : [...p.ports].sort(
      (a, b) => a.containerPort - b.containerPort || PROTOCOL_ORDER.get(a.protocol)! - PROTOCOL_ORDER.get(b.protocol)! || compareStrings(a.name ?? "", b.name ?? ""),
    ),
    ingressPolicies: ingressOf[slot[i]!] ?? NO_POLICIES,
    egressPolicies: egressOf[slot[i]!] ?? NO_POLICIES,
  }));

  return { policies: compiled, appliedToGroups, peerGroups, pods: modelPods, diagnostics };
}

/** A cache key for a normalized selector: equal keys, equal selectors. */
function selectorKey(sel: NormalizedSelector): string {
  return JSON.stringify(sel.requirements.map((r) => [r.key, r.operator, r.values]));
}

/**
 * Pods (by index in podKey order) per namespace, and per namespace and label key the pods by label value
 * (built on first use). `select` answers a pod selector within one namespace from the most selective
 * `In` requirement's index entries, checks the remaining requirements on those candidates only, and
 * caches the answer by (namespace, selector).
 */
class PodIndex {
  private readonly byNamespace = new Map<string, number[]>();
  private readonly byLabel = new Map<string, Map<string, number[]>>();
  private readonly selected = new Map<string, readonly number[]>();

  constructor(private readonly pods: readonly PodInfo[]) {
    pods.forEach((p, i) => {
      const list = this.byNamespace.get(p.namespace);
      if (list === undefined) this.byNamespace.set(p.namespace, [i]);
      else list.push(i);
    });
  }

  /** Pods of `namespace` carrying label `key`, by value; indices ascending. */
  private labelValues(namespace: string, key: string): Map<string, number[]> {
    const k = `${namespace}\u0000${key}`;
    let byValue = this.byLabel.get(k);
    if (byValue === undefined) {
      byValue = new Map();
      for (const i of this.byNamespace.get(namespace) ?? []) {
        const labels = this.pods[i]!.labels;
        if (!Object.prototype.hasOwnProperty.call(labels, key)) continue;
        const v = labels[key]!;
        const list = byValue.get(v);
        if (list === undefined) byValue.set(v, [i]);
        else list.push(i);
      }
      this.byLabel.set(k, byValue);
    }
    return byValue;
  }

  /** Indices (ascending) of the pods of `namespace` that `sel` matches (host-network pods included). */
  select(namespace: string, sel: NormalizedSelector): readonly number[] {
    const cacheKey = `${namespace}\u0000${selectorKey(sel)}`;
    const cached = this.selected.get(cacheKey);
    if (cached !== undefined) return cached;
    let candidates: readonly number[] = this.byNamespace.get(namespace) ?? [];
    for (const r of sel.requirements) {
      if (r.operator !== "In") continue;
      const byValue = this.labelValues(namespace, r.key);
      const lists = [...new Set(r.values)].map((v) => byValue.get(v) ?? []);
      const size = lists.reduce((n, l) => n + l.length, 0);
      if (size < candidates.length) candidates = lists.length === 1 ? lists[0]! : lists.flat().sort(compareNumbers);
    }
    const out = candidates.filter((i) => matchesSelector(sel, this.pods[i]!.labels));
    this.selected.set(cacheKey, out);
    return out;
  }
}

function sortPorts(ports: readonly CompiledPort[]): CompiledPort[] {
  const unique = new Map(ports.map((p) => [JSON.stringify([p.protocol, p.port ?? null, p.endPort ?? null]), p]));
  return [...unique.values()].sort(
    (a, b) =>
      PROTOCOL_ORDER.get(a.protocol)! - PROTOCOL_ORDER.get(b.protocol)! ||
      portSortKey(a.port) - portSortKey(b.port) ||
      compareStrings(String(a.port ?? ""), String(b.port ?? "")) ||
      (a.endPort ?? 0) - (b.endPort ?? 0),
  );
}

function portSortKey(port: number | string | undefined): number {
  return port === undefined ? -1 : typeof port === "number" ? port : 70000;
}
