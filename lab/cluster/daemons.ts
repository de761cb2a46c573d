// Why: a LabCluster runs the real controller and one real agent per node, either in this process (fast to
// start, one debugger, the default) or as the child processes a cluster would run (`switchyard agent`,
// `switchyard controller`, talking to the API only through the kubeconfig), which is what proves that
// nothing leans on shared memory. Both kinds sit behind one handle. Child pids go to the lab's pid files
// (processes.ts) before anything else happens, so destroyLab stops them even after this process crashed;
// their output goes to log files in the lab's run dir.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { NodeAgent } from "../../src/agent/node-agent";
import { Controller } from "../../src/controller/controller";
import { createLogger } from "../../src/base/log";
import { forgetProcess, recordProcess, stopPid, type PidRecord } from "../processes";
import { labCniInstall, type Lab, type LabNode } from "../topology";

/** How long a lab pod's CNI ADD waits for its policy (a real node: --cni-policy-wait, 10 s). */
const LAB_POLICY_WAIT_SECONDS = 10;
import { packagePath } from "../../src/base/package-root";
import { freePort } from "../control-plane/kubernetes";

/** The `switchyard` command of this package (what a lab runs its daemons and its supervisor with). */
export function switchyardBin(): string {
  return packagePath("bin", "switchyard.mjs");
}

export interface DaemonHandle {
  readonly what: string;
  /** The child's pid; undefined in-process. */
  readonly pid: number | undefined;
  /** Why a child process ended, when it did; undefined while it runs (and always in-process). */
  exitReason(): string | undefined;
  /** Stops it; an agent leaves its plan in force (fail closed). */
  stop(): Promise<void>;
  /** Stops it and removes what it applied (an agent whose node leaves). */
  teardown(): Promise<void>;
  /** The in-process object, when there is one (tests look inside). */
  readonly agent?: NodeAgent;
  readonly controller?: Controller;
  /** A child controller's Prometheus endpoint (http://127.0.0.1:PORT/metrics). */
  readonly metricsUrl?: string;
}

export interface DaemonOptions {
  readonly inProcess: boolean;
  /** Controller lease duration (s); short in fault tests so a restarted controller takes over quickly. */
  readonly leaseDurationSec?: number;
  readonly kubeconfig: string;
  readonly logLevel: string;
  /** A controller's lease identity and the name of its pid and log files (a second replica needs both). */
  readonly identity?: string;
  readonly key?: string;
}

function logFile(lab: Lab, name: string): string {
  const dir = join(lab.runDir, "logs");
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}.log`);
}

export function agentRunDir(lab: Lab, node: string): string {
  return join(lab.runDir, "agents", node);
}

/** What a node keeps on disk across a reboot (a real node: /var/lib/switchyard/agent), apart from its run dir (/run). */
export function agentStateDir(lab: Lab, node: string): string {
  return join(lab.runDir, "agent-state", node);
}

async function spawnDaemon(lab: Lab, key: string, what: string, args: readonly string[], opts: DaemonOptions): Promise<DaemonHandle> {
  const log = logFile(lab, key);
  const fd = openSync(log, "a");
  let child;
  try {
    child = spawn(process.execPath, [switchyardBin(), ...args], {
      env: { ...process.env, KUBECONFIG: opts.kubeconfig, SWITCHYARD_LOG_LEVEL: opts.logLevel },
      stdio: ["ignore", fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<string>((resolve) => child.once("error", (e) => resolve(e.message)));
    throw new Error(`could not start ${what}: ${err}`);
  }
  const record: PidRecord = await recordProcess(lab.runDir, key, { pid, what });
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exit = `${what} exited (${signal ?? `code ${code}`}); see ${log}`;
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (exit === undefined) {
      await stopPid(pid, record.startTime, 5_000);
      await exited;
    }
    await forgetProcess(lab.runDir, key);
  };
  return { what, pid, exitReason: () => exit, stop, teardown: stop };
}

/** The lab's agents check their watch more often than a node's default (15 s): fault tests wait on it. */
const LAB_WATCH_CHECK_SECONDS = 3;

/** Starts the agent of one lab node (in-process or `switchyard agent --netns`). */
export async function startLabAgent(lab: Lab, node: LabNode, opts: DaemonOptions): Promise<DaemonHandle> {
  const runDir = agentRunDir(lab, node.name);
  const what = `agent ${node.name}`;
  // The node's CNI files live in the lab's run dir (a real node: /opt/cni/bin, /etc/cni/net.d, ...).
  const cni = labCniInstall(lab, node.name, LAB_POLICY_WAIT_SECONDS);
  if (!opts.inProcess) {
    const cniArgs = ["--cni-bin-dir", cni.binDir, "--cni-conf-dir", cni.confDir, "--cni-state-dir", cni.stateDir, "--cni-data-dir", cni.dataDir, "--cni-policy-wait", String(cni.policyWaitSeconds), "--cni-chain", "none"];
    return spawnDaemon(lab, `agent-${node.name}`, what, ["agent", "--node", node.name, "--netns", node.netns, "--run-dir", runDir, "--state-dir", agentStateDir(lab, node.name), "--watch-check", String(LAB_WATCH_CHECK_SECONDS), ...cniArgs], opts);
  }
  const log = createLogger(`agent/${node.name}`, opts.logLevel);
  const agent = new NodeAgent({ node: node.name, netns: node.netns, runDir, stateDir: agentStateDir(lab, node.name), log, cni, watchCheckIntervalMs: LAB_WATCH_CHECK_SECONDS * 1000 });
  await agent.start();
  // stop() does not wait for an apply in flight; once the lab's API is gone its failure is expected noise.
  const quiet = (): void => {
    log.level = "silent";
  };
  return { what, pid: undefined, exitReason: () => undefined, stop: () => agent.stop().finally(quiet), teardown: () => agent.teardown().finally(quiet), agent };
}

/** Starts the controller (in-process or `switchyard controller`). */
export async function startLabController(lab: Lab, opts: DaemonOptions): Promise<DaemonHandle> {
  if (!opts.inProcess) {
    const port = await freePort();
    const key = opts.key ?? "controller";
    const args = ["controller", "--metrics-port", String(port), ...(opts.identity ? ["--identity", opts.identity] : []), ...(opts.leaseDurationSec ? ["--lease-duration", String(opts.leaseDurationSec)] : [])];
    const h = await spawnDaemon(lab, key, key, args, opts);
    return { ...h, metricsUrl: `http://127.0.0.1:${port}/metrics` };
  }
  const log = createLogger("controller", opts.logLevel);
  const controller = new Controller({ log, resyncIntervalMs: 30_000, ...(opts.leaseDurationSec ? { leaseDurationSec: opts.leaseDurationSec } : {}) });
  await controller.start();
  const stop = (): Promise<void> =>
    controller.stop().finally(() => {
      log.level = "silent";
    });
  return { what: "controller", pid: undefined, exitReason: () => undefined, stop, teardown: stop, controller };
}
