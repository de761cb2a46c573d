// `switchyard controller` and `switchyard agent`: the long-running processes, as a Deployment and a
// DaemonSet run them in a cluster (and the lab runs them against its API server). Both talk to the API
// through the kubeconfig kfc finds ($KUBECONFIG, ~/.kube/config, or in-cluster).
import { NodeAgent } from "../agent/node-agent";
import { Controller } from "../controller/controller";
import { createLogger } from "../base/log";
import { packagePath } from "../base/package-root";
import { DEFAULT_CNI_CHAIN } from "../agent/cni-install";
import { serveProbes } from "../base/probe-server";
import { join } from "node:path";

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
}

export async function runControllerCommand(opts: { identity?: string; metricsPort?: string; metricsAddress?: string; leaseNamespace?: string; resync?: string; leaseDuration?: string }): Promise<number> {
  const log = createLogger("controller");
  const controller = new Controller({
    log,
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.leaseNamespace ? { leaseNamespace: opts.leaseNamespace } : {}),
    ...(opts.resync ? { resyncIntervalMs: Number(opts.resync) * 1000 } : {}),
    ...(opts.leaseDuration ? { leaseDurationSec: Number(opts.leaseDuration) } : {}),
  });
  if (opts.metricsPort !== undefined) {
    const host = opts.metricsAddress ?? "127.0.0.1";
    const server = await controller.metrics.serve(Number(opts.metricsPort), host, () => controller.readiness());
    const addr = server.address();
    log.info({ metrics: typeof addr === "object" && addr ? `http://${host}:${addr.port}/metrics` : String(addr) }, "serving metrics and probes");
  }
  await controller.start();
  const sig = await untilSignal();
  log.info({ signal: sig }, "stopping");
  await controller.stop();
  return 0;
}

export interface AgentCliOptions {
  readonly node: string;
  readonly netns?: string;
  readonly runDir?: string;
  readonly repair?: string;
  readonly cni: boolean;
  readonly cniBinDir: string;
  readonly cniConfDir: string;
  readonly cniStateDir: string;
  readonly cniDataDir: string;
  readonly cniPolicyWait: string;
  readonly cniVersion: string;
  readonly cniChain: string;
  readonly uninstall?: boolean;
  readonly birdContainer?: boolean;
  readonly healthPort?: string;
  readonly healthAddress?: string;
}

/** The chained plugins `--cni-chain` names; undefined (with the message printed) for one it does not know. */
function cniChain(value: string): Record<string, unknown>[] | undefined {
  const known: Record<string, Record<string, unknown>> = { portmap: DEFAULT_CNI_CHAIN[0]!, bandwidth: { type: "bandwidth", capabilities: { bandwidth: true } } };
  if (value === "none" || value === "") return [];
  const out: Record<string, unknown>[] = [];
  for (const name of value.split(",").map((s) => s.trim())) {
    const plugin = known[name];
    if (plugin === undefined) {
      console.error(`--cni-chain: unknown plugin ${JSON.stringify(name)} (known: ${Object.keys(known).join(", ")}, or none)`);
      return undefined;
    }
    out.push(plugin);
  }
  return out;
}

export async function runAgentCommand(opts: AgentCliOptions): Promise<number> {
  const policyWaitSeconds = Number(opts.cniPolicyWait);
  if (!Number.isFinite(policyWaitSeconds) || policyWaitSeconds < 0 || policyWaitSeconds > 600) {
    console.error(`--cni-policy-wait: expected seconds between 0 and 600, got ${JSON.stringify(opts.cniPolicyWait)}`);
    return 2;
  }
  const chain = cniChain(opts.cniChain);
  if (chain === undefined) return 2;
  const agent = new NodeAgent({
    node: opts.node,
    ...(opts.netns ? { netns: opts.netns } : {}),
    runDir: opts.runDir ?? `/run/switchyard/${opts.node}`,
    ...(opts.repair ? { repairIntervalMs: Number(opts.repair) * 1000 } : {}),
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
            policyWaitSeconds,
            cniVersion: opts.cniVersion,
            chain,
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
    const host = opts.healthAddress ?? "127.0.0.1";
    await serveProbes(Number(opts.healthPort), host, { ready: () => agent.readiness() });
    agent.log.info({ probes: `http://${host}:${opts.healthPort}/readyz` }, "serving probes");
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
