// Why: every kernel-facing module (nft, iptables, ip, the lab) spawns short-lived tools. This is the one
// place that does it: no shell (arguments are never re-parsed, so names and rule text cannot inject), an
// optional network namespace via `ip netns exec` (which execs the tool in place, so the child's pid IS the
// tool's pid and a timeout kill hits the right process), stdin as text, and a hard timeout that kills
// that pid. Failures come back as values ({code, stderr}); `runOk` is the throwing variant for steps
// where failure means "stop and clean up".
import { spawn } from "node:child_process";

export interface ExecOptions {
  /** Run inside this network namespace (`ip netns exec NS ...`). Undefined = the caller's namespace. */
  readonly netns?: string;
  /** Text written to the child's stdin (then closed). Without it stdin is empty (/dev/null-like). */
  readonly stdin?: string;
  /** Extra environment variables (on top of this process's). */
  readonly env?: Readonly<Record<string, string>>;
  /** Kill the child (SIGKILL, by pid) after this many ms. Default 30 s. */
  readonly timeoutMs?: number;
}

export interface ExecResult {
  /** Exit code; -1 when killed by a signal or when the program could not be started. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** The argv actually executed: `ip netns exec NS cmd args...` when a namespace is given. */
export function commandLine(cmd: string, args: readonly string[], netns?: string): string[] {
  return netns === undefined ? [cmd, ...args] : ["ip", "netns", "exec", netns, cmd, ...args];
}

/** Runs a program without a shell; never throws for a non-zero exit, a timeout or a missing program. */
export function runCommand(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const argv = commandLine(cmd, args, options.netns);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise<ExecResult>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], shell: false, ...(options.env ? { env: { ...process.env, ...options.env } } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const finish = (code: number, extraErr = ""): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8") + extraErr,
        timedOut,
      });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, timeoutMs);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => finish(-1, `${e.message}\n`));
    child.on("close", (code) => finish(code ?? -1, timedOut ? `killed after ${timeoutMs} ms timeout\n` : ""));
    // EPIPE when the child exits before reading its stdin is not an error of ours: the exit code tells.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.stdin ?? "");
  });
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
  ) {
    super(`command failed (exit ${result.code}${result.timedOut ? ", timed out" : ""}): ${argv.join(" ")}\n${result.stderr.trim()}`);
    this.name = "CommandError";
  }
}

/** Runs a program and returns its stdout; throws a CommandError naming the command and its stderr on failure. */
export async function runOk(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<string> {
  const result = await runCommand(cmd, args, options);
  if (result.code !== 0) throw new CommandError(commandLine(cmd, args, options.netns), result);
  return result.stdout;
}
