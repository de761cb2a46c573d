// Defence in depth: each renderer checks the values it turns into kernel text, whatever parsed the plan
// before. Every crafted plan of the injection table (test/fixtures/plan-injections.ts) is handed straight to
// the renderers, past the schema: a value that would be syntax makes the renderer throw, naming the field;
// free text that only ends up in a comment is neutralised instead.
import { describe, expect, it } from "vitest";
import { basePlanSpec, injected, PLAN_INJECTIONS } from "../../test/fixtures/plan-injections";
import { UnsafeKernelValueError } from "../api/kernel-names";
import type { NodePolicySlice } from "../compile/policy/slice";
import type { BgpPlan, RoutingPlan } from "../model/routing-plan";
import { renderBirdConfig } from "./bird";
import { renderIptables } from "./iptables";
import { renderNatTable } from "./nat";
import { renderNftables, renderNftablesSetUpdate } from "./nftables";

type Spec = { routing: RoutingPlan; policy: NodePolicySlice };
const base = basePlanSpec() as unknown as Spec;
const crafted = (at: readonly (string | number)[], value: unknown) => injected(basePlanSpec(), at, value) as unknown as Spec;
const LOG = { log: "/run/switchyard/bird.log" };

/** Values that only ever reach a comment: the renderers replace quotes, backslashes and line breaks. */
const COMMENT_ONLY = new Set(["source", "policies"]);

function expectRefused(render: () => unknown, field: string): void {
  let error: unknown;
  try {
    render();
  } catch (e) {
    error = e;
  }
  expect(error, "the renderer emitted text").toBeInstanceOf(UnsafeKernelValueError);
  expect((error as Error).message).toContain(field);
}

describe("the renderers accept the base plan", () => {
  it("nft, nft set update, iptables, bird and nat render it", () => {
    expect(renderNftables(base.policy)).toContain("table inet switchyard {");
    expect(renderNftablesSetUpdate(base.policy, base.policy)).toBe("");
    expect(renderIptables(base.policy).iptables).toContain("COMMIT");
    expect(renderBirdConfig(base.routing.bgp!, LOG)).toContain("protocol bgp tor_192_168_10_1 {");
    expect(renderNatTable(base.routing.nat)).toContain("snat to 192.168.10.11");
  });
});

describe("policy renderers: a value that would be syntax throws, naming its field", () => {
  for (const c of PLAN_INJECTIONS.filter((x) => x.at[0] === "policy" && x.crd !== "pruned")) {
    const field = c.at.slice(1).map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`)).join("").slice(1);
    if (COMMENT_ONLY.has(String(c.at[c.at.length - 2])) || COMMENT_ONLY.has(String(c.at[c.at.length - 1]))) {
      it(`${c.name}: neutralised inside the comment (nft, iptables)`, () => {
        const slice = crafted(c.at, c.value).policy;
        const nft = renderNftables(slice);
        const ipt = renderIptables(slice).iptables;
        expect(nft.split("\n")).toHaveLength(renderNftables(base.policy).split("\n").length);
        expect(ipt.split("\n")).toHaveLength(renderIptables(base.policy).iptables.split("\n").length);
        for (const text of [nft, ipt]) expect(text).not.toContain(String(c.value));
      });
      continue;
    }
    // A reference's field is its own (pods[0].egress); a group member's or a range's is the element's.
    const named = field.replace(/^chains\[0\]\.rules\[0\]\.ports\[0\]\.ranges\[0\]$/, "chains[0].rules[0].ports[0].ranges[0][");
    it(`${c.name}: nft, nft set update, iptables (${field})`, () => {
      const slice = crafted(c.at, c.value).policy;
      expectRefused(() => renderNftables(slice), named);
      expectRefused(() => renderNftablesSetUpdate(base.policy, slice), named);
      expectRefused(() => renderIptables(slice), named);
    });
  }
});

describe("bird.conf: a value that would be BIRD syntax throws, naming its field", () => {
  for (const c of PLAN_INJECTIONS.filter((x) => x.at[0] === "routing" && x.at[1] === "bgp")) {
    const field = c.at.slice(1).map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`)).join("").slice(1);
    it(`${c.name} (${field})`, () => {
      expectRefused(() => renderBirdConfig(crafted(c.at, c.value).routing.bgp as BgpPlan, LOG), field);
    });
  }
  it("the log path cannot close its string either (the agent's own path, quoted)", () => {
    expect(renderBirdConfig(base.routing.bgp!, { log: '/tmp/x";\nprotocol static y {' }).split("\n")[1]).toBe('log "/tmp/x;protocol static y {" all;');
  });
});

describe("NAT table: a value that would be nft syntax throws, naming its field", () => {
  for (const c of PLAN_INJECTIONS.filter((x) => x.at[0] === "routing" && x.at[1] === "nat")) {
    const field = c.at.slice(1).map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`)).join("").slice(1);
    it(`${c.name} (${field})`, () => {
      expectRefused(() => renderNatTable(crafted(c.at, c.value).routing.nat), field);
    });
  }
});
