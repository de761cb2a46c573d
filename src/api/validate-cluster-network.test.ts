import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateClusterNetwork, validateClusterNetworkUpdate, validateRecordedBlocks, parseClusterNetwork } from "./validate-cluster-network";
import { base, allocated, FORBIDDEN_UPDATES, INVALID } from "../../test/fixtures/cluster-networks";

const SAMPLES = join(import.meta.dirname, "..", "..", "samples");

describe("validateClusterNetwork: invalid objects", () => {
  it("has at least 40 invalid cases", () => expect(INVALID.length).toBeGreaterThanOrEqual(40));
  it.each(INVALID)("%s", (_name, obj, path, fragment) => {
    const diags = validateClusterNetwork(obj);
    const hit = diags.find((d) => d.path === path);
    expect(hit, `expected an error at ${path}, got ${JSON.stringify(diags)}`).toBeDefined();
    expect(hit!.message).toContain(fragment);
  });
});

describe("validateClusterNetwork: each problem once", () => {
  // A value the schema refuses is not fed to the cross-field rules: `blockSize: 12` said "must be at least
  // 16" and again "/12 blocks do not fit"; successfulRounds 1000 also made "timeout shorter than 1000 x 2s".
  it.each<[string, unknown, string[]]>([
    ["blockSize below the schema's minimum", base({ blockSize: 12 }), ["spec.blockSize: must be at least 16, got the number 12"]],
    ["blockSize far below it", base({ blockSize: 8 }), ["spec.blockSize: must be at least 16, got the number 8"]],
    ["blockSize a fraction", base({ blockSize: 15.5 }), ["spec.blockSize: must be a whole number, not the fraction 15.5"]],
    ["successfulRounds above the schema's maximum", base({ migration: { healthGate: { successfulRounds: 1000 } } }), ["spec.migration.healthGate.successfulRounds: must be at most 100, got the number 1000"]],
  ])("%s", (_name, obj, want) => {
    expect(validateClusterNetwork(obj).map((d) => `${d.path}: ${d.message}`)).toEqual(want);
  });

  it("a value inside the schema's bounds still meets the rules that span fields", () => {
    expect(validateClusterNetwork(base({ podCIDRs: ["10.96.0.0/12"], blockSize: 16 })).map((d) => d.path)).toEqual([]);
    expect(validateClusterNetwork(base({ podCIDRs: ["10.0.0.0/8"], blockSize: 16 })).map((d) => d.message)).toEqual([]);
    const tooSmall = validateClusterNetwork(base({ podCIDRs: ["10.0.0.0/8"], blockSize: 16, migration: { healthGate: { successfulRounds: 40, probeInterval: "2s", timeout: "60s" } } }));
    expect(tooSmall.map((d) => d.path)).toEqual(["spec.migration.healthGate.timeout"]);
  });

  it("no invalid fixture reports the same path and message twice", () => {
    for (const [name, obj] of INVALID) {
      const lines = validateClusterNetwork(obj).map((d) => `${d.path}: ${d.message}`);
      expect(lines, name).toEqual([...new Set(lines)]);
    }
  });
});

describe("validateClusterNetworkUpdate: forbidden updates", () => {
  it.each(FORBIDDEN_UPDATES)("%s", (_name, old, next, path, fragment) => {
    const diags = validateClusterNetworkUpdate(old, next);
    const hit = diags.find((d) => d.path === path);
    expect(hit, `expected an error at ${path}, got ${JSON.stringify(diags)}`).toBeDefined();
    expect(hit!.message).toContain(fragment);
  });

  it("allows a mode change (it starts a migration)", () => {
    expect(validateClusterNetworkUpdate(allocated(), base({ mode: "host-gw" }))).toEqual([]);
  });
  it("allows appending a pool once blocks are allocated", () => {
    expect(validateClusterNetworkUpdate(allocated(), base({ podCIDRs: ["10.244.0.0/16", "10.245.0.0/16"] }))).toEqual([]);
  });
  it("allows changing pools before any block is allocated", () => {
    expect(validateClusterNetworkUpdate(base(), base({ podCIDRs: ["10.96.0.0/12"], blockSize: 26 }))).toEqual([]);
  });
  it("allows rolling back to the source mode during a migration", () => {
    const old = { ...base({ mode: "bgp", bgp: {} }), status: { migration: { phase: "Canary", from: "vxlan", to: "bgp" } } };
    expect(validateClusterNetworkUpdate(old, base({ mode: "vxlan" }))).toEqual([]);
  });
});

describe("the podCIDRs/blockSize guard on the recorded blocks (BlockAffinities), status or not", () => {
  const recorded = [
    { node: "n1", cidr: "10.244.0.0/26" },
    { node: "n2", cidr: "10.244.0.64/26" },
  ];
  const noStatus = () => base({ podCIDRs: ["10.244.0.0/16"], blockSize: 26 });
  it("refuses a block size change on an update whose old object has no status", () => {
    const d = validateClusterNetworkUpdate(noStatus(), base({ podCIDRs: ["10.244.0.0/16"], blockSize: 24 }), recorded);
    expect(d).toEqual([expect.objectContaining({ path: "spec.blockSize" })]);
    expect(d[0]!.message).toContain("10.244.0.0/26 (node n1), 10.244.0.64/26 (node n2)");
  });
  it("refuses, on create, a re-created ClusterNetwork whose pools leave out a held block", () => {
    const d = validateRecordedBlocks(base({ podCIDRs: ["10.245.0.0/16"], blockSize: 26 }), recorded);
    expect(d).toEqual([expect.objectContaining({ path: "spec.podCIDRs" })]);
    expect(d[0]!.message).toContain("lie outside 10.245.0.0/16");
  });
  it("accepts the same pools, an appended pool, a wider pool that still holds every block, and no records at all", () => {
    expect(validateRecordedBlocks(noStatus(), recorded)).toEqual([]);
    expect(validateRecordedBlocks(base({ podCIDRs: ["10.244.0.0/16", "10.250.0.0/16"], blockSize: 26 }), recorded)).toEqual([]);
    expect(validateRecordedBlocks(base({ podCIDRs: ["10.244.0.0/14"], blockSize: 26 }), recorded)).toEqual([]);
    expect(validateClusterNetworkUpdate(noStatus(), base({ podCIDRs: ["10.96.0.0/12"], blockSize: 24 }), [])).toEqual([]);
  });
  it("reads the default block size (26) when the spec leaves it out", () => {
    expect(validateRecordedBlocks(base({ podCIDRs: ["10.244.0.0/16"], blockSize: undefined }), recorded)).toEqual([]);
  });
});

describe("validateClusterNetwork: valid objects", () => {
  const files = readdirSync(SAMPLES).filter((f) => f.endsWith(".yaml"));
  it("ships one sample per mode at least", () => {
    const modes = new Set(files.map((f) => (parse(readFileSync(join(SAMPLES, f), "utf8")) as { spec: { mode: string } }).spec.mode));
    expect([...modes].sort()).toEqual(["bgp", "host-gw", "ipip", "vxlan"]);
  });
  it.each(files)("accepts samples/%s", (f) => {
    expect(validateClusterNetwork(parse(readFileSync(join(SAMPLES, f), "utf8")))).toEqual([]);
  });
  it("reports every error at once, not just the first", () => {
    const diags = validateClusterNetwork(base({ podCIDRs: ["10.244.1.0/16"], blockSize: 99, mode: "x", mtu: 3 }));
    expect(diags.map((d) => d.path).sort()).toEqual(["spec.blockSize", "spec.mode", "spec.mtu", "spec.podCIDRs[0]"]);
  });
  it("applies defaults a user expects", () => {
    const r = parseClusterNetwork({ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "d" }, spec: { podCIDRs: ["10.244.0.0/16"] } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.spec).toMatchObject({ blockSize: 26, mode: "vxlan", mtu: 0, natOutgoing: true, crossSubnet: false, policy: { backend: "nftables" } });
    expect(r.value.spec.migration).toEqual({ canary: { nodes: 1 }, batchSize: "25%", healthGate: { successfulRounds: 3, probeInterval: "2s", timeout: "60s" }, autoRollback: true });
  });
});
