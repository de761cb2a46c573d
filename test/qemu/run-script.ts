// Shared by the qemu test wrappers (test/qemu-*.test.ts): run a hack/qemu-*.sh entry point with a bounded
// VM time, stop it (TERM, which kills its qemu; then KILL) if it outlives the script limit, and judge the
// guest's final `N passed, M failed` verdict.
import { spawn } from "node:child_process";
import { expect } from "vitest";

export const KILL_GRACE_MS = 15_000;

export interface ScriptRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly timedOut: boolean;
}

export function runQemuScript(script: string, vmLimitS: number, scriptLimitMs: number): Promise<ScriptRun> {
  return new Promise((resolve) => {
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SWITCHYARD_QEMU_TIMEOUT: String(vmLimitS) } });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => chunks.push(b));
    child.stderr.on("data", (b: Buffer) => chunks.push(b));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stopTimer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
    }, scriptLimitMs);
    child.on("close", (code, signal) => {
      clearTimeout(stopTimer);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal, output: Buffer.concat(chunks).toString("utf8"), timedOut });
    });
  });
}

/** Logs the guest's check lines and asserts a final verdict with N > 0 passed and 0 failed, and exit 0. */
export function expectGuestPassed(run: ScriptRun, scriptLimitMs: number, tailLines: number): void {
  console.log(run.output.split("\n").filter((l) => /^(ok|not ok|#|==>|error:|\d+ passed)/.test(l)).join("\n"));
  const verdicts = [...run.output.matchAll(/^(\d+) passed, (\d+) failed$/gm)];
  const last = verdicts[verdicts.length - 1];
  const context = `exit ${run.code}${run.signal ? ` (${run.signal})` : ""}${run.timedOut ? `, stopped after ${scriptLimitMs / 1000} s` : ""}; last output:\n${run.output.split("\n").slice(-tailLines).join("\n")}`;
  expect(run.timedOut, context).toBe(false);
  expect(last, context).toBeDefined();
  expect(Number(last![1]), context).toBeGreaterThan(0);
  expect(Number(last![2]), context).toBe(0);
  expect(run.code, context).toBe(0);
}
