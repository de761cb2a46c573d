// Representative policy slices for the golden files of render/nftables.ts and render/iptables.ts.
// `npx tsx hack/gen-golden.ts` rewrites test/golden/policy/<name>.{slice.json,nft,iptables,ipset} from
// these; the render tests compare byte for byte. Change a case here, regenerate, review the diff.
import type { PolicySnapshot } from "../../../src/model/cluster";
import { compilePolicies } from "../../../src/compile/policy/compile";
import { type NodePolicySlice, slicePolicyForNode } from "../../../src/compile/policy/slice";
import { buildNamespace, buildPod, buildPolicy, buildSnapshot } from "../../support/policy-builders";
import { renderNftables } from "../../../src/render/nftables";
import { renderIptables } from "../../../src/render/iptables";

export interface GoldenCase {
  readonly name: string;
  readonly description: string;
  readonly snapshot: PolicySnapshot;
  readonly node: string;
}

const shop = buildSnapshot(
  [buildNamespace("prod", { team: "shop" }), buildNamespace("monitoring", { team: "ops" }), buildNamespace("kube-system")],
  [
    buildPod("prod/web-1", { app: "web" }, { node: "n1", ip: "10.244.1.10", ports: ["http:8080/TCP", "metrics:9090/TCP"] }),
    buildPod("prod/web-2", { app: "web" }, { node: "n1", ip: "10.244.1.11", ports: ["http:8080/TCP", "metrics:9090/TCP"] }),
    // Same policies as web-1/web-2, but its named port `http` resolves to another number: its own chain.
    buildPod("prod/web-canary", { app: "web", track: "canary" }, { node: "n1", ip: "10.244.1.12", ports: ["http:8081/TCP", "metrics:9090/TCP"] }),
    buildPod("prod/db-0", { app: "db" }, { node: "n1", ip: "10.244.1.20", ports: ["pg:5432/TCP"] }),
    buildPod("prod/db-1", { app: "db" }, { node: "n2", ip: "10.244.2.20", ports: ["pg:5432/TCP"] }),
    buildPod("prod/starting", { app: "web" }, { node: "n1", ports: ["http:8080/TCP"] }),
    buildPod("monitoring/prometheus", { app: "prometheus" }, { node: "n2", ip: "10.244.2.30" }),
    buildPod("kube-system/coredns", { k8s_app: "kube-dns" }, { node: "n2", ip: "10.244.2.53", ports: ["dns:53/UDP", "dns-tcp:53/TCP"] }),
    buildPod("kube-system/node-exporter-n1", { app: "node-exporter" }, { node: "n1", ip: "192.168.10.11", hostNetwork: true, ports: ["metrics:9100/TCP"] }),
  ],
  [
    buildPolicy("prod/default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }),
    buildPolicy("prod/web", {
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        { from: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.244.0.0/16"] } }], ports: [{ port: "http" }] },
        { from: [{ namespaceSelector: { matchLabels: { team: "ops" } }, podSelector: { matchLabels: { app: "prometheus" } } }], ports: [{ port: "metrics" }] },
      ],
      egress: [
        { to: [{ podSelector: { matchLabels: { app: "db" } } }], ports: [{ port: 5432 }] },
        { to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { k8s_app: "kube-dns" } } }], ports: [{ port: 53, protocol: "UDP" }, { port: 53 }] },
      ],
    }),
    buildPolicy("prod/db", {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }, { podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["db"] }] } }], ports: [{ port: "pg" }] }],
    }),
  ],
);

const protocols = buildSnapshot(
  [buildNamespace("lab")],
  [
    buildPod("lab/server", { role: "server" }, { node: "n1", ip: "10.244.1.5", ports: ["sip:5060/UDP", "assoc:9000/SCTP"] }),
    buildPod("lab/client", { role: "client" }, { node: "n1", ip: "10.244.1.6" }),
    buildPod("lab/peer", { role: "peer" }, { node: "n2", ip: "10.244.2.6", ports: ["assoc:9001/SCTP", "sip:5061/UDP"] }),
  ],
  [
    buildPolicy("lab/server-ports", {
      podSelector: { matchLabels: { role: "server" } },
      ingress: [
        {
          ports: [
            { protocol: "TCP", port: 80 },
            { protocol: "TCP", port: 8000, endPort: 8100 },
            { protocol: "TCP", port: 8050, endPort: 8200 },
            { protocol: "UDP", port: "sip" },
            { protocol: "SCTP", port: "assoc" },
            { protocol: "SCTP", port: 36412 },
            { protocol: "UDP" },
          ],
        },
        // 20 single TCP ports: more than one multiport match can hold (15 slots).
        { from: [{ podSelector: { matchLabels: { role: "client" } } }], ports: Array.from({ length: 20 }, (_, i) => ({ port: 2000 + 2 * i })) },
      ],
    }),
    buildPolicy("lab/client-egress", {
      podSelector: { matchLabels: { role: "client" } },
      policyTypes: ["Egress"],
      egress: [
        // Named ports resolve per destination: server's assoc is 9000, peer's is 9001.
        { to: [{ podSelector: {} }], ports: [{ protocol: "SCTP", port: "assoc" }, { protocol: "UDP", port: "sip" }, { protocol: "TCP", port: 443 }] },
        { to: [{ ipBlock: { cidr: "198.51.100.0/24", except: ["198.51.100.0/28", "198.51.100.128/25"] } }] },
      ],
    }),
  ],
);

const unisolated = buildSnapshot(
  [buildNamespace("default")],
  [buildPod("default/a", {}, { node: "n1", ip: "10.244.1.2" }), buildPod("default/b", {}, { node: "n1", ip: "10.244.1.3" })],
  [buildPolicy("default/elsewhere", { podSelector: { matchLabels: { app: "none" } } })],
);

const longNames = buildSnapshot(
  [buildNamespace("a-namespace-with-a-rather-long-name-that-is-still-valid-0123")],
  [buildPod("a-namespace-with-a-rather-long-name-that-is-still-valid-0123/p", { app: "p" }, { node: "n1", ip: "10.244.1.7" })],
  [
    buildPolicy(`a-namespace-with-a-rather-long-name-that-is-still-valid-0123/${"policy-name-".repeat(8)}end`, {
      podSelector: {},
      ingress: [{ from: [{ podSelector: {} }] }],
    }),
  ],
);

export const GOLDEN_CASES: readonly GoldenCase[] = [
  { name: "shop-n1", description: "default deny, named ports resolved per pod (two ingress chains), ipBlock with except, DNS egress, an unaddressed pod, a host-network pod", snapshot: shop, node: "n1" },
  { name: "protocols-n1", description: "TCP/UDP/SCTP, ranges and merging, protocol-only ports, multiport chunking, egress named ports per destination, excepts", snapshot: protocols, node: "n1" },
  { name: "unisolated-n1", description: "pods but no policy selecting them: empty maps, no chains", snapshot: unisolated, node: "n1" },
  { name: "long-names-n1", description: "comments longer than nft's 128 bytes are shortened with a hash", snapshot: longNames, node: "n1" },
];

export function sliceGoldenCase(c: GoldenCase): NodePolicySlice {
  return slicePolicyForNode(compilePolicies(c.snapshot), c.node);
}

/** The golden files of one case: file name (inside test/golden/policy/) -> exact content. */
export function renderGoldenFiles(c: GoldenCase): [string, string][] {
  const slice = sliceGoldenCase(c);
  const ipt = renderIptables(slice);
  return [
    [`${c.name}.slice.json`, `${JSON.stringify(slice, null, 2)}\n`],
    [`${c.name}.nft`, renderNftables(slice)],
    [`${c.name}.iptables`, ipt.iptables],
    [`${c.name}.ipset`, ipt.ipset],
  ];
}
