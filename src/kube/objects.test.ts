import { describe, expect, it } from "vitest";
import { withoutNulls } from "./objects";

describe("withoutNulls", () => {
  it("drops null-valued keys at any depth, as if the server had removed the emptied map", () => {
    const plan = { routing: { devices: null, routes: [{ dst: "10.0.0.0/24", via: null }] }, mtu: 1450, health: null };
    expect(withoutNulls(plan)).toEqual({ routing: { routes: [{ dst: "10.0.0.0/24" }] }, mtu: 1450 });
  });
  it("keeps array items and scalars as they are", () => {
    expect(withoutNulls([1, null, "a"])).toEqual([1, null, "a"]);
    expect(withoutNulls(null)).toBeNull();
  });
});
