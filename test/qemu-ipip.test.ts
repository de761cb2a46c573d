// Why: IPIP needs a kernel module the build machines lack, so its data-plane check runs in a qemu guest on
// Debian's kernel (hack/qemu-ipip.sh, docs/qemu.md). This wrapper makes that part of `vitest run`, so CI runs
// it like any other kernel test. It is skipped only when SWITCHYARD_SKIP_QEMU=1 says so explicitly: a
// missing tool or root is a failure to see, not a silent skip. The run is bounded: the VM has 540 s, and the
// script is stopped (TERM, which kills its qemu; then KILL) if it is still running after 600 s.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SCRIPT = fileURLToPath(new URL("../hack/qemu-ipip.sh", import.meta.url));
const VM_LIMIT_S = 540;
const SCRIPT_LIMIT_MS = 600_000;
const KILL_GRACE_MS = 15_000;
const SKIP = process.env["SWITCHYARD_SKIP_QEMU"] === "1";

if (SKIP) console.log("skipping the qemu IPIP test: SWITCHYARD_SKIP_QEMU=1 is set");

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

describe.skipIf(SKIP)("IPIP on Debian's kernel in qemu (hack/qemu-ipip.sh)", () => {
  it(
    "compiles and applies ipip, ipip crossSubnet and mixed ipip+vxlan plans with the real agent, and every check passes",
    async () => {
      const run = await runScript();
      // The guest's check lines and the script's timings, in the test log.
      console.log(run.output.split("\n").filter((l) => /^(ok|not ok|#|==>|error:|\d+ passed)/.test(l)).join("\n"));
      const verdicts = [...run.output.matchAll(/^(\d+) passed, (\d+) failed$/gm)];
      const last = verdicts[verdicts.length - 1];
      const context = `exit ${run.code}${run.signal ? ` (${run.signal})` : ""}${run.timedOut ? `, stopped after ${SCRIPT_LIMIT_MS / 1000} s` : ""}; last output:\n${run.output.split("\n").slice(-40).join("\n")}`;
      expect(run.timedOut, context).toBe(false);
      expect(last, context).toBeDefined();
      expect(Number(last![1]), context).toBeGreaterThan(0);
      expect(Number(last![2]), context).toBe(0);
      expect(run.code, context).toBe(0);
    },
    SCRIPT_LIMIT_MS + KILL_GRACE_MS + 5_000,
  );
});
