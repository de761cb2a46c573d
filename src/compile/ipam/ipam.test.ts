import { describe, expect, it } from "vitest";
import { allocateBlocks, assignPodAddresses } from "./ipam";

describe("allocateBlocks", () => {
  it("gives new nodes the lowest free blocks in name order", () => {
    const r = allocateBlocks(["10.244.0.0/22"], 24, ["n2", "n1", "n3"]);
    expect(r.blocks).toEqual({ n1: "10.244.0.0/24", n2: "10.244.1.0/24", n3: "10.244.2.0/24" });
    expect(r.freeBlocks).toBe(1);
    expect(r.diagnostics).toEqual([]);
  });
  it("keeps existing blocks stable when nodes come and go", () => {
    const first = allocateBlocks(["10.244.0.0/22"], 24, ["n1", "n2", "n3"]);
    const later = allocateBlocks(["10.244.0.0/22"], 24, ["n2", "n3", "n0"], first.blocks);
    expect(later.blocks).toEqual({ n0: "10.244.0.0/24", n2: "10.244.1.0/24", n3: "10.244.2.0/24" });
  });
  it("re-derives the same answer from the persisted allocation (restart)", () => {
    const a = allocateBlocks(["10.244.0.0/16", "10.245.0.0/16"], 26, ["a", "b", "c"]);
    expect(allocateBlocks(["10.244.0.0/16", "10.245.0.0/16"], 26, ["c", "b", "a"], a.blocks)).toEqual(a);
  });
  it("reports a full pool as a diagnostic per node, not a throw", () => {
    const r = allocateBlocks(["10.244.0.0/23"], 24, ["n1", "n2", "n3"]);
    expect(Object.keys(r.blocks)).toEqual(["n1", "n2"]);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({ node: "n3", path: "spec.podCIDRs" });
    expect(r.diagnostics[0]!.message).toContain("append a CIDR");
  });
  it("spills into the next pool", () => {
    const r = allocateBlocks(["10.244.0.0/24", "10.250.0.0/24"], 25, ["a", "b", "c"]);
    expect(r.blocks).toEqual({ a: "10.244.0.0/25", b: "10.244.0.128/25", c: "10.250.0.0/25" });
  });
  it("drops a previous block that is no longer inside the pools", () => {
    const r = allocateBlocks(["10.244.0.0/24"], 25, ["a"], { a: "10.99.0.0/25" });
    expect(r.blocks).toEqual({ a: "10.244.0.0/25" });
  });
});

describe("allocateBlocks with recorded allocations (BlockAffinities)", () => {
  const pools = ["10.244.0.0/22"];
  it("keeps each node's held block whatever the node order or NodeNetwork hints say", () => {
    // n0 sorts first and n1's NodeNetwork is gone (no hint): n1 still keeps its held block.
    const r = allocateBlocks(pools, 24, ["n0", "n1", "n2"], { n2: "10.244.0.0/24" }, { n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
    expect(r.blocks).toEqual({ n0: "10.244.2.0/24", n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
    expect(r.freeBlocks).toBe(1);
    expect(r.diagnostics).toEqual([]);
  });
  it("gives nobody the block of a node that is gone but not released yet", () => {
    const r = allocateBlocks(pools, 24, ["n2", "n3"], {}, { n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
    expect(r.blocks).toEqual({ n2: "10.244.1.0/24", n3: "10.244.2.0/24" });
    expect(r.freeBlocks).toBe(1);
  });
  it("takes a NodeNetwork's block as a hint only for a node that holds none (an upgrade from before BlockAffinities)", () => {
    const r = allocateBlocks(pools, 24, ["a", "b"], { a: "10.244.3.0/24", b: "10.244.0.0/24" }, { a: "10.244.1.0/24" });
    expect(r.blocks).toEqual({ a: "10.244.1.0/24", b: "10.244.0.0/24" });
  });
  it("gives a node whose held block is not a block of the pools no block, and nobody any address of it", () => {
    // blockSize went from /24 to /26 past admission: n1's /24 covers four /26 blocks, none of which is handed out.
    const r = allocateBlocks(pools, 26, ["n1", "n2"], {}, { n1: "10.244.0.0/24" });
    expect(r.blocks).toEqual({ n2: "10.244.1.0/26" });
    expect(r.diagnostics).toEqual([expect.objectContaining({ node: "n1", reason: "BlockOutsidePools", path: "spec.podCIDRs" })]);
    expect(r.diagnostics[0]!.message).toContain("10.244.0.0/24 (BlockAffinity n1), which is not a /26 block of spec.podCIDRs");
    expect(r.freeBlocks).toBe(16 - 4 - 1);
  });
  it("never gives one block to two nodes, even if two records claim it", () => {
    const r = allocateBlocks(pools, 24, ["a", "b", "c"], {}, { a: "10.244.0.0/24", b: "10.244.0.0/24" });
    expect(r.blocks).toEqual({ c: "10.244.1.0/24" });
    expect(r.diagnostics.map((d) => [d.node, d.reason])).toEqual([["a", "BlockOutsidePools"], ["b", "BlockOutsidePools"]]);
  });
  it("reports a full pool once held blocks of gone nodes fill it", () => {
    const r = allocateBlocks(["10.244.0.0/23"], 24, ["new"], {}, { old1: "10.244.0.0/24", old2: "10.244.1.0/24" });
    expect(r.blocks).toEqual({});
    expect(r.diagnostics).toEqual([expect.objectContaining({ node: "new", reason: "PoolExhausted" })]);
  });
});

describe("assignPodAddresses", () => {
  const blocks = { n1: "10.0.0.0/28", n2: "10.0.0.16/28" };
  it("honours static requests, also outside the node's block (borrowed /32)", () => {
    const r = assignPodAddresses(["10.0.0.0/24"], blocks, [
      { key: "x/a", node: "n1", requested: "10.0.0.10" },
      { key: "y/a", node: "n1", requested: "10.0.0.20" },
    ]);
    expect(r.addresses).toEqual({ "x/a": "10.0.0.10", "y/a": "10.0.0.20" });
    expect(r.borrowed).toEqual([{ key: "y/a", node: "n1", ip: "10.0.0.20" }]);
  });
  it("gives dynamic pods the lowest free address, skipping the block's first (tunnel) address", () => {
    const r = assignPodAddresses(["10.0.0.0/24"], blocks, [
      { key: "a/p1", node: "n2" },
      { key: "a/p0", node: "n2", requested: "10.0.0.17" },
    ]);
    expect(r.addresses).toEqual({ "a/p0": "10.0.0.17", "a/p1": "10.0.0.18" });
  });
  it("keeps a pod's current address across recomputation", () => {
    const r = assignPodAddresses(["10.0.0.0/24"], blocks, [{ key: "a/p1", node: "n1", current: "10.0.0.9" }, { key: "a/p2", node: "n1" }]);
    expect(r.addresses).toEqual({ "a/p1": "10.0.0.9", "a/p2": "10.0.0.1" });
  });
  it("rejects conflicting, reserved and out-of-pool requests with the annotation path", () => {
    const r = assignPodAddresses(["10.0.0.0/24"], blocks, [
      { key: "a/one", node: "n1", requested: "10.0.0.5" },
      { key: "a/two", node: "n1", requested: "10.0.0.5" },
      { key: "a/three", node: "n1", requested: "10.0.0.16" },
      { key: "a/four", node: "n1", requested: "192.168.1.1" },
    ]);
    expect(r.addresses).toEqual({ "a/one": "10.0.0.5" });
    const byKey = Object.fromEntries(r.diagnostics.map((d) => [d.key, d.message]));
    expect(byKey["a/two"]).toContain("already used by pod a/one");
    expect(byKey["a/three"]).toContain("reserved");
    expect(byKey["a/four"]).toContain("outside every pool");
    expect(r.diagnostics.every((d) => d.path.startsWith("metadata.annotations"))).toBe(true);
  });
  it("reports a full block", () => {
    const pods = Array.from({ length: 16 }, (_, i) => ({ key: `a/p${String(i).padStart(2, "0")}`, node: "n1" }));
    const r = assignPodAddresses(["10.0.0.0/24"], { n1: "10.0.0.0/28" }, pods);
    expect(Object.keys(r.addresses)).toHaveLength(15);
    expect(r.diagnostics[0]!.message).toContain("is full");
  });
});
