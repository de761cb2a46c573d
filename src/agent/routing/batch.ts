// One `ip -batch -` (or `bridge -batch -`) process per apply stage instead of one process per entry:
// process start-up inside a namespace costs 5-30 ms on a loaded box, so 100 routes would take seconds one
// by one and ~20 ms as a batch. `-force` keeps going past a failing line (one peer's bad gateway must not
// block every other peer's route), and the tool's "Command failed -:N" lines map each error back to its
// command, so failures are reported per entry, as values.
import { runCommand } from "../../base/exec";

export interface BatchFailure {
  readonly command: string;
  readonly message: string;
}

export interface BatchResult {
  /** Commands that the tool did not report as failed. */
  readonly succeeded: readonly string[];
  readonly failed: readonly BatchFailure[];
}

const BATCH_TIMEOUT_MS = 30_000;

/** Runs `tool -force -batch -` with one command per line; never throws. */
export async function runBatch(tool: "ip" | "bridge", netns: string | undefined, commands: readonly string[]): Promise<BatchResult> {
  if (commands.length === 0) return { succeeded: [], failed: [] };
  const r = await runCommand(tool, ["-force", "-batch", "-"], { netns, stdin: commands.join("\n") + "\n", timeoutMs: BATCH_TIMEOUT_MS });
  if (r.code === 0) return { succeeded: [...commands], failed: [] };
  const failedLines = new Map<number, string>();
  let pending: string[] = [];
  for (const line of r.stderr.split("\n")) {
    const m = /^Command failed -:(\d+)\s*$/.exec(line.trim());
    if (m) {
      failedLines.set(Number(m[1]) - 1, pending.join(" ").trim() || "failed");
      pending = [];
    } else if (line.trim() !== "") {
      pending.push(line.trim());
    }
  }
  if (failedLines.size === 0) {
    // The tool died without naming a line (killed, not started): nothing can be assumed applied.
    const message = `${tool} -batch failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${r.stderr.trim()}`;
    return { succeeded: [], failed: commands.map((command) => ({ command, message })) };
  }
  const succeeded: string[] = [];
  const failed: BatchFailure[] = [];
  commands.forEach((command, i) => {
    const message = failedLines.get(i);
    if (message === undefined) succeeded.push(command);
    else failed.push({ command, message });
  });
  return { succeeded, failed };
}
