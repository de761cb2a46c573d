// Synthetic clusters for the policy benchmarks. Deterministic (no randomness): the same sizes always give
// the same snapshot, so runs compare like with like.
import type { NamespaceInfo, PodInfo, PolicySnapshot } from "../src/model/cluster";

function ip(base: number, i: number): string {
  const a = base + i;
  return `10.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** 50,000 pods / 5,000 policies / 1,000 nodes by default: the compile-at-scale workload. */
export function buildScaleSnapshot(opts: { pods?: number; policies?: number; nodes?: number; namespaces?: number } = {}): PolicySnapshot {
  const nPods = opts.pods ?? 50_000;
  const nPolicies = opts.policies ?? 5_000;
  const nNodes = opts.nodes ?? 1_000;
  const nNs = opts.namespaces ?? 100;
  const namespaces: NamespaceInfo[] = Array.from({ length: nNs }, (_, i) => ({
    name: `ns${i}`,
    labels: { "kubernetes.io/metadata.name": `ns${i}`, team: `t${i % 10}`, env: i % 2 ? "prod" : "dev" },
  }));
  const pods: PodInfo[] = Array.from({ length: nPods }, (_, i) => ({
    namespace: `ns${i % nNs}`,
    name: `p${i}`,
    labels: { app: `a${Math.floor(i / nNs) % 50}`, tier: `t${i % 3}` },
    node: `n${i % nNodes}`,
    ip: ip(0x0a0000, i),
    hostNetwork: false,
    ports: [{ name: "http", containerPort: 8080 + (i % 2), protocol: "TCP" }],
  }));
  const policies: unknown[] = Array.from({ length: nPolicies }, (_, j) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: `ns${j % nNs}`, name: `pol${j}` },
    spec: {
      podSelector: { matchLabels: { app: `a${Math.floor(j / nNs) % 50}` } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: `a${(Math.floor(j / nNs) + 1) % 50}` } } }], ports: [{ port: 80 }, { port: "http" }] },
        { from: [{ namespaceSelector: { matchLabels: { team: `t${j % 10}` } }, podSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["t1", "t2"] }] } }] },
      ],
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { env: "prod" } } }], ports: [{ protocol: "TCP", port: 443 }, { protocol: "TCP", port: 8000, endPort: 8100 }] },
        { to: [{ ipBlock: { cidr: "192.168.0.0/16", except: [`192.168.${j % 256}.0/24`] } }] },
      ],
    },
  }));
  return { namespaces, pods, policies };
}

export const BENCH_CLIENT = { namespace: "bench-client", name: "client", node: "n1", ip: "10.244.1.2" } as const;
export const BENCH_SERVER = { namespace: "bench", name: "server", node: "n2", ip: "10.244.2.2" } as const;
export const BENCH_PORT = 5201;

/**
 * The throughput workload: the server pod is selected by `policies` policies, each admitting a different
 * group of the `peers` peer pods (that live on other nodes and exist only as API data), plus one policy
 * admitting the real client. The receiving node's ruleset then holds `policies` rules and `peers` set elements.
 */
export function buildThroughputSnapshot(policies = 1_000, peers = 10_000): PolicySnapshot {
  const perGroup = Math.max(1, Math.floor(peers / policies));
  const namespaces: NamespaceInfo[] = ["bench", "bench-client", "peers"].map((n) => ({ name: n, labels: { "kubernetes.io/metadata.name": n } }));
  const pods: PodInfo[] = [
    { ...BENCH_CLIENT, labels: { app: "client" }, hostNetwork: false, ports: [] },
    { ...BENCH_SERVER, labels: { app: "server" }, hostNetwork: false, ports: [{ name: "iperf", containerPort: BENCH_PORT, protocol: "TCP" }] },
    ...Array.from({ length: peers }, (_, i): PodInfo => ({
      namespace: "peers",
      name: `peer${i}`,
      labels: { grp: `g${Math.floor(i / perGroup)}` },
      node: `far${i % 50}`,
      ip: ip(0x0ac80000, i), // 10.200.0.0/16 and up
      hostNetwork: false,
      ports: [],
    })),
  ];
  const pols: unknown[] = Array.from({ length: policies }, (_, i) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: "bench", name: `allow-g${i}` },
    spec: {
      podSelector: { matchLabels: { app: "server" } },
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "peers" } }, podSelector: { matchLabels: { grp: `g${i}` } } }], ports: [{ port: BENCH_PORT }] }],
    },
  }));
  pols.push({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: "bench", name: "zz-allow-client" },
    spec: {
      podSelector: { matchLabels: { app: "server" } },
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "bench-client" } } }], ports: [{ port: BENCH_PORT }] }],
    },
  });
  return { namespaces, pods, policies: pols };
}
