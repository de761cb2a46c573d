import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GOLDEN_CASES, renderGoldenFiles, sliceGoldenCase } from "../../test/golden/policy/cases";
import { compilePolicies } from "../compile/policy/compile";
import { type NodePolicySlice, slicePolicyForNode, sliceHash } from "../compile/policy/slice";
import { buildNamespace, buildPod, buildPolicy, buildSnapshot } from "../../test/support/policy-builders";
import type { PolicySnapshot } from "../model/cluster";
import { renderNftables, renderNftablesSetUpdate } from "./nftables";

const GOLDEN_DIR = fileURLToPath(new URL("../../test/golden/policy/", import.meta.url));

describe("renderNftables golden files (regenerate with `npx tsx hack/gen-golden.ts`)", () => {
  for (const c of GOLDEN_CASES) {
    for (const [file, text] of renderGoldenFiles(c)) {
      it(`${file}: ${c.description}`, () => {
        let current = "";
        try {
          current = readFileSync(GOLDEN_DIR + file, "utf8");
        } catch {
          current = "(missing)";
        }
        expect(text, `test/golden/policy/${file} differs from the rendering: if the change is intended, run \`npx tsx hack/gen-golden.ts\` and review the diff`).toBe(current);
      });
    }
  }
});

function reorder(s: PolicySnapshot): PolicySnapshot {
  // Reverse and rotate every list: a different order from the original, deterministically.
  const rot = <T>(xs: readonly T[]): T[] => {
    const r = [...xs].reverse();
    return r.length > 1 ? [...r.slice(1), r[0]!] : r;
  };
  return { namespaces: rot(s.namespaces), pods: rot(s.pods), policies: rot(s.policies) };
}

describe("renderNftables is deterministic", () => {
  for (const c of GOLDEN_CASES) {
    it(`${c.name}: rendering twice, and from a reordered snapshot, gives the same bytes`, () => {
      const slice = sliceGoldenCase(c);
      const first = renderNftables(slice);
      expect(renderNftables(slice)).toBe(first);
      expect(renderNftables(JSON.parse(JSON.stringify(slice)) as NodePolicySlice)).toBe(first);
      const again = slicePolicyForNode(compilePolicies(reorder(c.snapshot)), c.node);
      expect(again).toEqual(slice);
      expect(renderNftables(again)).toBe(first);
    });
  }

  it("follows the atomic replace idiom and nft 1.0.6's layout rules", () => {
    const text = renderNftables(sliceGoldenCase(GOLDEN_CASES[0]!));
    const lines = text.split("\n");
    expect(lines.slice(1, 4)).toEqual(["table inet switchyard", "delete table inet switchyard", "table inet switchyard {"]);
    // A closing brace is always alone on its line (no `... }` on one line).
    expect(lines.filter((l) => /\S\s*}\s*$/.test(l) && !/^\s*}$/.test(l) && !/dport \{/.test(l))).toEqual([]);
    expect(text).not.toMatch(/chain fwd\b/);
    for (const m of text.matchAll(/comment "([^"]*)"/g)) expect(new TextEncoder().encode(m[1]!).length).toBeLessThanOrEqual(128);
    // The conntrack fast path comes before any policy decision.
    const forward = text.slice(text.indexOf("chain forward"));
    expect(forward.indexOf("ct state established,related accept")).toBeLessThan(forward.indexOf("ct state invalid drop"));
    expect(forward.indexOf("ct state invalid drop")).toBeLessThan(forward.indexOf("iifname vmap @egress_pods"));
    expect(forward.indexOf("iifname vmap @egress_pods")).toBeLessThan(forward.indexOf("oifname vmap @ingress_pods"));
  });

  it("can render into another table name", () => {
    const text = renderNftables(sliceGoldenCase(GOLDEN_CASES[2]!), { table: "sytest" });
    expect(text).toContain("delete table inet sytest\n");
    expect(text).not.toContain("switchyard {");
  });
});

describe("renderNftablesSetUpdate", () => {
  const base = (extraPods: ReturnType<typeof buildPod>[] = [], dbLabel = "db"): NodePolicySlice =>
    slicePolicyForNode(
      compilePolicies(
        buildSnapshot(
          [buildNamespace("x")],
          [
            buildPod("x/web", { app: "web" }, { node: "n1", ip: "10.0.0.1" }),
            buildPod("x/db", { app: dbLabel }, { node: "n1", ip: "10.0.0.2", ports: ["pg:5432/TCP"] }),
            ...extraPods,
          ],
          [
            buildPolicy("x/db", { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }] }),
            buildPolicy("x/web", { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: {} }], ports: [{ port: "pg" }] }] }),
          ],
        ),
      ),
      "n1",
    );

  it("is empty when nothing changed", () => {
    expect(renderNftablesSetUpdate(base(), base())).toBe("");
  });

  it("adds and deletes set and map elements when only membership changed", () => {
    const before = base();
    const after = base([
      buildPod("x/web-2", { app: "web" }, { node: "n1", ip: "10.0.0.3" }),
      buildPod("x/db-2", { app: "db" }, { node: "n2", ip: "10.0.1.2", ports: ["pg:5433/TCP"] }),
    ]);
    expect(sliceHash(after)).not.toBe(sliceHash(before));
    const script = renderNftablesSetUpdate(before, after)!;
    const body = script.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(body).toEqual([
      expect.stringMatching(/^add element inet switchyard g_[0-9a-f]{12} \{ 10\.0\.0\.3 \}$/),
      expect.stringMatching(/^add element inet switchyard n_[0-9a-f]{12} \{ 10\.0\.1\.2 \. tcp \. 5433 \}$/),
      expect.stringMatching(/^add element inet switchyard egress_pods \{ "sy[0-9a-f]{12}" : jump eg_[0-9a-f]{12} \}$/),
      expect.stringMatching(/^add element inet switchyard pod_interfaces \{ "sy[0-9a-f]{12}" \}$/),
    ]);
    const back = renderNftablesSetUpdate(after, before)!;
    expect(back.split("\n").filter((l) => l.startsWith("delete element"))).toHaveLength(4);
    expect(back).not.toContain("add element");
  });

  it("is undefined when chains or sets change", () => {
    // x/db no longer selected: its ingress chain disappears.
    expect(renderNftablesSetUpdate(base(), base([], "cache"))).toBeUndefined();
  });
});
