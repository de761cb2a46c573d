// Prometheus metrics of the controller. The headline is policy implementation delay: the time from a
// change the controller sees (a pod relabelled, a policy edited) to the moment every affected node's agent
// reports the resulting plan applied — the figure Cilium calls cilium_policy_implementation_delay.
import type { Server } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { serveProbes, type ProbeAnswer } from "../base/probe-server";

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly implementationDelay = new Histogram({
    name: "switchyard_policy_implementation_delay_seconds",
    help: "Time from a change seen by the controller to its plan realized on every affected node.",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: "switchyard_reconcile_duration_seconds",
    help: "Duration of one full compile-and-publish pass.",
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly writes = new Counter({
    name: "switchyard_api_writes_total",
    help: "Writes the controller made, by kind and verb.",
    labelNames: ["kind", "verb"] as const,
    registers: [this.registry],
  });
  readonly nodes = new Gauge({
    name: "switchyard_nodes",
    help: "Nodes desired and realized at the current plan.",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({ name: "switchyard_controller_leader", help: "1 when this replica holds the lease.", registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: "switchyard_reconcile_errors_total", help: "Failed reconcile passes (retried with backoff).", registers: [this.registry] });

  constructor() {
    // The process itself: CPU, memory, event-loop lag, open handles (prom-client's standard set).
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Serves /metrics, and /healthz and /readyz with `ready` as the readiness check, on host:port (0 =
   * ephemeral); resolves with the server.
   */
  serve(port: number, host = "127.0.0.1", ready: () => ProbeAnswer = () => ({ ok: true, reason: "ok" })): Promise<Server> {
    return serveProbes(port, host, { ready, metrics: async () => ({ contentType: this.registry.contentType, text: await this.registry.metrics() }) });
  }
}
