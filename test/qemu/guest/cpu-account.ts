// Why: under TCG the guest's two vCPUs are the scarce resource, and a slow migration step can be CPU
// starvation or a real wait. This measures, between two snapshots, where the guest's CPU time went: the
// check process itself (API server emulator + controller + agents, all JS), the short-lived tools it spawned
// and reaped (the agents' ip/nft/sysctl/birdc/ping), each long-lived process we know by pid (traffic
// helpers, ping streams, BIRD daemons), the kernel's softirq time (packet processing), and idle time. Plus
// this process's event-loop delay, which shows when the control plane itself could not run.
import { readFile } from "node:fs/promises";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";

/** USER_HZ: /proc reports CPU times in 1/100 s on Linux. */
const TICK_S = 0.01;

export interface CpuSnapshot {
  readonly at: number;
  /** /proc/stat "cpu" line, seconds: user, nice, system, idle, iowait, irq, softirq. */
  readonly total: Readonly<Record<"user" | "nice" | "system" | "idle" | "iowait" | "irq" | "softirq", number>>;
  /** This process: utime+stime, and the reaped children's cutime+cstime (seconds). */
  readonly self: number;
  readonly children: number;
  /** Seconds per labelled long-lived process (absent when it could not be read). */
  readonly procs: ReadonlyMap<string, number>;
}

async function procTimes(pid: number | string): Promise<{ own: number; children: number } | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // After the comm: state is index 0, so utime (field 14) is index 11, stime 12, cutime 13, cstime 14.
    return { own: (Number(f[11]) + Number(f[12])) * TICK_S, children: (Number(f[13]) + Number(f[14])) * TICK_S };
  } catch {
    return undefined;
  }
}

export async function cpuSnapshot(procs: ReadonlyMap<string, number | undefined>): Promise<CpuSnapshot> {
  const stat = await readFile("/proc/stat", "utf8");
  const v = (stat.split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map((x) => Number(x) * TICK_S);
  const self = await procTimes("self");
  const per = new Map<string, number>();
  for (const [label, pid] of procs) {
    if (pid === undefined) continue;
    const t = await procTimes(pid);
    if (t) per.set(label, t.own);
  }
  return {
    at: Date.now(),
    total: { user: v[0] ?? 0, nice: v[1] ?? 0, system: v[2] ?? 0, idle: v[3] ?? 0, iowait: v[4] ?? 0, irq: v[5] ?? 0, softirq: v[6] ?? 0 },
    self: self?.own ?? 0,
    children: self?.children ?? 0,
    procs: per,
  };
}

/** One line: where the CPU went between two snapshots (seconds of CPU, and the share of what 2 vCPUs offer). */
export function describeCpu(a: CpuSnapshot, b: CpuSnapshot, vcpus: number): string {
  const wall = (b.at - a.at) / 1000;
  const cap = wall * vcpus;
  const d = (x: number, y: number): number => Math.max(0, y - x);
  const pct = (s: number): string => `${s.toFixed(1)} s (${Math.round((100 * s) / cap)}%)`;
  const busy = (["user", "nice", "system", "irq", "softirq"] as const).reduce((sum, k) => sum + d(a.total[k], b.total[k]), 0);
  const per = [...b.procs].map(([label, end]) => [label, d(a.procs.get(label) ?? 0, end)] as const);
  const known = per.reduce((s, [, x]) => s + x, 0) + d(a.self, b.self) + d(a.children, b.children);
  const idle = d(a.total.idle, b.total.idle) + d(a.total.iowait, b.total.iowait);
  return [
    // Under TCG a vCPU is a host thread: time it was not running at all shows up in neither column.
    `over ${wall.toFixed(1)} s wall (${cap.toFixed(0)} vCPU-s): busy ${pct(busy)}, idle ${pct(idle)}, vCPUs not running on the host ${pct(Math.max(0, cap - busy - idle))}`,
    `control plane process (API server + controller + agents) ${pct(d(a.self, b.self))}`,
    `tools it spawned (ip, nft, sysctl, birdc, ping) ${pct(d(a.children, b.children))}`,
    ...per.map(([label, s]) => `${label} ${pct(s)}`),
    `kernel softirq (packets) ${pct(d(a.total.softirq, b.total.softirq))}`,
    `other ${pct(Math.max(0, busy - known - d(a.total.softirq, b.total.softirq)))}`,
  ].join("; ");
}

/** Event-loop delay of this process (the control plane's responsiveness), in ms. */
export class LoopDelay {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  constructor() {
    this.h.enable();
  }
  /** max / p99 / mean since the last reset, then resets. */
  take(): string {
    const ms = (ns: number): number => Math.round(ns / 1e6);
    const out = `event-loop delay max ${ms(this.h.max)} ms, p99 ${ms(this.h.percentile(99))} ms, mean ${ms(this.h.mean)} ms`;
    this.h.reset();
    return out;
  }
  stop(): void {
    this.h.disable();
  }
}

const POLICIES: Record<number, string> = { 0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH", 5: "SCHED_IDLE", 6: "SCHED_DEADLINE" };

/**
 * A process's scheduling as the kernel sees it (/proc/PID/stat: nice, rt_priority, policy; the CPUs it may
 * run on), e.g. "SCHED_FIFO 50 cpus 0" or "SCHED_OTHER nice 10 cpus 0-1"; undefined when it cannot be read (the process is gone).
 */
export async function schedulingOf(pid: number | string): Promise<string | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // After the comm, field n of proc(5) is at index n - 3: nice (19) 16, rt_priority (40) 37, policy (41) 38.
    const policy = Number(f[38]);
    const name = POLICIES[policy] ?? `policy ${policy}`;
    const cpus = /^Cpus_allowed_list:\s*(\S+)/m.exec(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""))?.[1];
    return `${policy === 1 || policy === 2 ? `${name} ${f[37]}` : `${name} nice ${f[16]}`}${cpus !== undefined ? ` cpus ${cpus}` : ""}`;
  } catch {
    return undefined;
  }
}
