import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { basePlanSpec, injected, PLAN_INJECTIONS, specPath } from "../../test/fixtures/plan-injections";
import { diagnosticsFromZod, formatPath } from "./diagnostics";
import { NodeNetworkSpecSchema } from "./node-network";
import { PolicySectionSchema, RoutingPlanSchema } from "./node-plan";

const dir = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function pathsOf(spec: unknown): string[] {
  const r = NodeNetworkSpecSchema.safeParse(spec);
  return r.success ? [] : diagnosticsFromZod(r.error).map((d) => `spec.${d.path}`);
}

describe("the controller's own plans fit the strict plan schema", () => {
  const files = readdirSync(dir("../../test/golden/plans/")).filter((f) => f.endsWith(".json"));
  for (const file of files) {
    it(`test/golden/plans/${file}: every node's spec parses`, () => {
      const { plans } = JSON.parse(readFileSync(dir(`../../test/golden/plans/${file}`), "utf8")) as { plans: Record<string, unknown> };
      for (const [node, spec] of Object.entries(plans)) expect(pathsOf(spec), `${file} ${node}`).toEqual([]);
    });
  }
  const slices = readdirSync(dir("../../test/golden/policy/")).filter((f) => f.endsWith(".slice.json"));
  for (const file of slices) {
    it(`test/golden/policy/${file}: the slice parses as a policy section`, () => {
      const slice = JSON.parse(readFileSync(dir(`../../test/golden/policy/${file}`), "utf8")) as Record<string, unknown>;
      const r = PolicySectionSchema.safeParse({ ...slice, backend: "iptables" });
      expect(r.success ? [] : r.error.issues.map((i) => formatPath(i.path))).toEqual([]);
    });
  }
  it("the base plan of the injection table parses (so each case below fails for its one value)", () => {
    expect(pathsOf(basePlanSpec())).toEqual([]);
  });
});

describe("plans are data: the schema refuses every value that would be syntax", () => {
  for (const c of PLAN_INJECTIONS) {
    it(`${c.name} (${specPath(c.at)})`, () => {
      const paths = pathsOf(injected(basePlanSpec(), c.at, c.value));
      const want = specPath(c.at);
      // The refusal names the value's path (or a part of the value), or the union holding it (a union may report at itself).
      const hit = paths.find((p) => p.startsWith(want) || (want.startsWith(p) && p.split(/[.[]/).length >= 5));
      expect(hit, `expected a problem at or just above ${want}, got ${JSON.stringify(paths)}`).toBeDefined();
    });
  }
});

describe("references inside a policy section resolve", () => {
  const base = () => basePlanSpec()["policy"] as Record<string, unknown>;
  const problems = (policy: unknown) => {
    const r = PolicySectionSchema.safeParse(policy);
    return r.success ? [] : r.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
  };
  it("a pod naming a chain the slice does not have", () => {
    expect(problems(injected(base(), ["pods", 0, "egress"], "000000000000"))).toEqual(["pods[0].egress: names chain 000000000000, which the slice does not have"]);
  });
  it("a rule naming a named-port group as an address group, and an address group as a named-port group", () => {
    const p = injected(injected(base(), ["chains", 0, "rules", 0, "peers", 0], "576e6790a092"), ["chains", 0, "rules", 0, "namedPorts"], "f24414cae51a");
    expect(problems(p)).toEqual([
      "chains[0].rules[0].peers[0]: names group 576e6790a092, which the slice has no address or cidr group of",
      "chains[0].rules[0].namedPorts: names group f24414cae51a, which the slice has no named-port group of",
    ]);
  });
  it("a port range that ends before it starts", () => {
    expect(problems(injected(base(), ["chains", 0, "rules", 0, "ports", 0, "ranges", 0], [444, 443]))).toHaveLength(1);
  });
  it("a cidr group member that is a bare address, and an address member that is a triple", () => {
    const p = injected(injected(base(), ["groups", 0, "members", 0], "198.51.100.16"), ["groups", 2, "members", 0], ["10.244.1.5", "UDP", 5060]);
    expect(problems(p)).toEqual(["groups[0].members[0]: must be an IPv4 CIDR in a cidr group", "groups[2].members[0]: must be an IPv4 address in a address group"]);
  });
});

describe("routing section", () => {
  it("a host-gw plan without devices, routes or BGP parses", () => {
    const routing = { node: "n1", nodeIP: "192.168.1.10", underlayCIDR: "192.168.1.0/24", mode: "host-gw", podMtu: 1500, devices: {}, neighbors: [], fdb: [], routes: [], peers: [], nat: { enabled: false, podCIDRs: [], nodeIP: "192.168.1.10" }, diagnostics: [] };
    expect(RoutingPlanSchema.safeParse(routing).success).toBe(true);
  });
});
