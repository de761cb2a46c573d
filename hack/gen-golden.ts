// Rewrites the policy golden files (test/golden/policy/*.{slice.json,nft,iptables,ipset}) from the cases in
// test/golden/policy/cases.ts. Run `npx tsx hack/gen-golden.ts` after an intended rendering change and
// review the diff; the render tests compare byte for byte. With --check, exits 1 when a file is stale.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { GOLDEN_CASES, renderGoldenFiles } from "../test/golden/policy/cases";

const check = process.argv.includes("--check");
const dir = join(import.meta.dirname, "..", "test", "golden", "policy");
mkdirSync(dir, { recursive: true });
let stale = 0;
for (const c of GOLDEN_CASES) {
  for (const [file, text] of renderGoldenFiles(c)) {
    const path = join(dir, file);
    if (check) {
      let current = "";
      try {
        current = readFileSync(path, "utf8");
      } catch {
        current = "";
      }
      if (current !== text) {
        console.error(`test/golden/policy/${file} is stale: run \`npx tsx hack/gen-golden.ts\` and review the diff`);
        stale++;
      }
    } else {
      writeFileSync(path, text);
      console.log(`wrote test/golden/policy/${file}`);
    }
  }
}
if (check && stale > 0) process.exit(1);
