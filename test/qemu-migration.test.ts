// Why: the "Safe mode migration" acceptance item (IPIP -> BGP with 0 packets lost, every TCP connection
// alive with no stall over 200 ms, a denied flow denied at every instant) can only be shown on a kernel with
// ipip, so it runs in a qemu guest (hack/qemu-migration.sh, docs/qemu.md). It is OPT-IN for now
// (SWITCHYARD_QEMU_MIGRATION=1): the whole stack under TCG emulation on 2 shared cores takes 3-7 minutes and
// its timing depends on the host's load (docs/qemu.md has the measurements), so it is not yet part of the
// default `npm test`; when it is skipped it says so. The run is bounded: the VM has 480 s, and the script is
// stopped (TERM, which kills its qemu; then KILL) after 540 s.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SCRIPT = fileURLToPath(new URL("../hack/qemu-migration.sh", import.meta.url));
const VM_LIMIT_S = 480;
const SCRIPT_LIMIT_MS = 540_000;
const KILL_GRACE_MS = 15_000;
const SKIP = process.env["SWITCHYARD_SKIP_QEMU"] === "1" || process.env["SWITCHYARD_QEMU_MIGRATION"] !== "1";

if (SKIP) console.log("skipping the qemu IPIP -> BGP migration test: opt-in with SWITCHYARD_QEMU_MIGRATION=1 (3-7 min of emulated VM time); or run bash hack/qemu-migration.sh");

interface ScriptRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly timedOut: boolean;
}

function runScript(): Promise<ScriptRun> {
  return new Promise((resolve) => {
    const child = spawn("bash", [SCRIPT], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SWITCHYARD_QEMU_TIMEOUT: String(VM_LIMIT_S) } });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => chunks.push(b));
    child.stderr.on("data", (b: Buffer) => chunks.push(b));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stopTimer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
    }, SCRIPT_LIMIT_MS);
    child.on("close", (code, signal) => {
      clearTimeout(stopTimer);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal, output: Buffer.concat(chunks).toString("utf8"), timedOut });
    });
  });
}

describe.skipIf(SKIP)("IPIP -> BGP migration under traffic on Debian's kernel in qemu (hack/qemu-migration.sh)", () => {
  it(
    "completes with 0 pings lost, the TCP stream alive without a network stall over 200 ms, and the denied flow never let through",
    async () => {
      const run = await runScript();
      // The guest's check lines, its measurements and the script's timings, in the test log.
      console.log(run.output.split("\n").filter((l) => /^(ok|not ok|#|==>|error:|\d+ passed)/.test(l)).join("\n"));
      const verdicts = [...run.output.matchAll(/^(\d+) passed, (\d+) failed$/gm)];
      const last = verdicts[verdicts.length - 1];
      const context = `exit ${run.code}${run.signal ? ` (${run.signal})` : ""}${run.timedOut ? `, stopped after ${SCRIPT_LIMIT_MS / 1000} s` : ""}; last output:\n${run.output.split("\n").slice(-60).join("\n")}`;
      expect(run.timedOut, context).toBe(false);
      expect(last, context).toBeDefined();
      expect(Number(last![1]), context).toBeGreaterThan(0);
      expect(Number(last![2]), context).toBe(0);
      expect(run.code, context).toBe(0);
    },
    SCRIPT_LIMIT_MS + KILL_GRACE_MS + 5_000,
  );
});
