// Prometheus metrics of a node agent: how its applies go (duration, failures), what the repair timer had
// to put back (drift), what the node's policy dropped, BGP sessions, the migration probes' round trip,
// and the process itself. Kernel-side figures (drop counters, BGP sessions) are read at scrape time, so
// an idle agent costs nothing between scrapes.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export interface AgentKernelReadings {
  /** Packets the policy's drop rules dropped so far (counters restart when the ruleset is replaced). */
  droppedPackets(): Promise<number>;
  /** BGP sessions by state; empty when the node speaks no BGP. */
  bgpSessions(): Promise<{ readonly established: number; readonly other: number }>;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly applyDuration = new Histogram({
    name: "switchyard_agent_apply_duration_seconds",
    help: "Duration of one apply of the node's plan (routing, BIRD, policy), by result.",
    labelNames: ["result"] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly applyFailures = new Counter({
    name: "switchyard_agent_apply_failures_total",
    help: "Applies that left a problem (the last applied plan stays in force), by part.",
    labelNames: ["part"] as const,
    registers: [this.registry],
  });
  readonly driftRepairs = new Counter({
    name: "switchyard_agent_drift_repairs_total",
    help: "Repairs of kernel state that differed from the applied plan, by part (routes, policy).",
    labelNames: ["part"] as const,
    registers: [this.registry],
  });
  readonly probeRtt = new Histogram({
    name: "switchyard_agent_probe_rtt_seconds",
    help: "Round-trip time of the migration health probes to peers' health addresses.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly planApplied = new Gauge({
    name: "switchyard_agent_plan_applied",
    help: "1 when the node's current plan is in force, 0 while it is not (not received yet, or failing).",
    registers: [this.registry],
  });

  constructor(kernel: AgentKernelReadings) {
    collectDefaultMetrics({ register: this.registry });
    new Counter({
      name: "switchyard_agent_policy_dropped_packets_total",
      help: "Packets dropped by the node's NetworkPolicy rules (default deny and unprogrammed pod interfaces), from the kernel's counters.",
      registers: [this.registry],
      async collect() {
        this.reset();
        this.inc(await kernel.droppedPackets().catch(() => 0));
      },
    });
    new Gauge({
      name: "switchyard_agent_bgp_sessions",
      help: "BGP sessions of the node's BIRD, by state (established, other).",
      labelNames: ["state"] as const,
      registers: [this.registry],
      async collect() {
        const s = await kernel.bgpSessions().catch(() => ({ established: 0, other: 0 }));
        this.set({ state: "established" }, s.established);
        this.set({ state: "other" }, s.other);
      },
    });
  }

  async text(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
