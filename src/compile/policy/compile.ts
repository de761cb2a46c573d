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
import { canonicalJson, compareIPv4, compareStrings, contentId, ipInBlock, sortedUniqueStrings, subtractCidrs } from "./canonical";
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

function compareNamedMembers(a: NamedPortMember, b: NamedPortMember): number {
  return compareIPv4(a[0], b[0]) || PROTOCOL_ORDER.get(a[1])! - PROTOCOL_ORDER.get(b[1])! || a[2] - b[2];
}

/** Compiles every NetworkPolicy of the snapshot into groups, rules, spans and per-pod policy lists. */
export function compilePolicies(snapshot: PolicySnapshot): PolicyModel {
  const { policies, diagnostics } = parsePolicySnapshot(snapshot);
  const pods = [...snapshot.pods].sort((a, b) => compareStrings(podKey(a), podKey(b)));
  const nsLabels = new Map(snapshot.namespaces.map((n) => [n.name, n.labels]));
  const podsByNamespace = new Map<string, PodInfo[]>();
  for (const p of pods) {
    const list = podsByNamespace.get(p.namespace) ?? [];
    list.push(p);
    podsByNamespace.set(p.namespace, list);
  }

  const podPeerMatches = (peer: PodPeerDefinition, pod: PodInfo): boolean => {
    if (pod.hostNetwork || pod.ip === undefined) return false;
    if ("name" in peer.namespaces) {
      if (pod.namespace !== peer.namespaces.name) return false;
    } else {
      const labels = nsLabels.get(pod.namespace);
      if (!labels || !matchesSelector(peer.namespaces.selector, labels)) return false;
    }
    return matchesSelector(peer.pods, pod.labels);
  };
  const peerMatchesPod = (peer: NormalizedPeer, pod: PodInfo): boolean =>
    peer.kind === "ipBlock" ? pod.ip !== undefined && ipInBlock(pod.ip, peer.cidr, peer.except) : podPeerMatches(peer, pod);

  const groups = new Map<string, { kind: PeerGroup["kind"]; definition: unknown; members: unknown[]; span: Set<string> }>();
  const ensureGroup = (kind: PeerGroup["kind"], definition: unknown, computeMembers: () => unknown[]): string => {
    const id = contentId({ kind, definition });
    if (!groups.has(id)) groups.set(id, { kind, definition, members: computeMembers(), span: new Set() });
    return id;
  };

  const peerGroupId = (peer: NormalizedPeer): string => {
    if (peer.kind === "ipBlock") return ensureGroup("cidr", peer, () => subtractCidrs(peer.cidr, peer.except));
    return ensureGroup("address", peer, () => {
      const candidates = "name" in peer.namespaces ? (podsByNamespace.get(peer.namespaces.name) ?? []) : pods;
      return sortedUniqueStrings(candidates.filter((p) => podPeerMatches(peer, p)).map((p) => p.ip!)).sort(compareIPv4);
    });
  };

  const namedPortGroupId = (definition: NamedPortDefinition): string =>
    ensureGroup("named-port", definition, () => {
      const seen = new Set<string>();
      const members: NamedPortMember[] = [];
      for (const pod of pods) {
        if (pod.ip === undefined) continue;
        if (definition.peers !== "any" && !definition.peers.some((peer) => peerMatchesPod(peer, pod))) continue;
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

  const appliedTo = new Map<string, { namespace: string; podSelector: NormalizedSelector; pods: PodInfo[] }>();
  const compiled: CompiledPolicy[] = [];
  const ingressOf = new Map<string, string[]>();
  const egressOf = new Map<string, string[]>();

  for (const policy of policies) {
    const key = networkPolicyKey(policy);
    const atId = contentId({ kind: "applied-to", namespace: policy.namespace, podSelector: policy.podSelector });
    if (!appliedTo.has(atId)) {
      const selected = (podsByNamespace.get(policy.namespace) ?? []).filter((p) => !p.hostNetwork && matchesSelector(policy.podSelector, p.labels));
      appliedTo.set(atId, { namespace: policy.namespace, podSelector: policy.podSelector, pods: selected });
    }
    const selected = appliedTo.get(atId)!.pods;
    const span = sortedUniqueStrings(selected.map((p) => p.node));
    for (const p of selected) {
      if (policy.policyTypes.ingress) pushTo(ingressOf, podKey(p), key);
      if (policy.policyTypes.egress) pushTo(egressOf, podKey(p), key);
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
      for (const id of refs) for (const node of span) groups.get(id)!.span.add(node);
    }
    compiled.push({ key, namespace: policy.namespace, name: policy.name, appliedTo: atId, policyTypes: policy.policyTypes, ingress, egress, span });
  }

  const appliedToGroups: AppliedToGroup[] = [...appliedTo.entries()]
    .map(([id, g]) => ({ id, namespace: g.namespace, podSelector: g.podSelector, pods: g.pods.map(podKey), span: sortedUniqueStrings(g.pods.map((p) => p.node)) }))
    .sort((a, b) => compareStrings(a.id, b.id));

  const peerGroups = [...groups.entries()]
    .map(([id, g]) => ({ id, kind: g.kind, definition: g.definition, members: g.members, span: sortedUniqueStrings(g.span) }) as PeerGroup)
    .sort((a, b) => compareStrings(a.id, b.id));

  const modelPods: ModelPod[] = pods.map((p) => ({
    key: podKey(p),
    namespace: p.namespace,
    name: p.name,
    node: p.node,
    ...(p.ip !== undefined ? { ip: p.ip } : {}),
    hostNetwork: p.hostNetwork,
    interface: podInterfaceName(p.namespace, p.name),
    ports: [...p.ports].sort(
      (a, b) => a.containerPort - b.containerPort || PROTOCOL_ORDER.get(a.protocol)! - PROTOCOL_ORDER.get(b.protocol)! || compareStrings(a.name ?? "", b.name ?? ""),
    ),
    ingressPolicies: ingressOf.get(podKey(p)) ?? [],
    egressPolicies: egressOf.get(podKey(p)) ?? [],
  }));

  return { policies: compiled, appliedToGroups, peerGroups, pods: modelPods, diagnostics };
}

function pushTo(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key) ?? [];
  list.push(value);
  map.set(key, list);
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
