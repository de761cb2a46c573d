// The synthetic cluster of the control-plane benchmark, as API objects: nodes on a few underlay /24s,
// namespaces, pods spread over nodes with addresses inside each node's block, and NetworkPolicies with the
// mixed selectors of bench/policy-workloads.ts. Deterministic (a seeded generator, no Math.random), so two
// runs compare like with like. Pod addresses come from the same pure IPAM the controller runs, so no pod
// is "borrowed" (routed as a /32 on every node): that would put every pod in every node's routing plan.
import { allocateBlocks } from "../src/compile/ipam/ipam";
import { API_GROUP_VERSION } from "../src/api/common";
import { UNDERLAY_CIDR_ANNOTATION } from "../src/api/annotations";

export interface WorkloadSize {
  readonly nodes: number;
  readonly pods: number;
  readonly policies: number;
  readonly namespaces: number;
  /** Underlay /24 subnets the nodes are spread over (at most 250 nodes each). */
  readonly subnets: number;
  /**
   * "wide": the peers of bench/policy-workloads.ts (every prod namespace, a whole team's namespaces), so
   * each node's plan carries tens of thousands of peer addresses; "narrow": the same rule shapes with
   * peers in one named namespace, a few hundred addresses per policy. Default "wide".
   */
  readonly policyMix?: PolicyMix;
}

export type PolicyMix = "wide" | "narrow";

export interface NodeDef {
  readonly name: string;
  readonly ip: string;
  readonly underlayCIDR: string;
  readonly block: string;
}

export interface PodDef {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface Workload {
  readonly size: WorkloadSize;
  readonly nodes: readonly NodeDef[];
  readonly namespaces: readonly { readonly name: string; readonly labels: Readonly<Record<string, string>> }[];
  readonly pods: readonly PodDef[];
  readonly policies: readonly PolicyObject[];
  readonly clusterNetwork: { apiVersion: string; kind: "ClusterNetwork"; metadata: { name: string }; spec: Record<string, unknown> };
}

export type PolicyObject = {
  apiVersion: "networking.k8s.io/v1";
  kind: "NetworkPolicy";
  metadata: { namespace: string; name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
};

export const POD_CIDR = "10.0.0.0/8";
export const BLOCK_SIZE = 24;
/** Distinct `app` label values per namespace (as in bench/policy-workloads.ts). */
export const APPS = 50;

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

function ipPlus(cidr: string, offset: number): string {
  const [base] = cidr.split("/");
  const o = (base ?? "0.0.0.0").split(".").map(Number);
  const v = ((((o[0] ?? 0) << 24) | ((o[1] ?? 0) << 16) | ((o[2] ?? 0) << 8) | (o[3] ?? 0)) >>> 0) + offset;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

export function nsName(i: number): string {
  return `ns${pad(i, 2)}`;
}

/** The policy pol{j}: selects one app in its namespace; mixed peers (same-namespace app, namespace+tier, ipBlock). */
export function policyObject(j: number, nNs: number, port = 80, mix: PolicyMix = "wide"): PolicyObject {
  const app = Math.floor(j / nNs) % APPS;
  if (mix === "narrow") {
    const named = (i: number) => ({ matchLabels: { "kubernetes.io/metadata.name": nsName(i % nNs) } });
    return {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { namespace: nsName(j % nNs), name: `pol${j}` },
      spec: {
        podSelector: { matchLabels: { app: `a${app}` } },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: `a${(app + 1) % APPS}` } } }], ports: [{ port }, { port: "http" }] },
          { from: [{ namespaceSelector: named(j + 1), podSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["t1", "t2"] }] } }] },
        ],
        egress: [
          { to: [{ namespaceSelector: named(j + 7), podSelector: { matchLabels: { app: `a${app}` } } }], ports: [{ protocol: "TCP", port: 443 }, { protocol: "TCP", port: 8000, endPort: 8100 }] },
          { to: [{ ipBlock: { cidr: "192.168.0.0/16", except: [`192.168.${j % 256}.0/24`] } }] },
        ],
      },
    };
  }
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: nsName(j % nNs), name: `pol${j}` },
    spec: {
      podSelector: { matchLabels: { app: `a${app}` } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: `a${(app + 1) % APPS}` } } }], ports: [{ port }, { port: "http" }] },
        { from: [{ namespaceSelector: { matchLabels: { team: `t${j % 10}` } }, podSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["t1", "t2"] }] } }] },
      ],
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { env: "prod" } } }], ports: [{ protocol: "TCP", port: 443 }, { protocol: "TCP", port: 8000, endPort: 8100 }] },
        { to: [{ ipBlock: { cidr: "192.168.0.0/16", except: [`192.168.${j % 256}.0/24`] } }] },
      ],
    },
  };
}

export function buildWorkload(size: WorkloadSize): Workload {
  if (size.nodes > size.subnets * 250) throw new Error(`${size.nodes} nodes do not fit in ${size.subnets} underlay /24 subnets (250 each)`);
  const names = Array.from({ length: size.nodes }, (_, i) => `node-${pad(i, 4)}`);
  const alloc = allocateBlocks([POD_CIDR], BLOCK_SIZE, names, {});
  const nodes: NodeDef[] = names.map((name, i) => {
    const subnet = i % size.subnets;
    const block = alloc.blocks[name];
    if (!block) throw new Error(`no block for ${name}`);
    return { name, ip: `192.168.${10 + subnet}.${1 + Math.floor(i / size.subnets)}`, underlayCIDR: `192.168.${10 + subnet}.0/24`, block };
  });
  const namespaces = Array.from({ length: size.namespaces }, (_, i) => ({ name: nsName(i), labels: { team: `t${i % 10}`, env: i % 2 ? "prod" : "dev" } }));
  const next = rng(0x5117c4);
  const used = new Array<number>(size.nodes).fill(0);
  const pods: PodDef[] = [];
  for (let i = 0; i < size.pods; i++) {
    let n = Math.floor(next() * size.nodes);
    while ((used[n] ?? 0) >= 250) n = (n + 1) % size.nodes; // a /24 holds 253 pods after the gateway
    used[n] = (used[n] ?? 0) + 1;
    const node = nodes[n]!;
    pods.push({
      namespace: nsName(i % size.namespaces),
      name: `p${i}`,
      node: node.name,
      ip: ipPlus(node.block, 1 + (used[n] ?? 1)), // .1 is the node's own (vxlan device) address
      labels: { app: `a${Math.floor(i / size.namespaces) % APPS}`, tier: `t${i % 3}` },
    });
  }
  const policies = Array.from({ length: size.policies }, (_, j) => policyObject(j, size.namespaces, 80, size.policyMix ?? "wide"));
  const clusterNetwork = {
    apiVersion: API_GROUP_VERSION,
    kind: "ClusterNetwork" as const,
    metadata: { name: "default" },
    spec: { podCIDRs: [POD_CIDR], blockSize: BLOCK_SIZE, mode: "vxlan" },
  };
  return { size, nodes, namespaces, pods, policies, clusterNetwork };
}

export function nodeObject(n: NodeDef): { apiVersion: string; kind: string; metadata: Record<string, unknown>; status: Record<string, unknown> } {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name, labels: { "kubernetes.io/hostname": n.name }, annotations: { [UNDERLAY_CIDR_ANNOTATION]: n.underlayCIDR } },
    status: { addresses: [{ type: "InternalIP", address: n.ip }, { type: "Hostname", address: n.name }] },
  };
}

export function podObject(p: PodDef): { apiVersion: string; kind: string; metadata: Record<string, unknown>; spec: Record<string, unknown> } {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: p.namespace, name: p.name, labels: { ...p.labels } },
    spec: { nodeName: p.node, containers: [{ name: "main", image: "registry.invalid/app:1", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] }] },
  };
}

export function podStatus(p: PodDef): Record<string, unknown> {
  return { phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }] };
}
