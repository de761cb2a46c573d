// Rewrites the golden files from their cases: the policy renderings (test/golden/policy/*.{slice.json,nft,
// iptables,ipset}, from test/golden/policy/cases.ts) and the compiled node plans with the agent's routing commands (test/golden/plans/*.{json,kernel},
// from test/golden/plans/cases.ts). Run `npx tsx hack/gen-golden.ts` after an intended change and review
// the diff; the tests compare byte for byte. With --check, exits 1 when a file is stale.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { GOLDEN_CASES, renderGoldenFiles } from "../test/golden/policy/cases";
import { PLAN_GOLDEN_CASES, renderPlanGoldenFiles } from "../test/golden/plans/cases";

const check = process.argv.includes("--check");
const root = join(import.meta.dirname, "..", "test", "golden");
const files: [string, string][] = [
  ...GOLDEN_CASES.flatMap((c) => renderGoldenFiles(c).map(([file, text]): [string, string] => [`policy/${file}`, text])),
  ...PLAN_GOLDEN_CASES.flatMap((c) => renderPlanGoldenFiles(c).map(([file, text]): [string, string] => [`plans/${file}`, text])),
];
let stale = 0;
for (const [file, text] of files) {
  const path = join(root, file);
  if (check) {
    let current = "";
    try {
      current = readFileSync(path, "utf8");
    } catch {
      current = "";
    }
    if (current !== text) {
      console.error(`test/golden/${file} is stale: run \`npx tsx hack/gen-golden.ts\` and review the diff`);
      stale++;
    }
  } else {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote test/golden/${file}`);
  }
}
if (check && stale > 0) process.exit(1);
