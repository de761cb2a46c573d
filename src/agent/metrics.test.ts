// The agent's metrics as Prometheus scrapes them: its own series, the kernel readings taken at scrape time,
// and the process metrics.
import { describe, expect, it } from "vitest";
import { AgentMetrics } from "./metrics";

describe("agent metrics", () => {
  it("reads the kernel at scrape time and exposes apply, drift, probe and process series", async () => {
    let dropped = 7;
    const m = new AgentMetrics({ droppedPackets: async () => dropped, bgpSessions: async () => ({ established: 2, other: 1 }) });
    m.applyDuration.startTimer()({ result: "ok" });
    m.applyFailures.inc({ part: "policy" });
    m.driftRepairs.inc({ part: "policy" });
    m.probeRtt.observe(0.0004);
    m.planApplied.set(1);
    let text = (await m.text()).text;
    expect(text).toMatch(/^switchyard_agent_policy_dropped_packets_total 7$/m);
    expect(text).toMatch(/^switchyard_agent_bgp_sessions\{state="established"\} 2$/m);
    expect(text).toMatch(/^switchyard_agent_bgp_sessions\{state="other"\} 1$/m);
    expect(text).toMatch(/^switchyard_agent_apply_duration_seconds_count\{result="ok"\} 1$/m);
    expect(text).toMatch(/^switchyard_agent_apply_failures_total\{part="policy"\} 1$/m);
    expect(text).toMatch(/^switchyard_agent_drift_repairs_total\{part="policy"\} 1$/m);
    expect(text).toMatch(/^switchyard_agent_probe_rtt_seconds_count 1$/m);
    expect(text).toMatch(/^switchyard_agent_plan_applied 1$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    // A later scrape reads the kernel again (a replaced ruleset restarts its counters).
    dropped = 3;
    text = (await m.text()).text;
    expect(text).toMatch(/^switchyard_agent_policy_dropped_packets_total 3$/m);
  });

  it("a failing kernel reading does not fail the scrape", async () => {
    const m = new AgentMetrics({ droppedPackets: async () => Promise.reject(new Error("nft gone")), bgpSessions: async () => Promise.reject(new Error("no bird")) });
    const text = (await m.text()).text;
    expect(text).toMatch(/^switchyard_agent_policy_dropped_packets_total 0$/m);
    expect(text).toMatch(/^switchyard_agent_bgp_sessions\{state="established"\} 0$/m);
  });
});
