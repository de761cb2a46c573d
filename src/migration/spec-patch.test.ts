// The spec patch of a migration, for every (from, to) pair: what each mode's backend removes and adds, in
// the order the API server applies them, from a realistic spec of the source mode.
import { describe, expect, it } from "vitest";
import type { Mode } from "../api/cluster-network";
import { migrationSpecPatch } from "./spec-patch";

/** A spec as a user of each mode has it: vxlan and ipip with crossSubnet, vxlan and bgp with their block. */
const SOURCE: Readonly<Record<Mode, Record<string, unknown>>> = {
  vxlan: { podCIDRs: ["10.244.0.0/16"], mode: "vxlan", crossSubnet: true, vxlan: { vni: 7, port: 4789 } },
  ipip: { podCIDRs: ["10.244.0.0/16"], mode: "ipip", crossSubnet: true },
  "host-gw": { podCIDRs: ["10.244.0.0/16"], mode: "host-gw" },
  bgp: { podCIDRs: ["10.244.0.0/16"], mode: "bgp", bgp: { asNumber: 64600, topology: "route-reflectors" } },
};

const mode = (to: Mode) => ({ op: "replace", path: "/spec/mode", value: to });
const CROSS_OFF = { op: "replace", path: "/spec/crossSubnet", value: false };
const RM_VXLAN = { op: "remove", path: "/spec/vxlan" };
const RM_BGP = { op: "remove", path: "/spec/bgp" };
const ADD_BGP = { op: "add", path: "/spec/bgp", value: { asNumber: 64512, topology: "full-mesh" } };

const PAIRS: [Mode, Mode, unknown[]][] = [
  ["vxlan", "ipip", [mode("ipip"), RM_VXLAN]],
  ["vxlan", "host-gw", [mode("host-gw"), RM_VXLAN, CROSS_OFF]],
  ["vxlan", "bgp", [mode("bgp"), RM_VXLAN, CROSS_OFF, ADD_BGP]],
  ["ipip", "vxlan", [mode("vxlan")]],
  ["ipip", "host-gw", [mode("host-gw"), CROSS_OFF]],
  ["ipip", "bgp", [mode("bgp"), CROSS_OFF, ADD_BGP]],
  ["host-gw", "vxlan", [mode("vxlan")]],
  ["host-gw", "ipip", [mode("ipip")]],
  ["host-gw", "bgp", [mode("bgp"), ADD_BGP]],
  ["bgp", "vxlan", [mode("vxlan"), RM_BGP]],
  ["bgp", "ipip", [mode("ipip"), RM_BGP]],
  ["bgp", "host-gw", [mode("host-gw"), RM_BGP]],
  // Back to the same mode (a retry): only spec.mode, its own settings stay.
  ["vxlan", "vxlan", [mode("vxlan")]],
  ["bgp", "bgp", [mode("bgp")]],
];

describe("migrationSpecPatch", () => {
  it.each(PAIRS)("%s -> %s", (from, to, ops) => {
    expect(migrationSpecPatch(SOURCE[from], to)).toEqual(ops);
  });

  it("takes the caller's default BGP settings only when the spec has none, explicit settings always", () => {
    const tor = { asNumber: 64512, topology: "tor", peers: [{ address: "192.168.10.1", asNumber: 65000 }] };
    expect(migrationSpecPatch(SOURCE.vxlan, "bgp", { defaults: { bgp: tor } })).toEqual([mode("bgp"), RM_VXLAN, CROSS_OFF, { op: "add", path: "/spec/bgp", value: tor }]);
    expect(migrationSpecPatch(SOURCE.bgp, "bgp", { defaults: { bgp: tor } })).toEqual([mode("bgp")]);
    expect(migrationSpecPatch(SOURCE.bgp, "bgp", { settings: { bgp: tor } })).toEqual([mode("bgp"), { op: "replace", path: "/spec/bgp", value: tor }]);
    // Settings for another mode than the target are ignored.
    expect(migrationSpecPatch(SOURCE.ipip, "host-gw", { settings: { bgp: tor }, defaults: { bgp: tor } })).toEqual([mode("host-gw"), CROSS_OFF]);
  });

  it("adds spec.mode when the stored spec has none, and merges rollout knobs into spec.migration", () => {
    expect(migrationSpecPatch({ podCIDRs: ["10.244.0.0/16"] }, "ipip", { rollout: { canary: { nodes: 2 } } })).toEqual([
      { op: "add", path: "/spec/mode", value: "ipip" },
      { op: "add", path: "/spec/migration", value: { canary: { nodes: 2 } } },
    ]);
    const withMigration = { ...SOURCE["host-gw"], migration: { canary: { nodes: 1 }, autoRollback: false } };
    expect(migrationSpecPatch(withMigration, "vxlan", { rollout: { batchSize: "50%", canary: { nodes: 3 } } })).toEqual([
      mode("vxlan"),
      { op: "replace", path: "/spec/migration", value: { canary: { nodes: 3 }, autoRollback: false, batchSize: "50%" } },
    ]);
    expect(migrationSpecPatch(withMigration, "vxlan", { rollout: {} })).toEqual([mode("vxlan")]);
  });
});
