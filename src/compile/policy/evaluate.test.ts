// The reference evaluator, field by field of networking.k8s.io/v1 NetworkPolicy. Every case is also run
// through compile -> slice -> interpret (the kernel's view), so the table pins both at once.
import { describe, expect, it } from "vitest";
import type { Protocol } from "../../model/cluster";
import { compilePolicies } from "./compile";
import { type Endpoint, evaluateConnection } from "./evaluate";
import { interpretPacket } from "../../../test/support/policy-interpreter";
import { slicePolicyForNode } from "./slice";
import { buildNamespace, buildPod, buildPolicy, buildSnapshot } from "../../../test/support/policy-builders";

const NAMESPACES = [
  buildNamespace("x", { team: "red", env: "prod" }),
  buildNamespace("y", { team: "blue", env: "dev" }),
  buildNamespace("z", { team: "blue" }),
];

const PODS = [
  buildPod("x/a", { app: "web", tier: "fe" }, { node: "n1", ip: "10.0.0.10", ports: ["http:80/TCP", "dns:53/UDP", "assoc:7000/SCTP"] }),
  buildPod("x/b", { app: "db" }, { node: "n2", ip: "10.0.0.11", ports: ["db:5432/TCP", "http:8080/TCP"] }),
  buildPod("x/c", { app: "web", env: "canary" }, { node: "n1", ip: "10.0.0.12", ports: ["http:81/TCP"] }),
  buildPod("y/a", { app: "web" }, { node: "n2", ip: "10.0.1.20", ports: ["http:8080/TCP"] }),
  buildPod("y/b", { app: "client" }, { node: "n1", ip: "10.0.1.21" }),
  buildPod("z/a", { app: "client", tier: "be" }, { node: "n2", ip: "10.0.2.30" }),
  // A host-network pod on n1 (its address is n1's) and one on n2.
  buildPod("z/h1", { app: "client" }, { node: "n1", ip: "192.168.10.11", hostNetwork: true, ports: ["metrics:9100/TCP"] }),
  buildPod("z/h2", { app: "client" }, { node: "n2", ip: "192.168.10.12", hostNetwork: true, ports: ["metrics:9100/TCP"] }),
  // Scheduled but not yet addressed.
  buildPod("x/new", { app: "client" }, { node: "n1" }),
  buildPod("y/new", { app: "web" }, { node: "n2" }),
];

interface Probe {
  readonly from: string;
  readonly to: string;
  readonly port?: number;
  readonly protocol?: Protocol;
  readonly allowed: boolean;
  /** Expected `policy rule` strings of the deciding direction (allowedBy), when the test wants to pin them. */
  readonly by?: readonly string[];
}

interface Case {
  readonly name: string;
  readonly policies: readonly unknown[];
  readonly probes: readonly Probe[];
}

const spec = (s: Record<string, unknown>): Record<string, unknown> => s;
const P = buildPolicy;

function endpoint(text: string): Endpoint {
  return text.includes("/") ? { namespace: text.split("/")[0]!, name: text.split("/")[1]! } : { ip: text };
}

const CASES: Case[] = [
  {
    name: "no policy: everything is allowed and nothing is isolated",
    policies: [],
    probes: [
      { from: "x/a", to: "y/a", allowed: true },
      { from: "203.0.113.9", to: "x/b", port: 5432, allowed: true },
    ],
  },
  {
    name: "podSelector {} with no policyTypes implies Ingress: default deny ingress for the namespace",
    policies: [P("x/deny", spec({ podSelector: {} }))],
    probes: [
      { from: "y/a", to: "x/a", allowed: false },
      { from: "x/b", to: "x/a", allowed: false },
      { from: "x/a", to: "y/a", allowed: true },
      { from: "y/a", to: "y/b", allowed: true },
    ],
  },
  {
    name: "policyTypes implied: egress rules imply Egress, and Ingress is always implied",
    policies: [P("x/egress-only-rules", spec({ podSelector: { matchLabels: { app: "web" } }, egress: [{}] }))],
    probes: [
      { from: "x/a", to: "y/b", allowed: true, by: ["x/egress-only-rules egress[0]"] },
      { from: "y/b", to: "x/a", allowed: false },
      { from: "y/b", to: "x/b", allowed: true },
    ],
  },
  {
    name: "policyTypes implied: `egress: []` alone does not imply Egress (len(egress) == 0)",
    policies: [P("x/p", spec({ podSelector: {}, ingress: [{}], egress: [] }))],
    probes: [
      { from: "x/a", to: "y/a", allowed: true },
      { from: "y/a", to: "x/a", allowed: true, by: ["x/p ingress[0]"] },
    ],
  },
  {
    name: "policyTypes explicit [Egress]: ingress rules in the object are ignored and ingress is not isolated",
    policies: [P("x/p", spec({ podSelector: {}, policyTypes: ["Egress"], ingress: [], egress: [] }))],
    probes: [
      { from: "y/a", to: "x/a", allowed: true },
      { from: "x/a", to: "y/a", allowed: false },
    ],
  },
  {
    name: "policyTypes explicit [Ingress, Egress] with no rules: deny all in both directions",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress", "Egress"] }))],
    probes: [
      { from: "x/a", to: "x/b", allowed: false },
      { from: "x/b", to: "x/a", allowed: false },
      { from: "x/b", to: "y/a", allowed: true },
    ],
  },
  {
    name: "podSelector peer alone selects pods of the policy's own namespace only",
    policies: [P("y/p", spec({ podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }] }))],
    probes: [
      { from: "y/b", to: "y/a", allowed: true, by: ["y/p ingress[0]"] },
      { from: "z/a", to: "y/a", allowed: false },
      { from: "x/b", to: "y/a", allowed: false },
    ],
  },
  {
    name: "namespaceSelector peer alone selects every pod of the matching namespaces",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } } }] }] }))],
    probes: [
      { from: "y/a", to: "x/b", port: 5432, allowed: true },
      { from: "z/a", to: "x/b", port: 5432, allowed: true },
      { from: "x/a", to: "x/b", port: 5432, allowed: false },
    ],
  },
  {
    name: "podSelector and namespaceSelector in ONE peer are ANDed",
    policies: [
      P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } }, podSelector: { matchLabels: { app: "client" } } }] }] })),
    ],
    probes: [
      { from: "y/b", to: "x/b", allowed: true },
      { from: "z/a", to: "x/b", allowed: true },
      { from: "y/a", to: "x/b", allowed: false },
      { from: "x/a", to: "x/b", allowed: false },
    ],
  },
  {
    name: "podSelector and namespaceSelector in SEPARATE peers are ORed",
    policies: [
      P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } } }, { podSelector: { matchLabels: { app: "web" } } }] }] })),
    ],
    probes: [
      { from: "y/a", to: "x/b", allowed: true },
      { from: "x/a", to: "x/b", allowed: true },
      { from: "x/c", to: "x/b", allowed: true },
    ],
  },
  {
    name: "matchExpressions In and NotIn (NotIn also matches pods without the key)",
    policies: [
      P("x/p", spec({
        podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["db", "cache"] }] },
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["fe"] }] } }] }],
      })),
    ],
    probes: [
      { from: "x/a", to: "x/b", allowed: false },
      { from: "x/c", to: "x/b", allowed: true },
      { from: "z/a", to: "x/b", allowed: true },
      { from: "y/b", to: "x/a", allowed: true },
    ],
  },
  {
    name: "matchExpressions Exists and DoesNotExist, on pods and namespaces",
    policies: [
      P("x/p", spec({
        podSelector: { matchExpressions: [{ key: "tier", operator: "Exists" }] },
        ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: "env", operator: "DoesNotExist" }] } }] }],
      })),
    ],
    probes: [
      { from: "z/a", to: "x/a", allowed: true },
      { from: "y/a", to: "x/a", allowed: false },
      { from: "y/a", to: "x/c", allowed: true },
    ],
  },
  {
    name: "matchLabels and matchExpressions together are ANDed",
    policies: [
      P("x/p", spec({ podSelector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "env", operator: "Exists" }] }, ingress: [] })),
    ],
    probes: [
      { from: "y/a", to: "x/c", allowed: false },
      { from: "y/a", to: "x/a", allowed: true },
    ],
  },
  {
    name: "ipBlock with except, as an ingress peer",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.1.0/24"] } }] }] }))],
    probes: [
      { from: "x/a", to: "x/b", allowed: true },
      { from: "z/a", to: "x/b", allowed: true },
      { from: "y/a", to: "x/b", allowed: false },
      { from: "203.0.113.9", to: "x/b", allowed: false },
    ],
  },
  {
    name: "ipBlock as an egress peer, to pods and to outside addresses",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "203.0.113.0/24", except: ["203.0.113.128/25"] } }, { ipBlock: { cidr: "10.0.1.21/32" } }] }] }))],
    probes: [
      { from: "x/a", to: "203.0.113.9", allowed: true },
      { from: "x/a", to: "203.0.113.200", allowed: false },
      { from: "x/a", to: "y/b", allowed: true },
      { from: "x/a", to: "y/a", allowed: false },
    ],
  },
  {
    name: "ipBlock cidr with host bits is taken as its network",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ ipBlock: { cidr: "10.0.2.99/24" } }] }] }))],
    probes: [
      { from: "z/a", to: "x/b", allowed: true },
      { from: "y/a", to: "x/b", allowed: false },
    ],
  },
  {
    name: "ports by number: only that TCP port",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ ports: [{ protocol: "TCP", port: 5432 }] }] }))],
    probes: [
      { from: "y/a", to: "x/b", port: 5432, allowed: true },
      { from: "y/a", to: "x/b", port: 5433, allowed: false },
      { from: "y/a", to: "x/b", port: 5432, protocol: "UDP", allowed: false },
    ],
  },
  {
    name: "omitted protocol means TCP",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ port: 53 }] }] }))],
    probes: [
      { from: "y/a", to: "x/a", port: 53, protocol: "TCP", allowed: true },
      { from: "y/a", to: "x/a", port: 53, protocol: "UDP", allowed: false },
    ],
  },
  {
    name: "UDP and SCTP ports, and a protocol with no port (every port of it)",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ protocol: "UDP", port: 53 }, { protocol: "SCTP" }] }] }))],
    probes: [
      { from: "y/a", to: "x/a", port: 53, protocol: "UDP", allowed: true },
      { from: "y/a", to: "x/a", port: 7000, protocol: "SCTP", allowed: true },
      { from: "y/a", to: "x/a", port: 1, protocol: "SCTP", allowed: true },
      { from: "y/a", to: "x/a", port: 53, protocol: "TCP", allowed: false },
    ],
  },
  {
    name: "endPort: a range port..endPort inclusive",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ ports: [{ protocol: "TCP", port: 5000, endPort: 5432 }] }] }))],
    probes: [
      { from: "y/a", to: "x/b", port: 5000, allowed: true },
      { from: "y/a", to: "x/b", port: 5432, allowed: true },
      { from: "y/a", to: "x/b", port: 5433, allowed: false },
      { from: "y/a", to: "x/b", port: 4999, allowed: false },
    ],
  },
  {
    name: "ingress named port resolves on the destination (the selected pod) with the same protocol",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ port: "http" }, { port: "dns", protocol: "TCP" }] }] }))],
    probes: [
      { from: "y/b", to: "x/a", port: 80, allowed: true },
      { from: "y/b", to: "x/a", port: 81, allowed: false },
      { from: "y/b", to: "x/c", port: 81, allowed: true },
      { from: "y/b", to: "x/c", port: 80, allowed: false },
      // `dns` is a UDP container port; the policy names it with TCP, so it resolves to nothing.
      { from: "y/b", to: "x/a", port: 53, protocol: "TCP", allowed: false },
      { from: "y/b", to: "x/a", port: 53, protocol: "UDP", allowed: false },
    ],
  },
  {
    name: "egress named port resolves on each destination pod",
    policies: [P("y/p", spec({ podSelector: { matchLabels: { app: "client" } }, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: "http" }] }] }))],
    probes: [
      { from: "y/b", to: "x/a", port: 80, allowed: true },
      { from: "y/b", to: "x/c", port: 81, allowed: true },
      { from: "y/b", to: "x/b", port: 8080, allowed: true },
      { from: "y/b", to: "x/b", port: 80, allowed: false },
      { from: "y/b", to: "x/a", port: 81, allowed: false },
      { from: "y/b", to: "203.0.113.9", port: 80, allowed: false },
    ],
  },
  {
    name: "empty vs absent from/to/ports all mean everything",
    policies: [
      P("x/a-empty-from", spec({ podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [], ports: [] }] })),
      P("x/b-absent", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{}], egress: [{ to: [] }], policyTypes: ["Ingress", "Egress"] })),
    ],
    probes: [
      { from: "203.0.113.9", to: "x/a", port: 1, protocol: "UDP", allowed: true, by: ["x/a-empty-from ingress[0]"] },
      { from: "y/a", to: "x/b", port: 9, protocol: "SCTP", allowed: true, by: ["x/b-absent ingress[0]"] },
      { from: "x/b", to: "203.0.113.9", allowed: true, by: ["x/b-absent egress[0]"] },
    ],
  },
  {
    name: "several policies on one pod: the union of their rules",
    policies: [
      P("x/allow-80", spec({ podSelector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ port: 80 }] }] })),
      P("x/allow-client", spec({ podSelector: { matchLabels: { tier: "fe" } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "client" } } }] }] })),
    ],
    probes: [
      { from: "y/a", to: "x/a", port: 80, allowed: true, by: ["x/allow-80 ingress[0]"] },
      { from: "y/b", to: "x/a", port: 9999, allowed: true, by: ["x/allow-client ingress[0]"] },
      { from: "y/b", to: "x/a", port: 80, allowed: true, by: ["x/allow-80 ingress[0]", "x/allow-client ingress[0]"] },
      { from: "y/a", to: "x/a", port: 9999, allowed: false },
      { from: "y/b", to: "x/c", port: 9999, allowed: false },
    ],
  },
  {
    name: "egress and ingress must both allow",
    policies: [
      P("y/egress", spec({ podSelector: { matchLabels: { app: "client" } }, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: { matchLabels: { team: "red" } } }] }] })),
      P("x/ingress", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } } }] }] })),
    ],
    probes: [
      { from: "y/b", to: "x/b", allowed: true },
      { from: "y/b", to: "y/a", allowed: false },
      { from: "x/a", to: "x/b", allowed: false },
    ],
  },
  {
    name: "host-network pods are not isolated and are matched by ipBlock only",
    policies: [
      P("z/deny-all", spec({ podSelector: {}, policyTypes: ["Ingress", "Egress"] })),
      P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } }, podSelector: {} }] }, { from: [{ ipBlock: { cidr: "192.168.10.11/32" } }], ports: [{ port: 5432 }] }] })),
    ],
    probes: [
      // z/h1 (on n1; x/b is on n2) is in namespace z and labelled app=client, but selectors never match
      // host-network pods.
      { from: "z/h1", to: "x/b", port: 8080, allowed: false },
      { from: "z/h1", to: "x/b", port: 5432, allowed: true, by: ["x/p ingress[1]"] },
      // z/deny-all selects every pod of z, but host-network pods are not isolated.
      { from: "x/a", to: "z/h2", port: 9100, allowed: true },
      { from: "z/h2", to: "y/a", allowed: true },
      { from: "z/a", to: "x/b", port: 8080, allowed: false },
    ],
  },
  {
    name: "a pod's own node is always allowed (host-network pods on the same node)",
    policies: [P("x/deny-all", spec({ podSelector: {}, policyTypes: ["Ingress", "Egress"] }))],
    probes: [
      { from: "z/h1", to: "x/a", allowed: true },
      { from: "x/a", to: "z/h1", allowed: true },
      { from: "z/h2", to: "x/a", allowed: false },
      { from: "x/a", to: "z/h2", allowed: false },
    ],
  },
  {
    name: "pods without an address match no peer, but are still isolated",
    policies: [P("x/p", spec({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }))],
    probes: [
      { from: "x/a", to: "x/c", allowed: true },
      { from: "x/new", to: "x/c", allowed: false },
      { from: "y/b", to: "x/new", allowed: false },
    ],
  },
  {
    name: "an address that belongs to a pod is that pod",
    policies: [P("x/p", spec({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } }, podSelector: { matchLabels: { app: "client" } } }] }] }))],
    probes: [
      { from: "10.0.1.21", to: "x/b", allowed: true },
      { from: "10.0.1.20", to: "x/b", allowed: false },
    ],
  },
  {
    name: "fail closed: an unusable peer is dropped, the rule then allows nothing, and the pod stays isolated",
    policies: [
      P("x/p", spec({
        podSelector: { matchLabels: { app: "db" } },
        ingress: [
          { from: [{ ipBlock: { cidr: "fd00::/64" } }] },
          { from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["11.0.0.0/8"] } }, { podSelector: { matchLabels: { app: "web" } } }] },
          { ports: [{ port: 80, endPort: 79 }] },
        ],
      })),
    ],
    probes: [
      { from: "y/a", to: "x/b", allowed: false },
      { from: "x/a", to: "x/b", allowed: true, by: ["x/p ingress[1]"] },
      { from: "x/a", to: "x/b", port: 80, allowed: true, by: ["x/p ingress[1]"] },
      { from: "z/a", to: "x/b", port: 80, allowed: false },
    ],
  },
];

describe("evaluateConnection (reference semantics)", () => {
  for (const c of CASES) {
    describe(c.name, () => {
      const snapshot = buildSnapshot(NAMESPACES, PODS, c.policies);
      const model = compilePolicies(snapshot);
      const slices = new Map(["n1", "n2"].map((n) => [n, slicePolicyForNode(model, n)]));
      for (const p of c.probes) {
        const port = p.port ?? 80;
        const protocol = p.protocol ?? "TCP";
        it(`${p.from} -> ${p.to} ${protocol}/${port} is ${p.allowed ? "allowed" : "denied"}`, () => {
          const verdict = evaluateConnection(snapshot, { from: endpoint(p.from), to: endpoint(p.to), port, protocol });
          expect(verdict.allowed, verdict.explanation).toBe(p.allowed);
          if (p.by) {
            const decided = verdict.ingress.isolated ? verdict.ingress : verdict.egress;
            expect(decided.allowedBy.map((r) => `${r.policy} ${r.rule}`)).toEqual(p.by);
          }
          // The compiled slices, as the kernel would run them, agree (for endpoints that have addresses).
          const ipOf = (t: string): { ip?: string; node?: string } => {
            if (!t.includes("/")) return { ip: t };
            const pod = PODS.find((q) => `${q.namespace}/${q.name}` === t)!;
            return { ...(pod.ip !== undefined ? { ip: pod.ip } : {}), node: pod.node };
          };
          const src = ipOf(p.from);
          const dst = ipOf(p.to);
          if (src.ip !== undefined && dst.ip !== undefined) {
            const kernel = interpretPacket(
              { srcIp: src.ip, dstIp: dst.ip, protocol, dport: port },
              src.node !== undefined ? slices.get(src.node) : undefined,
              dst.node !== undefined ? slices.get(dst.node) : undefined,
            );
            expect(kernel.allowed, JSON.stringify(kernel)).toBe(verdict.allowed);
          }
        });
      }
    });
  }
});

describe("decisions and explanations", () => {
  const snapshot = buildSnapshot(NAMESPACES, PODS, [
    P("x/deny", spec({ podSelector: {} })),
    P("x/web", spec({ podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "db" } } }], ports: [{ port: 80 }] }] })),
  ]);

  it("names the policy and rule that allowed a connection", () => {
    const v = evaluateConnection(snapshot, { from: { namespace: "x", name: "b" }, to: { namespace: "x", name: "a" }, port: 80, protocol: "TCP" });
    expect(v.allowed).toBe(true);
    expect(v.egress).toMatchObject({ isolated: false, allowed: true });
    expect(v.ingress).toMatchObject({ isolated: true, allowed: true, isolatedBy: ["x/deny", "x/web"], allowedBy: [{ policy: "x/web", rule: "ingress[0]" }] });
    expect(v.explanation).toContain("allowed by x/web ingress[0]");
  });

  it("says a denial is the default deny of the policies that select the pod", () => {
    const v = evaluateConnection(snapshot, { from: { namespace: "y", name: "a" }, to: { namespace: "x", name: "a" }, port: 80, protocol: "TCP" });
    expect(v.allowed).toBe(false);
    expect(v.ingress).toMatchObject({ isolated: true, allowed: false, isolatedBy: ["x/deny", "x/web"], allowedBy: [] });
    expect(v.explanation).toMatch(/DENIED/);
    expect(v.explanation).toContain("denied by default deny: x/a is isolated for ingress by x/deny, x/web");
  });

  it("notes endpoints without an address and unknown pods", () => {
    const v = evaluateConnection(snapshot, { from: { namespace: "x", name: "new" }, to: { namespace: "q", name: "nope" }, port: 80, protocol: "TCP" });
    expect(v.notes).toEqual(["x/new has no address yet: it matches no peer and cannot send or receive", "q/nope is not in the snapshot"]);
  });

  it("does not depend on the order of the snapshot's lists", () => {
    const reversed = buildSnapshot([...NAMESPACES].reverse(), [...PODS].reverse(), [...snapshot.policies].reverse());
    const q = { from: { namespace: "x", name: "b" }, to: { namespace: "x", name: "a" }, port: 80, protocol: "TCP" as const };
    expect(evaluateConnection(reversed, q)).toEqual(evaluateConnection(snapshot, q));
  });
});
