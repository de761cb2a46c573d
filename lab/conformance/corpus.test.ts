// Runs the reference evaluator over every case, step and probe of the upstream conformance corpus and
// checks every expected matrix cell (the diagonal is skipped: upstream never asserts loopback). The same
// cells are also checked through compile -> slice -> interpret, the kernel's view of the rendered rules.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import {
  applyCorpusAction,
  buildCorpusSnapshot,
  type ConformanceCorpus,
  corpusPodServes,
  initialCorpusState,
  listExpectedCells,
  parseConformanceCorpus,
  substituteCorpusTemplates,
} from "./corpus";
import { evaluateConnection } from "../../src/compile/policy/evaluate";
import { compilePolicies } from "../../src/compile/policy/compile";
import { type NodePolicySlice, slicePolicyForNode } from "../../src/compile/policy/slice";
import { interpretPacket } from "../../test/support/policy-interpreter";

const CORPUS_PATH = fileURLToPath(new URL("../../test/fixtures/conformance/netpol-upstream.yaml", import.meta.url));

function loadCorpus(): ConformanceCorpus {
  const parsed = parseConformanceCorpus(parse(readFileSync(CORPUS_PATH, "utf8")));
  if (!parsed.ok) throw new Error(`corpus does not parse:\n${parsed.errors.join("\n")}`);
  return parsed.corpus;
}

const corpus = loadCorpus();
/** Spread pods over three nodes so that same-node and cross-node paths are both exercised. */
const NODES = ["n1", "n2", "n3"];
const nodeOf = (ref: string): string => NODES[[...ref].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % NODES.length]!;

describe("conformance corpus", () => {
  it("parses: 51 upstream cases with 80 probe matrices", () => {
    expect(corpus.cases.length).toBe(51);
    expect(corpus.cases.flatMap((c) => c.steps.flatMap((s) => s.probes)).length).toBe(80);
  });

  it("substitutes ipBlock templates from the pod IPs", () => {
    const ipOf = (ref: string): string | undefined => ({ "x/a": "10.0.0.10", "x/b": "10.0.0.11" })[ref];
    expect(substituteCorpusTemplates("{{podip x/a}}", ipOf)).toBe("10.0.0.10");
    expect(substituteCorpusTemplates("{{hostcidr x/b}}", ipOf)).toBe("10.0.0.11/32");
    expect(substituteCorpusTemplates("{{supernet x/a 4}}", ipOf)).toBe("0.0.0.0/4");
    expect(substituteCorpusTemplates("{{supernet x/a 24}}", ipOf)).toBe("10.0.0.0/24");
  });

  for (const c of corpus.cases) {
    it(`${c.id}: the reference evaluator and the compiled slices give every expected cell`, () => {
      let state = initialCorpusState(corpus, c);
      let checked = 0;
      const mismatches: string[] = [];
      for (const step of c.steps) {
        for (const action of step.actions) state = applyCorpusAction(state, action, c);
        const snapshot = buildCorpusSnapshot(corpus, state, nodeOf);
        const model = compilePolicies(snapshot);
        expect(model.diagnostics).toEqual([]);
        const slices = new Map<string, NodePolicySlice>(NODES.map((n) => [n, slicePolicyForNode(model, n)]));
        for (const probe of step.probes) {
          for (const cell of listExpectedCells(probe)) {
            if (cell.loopback && corpus.ignoreLoopback) continue;
            const [fromNs, fromName] = cell.from.split("/") as [string, string];
            const [toNs, toName] = cell.to.split("/") as [string, string];
            const verdict = evaluateConnection(snapshot, {
              from: { namespace: fromNs, name: fromName },
              to: { namespace: toNs, name: toName },
              port: probe.port,
              protocol: probe.protocol,
            });
            const served = corpusPodServes(state, cell.to, probe.port, probe.protocol);
            const got = served && verdict.allowed;
            const srcIp = state.pods.get(cell.from)!.ip;
            const dstIp = state.pods.get(cell.to)!.ip;
            const kernel = interpretPacket(
              { srcIp, dstIp, protocol: probe.protocol, dport: probe.port },
              slices.get(nodeOf(cell.from)),
              slices.get(nodeOf(cell.to)),
            );
            const where = `step ${step.step} ${probe.protocol}/${probe.port} ${cell.from} -> ${cell.to}`;
            if (got !== cell.connected) mismatches.push(`${where}: expected ${cell.connected ? "connected" : "blocked"}, evaluator says\n${verdict.explanation}`);
            if (served && kernel.allowed !== verdict.allowed) mismatches.push(`${where}: interpreter says ${kernel.allowed}, evaluator ${verdict.allowed}`);
            checked++;
          }
        }
      }
      expect(mismatches).toEqual([]);
      expect(checked).toBeGreaterThan(0);
    });
  }
});
