// bench/cli-start: how long the `switchyard` command takes to start and finish, next to a bare `node -e 0`
// (the floor no Node program goes below on this machine). Each round runs every command once, in turn
// (A B C A B C ...), so a busy neighbour slows all of them alike and the ratios stay meaningful; it prints
// the median and the fastest wall time of each command and the ratio of its median to node's.
//   node -e 0                                    the floor
//   switchyard --help                            commander's tree, no subcommand module loaded
//   switchyard validate -f samples/vxlan.yaml    YAML + the zod schemas + semantic validation
// The command runs as a user runs it: `node bin/switchyard.mjs`, including bin's stale-build check.
// Run: `npx tsx bench/cli-start.ts [--rounds 15]` (the goal: under 0.3 s and at most 4x node -e 0).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "15" }, warmup: { type: "string", default: "2" } } });
const ROUNDS = Number(args.rounds);
const WARMUP = Number(args.warmup);
const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "switchyard.mjs");

const COMMANDS: readonly { readonly name: string; readonly argv: readonly string[] }[] = [
  { name: "node -e 0", argv: ["-e", "0"] },
  { name: "switchyard --help", argv: [BIN, "--help"] },
  { name: "switchyard validate -f samples/vxlan.yaml", argv: [BIN, "validate", "-f", "samples/vxlan.yaml"] },
];

// The children must not inherit a loader (tsx runs this file through NODE_OPTIONS on some versions).
const env = { ...process.env };
delete env["NODE_OPTIONS"];

function runOnce(argv: readonly string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [...argv], { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const times = COMMANDS.map(() => [] as number[]);
for (let round = 0; round < WARMUP + ROUNDS; round++) {
  COMMANDS.forEach((c, i) => {
    const ms = runOnce(c.argv);
    if (round >= WARMUP) times[i]!.push(ms);
  });
}

const floor = median(times[0]!);
console.log(`CLI start, ${ROUNDS} interleaved rounds (${WARMUP} warm-up rounds discarded), node ${process.version}`);
console.log(`${"command".padEnd(44)} ${"median".padStart(9)} ${"fastest".padStart(9)}  ratio to node -e 0`);
COMMANDS.forEach((c, i) => {
  const m = median(times[i]!);
  const min = Math.min(...times[i]!);
  console.log(`${c.name.padEnd(44)} ${`${m.toFixed(0)} ms`.padStart(9)} ${`${min.toFixed(0)} ms`.padStart(9)}  ${(m / floor).toFixed(2)}x`);
});
