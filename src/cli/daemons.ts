// `switchyard controller` and `switchyard agent`: the long-running processes, as a Deployment and a
// DaemonSet run them in a cluster (and the lab runs them against its API server). Both talk to the API
// through the kubeconfig kfc finds ($KUBECONFIG, ~/.kube/config, or in-cluster).
import { NodeAgent } from "../agent/node-agent";
import { Controller } from "../controller/controller";
import { createLogger } from "../base/log";
import { packagePath } from "../base/package-root";
import { DEFAULT_CNI_CHAIN } from "../agent/cni-install";
import { serveProbes } from "../base/probe-server";
import type { CniChainPlugin } from "./flags";
import { join } from "node:path";

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
}

/** The controller's flags, already parsed and range-checked by src/cli/flags.ts. */
export interface ControllerCliOptions {
  readonly identity?: string;
  readonly leaseNamespace: string;
  readonly metricsPort?: number;
  readonly metricsAddress: string;
  readonly resync: number;
  readonly leaseDuration: number;
}

export async function runControllerCommand(opts: ControllerCliOptions): Promise<number> {
  const log = createLogger("controller");
  const controller = new Controller({
    log,
    ...(opts.identity ? { identity: opts.identity } : {}),
    leaseNamespace: opts.leaseNamespace,
    resyncIntervalMs: opts.resync * 1000,
    leaseDurationSec: opts.leaseDuration,
  });
  if (opts.metricsPort !== undefined) {
    const host = opts.metricsAddress;
    const server = await controller.metrics.serve(opts.metricsPort, host, () => controller.readiness());
    const addr = server.address();
    log.info({ metrics: typeof addr === "object" && addr ? `http://${host}:${addr.port}/metrics` : String(addr) }, "serving metrics and probes");
  }
  await controller.start();
  const sig = await untilSignal();
  log.info({ signal: sig }, "stopping");
  await controller.stop();
  return 0;
}

/** The agent's flags, already parsed and range-checked by src/cli/flags.ts. */
export interface AgentCliOptions {
  readonly node: string;
  readonly netns?: string;
  readonly runDir?: string;
  readonly stateDir?: string;
  readonly repair: number;
  readonly watchCheck: number;
  readonly cni: boolean;
  readonly cniBinDir: string;
  readonly cniConfDir: string;
  readonly cniStateDir: string;
  readonly cniDataDir: string;
  readonly cniPolicyWait: number;
  readonly cniVersion: string;
  readonly cniChain: readonly CniChainPlugin[];
  readonly uninstall?: boolean;
  readonly healthPort?: number;
  readonly healthAddress: string;
  readonly metricsPort?: number;
  readonly metricsAddress: string;
  readonly birdContainer?: boolean;
}

/** The configurations of the plugins `--cni-chain` names. */
const CHAINED: Record<CniChainPlugin, Record<string, unknown>> = { portmap: DEFAULT_CNI_CHAIN[0]!, bandwidth: { type: "bandwidth", capabilities: { bandwidth: true } } };

export async function runAgentCommand(opts: AgentCliOptions): Promise<number> {
  const agent = new NodeAgent({
    node: opts.node,
    ...(opts.netns ? { netns: opts.netns } : {}),
    runDir: opts.runDir ?? `/run/switchyard/${opts.node}`,
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    repairIntervalMs: opts.repair * 1000,
    watchCheckIntervalMs: opts.watchCheck * 1000,
    // BGP password Secrets live in the agent's own namespace (deploy/agent.yaml passes it by the downward API).
    ...(process.env["POD_NAMESPACE"] ? { secretNamespace: process.env["POD_NAMESPACE"] } : {}),
    ...(opts.birdContainer ? { birdContainer: true } : {}),
    ...(opts.cni
      ? {
          cni: {
            binDir: opts.cniBinDir,
            confDir: opts.cniConfDir,
            stateDir: opts.cniStateDir,
            dataDir: opts.cniDataDir,
            pluginBinary: packagePath("dist", "cni", "switchyard-cni"),
            policyWaitSeconds: opts.cniPolicyWait,
            cniVersion: opts.cniVersion,
            chain: opts.cniChain.map((p) => CHAINED[p]),
          },
        }
      : {}),
  });
  if (opts.uninstall) {
    await agent.teardown();
    agent.log.info({ node: opts.node }, "uninstalled: policy tables, BIRD and the CNI plugin removed");
    return 0;
  }
  if (opts.healthPort !== undefined) {
    const host = opts.healthAddress;
    await serveProbes(opts.healthPort, host, { ready: () => agent.readiness() });
    agent.log.info({ probes: `http://${host}:${opts.healthPort}/readyz` }, "serving probes");
  }
  if (opts.metricsPort !== undefined) {
    const host = opts.metricsAddress;
    const server = await serveProbes(opts.metricsPort, host, { ready: () => agent.readiness(), metrics: () => agent.metrics.text() });
    const addr = server.address();
    agent.log.info({ metrics: typeof addr === "object" && addr ? `http://${host}:${addr.port}/metrics` : String(addr) }, "serving metrics");
  }
  await agent.start();
  const sig = await untilSignal();
  agent.log.info({ signal: sig }, "stopping (the applied plan stays in force)");
  await agent.stop();
  return 0;
}

/** `switchyard bird`: the BIRD container's main process (src/agent/bird.ts runBirdContainer). */
export async function runBirdCommand(opts: { readonly runDir: string; readonly netns?: string }): Promise<number> {
  const { runBirdContainer } = await import("../agent/bird");
  const log = createLogger("bird");
  const stop = new AbortController();
  void untilSignal().then((sig) => {
    log.info({ signal: sig }, "stopping: BIRD shuts down for a graceful restart (peers keep this node's routes)");
    stop.abort();
  });
  await runBirdContainer({ runDir: join(opts.runDir, "bird"), external: true, ...(opts.netns ? { netns: opts.netns } : {}) }, stop.signal, (msg) => log.info(msg));
  return 0;
}
