// Why: reachability is the truth the policy engine is judged by, so probes are real packets between pod
// namespaces. One long-lived agent per pod (podagent.py, in the pod's namespace) serves TCP/UDP/SCTP and
// runs probes on request over its stdin/stdout: a 9x9 matrix costs 81 JSON lines, not 81 process starts,
// and allowed cells answer in about a millisecond. Denied cells cost a full timeout, so probes run
// concurrently and a matrix has a bounded total time. Agent pids go to pid files (processes.ts) so that
// destroyLab stops them even after this process crashed; an agent also exits when its stdin closes.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { createLimiter } from "../src/base/limit";
import type { Protocol } from "../src/model/cluster";
import { forgetProcess, recordProcess, stopPid, stopRecordedProcess } from "./processes";
import { findLabPod, type Lab, type LabPod, type PodRef } from "./topology";
import { packagePath } from "../src/base/package-root";

export interface PodServer {
  readonly port: number;
  readonly protocol: Protocol;
}

export interface ProbeResult {
  readonly ok: boolean;
  /** Time to the verdict, measured inside the source pod (ms). */
  readonly ms: number;
  /** "timeout", "refused", ... when not ok. */
  readonly error?: string;
}

export interface PodAgentInfo {
  readonly pod: LabPod;
  readonly pid: number;
  readonly servers: readonly PodServer[];
}

interface AgentHandle extends PodAgentInfo {
  readonly child: ChildProcessWithoutNullStreams;
  readonly pending: Map<number, (r: ProbeResult) => void>;
  nextId: number;
  exited: boolean;
  stderrTail: string;
}

const READY_TIMEOUT_MS = 10_000;
/** Grace on top of a probe's own timeout before the TS side gives up on an agent's answer. */
const ANSWER_GRACE_MS = 3_000;
const DEFAULT_PROBE_TIMEOUT_MS = 800;

/** Running agents of this process, by pod namespace name. Lost on a crash; the pid files are not. */
const agents = new Map<string, AgentHandle>();

function pythonBinary(): string {
  const fromEnv = process.env["SWITCHYARD_PYTHON"];
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv;
  // The distribution's interpreter starts fastest; a pyenv shim on PATH adds a bash+pyenv hop per start.
  return existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/**
 * Starts (or restarts, with new servers) the agent of a lab pod; resolves once every server is bound.
 * A pod without servers still gets an agent: it is the pod's prober.
 */
export async function startPodAgent(lab: Lab, ref: PodRef, servers: readonly PodServer[]): Promise<PodAgentInfo> {
  const pod = findLabPod(lab, ref);
  await stopPodAgent(lab, ref);
  const argv = ["netns", "exec", pod.netns, pythonBinary(), packagePath("lab", "podagent.py"), "--name", `${pod.namespace}/${pod.name}`, "--servers", JSON.stringify(servers)];
  // `ip netns exec` execs python in place: child.pid is the agent's pid.
  const child = spawn("ip", argv, { stdio: ["pipe", "pipe", "pipe"] });
  if (child.pid === undefined) {
    await new Promise<void>((resolve) => child.once("error", () => resolve()));
    throw new Error(`pod agent ${pod.namespace}/${pod.name}: could not start ip netns exec`);
  }
  const handle: AgentHandle = { pod, pid: child.pid, servers: [...servers], child, pending: new Map(), nextId: 1, exited: false, stderrTail: "" };
  agents.set(pod.netns, handle);
  await recordProcess(lab.runDir, pod.netns, { pid: child.pid, what: `pod agent ${pod.namespace}/${pod.name}`, netns: pod.netns });

  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pod agent ${pod.namespace}/${pod.name} not ready after ${READY_TIMEOUT_MS} ms: ${handle.stderrTail}`)), READY_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      let msg: { event?: string; error?: string; id?: number; ok?: boolean; ms?: number };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (msg.event === "ready") {
        clearTimeout(timer);
        resolve();
      } else if (msg.event === "error") {
        clearTimeout(timer);
        reject(new Error(`pod agent ${pod.namespace}/${pod.name}: ${msg.error ?? "error"} ${handle.stderrTail}`));
      } else if (typeof msg.id === "number") {
        const done = handle.pending.get(msg.id);
        handle.pending.delete(msg.id);
        done?.({ ok: msg.ok === true, ms: msg.ms ?? 0, ...(msg.error !== undefined ? { error: msg.error } : {}) });
      }
    });
    child.stderr.on("data", (b: Buffer) => {
      handle.stderrTail = (handle.stderrTail + b.toString("utf8")).slice(-2000);
    });
    child.once("exit", (code, signal) => {
      handle.exited = true;
      clearTimeout(timer);
      if (agents.get(pod.netns) === handle) agents.delete(pod.netns);
      for (const done of handle.pending.values()) done({ ok: false, ms: 0, error: `agent exited (${signal ?? code})` });
      handle.pending.clear();
      reject(new Error(`pod agent ${pod.namespace}/${pod.name} exited (${signal ?? code}) ${handle.stderrTail}`));
    });
  });
  child.stdin.on("error", () => undefined);
  try {
    await ready;
  } catch (e) {
    await stopPodAgent(lab, ref);
    throw e;
  }
  return { pod: handle.pod, pid: handle.pid, servers: handle.servers };
}

/** Stops the pod's agent (this process's handle, else its pid file); a no-op when none runs. */
export async function stopPodAgent(lab: Lab, ref: PodRef): Promise<void> {
  const pod = findLabPod(lab, ref);
  const handle = agents.get(pod.netns);
  if (handle !== undefined) {
    agents.delete(pod.netns);
    if (!handle.exited) {
      const exited = new Promise<void>((resolve) => handle.child.once("exit", () => resolve()));
      await stopPid(handle.pid);
      await exited;
    }
    await forgetProcess(lab.runDir, pod.netns);
    return;
  }
  await stopRecordedProcess(lab.runDir, pod.netns);
}

/** Stops every agent this process started for the lab. */
export async function stopAllPodAgents(lab: Lab): Promise<void> {
  await Promise.all(lab.pods.filter((p) => agents.has(p.netns)).map((p) => stopPodAgent(lab, p)));
}

export function runningPodAgent(lab: Lab, ref: PodRef): PodAgentInfo | undefined {
  const handle = agents.get(findLabPod(lab, ref).netns);
  return handle === undefined ? undefined : { pod: handle.pod, pid: handle.pid, servers: handle.servers };
}

/** One probe from a pod (which must have a running agent) to ip:port/protocol. Never throws for a failed connection. */
export function probe(lab: Lab, from: PodRef, toIp: string, port: number, protocol: Protocol, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const pod = findLabPod(lab, from);
  const handle = agents.get(pod.netns);
  if (handle === undefined || handle.exited) {
    return Promise.reject(new Error(`pod ${pod.namespace}/${pod.name} has no running agent: startPodAgent first`));
  }
  const id = handle.nextId++;
  return new Promise<ProbeResult>((resolve) => {
    const timer = setTimeout(() => {
      handle.pending.delete(id);
      resolve({ ok: false, ms: timeoutMs + ANSWER_GRACE_MS, error: "agent did not answer" });
    }, timeoutMs + ANSWER_GRACE_MS);
    handle.pending.set(id, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
    handle.child.stdin.write(`${JSON.stringify({ id, ip: toIp, port, protocol, timeoutMs })}\n`);
  });
}

export interface ProbeTarget extends PodRef {
  readonly ip: string;
}

export interface ProbeMatrixOptions {
  /** Per-attempt timeout (ms); what a denied cell costs. Default 800. */
  readonly timeoutMs?: number;
  /** Probes in flight at once over the whole matrix (threads in the agents). Default 256. */
  readonly concurrency?: number;
  /** Expected matrix [from][to]: with `retries`, cells that do not match are probed again. */
  readonly expected?: readonly (readonly boolean[])[];
  /** Extra attempts for a cell that does not match `expected` (as upstream e2e polls). Default 0. */
  readonly retries?: number;
  /** Pause between retry rounds (ms), giving a converging engine time. Default 100. */
  readonly retryIntervalMs?: number;
  /** Hard bound on the whole call (ms); cells not decided by then report "matrix deadline". */
  readonly totalTimeoutMs?: number;
}

export interface ProbeMatrixResult {
  /** [from][to]: true = connected. */
  readonly matrix: boolean[][];
  readonly results: ProbeResult[][];
  /** How often each cell was probed. */
  readonly attempts: number[][];
  /** Cells whose final value differs from `expected` (empty without `expected`). */
  readonly mismatches: { readonly from: number; readonly to: number }[];
  readonly ms: number;
}

/** Probes every (from, to) pair on port/protocol; rows follow `fromPods`, columns `toPods`. */
export async function probeMatrix(
  lab: Lab,
  fromPods: readonly PodRef[],
  toPods: readonly ProbeTarget[],
  port: number,
  protocol: Protocol,
  options: ProbeMatrixOptions = {},
): Promise<ProbeMatrixResult> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const concurrency = options.concurrency ?? 256;
  const retries = options.retries ?? 0;
  const expected = options.expected;
  if (expected !== undefined && (expected.length !== fromPods.length || expected.some((row) => row.length !== toPods.length))) {
    throw new Error(`expected matrix must be ${fromPods.length}x${toPods.length}`);
  }
  const cells = fromPods.length * toPods.length;
  const rounds = Math.ceil(cells / concurrency);
  const totalTimeoutMs = options.totalTimeoutMs ?? (rounds * (timeoutMs + 200) + (options.retryIntervalMs ?? 100)) * (retries + 1) + 5_000;
  const deadline = started + totalTimeoutMs;
  for (const p of fromPods) {
    if (!agents.has(findLabPod(lab, p).netns)) throw new Error(`pod ${p.namespace}/${p.name} has no running agent: startPodAgent first`);
  }

  const undecided: ProbeResult = { ok: false, ms: 0, error: "matrix deadline" };
  const results: ProbeResult[][] = fromPods.map(() => toPods.map(() => undecided));
  const attempts: number[][] = fromPods.map(() => toPods.map(() => 0));
  const limit = createLimiter(concurrency);
  const runCells = async (list: readonly { from: number; to: number }[]): Promise<void> => {
    await Promise.all(
      list.map(({ from, to }) =>
        limit(async () => {
          const remaining = deadline - Date.now();
          if (remaining < 50) return;
          const r = await probe(lab, fromPods[from]!, toPods[to]!.ip, port, protocol, Math.min(timeoutMs, remaining));
          results[from]![to] = r;
          attempts[from]![to]!++;
        }),
      ),
    );
  };
  const mismatching = (): { from: number; to: number }[] =>
    expected === undefined ? [] : results.flatMap((row, from) => row.flatMap((r, to) => (r.ok !== expected[from]![to] ? [{ from, to }] : [])));

  await runCells(fromPods.flatMap((_, from) => toPods.map((__, to) => ({ from, to }))));
  for (let round = 0; round < retries; round++) {
    const again = mismatching();
    if (again.length === 0 || Date.now() + (options.retryIntervalMs ?? 100) >= deadline) break;
    await new Promise((r) => setTimeout(r, options.retryIntervalMs ?? 100));
    await runCells(again);
  }
  return { matrix: results.map((row) => row.map((r) => r.ok)), results, attempts, mismatches: mismatching(), ms: Date.now() - started };
}

/** Renders a matrix the way the conformance corpus writes it: one row per source, '.' connected, 'X' not. */
export function formatProbeMatrix(rowNames: readonly string[], colNames: readonly string[], matrix: readonly (readonly boolean[])[]): string {
  const width = Math.max(...rowNames.map((n) => n.length), 0);
  const header = `${" ".repeat(width)}  ${colNames.map((_, i) => String(i % 10)).join("")}`;
  return [header, ...matrix.map((row, i) => `${(rowNames[i] ?? "").padEnd(width)}  ${row.map((ok) => (ok ? "." : "X")).join("")}`)].join("\n");
}
