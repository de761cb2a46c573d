// `switchyard demo`: the main job on the embedded default. Each stage is real work on this machine.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { runValidate } from "./validate";

export type DemoOptions = { root: string };

/** Stage 1: every shipped sample ClusterNetwork validated with the admission rules. */
function demoValidateSamples(root: string): number {
  const dir = join(root, "samples");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();
  console.log(`\n== 1. Validating the ${files.length} shipped sample ClusterNetworks (the admission webhook's rules)`);
  let bad = 0;
  for (const f of files) {
    const lines: string[] = [];
    const code = runValidate({ file: join(dir, f) }, { out: (l) => lines.push(l), err: () => undefined });
    console.log(`   ${code === 0 ? "valid  " : "INVALID"} samples/${f}`);
    for (const l of lines) console.log(`          ${l}`);
    if (code !== 0) bad++;
  }
  return bad;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  console.log("Switchyard demo");
  const bad = demoValidateSamples(opts.root);
  if (bad > 0) return 1;
  console.log("\nStill to come in this demo, as the capabilities land: a 4-node, 2-subnet lab with the API server,");
  console.log("the controller and the agents converging; the reachability matrix with the policy behind every denial;");
  console.log("and a canary migration between modes.");
  return 0;
}
