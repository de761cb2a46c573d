import { describe, expect, it } from "vitest";
import { compilePolicies } from "./compile";
import { listPolicyNodes, slicePolicyForNode, sliceHash } from "./slice";
import { subtractCidrs } from "./canonical";
import { buildNamespace, buildPod, buildPolicy, buildSnapshot } from "../../../test/support/policy-builders";

const namespaces = [buildNamespace("x", { team: "a" }), buildNamespace("y", { team: "b" })];
const pods = [
  buildPod("x/web-1", { app: "web" }, { node: "n1", ip: "10.0.0.1", ports: ["http:80/TCP"] }),
  buildPod("x/web-2", { app: "web" }, { node: "n2", ip: "10.0.0.2", ports: ["http:80/TCP"] }),
  buildPod("x/db", { app: "db" }, { node: "n2", ip: "10.0.0.3" }),
  buildPod("y/client", { app: "client" }, { node: "n3", ip: "10.0.1.1" }),
  buildPod("y/host", { app: "client" }, { node: "n3", ip: "192.168.0.3", hostNetwork: true }),
];
const policies = [
  // Two policies whose peers are the same selector written differently: one address group.
  buildPolicy("x/web", { podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "b" } } }] }] }),
  buildPolicy("x/db", {
    podSelector: { matchLabels: { app: "db" } },
    ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: "team", operator: "In", values: ["b"] }] } }, { podSelector: { matchLabels: { app: "web" } } }] }],
  }),
  buildPolicy("y/client", { podSelector: { matchLabels: { app: "client" } }, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/24", except: ["10.0.0.3/32"] } }], ports: [{ port: "http" }] }] }),
];
const snapshot = buildSnapshot(namespaces, pods, policies);

describe("compilePolicies", () => {
  const model = compilePolicies(snapshot);

  it("gives identical selectors one group, whatever their spelling", () => {
    const nsGroups = model.peerGroups.filter((g) => g.kind === "address" && "selector" in g.definition.namespaces);
    expect(nsGroups).toHaveLength(1);
    expect(nsGroups[0]!.members).toEqual(["10.0.1.1"]);
    const webRule = model.policies.find((p) => p.key === "x/web")!.ingress[0]!;
    const dbRule = model.policies.find((p) => p.key === "x/db")!.ingress[0]!;
    expect(dbRule.peers).toContain((webRule.peers as string[])[0]);
  });

  it("address groups hold pod-network pods with an address only (no host-network pods)", () => {
    const web = model.peerGroups.find((g) => g.kind === "address" && "name" in g.definition.namespaces)!;
    expect(web.members).toEqual(["10.0.0.1", "10.0.0.2"]);
  });

  it("gives every group the span of the policies that reference it", () => {
    const nsGroup = model.peerGroups.find((g) => g.kind === "address" && "selector" in g.definition.namespaces)!;
    expect(nsGroup.span).toEqual(["n1", "n2"]);
    const named = model.peerGroups.find((g) => g.kind === "named-port")!;
    expect(named.span).toEqual(["n3"]);
    // The ipBlock minus its except, and the named-port members: x/web-* resolve `http`, x/db is excepted.
    expect(named.members).toEqual([
      ["10.0.0.1", "TCP", 80],
      ["10.0.0.2", "TCP", 80],
    ]);
  });

  it("lists per pod the policies isolating it, never for host-network pods", () => {
    expect(model.pods.find((p) => p.key === "x/db")).toMatchObject({ ingressPolicies: ["x/db"], egressPolicies: [] });
    expect(model.pods.find((p) => p.key === "y/client")).toMatchObject({ ingressPolicies: [], egressPolicies: ["y/client"] });
    expect(model.pods.find((p) => p.key === "y/host")).toMatchObject({ ingressPolicies: [], egressPolicies: [] });
  });

  it("gives rules stable ids and sources", () => {
    const again = compilePolicies(buildSnapshot([...namespaces].reverse(), [...pods].reverse(), [...policies].reverse()));
    expect(again).toEqual(model);
    expect(model.policies.find((p) => p.key === "x/db")!.ingress[0]).toMatchObject({ source: "x/db ingress[0]", id: expect.stringMatching(/^[0-9a-f]{12}$/) });
  });

  it("collects diagnostics, naming the policy and the field path", () => {
    const m = compilePolicies(buildSnapshot(namespaces, pods, [buildPolicy("x/bad", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "2001:db8::/32" } }] }] })]));
    expect(m.diagnostics).toEqual([
      { path: "spec.ingress[0].from[0].ipBlock.cidr", message: expect.stringMatching(/^NetworkPolicy x\/bad: "2001:db8::\/32" is an IPv6 CIDR; IPv6 is not supported/) },
    ]);
    // ...and the pods stay isolated, with a rule that allows nothing.
    expect(m.pods.find((p) => p.key === "x/db")!.ingressPolicies).toEqual(["x/bad"]);
  });
});

describe("slicePolicyForNode", () => {
  const model = compilePolicies(snapshot);

  it("holds only the policies selecting the node's pods and the groups they reference", () => {
    const n1 = slicePolicyForNode(model, "n1");
    expect(n1.chains.flatMap((c) => c.policies)).toEqual(["x/web"]);
    expect(n1.groups.map((g) => g.kind)).toEqual(["address"]);
    expect(n1.pods).toEqual([{ namespace: "x", name: "web-1", ip: "10.0.0.1", interface: expect.stringMatching(/^sy[0-9a-f]{12}$/), ingress: n1.chains[0]!.id }]);
    const n3 = slicePolicyForNode(model, "n3");
    expect(n3.pods.map((p) => p.name)).toEqual(["client"]);
    // The egress rule names its only port, so it matches through the named-port group alone.
    expect(n3.groups.map((g) => g.kind)).toEqual(["named-port"]);
  });

  it("shares one chain between pods selected by the same policies", () => {
    const m = compilePolicies(buildSnapshot(namespaces, [...pods, buildPod("x/web-3", { app: "web" }, { node: "n2", ip: "10.0.0.4" })], policies));
    const n2 = slicePolicyForNode(m, "n2");
    const web = n2.pods.filter((p) => p.name.startsWith("web"));
    expect(web).toHaveLength(2);
    expect(web[0]!.ingress).toBe(web[1]!.ingress);
    expect(n2.chains).toHaveLength(2);
  });

  it("references groups by id, so a big group is shipped once however many rules use it", () => {
    const many = Array.from({ length: 300 }, (_, i) => buildPod(`y/c-${i}`, { app: "client" }, { node: "n3", ip: `10.1.${i >> 8}.${i & 255}` }));
    const rules = Array.from({ length: 20 }, (_, i) => ({ from: [{ namespaceSelector: { matchLabels: { team: "b" } } }], ports: [{ port: 1000 + i }] }));
    const m = compilePolicies(buildSnapshot(namespaces, [...pods, ...many], [buildPolicy("x/big", { podSelector: {}, ingress: rules })]));
    const s = slicePolicyForNode(m, "n2");
    expect(s.groups).toHaveLength(1);
    expect(s.groups[0]!.members).toHaveLength(301);
    expect(JSON.stringify(s).length).toBeLessThan(301 * 20 + 6000);
  });

  it("is JSON-serialisable and hashes by content", () => {
    const s = slicePolicyForNode(model, "n2");
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(sliceHash(JSON.parse(JSON.stringify(s)))).toBe(sliceHash(s));
    expect(sliceHash(slicePolicyForNode(model, "n1"))).not.toBe(sliceHash(s));
    expect(sliceHash(s)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("lists the nodes that run pods", () => {
    expect(listPolicyNodes(model)).toEqual(["n1", "n2", "n3"]);
  });
});

describe("subtractCidrs", () => {
  const cases: [string, string[], string[]][] = [
    ["10.0.0.0/24", [], ["10.0.0.0/24"]],
    ["10.0.0.0/30", ["10.0.0.1/32"], ["10.0.0.0/32", "10.0.0.2/31"]],
    ["10.0.0.0/24", ["10.0.0.0/25", "10.0.0.128/25"], []],
    ["0.0.0.0/0", [], ["0.0.0.0/1", "128.0.0.0/1"]],
    ["0.0.0.0/0", ["128.0.0.0/1"], ["0.0.0.0/1"]],
  ];
  for (const [cidr, except, want] of cases) {
    it(`${cidr} minus [${except.join(", ")}]`, () => expect(subtractCidrs(cidr, except)).toEqual(want));
  }
});
