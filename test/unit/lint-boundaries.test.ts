// The floors of src/ are a lint rule, not a promise (eslint.config.mjs): a forbidden import must fail
// lint, and an allowed one must not. Each case lints a probe file placed in a room, as ESLint would see it.
import { join } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const eslint = new ESLint({ cwd: ROOT });

async function lint(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId}: ${m.message}`);
}

const FORBIDDEN: [string, string, string][] = [
  ["the agent imports the controller", "src/agent/probe.ts", 'import { Controller } from "../controller/controller";'],
  ["the controller imports the agent", "src/controller/probe.ts", 'import { NodeAgent } from "../agent/node-agent";'],
  ["the controller imports a type of the agent", "src/controller/probe.ts", 'import type { Capabilities } from "../agent/capabilities";'],
  ["the controller imports the lab", "src/controller/probe.ts", 'import { startApiServer } from "../../lab/apiserver";'],
  ["the agent imports the lab", "src/agent/routing/probe.ts", 'import { createLab } from "../../../lab/topology";'],
  ["the agent imports the CLI", "src/agent/probe.ts", 'import { main } from "../cli/main";'],
  ["a pure room imports the CLI", "src/migration/probe.ts", 'import { describeProgress } from "../cli/migrate";'],
  ["the lab imports the CLI", "lab/probe.ts", 'import { main } from "../src/cli/main";'],
  ["compile imports render", "src/compile/policy/probe.ts", 'import { renderNftables } from "../../render/nftables";'],
  ["the floor imports a room above it", "src/base/probe.ts", 'import { MODES } from "../api/cluster-network";'],
  ["kube imports the controller", "src/kube/probe.ts", 'import { Controller } from "../controller/controller";'],
  ["pure code imports node:fs", "src/compile/probe.ts", 'import { readFileSync } from "node:fs";'],
  ["pure code imports a runtime part of kfc", "src/modes/probe.ts", 'import { K8s } from "kubernetes-fluent-client";'],
  ["the agent's pure text work spawns a process", "src/agent/policy/iptables-scripts.ts", 'import { spawn } from "node:child_process";'],
];

const ALLOWED: [string, string, string][] = [
  ["the agent imports kube and the floor", "src/agent/probe.ts", 'import { NodeNetworkGVK } from "../kube/kinds";\nimport { runCommand } from "../base/exec";\nexport { NodeNetworkGVK, runCommand };'],
  ["the controller imports the migration machine", "src/controller/probe.ts", 'import { transition } from "../migration/machine";\nexport { transition };'],
  ["the CLI imports the lab", "src/cli/probe.ts", 'import { createLab } from "../../lab/topology";\nexport { createLab };'],
  ["the lab imports the product", "lab/probe.ts", 'import { NodeAgent } from "../src/agent/node-agent";\nexport { NodeAgent };'],
  ["pure code imports a type of kfc", "src/modes/probe.ts", 'import type { GenericKind } from "kubernetes-fluent-client";\nexport type X = GenericKind;'],
];

describe("lint keeps the arrows pointing down", () => {
  for (const [what, file, code] of FORBIDDEN) {
    it(`fails when ${what}`, async () => {
      const errors = await lint(file, `${code}\nexport const probe = 1;\n`);
      expect(errors.some((e) => e.startsWith("@typescript-eslint/no-restricted-imports")), errors.join("\n") || "no lint error").toBe(true);
    });
  }
  for (const [what, file, code] of ALLOWED) {
    it(`passes when ${what}`, async () => {
      expect(await lint(file, `${code}\n`)).toEqual([]);
    });
  }
  it("fails when pure code reads the clock", async () => {
    const errors = await lint("src/render/probe.ts", "export const t = Date.now();\n");
    expect(errors.some((e) => e.startsWith("no-restricted-properties")), errors.join("\n")).toBe(true);
  });
});
