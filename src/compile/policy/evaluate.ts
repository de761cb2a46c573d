// The REFERENCE EVALUATOR: answers "does NetworkPolicy allow this connection?" straight from the
// networking.k8s.io/v1 semantics, with no groups, sets or chains. It is the oracle the compiled model and
// the rendered rules are checked against (property tests, the conformance corpus), and what `explain`
// prints. Pure. It does NOT check whether the destination serves the port; that is the lab's job.
//
// The semantics (FORMAT.md, bottom paragraph, and the Kubernetes docs):
// - A->B on (port, proto) is allowed iff A's egress allows it and B's ingress allows it.
// - A pod is isolated in a direction iff some policy in its namespace with that policyType selects it;
//   then it accepts only what at least one rule of those policies allows (union across policies).
// - Peers: podSelector alone = pods of the policy's namespace; namespaceSelector alone = every pod of the
//   matching namespaces; both = AND; ipBlock = address in cidr and in no except. Absent/empty from/to or
//   ports = all. Named ports resolve against the DESTINATION pod's container ports with the same protocol.
// - Host-network pods are not isolated, and as peers are matched by ipBlock only (their address is the
//   node's). Pods without an address match no peer.
// - Traffic between a pod and its own node (host-network pods on it) is always allowed (Kubernetes docs:
//   "traffic to and from the node where a Pod is running is always allowed"); in the kernel it never
//   crosses the forward hook.
import { type NormalizedNetworkPolicy, type NormalizedPeer, type NormalizedRule, networkPolicyKey } from "../../api/network-policy";
import { type PodInfo, type PolicySnapshot, type Protocol, podKey } from "../../model/cluster";
import { compareStrings, ipInBlock } from "./canonical";
import { matchesSelector } from "./selector";
import { parsePolicySnapshot } from "./snapshot";

export type PodRef = { readonly namespace: string; readonly name: string };
export type Endpoint = PodRef | { readonly ip: string };

export interface ConnectionQuery {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly port: number;
  readonly protocol: Protocol;
}

/** A rule of a policy, e.g. `{ policy: "x/allow-web", rule: "ingress[0]" }`. */
export interface RuleRef {
  readonly policy: string;
  readonly rule: string;
}

export interface Decision {
  readonly direction: "ingress" | "egress";
  /** True when some policy with this direction selects the pod (default deny applies). */
  readonly isolated: boolean;
  readonly allowed: boolean;
  /** The policies (`ns/name`, sorted) that select the pod for this direction. */
  readonly isolatedBy: readonly string[];
  /** Every rule that allows the connection, sorted by policy then rule index. Empty when denied or not isolated. */
  readonly allowedBy: readonly RuleRef[];
  /** One human sentence. */
  readonly reason: string;
}

export interface ConnectionVerdict {
  readonly allowed: boolean;
  readonly egress: Decision;
  readonly ingress: Decision;
  /** Caveats that do not change the policy answer (e.g. an endpoint without an address). */
  readonly notes: readonly string[];
  /** A multi-line human explanation (what `switchyard explain` prints). */
  readonly explanation: string;
}

interface PreparedSnapshot {
  readonly policies: readonly NormalizedNetworkPolicy[];
  readonly namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly podsByKey: ReadonlyMap<string, PodInfo>;
  readonly pods: readonly PodInfo[];
}

/** What one side of a connection is. */
interface ResolvedEndpoint {
  readonly text: string;
  readonly ip?: string;
  /** The pod (for a host-network address: the first host-network pod on it, for its named ports). */
  readonly pod?: PodInfo;
  readonly hostNetwork: boolean;
  /** The node, when the endpoint is a pod or a node address. */
  readonly node?: string;
  readonly unknown?: boolean;
}

// Parsing every policy per query would dominate the property tests; a snapshot is immutable data, so its
// parsed form is remembered per snapshot object (a pure cache: same input, same answer).
const prepared = new WeakMap<PolicySnapshot, PreparedSnapshot>();

function prepareSnapshot(snapshot: PolicySnapshot): PreparedSnapshot {
  const hit = prepared.get(snapshot);
  if (hit) return hit;
  const pods = [...snapshot.pods].sort((a, b) => compareStrings(podKey(a), podKey(b)));
  const p: PreparedSnapshot = {
    policies: parsePolicySnapshot(snapshot).policies,
    namespaceLabels: new Map(snapshot.namespaces.map((n) => [n.name, n.labels])),
    podsByKey: new Map(pods.map((pod) => [podKey(pod), pod])),
    pods,
  };
  prepared.set(snapshot, p);
  return p;
}

function resolveEndpoint(s: PreparedSnapshot, e: Endpoint): ResolvedEndpoint {
  if ("ip" in e) {
    const podNet = s.pods.find((p) => !p.hostNetwork && p.ip === e.ip);
    if (podNet) return { text: `${podKey(podNet)} (${e.ip})`, ip: e.ip, pod: podNet, hostNetwork: false, node: podNet.node };
    const host = s.pods.find((p) => p.hostNetwork && p.ip === e.ip);
    if (host) return { text: `${e.ip} (node ${host.node})`, ip: e.ip, pod: host, hostNetwork: true, node: host.node };
    return { text: e.ip, ip: e.ip, hostNetwork: false };
  }
  const key = podKey(e);
  const pod = s.podsByKey.get(key);
  if (!pod) return { text: key, hostNetwork: false, unknown: true };
  return { text: key, ...(pod.ip !== undefined ? { ip: pod.ip } : {}), pod, hostNetwork: pod.hostNetwork, node: pod.node };
}

function peerMatches(s: PreparedSnapshot, peer: NormalizedPeer, e: ResolvedEndpoint): boolean {
  if (peer.kind === "ipBlock") return e.ip !== undefined && ipInBlock(e.ip, peer.cidr, peer.except);
  // Pod selectors match only pod-network pods that have an address.
  const pod = e.pod;
  if (!pod || pod.hostNetwork || pod.ip === undefined) return false;
  if ("name" in peer.namespaces) {
    if (pod.namespace !== peer.namespaces.name) return false;
  } else {
    const nsLabels = s.namespaceLabels.get(pod.namespace);
    if (!nsLabels || !matchesSelector(peer.namespaces.selector, nsLabels)) return false;
  }
  return matchesSelector(peer.pods, pod.labels);
}

function portMatches(rule: NormalizedRule, port: number, protocol: Protocol, destination: ResolvedEndpoint): boolean {
  if (rule.ports === "any") return true;
  return rule.ports.some((p) => {
    if (p.protocol !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "number") return port >= p.port && port <= (p.endPort ?? p.port);
    const name = p.port;
    return destination.pod !== undefined && destination.pod.ports.some((cp) => cp.name === name && cp.protocol === protocol && cp.containerPort === port);
  });
}

function ruleAllows(s: PreparedSnapshot, rule: NormalizedRule, peer: ResolvedEndpoint, q: ConnectionQuery, destination: ResolvedEndpoint): boolean {
  const peerOk = rule.peers === "any" || rule.peers.some((p) => peerMatches(s, p, peer));
  return peerOk && portMatches(rule, q.port, q.protocol, destination);
}

function decide(
  s: PreparedSnapshot,
  direction: "ingress" | "egress",
  subject: ResolvedEndpoint,
  peer: ResolvedEndpoint,
  q: ConnectionQuery,
  destination: ResolvedEndpoint,
): Decision {
  const open = (reason: string): Decision => ({ direction, isolated: false, allowed: true, isolatedBy: [], allowedBy: [], reason });
  const pod = subject.pod;
  if (!pod || subject.unknown) {
    return open(
      subject.unknown
        ? `${subject.text} is not a known pod, so no ${direction} policy applies to it`
        : `${subject.text} is not a pod, so no ${direction} policy applies to it`,
    );
  }
  if (pod.hostNetwork) return open(`${subject.text} uses the host network; NetworkPolicy does not isolate host-network pods`);
  if (peer.hostNetwork && peer.node === pod.node) {
    return open(`${peer.text} is ${subject.text}'s own node; traffic between a pod and its own node is always allowed`);
  }
  const selecting = s.policies.filter(
    (p) => p.namespace === pod.namespace && (direction === "ingress" ? p.policyTypes.ingress : p.policyTypes.egress) && matchesSelector(p.podSelector, pod.labels),
  );
  if (selecting.length === 0) return open(`${subject.text} is not isolated for ${direction} (no ${direction} policy selects it)`);
  const isolatedBy = selecting.map((p) => networkPolicyKey(p));
  const allowedBy: RuleRef[] = [];
  for (const p of selecting) {
    const rules = direction === "ingress" ? p.ingress : p.egress;
    rules.forEach((rule, i) => {
      if (ruleAllows(s, rule, peer, q, destination)) allowedBy.push({ policy: networkPolicyKey(p), rule: `${direction}[${i}]` });
    });
  }
  const by = isolatedBy.join(", ");
  if (allowedBy.length === 0) {
    return {
      direction,
      isolated: true,
      allowed: false,
      isolatedBy,
      allowedBy,
      reason: `denied by default deny: ${subject.text} is isolated for ${direction} by ${by} and no rule of ${selecting.length === 1 ? "it" : "them"} allows traffic ${direction === "ingress" ? "from" : "to"} ${peer.text} on ${q.protocol}/${q.port}`,
    };
  }
  const first = allowedBy[0]!;
  return {
    direction,
    isolated: true,
    allowed: true,
    isolatedBy,
    allowedBy,
    reason: `allowed by ${first.policy} ${first.rule}${allowedBy.length > 1 ? ` (and ${allowedBy.length - 1} more rule${allowedBy.length > 2 ? "s" : ""})` : ""}; ${subject.text} is isolated for ${direction} by ${by}`,
  };
}

/**
 * Decides one connection from `from` to `to` on `port`/`protocol` by the v1 NetworkPolicy semantics.
 * `to` may also be a bare address (egress to the outside world); an address that belongs to a pod (or a
 * node running host-network pods) is treated as that pod (or node).
 */
export function evaluateConnection(snapshot: PolicySnapshot, query: ConnectionQuery): ConnectionVerdict {
  const s = prepareSnapshot(snapshot);
  const src = resolveEndpoint(s, query.from);
  const dst = resolveEndpoint(s, query.to);
  const egress = decide(s, "egress", src, dst, query, dst);
  const ingress = decide(s, "ingress", dst, src, query, dst);
  const notes: string[] = [];
  for (const e of [src, dst]) {
    if (e.unknown) notes.push(`${e.text} is not in the snapshot`);
    else if (e.pod && !e.hostNetwork && e.ip === undefined) notes.push(`${e.text} has no address yet: it matches no peer and cannot send or receive`);
  }
  if (src.pod && dst.pod && podKey(src.pod) === podKey(dst.pod) && !src.hostNetwork) {
    notes.push("a pod's traffic to itself stays inside the pod and is never filtered; this is the policy answer only");
  }
  const allowed = egress.allowed && ingress.allowed;
  const head = `${src.text} -> ${dst.text} ${query.protocol}/${query.port}: ${allowed ? "ALLOWED" : "DENIED"}`;
  const explanation = [head, `  egress:  ${egress.reason}`, `  ingress: ${ingress.reason}`, ...notes.map((n) => `  note: ${n}`)].join("\n");
  return { allowed, egress, ingress, notes, explanation };
}
