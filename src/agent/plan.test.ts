import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { basePlanSpec, BIRD_PROTOCOL, injected, NFT_BASE_CHAIN } from "../../test/fixtures/plan-injections";
import type { NodePolicySlice } from "../compile/policy/slice";
import type { RoutingPlan } from "../model/routing-plan";
import { applyBirdConfig } from "./bird";
import { invalidPlanConditions, invalidPlanMessage, parseNodePlan, parseRoutingSection } from "./plan";
import { iptablesBackend } from "./policy/iptables";
import { nftablesBackend } from "./policy/nftables";
import { applyRoutingPlan } from "./routing/apply";

// A namespace that does not exist: should a guard below fail, the command it lets through fails too,
// instead of touching this machine's own network.
const NOWHERE = "syh6-absent";

describe("parseNodePlan", () => {
  it("gives the controller's plan back typed, with its backend", () => {
    const r = parseNodePlan(basePlanSpec());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.routing.bgp?.peers[0]?.name).toBe("tor_192_168_10_1");
    expect(r.policy.backend).toBe("nftables");
    expect(r.policy.groups.map((g) => g.kind)).toEqual(["cidr", "named-port", "address", "address"]);
  });

  it("refuses a plan with syntax in a policy and a routing value, naming both paths", () => {
    const spec = injected(injected(basePlanSpec(), ["policy", "pods", 0, "interface"], `sy0${NFT_BASE_CHAIN}`), ["routing", "bgp", "peers", 0, "name"], BIRD_PROTOCOL);
    const r = parseNodePlan(spec);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.diagnostics.map((d) => d.path)).toEqual(["spec.routing.bgp.peers[0].name", "spec.policy.pods[0].interface"]);
    const message = invalidPlanMessage("abc", r.diagnostics);
    expect(message).toMatch(/^plan abc refused, the previous plan stays in force: spec\.routing\.bgp\.peers\[0\]\.name: must be a BIRD symbol/);
    expect(message).toContain("spec.policy.pods[0].interface: must be an interface name");
  });

  it("refuses missing sections", () => {
    const r = parseNodePlan({});
    expect(r.ok ? [] : r.diagnostics.map((d) => `${d.path}: ${d.message}`)).toEqual(["spec.routing: is required", "spec.policy: is required"]);
    expect(parseRoutingSection({ node: "n1" })).toBeUndefined();
  });
});

describe("invalidPlanConditions", () => {
  const prev = [
    { type: "Applied", status: "True", reason: "PlanApplied", message: "plan a is in force", lastTransitionTime: "t0" },
    { type: "ModeUnsupported", status: "False", reason: "Supported", message: "ok", lastTransitionTime: "t0" },
  ];
  it("turns Applied False with reason InvalidPlan and keeps the other conditions", () => {
    const out = invalidPlanConditions(prev, 4, "plan b refused", "t1");
    expect(out).toEqual([
      { type: "Applied", status: "False", reason: "InvalidPlan", message: "plan b refused", observedGeneration: 4, lastTransitionTime: "t1" },
      prev[1],
    ]);
    // Already False: the transition time stays.
    expect(invalidPlanConditions(out, 5, "plan c refused", "t2")[0]).toMatchObject({ lastTransitionTime: "t1", observedGeneration: 5 });
  });
});

describe("the apply paths refuse a crafted plan before any command runs", () => {
  const crafted = (at: (string | number)[], value: unknown) => injected(basePlanSpec(), at, value) as unknown as { routing: RoutingPlan; policy: NodePolicySlice };

  it("routing: applyRoutingPlan answers InvalidPlan and issues nothing (also the repair timer's path)", async () => {
    const r = await applyRoutingPlan(NOWHERE, crafted(["routing", "routes", 0, "dev"], "sy-vxlan\nroute flush table main").routing);
    expect(r.commands).toEqual([]);
    expect(r.errors.map((e) => `${e.reason}: ${e.message}`)).toEqual([expect.stringMatching(/^InvalidPlan: routing\.routes\[0\]\.dev: must be an interface name/)]);
  });

  const runDir = mkdtempSync(join(tmpdir(), "syh6-plan-"));
  afterAll(() => rmSync(runDir, { recursive: true, force: true }));

  it("BIRD: applyBirdConfig answers ConfigInvalid without writing or starting anything", async () => {
    const r = await applyBirdConfig({ netns: NOWHERE, runDir: join(runDir, "bird") }, crafted(["routing", "bgp", "peers", 0, "name"], BIRD_PROTOCOL).routing.bgp!);
    expect(r).toMatchObject({ ok: false, reason: "ConfigInvalid" });
    expect(!r.ok && r.message).toContain("bgp.peers[0].name");
    expect(readdirSync(runDir)).toEqual([]);
  });

  it("policy: both backends answer a failed apply (the previous rules stay in force)", async () => {
    const slice = crafted(["policy", "pods", 0, "interface"], `sy0${NFT_BASE_CHAIN}`).policy;
    for (const backend of [nftablesBackend, iptablesBackend]) {
      const r = await backend.apply(NOWHERE, slice, "h", undefined);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toMatch(/rules not rendered, the previous rules stay in force: refusing to render pods\[0\]\.interface/);
    }
  });
});
