// Why: the migration check's claims are about live traffic: no ping lost, no TCP stall over 200 ms, a denied
// flow never let through. This file runs and reads that traffic inside the qemu guest: timestamped ping
// streams (`ping -D`, iputils, started in the pod's namespace), the per-pod node helper for TCP streams and
// connect probes (test/qemu/pod-traffic.ts), and the kernel's own TCP retransmission counters (`ss -ti`),
// which tell a network stall from a stall of the measuring process. Every process is ours, bounded by a
// duration, and stopped by its pid; parsing is strict so a missing number is a failure, not a zero.
import { spawn, type ChildProcess, type ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { runCommand } from "../../../src/base/exec";
import type { PodTrafficConfig, PodTrafficEvent, PodTrafficResult } from "./pod-traffic-types";

const STOP_TIMEOUT_MS = 30_000;

/** Sends `signal` to our child by its pid and waits (bounded) until it is closed; SIGKILL after the bound. */
async function stopChild(c: ChildProcess, signal: NodeJS.Signals, closed: Promise<void>): Promise<void> {
  const running = (): boolean => c.exitCode === null && c.signalCode === null && c.pid !== undefined;
  if (running()) process.kill(c.pid!, signal);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), STOP_TIMEOUT_MS)));
  const how = await Promise.race([closed.then(() => "closed" as const), bound]);
  clearTimeout(timer);
  if (how === "timeout" && running()) {
    try {
      process.kill(c.pid!, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  // Bounded as well: a grandchild holding our pipes open would otherwise keep "close" away for ever.
  if (how === "timeout") await Promise.race([closed, new Promise((r) => setTimeout(r, STOP_TIMEOUT_MS))]);
}

/** Resolves on "close": after the exit AND the end of its stdout/stderr ("exit" can come before the last output). */
function exitOf(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => c.once("close", () => resolve()));
}

// ---------------------------------------------------------------------------------------------------------
// Ping streams

export interface PingStats {
  readonly transmitted: number;
  readonly received: number;
  /** Sequence numbers with no reply although a later one was answered: really lost. */
  readonly lost: number;
  /** Sent last, not answered when ping was stopped (still on the wire): not counted as lost. */
  readonly inFlightAtStop: number;
  readonly maxGapMs: number;
  /** When the longest gap ended (epoch ms, from ping's own timestamps). */
  readonly maxGapAt: number;
  /** Replies per second over the stream. */
  readonly rate: number;
  readonly firstReplyAt: number;
  readonly lastReplyAt: number;
  /** Missing sequence numbers (at most 20), for the failure report. */
  readonly missing: readonly number[];
  /** Gaps between replies longer than LONG_PING_GAP_MS (epoch ms windows, at most 50), for the timeline. */
  readonly longGaps: readonly (readonly [number, number])[];
}

const LONG_PING_GAP_MS = 100;

/** Parses `ping -D -n` output; undefined when the summary line is missing (ping did not end normally). */
export function parsePingOutput(text: string): PingStats | undefined {
  const summary = /(\d+) packets transmitted, (\d+) received/.exec(text);
  if (!summary) return undefined;
  const transmitted = Number(summary[1]);
  const received = Number(summary[2]);
  const seen = new Set<number>();
  const times: number[] = [];
  for (const m of text.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) .*$/gm)) {
    if (m[0].includes("DUP!")) continue;
    seen.add(Number(m[2]));
    times.push(Number(m[1]) * 1000);
  }
  const maxSeq = Math.max(0, ...seen);
  const missing: number[] = [];
  for (let s = 1; s < maxSeq; s++) if (!seen.has(s)) missing.push(s);
  let maxGap = 0;
  let maxGapAt = 0;
  const longGaps: [number, number][] = [];
  for (let i = 1; i < times.length; i++) {
    const gap = times[i]! - times[i - 1]!;
    if (gap > LONG_PING_GAP_MS && longGaps.length < 50) longGaps.push([Math.round(times[i - 1]!), Math.round(times[i]!)]);
    if (gap > maxGap) {
      maxGap = gap;
      maxGapAt = times[i]!;
    }
  }
  const first = times[0] ?? 0;
  const last = times[times.length - 1] ?? 0;
  const span = (last - first) / 1000;
  return {
    transmitted,
    received,
    lost: missing.length,
    inFlightAtStop: Math.max(0, transmitted - maxSeq),
    maxGapMs: Math.round(maxGap),
    maxGapAt: Math.round(maxGapAt),
    rate: span > 0 ? Math.round(((times.length - 1) / span) * 10) / 10 : 0,
    firstReplyAt: Math.round(first),
    lastReplyAt: Math.round(last),
    missing: missing.slice(0, 20),
    longGaps,
  };
}

export interface PingStream {
  readonly label: string;
  readonly pid: number | undefined;
  /** Resolves with the first reply (the stream is flowing), rejects if ping exits first or after `timeoutMs`. */
  flowing(timeoutMs: number): Promise<void>;
  /** SIGINT (ping prints its summary), then the parsed output; `raw` for a failure report. */
  stop(): Promise<{ stats: PingStats | undefined; raw: string }>;
}

/**
 * How a measuring process (ping stream, traffic helper) is started: `launcher` is put in front of its
 * `ip netns exec NS ...` command line, e.g. `["chrt", "-f", "50"]` for real-time scheduling in the qemu
 * guest. chrt and `ip netns exec` both exec in place, so the child's pid is the measuring process's pid.
 */
export interface InstrumentOptions {
  readonly launcher?: readonly string[];
}

/** Spawns `[...launcher] ip netns exec NETNS argv...`. */
function spawnInNetns(netns: string, argv: readonly string[], launcher: readonly string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  const full = [...launcher, "ip", "netns", "exec", netns, ...argv];
  return spawn(full[0]!, full.slice(1), options);
}

export interface PingOptions extends InstrumentOptions {
  /**
   * iputils `-l`: besides sending this many packets at once at the start, it lets ping send up to
   * preload - 1 overdue packets back to back when it was not scheduled on time, so the stream keeps its
   * schedule (without it every late wake-up is lost for good). Every packet still has its own icmp_seq,
   * so loss accounting is unchanged. Default: iputils' own (1).
   */
  readonly preload?: number;
  /** iputils `-e`: the ICMP identifier of the stream (so a flow can be opened before the stream starts). */
  readonly identifier?: number;
}

/**
 * `ping -D -n` from a pod's namespace, its output going to `logFile` rather than a pipe: a reply line every
 * 20 ms per stream would otherwise be an event in the control plane's own (CPU-starved) event loop.
 */
export function startPing(label: string, netns: string, to: string, intervalS: number, maxSeconds: number, logFile: string, options: PingOptions = {}): PingStream {
  const fd = openSync(logFile, "w");
  const preload = [...(options.preload !== undefined ? ["-l", String(options.preload)] : []), ...(options.identifier !== undefined ? ["-e", String(options.identifier)] : [])];
  const c = spawnInNetns(netns, ["ping", "-D", "-n", ...preload, "-i", String(intervalS), "-w", String(maxSeconds), to], options.launcher ?? [], { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const exited = exitOf(c);
  const output = (): Promise<string> => readFile(logFile, "utf8").catch(() => "");
  return {
    label,
    pid: c.pid,
    async flowing(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      // Another process's file has no event to await here: look again every 200 ms, bounded.
      for (;;) {
        const out = await output();
        if (/ bytes from /.test(out)) return;
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`ping ${label} exited (${c.exitCode ?? c.signalCode}) before a reply: ${out.trim()}`);
        if (Date.now() > deadline) throw new Error(`ping ${label}: no reply within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      await stopChild(c, "SIGINT", exited);
      const raw = await output();
      return { stats: parsePingOutput(raw), raw };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Per-pod helper (TCP streams, echo servers, connect probes)

export interface PodHelper {
  readonly label: string;
  readonly pid: number | undefined;
  /** Resolves once servers listen and streams are connected. */
  ready(timeoutMs: number): Promise<void>;
  /** Called for every change of a probe's outcome, as it happens. */
  onProbe(cb: (e: { id: string; ok: boolean; at: number }) => void): void;
  /** SIGTERM by pid, then the helper's result line. */
  stop(): Promise<PodTrafficResult>;
}

export function startPodHelper(label: string, netns: string, script: string, config: PodTrafficConfig, options: InstrumentOptions = {}): PodHelper {
  const c = spawnInNetns(netns, ["node", script, JSON.stringify(config)], options.launcher ?? [], { stdio: ["ignore", "pipe", "pipe"] }) as ChildProcessByStdio<null, Readable, Readable>;
  const exited = exitOf(c);
  const events: PodTrafficEvent[] = [];
  const probeListeners: ((e: { id: string; ok: boolean; at: number }) => void)[] = [];
  const waiters: (() => void)[] = [];
  let buffered = "";
  let err = "";
  c.stderr.on("data", (b: Buffer) => (err += b.toString("utf8")));
  c.stdout.on("data", (b: Buffer) => {
    buffered += b.toString("utf8");
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      let e: PodTrafficEvent;
      try {
        e = JSON.parse(line) as PodTrafficEvent;
      } catch {
        err += `unparsable line: ${line}\n`;
        continue;
      }
      events.push(e);
      if (e.ev === "probe") for (const l of probeListeners) l(e);
    }
    for (const w of waiters.splice(0)) w();
  });
  c.once("exit", () => {
    for (const w of waiters.splice(0)) w();
  });
  const next = (): Promise<void> => new Promise((r) => waiters.push(r));
  const find = <K extends PodTrafficEvent["ev"]>(ev: K): Extract<PodTrafficEvent, { ev: K }> | undefined => events.find((e): e is Extract<PodTrafficEvent, { ev: K }> => e.ev === ev);
  const describe = (): string => {
    const e = find("error");
    return e ? e.message : `exit ${c.exitCode ?? c.signalCode}; stderr: ${err.trim().slice(-500)}`;
  };
  return {
    label,
    pid: c.pid,
    async ready(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
      try {
        while (!find("ready")) {
          if (find("error") || c.exitCode !== null || c.signalCode !== null) throw new Error(`traffic helper ${label} failed: ${describe()}`);
          const timedOut = await Promise.race([next().then(() => false), bound.then(() => true)]);
          if (timedOut && !find("ready")) throw new Error(`traffic helper ${label} not ready within ${timeoutMs} ms (${describe()})`);
        }
      } finally {
        clearTimeout(timer);
      }
    },
    onProbe(cb) {
      probeListeners.push(cb);
    },
    async stop() {
      await stopChild(c, "SIGTERM", exited);
      const r = find("result");
      if (!r) throw new Error(`traffic helper ${label} printed no result: ${describe()}`);
      return r;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Kernel TCP counters

export interface TcpInfo {
  readonly local: string;
  readonly peer: string;
  /** Segments retransmitted over the connection's life (tcpi_total_retrans). */
  readonly totalRetrans: number;
  readonly bytesRetrans: number;
  /** Retransmissions the receiver reported as duplicates (DSACK): spurious, the original had arrived. */
  readonly dsackDups: number;
  /** Segments the kernel currently counts as lost (tcpi_lost). */
  readonly lost: number;
  readonly info: string;
}

/** `ss -tin state established` in a namespace: every connection with its retransmission counters. */
export async function tcpConnections(netns: string): Promise<TcpInfo[]> {
  const r = await runCommand("ss", ["-tinH", "state", "established"], { netns, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`ss in ${netns} failed: ${r.stderr.trim()}`);
  const lines = r.stdout.split("\n");
  const out: TcpInfo[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i]!;
    if (head.trim() === "" || /^\s/.test(head)) continue;
    const cols = head.trim().split(/\s+/);
    const info = /^\s/.test(lines[i + 1] ?? "") ? lines[i + 1]!.trim() : "";
    const retrans = /\bretrans:\d+\/(\d+)/.exec(info);
    const num = (re: RegExp): number => Number(re.exec(info)?.[1] ?? 0);
    // ss prints these fields only when they are non-zero.
    out.push({
      local: cols[2] ?? "",
      peer: cols[3] ?? "",
      totalRetrans: retrans ? Number(retrans[1]) : 0,
      bytesRetrans: num(/\bbytes_retrans:(\d+)/),
      dsackDups: num(/\bdsack_dups:(\d+)/),
      lost: num(/\blost:(\d+)/),
      info,
    });
  }
  return out;
}
