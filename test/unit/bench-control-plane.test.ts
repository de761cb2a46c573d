// The control-plane benchmark's logic at a tiny size (20 nodes / 200 pods / 20 policies), so the bench
// cannot rot between the rare full-size runs. Asserts functional outcomes only, never a time: the cluster
// converged with every node realized, each change rewrote exactly the NodeNetworks whose plan changed and
// their (simulated) agents reported them applied, the delay histogram observed every change, and a
// restarted controller rewrote no NodeNetwork.
import { describe, expect, it } from "vitest";
import { runControlPlaneBench, type ControlPlaneBenchResult } from "../../bench/control-plane";

describe("bench/control-plane at a tiny size", () => {
  let result: ControlPlaneBenchResult;

  it("runs end to end: emulator, controller, simulated agents behind one kfc watch", async () => {
    result = await runControlPlaneBench({ nodes: 20, pods: 200, policies: 20, namespaces: 10, subnets: 4, repeats: 2, applyDelayMs: 0, agentFeed: "kfc", timeoutMs: 60_000 });
    expect(result.errors).toEqual([]);
    expect(result.agentFailures).toBe(0);
    expect(result.historyLost).toBe(0);
  }, 180_000);

  it("converges: every node has a published plan that its agent reported applied", () => {
    expect(result.initial.desired).toBe(20);
    expect(result.initial.realized).toBe(20);
    expect(result.initial.publishes).toBe(20);
    expect(result.initial.agentReports).toBeGreaterThanOrEqual(20);
    expect(result.initial.histogram.count).toBeGreaterThan(0);
    expect(result.initial.requests.find((r) => r.verb === "patch" && r.resource === "nodenetworks")?.count).toBe(20);
  });

  it("rewrites exactly the affected NodeNetworks on each change, and they are realized and observed", () => {
    expect(result.changes.map((c) => c.kind)).toEqual(["policy-add", "policy-add", "policy-modify", "policy-modify", "pod-relabel", "pod-relabel"]);
    for (const c of result.changes) {
      expect(c.affected, c.what).toBeGreaterThan(0);
      expect(c.affected, c.what).toBeLessThan(c.total);
      expect(c.rewritten, c.what).toBe(c.affected);
      expect(c.allRealized, c.what).toBe(true);
      expect(c.histogramCount, c.what).toBeGreaterThanOrEqual(1);
    }
  });

  it("a restarted controller rewrites no NodeNetwork and reports Ready", () => {
    expect(result.restart?.nodeNetworkPatches).toBe(0);
    expect(result.restart?.passes).toBeGreaterThan(0);
  });
});
