// Every mode's backend against the ModeBackend contract, table-driven over the registry: each row gives a
// mode's concrete answers (overhead, needs, send decisions, static routes, device commands, spec patches),
// and the registry must hold exactly the modes the table lists, so a new mode cannot skip a row.
import { describe, expect, it } from "vitest";
import { MODES, type Mode } from "../api/cluster-network";
import type { ModeSettings, PlanDevice, PlanRoute, RoutingNode, RoutingPlan } from "../model/routing-plan";
import type { DeviceLink, NodePair, PlanValueChecks, SendDecision, SpecPatchOp } from "./backend";
import { MODE_BACKENDS } from "./registry";

const node = (name: string, ip: string, underlayCIDR: string, block: string | undefined, labels: Record<string, string> = {}): RoutingNode => ({
  name,
  labels,
  ip,
  underlayCIDR,
  ...(block ? { block } : {}),
  mode: "vxlan",
});
/** n1 and n2 share 192.168.10.0/24; n3 is on 192.168.20.0/24 (behind a router). */
const n1 = node("n1", "192.168.10.11", "192.168.10.0/24", "10.244.1.0/24", { rack: "a" });
const n2 = node("n2", "192.168.10.12", "192.168.10.0/24", "10.244.2.0/24", { rack: "a" });
const n3 = node("n3", "192.168.20.13", "192.168.20.0/24", "10.244.3.0/24", { rack: "b" });
const MESH: ModeSettings = { bgp: { asNumber: 64512, topology: "full-mesh" } };
const TOR: ModeSettings = {
  bgp: {
    asNumber: 64512,
    topology: "tor",
    peers: [
      { address: "192.168.10.1", asNumber: 65000, nodeSelector: { matchLabels: { rack: "a" } } },
      { address: "192.168.20.1", asNumber: 65000, nodeSelector: { matchLabels: { rack: "b" } } },
    ],
  },
};
const pair = (peer: RoutingNode, crossSubnet: boolean, settings: ModeSettings = MESH): NodePair => ({ self: n1, peer, sameSubnet: peer.underlayCIDR === n1.underlayCIDR, crossSubnet, settings });

const N1_MAC = "0e:3d:1f:b3:8c:45";
const N3_MAC = "0e:bf:cd:70:18:5b";

const HOST_GW_REFUSAL =
  "host-gw needs L2 adjacency: n3 (192.168.20.13) is on 192.168.20.0/24, n1 on 192.168.10.0/24; use vxlan or ipip (crossSubnet), or bgp with top-of-rack peers";
const MESH_REFUSAL = "BGP full-mesh cannot reach n3 on 192.168.20.0/24 from 192.168.10.0/24: iBGP next hops on another subnet do not resolve; use topology tor";

interface Row {
  readonly overhead: number;
  readonly needs: readonly string[];
  /** Send decisions n1 -> n2 (same subnet) and n1 -> n3 (other subnet), without and with crossSubnet. */
  readonly send: { readonly same: SendDecision; readonly other: SendDecision; readonly crossSame: SendDecision; readonly crossOther: SendDecision };
  /** Static routes n1 -> n3's block at metric 50 (undefined: the mode installs none). */
  readonly routesToN3: readonly PlanRoute[] | undefined;
  /** n1's device entry (underlay MTU 1500, no settings), and the lines that create it on eth0 from nothing. */
  readonly device?: { readonly entry: PlanDevice; readonly create: readonly string[]; readonly same: DeviceLink; readonly others: readonly DeviceLink[] };
  /** Spec patch ops moving a spec with every mode's block and crossSubnet on INTO this mode, and OUT of it. */
  readonly into: readonly SpecPatchOp[];
  readonly outOf: readonly SpecPatchOp[];
}

const EVERY_BLOCK = { mode: "vxlan", crossSubnet: true, vxlan: { vni: 7, port: 4789 }, bgp: { asNumber: 64600, topology: "full-mesh" } };

const ROWS: Readonly<Record<Mode, Row>> = {
  vxlan: {
    overhead: 50,
    needs: ["vxlan"],
    send: { same: { transport: "vxlan" }, other: { transport: "vxlan" }, crossSame: { transport: "native" }, crossOther: { transport: "vxlan" } },
    routesToN3: [{ dst: "10.244.3.0/24", via: "10.244.3.0", dev: "sy-vxlan", onlink: true, metric: 50, transport: "vxlan", peer: "n3" }],
    device: {
      entry: { name: "sy-vxlan", vni: 1, port: 8472, mac: N1_MAC, local: "192.168.10.11", address: "10.244.1.0", mtu: 1450 } as PlanDevice,
      create: [
        `link add sy-vxlan address ${N1_MAC} mtu 1450 type vxlan id 1 local 192.168.10.11 dev eth0 dstport 8472 nolearning`,
        "link set dev sy-vxlan up",
        "addr add 10.244.1.0/32 dev sy-vxlan",
      ],
      same: { kind: "vxlan", info: { id: 1, port: 8472, local: "192.168.10.11", link: "eth0", learning: false } },
      others: [
        { kind: "dummy", info: {} },
        { kind: "vxlan", info: { id: 2, port: 8472, local: "192.168.10.11", link: "eth0", learning: false } },
        { kind: "vxlan", info: { id: 1, port: 4789, local: "192.168.10.11", link: "eth0", learning: false } },
        { kind: "vxlan", info: { id: 1, port: 8472, local: "192.168.10.99", link: "eth0", learning: false } },
        { kind: "vxlan", info: { id: 1, port: 8472, local: "192.168.10.11", link: "eth1", learning: false } },
        { kind: "vxlan", info: { id: 1, port: 8472, local: "192.168.10.11", link: "eth0", learning: true } },
      ],
    },
    into: [],
    outOf: [{ op: "remove", path: "/spec/vxlan" }],
  },
  ipip: {
    overhead: 20,
    needs: ["ipip"],
    send: { same: { transport: "ipip" }, other: { transport: "ipip" }, crossSame: { transport: "native" }, crossOther: { transport: "ipip" } },
    routesToN3: [{ dst: "10.244.3.0/24", via: "192.168.20.13", dev: "sy-ipip", onlink: true, metric: 50, transport: "ipip", peer: "n3" }],
    device: {
      entry: { name: "sy-ipip", local: "192.168.10.11", mtu: 1480 } as PlanDevice,
      create: ["link add sy-ipip mtu 1480 type ipip local 192.168.10.11", "link set dev sy-ipip up"],
      same: { kind: "ipip", info: { local: "192.168.10.11", remote: "any" } },
      others: [
        { kind: "dummy", info: {} },
        { kind: "ipip", info: { local: "192.168.10.99" } },
        { kind: "gre", info: { local: "192.168.10.11" } },
      ],
    },
    into: [],
    outOf: [],
  },
  "host-gw": {
    overhead: 0,
    needs: [],
    send: {
      same: { transport: "native" },
      other: { transport: "none", reason: HOST_GW_REFUSAL },
      crossSame: { transport: "native" },
      crossOther: { transport: "none", reason: HOST_GW_REFUSAL },
    },
    routesToN3: undefined,
    into: [{ op: "replace", path: "/spec/crossSubnet", value: false }],
    outOf: [],
  },
  bgp: {
    overhead: 0,
    needs: ["bird"],
    send: {
      same: { transport: "bgp" },
      other: { transport: "none", reason: MESH_REFUSAL },
      crossSame: { transport: "bgp" },
      crossOther: { transport: "none", reason: MESH_REFUSAL },
    },
    routesToN3: undefined,
    // The spec already has spec.bgp: kept (not replaced by the defaults).
    into: [{ op: "replace", path: "/spec/crossSubnet", value: false }],
    outOf: [{ op: "remove", path: "/spec/bgp" }],
  },
};

function recordingChecks(): { checks: PlanValueChecks; calls: string[] } {
  const calls: string[] = [];
  const checks: PlanValueChecks = {
    ip: (v, what) => calls.push(`ip ${what}=${v}`),
    cidrOrIp: (v, what) => calls.push(`cidrOrIp ${what}=${v}`),
    mac: (v, what) => calls.push(`mac ${what}=${v}`),
    int: (v, min, max, what) => calls.push(`int ${what}=${v} in ${min}..${max}`),
    ownedDevice: (v, what) => calls.push(`ownedDevice ${what}=${v}`),
  };
  return { checks, calls };
}

describe("the registry holds exactly the API's modes", () => {
  it("one backend per mode, each under its own name, in the API's order", () => {
    expect(Object.keys(MODE_BACKENDS)).toEqual([...MODES]);
    expect(Object.keys(ROWS).sort()).toEqual([...MODES].sort());
    for (const m of MODES) expect(MODE_BACKENDS[m].mode).toBe(m);
  });
});

describe.each(MODES.map((m) => [m, MODE_BACKENDS[m], ROWS[m]] as const))("mode %s", (mode, backend, row) => {
  it(`has ${row.overhead} bytes of overhead and needs [${row.needs.join(", ")}]`, () => {
    expect(backend.overhead).toBe(row.overhead);
    expect(backend.needs.map((n) => n.capability)).toEqual(row.needs);
  });

  it("decides how a node reaches a peer on its subnet and one across the router, with and without crossSubnet", () => {
    expect(backend.decideSend(pair(n2, false))).toEqual(row.send.same);
    expect(backend.decideSend(pair(n3, false))).toEqual(row.send.other);
    expect(backend.decideSend(pair(n2, true))).toEqual(row.send.crossSame);
    expect(backend.decideSend(pair(n3, true))).toEqual(row.send.crossOther);
  });

  it("routes a peer's block over its transport (or leaves routing to its daemon)", () => {
    expect(backend.staticRoutes?.(n3, ["10.244.3.0/24"], 50)).toEqual(row.routesToN3);
    if (row.routesToN3) expect(backend.transport).toBe(row.routesToN3[0]!.transport);
  });

  it(row.device ? "compiles its device and creates it on an empty node" : "has no device", () => {
    if (!row.device) {
      expect(backend.device).toBeUndefined();
      return;
    }
    const device = backend.device!;
    const entry = device.compile({ self: n1, underlayMtu: 1500, settings: {} });
    expect(entry).toEqual(row.device.entry);
    expect(JSON.stringify(Object.keys(entry))).toBe(JSON.stringify(Object.keys(row.device.entry)));
    expect(entry.name).toBe(device.name);
    expect(device.createCommands(entry, "eth0")).toEqual(row.device.create);
    expect(device.probe.type[0]).toBe(row.device.same.kind);
  });

  if (row.device) {
    const { same, others } = row.device;
    it("keeps a link that is its device and replaces one that is not", () => {
      const device = backend.device!;
      const entry = device.compile({ self: n1, underlayMtu: 1500, settings: {} });
      expect(device.matches(entry, same, "eth0")).toBe(true);
      for (const other of others) expect(device.matches(entry, other, "eth0"), JSON.stringify(other)).toBe(false);
    });
  }

  it("patches the spec when a cluster moves into it and out of it", () => {
    expect(backend.specPatchInto(EVERY_BLOCK, {})).toEqual(row.into);
    expect(backend.specPatchOutOf(EVERY_BLOCK)).toEqual(row.outOf);
    // A spec with nothing of any mode needs nothing removed.
    expect(backend.specPatchOutOf({ mode: "ipip" })).toEqual([]);
  });
});

describe("vxlan", () => {
  const vxlan = MODE_BACKENDS.vxlan;
  it("takes vni and port from the settings, and drops the address while the node has no block", () => {
    const entry = vxlan.device!.compile({ self: { ...n1, block: undefined } as RoutingNode, underlayMtu: 9000, settings: { vxlan: { vni: 7, port: 4789 } } });
    expect(entry).toEqual({ name: "sy-vxlan", vni: 7, port: 4789, mac: N1_MAC, local: "192.168.10.11", mtu: 8950 });
    expect(vxlan.device!.createCommands(entry, "eth0")).toEqual([
      `link add sy-vxlan address ${N1_MAC} mtu 8950 type vxlan id 7 local 192.168.10.11 dev eth0 dstport 4789 nolearning`,
      "link set dev sy-vxlan up",
    ]);
  });

  it("cannot be created or matched without an underlay interface", () => {
    const entry = vxlan.device!.compile({ self: n1, underlayMtu: 1500, settings: {} });
    expect(vxlan.device!.needsUnderlay).toBe(true);
    expect(vxlan.device!.matches(entry, ROWS.vxlan.device!.same, undefined)).toBe(false);
    expect(vxlan.device!.createCommands(entry, undefined)).toEqual([]);
  });

  it("reaches each peer's VTEP with a permanent neighbour and an FDB entry; none for a peer without a block", () => {
    expect(vxlan.device!.peerEntries!(n3)).toEqual({
      neighbors: [{ dev: "sy-vxlan", ip: "10.244.3.0", mac: N3_MAC }],
      fdb: [{ dev: "sy-vxlan", mac: N3_MAC, dst: "192.168.20.13" }],
    });
    expect(vxlan.device!.peerEntries!({ ...n3, block: undefined } as RoutingNode)).toEqual({ neighbors: [], fdb: [] });
  });

  it("checks every value of its entry that becomes a command", () => {
    const { checks, calls } = recordingChecks();
    vxlan.device!.checkEntry(ROWS.vxlan.device!.entry, "devices.vxlan", checks);
    expect(calls).toEqual([
      "ownedDevice devices.vxlan.name=sy-vxlan",
      "int devices.vxlan.vni=1 in 1..16777215",
      "int devices.vxlan.port=8472 in 1..65535",
      "int devices.vxlan.mtu=1450 in 68..65535",
      `mac devices.vxlan.mac=${N1_MAC}`,
      "ip devices.vxlan.local=192.168.10.11",
      "cidrOrIp devices.vxlan.address=10.244.1.0",
    ]);
  });

  it("sets spec.vxlan when a migration asks for it, never a default", () => {
    expect(vxlan.specPatchInto({ mode: "ipip" }, {})).toEqual([]);
    expect(vxlan.specPatchInto({ mode: "ipip" }, { settings: { vxlan: { vni: 9 } } })).toEqual([{ op: "add", path: "/spec/vxlan", value: { vni: 9 } }]);
  });
});

describe("ipip", () => {
  it("needs no underlay interface, leaves addresses alone, and checks its entry", () => {
    const device = MODE_BACKENDS.ipip.device!;
    expect(device.needsUnderlay).toBe(false);
    expect(device.ownsAddresses).toBe(false);
    expect(device.peerEntries).toBeUndefined();
    const { checks, calls } = recordingChecks();
    device.checkEntry(ROWS.ipip.device!.entry, "devices.ipip", checks);
    expect(calls).toEqual(["ownedDevice devices.ipip.name=sy-ipip", "int devices.ipip.mtu=1480 in 68..65535", "ip devices.ipip.local=192.168.10.11"]);
  });
});

describe("bgp", () => {
  const bgp = MODE_BACKENDS.bgp;
  const POOLS = { podCIDRs: ["10.244.0.0/16"], blockSize: 24 };
  it("reaches across subnets with top-of-rack peers, and refuses a node no router selects", () => {
    expect(bgp.decideSend(pair(n3, false, TOR))).toEqual({ transport: "bgp" });
    const lonely = { ...n3, labels: { rack: "c" } };
    expect(bgp.decideSend(pair(lonely, false, TOR))).toEqual({ transport: "none", reason: "n3 has no top-of-rack peer, so its block is never announced" });
    expect(bgp.decideSend(pair(n2, false, {}))).toEqual({ transport: "none", reason: "spec.bgp is not set" });
  });

  it("compiles BIRD's part of the plan, or a diagnostic without settings", () => {
    const withMesh = bgp.compilePlanPart!({ self: n1, others: [n2, n3], originate: ["10.244.1.0/24"], pools: POOLS, settings: MESH });
    expect(withMesh.diagnostics).toEqual([]);
    expect(withMesh.part.bgp).toEqual({
      asNumber: 64512,
      routerId: "192.168.10.11",
      podCIDRs: ["10.244.0.0/16"],
      blockSize: 24,
      originate: ["10.244.1.0/24"],
      kernelMetric: 100,
      peers: [{ name: "node_n2", address: "192.168.10.12", asNumber: 64512, description: "node n2" }],
      underlayInterface: "eth*",
    });
    expect(bgp.compilePlanPart!({ self: n1, others: [n2], originate: [], pools: POOLS, settings: {} })).toEqual({
      part: {},
      diagnostics: [{ reason: "BgpConfigMissing", message: "bgp is in use but no BGP settings are known (spec.bgp)" }],
    });
  });

  it("carries passwords as Secret references only, and a router's acceptPrefixes with their lengths", () => {
    const ref = { name: "bgp", key: "password" };
    const mesh = bgp.compilePlanPart!({ self: n1, others: [n2], originate: [], pools: POOLS, settings: { bgp: { ...MESH.bgp!, passwordSecretRef: ref } } });
    expect(mesh.part.bgp?.peers).toEqual([expect.objectContaining({ name: "node_n2", passwordSecretRef: ref })]);
    const tor = { bgp: { ...TOR.bgp!, peers: [{ address: "192.168.10.1", asNumber: 65000, passwordSecretRef: ref, acceptPrefixes: [{ cidr: "0.0.0.0/0" }, { cidr: "172.16.0.0/12", maxLength: 24 }] }] } };
    const part = bgp.compilePlanPart!({ self: n1, others: [n2], originate: [], pools: POOLS, settings: tor });
    expect(part.part.bgp?.peers).toEqual([
      expect.objectContaining({ name: "tor_192_168_10_1", passwordSecretRef: ref, acceptPrefixes: [{ cidr: "0.0.0.0/0", maxLength: 0 }, { cidr: "172.16.0.0/12", maxLength: 24 }] }),
    ]);
  });

  it("adds default settings when moving into bgp without spec.bgp, the caller's defaults first, explicit settings always", () => {
    expect(bgp.specPatchInto({ mode: "vxlan" }, {})).toEqual([{ op: "add", path: "/spec/bgp", value: { asNumber: 64512, topology: "full-mesh" } }]);
    expect(bgp.specPatchInto({ mode: "vxlan" }, { defaults: { bgp: { asNumber: 65001, topology: "tor" } } })).toEqual([
      { op: "add", path: "/spec/bgp", value: { asNumber: 65001, topology: "tor" } },
    ]);
    expect(bgp.specPatchInto({ mode: "bgp", bgp: { asNumber: 1 } }, { settings: { bgp: { asNumber: 2 } } })).toEqual([{ op: "replace", path: "/spec/bgp", value: { asNumber: 2 } }]);
  });
});

describe("neededBy: what in a plan needs a mode the node does not send with", () => {
  const plan = (extra: Partial<RoutingPlan>): RoutingPlan => ({
    node: "n1", nodeIP: "192.168.10.11", underlayCIDR: "192.168.10.0/24", mode: "host-gw", podMtu: 1450, devices: {},
    neighbors: [], fdb: [], routes: [], peers: [], nat: { enabled: false, podCIDRs: [], nodeIP: "192.168.10.11" }, diagnostics: [], ...extra,
  });
  it.each([
    ["vxlan", plan({ devices: { vxlan: ROWS.vxlan.device!.entry } }), "receiving VXLAN from peers (device sy-vxlan)"],
    ["ipip", plan({ devices: { ipip: ROWS.ipip.device!.entry } }), "receiving IPIP from peers (device sy-ipip)"],
    ["bgp", plan({ bgp: { asNumber: 1, routerId: "192.168.10.11", podCIDRs: ["10.244.0.0/16"], blockSize: 24, originate: [], kernelMetric: 100, peers: [], underlayInterface: "eth*" } }), "BGP peering in this plan"],
  ] as const)("%s", (mode, p, why) => {
    expect(MODE_BACKENDS[mode].neededBy(p)).toBe(why);
    for (const other of MODES.filter((m) => m !== mode)) expect(MODE_BACKENDS[other].neededBy(p), other).toBeUndefined();
  });
});
