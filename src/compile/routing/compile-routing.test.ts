import { describe, expect, it } from "vitest";
import { ClusterNetworkSpecSchema, type Mode } from "../../api/cluster-network";
import { compileRoutingPlan, refusedPeers } from "./compile-routing";
import { vtepMac } from "../../modes/vxlan";
import { METRIC, type RoutingInput, type RoutingNode } from "../../model/routing-plan";

/** 4 nodes over 2 subnets: n1..n3 on 192.168.10.0/24, n4 on 192.168.20.0/24. */
function nodes(modes: Partial<Record<string, Mode>> = {}, def: Mode = "vxlan"): RoutingNode[] {
  return [1, 2, 3, 4].map((i) => ({
    name: `n${i}`,
    labels: { subnet: i === 4 ? "b" : "a", ...(i === 1 ? { rr: "true" } : {}) },
    ip: i === 4 ? "192.168.20.14" : `192.168.10.1${i}`,
    underlayCIDR: i === 4 ? "192.168.20.0/24" : "192.168.10.0/24",
    block: `10.244.${i}.0/24`,
    mode: modes[`n${i}`] ?? def,
  }));
}
function input(spec: Record<string, unknown>, modesInUse: Mode[], ns = nodes({}, spec["mode"] as Mode)): RoutingInput {
  return { spec: ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, ...spec }), nodes: ns, modesInUse };
}

describe("refusedPeers", () => {
  it.each([
    ["host-gw", { mode: "host-gw" }],
    ["bgp full mesh", { mode: "bgp", bgp: { asNumber: 64512, topology: "full-mesh" } }],
    ["vxlan", { mode: "vxlan" }],
  ])("%s: the same refusals as the full plan's peer decisions", (_label, spec) => {
    for (const n of ["n1", "n4"]) {
      const fromPlan = compileRoutingPlan(input(spec, [spec.mode as Mode]), n).peers.flatMap((p) => (p.transport === "none" ? [{ peer: p.peer, reason: p.reason ?? "" }] : []));
      expect(refusedPeers(input(spec, [spec.mode as Mode]), n)).toEqual(fromPlan);
    }
    if (spec.mode === "host-gw") expect(refusedPeers(input(spec, ["host-gw"]), "n4").map((p) => p.peer)).toEqual(["n1", "n2", "n3"]);
  });
});

describe("compileRoutingPlan", () => {
  it("host-gw: routes via peers on the same subnet, refuses the peer across the router with a reason", () => {
    const plan = compileRoutingPlan(input({ mode: "host-gw" }, ["host-gw"]), "n1");
    expect(plan.routes).toEqual([
      { dst: "10.244.2.0/24", via: "192.168.10.12", metric: METRIC.preferred, transport: "native", peer: "n2" },
      { dst: "10.244.3.0/24", via: "192.168.10.13", metric: METRIC.preferred, transport: "native", peer: "n3" },
    ]);
    expect(plan.peers.find((p) => p.peer === "n4")).toMatchObject({ transport: "none" });
    expect(plan.diagnostics[0]!.reason).toBe("ModeCannotServePeers");
    expect(plan.diagnostics[0]!.message).toContain("n4");
    expect(plan.diagnostics[0]!.message).toContain("L2 adjacency");
    expect(plan.podMtu).toBe(1500);
  });

  it("vxlan: a device with a deterministic VTEP MAC, FDB + permanent neighbour + onlink route per peer, MTU minus 50", () => {
    const plan = compileRoutingPlan(input({ mode: "vxlan", vxlan: { vni: 7, port: 4789 } }, ["vxlan"]), "n1");
    expect(plan.devices.vxlan).toEqual({ name: "sy-vxlan", vni: 7, port: 4789, mac: vtepMac("n1"), local: "192.168.10.11", address: "10.244.1.0", mtu: 1450 });
    expect(plan.neighbors).toContainEqual({ dev: "sy-vxlan", ip: "10.244.4.0", mac: vtepMac("n4") });
    expect(plan.fdb).toContainEqual({ dev: "sy-vxlan", mac: vtepMac("n4"), dst: "192.168.20.14" });
    expect(plan.routes).toContainEqual({ dst: "10.244.4.0/24", via: "10.244.4.0", dev: "sy-vxlan", onlink: true, metric: METRIC.preferred, transport: "vxlan", peer: "n4" });
    expect(plan.podMtu).toBe(1450);
    expect(plan.diagnostics).toEqual([]);
  });

  it("vxlan crossSubnet: native within the subnet, VXLAN across it", () => {
    const plan = compileRoutingPlan(input({ mode: "vxlan", crossSubnet: true }, ["vxlan"]), "n1");
    const byPeer = Object.fromEntries(plan.peers.map((p) => [p.peer, p.transport]));
    expect(byPeer).toEqual({ n2: "native", n3: "native", n4: "vxlan" });
  });

  it("ipip: tunnel device and onlink routes via the peer's underlay address", () => {
    const plan = compileRoutingPlan(input({ mode: "ipip" }, ["ipip"]), "n4");
    expect(plan.devices.ipip).toEqual({ name: "sy-ipip", local: "192.168.20.14", mtu: 1480 });
    expect(plan.routes).toContainEqual({ dst: "10.244.1.0/24", via: "192.168.10.11", dev: "sy-ipip", onlink: true, metric: METRIC.preferred, transport: "ipip", peer: "n1" });
    expect(plan.podMtu).toBe(1480);
  });

  it("explicit mtu wins over auto", () => {
    expect(compileRoutingPlan(input({ mode: "vxlan", mtu: 1400 }, ["vxlan"]), "n1").podMtu).toBe(1400);
  });

  it("bgp full mesh: sessions with same-subnet nodes only; the node across the router is refused with a reason", () => {
    const plan = compileRoutingPlan(input({ mode: "bgp", bgp: { asNumber: 64512 } }, ["bgp"]), "n1");
    expect(plan.bgp?.peers.map((p) => p.address)).toEqual(["192.168.10.12", "192.168.10.13"]);
    expect(plan.bgp?.originate).toEqual(["10.244.1.0/24"]);
    expect(plan.routes).toEqual([]);
    expect(plan.peers.find((p) => p.peer === "n4")?.reason).toContain("use topology tor");
  });

  it("bgp route reflectors: clients peer with the reflector only; the reflector serves every client", () => {
    const spec = { mode: "bgp", bgp: { topology: "route-reflectors", routeReflectors: { nodeSelector: { matchLabels: { rr: "true" } } } } };
    const rr = compileRoutingPlan(input(spec, ["bgp"]), "n1");
    expect(rr.bgp?.peers.map((p) => [p.address, p.routeReflectorClient])).toEqual([["192.168.10.12", true], ["192.168.10.13", true]]);
    expect(rr.bgp?.routeReflectorClusterId).toBe("192.168.10.11");
    const client = compileRoutingPlan(input(spec, ["bgp"]), "n2");
    expect(client.bgp?.peers.map((p) => p.address)).toEqual(["192.168.10.11"]);
  });

  it("bgp tor: each node peers with the router its selector picks, and every peer is reachable", () => {
    const spec = {
      mode: "bgp",
      bgp: {
        topology: "tor",
        peers: [
          { address: "192.168.10.1", asNumber: 64500, nodeSelector: { matchLabels: { subnet: "a" } } },
          { address: "192.168.20.1", asNumber: 64500, nodeSelector: { matchLabels: { subnet: "b" } } },
        ],
      },
    };
    const plan = compileRoutingPlan(input(spec, ["bgp"]), "n4");
    expect(plan.bgp?.peers).toEqual([{ name: "tor_192_168_20_1", address: "192.168.20.1", asNumber: 64500, allowLocalAs: true, description: "top-of-rack 192.168.20.1" }]);
    expect(plan.peers.every((p) => p.transport === "bgp")).toBe(true);
  });

  it("mixed modes: a node still on vxlan keeps preferred VXLAN routes and runs BIRD; standby never shadows preferred", () => {
    const spec = { mode: "bgp", bgp: { asNumber: 64512 } };
    const ns = nodes({ n1: "bgp" }, "vxlan");
    const migrated = compileRoutingPlan(input(spec, ["vxlan", "bgp"], ns), "n1");
    // n1 sends by BGP: only standby VXLAN routes remain (instant rollback), and the VXLAN device stays for decap.
    expect(migrated.devices.vxlan).toBeDefined();
    expect(migrated.routes.every((r) => r.metric === METRIC.standby && r.transport === "vxlan")).toBe(true);
    expect(migrated.bgp?.kernelMetric).toBe(METRIC.bird);
    expect(METRIC.preferred).toBeLessThan(METRIC.bird);
    expect(METRIC.bird).toBeLessThan(METRIC.standby);
    const unmigrated = compileRoutingPlan(input(spec, ["vxlan", "bgp"], ns), "n2");
    expect(unmigrated.routes.filter((r) => r.metric === METRIC.preferred).map((r) => r.transport)).toEqual(["vxlan", "vxlan", "vxlan"]);
    expect(unmigrated.bgp?.originate).toEqual(["10.244.2.0/24"]);
    // Pod MTU follows the largest overhead in use, so it is lowered before anything sends VXLAN.
    expect(unmigrated.podMtu).toBe(1450);
  });

  it("routes borrowed pod addresses (static IP requests) as /32s to their node", () => {
    const inp = { ...input({ mode: "host-gw" }, ["host-gw"]), borrowed: [{ ip: "10.244.9.9", node: "n2" }] };
    const plan = compileRoutingPlan(inp, "n1");
    expect(plan.routes).toContainEqual({ dst: "10.244.9.9/32", via: "192.168.10.12", metric: METRIC.preferred, transport: "native", peer: "n2" });
    expect(compileRoutingPlan(inp, "n2").routes.find((r) => r.dst === "10.244.9.9/32")).toBeUndefined();
  });

  it("is deterministic regardless of node order", () => {
    const a = compileRoutingPlan(input({ mode: "vxlan" }, ["vxlan"]), "n2");
    const b = compileRoutingPlan(input({ mode: "vxlan" }, ["vxlan"], nodes().reverse()), "n2");
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });
});
