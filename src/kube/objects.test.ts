import { describe, expect, it } from "vitest";
import { podFromObject, withoutNulls } from "./objects";

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

describe("podFromObject: the requested address stands in until the runtime reports one", () => {
  const pod = (annotations: Record<string, string>, podIP?: string) =>
    podFromObject({ metadata: { name: "a", namespace: "x", annotations }, spec: { nodeName: "n1", containers: [] }, status: podIP ? { podIP } : {} } as never);
  it("takes a single IPv4 request while there is no podIP, and the podIP once there is one", () => {
    expect(pod({ "switchyard.dev/ip-addrs": '["10.0.0.10"]' })?.ip).toBe("10.0.0.10");
    expect(pod({ "switchyard.dev/ip-addrs": '["10.0.0.10"]' }, "10.0.0.2")?.ip).toBe("10.0.0.2");
  });
  it("ignores a request that is not one IPv4 address", () => {
    for (const bad of ["10.0.0.10", '["10.0.0.10","10.0.0.11"]', '["fd00::1"]', "[1]", "{"]) expect(pod({ "switchyard.dev/ip-addrs": bad })?.ip, bad).toBeUndefined();
  });
});
