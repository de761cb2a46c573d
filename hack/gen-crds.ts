// Writes the CRDs generated from the zod schemas to crds/. With --check, exits 1 when the committed
// files differ from what the schemas generate (CI's drift check) and says how to fix it.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "../src/api/crd/crds";

const check = process.argv.includes("--check");
const dir = join(import.meta.dirname, "..", "crds");
mkdirSync(dir, { recursive: true });
let drift = 0;
for (const [file, text] of renderCrdFiles()) {
  const path = join(dir, file);
  if (check) {
    let current = "";
    try {
      current = readFileSync(path, "utf8");
    } catch {
      current = "";
    }
    if (current !== text) {
      console.error(`crds/${file} is out of date with src/api: run \`npm run gen:crds\` and commit the result`);
      drift++;
    }
  } else {
    writeFileSync(path, text);
    console.log(`wrote crds/${file}`);
  }
}
if (check) {
  if (drift > 0) process.exit(1);
  console.log("crds/: up to date with the schemas");
}
