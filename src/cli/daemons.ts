// `switchyard controller` and `switchyard agent`: the long-running processes, as a Deployment and a
// DaemonSet run them in a cluster (and the lab runs them against its API server). Both talk to the API
// through the kubeconfig kfc finds ($KUBECONFIG, ~/.kube/config, or in-cluster).
import { NodeAgent } from "../agent/node-agent";
import { Controller } from "../controller/controller";
import { createLogger } from "../base/log";

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
}

export async function runControllerCommand(opts: { identity?: string; metricsPort?: string; leaseNamespace?: string; resync?: string; leaseDuration?: string }): Promise<number> {
  const log = createLogger("controller");
  const controller = new Controller({
    log,
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.leaseNamespace ? { leaseNamespace: opts.leaseNamespace } : {}),
    ...(opts.resync ? { resyncIntervalMs: Number(opts.resync) * 1000 } : {}),
    ...(opts.leaseDuration ? { leaseDurationSec: Number(opts.leaseDuration) } : {}),
  });
  if (opts.metricsPort !== undefined) {
    const server = await controller.metrics.serve(Number(opts.metricsPort));
    const addr = server.address();
    log.info({ metrics: typeof addr === "object" && addr ? `http://127.0.0.1:${addr.port}/metrics` : String(addr) }, "serving metrics");
  }
  await controller.start();
  const sig = await untilSignal();
  log.info({ signal: sig }, "stopping");
  await controller.stop();
  return 0;
}

export async function runAgentCommand(opts: { node: string; netns?: string; runDir?: string; repair?: string }): Promise<number> {
  const agent = new NodeAgent({
    node: opts.node,
    ...(opts.netns ? { netns: opts.netns } : {}),
    runDir: opts.runDir ?? `/run/switchyard/${opts.node}`,
    ...(opts.repair ? { repairIntervalMs: Number(opts.repair) * 1000 } : {}),
  });
  await agent.start();
  const sig = await untilSignal();
  agent.log.info({ signal: sig }, "stopping (the applied plan stays in force)");
  await agent.stop();
  return 0;
}
