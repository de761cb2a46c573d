// Bad input on the real kernel: a policy the engine cannot honour (an ipBlock that is not a valid CIDR,
// as could slip past an API server without validation) is reported with its name and field path, fails
// closed for what it selects, and the rest of the ruleset still applies. Namespaces: prefix sybi-.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyNftRuleset } from "../../src/agent/policy/nftables";
import { compilePolicies, slicePolicyForNode } from "../../src/compile/policy";
import type { PolicySnapshot } from "../../src/model/cluster";
import { probe, startPodAgent } from "../../lab/pods";
import { addPod, createLab, destroyLab, installStaticPodRoutes, type Lab } from "../../lab/topology";
import { renderNftables } from "../../src/render/nftables";

const PREFIX = "sybi-";
const pods = [
  { namespace: "shop", name: "web", node: "n1", ip: "10.0.1.10", labels: { app: "web" } },
  { namespace: "shop", name: "db", node: "n2", ip: "10.0.2.10", labels: { app: "db" } },
  { namespace: "shop", name: "cache", node: "n2", ip: "10.0.2.11", labels: { app: "cache" } },
  { namespace: "other", name: "client", node: "n1", ip: "10.0.1.20", labels: { app: "client" } },
];
const np = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace: "shop", name }, spec });

const snapshot: PolicySnapshot = {
  namespaces: ["shop", "other"].map((n) => ({ name: n, labels: { "kubernetes.io/metadata.name": n } })),
  pods: pods.map((p) => ({ ...p, hostNetwork: false, ports: [{ name: "http", containerPort: 80, protocol: "TCP" as const }] })),
  policies: [
    // Good: db admits only web on 80.
    np("db-from-web", { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: 80 }] }] }),
    // Bad: an ipBlock that is not a CIDR. It must not open the cache to everyone, nor break db-from-web.
    np("cache-broken", { podSelector: { matchLabels: { app: "cache" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/33" } }, { podSelector: { matchLabels: { app: "web" } } }] }] }),
  ],
};

describe("a policy the engine cannot honour", () => {
  let lab: Lab;
  beforeAll(async () => {
    await destroyLab(PREFIX);
    lab = await createLab({ prefix: PREFIX, nodes: 2, subnets: 1, podBlocks: ["10.0.1.0/24", "10.0.2.0/24"] });
    for (const p of pods) await addPod(lab, p);
    await installStaticPodRoutes(lab);
    await Promise.all(pods.map((p) => startPodAgent(lab, p, [{ port: 80, protocol: "TCP" }])));
  });
  afterAll(async () => {
    await destroyLab(PREFIX);
  });

  it("is reported with its name and field path", () => {
    const model = compilePolicies(snapshot);
    const d = model.diagnostics.find((x) => x.message.includes("shop/cache-broken"));
    expect(d, JSON.stringify(model.diagnostics)).toBeDefined();
    expect(d!.path).toBe("spec.ingress[0].from[0].ipBlock.cidr");
  });

  it("leaves the rest of the ruleset in force and fails closed for the broken peer", async () => {
    const model = compilePolicies(snapshot);
    for (const node of lab.nodes) {
      const r = await applyNftRuleset(node.netns, renderNftables(slicePolicyForNode(model, node.name)));
      expect(r.ok, r.ok ? "" : r.error).toBe(true);
    }
    const reach = async (from: string, to: string) => {
      const src = pods.find((p) => p.name === from)!;
      const dst = pods.find((p) => p.name === to)!;
      return (await probe(lab, src, dst.ip, 80, "TCP", 600)).ok;
    };
    expect(await reach("web", "db")).toBe(true); // the good policy allows
    expect(await reach("client", "db")).toBe(false); // and isolates
    expect(await reach("web", "cache")).toBe(true); // the broken policy's valid peer still applies
    expect(await reach("client", "cache")).toBe(false); // the invalid ipBlock opened nothing
  });
});
