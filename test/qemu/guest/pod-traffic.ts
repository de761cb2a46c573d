// Why: the migration check (test/qemu/migration-check.ts) must see every stall, loss and leak of live pod
// traffic while the real controller and agents switch the cluster from IPIP to BGP inside the qemu guest.
// The guest has node but no python (src/lab/traffic.py), and a node process costs ~2 s to start there and
// real CPU to run, so this is ONE long-lived helper per pod that needs one (`ip netns exec POD node
// pod-traffic.mjs '<json>'`), bundled next to the check, doing every role that pod has:
//   listen  accept on a port and either echo (the server side of a stream) or log every accepted
//           connection (time, peer) and close it: the server's side of a denied flow, so a leak is seen
//           even if the client gave up before the handshake ended;
//   stream  long-lived TCP connections that send a line every `intervalMs` and time the echoes (the longest
//           gap between two echoes is the connection's longest stall);
//   probe   TCP connects again and again (`parallel` staggered loops, each connect bounded by
//           `timeoutMs`), every attempt recorded with its start time and outcome.
// Under TCG the guest's CPUs are scarce and this process is sometimes not scheduled for a second or more.
// So it records when it did not run (a 20 ms timer that fires late), letting the check tell the stalls of
// the processes at both ends from the network's; and a connect whose timeout fires is judged only after
// pending I/O has been read (setImmediate), so a starved loop never turns a completed handshake into a
// "blocked" attempt.
// Protocol: JSON lines on stdout. {"ev":"ready"} once listeners listen and streams are connected; a
// {"ev":"probe",...} line whenever a probe's outcome changes; on SIGTERM or after `maxSeconds` one
// {"ev":"result",...} line with everything, then exit 0. Fatal problems: {"ev":"error",...}, exit 1.
import { connect, createServer, type Server, type Socket } from "node:net";
import type { ListenResult, ListenRole, PodTrafficConfig, PodTrafficResult, ProbeAttempt, ProbeResult, ProbeRole, StreamResult, StreamRole, Window } from "./pod-traffic-types";

const TICK_MS = 20;
/** A tick this late means the process was not running. */
const STALL_MS = 30;
/** Echo gaps longer than this are kept for attribution. */
const GAP_KEEP_MS = 50;

function emit(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** When this process did not run: windows between two timer ticks that came more than STALL_MS late. */
class StallMonitor {
  readonly stalls: Window[] = [];
  private last = Date.now();
  private readonly timer = setInterval(() => {
    const now = Date.now();
    if (now - this.last > TICK_MS + STALL_MS) this.stalls.push([this.last + TICK_MS, now]);
    this.last = now;
  }, TICK_MS);
  stop(): void {
    clearInterval(this.timer);
  }
}

class Listener {
  private readonly accepted: [number, string][] = [];
  private readonly open = new Set<Socket>();
  private server: Server | undefined;
  constructor(readonly role: ListenRole) {}
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((s) => {
        this.accepted.push([Date.now(), s.remoteAddress ?? "?"]);
        s.on("error", () => undefined);
        if (!this.role.echo) {
          s.destroy();
          return;
        }
        s.setNoDelay(true);
        this.open.add(s);
        s.on("close", () => this.open.delete(s));
        s.pipe(s);
      });
      this.server = server;
      server.once("error", reject);
      server.listen(this.role.port, "0.0.0.0", () => resolve());
    });
  }
  stop(): ListenResult {
    this.server?.close();
    for (const s of this.open) s.destroy();
    return { port: this.role.port, echo: this.role.echo, accepted: this.accepted };
  }
}

class Stream {
  private socket: Socket | undefined;
  private sent = 0;
  private echoed = 0;
  private buffered = "";
  private lastEcho = 0;
  private maxGap = 0;
  private maxGapAt = 0;
  private readonly gaps: Window[] = [];
  private maxRtt = 0;
  private timer: NodeJS.Timeout | undefined;
  private error: string | undefined;
  private closed = false;
  private readonly sentAt = new Map<number, number>();

  constructor(readonly role: StreamRole) {}

  /** Resolves once connected; a refused connect (server not listening yet) is retried until `timeoutMs`. */
  async start(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let s: Socket | undefined;
    while (s === undefined) {
      const r = await this.connectOnce(Math.max(1, deadline - Date.now())).catch((e: NodeJS.ErrnoException) => e);
      if (!(r instanceof Error)) s = r;
      else if (r.code !== "ECONNREFUSED" || Date.now() >= deadline) throw new Error(`stream ${this.role.id}: no connection to ${this.role.ip}:${this.role.port}: ${r.message}`);
      else await new Promise((w) => setTimeout(w, 200));
    }
    this.socket = s;
    this.lastEcho = Date.now();
    this.timer = setInterval(() => this.tick(), this.role.intervalMs);
    s.on("data", (b: Buffer) => this.onData(b));
    s.on("error", (e) => {
      this.error ??= e.message;
    });
    s.on("close", () => {
      this.closed = true;
      this.error ??= "the connection closed";
    });
  }

  private connectOnce(timeoutMs: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: this.role.ip, port: this.role.port });
      s.setNoDelay(true);
      const bound = setTimeout(() => {
        s.destroy();
        reject(new Error(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(bound);
        s.removeAllListeners("error");
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(bound);
        s.destroy();
        reject(e);
      });
    });
  }

  private tick(): void {
    if (this.closed || !this.socket) return;
    this.sent++;
    this.sentAt.set(this.sent, Date.now());
    this.socket.write(`${this.sent}\n`);
  }

  private onData(b: Buffer): void {
    const now = Date.now();
    this.buffered += b.toString("utf8");
    const lines = this.buffered.split("\n");
    this.buffered = lines.pop() ?? "";
    let got = 0;
    for (const l of lines) {
      const seq = Number(l);
      const at = this.sentAt.get(seq);
      if (at === undefined) continue;
      this.sentAt.delete(seq);
      this.maxRtt = Math.max(this.maxRtt, now - at);
      got++;
    }
    if (got === 0) return;
    this.echoed += got;
    this.noteGap(this.lastEcho, now);
    this.lastEcho = now;
  }

  private noteGap(from: number, to: number): void {
    const gap = to - from;
    if (gap > GAP_KEEP_MS) this.gaps.push([from, to]);
    if (gap > this.maxGap) {
      this.maxGap = gap;
      this.maxGapAt = to;
    }
  }

  stop(): StreamResult {
    if (this.timer) clearInterval(this.timer);
    const alive = !this.closed && this.error === undefined;
    // The time since the last echo is a gap too (a connection that went silent at the end).
    if (this.lastEcho > 0) this.noteGap(this.lastEcho, Date.now());
    this.socket?.destroy();
    return {
      id: this.role.id,
      sent: this.sent,
      echoed: this.echoed,
      maxGapMs: this.maxGap,
      maxGapAt: this.maxGapAt,
      gaps: this.gaps,
      maxRttMs: this.maxRtt,
      alive,
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }
}

class Prober {
  private readonly attempts: ProbeAttempt[] = [];
  private readonly errors: Record<string, number> = {};
  private last: 0 | 1 | undefined;
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(readonly role: ProbeRole) {}

  private attempt(): Promise<0 | 1> {
    return new Promise((resolve) => {
      const s = connect({ host: this.role.ip, port: this.role.port });
      let done = false;
      const finish = (ok: 0 | 1, code?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(t);
        s.destroy();
        if (code !== undefined) this.errors[code] = (this.errors[code] ?? 0) + 1;
        resolve(ok);
      };
      // Timers run before I/O in an event-loop turn: after a stall, let the poll phase deliver a connect
      // that is already complete before calling the attempt blocked (setImmediate runs after it).
      const t = setTimeout(() => setImmediate(() => finish(0)), this.role.timeoutMs);
      s.once("connect", () => finish(1));
      s.once("error", (e: NodeJS.ErrnoException) => finish(0, e.code ?? e.message));
    });
  }

  start(): void {
    const stagger = Math.max(1, Math.floor(this.role.timeoutMs / this.role.parallel));
    for (let i = 0; i < this.role.parallel; i++) {
      this.loops.push(
        (async () => {
          await new Promise((r) => setTimeout(r, i * stagger));
          while (!this.stopped) {
            const started = Date.now();
            const ok = await this.attempt();
            this.attempts.push([started, Date.now() - started, ok]);
            if (ok !== this.last) {
              this.last = ok;
              emit({ ev: "probe", id: this.role.id, ok: ok === 1, at: started });
            }
            // A connected attempt returns at once: pace the loop so an open flow is not hammered.
            const rest = stagger * this.role.parallel - (Date.now() - started);
            if (rest > 0 && !this.stopped) await new Promise((r) => setTimeout(r, rest));
          }
        })(),
      );
    }
  }

  async stop(): Promise<ProbeResult> {
    this.stopped = true;
    await Promise.all(this.loops);
    return { id: this.role.id, attempts: [...this.attempts].sort((a, b) => a[0] - b[0]), errors: this.errors };
  }
}

async function main(config: PodTrafficConfig): Promise<void> {
  const monitor = new StallMonitor();
  const listeners = (config.listen ?? []).map((r) => new Listener(r));
  await Promise.all(listeners.map((l) => l.start()));
  const streams = (config.streams ?? []).map((r) => new Stream(r));
  await Promise.all(streams.map((s) => s.start(20_000)));
  const probers = (config.probes ?? []).map((r) => new Prober(r));
  for (const p of probers) p.start();
  emit({ ev: "ready" });
  let finishing = false;
  const finish = async (): Promise<void> => {
    if (finishing) return;
    finishing = true;
    const streamResults = streams.map((s) => s.stop());
    const probeResults = await Promise.all(probers.map((p) => p.stop()));
    const listenResults = listeners.map((l) => l.stop());
    monitor.stop();
    const result: PodTrafficResult = { ev: "result", listeners: listenResults, streams: streamResults, probes: probeResults, stalls: monitor.stalls };
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  };
  process.on("SIGTERM", () => void finish());
  setTimeout(() => void finish(), config.maxSeconds * 1000);
}

const arg = process.argv[2];
if (arg === undefined) {
  emit({ ev: "error", message: "usage: pod-traffic.mjs '<json config>'" });
  process.exit(2);
}
main(JSON.parse(arg) as PodTrafficConfig).catch((e: unknown) => {
  emit({ ev: "error", message: e instanceof Error ? e.message : String(e) });
  process.exit(1);
});
