import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { PLAN_GOLDEN_CASES, renderPlanGoldenFiles } from "../../test/golden/plans/cases";
import type { Mode } from "../api/cluster-network";
import { parseClusterNetwork } from "../api/validate-cluster-network";
import type { PodInfo } from "../model/cluster";
import { compileClusterPlans, PlanCache, type ClusterPlanInput } from "./cluster-plan";
import { type ClusterNode } from "../model/cluster";

const parsed = parseClusterNetwork({
  apiVersion: "switchyard.dev/v1alpha1",
  kind: "ClusterNetwork",
  metadata: { name: "default" },
  spec: { podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "bgp", bgp: { asNumber: 64512, topology: "full-mesh" } },
});
if (!parsed.ok) throw new Error(JSON.stringify(parsed.diagnostics));
const spec = parsed.value.spec;

const NODES: ClusterNode[] = Array.from({ length: 12 }, (_, i) => ({
  name: `node-${String(i).padStart(2, "0")}`,
  labels: {},
  ip: i < 6 ? `192.168.10.${i + 10}` : `192.168.20.${i + 10}`,
  underlayCIDR: i < 6 ? "192.168.10.0/24" : "192.168.20.0/24",
}));
const podsAt = (n: number): PodInfo[] =>
  Array.from({ length: n }, (_, i) => ({ namespace: "default", name: `p${i}`, labels: { app: i % 2 ? "web" : "db" }, node: NODES[i % NODES.length]!.name, ip: `10.244.${i % NODES.length}.${10 + Math.floor(i / NODES.length)}`, hostNetwork: false, ports: [] }));
const POLICY = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "db", namespace: "default" }, spec: { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }] } };

type Step = { modes: Record<string, Mode>; modesInUse: Mode[]; probe?: { epoch: number; intervalMs: number }; pods: number; policyKey: string };

function input(step: Step, cache?: PlanCache): ClusterPlanInput {
  return {
    clusterNetwork: "default",
    generation: 2,
    spec,
    nodes: NODES,
    namespaces: [{ name: "default", labels: {} }],
    pods: podsAt(step.pods),
    policies: [POLICY],
    previousBlocks: {},
    defaultMode: "vxlan",
    nodeModes: step.modes,
    modesInUse: step.modesInUse,
    ...(step.probe ? { probe: step.probe } : {}),
    ...(cache ? { cache, policyInputKey: step.policyKey } : {}),
  };
}

describe("compileClusterPlans with a PlanCache", () => {
  it("gives exactly the plans of a fresh compile at every migration step, recomputing only what changed", () => {
    const cache = new PlanCache();
    const names = NODES.map((n) => n.name);
    const modes = (migrated: number): Record<string, Mode> => Object.fromEntries(names.map((n, i) => [n, i < migrated ? "bgp" : "vxlan"]));
    const steps: Step[] = [
      { modes: modes(0), modesInUse: ["vxlan"], pods: 24, policyKey: "a" },
      { modes: modes(0), modesInUse: ["bgp", "vxlan"], probe: { epoch: 0, intervalMs: 2000 }, pods: 24, policyKey: "a" },
      { modes: modes(1), modesInUse: ["bgp", "vxlan"], probe: { epoch: 0, intervalMs: 2000 }, pods: 24, policyKey: "a" },
      { modes: modes(1), modesInUse: ["bgp", "vxlan"], probe: { epoch: 1, intervalMs: 2000 }, pods: 24, policyKey: "a" },
      { modes: modes(4), modesInUse: ["bgp", "vxlan"], probe: { epoch: 1, intervalMs: 2000 }, pods: 24, policyKey: "a" },
      { modes: modes(4), modesInUse: ["bgp", "vxlan"], probe: { epoch: 2, intervalMs: 2000 }, pods: 30, policyKey: "b" },
      { modes: modes(12), modesInUse: ["bgp"], pods: 30, policyKey: "b" },
    ];
    const reused: number[] = [];
    for (const step of steps) {
      const cached = compileClusterPlans(input(step, cache));
      const fresh = compileClusterPlans(input(step));
      expect(cached.plans).toEqual(fresh.plans);
      expect(cached.diagnostics).toEqual(fresh.diagnostics);
      reused.push(cache.last.routingReused);
    }
    // Routing: nothing to reuse at first and when the receive side changes (modesInUse); otherwise every
    // node but the ones whose mode changed (1, then 3). The 30-pod step moves no block.
    expect(reused).toEqual([0, 0, 11, 12, 9, 12, 0]);
    expect(cache.last.policyComputed).toBe(0);
  });

  it("hashes a gate's epoch into every plan and nothing else", () => {
    const step: Step = { modes: {}, modesInUse: ["bgp", "vxlan"], probe: { epoch: 1, intervalMs: 2000 }, pods: 12, policyKey: "a" };
    const a = compileClusterPlans(input(step));
    const b = compileClusterPlans(input({ ...step, probe: { epoch: 2, intervalMs: 2000 } }));
    for (const [node, plan] of a.plans) {
      const other = b.plans.get(node)!;
      expect(other.planHash).not.toBe(plan.planHash);
      expect({ ...other, planHash: "", health: { ...other.health!, epoch: 1 } }).toEqual({ ...plan, planHash: "" });
    }
  });
});

describe("compiled node plans and the agent's commands, golden files (regenerate with `npx tsx hack/gen-golden.ts`)", () => {
  for (const c of PLAN_GOLDEN_CASES) {
    for (const [file, text] of renderPlanGoldenFiles(c)) {
      it(`test/golden/plans/${file}: ${c.description}`, () => {
        const path = fileURLToPath(new URL(`../../test/golden/plans/${file}`, import.meta.url));
        let current = "(missing)";
        try {
          current = readFileSync(path, "utf8");
        } catch {
          // reported by the comparison
        }
        expect(text, `test/golden/plans/${file} differs: if the change is intended, run \`npx tsx hack/gen-golden.ts\` and review the diff`).toBe(current);
      });
    }
  }
});
