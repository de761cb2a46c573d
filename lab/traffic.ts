// Continuous traffic for the zero-loss claims of a migration: ping streams (>= 50 packets/s per pair,
// timestamped so gaps are measured, not inferred from counts), long-lived TCP connections that echo a
// message every 10 ms (the longest gap between echoes is the stall), and a flow that must stay denied,
// probed again and again. Every process is started by us, bounded by a duration, and killed by pid.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import type { Protocol } from "../src/model/cluster";
import { probe } from "./pods";
import { findLabPod, type Lab, type PodRef } from "./topology";
import { packagePath } from "../src/base/package-root";

const python = (): string => (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");

export interface PingResult {
  readonly from: string;
  readonly to: string;
  readonly transmitted: number;
  readonly received: number;
  readonly lost: number;
  /** Longest time between two consecutive replies (ms), from ping's own timestamps. */
  readonly maxGapMs: number;
  readonly ratePerSecond: number;
}

export interface TcpStreamResult {
  readonly from: string;
  readonly to: string;
  readonly sent: number;
  readonly echoed: number;
  /** Longest time between two consecutive echoes (ms): the longest stall of the connection. */
  readonly maxGapMs: number;
  /** The connection lasted the whole duration. */
  readonly alive: boolean;
  readonly error?: string;
}

export interface DeniedResult {
  readonly from: string;
  readonly to: string;
  readonly probes: number;
  /** Probes that got through: must be 0. */
  readonly leaked: number;
}

function collect(child: ChildProcess): { out: () => string; done: Promise<void> } {
  let out = "";
  child.stdout?.on("data", (b: Buffer) => (out += b.toString("utf8")));
  child.stderr?.on("data", () => undefined);
  const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { out: () => out, done };
}

const name = (p: PodRef) => `${p.namespace}/${p.name}`;

/** Parses `ping -D` output: replies with their timestamps, and the summary line. */
export function parsePing(text: string, intervalMs: number): Omit<PingResult, "from" | "to"> {
  const times: number[] = [];
  for (const m of text.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)) times.push(Number(m[1]) * 1000);
  const summary = /(\d+) packets transmitted, (\d+) received/.exec(text);
  const transmitted = summary ? Number(summary[1]) : times.length;
  const received = summary ? Number(summary[2]) : times.length;
  let maxGap = 0;
  for (let i = 1; i < times.length; i++) maxGap = Math.max(maxGap, times[i]! - times[i - 1]!);
  const span = times.length > 1 ? (times[times.length - 1]! - times[0]!) / 1000 : 0;
  return { transmitted, received, lost: transmitted - received, maxGapMs: Math.round(maxGap), ratePerSecond: span > 0 ? Math.round((times.length - 1) / span) : 1000 / intervalMs };
}

export interface TrafficHandle {
  /** Ends every stream and returns what each saw. */
  stop(): Promise<{ pings: PingResult[]; tcp: TcpStreamResult[]; denied: DeniedResult[] }>;
}

export interface TrafficOptions {
  readonly pingPairs: readonly (readonly [PodRef, { ip: string } & PodRef])[];
  readonly tcpPairs?: readonly (readonly [PodRef, { ip: string } & PodRef])[];
  readonly tcpPort?: number;
  readonly denied?: readonly { from: PodRef; to: { ip: string } & PodRef; port: number; protocol: Protocol }[];
  /** Hard bound on every stream (s). */
  readonly maxDurationSec: number;
  /** Ping interval (ms): 10 ms gives 60-90 packets/s on this kind of machine (ping cannot keep 100/s). */
  readonly pingIntervalMs?: number;
}

/** Starts all streams; resolves once the TCP connections are up. */
export async function startTraffic(lab: Lab, opts: TrafficOptions): Promise<TrafficHandle> {
  const interval = opts.pingIntervalMs ?? 10;
  const children: ChildProcess[] = [];
  const pings = opts.pingPairs.map(([from, to]) => {
    const c = spawn("ip", ["netns", "exec", findLabPod(lab, from).netns, "ping", "-D", "-n", "-i", String(interval / 1000), "-w", String(opts.maxDurationSec), to.ip], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(c);
    return { from, to, c, ...collect(c) };
  });
  const port = opts.tcpPort ?? 7007;
  const servers: ChildProcess[] = [];
  const tcp: { from: PodRef; to: PodRef; c: ChildProcess; out: () => string; done: Promise<void> }[] = [];
  try {
    for (const dst of new Map((opts.tcpPairs ?? []).map(([, to]) => [name(to), to])).values()) {
      const s = spawn("ip", ["netns", "exec", findLabPod(lab, dst).netns, python(), packagePath("lab", "traffic.py"), "echo", "--port", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
      servers.push(s);
      children.push(s);
      let errText = "";
      s.stderr?.on("data", (b: Buffer) => (errText = (errText + b.toString()).slice(-500)));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`echo server in ${name(dst)} not ready`)), 10_000);
        s.stdout?.on("data", (b: Buffer) => {
          if (b.toString().includes('"ready"')) {
            clearTimeout(t);
            resolve();
          }
        });
        s.once("exit", (code) => reject(new Error(`echo server in ${name(dst)} exited (${code}): ${errText.trim()}`)));
      });
    }
    for (const [from, to] of opts.tcpPairs ?? []) {
      const c = spawn("ip", ["netns", "exec", findLabPod(lab, from).netns, python(), packagePath("lab", "traffic.py"), "stream", "--ip", to.ip, "--port", String(port), "--duration", String(opts.maxDurationSec)], { stdio: ["ignore", "pipe", "pipe"] });
      children.push(c);
      const h = { from, to, c, ...collect(c) };
      tcp.push(h);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`stream ${name(from)} -> ${name(to)} did not connect`)), 10_000);
        const check = setInterval(() => {
          if (h.out().includes('"connected"')) {
            clearTimeout(t);
            clearInterval(check);
            resolve();
          } else if (h.c.exitCode !== null) {
            clearTimeout(t);
            clearInterval(check);
            reject(new Error(`stream ${name(from)} -> ${name(to)} failed: ${h.out()}`));
          }
        }, 10);
      });
    }
  } catch (e) {
    for (const c of children) c.kill("SIGKILL");
    throw e;
  }
  // Denied flows: probed back to back (each probe costs its timeout when denied, as it should).
  let stopDenied = false;
  const denied = (opts.denied ?? []).map((d) => {
    const r = { from: d.from, to: d.to, probes: 0, leaked: 0 };
    const loop = (async () => {
      const end = Date.now() + opts.maxDurationSec * 1000;
      while (!stopDenied && Date.now() < end) {
        const started = Date.now();
        const res = await probe(lab, d.from, d.to.ip, d.port, d.protocol, 250);
        r.probes++;
        if (res.ok) r.leaked++;
        const rest = 50 - (Date.now() - started); // at most 20 probes/s per flow
        if (rest > 0) await new Promise((w) => setTimeout(w, rest));
      }
    })();
    return { r, loop };
  });

  return {
    async stop() {
      stopDenied = true;
      for (const p of pings) p.c.kill("SIGINT"); // ping prints its summary on SIGINT
      await Promise.all(pings.map((p) => p.done));
      const tcpResults: TcpStreamResult[] = [];
      for (const t of tcp) t.c.kill("SIGTERM"); // the stream ends cleanly and prints its result
      await Promise.all(tcp.map((t) => t.done));
      for (const t of tcp) {
        const line = t.out().trim().split("\n").reverse().find((l) => l.includes('"sent"'));
        const r = line ? (JSON.parse(line) as { sent: number; echoed: number; maxGapMs: number; alive: boolean; error: string | null }) : undefined;
        tcpResults.push({ from: name(t.from), to: name(t.to), sent: r?.sent ?? 0, echoed: r?.echoed ?? 0, maxGapMs: r?.maxGapMs ?? Number.POSITIVE_INFINITY, alive: r ? r.error === null : false, ...(r?.error ? { error: r.error } : {}) });
      }
      for (const s of servers) s.kill("SIGKILL");
      await Promise.all(denied.map((d) => d.loop));
      return {
        pings: pings.map((p) => ({ from: name(p.from), to: name(p.to), ...parsePing(p.out(), interval) })),
        tcp: tcpResults,
        denied: denied.map((d) => ({ from: name(d.r.from), to: name(d.r.to), probes: d.r.probes, leaked: d.r.leaked })),
      };
    },
  };
}
