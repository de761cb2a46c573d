import { describe, expect, it } from "vitest";
import { ResourceCache, type KObj } from "./store";

const obj = (name: string, rv: number, extra: Record<string, unknown> = {}): KObj => ({ metadata: { name, resourceVersion: String(rv), uid: `uid-${name}` }, ...extra }) as KObj;

describe("ResourceCache.replaceAll (relist)", () => {
  it("never sets an object back to the list's older version, keeps objects created after the snapshot, drops deleted ones", () => {
    const c = new ResourceCache();
    c.apply("ADDED", obj("a", 10));
    c.apply("ADDED", obj("b", 11));
    c.apply("ADDED", obj("gone", 12));
    // Watch events that arrive while a list taken at RV 20 is being read:
    c.apply("MODIFIED", obj("a", 25, { status: { appliedHash: "new" } }));
    c.apply("ADDED", obj("c", 26));
    const changed = c.replaceAll([obj("a", 15, { status: { appliedHash: "old" } }), obj("b", 18)], 20);
    expect(changed).toBe(true);
    expect(c.get("a")?.["status"]).toEqual({ appliedHash: "new" });
    expect(c.get("b")?.metadata?.resourceVersion).toBe("18");
    expect(c.get("c")).toBeDefined();
    expect(c.get("gone")).toBeUndefined();
  });

  it("without the list's version, the list replaces everything (the old behaviour)", () => {
    const c = new ResourceCache();
    c.apply("ADDED", obj("x", 30));
    c.replaceAll([obj("y", 5)]);
    expect(c.list().map((o) => o.metadata?.name)).toEqual(["y"]);
  });
});
