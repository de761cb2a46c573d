// The registry's lookups: by mode, by transport, by device name, the devices Switchyard owns, the
// capabilities the agent must probe, and which transport a kernel route means.
import { describe, expect, it } from "vitest";
import {
  backendForDevice,
  backendForTransport,
  backendOf,
  MODE_BACKEND_LIST,
  MODE_DEVICES,
  MODE_NEEDS,
  OWNED_DEVICES,
  transportInKernel,
} from "./registry";

describe("registry lookups", () => {
  it("lists the backends in table order", () => {
    expect(MODE_BACKEND_LIST.map((b) => b.mode)).toEqual(["vxlan", "ipip", "host-gw", "bgp"]);
    expect(backendOf("host-gw").mode).toBe("host-gw");
  });

  it.each([
    ["vxlan", "vxlan"],
    ["ipip", "ipip"],
    ["bgp", "bgp"],
    ["native", undefined],
    ["host-gw", undefined],
  ] as const)("the transport %s is provided by %s", (transport, mode) => {
    expect(backendForTransport(transport)?.mode).toBe(mode);
  });

  it("finds a backend by its device's name, and owns exactly the modes' devices in table order", () => {
    expect(backendForDevice("sy-vxlan")?.mode).toBe("vxlan");
    expect(backendForDevice("sy-ipip")?.mode).toBe("ipip");
    expect(backendForDevice("eth0")).toBeUndefined();
    expect(OWNED_DEVICES).toEqual(["sy-vxlan", "sy-ipip"]);
    expect(MODE_DEVICES.map((d) => [d.mode, d.device.capability, d.device.probe.name, d.device.probe.type.join(" ")])).toEqual([
      ["vxlan", "vxlan", "sy-probe-vx", "vxlan id 4242 dstport 4789"],
      ["ipip", "ipip", "sy-probe-ipip", "ipip local 127.0.0.1"],
    ]);
  });

  it("every capability a mode needs can be probed: a kernel one by a mode's device, a tool by its program", () => {
    expect(MODE_NEEDS.map((n) => [n.capability, n.kind])).toEqual([["vxlan", "kernel"], ["ipip", "kernel"], ["bird", "tool"]]);
    for (const need of MODE_NEEDS) {
      if (need.kind === "kernel") expect(MODE_DEVICES.some((d) => d.device.capability === need.capability), need.capability).toBe(true);
      else expect(need.program?.version.length, need.capability).toBeGreaterThan(0);
    }
    expect(MODE_NEEDS.find((n) => n.capability === "bird")?.program).toEqual({ version: ["bird", "--version"], starts: ["birdc", "-h"] });
  });

  it("names the protocol of each kernel route's device or daemon, native otherwise", () => {
    expect(transportInKernel("sy-vxlan", "77")).toBe("vxlan");
    expect(transportInKernel("sy-ipip", "77")).toBe("ipip");
    expect(transportInKernel("eth0", "bird")).toBe("bgp");
    expect(transportInKernel("eth0", "77")).toBe("native");
    expect(transportInKernel(undefined, undefined)).toBe("native");
    // A device wins over the protocol (a BIRD route through a tunnel would still be the tunnel's transport).
    expect(transportInKernel("sy-vxlan", "bird")).toBe("vxlan");
  });
});
