// The ownership and key rules of the routing apply, without a kernel: plan + parsed kernel state -> batch lines.
import { describe, expect, it } from "vitest";
import { METRIC, type PlanRoute, type RoutingPlan } from "../../model/routing-plan";
import { checkPlanForKernel, diffFdb, diffNeighbors, diffRoutes, diffSysctls, natTableMatches } from "./diff";
import type { KernelRoute, NftListing } from "./kernel-state";

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
