// Representative clusters for the plan golden files: every mode, crossSubnet, each BGP topology, mixed
// migration layouts with health probing, an explicit MTU, the iptables backend and a borrowed (static)
// pod address. `npx tsx hack/gen-golden.ts` rewrites test/golden/plans/<name>.json from these (every
// node's NodeNetwork spec as the controller would publish it); the compile test compares byte for byte,
// so a refactor that changes what a node receives shows up here as a diff.
import type { Mode } from "../../../src/api/cluster-network";
import { parseClusterNetwork } from "../../../src/api/validate-cluster-network";
import { compileClusterPlans, type ClusterPlanInput } from "../../../src/compile/cluster-plan";
import { type ClusterNode } from "../../../src/model/cluster";
import type { NamespaceInfo, PodInfo } from "../../../src/model/cluster";
import type { RoutingPlan } from "../../../src/model/routing-plan";
import { checkPlanForKernel, diffDevices, diffFdb, diffNeighbors, diffRoutes } from "../../../src/agent/routing/diff";
import { OWNED_DEVICES } from "../../../src/modes/registry";
import type { KernelLink } from "../../../src/agent/routing/kernel-state";

export interface PlanGoldenCase {
  readonly name: string;
  readonly description: string;
  readonly input: ClusterPlanInput;
}

function specOf(spec: Record<string, unknown>) {
  const parsed = parseClusterNetwork({ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "default" }, spec: { podCIDRs: ["10.244.0.0/16"], blockSize: 24, ...spec } });
  if (!parsed.ok) throw new Error(`plan golden case spec is invalid: ${JSON.stringify(parsed.diagnostics)}`);
  return parsed.value.spec;
}

/** n1, n2 on 192.168.10.0/24; n3, n4 on 192.168.20.0/24 (or all four on one subnet). */
function nodes(oneSubnet = false): ClusterNode[] {
  return [1, 2, 3, 4].map((i) => {
    const far = !oneSubnet && i > 2;
    return {
      name: `n${i}`,
      labels: { subnet: far ? "b" : "a", ...(i === 1 || i === 3 ? { rr: "true" } : {}) },
      ip: `192.168.${far ? 20 : 10}.${10 + i}`,
      underlayCIDR: far ? "192.168.20.0/24" : "192.168.10.0/24",
      ...(i === 4 ? { underlayMtu: 9000 } : {}),
    };
  });
}

const NAMESPACES: NamespaceInfo[] = [
  { name: "shop", labels: { "kubernetes.io/metadata.name": "shop", team: "shop" } },
  { name: "ops", labels: { "kubernetes.io/metadata.name": "ops" } },
];

const pod = (ns: string, name: string, node: string, ip: string | undefined, labels: Record<string, string>, ports: PodInfo["ports"] = []): PodInfo => ({
  namespace: ns,
  name,
  labels,
  node,
  ...(ip ? { ip } : {}),
  hostNetwork: false,
  ports,
});

const PODS: PodInfo[] = [
  pod("shop", "web-1", "n1", "10.244.0.10", { app: "web" }, [{ name: "http", containerPort: 8080, protocol: "TCP" }]),
  pod("shop", "web-2", "n3", "10.244.2.10", { app: "web" }, [{ name: "http", containerPort: 8080, protocol: "TCP" }]),
  pod("shop", "db-0", "n2", "10.244.1.20", { app: "db" }, [{ name: "pg", containerPort: 5432, protocol: "TCP" }]),
  // A static address outside its node's block: routed to its node as a /32.
  pod("shop", "pinned", "n4", "10.244.200.7", { app: "web" }),
  pod("ops", "prometheus", "n4", "10.244.3.30", { app: "prometheus" }),
  pod("ops", "starting", "n2", undefined, { app: "prometheus" }),
];

const POLICIES: unknown[] = [
  { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace: "shop", name: "default-deny" }, spec: { podSelector: {}, policyTypes: ["Ingress"] } },
  {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: "shop", name: "db" },
    spec: {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: "pg" }] }],
      egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.244.0.0/16"] } }] }],
      policyTypes: ["Ingress", "Egress"],
    },
  },
  {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: "shop", name: "web" },
    spec: { podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "prometheus" } } }], ports: [{ port: "http" }] }] },
  },
];

function input(spec: Record<string, unknown>, extra: Partial<ClusterPlanInput> = {}, oneSubnet = false): ClusterPlanInput {
  return {
    clusterNetwork: "default",
    generation: 3,
    spec: specOf(spec),
    nodes: nodes(oneSubnet),
    namespaces: NAMESPACES,
    pods: PODS,
    policies: POLICIES,
    previousBlocks: { n3: "10.244.2.0/24" },
    ...extra,
  };
}

const TOR = { asNumber: 64512, topology: "tor", peers: [{ address: "192.168.10.1", asNumber: 65000, nodeSelector: { matchLabels: { subnet: "a" } } }, { address: "192.168.20.1", asNumber: 65000, nodeSelector: { matchLabels: { subnet: "b" } } }] };
const half = (to: Mode, from: Mode): Record<string, Mode> => ({ n1: to, n2: from, n3: to, n4: from });

export const PLAN_GOLDEN_CASES: readonly PlanGoldenCase[] = [
  { name: "vxlan", description: "vxlan across two subnets", input: input({ mode: "vxlan" }) },
  { name: "vxlan-cross-subnet", description: "vxlan with crossSubnet: native within a subnet", input: input({ mode: "vxlan", crossSubnet: true, vxlan: { vni: 7, port: 4789 } }) },
  { name: "ipip-cross-subnet", description: "ipip with crossSubnet, iptables backend", input: input({ mode: "ipip", crossSubnet: true, policy: { backend: "iptables" } }) },
  { name: "host-gw", description: "host-gw on one subnet", input: input({ mode: "host-gw", natOutgoing: false }, {}, true) },
  { name: "host-gw-two-subnets", description: "host-gw across subnets: refused pairs as diagnostics", input: input({ mode: "host-gw" }) },
  { name: "bgp-full-mesh", description: "bgp full mesh on one subnet", input: input({ mode: "bgp", bgp: { asNumber: 64512, topology: "full-mesh" } }, {}, true) },
  { name: "bgp-route-reflectors", description: "bgp with route reflectors (rr=true) across subnets", input: input({ mode: "bgp", bgp: { asNumber: 64600, topology: "route-reflectors", routeReflectors: { nodeSelector: { matchLabels: { rr: "true" } } } } }) },
  { name: "bgp-tor", description: "bgp with top-of-rack peers per subnet, explicit MTU", input: input({ mode: "bgp", mtu: 1400, bgp: TOR }) },
  {
    name: "migration-vxlan-to-bgp",
    description: "mid-migration vxlan -> bgp tor: half the nodes moved, both transports in use, a gate epoch",
    input: input({ mode: "bgp", bgp: TOR }, { defaultMode: "vxlan", nodeModes: half("bgp", "vxlan"), modesInUse: ["bgp", "vxlan"], sourceConfig: { vxlan: { vni: 1, port: 8472 } }, probe: { epoch: 2, intervalMs: 2000, rounds: 3 } }),
  },
  {
    name: "migration-ipip-to-host-gw",
    description: "mid-migration ipip -> host-gw on one subnet, probing without a rounds target",
    input: input({ mode: "host-gw" }, { defaultMode: "ipip", nodeModes: half("host-gw", "ipip"), modesInUse: ["host-gw", "ipip"], probe: { epoch: 0, intervalMs: 1000, maxTargets: 2 } }, true),
  },
  {
    name: "migration-bgp-to-vxlan",
    description: "mid-rollback bgp (source settings) -> vxlan, every node still sending bgp",
    input: input({ mode: "vxlan" }, { defaultMode: "bgp", modesInUse: ["bgp", "vxlan"], sourceConfig: { bgp: { asNumber: 64512, topology: "full-mesh" } } }, true),
  },
];

/**
 * The golden files of a case: `<name>.json`, every node's plan with the cluster-wide diagnostics and IPAM
 * figures; `<name>.kernel`, per node, the agent's routing commands on a node that has only its underlay
 * (`fresh`) and on one that also has every device Switchyard owns with no entries (`devices present`).
 */
export function renderPlanGoldenFiles(c: PlanGoldenCase): [string, string][] {
  const out = compileClusterPlans(c.input);
  const sorted = [...out.plans].sort(([a], [b]) => (a < b ? -1 : 1));
  const plans = Object.fromEntries(sorted);
  const kernel: string[] = [];
  for (const [node, spec] of sorted) {
    const plan = spec.routing as unknown as RoutingPlan;
    kernel.push(`# ${node}`, ...checkPlanForKernel(plan).map((p) => `problem: ${p}`));
    const underlay: KernelLink = { name: "eth0", up: true, mtu: 1500, mac: "02:00:00:00:00:01", kind: "veth", info: {}, ipv4: [`${plan.nodeIP}/24`], ipv4Labels: {} };
    const lo: KernelLink = { name: "lo", up: true, mtu: 65536, info: {}, ipv4: ["127.0.0.1/8"], ipv4Labels: { "127.0.0.1/8": "lo" } };
    const present: KernelLink[] = OWNED_DEVICES.map((name) => ({ name, up: false, mtu: 1500, kind: "dummy", info: {}, ipv4: [], ipv4Labels: {} }));
    for (const [what, links] of [["fresh", [lo, underlay]], ["devices present", [lo, underlay, ...present]]] as const) {
      const dev = diffDevices(plan, links, "eth0");
      const existing = new Set([...links.map((l) => l.name), ...dev.created]);
      const routes = diffRoutes(plan.routes, [], existing);
      const entries = [...new Set([...plan.fdb.map((f) => f.dev), ...plan.neighbors.map((n) => n.dev)])].sort().flatMap((d) => [...diffFdb(d, plan.fdb, []).apply, ...diffNeighbors(d, plan.neighbors, []).apply]);
      kernel.push(`## ${what}`, ...dev.apply, ...entries, ...routes.apply, ...dev.remove.map((l) => `(remove) ${l}`), ...dev.errors.map((e) => `error: ${e}`), ...routes.conflicts.map((e) => `conflict: ${e}`));
    }
  }
  return [
    [`${c.name}.json`, `${JSON.stringify({ ipam: out.ipam, diagnostics: out.diagnostics, plans }, null, 2)}\n`],
    [`${c.name}.kernel`, `${kernel.join("\n")}\n`],
  ];
}
