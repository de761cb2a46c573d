// Why: BGP is BIRD 2's job, never reimplemented; the agent only supervises one BIRD per node. Rules:
// - Everything a BIRD needs lives in the node's run dir (config, control socket, pid file, log), so the
//   state survives the agent: a restarted agent finds the running daemon by its pid file, checks that the
//   pid is really a `bird` with our socket in the node's namespace, that the socket answers, and ADOPTS
//   it. Restarting the agent never restarts BIRD (that would drop every session and withdraw the block).
// - A new config is written beside the live one and checked with `bird -p` first; only a config that
//   parses replaces the file, so a bad config is a reported value and the running BIRD keeps its old one.
// - Changes go through `birdc configure` (BIRD diffs the protocols itself and restarts only the sessions
//   whose options changed), and only when the text changed: an unchanged plan is no-op, no session flap.
// - BIRD is started as a daemon in the node's namespace (`ip netns exec NS bird -c -s -P`): it outlives
//   the agent and is stopped only by its pid (SIGTERM: it closes its sessions, so peers withdraw at once,
//   and removes its kernel routes), waiting until it has exited. Only teardown (uninstall, a lab node
//   deleted) and a plan without BGP stop it; an agent that stops or restarts leaves it running.
// - A BIRD that replaces one that did not clean up (killed, or shut down by `birdc graceful restart`)
//   starts with -R (graceful restart recovery): its peers kept the node's routes as stale, its kernel
//   protocol keeps the routes the old one installed until it has relearned them, so nothing is withdrawn.
//   The evidence is the kernel itself: `proto bird` routes in the node's namespace with no BIRD running.
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BgpPlan } from "../model/routing-plan";
import { renderBirdConfig, type BirdSecrets } from "../render/bird";
import { spawn } from "node:child_process";
import { commandLine, runCommand } from "../base/exec";
import { waitFor } from "../base/wait";

export interface BirdInstance {
  /** The node's namespace; undefined = this process's namespace. */
  readonly netns?: string;
  /** Per-node directory for config, socket, pid file and log (unix socket paths must stay < 108 bytes). */
  readonly runDir: string;
  /**
   * BIRD runs in a container of its own (deploy/agent.yaml, `switchyard bird`), so its lifetime is not the
   * agent container's: the agent never starts it, it writes bird.conf and waits for that BIRD to answer;
   * to stop it, it removes bird.conf first (so the container does not start it again), then signals it.
   */
  readonly external?: boolean;
}

export interface BirdPaths {
  readonly dir: string;
  readonly config: string;
  /** Where a new config is checked before it replaces `config`. */
  readonly candidate: string;
  readonly socket: string;
  readonly pidFile: string;
  readonly log: string;
}

export type BirdAction = "started" | "reconfigured" | "unchanged";

export type BirdResult =
  | { readonly ok: true; readonly action: BirdAction; readonly pid: number; readonly adopted: boolean; readonly ms: number; readonly recovery?: boolean }
  | { readonly ok: false; readonly reason: "ConfigInvalid" | "StartFailed" | "ReconfigureFailed" | "IoFailed"; readonly message: string; readonly pid?: number; readonly ms: number };

export interface RunningBird {
  readonly pid: number;
  /** The control socket answered `show status`. */
  readonly responsive: boolean;
}

export interface BirdProtocol {
  readonly name: string;
  readonly proto: string;
  readonly table: string;
  /** up, start, down, ... */
  readonly state: string;
  readonly since: string;
  /** e.g. Established, Active, Connect, or empty. */
  readonly info: string;
}

const BIRDC_TIMEOUT_MS = 5_000;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export function birdPaths(runDir: string): BirdPaths {
  const dir = resolve(runDir);
  return {
    dir,
    config: join(dir, "bird.conf"),
    candidate: join(dir, "bird.conf.next"),
    socket: join(dir, "bird.ctl"),
    pidFile: join(dir, "bird.pid"),
    log: join(dir, "bird.log"),
  };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a daemon's parent is init, which may never reap it). */
async function processState(pid: number): Promise<string | undefined> {
  const s = await readText(`/proc/${pid}/stat`);
  if (s === undefined) return undefined;
  // "pid (comm) S ..." (comm may contain spaces and parentheses: take the last ')').
  const state = s.slice(s.lastIndexOf(")") + 2).split(" ")[0];
  return state === "Z" || state === "X" ? undefined : state;
}

async function sameNetns(pid: number, netns: string | undefined): Promise<boolean> {
  try {
    const want = await stat(netns === undefined ? "/proc/self/ns/net" : `/run/netns/${netns}`);
    const have = await stat(`/proc/${pid}/ns/net`);
    return want.ino === have.ino && want.dev === have.dev;
  } catch {
    return false;
  }
}

/** A BIRD running for this instance: the pid file names a live `bird` process using our socket, in our netns. */
export async function detectBird(inst: BirdInstance): Promise<RunningBird | undefined> {
  const paths = birdPaths(inst.runDir);
  const pid = Number((await readText(paths.pidFile))?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if ((await processState(pid)) === undefined) return undefined;
  const argv = ((await readText(`/proc/${pid}/cmdline`)) ?? "").split("\0");
  // The pid may have been reused by another process since: it must be a bird with our socket.
  if (!/(^|\/)bird$/.test(argv[0] ?? "") || !argv.includes(paths.socket)) return undefined;
  if (!(await sameNetns(pid, inst.netns))) return undefined;
  const status = await runCommand("birdc", ["-s", paths.socket, "show", "status"], { timeoutMs: BIRDC_TIMEOUT_MS });
  return { pid, responsive: status.code === 0 && /Daemon is up and running/.test(status.stdout) };
}

/** Serialises operations per run dir (an apply and a stop never interleave). */
const inFlight = new Map<string, Promise<unknown>>();
function serialized<T>(inst: BirdInstance, op: () => Promise<T>): Promise<T> {
  const key = birdPaths(inst.runDir).dir;
  const run = (inFlight.get(key) ?? Promise.resolve()).then(op, op);
  inFlight.set(key, run);
  void run.finally(() => {
    if (inFlight.get(key) === run) inFlight.delete(key);
  }).catch(() => undefined);
  return run;
}

/** Renders the node's BGP plan to bird.conf and makes the node's BIRD run it (start, reconfigure or nothing). */
export function applyBirdConfig(inst: BirdInstance, plan: BgpPlan, secrets: BirdSecrets = {}): Promise<BirdResult> {
  let text: string;
  try {
    text = renderBirdConfig(plan, { log: birdPaths(inst.runDir).log }, secrets);
  } catch (e) {
    // A value the renderer refuses (it would have been BIRD syntax, not data): the running BIRD keeps its config.
    return Promise.resolve({ ok: false, reason: "ConfigInvalid", message: (e as Error).message, ms: 0 });
  }
  return applyBirdConfigText(inst, text);
}

/** Whether the node's kernel holds routes a BIRD installed (`proto bird`): a previous BIRD did not clean up. */
async function kernelHasBirdRoutes(netns: string | undefined): Promise<boolean> {
  const r = await runCommand("ip", ["-j", "-4", "route", "show", "proto", "bird"], { ...(netns ? { netns } : {}), timeoutMs: BIRDC_TIMEOUT_MS });
  if (r.code !== 0) return false;
  try {
    return (JSON.parse(r.stdout || "[]") as unknown[]).length > 0;
  } catch {
    return false;
  }
}

/** Like applyBirdConfig for a config text made elsewhere (the test's ToR router, a hand-written config). */
export function applyBirdConfigText(inst: BirdInstance, text: string): Promise<BirdResult> {
  return serialized(inst, async () => {
    const started = Date.now();
    try {
      return await applyBirdConfigTextNow(inst, text);
    } catch (e) {
      // The run dir is not writable, a file vanished under us, ...: a value, like every other failure.
      return { ok: false, reason: "IoFailed", message: (e as Error).message, ms: Date.now() - started };
    }
  });
}

async function applyBirdConfigTextNow(inst: BirdInstance, text: string): Promise<BirdResult> {
  const started = Date.now();
  const ms = (): number => Date.now() - started;
  const paths = birdPaths(inst.runDir);
  await mkdir(paths.dir, { recursive: true });
  let running = await detectBird(inst);
  if (running && !running.responsive) {
    // Alive but deaf (wedged, or its socket was deleted): nothing can be told to it; replace it.
    const { exited } = await stopPid(running.pid);
    if (!exited) return { ok: false, reason: "StartFailed", message: `bird ${running.pid} does not answer on ${paths.socket} and did not exit on SIGKILL`, pid: running.pid, ms: ms() };
    running = undefined;
  }
  const live = await readText(paths.config);
  if (running && live === text) return { ok: true, action: "unchanged", pid: running.pid, adopted: true, ms: ms() };

  await writeFile(paths.candidate, text);
  const check = await runCommand("bird", ["-p", "-c", paths.candidate], { timeoutMs: BIRDC_TIMEOUT_MS });
  if (check.code !== 0) {
    await rm(paths.candidate, { force: true });
    return { ok: false, reason: "ConfigInvalid", message: (check.stderr.trim() || check.stdout.trim()).replace(paths.candidate, "bird.conf"), ...(running ? { pid: running.pid } : {}), ms: ms() };
  }
  await rename(paths.candidate, paths.config);

  if (running) {
    const r = await runCommand("birdc", ["-s", paths.socket, "configure"], { timeoutMs: BIRDC_TIMEOUT_MS });
    if (r.code === 0 && /Reconfigured|Reconfiguration in progress|queueing/.test(r.stdout)) {
      return { ok: true, action: "reconfigured", pid: running.pid, adopted: true, ms: ms() };
    }
    // Keep the file equal to what BIRD runs, so the next apply retries instead of seeing "unchanged".
    if (live !== undefined) await writeFile(paths.config, live);
    else await rm(paths.config, { force: true });
    return { ok: false, reason: "ReconfigureFailed", message: `birdc configure: ${(r.stdout + r.stderr).trim()}`, pid: running.pid, ms: ms() };
  }

  if (inst.external) {
    // Its container starts it (in recovery when the kernel still holds a previous BIRD's routes).
    try {
      const up = await waitFor("the BIRD container's BIRD to answer on its control socket", async () => {
        const d = await detectBird(inst);
        return d?.responsive ? d : undefined;
      }, START_TIMEOUT_MS, 20);
      return { ok: true, action: "started", pid: up.pid, adopted: true, ms: ms() };
    } catch {
      return { ok: false, reason: "StartFailed", message: `no BIRD answers on ${paths.socket}: the bird container starts one once bird.conf is written (is it running?)`, ms: ms() };
    }
  }
  // Not running: clear what a dead BIRD left behind, then start the daemon in the node's namespace.
  await rm(paths.pidFile, { force: true });
  await rm(paths.socket, { force: true });
  const recovery = await kernelHasBirdRoutes(inst.netns);
  const args = [...(recovery ? ["-R"] : []), "-c", paths.config, "-s", paths.socket, "-P", paths.pidFile];
  const start = await runCommand("bird", args, { netns: inst.netns, timeoutMs: START_TIMEOUT_MS });
  if (start.code !== 0) return { ok: false, reason: "StartFailed", message: `bird exited with ${start.code}: ${start.stderr.trim()}`, ms: ms() };
  try {
    // The daemon writes its pid file after forking: wait for it to answer on its socket.
    const up = await waitFor("BIRD to answer on its control socket", async () => {
      const d = await detectBird(inst);
      return d?.responsive ? d : undefined;
    }, START_TIMEOUT_MS, 20);
    return { ok: true, action: "started", pid: up.pid, adopted: false, ms: ms(), ...(recovery ? { recovery: true } : {}) };
  } catch (e) {
    return { ok: false, reason: "StartFailed", message: `${(e as Error).message}; see ${paths.log}`, ms: ms() };
  }
}

async function stopPid(pid: number): Promise<{ forced: boolean; exited: boolean }> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  const gone = async (what: string): Promise<boolean> => {
    try {
      await waitFor(what, async () => ((await processState(pid)) === undefined ? true : undefined), STOP_TIMEOUT_MS, 10);
      return true;
    } catch {
      return false;
    }
  };
  signal("SIGTERM");
  if (await gone(`bird ${pid} to exit`)) return { forced: false, exited: true };
  signal("SIGKILL");
  return { forced: true, exited: await gone(`bird ${pid} to exit after SIGKILL`) };
}

/** Stops this instance's BIRD by its pid and waits for it to exit; a no-op when none runs. */
export function stopBird(inst: BirdInstance): Promise<{ readonly stopped: boolean; readonly pid?: number; readonly forced: boolean }> {
  return serialized(inst, async () => {
    const paths = birdPaths(inst.runDir);
    // The BIRD container starts a BIRD whenever bird.conf exists: without it, it waits.
    if (inst.external) await rm(paths.config, { force: true });
    const running = await detectBird(inst);
    if (!running) return { stopped: false, forced: false };
    const { forced, exited } = await stopPid(running.pid);
    if (exited) {
      await rm(paths.pidFile, { force: true });
      await rm(paths.socket, { force: true });
    }
    return { stopped: exited, pid: running.pid, forced };
  });
}

/**
 * Shuts this instance's BIRD down for a graceful restart (`birdc graceful restart`): its sessions close
 * without a NOTIFICATION and its kernel routes stay, so peers keep the node's routes as stale until the
 * next BIRD (started with -R) is back. What a planned BIRD restart does (the BIRD container's preStop).
 */
export function shutdownBirdForRestart(inst: BirdInstance): Promise<{ readonly stopped: boolean; readonly pid?: number; readonly message?: string }> {
  return serialized(inst, async () => {
    const paths = birdPaths(inst.runDir);
    const running = await detectBird(inst);
    if (!running) return { stopped: false };
    const r = await runCommand("birdc", ["-s", paths.socket, "graceful", "restart"], { timeoutMs: BIRDC_TIMEOUT_MS });
    if (r.code !== 0) return { stopped: false, pid: running.pid, message: `birdc graceful restart: ${(r.stdout + r.stderr).trim()}` };
    try {
      await waitFor(`bird ${running.pid} to exit for graceful restart`, async () => ((await processState(running.pid)) === undefined ? true : undefined), STOP_TIMEOUT_MS, 10);
    } catch (e) {
      return { stopped: false, pid: running.pid, message: (e as Error).message };
    }
    await rm(paths.pidFile, { force: true });
    await rm(paths.socket, { force: true });
    return { stopped: true, pid: running.pid };
  });
}

/**
 * The BIRD container's main loop (`switchyard bird`): runs the node's BIRD in the foreground whenever the
 * agent has written bird.conf, with -R when the kernel still holds a previous BIRD's routes, and starts it
 * again when it exits while bird.conf is still there (the agent removes it to stop BGP on the node). When
 * `stop` fires (the container is stopped: an upgrade, a restart), BIRD shuts down for a graceful restart,
 * so peers keep the node's routes until the next BIRD is back. Resolves once BIRD has exited after `stop`.
 */
export async function runBirdContainer(inst: BirdInstance, stop: AbortSignal, log: (msg: string) => void = () => undefined): Promise<void> {
  const paths = birdPaths(inst.runDir);
  await mkdir(paths.dir, { recursive: true });
  const stopped = new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener("abort", () => resolve(), { once: true })));
  while (!stop.aborted) {
    if ((await readText(paths.config)) === undefined) {
      // Polled: the agent writes the file once, when the node's plan first has BGP.
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 500))]);
      continue;
    }
    await rm(paths.pidFile, { force: true });
    await rm(paths.socket, { force: true });
    const recovery = await kernelHasBirdRoutes(inst.netns);
    const argv = commandLine("bird", ["-f", ...(recovery ? ["-R"] : []), "-c", paths.config, "-s", paths.socket, "-P", paths.pidFile], inst.netns);
    log(`starting ${argv.join(" ")}`);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "inherit", "inherit"] });
    const exited = new Promise<number | null>((resolve) => {
      child.on("exit", (code) => resolve(code));
      child.on("error", () => resolve(-1));
    });
    const first = await Promise.race([exited.then(() => "exited" as const), stopped.then(() => "stop" as const)]);
    if (first === "stop") {
      const r = await runCommand("birdc", ["-s", paths.socket, "graceful", "restart"], { timeoutMs: BIRDC_TIMEOUT_MS });
      if (r.code !== 0) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(t);
      log("BIRD shut down for a graceful restart");
      return;
    }
    const code = await exited;
    log(`BIRD exited (${code})`);
    // A BIRD that fails at once (a config the agent has not replaced yet) is not started in a tight loop.
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 1_000))]);
  }
}

/** Parses `birdc show protocols`. */
export function parseBirdProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  let header = false;
  for (const line of text.split("\n")) {
    if (/^Name\s+Proto\s+Table\s+State\s+Since\s+Info/.test(line)) {
      header = true;
      continue;
    }
    if (!header || line.trim() === "") continue;
    const t = line.trim().split(/\s+/);
    if (t.length < 5) continue;
    // "Since" is a time, or a date and a time for protocols older than a day.
    const sinceParts = /^\d{4}-\d{2}-\d{2}$/.test(t[4]!) && t[5] !== undefined && /^\d/.test(t[5]) ? 2 : 1;
    out.push({ name: t[0]!, proto: t[1]!, table: t[2]!, state: t[3]!, since: t.slice(4, 4 + sinceParts).join(" "), info: t.slice(4 + sinceParts).join(" ") });
  }
  return out;
}

/** `birdc -s SOCKET show protocols`, parsed; an error value when BIRD does not answer. */
export async function birdProtocols(socket: string): Promise<{ readonly ok: true; readonly protocols: BirdProtocol[] } | { readonly ok: false; readonly error: string }> {
  const r = await runCommand("birdc", ["-s", socket, "show", "protocols"], { timeoutMs: BIRDC_TIMEOUT_MS });
  if (r.code !== 0) return { ok: false, error: `birdc show protocols failed (exit ${r.code}): ${(r.stdout + r.stderr).trim()}` };
  return { ok: true, protocols: parseBirdProtocols(r.stdout) };
}
