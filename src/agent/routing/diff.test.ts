// The ownership and key rules of the routing apply, without a kernel: plan + parsed kernel state -> batch lines.
import { describe, expect, it } from "vitest";
import { ClusterNetworkSpecSchema, type Mode } from "../../api/cluster-network";
import { compileRoutingPlan } from "../../compile/routing/compile-routing";
import { METRIC, type PlanRoute, type RoutingNode, type RoutingPlan } from "../../model/routing-plan";
import { MODE_DEVICES } from "../../modes/registry";
import { vtepMac } from "../../modes/vxlan";
import { checkPlanForKernel, diffDevices, diffFdb, diffNeighbors, diffRoutes, diffSysctls, natTableMatches } from "./diff";
import type { KernelLink, KernelRoute, NftListing } from "./kernel-state";

const route = (dst: string, metric: number, extra: Partial<PlanRoute> = {}): PlanRoute => ({ dst, metric, via: "192.168.10.12", transport: "native", peer: "n2", ...extra });
const kernel = (dst: string, metric: number, protocol: string, extra: Partial<KernelRoute> = {}): KernelRoute => ({ dst, metric, protocol, gateway: "192.168.10.12", dev: "eth0", onlink: false, type: "unicast", ...extra });
const devs = new Set(["eth0", "sy-vxlan"]);

describe("diffRoutes", () => {
  it("an identical owned route is no change; a host route printed without /32 matches its plan", () => {
    expect(diffRoutes([route("10.244.2.0/24", 50), route("10.244.9.9/32", 50)], [kernel("10.244.2.0/24", 50, "77"), kernel("10.244.9.9/32", 50, "77")], devs)).toEqual({ apply: [], remove: [], conflicts: [], skipped: [] });
  });

  it("a changed next hop is replaced in place (same key), never deleted and re-added", () => {
    const d = diffRoutes([route("10.244.2.0/24", 50, { via: "10.244.2.0", dev: "sy-vxlan", onlink: true })], [kernel("10.244.2.0/24", 50, "77")], devs);
    expect(d.apply).toEqual(["route replace 10.244.2.0/24 via 10.244.2.0 dev sy-vxlan onlink metric 50 proto 77 table main"]);
    expect(d.remove).toEqual([]);
  });

  it("another metric is another route: the new one is added, the old one removed only in the removal stage", () => {
    const d = diffRoutes([route("10.244.2.0/24", METRIC.standby)], [kernel("10.244.2.0/24", METRIC.preferred, "77")], devs);
    expect(d.apply).toEqual([`route replace 10.244.2.0/24 via 192.168.10.12 metric ${METRIC.standby} proto 77 table main`]);
    expect(d.remove).toEqual([`route del 10.244.2.0/24 metric ${METRIC.preferred} proto 77 table main`]);
  });

  it("never touches routes it does not own, and reports a planned key they hold as a conflict", () => {
    const d = diffRoutes(
      [route("10.244.2.0/24", 50)],
      [kernel("10.244.2.0/24", 50, "static"), kernel("10.244.3.0/24", 100, "bird"), kernel("10.244.1.2/32", 0, "boot", { gateway: undefined, dev: "syvpod0" })],
      devs,
    );
    expect(d).toEqual({ apply: [], remove: [], conflicts: ["10.244.2.0/24 metric 50 is held by a proto static route, which Switchyard does not own"], skipped: [] });
  });

  it("skips routes through a device that does not exist (and keeps their key: the old route stays)", () => {
    const r = route("10.244.2.0/24", 50, { dev: "sy-ipip", onlink: true, transport: "ipip" });
    expect(diffRoutes([r], [kernel("10.244.2.0/24", 50, "77")], devs)).toEqual({ apply: [], remove: [], conflicts: [], skipped: [r] });
  });
});

describe("diffSysctls", () => {
  it("turns forwarding on and strict rp_filter into loose; leaves 0 and 2 alone", () => {
    const keys = ["net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter", "net.ipv4.conf.eth0.rp_filter"];
    const cur = new Map([["net.ipv4.ip_forward", "0"], ["net.ipv4.conf.all.rp_filter", "1"], ["net.ipv4.conf.default.rp_filter", "0"], ["net.ipv4.conf.eth0.rp_filter", "2"]]);
    expect(diffSysctls(keys, cur).set).toEqual(["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=2"]);
  });
});

describe("FDB and neighbours", () => {
  it("sets each MAC's remote with replace and removes remotes and MACs no longer planned", () => {
    const d = diffFdb("sy-vxlan", [{ dev: "sy-vxlan", mac: "0e:00:00:00:00:02", dst: "192.168.10.12" }], [
      { mac: "0e:00:00:00:00:02", dst: "192.168.10.99", permanent: true },
      { mac: "0e:00:00:00:00:03", dst: "192.168.10.13", permanent: true },
      { mac: "0e:00:00:00:00:04", dst: "192.168.10.14", permanent: false },
    ]);
    expect(d.apply).toEqual(["fdb replace 0e:00:00:00:00:02 dev sy-vxlan dst 192.168.10.12 self permanent"]);
    expect(d.remove).toEqual(["fdb del 0e:00:00:00:00:02 dev sy-vxlan dst 192.168.10.99 self", "fdb del 0e:00:00:00:00:03 dev sy-vxlan dst 192.168.10.13 self"]);
  });

  it("makes planned neighbours permanent and removes only permanent strays", () => {
    const d = diffNeighbors("sy-vxlan", [{ dev: "sy-vxlan", ip: "10.244.2.0", mac: "0e:00:00:00:00:02" }], [
      { ip: "10.244.2.0", mac: "0e:00:00:00:00:02", permanent: false },
      { ip: "10.244.3.0", mac: "0e:00:00:00:00:03", permanent: true },
      { ip: "10.244.5.0", permanent: false },
    ]);
    expect(d).toEqual({ apply: ["neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:02 dev sy-vxlan nud permanent"], remove: ["neigh del 10.244.3.0 dev sy-vxlan"] });
  });
});

describe("natTableMatches", () => {
  const listing = (snat: string | undefined, elems: unknown[]): NftListing => [
    { metainfo: { version: "1.0.6" } },
    { table: { family: "ip", name: "switchyard_nat" } },
    { set: { name: "pod_cidrs", type: "ipv4_addr", flags: ["interval"], elem: elems } },
    { chain: { name: "postrouting", type: "nat", hook: "postrouting", prio: 100, policy: "accept" } },
    ...(snat
      ? [{ rule: { chain: "postrouting", comment: "natOutgoing", expr: [{ match: { right: "@pod_cidrs" } }, { match: { right: "@pod_cidrs" } }, { snat: { addr: snat } }] } }]
      : []),
  ];
  const nat = { enabled: true, podCIDRs: ["10.244.0.0/16"], nodeIP: "192.168.10.11" };
  it("matches the rendered shape and notices every difference", () => {
    expect(natTableMatches(listing("192.168.10.11", [{ prefix: { addr: "10.244.0.0", len: 16 } }]), nat)).toBe(true);
    expect(natTableMatches(listing("192.168.10.12", [{ prefix: { addr: "10.244.0.0", len: 16 } }]), nat)).toBe(false);
    expect(natTableMatches(listing("192.168.10.11", [{ prefix: { addr: "10.245.0.0", len: 16 } }]), nat)).toBe(false);
    expect(natTableMatches(listing(undefined, [{ prefix: { addr: "10.244.0.0", len: 16 } }]), nat)).toBe(false);
    expect(natTableMatches(listing(undefined, [{ prefix: { addr: "10.244.0.0", len: 16 } }]), { ...nat, enabled: false })).toBe(true);
    expect(natTableMatches(undefined, nat)).toBe(false);
  });
});

describe("checkPlanForKernel", () => {
  it("refuses values that would inject batch commands", () => {
    const plan: RoutingPlan = {
      node: "n1", nodeIP: "192.168.10.11", underlayCIDR: "192.168.10.0/24", mode: "host-gw", podMtu: 1500, devices: {},
      neighbors: [], fdb: [], peers: [], diagnostics: [],
      routes: [route("10.244.2.0/24\nlink del eth0", 50)],
      nat: { enabled: false, podCIDRs: [], nodeIP: "192.168.10.11" },
    };
    expect(checkPlanForKernel(plan)).toEqual(['routes[0].dst: not an IPv4 CIDR: "10.244.2.0/24\\nlink del eth0"']);
    expect(checkPlanForKernel({ ...plan, routes: [route("10.244.2.0/24", 50)] })).toEqual([]);
  });
});

describe("diffDevices, for every mode's device (src/modes/registry.ts)", () => {
  const underlay: KernelLink = { name: "eth0", up: true, mtu: 1500, mac: "02:00:00:00:00:01", kind: "veth", info: {}, ipv4: ["192.168.10.11/24"], ipv4Labels: {} };
  const lo: KernelLink = { name: "lo", up: true, mtu: 65536, info: {}, ipv4: ["127.0.0.1/8"], ipv4Labels: { "127.0.0.1/8": "lo" } };
  const nodes: RoutingNode[] = [
    { name: "n1", labels: {}, ip: "192.168.10.11", underlayCIDR: "192.168.10.0/24", block: "10.244.1.0/24", mode: "vxlan" },
    { name: "n2", labels: {}, ip: "192.168.10.12", underlayCIDR: "192.168.10.0/24", block: "10.244.2.0/24", mode: "vxlan" },
  ];
  const planOf = (mode: Mode): RoutingPlan =>
    compileRoutingPlan({ spec: ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode }), nodes: nodes.map((n) => ({ ...n, mode })), modesInUse: [mode] }, "n1");
  const mac = vtepMac("n1");
  /** Per device mode: the lines on an empty node, and the link the kernel shows once they ran. */
  const CASES: Record<string, { create: string[]; created: KernelLink }> = {
    vxlan: {
      create: [
        `link add sy-vxlan address ${mac} mtu 1450 type vxlan id 1 local 192.168.10.11 dev eth0 dstport 8472 nolearning`,
        "link set dev sy-vxlan up",
        "addr add 10.244.1.0/32 dev sy-vxlan",
        "addr add 10.244.1.0/32 dev lo label lo:sy",
      ],
      created: { name: "sy-vxlan", up: true, mtu: 1450, mac, kind: "vxlan", info: { id: 1, port: 8472, local: "192.168.10.11", link: "eth0", learning: false }, ipv4: ["10.244.1.0/32"], ipv4Labels: {} },
    },
    ipip: {
      create: ["link add sy-ipip mtu 1480 type ipip local 192.168.10.11", "link set dev sy-ipip up", "addr add 10.244.1.0/32 dev lo label lo:sy"],
      created: { name: "sy-ipip", up: true, mtu: 1480, kind: "ipip", info: { local: "192.168.10.11" }, ipv4: [], ipv4Labels: {} },
    },
  };

  it("covers every device the registry lists", () => {
    expect(MODE_DEVICES.map((d) => d.mode)).toEqual(Object.keys(CASES));
  });

  describe.each(MODE_DEVICES.map((d) => [d.mode, d.device.name] as const))("%s (%s)", (mode, name) => {
    const c = CASES[mode]!;
    const plan = planOf(mode);
    const healthOnLo: KernelLink = { ...lo, ipv4: [...lo.ipv4, "10.244.1.0/32"], ipv4Labels: { ...lo.ipv4Labels, "10.244.1.0/32": "lo:sy" } };

    it("creates the device on a node that has only its underlay", () => {
      expect(diffDevices(plan, [lo, underlay], "eth0")).toEqual({ apply: c.create, remove: [], created: [name], removed: [], errors: [] });
    });

    it("changes nothing once the device is there as planned", () => {
      expect(diffDevices(plan, [healthOnLo, underlay, c.created], "eth0")).toEqual({ apply: [], remove: [], created: [], removed: [], errors: [] });
    });

    it("deletes and re-creates a link of that name that is not the planned device", () => {
      const wrong: KernelLink = { name, up: true, mtu: 1500, kind: "dummy", info: {}, ipv4: [], ipv4Labels: {} };
      const d = diffDevices(plan, [healthOnLo, underlay, wrong], "eth0");
      expect(d.apply).toEqual([`link del dev ${name}`, ...c.create.filter((l) => !l.endsWith("label lo:sy"))]);
      expect(d.created).toEqual([name]);
    });

    it("fixes MTU and state in place on the planned device", () => {
      const d = diffDevices(plan, [healthOnLo, underlay, { ...c.created, mtu: 1500, up: false }], "eth0");
      expect(d.apply).toEqual([`link set dev ${name} mtu ${c.created.mtu} up`]);
      expect(d.created).toEqual([]);
    });

    it("removes it, last, from a node whose plan no longer has it", () => {
      const d = diffDevices(planOf("host-gw"), [healthOnLo, underlay, c.created], "eth0");
      expect(d).toEqual({ apply: [], remove: [`link del dev ${name}`], created: [], removed: [name], errors: [] });
    });
  });

  it("vxlan needs the underlay interface: without one it is reported, not created (and not removed)", () => {
    const d = diffDevices(planOf("vxlan"), [lo], undefined);
    expect(d.errors).toEqual(["cannot create sy-vxlan: no interface holds the node address 192.168.10.11"]);
    expect(d.apply).toEqual(["addr add 10.244.1.0/32 dev lo label lo:sy"]);
    expect(d.removed).toEqual([]);
  });

  it("vxlan owns its address: a stray one goes in the removal stage; ipip's addresses are left alone", () => {
    const vx = CASES["vxlan"]!.created;
    expect(diffDevices(planOf("vxlan"), [lo, underlay, { ...vx, ipv4: ["10.244.1.0/32", "10.9.9.9/32"] }], "eth0").remove).toEqual(["addr del 10.9.9.9/32 dev sy-vxlan"]);
    const ip = CASES["ipip"]!.created;
    expect(diffDevices(planOf("ipip"), [lo, underlay, { ...ip, ipv4: ["10.9.9.9/32"] }], "eth0").remove).toEqual([]);
  });
});
