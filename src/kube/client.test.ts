import { describe, expect, it } from "vitest";
import { FakeKube } from "../../test/support/fake-kube";
import { fencedWrites, FencedError } from "./client";

describe("fencedWrites", () => {
  it("lets writes through only while the lease is held, checked at each write; reads always", async () => {
    const kube = new FakeKube();
    let held = true;
    const c = fencedWrites(kube, () => held);
    await c.create("NodeNetwork", { apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name: "n1" } });
    held = false;
    await expect(c.apply("NodeNetwork", { apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name: "n2" } })).rejects.toBeInstanceOf(FencedError);
    await expect(c.patch("NodeNetwork", { name: "n1" }, [{ op: "add", path: "/metadata/labels", value: { a: "b" } }])).rejects.toThrow(/no longer holds the lease/);
    await expect(c.patchStatus("NodeNetwork", { name: "n1" }, { appliedHash: "x" })).rejects.toBeInstanceOf(FencedError);
    await expect(c.delete("NodeNetwork", { name: "n1" })).rejects.toBeInstanceOf(FencedError);
    await expect(c.create("Event", { apiVersion: "v1", kind: "Event", metadata: { name: "e", namespace: "default" } })).rejects.toBeInstanceOf(FencedError);
    // Nothing of it reached the API; reads still work.
    const list = await c.list("NodeNetwork");
    expect(list.items.map((o) => o.metadata?.name)).toEqual(["n1"]);
    expect((await c.get("NodeNetwork", { name: "n1" }))?.metadata?.labels).toBeUndefined();
  });
});
