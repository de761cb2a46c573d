// Property: for random clusters, policies and probes, the compiled model as the kernel runs it (compile ->
// slice per node -> interpret) decides every probe exactly as the reference evaluator does. Small label and
// namespace alphabets so selectors actually match; fixed seeds so a failure reproduces.
//
// One deliberate restriction: at most one host-network pod per node. Host-network pods share their node's
// address, and the kernel can only tell destinations apart by address, so two host-network pods on one
// node with different named ports are indistinguishable to any IP-based dataplane.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NamespaceInfo, PodInfo, PolicySnapshot, Protocol } from "../../src/model/cluster";
import { renderNftables } from "../../src/render/nftables";
import { renderIptables } from "../../src/render/iptables";
import { compilePolicies } from "../../src/compile/policy/compile";
import { evaluateConnection } from "../../src/compile/policy/evaluate";
import { interpretPacket } from "../support/policy-interpreter";
import { type NodePolicySlice, slicePolicyForNode } from "../../src/compile/policy/slice";
import { buildContainerPort, buildNamespace } from "../support/policy-builders";

const NODES = ["n1", "n2", "n3"] as const;
const NODE_IP: Record<string, string> = { n1: "192.168.10.1", n2: "192.168.10.2", n3: "192.168.10.3" };
const NS_NAMES = ["x", "y", "z"] as const;
const EXTERNAL = ["203.0.113.5", "198.51.100.7"];
const PROTOCOLS: Protocol[] = ["TCP", "UDP", "SCTP"];
const PROBE_PORTS = [53, 80, 81, 8080, 9000, 9001];

const optionalLabel = (key: string, values: string[]): fc.Arbitrary<Record<string, string>> =>
  fc.option(fc.constantFrom(...values), { nil: undefined }).map((v) => (v === undefined ? {} : { [key]: v }));

const podLabels = fc.tuple(optionalLabel("app", ["web", "db"]), optionalLabel("tier", ["fe", "be"])).map(([a, b]) => ({ ...a, ...b }));
const nsLabels = fc.tuple(optionalLabel("team", ["a", "b"]), optionalLabel("env", ["p"])).map(([a, b]) => ({ ...a, ...b }));

/** Container ports: names are unique within a pod, but the same name maps to different numbers on different pods. */
const podPorts = fc
  .tuple(
    fc.constantFrom<string | undefined>(undefined, "http:80/TCP", "http:8080/TCP", "http:80/UDP"),
    fc.constantFrom<string | undefined>(undefined, "dns:53/UDP", "dns:53/TCP"),
    fc.constantFrom<string | undefined>(undefined, "assoc:9000/SCTP", "assoc:9001/SCTP"),
    fc.constantFrom<string | undefined>(undefined, "81/TCP"),
  )
  .map((specs) => specs.filter((s): s is string => s !== undefined).map(buildContainerPort));

const podArb = fc.record({
  ns: fc.constantFrom(...NS_NAMES),
  labels: podLabels,
  node: fc.constantFrom(...NODES),
  kind: fc.constantFrom("pod", "pod", "pod", "pod", "no-ip", "host"),
  subnet: fc.constantFrom(0, 1, 2),
  ports: podPorts,
});

const selectorArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.constant({}),
  fc.record({ matchLabels: fc.constantFrom({ app: "web" }, { app: "db" }, { tier: "fe" }, { team: "a" }, { team: "b" }, { env: "p" }) }),
  fc.record({
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({ key: fc.constantFrom("app", "tier", "team", "env"), operator: fc.constantFrom("In", "NotIn"), values: fc.subarray(["web", "db", "fe", "be", "a", "b", "p"], { minLength: 1, maxLength: 2 }) }),
        fc.record({ key: fc.constantFrom("app", "tier", "team", "env"), operator: fc.constantFrom("Exists", "DoesNotExist") }),
      ),
      { minLength: 1, maxLength: 2 },
    ),
  }),
);

const ipBlockArb = fc.constantFrom(
  { cidr: "10.0.0.0/16", except: ["10.0.1.0/24"] },
  { cidr: "10.0.0.0/8" },
  { cidr: "10.0.2.0/24" },
  { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] },
  { cidr: "192.168.10.0/24", except: ["192.168.10.2/32"] },
  { cidr: "192.168.10.1/32" },
  { cidr: "203.0.113.0/24" },
  { cidr: "10.0.0.10/31" },
  { cidr: "10.0.1.11/32" },
);

const peerArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ podSelector: selectorArb }),
  fc.record({ namespaceSelector: selectorArb }),
  fc.record({ podSelector: selectorArb, namespaceSelector: selectorArb }),
  fc.record({ ipBlock: ipBlockArb }),
);

const portArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    protocol: fc.constantFrom(undefined, "TCP", "UDP", "SCTP"),
    port: fc.constantFrom(undefined, 53, 80, 81, 8080, 9000, "http", "dns", "assoc"),
    span: fc.constantFrom(0, 0, 1, 1000),
  })
  .map(({ protocol, port, span }) => {
    const out: Record<string, unknown> = {};
    if (protocol !== undefined) out["protocol"] = protocol;
    if (port !== undefined) out["port"] = port;
    if (typeof port === "number" && span > 0) out["endPort"] = port + span;
    return out;
  });

const listOrAbsent = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T[] | undefined> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant<T[] | undefined>(undefined) },
    { weight: 1, arbitrary: fc.constant<T[] | undefined>([]) },
    { weight: 4, arbitrary: fc.array(arb, { minLength: 1, maxLength: 2 }) },
  );

const ruleArb = (peersField: "from" | "to"): fc.Arbitrary<Record<string, unknown>> =>
  fc.record({ peers: listOrAbsent(peerArb), ports: listOrAbsent(portArb) }).map(({ peers, ports }) => {
    const out: Record<string, unknown> = {};
    if (peers !== undefined) out[peersField] = peers;
    if (ports !== undefined) out["ports"] = ports;
    return out;
  });

const policyArb = fc.record({
  ns: fc.constantFrom(...NS_NAMES),
  podSelector: selectorArb,
  policyTypes: fc.constantFrom(undefined, ["Ingress"], ["Egress"], ["Ingress", "Egress"]),
  ingress: fc.option(fc.array(ruleArb("from"), { maxLength: 2 }), { nil: undefined }),
  egress: fc.option(fc.array(ruleArb("to"), { maxLength: 2 }), { nil: undefined }),
});

interface World {
  readonly snapshot: PolicySnapshot;
}

const worldArb: fc.Arbitrary<World> = fc
  .record({
    nsLabels: fc.tuple(nsLabels, nsLabels, nsLabels),
    pods: fc.array(podArb, { minLength: 1, maxLength: 9 }),
    policies: fc.array(policyArb, { maxLength: 4 }),
  })
  .map(({ nsLabels: labels, pods: rawPods, policies: rawPolicies }) => {
    const namespaces: NamespaceInfo[] = NS_NAMES.map((n, i) => buildNamespace(n, labels[i]));
    const hostOn = new Set<string>();
    const pods: PodInfo[] = rawPods.map((p, i) => {
      let kind = p.kind;
      if (kind === "host" && hostOn.has(p.node)) kind = "pod";
      if (kind === "host") hostOn.add(p.node);
      const ip = kind === "host" ? NODE_IP[p.node]! : kind === "pod" ? `10.0.${p.subnet}.${10 + i}` : undefined;
      return { namespace: p.ns, name: `p${i}`, labels: p.labels, node: p.node, ...(ip !== undefined ? { ip } : {}), hostNetwork: kind === "host", ports: p.ports };
    });
    const policies = rawPolicies.map((p, i) => {
      const spec: Record<string, unknown> = { podSelector: p.podSelector };
      if (p.policyTypes !== undefined) spec["policyTypes"] = p.policyTypes;
      if (p.ingress !== undefined) spec["ingress"] = p.ingress;
      if (p.egress !== undefined) spec["egress"] = p.egress;
      return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace: p.ns, name: `pol${i}` }, spec };
    });
    return { snapshot: { namespaces, pods, policies } };
  });

type End = { kind: "pod"; pod: PodInfo } | { kind: "external"; ip: string };

const probeArb = fc.record({
  src: fc.nat(),
  dst: fc.nat(),
  port: fc.constantFrom(...PROBE_PORTS),
  protocol: fc.constantFrom(...PROTOCOLS),
});

function endpoints(snapshot: PolicySnapshot): End[] {
  return [...snapshot.pods.filter((p) => p.ip !== undefined).map((pod): End => ({ kind: "pod", pod })), ...EXTERNAL.map((ip): End => ({ kind: "external", ip }))];
}

describe("property: compile -> slice -> kernel interpretation == reference evaluator", () => {
  it("agrees on every probe of 3000 random clusters", () => {
    let probes = 0;
    let allowed = 0;
    fc.assert(
      fc.property(worldArb, fc.array(probeArb, { minLength: 1, maxLength: 12 }), ({ snapshot }, rawProbes) => {
        const model = compilePolicies(snapshot);
        const slices = new Map<string, NodePolicySlice>(NODES.map((n) => [n, slicePolicyForNode(model, n)]));
        const ends = endpoints(snapshot);
        for (const pr of rawProbes) {
          const src = ends[pr.src % ends.length]!;
          const dst = ends[pr.dst % ends.length]!;
          if (src.kind === "external" && dst.kind === "external") continue;
          if (src.kind === "pod" && dst.kind === "pod" && src.pod === dst.pod) continue; // loopback never reaches the node
          const ref = (e: End) => (e.kind === "pod" ? { namespace: e.pod.namespace, name: e.pod.name } : { ip: e.ip });
          const verdict = evaluateConnection(snapshot, { from: ref(src), to: ref(dst), port: pr.port, protocol: pr.protocol });
          const ipOf = (e: End): string => (e.kind === "pod" ? e.pod.ip! : e.ip);
          const sliceOf = (e: End): NodePolicySlice | undefined => (e.kind === "pod" ? slices.get(e.pod.node) : undefined);
          const kernel = interpretPacket({ srcIp: ipOf(src), dstIp: ipOf(dst), protocol: pr.protocol, dport: pr.port }, sliceOf(src), sliceOf(dst));
          probes++;
          if (verdict.allowed) allowed++;
          if (kernel.allowed !== verdict.allowed) {
            throw new Error(`kernel model says ${kernel.allowed ? "allowed" : "denied"} (${JSON.stringify(kernel)}), reference says:\n${verdict.explanation}`);
          }
        }
      }),
      { seed: 42, numRuns: 3000 },
    );
    // The generator must exercise both outcomes substantially, or the property proves little.
    expect(probes).toBeGreaterThan(10_000);
    expect(allowed / probes).toBeGreaterThan(0.2);
    expect(allowed / probes).toBeLessThan(0.9);
  });

  it("compiles, slices and renders the same bytes whatever the input order", () => {
    fc.assert(
      fc.property(worldArb, fc.integer(), ({ snapshot }, salt) => {
        const shuffle = <T>(xs: readonly T[]): T[] => xs.map((x, i) => ({ x, k: (Math.imul(i + 1, 2654435761) ^ salt) >>> 0 })).sort((a, b) => a.k - b.k).map((e) => e.x);
        const shuffled: PolicySnapshot = { namespaces: shuffle(snapshot.namespaces), pods: shuffle(snapshot.pods), policies: shuffle(snapshot.policies) };
        const a = compilePolicies(snapshot);
        const b = compilePolicies(shuffled);
        expect(b).toEqual(a);
        for (const n of NODES) {
          const sa = slicePolicyForNode(a, n);
          const sb = slicePolicyForNode(b, n);
          expect(renderNftables(sb)).toBe(renderNftables(sa));
          expect(renderIptables(sb)).toEqual(renderIptables(sa));
        }
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});
