import { describe, expect, it } from "vitest";
import { NetworkPolicySchema, parseNetworkPolicy } from "./network-policy";

const policy = (spec: unknown, meta: Record<string, unknown> = { namespace: "x", name: "p" }): unknown => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: meta,
  spec,
});

describe("parseNetworkPolicy: API defaults", () => {
  it("an omitted port protocol is TCP", () => {
    const r = parseNetworkPolicy(policy({ podSelector: {}, ingress: [{ ports: [{ port: 80 }, { protocol: "UDP", port: 53 }] }] }));
    expect(r.diagnostics).toEqual([]);
    expect(r.policy!.ingress[0]!.ports).toEqual([{ protocol: "TCP", port: 80 }, { protocol: "UDP", port: 53 }]);
  });

  const implied: [string, unknown, { ingress: boolean; egress: boolean }][] = [
    ["no rules: Ingress", { podSelector: {} }, { ingress: true, egress: false }],
    ["egress rules: Ingress and Egress", { podSelector: {}, egress: [{}] }, { ingress: true, egress: true }],
    ["`egress: []`: Ingress only (len(egress) == 0)", { podSelector: {}, egress: [] }, { ingress: true, egress: false }],
    ["`policyTypes: []` is defaulted like an absent list", { podSelector: {}, policyTypes: [], egress: [{}] }, { ingress: true, egress: true }],
    ["explicit Egress only", { podSelector: {}, policyTypes: ["Egress"], ingress: [{}] }, { ingress: false, egress: true }],
  ];
  for (const [name, spec, want] of implied) {
    it(`policyTypes, ${name}`, () => {
      expect(parseNetworkPolicy(policy(spec)).policy!.policyTypes).toEqual(want);
    });
  }

  it("rules of a direction not in policyTypes are dropped", () => {
    const r = parseNetworkPolicy(policy({ podSelector: {}, policyTypes: ["Egress"], ingress: [{}], egress: [{}] }));
    expect(r.policy!.ingress).toEqual([]);
    expect(r.policy!.egress).toHaveLength(1);
  });

  it("absent and empty from/ports both mean everything", () => {
    const r = parseNetworkPolicy(policy({ podSelector: {}, ingress: [{}, { from: [], ports: [] }, { from: null, ports: null }] }));
    expect(r.policy!.ingress).toEqual([
      { peers: "any", ports: "any" },
      { peers: "any", ports: "any" },
      { peers: "any", ports: "any" },
    ]);
  });

  it("normalizes selectors: matchLabels become In requirements, sorted and de-duplicated", () => {
    const r = parseNetworkPolicy(
      policy({ podSelector: { matchLabels: { b: "2", a: "1" }, matchExpressions: [{ key: "a", operator: "In", values: ["1"] }, { key: "c", operator: "NotIn", values: ["y", "x", "y"] }] } }),
    );
    expect(r.policy!.podSelector.requirements).toEqual([
      { key: "a", operator: "In", values: ["1"] },
      { key: "b", operator: "In", values: ["2"] },
      { key: "c", operator: "NotIn", values: ["x", "y"] },
    ]);
  });

  it("resolves a podSelector-only peer to the policy's namespace and masks ipBlock host bits", () => {
    const r = parseNetworkPolicy(policy({ podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }, { ipBlock: { cidr: "10.0.0.10/4", except: ["10.0.0.11/32"] } }] }] }));
    expect(r.policy!.ingress[0]!.peers).toEqual([
      { kind: "pods", namespaces: { name: "x" }, pods: { requirements: [{ key: "app", operator: "In", values: ["a"] }] } },
      { kind: "ipBlock", cidr: "0.0.0.0/4", except: ["10.0.0.11/32"] },
    ]);
  });
});

describe("parseNetworkPolicy: what the engine cannot honour fails closed", () => {
  const cases: { name: string; rule: unknown; path: string; message: RegExp; peers?: unknown; ports?: unknown }[] = [
    {
      name: "an invalid cidr drops that peer only",
      rule: { from: [{ ipBlock: { cidr: "10.0.0.0/33" } }, { podSelector: {} }] },
      path: "spec.ingress[0].from[0].ipBlock.cidr",
      message: /NetworkPolicy x\/p: "10.0.0.0\/33" is not a valid IPv4 CIDR.*this peer is ignored/,
      peers: [{ kind: "pods", namespaces: { name: "x" }, pods: { requirements: [] } }],
    },
    {
      name: "an IPv6 cidr is reported as unsupported, and the rule with no peer left allows nothing",
      rule: { from: [{ ipBlock: { cidr: "fd00::/64" } }] },
      path: "spec.ingress[0].from[0].ipBlock.cidr",
      message: /IPv6 is not supported/,
      peers: [],
    },
    {
      name: "an except outside its cidr",
      rule: { from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.1.0.0/24"] } }] },
      path: "spec.ingress[0].from[0].ipBlock.except[0]",
      message: /not strictly inside cidr 10.0.0.0\/16/,
      peers: [],
    },
    {
      name: "an except equal to its cidr",
      rule: { from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.0.0/16"] } }] },
      path: "spec.ingress[0].from[0].ipBlock.except[0]",
      message: /not strictly inside/,
      peers: [],
    },
    {
      name: "endPort below port drops that port entry only",
      rule: { ports: [{ port: 90, endPort: 80 }, { port: 443 }] },
      path: "spec.ingress[0].ports[0].endPort",
      message: /endPort 80 is below port 90/,
      ports: [{ protocol: "TCP", port: 443 }],
    },
    {
      name: "endPort with a named port",
      rule: { ports: [{ port: "http", endPort: 80 }] },
      path: "spec.ingress[0].ports[0].endPort",
      message: /endPort cannot be used with the named port "http"/,
      ports: [],
    },
    {
      name: "an unknown protocol",
      rule: { ports: [{ protocol: "ICMP", port: 1 }] },
      path: "spec.ingress[0].ports[0].protocol",
      message: /must be one of "TCP", "UDP", "SCTP"/,
      ports: [],
    },
    {
      name: "a malformed port name",
      rule: { ports: [{ port: "80" }] },
      path: "spec.ingress[0].ports[0].port",
      message: /neither a port number nor a valid port name/,
      ports: [],
    },
    {
      name: "a peer with ipBlock and a selector",
      rule: { from: [{ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }] },
      path: "spec.ingress[0].from[0]",
      message: /cannot be combined/,
      peers: [],
    },
    {
      name: "an empty peer",
      rule: { from: [{}] },
      path: "spec.ingress[0].from[0]",
      message: /must set podSelector, namespaceSelector or ipBlock/,
      peers: [],
    },
    {
      name: "a selector requirement In without values",
      rule: { from: [{ podSelector: { matchExpressions: [{ key: "a", operator: "In" }] } }] },
      path: "spec.ingress[0].from[0].podSelector.matchExpressions[0].values",
      message: /at least one value/,
      peers: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = parseNetworkPolicy(policy({ podSelector: {}, ingress: [c.rule, {}] }));
      expect(r.diagnostics.map((d) => d.path)).toEqual([c.path]);
      expect(r.diagnostics[0]!.message).toMatch(c.message);
      expect(r.diagnostics[0]!.message).toMatch(/^NetworkPolicy x\/p: /);
      const rule = r.policy!.ingress[0]!;
      if (c.peers !== undefined) expect(rule.peers).toEqual(c.peers);
      if (c.ports !== undefined) expect(rule.ports).toEqual(c.ports);
      // The rest of the policy stays in force (rule indices kept).
      expect(r.policy!.ingress[1]).toEqual({ peers: "any", ports: "any" });
      expect(r.policy!.policyTypes.ingress).toBe(true);
    });
  }

  it("a malformed rule is kept as a rule that allows nothing", () => {
    const r = parseNetworkPolicy(policy({ podSelector: {}, ingress: [{ from: "everyone" }, {}] }));
    expect(r.diagnostics[0]!.path).toBe("spec.ingress[0].from");
    expect(r.policy!.ingress).toEqual([{ peers: [], ports: [] }, { peers: "any", ports: "any" }]);
  });

  it("an unreadable podSelector widens the policy to the whole namespace", () => {
    const r = parseNetworkPolicy(policy({ podSelector: { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] } }));
    expect(r.diagnostics[0]!.message).toMatch(/applied to every pod in namespace x instead \(fail closed\)/);
    expect(r.policy!.podSelector).toEqual({ requirements: [] });
  });

  it("unreadable policyTypes isolate both directions", () => {
    const r = parseNetworkPolicy(policy({ podSelector: {}, policyTypes: ["Ingress", "Sideways"] }));
    expect(r.diagnostics[0]!.path).toBe("spec.policyTypes[1]");
    expect(r.policy!.policyTypes).toEqual({ ingress: true, egress: true });
  });

  it("a missing spec denies everything for the namespace", () => {
    const r = parseNetworkPolicy({ metadata: { namespace: "x", name: "p" } });
    expect(r.policy).toMatchObject({ policyTypes: { ingress: true, egress: true }, ingress: [], egress: [] });
    expect(r.diagnostics[0]!.path).toBe("spec");
  });

  it("an object without namespace cannot be applied", () => {
    const r = parseNetworkPolicy(policy({ podSelector: {} }, { name: "p" }));
    expect(r.policy).toBeUndefined();
    expect(r.diagnostics).toEqual([{ path: "metadata.namespace", message: "NetworkPolicy ?/p: has no namespace, so it cannot be applied to any pod" }]);
  });
});

describe("NetworkPolicySchema", () => {
  it("accepts a full API object and rejects an unknown spec field", () => {
    const ok = policy({
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: {} }, { ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }], ports: [{ port: "http" }, { protocol: "SCTP", port: 80, endPort: 90 }] }],
      egress: [{ to: [], ports: [] }],
    });
    expect(NetworkPolicySchema.safeParse(ok).success).toBe(true);
    expect(NetworkPolicySchema.safeParse(policy({ podSelector: {}, bogus: 1 })).success).toBe(false);
  });
});
