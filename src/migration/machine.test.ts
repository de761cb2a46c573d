import { describe, expect, it } from "vitest";
import type { Mode } from "../api/cluster-network";
import { layoutOf, planBatches, transition } from "./machine";
import type { MigrationObservation, MigrationSettings, MigrationState, NodeHealth } from "./types";

const NODES = ["n1", "n2", "n3", "n4"];
const SETTINGS: MigrationSettings = { canary: { nodes: 1 }, batchSize: "50%", successfulRounds: 2, probeIntervalMs: 1000, timeoutMs: 30_000, autoRollback: true };

/**
 * A tiny world for the machine: agents apply every plan at once (no lagging) unless told otherwise,
 * and report `health` for the current gate epoch.
 */
class World {
  state: MigrationState | undefined;
  active: Mode = "vxlan";
  spec: Mode = "bgp";
  now = 1_000_000;
  generation = 1;
  settings = SETTINGS;
  blockers: string[] = [];
  lagging: string[] = [];
  control: MigrationObservation["control"];
  healthy = true;
  /** Healthy rounds each node reports for the current epoch (defaults to what the gate needs). */
  rounds: number | undefined;
  phases: string[] = [];
  /** When the driver finished publishing the current step's plans (0: long ago; undefined: still publishing). */
  publishedAt: number | undefined = 0;

  obs(): MigrationObservation {
    const epoch = this.state?.epoch ?? 0;
    const health: Record<string, NodeHealth> = {};
    for (const n of NODES) health[n] = this.healthy ? { epoch, okRounds: this.rounds ?? this.settings.successfulRounds, failedRounds: 0 } : { epoch, okRounds: 0, failedRounds: n === "n1" ? 1 : 0, ...(n === "n1" ? { lastFailure: "10.244.2.0 unreachable" } : {}) };
    return { now: this.now, specMode: this.spec, activeMode: this.active, generation: this.generation, settings: this.settings, nodes: NODES, blockers: this.blockers, lagging: this.lagging, health, ...(this.control ? { control: this.control } : {}), ...(this.publishedAt !== undefined ? { publishedAt: this.publishedAt } : {}) };
  }
  step(): void {
    const d = transition(this.state, this.obs());
    // Round-trip through JSON, as the state does through ClusterNetwork.status.
    this.state = d.state ? (JSON.parse(JSON.stringify(d.state)) as MigrationState) : undefined;
    this.active = d.activeMode;
    this.control = undefined;
    this.now += 1500;
    const label = this.state ? `${this.state.phase}${this.state.stage ? `/${this.state.stage}` : ""}` : "none";
    if (this.phases[this.phases.length - 1] !== label) this.phases.push(label);
  }
  run(max = 40): void {
    for (let i = 0; i < max; i++) {
      this.step();
      if (!this.state || ["Completed", "RolledBack", "Blocked", "Failed", "Paused"].includes(this.state.phase)) return;
    }
  }
  layout() {
    return layoutOf(this.state, this.active, NODES, this.settings);
  }
}

describe("planBatches", () => {
  it("puts the canaries first, then batches of the size asked for", () => {
    expect(planBatches(NODES, SETTINGS)).toEqual([["n1"], ["n2", "n3"], ["n4"]]);
    expect(planBatches(NODES, { ...SETTINGS, batchSize: 1 })).toEqual([["n1"], ["n2"], ["n3"], ["n4"]]);
    expect(planBatches(NODES, { ...SETTINGS, canary: { nodes: 2 }, batchSize: "100%" })).toEqual([["n1", "n2"], ["n3", "n4"]]);
    expect(planBatches(NODES, { ...SETTINGS, canary: { nodeNames: ["n3"] } })).toEqual([["n3"], ["n1", "n2"], ["n4"]]);
  });
});

describe("transition", () => {
  it("does nothing while spec.mode equals the active mode", () => {
    const w = new World();
    w.spec = "vxlan";
    w.step();
    expect(w.state).toBeUndefined();
    expect(w.layout()).toEqual({ nodeModes: { n1: "vxlan", n2: "vxlan", n3: "vxlan", n4: "vxlan" }, modesInUse: ["vxlan"] });
  });

  it("walks a healthy migration through every phase, canary first, and completes", () => {
    const w = new World();
    w.run();
    expect(w.phases).toEqual(["Prepare", "Canary", "Gate", "Rolling", "Gate", "Rolling", "Gate", "Finalize/grace", "Finalize/cleanup", "Completed"]);
    expect(w.active).toBe("bgp");
    expect(w.layout()).toEqual({ nodeModes: { n1: "bgp", n2: "bgp", n3: "bgp", n4: "bgp" }, modesInUse: ["bgp"] });
  });

  it("lays out each step: both transports received from Prepare on, only migrated batches send the target", () => {
    const w = new World();
    const seen: Record<string, unknown> = {};
    for (let i = 0; i < 12 && w.state?.phase !== "Completed"; i++) {
      w.step();
      seen[`${w.state?.phase}:${w.state?.migratedBatches}`] ??= w.layout();
    }
    expect(seen["Prepare:0"]).toEqual({ nodeModes: { n1: "vxlan", n2: "vxlan", n3: "vxlan", n4: "vxlan" }, modesInUse: ["bgp", "vxlan"], probe: { epoch: 0, intervalMs: 1000, rounds: 2 } });
    expect(seen["Canary:1"]).toMatchObject({ nodeModes: { n1: "bgp", n2: "vxlan", n3: "vxlan", n4: "vxlan" }, modesInUse: ["bgp", "vxlan"] });
    expect(seen["Gate:1"]).toMatchObject({ probe: { epoch: 1, intervalMs: 1000, rounds: 2 } });
    expect(seen["Rolling:2"]).toMatchObject({ nodeModes: { n1: "bgp", n2: "bgp", n3: "bgp", n4: "vxlan" }, probe: { epoch: 1, intervalMs: 1000, rounds: 2 } });
    expect(seen["Finalize:3"]).toEqual({ nodeModes: { n1: "bgp", n2: "bgp", n3: "bgp", n4: "bgp" }, modesInUse: ["bgp", "vxlan"] });
  });

  it("counts a step's timeout from when its plans were all published, never while they are being written", () => {
    const w = new World();
    for (let i = 0; i < 10 && w.state?.phase !== "Rolling"; i++) w.step();
    expect(w.state?.phase).toBe("Rolling");
    const since = w.state!.since;
    w.lagging = ["n2"];
    w.now = since + 3 * SETTINGS.timeoutMs;
    w.publishedAt = undefined; // a 1,000-node step still publishing
    w.step();
    expect(w.state?.phase).toBe("Rolling");
    w.publishedAt = w.now - 1000; // published a second ago: the agents get the whole timeout
    const d = transition(w.state, w.obs());
    expect(d.state?.phase).toBe("Rolling");
    expect(d.wakeAt).toBe(w.publishedAt + SETTINGS.timeoutMs + 1);
    w.publishedAt = since; // published at once: timed out long ago
    w.step();
    expect(w.state?.phase).toBe("RollingBack");
    expect(w.state?.reason).toContain("n2 did not apply the rolling plan");
  });

  it("times a step out after no progress for the timeout, not after the timeout in all", () => {
    const w = new World();
    for (let i = 0; i < 10 && w.state?.phase !== "Rolling"; i++) w.step();
    w.lagging = ["n2", "n3"];
    w.step();
    const t0 = w.state!.since;
    // One node applies after 0.8 timeouts: progress, so the clock starts again.
    w.now = t0 + 0.8 * SETTINGS.timeoutMs;
    w.lagging = ["n3"];
    w.step();
    expect(w.state).toMatchObject({ phase: "Rolling", waitingFor: 1 });
    expect(w.state!.since).toBeGreaterThan(t0);
    w.now = t0 + 1.6 * SETTINGS.timeoutMs; // 1.6 timeouts in all, 0.8 since the progress
    w.step();
    expect(w.state?.phase).toBe("Rolling");
    w.now = t0 + 2 * SETTINGS.timeoutMs; // nothing moved for more than a timeout
    w.step();
    expect(w.state?.phase).toBe("RollingBack");
    expect(w.state?.reason).toContain("n3 did not apply");
    expect(w.state?.waitingFor).toBeUndefined();
  });

  it("blocks a preflight that must block, names the problem, and changes nothing", () => {
    const w = new World();
    w.spec = "host-gw";
    w.blockers = ["n3, n4: host-gw needs L2 adjacency (n3, n4 are on 192.168.20.0/24, n1, n2 on 192.168.10.0/24)"];
    w.run();
    expect(w.state?.phase).toBe("Blocked");
    expect(w.state?.message).toContain("n3, n4");
    expect(w.state?.message).toContain("Nothing was changed");
    expect(w.active).toBe("vxlan");
    expect(w.layout().modesInUse).toEqual(["vxlan"]);
    // Not retried on its own; an edit of the ClusterNetwork (new generation) retries.
    w.step();
    expect(w.state?.phase).toBe("Blocked");
    w.blockers = [];
    w.generation = 2;
    w.run();
    expect(w.state?.phase).toBe("Completed");
  });

  it("rolls back automatically when a gate fails: batches switch back in reverse order, then the target state goes", () => {
    const w = new World();
    for (let i = 0; i < 20 && !(w.state?.phase === "Gate" && w.state.migratedBatches === 2); i++) w.step(); // into the second gate
    expect(w.state?.phase).toBe("Gate");
    expect(w.state?.migratedBatches).toBe(2);
    w.healthy = false;
    w.run();
    expect(w.state?.phase).toBe("RolledBack");
    expect(w.state?.reason).toContain("n1: 10.244.2.0 unreachable");
    expect(w.phases).toContain("RollingBack/switch");
    expect(w.phases).toContain("RollingBack/cleanup");
    expect(w.active).toBe("vxlan");
    expect(w.layout()).toEqual({ nodeModes: { n1: "vxlan", n2: "vxlan", n3: "vxlan", n4: "vxlan" }, modesInUse: ["vxlan"] });
  });

  it("reverts batches one at a time, the last migrated first", () => {
    const w = new World();
    for (let i = 0; i < 20 && !(w.state?.phase === "Gate" && w.state.migratedBatches === 2); i++) w.step();
    w.healthy = false;
    const migratedSeen: number[] = [];
    for (let i = 0; i < 10 && w.state?.phase !== "RolledBack"; i++) {
      w.step();
      if (w.state?.phase === "RollingBack") migratedSeen.push(w.state.migratedBatches);
    }
    expect([...new Set(migratedSeen)]).toEqual([2, 1, 0]);
  });

  it("pauses instead when autoRollback is off; resume starts a fresh gate, abort rolls back", () => {
    const w = new World();
    w.settings = { ...SETTINGS, autoRollback: false };
    for (let i = 0; i < 3; i++) w.step();
    w.healthy = false;
    w.step();
    expect(w.state?.phase).toBe("Paused");
    expect(w.state?.message).toContain("health gate failed");
    const epoch = w.state!.epoch;
    w.healthy = true;
    w.control = "resume";
    w.step();
    expect(w.state?.phase === "Gate" || w.state?.phase === "Rolling").toBe(true);
    expect(w.state!.epoch).toBe(epoch + 1);
    w.control = "abort";
    w.run();
    expect(w.state?.phase).toBe("RolledBack");
    expect(w.state?.reason).toBe("aborted by the user");
  });

  it("fails a batch whose node never applies its plan within the timeout (an agent down), and waits before that", () => {
    const w = new World();
    w.step(); // Prepare
    w.step(); // Canary
    w.lagging = ["n1"];
    w.step();
    expect(w.state?.phase).toBe("Canary");
    expect(w.state?.message).toContain("waiting for n1");
    w.now += SETTINGS.timeoutMs;
    w.step();
    expect(w.state?.phase).toBe("RollingBack");
    expect(w.state?.reason).toContain("n1 did not apply");
  });

  it("continues when the lagging agent comes back in time", () => {
    const w = new World();
    w.step();
    w.step();
    w.lagging = ["n1"];
    w.step();
    w.lagging = [];
    w.run();
    expect(w.state?.phase).toBe("Completed");
  });

  it("times out a gate that never gets enough healthy rounds", () => {
    const w = new World();
    for (let i = 0; i < 3; i++) w.step();
    expect(w.state?.phase).toBe("Gate");
    w.rounds = 1;
    w.settings = { ...SETTINGS, successfulRounds: 5 };
    w.now += SETTINGS.timeoutMs + 1;
    w.step();
    expect(w.state?.phase).toBe("RollingBack");
    expect(w.state?.reason).toContain("timed out");
  });

  it("rolls back when spec.mode is set back to the source mode mid-way", () => {
    const w = new World();
    for (let i = 0; i < 4; i++) w.step();
    w.spec = "vxlan";
    w.run();
    expect(w.state?.phase).toBe("RolledBack");
    expect(w.active).toBe("vxlan");
    w.step();
    expect(w.state?.phase).toBe("RolledBack"); // and nothing new starts
  });

  it.each(["Preflight", "Prepare", "Canary", "Gate", "Rolling", "Finalize"])("pause and resume work in %s", (phase) => {
    const w = new World();
    if (phase === "Preflight") w.state = { phase: "Preflight", from: "vxlan", to: "bgp", generation: 1, startedAt: w.now, since: w.now, batches: [], migratedBatches: 0, epoch: 0, message: "" };
    for (let i = 0; i < 30 && w.state?.phase !== phase; i++) w.step();
    expect(w.state?.phase).toBe(phase);
    const before = w.layout();
    w.control = "pause";
    w.step();
    expect(w.state?.phase).toBe("Paused");
    // Nodes stay exactly where they were, probing included.
    expect(w.layout()).toEqual(before);
    w.now += 10 * SETTINGS.timeoutMs; // no timeout fires while paused
    w.step();
    expect(w.state?.phase).toBe("Paused");
    w.control = "resume";
    w.run();
    expect(w.state?.phase).toBe("Completed");
  });

  it("retry starts a new attempt for the same generation after a rollback; without it the attempt stays settled", () => {
    const w = new World();
    for (let i = 0; i < 30 && w.state?.phase !== "Rolling"; i++) w.step();
    w.control = "abort";
    w.run();
    expect(w.state?.phase).toBe("RolledBack");
    const ended = w.state!.startedAt;
    w.now += 60_000;
    w.step(); // spec.mode still says bgp, same generation: nothing starts by itself
    expect(w.state?.phase).toBe("RolledBack");
    w.control = "retry";
    const d = transition(w.state, w.obs());
    expect(d.events.map((e) => e.reason)).toEqual(expect.arrayContaining(["MigrationRetried", "MigrationStarted"]));
    w.control = "retry";
    w.run();
    expect(w.state?.startedAt).toBeGreaterThan(ended);
    expect(w.state?.phase).toBe("Completed");
    expect(w.active).toBe("bgp");
  });

  it("retry changes nothing while a migration runs or after it completed", () => {
    const w = new World();
    for (let i = 0; i < 30 && w.state?.phase !== "Gate"; i++) {
      // At every step of a running migration, a retry decides exactly what no control decides.
      const plain = transition(w.state, w.obs());
      w.control = "retry";
      expect(transition(w.state, w.obs())).toEqual(plain);
      w.control = undefined;
      w.step();
    }
    expect(w.state?.phase).toBe("Gate");
    w.run();
    expect(w.state?.phase).toBe("Completed");
    w.control = "retry";
    w.step();
    expect(w.state?.phase).toBe("Completed");
    expect(w.active).toBe("bgp");
  });

  it.each(["Prepare", "Canary", "Gate", "Rolling", "Finalize"])("abort works in %s", (phase) => {
    const w = new World();
    for (let i = 0; i < 30 && w.state?.phase !== phase; i++) w.step();
    expect(w.state?.phase).toBe(phase);
    w.control = "abort";
    w.run();
    expect(w.state?.phase).toBe("RolledBack");
    expect(w.active).toBe("vxlan");
  });
});
