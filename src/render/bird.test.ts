import { describe, expect, it } from "vitest";
import type { BgpPlan } from "../model/routing-plan";
import { birdPasswordProblem, renderBirdConfig } from "./bird";

const PLAN: BgpPlan = {
  asNumber: 64512,
  routerId: "192.168.10.11",
  podCIDRs: ["10.244.0.0/16", "10.96.0.0/20"],
  blockSize: 26,
  originate: ["10.244.0.0/26", "10.244.9.9/32"],
  kernelMetric: 100,
  peers: [
    { name: "node_n2", address: "192.168.10.12", asNumber: 64512, passwordSecretRef: { name: "bgp", key: "password" }, description: "node n2" },
    {
      name: "tor_192_168_10_1",
      address: "192.168.10.1",
      asNumber: 64500,
      allowLocalAs: true,
      acceptPrefixes: [{ cidr: "0.0.0.0/0", maxLength: 0 }, { cidr: "172.16.0.0/12", maxLength: 24 }],
      description: "top-of-rack 192.168.10.1",
    },
  ],
  underlayInterface: "eth*",
};
const LOG = { log: "/run/bird.log" };
const protocol = (text: string, name: string): string => {
  const start = text.indexOf(`protocol ${name} {`);
  return text.slice(start, text.indexOf("\n}", start));
};

describe("renderBirdConfig: what a node imports, exports and keeps across restarts", () => {
  const text = renderBirdConfig(PLAN, LOG, { passwords: { node_n2: "s3cret #1; {x}" } });

  it("imports from nodes only blocks of blockSize and /32s inside the pod CIDRs", () => {
    expect(text).toContain("define POD_PREFIXES = [ 10.244.0.0/16{26,26}, 10.244.0.0/16{32,32}, 10.96.0.0/20{26,26}, 10.96.0.0/20{32,32} ];");
    expect(protocol(text, "bgp node_n2")).toContain("ipv4 { import where net ~ POD_PREFIXES; export filter pods_out; };");
    expect(text).not.toContain("import all");
  });

  it("imports from a top-of-rack router also its acceptPrefixes, nothing else", () => {
    expect(protocol(text, "bgp tor_192_168_10_1")).toContain("import where net ~ POD_PREFIXES || net ~ [ 0.0.0.0/0{0,0}, 172.16.0.0/12{12,24} ];");
  });

  it("exports only the node's own prefixes (the pods static protocol)", () => {
    expect(text).toContain('filter pods_out { if proto = "pods" then accept; reject; }');
    expect(text).toContain("route 10.244.0.0/26 blackhole;");
  });

  it("turns graceful restart on for every session and the kernel protocol, never long-lived", () => {
    expect(text).toContain("graceful restart wait 20;");
    expect(protocol(text, "bgp node_n2")).toContain("graceful restart on; graceful restart time 120;");
    expect(protocol(text, "bgp tor_192_168_10_1")).toContain("graceful restart on; graceful restart time 120;");
    expect(protocol(text, "kernel")).toContain("graceful restart on;");
    expect(text).not.toContain("long lived");
  });

  it("gives a session its resolved password and none to a session without one", () => {
    expect(protocol(text, "bgp node_n2")).toContain('password "s3cret #1; {x}";');
    expect(protocol(text, "bgp tor_192_168_10_1")).not.toContain("password");
  });

  it("refuses to render a password it was not given, or one bird.conf cannot carry", () => {
    expect(() => renderBirdConfig(PLAN, LOG)).toThrow(/no password resolved for node_n2 \(Secret bgp, key password\)/);
    expect(() => renderBirdConfig(PLAN, LOG, { passwords: { node_n2: 'x"; import all; "' } })).toThrow(/double quote/);
  });
});

describe("birdPasswordProblem", () => {
  it.each([
    ["", "is empty"],
    ["a".repeat(81), "at most 80"],
    ["line\nbreak", "outside printable ASCII"],
    ["tab\there", "outside printable ASCII"],
    ["naïve", "outside printable ASCII"],
    ['quo"te', "double quote"],
    ["back\\slash", "backslash"],
  ])("refuses %j", (pw, why) => expect(birdPasswordProblem(pw)).toContain(why));
  it.each(["a", "a".repeat(80), "with space #;{}'~!"])("accepts %j", (pw) => expect(birdPasswordProblem(pw)).toBeUndefined());
});
