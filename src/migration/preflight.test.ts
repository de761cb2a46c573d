// Preflight blockers, each with the nodes named: a capability the target mode needs and a node lacks (or
// has not reported), pairs the target cannot serve (host-gw or a BGP mesh across subnets), and an explicit
// MTU that leaves no room for the target's overhead.
import { describe, expect, it } from "vitest";
import { ClusterNetworkSpecSchema, type Mode } from "../api/cluster-network";
import type { ClusterNode } from "../model/cluster";
import { preflightBlockers } from "./preflight";

/** n1, n2 on 192.168.10.0/24; n3 on 192.168.20.0/24 with a 9000-byte underlay. */
const NODES: ClusterNode[] = [
  { name: "n1", labels: { rack: "a" }, ip: "192.168.10.11", underlayCIDR: "192.168.10.0/24" },
  { name: "n2", labels: { rack: "a" }, ip: "192.168.10.12", underlayCIDR: "192.168.10.0/24" },
  { name: "n3", labels: { rack: "b" }, ip: "192.168.20.13", underlayCIDR: "192.168.20.0/24", underlayMtu: 9000 },
];
const ONE_SUBNET = NODES.slice(0, 2);
const BLOCKS = { n1: "10.244.1.0/24", n2: "10.244.2.0/24", n3: "10.244.3.0/24" };
const ALL_CAPS = { vxlan: true, ipip: true, bird: true, nftables: true };
const spec = (extra: Record<string, unknown> = {}) => ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "vxlan", ...extra });
const caps = (nodes: readonly ClusterNode[], override: Record<string, Record<string, boolean> | undefined> = {}) =>
  new Map(nodes.map((n) => [n.name, n.name in override ? override[n.name] : ALL_CAPS]));

describe("preflightBlockers", () => {
  it.each(["vxlan", "ipip", "bgp", "host-gw"] as Mode[])("nothing blocks %s on one subnet when every node has what it needs", (to) => {
    const s = spec(to === "bgp" ? { mode: to, bgp: { asNumber: 64512 } } : { mode: to });
    expect(preflightBlockers(to, s, ONE_SUBNET, BLOCKS, caps(ONE_SUBNET), {})).toEqual([]);
  });

  it("a node without the target's kernel module, and one whose agent has not reported yet", () => {
    expect(preflightBlockers("ipip", spec(), ONE_SUBNET, BLOCKS, caps(ONE_SUBNET, { n1: { ...ALL_CAPS, ipip: false }, n2: undefined }), {})).toEqual([
      "n2: the agent has not reported the node's capabilities yet",
      "n1: mode ipip needs the ipip kernel module, which the node lacks",
    ]);
  });

  it("nodes without BIRD block bgp, named with what to install", () => {
    const s = spec({ mode: "bgp", bgp: { asNumber: 64512 } });
    expect(preflightBlockers("bgp", s, ONE_SUBNET, BLOCKS, caps(ONE_SUBNET, { n1: { ...ALL_CAPS, bird: false }, n2: { ...ALL_CAPS, bird: false } }), {})).toEqual([
      "n1, n2: mode bgp needs BIRD 2 (bird2 package), which the node lacks",
    ]);
  });

  it("host-gw across subnets: every pair through the router, one blocker per reason", () => {
    const reason = (peer: string, peerIp: string, peerNet: string, self: string, selfNet: string) =>
      `host-gw needs L2 adjacency: ${peer} (${peerIp}) is on ${peerNet}, ${self} on ${selfNet}; use vxlan or ipip (crossSubnet), or bgp with top-of-rack peers`;
    expect(preflightBlockers("host-gw", spec(), NODES, BLOCKS, caps(NODES), {})).toEqual([
      `1 node pair(s) cannot be served (n1->n3): ${reason("n3", "192.168.20.13", "192.168.20.0/24", "n1", "192.168.10.0/24")}`,
      `1 node pair(s) cannot be served (n2->n3): ${reason("n3", "192.168.20.13", "192.168.20.0/24", "n2", "192.168.10.0/24")}`,
      `1 node pair(s) cannot be served (n3->n1): ${reason("n1", "192.168.10.11", "192.168.10.0/24", "n3", "192.168.20.0/24")}`,
      `1 node pair(s) cannot be served (n3->n2): ${reason("n2", "192.168.10.12", "192.168.10.0/24", "n3", "192.168.20.0/24")}`,
    ]);
  });

  it("a BGP mesh across subnets, with the spec's settings or the source's kept ones; top-of-rack peers can serve it", () => {
    const mesh = [
      "2 node pair(s) cannot be served (n1->n3, n2->n3): BGP full-mesh cannot reach n3 on 192.168.20.0/24 from 192.168.10.0/24: iBGP next hops on another subnet do not resolve; use topology tor",
      "1 node pair(s) cannot be served (n3->n1): BGP full-mesh cannot reach n1 on 192.168.10.0/24 from 192.168.20.0/24: iBGP next hops on another subnet do not resolve; use topology tor",
      "1 node pair(s) cannot be served (n3->n2): BGP full-mesh cannot reach n2 on 192.168.10.0/24 from 192.168.20.0/24: iBGP next hops on another subnet do not resolve; use topology tor",
    ];
    expect(preflightBlockers("bgp", spec({ mode: "bgp", bgp: { asNumber: 64512 } }), NODES, BLOCKS, caps(NODES), {})).toEqual(mesh);
    expect(preflightBlockers("bgp", spec(), NODES, BLOCKS, caps(NODES), { bgp: { asNumber: 64512, topology: "full-mesh" } })).toEqual(mesh);
    const tor = {
      asNumber: 64512,
      topology: "tor",
      peers: [
        { address: "192.168.10.1", asNumber: 65000, nodeSelector: { matchLabels: { rack: "a" } } },
        { address: "192.168.20.1", asNumber: 65000, nodeSelector: { matchLabels: { rack: "b" } } },
      ],
    };
    expect(preflightBlockers("bgp", spec({ mode: "bgp", bgp: tor }), NODES, BLOCKS, caps(NODES), {})).toEqual([]);
  });

  it("an explicit MTU too large for the target's overhead names the nodes whose underlay is too small", () => {
    expect(preflightBlockers("vxlan", spec({ mtu: 1460 }), NODES, BLOCKS, caps(NODES), {})).toEqual([
      "n1, n2: spec.mtu 1460 leaves no room for vxlan's 50 bytes of overhead on a 1500-byte underlay; lower spec.mtu or set it to 0 (auto)",
    ]);
    expect(preflightBlockers("ipip", spec({ mtu: 1481 }), ONE_SUBNET, BLOCKS, caps(ONE_SUBNET), {})).toEqual([
      "n1, n2: spec.mtu 1481 leaves no room for ipip's 20 bytes of overhead on a 1500-byte underlay; lower spec.mtu or set it to 0 (auto)",
    ]);
    expect(preflightBlockers("ipip", spec({ mtu: 1480 }), ONE_SUBNET, BLOCKS, caps(ONE_SUBNET), {})).toEqual([]);
    expect(preflightBlockers("host-gw", spec({ mtu: 1500 }), ONE_SUBNET, BLOCKS, caps(ONE_SUBNET), {})).toEqual([]);
  });
});
