// A NodeNetwork plan for tests that need one the CRD accepts (the emulator validates routing and policy
// strictly since they are rendered into kernel text), and a NodeNetwork CRD whose plan sections are opaque
// again, for the emulator's own tests of how it stores, patches and shares values it does not interpret.
import { nodeNetworkCrd } from "../../src/api/crd/crds";

/** The smallest valid routing and policy sections for `node` (host-gw, no peers, no pods). */
export function minimalPlan(node: string, nodeIP = "192.168.1.10"): { routing: Record<string, unknown>; policy: Record<string, unknown> } {
  return {
    routing: {
      node,
      nodeIP,
      underlayCIDR: "192.168.1.0/24",
      mode: "host-gw",
      podMtu: 1500,
      devices: {},
      neighbors: [],
      fdb: [],
      routes: [],
      peers: [],
      nat: { enabled: false, podCIDRs: ["10.244.0.0/16"], nodeIP },
      diagnostics: [],
    },
    policy: { version: 1, node, pods: [], chains: [], groups: [], backend: "nftables" },
  };
}

/** The NodeNetwork CRD with spec.routing and spec.policy as opaque objects (preserve-unknown-fields). */
export function opaquePlanNodeNetworkCrd(): Record<string, unknown> {
  const crd = structuredClone(nodeNetworkCrd()) as { spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }[] } };
  const props = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties;
  for (const section of ["routing", "policy"]) {
    props[section] = { type: "object", description: `opaque ${section} (test CRD)`, "x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-map-type": "atomic" };
  }
  return crd;
}
