// What a plan needs that a node lacks, without a kernel: the node's own mode, the devices it keeps to
// receive other modes in use, BIRD when its plan peers, nftables for natOutgoing; kernel features and
// tools are reported with different reasons and sentences.
import { describe, expect, it } from "vitest";
import { ClusterNetworkSpecSchema, type Mode } from "../api/cluster-network";
import { compileRoutingPlan } from "../compile/routing/compile-routing";
import type { RoutingNode } from "../model/routing-plan";
import { checkModeRequirements, type Capabilities, type Feature } from "./capabilities";

const FEATURES: Feature[] = ["vxlan", "ipip", "nftables", "iptables", "ipset", "bird", "wireguard"];
function caps(missing: Feature[]): Capabilities {
  const has = Object.fromEntries(FEATURES.map((f) => [f, !missing.includes(f)]));
  const details = Object.fromEntries(FEATURES.map((f) => [f, missing.includes(f) ? `no ${f} here` : "ok"]));
  return { ...has, details } as Capabilities;
}
const nodes = (mode: Mode): RoutingNode[] => [
  { name: "n1", labels: {}, ip: "192.168.10.11", underlayCIDR: "192.168.10.0/24", block: "10.244.1.0/24", mode },
  { name: "n2", labels: {}, ip: "192.168.10.12", underlayCIDR: "192.168.10.0/24", block: "10.244.2.0/24", mode: "vxlan" },
];
const plan = (mode: Mode, modesInUse: Mode[], natOutgoing = false) =>
  compileRoutingPlan({ spec: ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode, natOutgoing, bgp: mode === "bgp" ? { asNumber: 64512 } : undefined }), nodes: nodes(mode), modesInUse }, "n1");

describe("checkModeRequirements", () => {
  it("is empty when the node has everything", () => {
    expect(checkModeRequirements(plan("bgp", ["bgp", "vxlan", "ipip"], true), caps([]))).toEqual([]);
  });

  it("names the node's own mode first, then what it keeps to receive, then natOutgoing", () => {
    expect(checkModeRequirements(plan("bgp", ["vxlan", "ipip", "bgp"], true), caps(["vxlan", "ipip", "bird", "nftables"]))).toEqual([
      { reason: "ToolMissing", feature: "bird", message: "mode bgp needs BIRD 2 (bird and birdc), which this node lacks (no bird here)" },
      { reason: "KernelFeatureMissing", feature: "vxlan", message: "receiving VXLAN from peers (device sy-vxlan) needs the vxlan kernel module, which this node's kernel lacks (no vxlan here)" },
      { reason: "KernelFeatureMissing", feature: "ipip", message: "receiving IPIP from peers (device sy-ipip) needs the ipip kernel module, which this node's kernel lacks (no ipip here)" },
      { reason: "ToolMissing", feature: "nftables", message: "natOutgoing needs nftables (the nft tool and nf_tables in the kernel), which this node lacks (no nftables here)" },
    ]);
  });

  it("asks for BIRD on a node still sending vxlan once bgp is in use, and nothing of a mode not in use", () => {
    const p = plan("vxlan", ["vxlan", "bgp"]);
    // A node that does not send with bgp still runs BIRD while its plan has a bgp part.
    expect(checkModeRequirements({ ...p, bgp: { asNumber: 1, routerId: "192.168.10.11", podCIDRs: ["10.244.0.0/16"], blockSize: 24, originate: [], kernelMetric: 100, peers: [], underlayInterface: "eth*" } }, caps(["bird", "ipip"]))).toEqual([
      { reason: "ToolMissing", feature: "bird", message: "BGP peering in this plan needs BIRD 2 (bird and birdc), which this node lacks (no bird here)" },
    ]);
    expect(checkModeRequirements(plan("host-gw", ["host-gw"]), caps(["vxlan", "ipip", "bird", "wireguard"]))).toEqual([]);
  });
});
