// Safe mode migration on the real kernel, under continuous traffic (issue "Safe mode migration"): a
// 4-node lab, ping streams (>= 50/s per pair) between pods on migrated and unmigrated nodes, a long-lived
// TCP connection echoing every 10 ms, and a flow a NetworkPolicy denies, probed throughout. Every
// scenario must end with 0 pings lost, every TCP connection alive with no stall over 200 ms, and the denied
// flow never let through. Also the faults: a canary that cannot establish BGP rolls back by itself, a
// preflight that must block changes nothing, the controller killed mid-rollout resumes from status, an
// agent killed mid-batch makes the batch wait, and pause/resume/abort through the CLI (and through the
// code the CLI runs, in every phase a rollout passes through).
// Lab prefixes: sylm1- .. sylm4-.
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Mode } from "../../src/api/cluster-network";
import { waitFor } from "../../src/base/wait";
import { runMigrateControl } from "../../src/cli/migrate";
import { LabCluster } from "../../lab/cluster/lab-cluster";
import { migrateLab, type MigrationRun } from "../../lab/migration";
import type { LabPod } from "../../lab/topology";
import { LAB_CONTROL_PLANE } from "../support/control-plane";

const ROLLOUT = { canary: { nodes: 1 }, batchSize: 2, healthGate: { successfulRounds: 2, probeInterval: "500ms", timeout: "20s" } };
const BIN = join(import.meta.dirname, "..", "..", "bin", "switchyard.mjs");

/** Default-deny ingress for namespace y: x -> y is the denied flow; x <-> x carries the allowed traffic. */
const DENY_Y = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { namespace: "y", name: "deny-all-ingress" },
  spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [] },
};

function trafficFor(cluster: LabCluster) {
  const x = cluster.podsSorted().filter((p) => p.namespace === "x");
  const y = cluster.podsSorted().filter((p) => p.namespace === "y");
  // A ring over the nodes: every pair crosses nodes, migrated and unmigrated ones alike.
  const pingPairs = x.map((p, i) => [p, x[(i + 1) % x.length]!] as const);
  return {
    pingPairs,
    tcpPairs: [pingPairs[0]!, pingPairs[pingPairs.length - 1]!] as (readonly [LabPod, LabPod])[],
    tcpPort: 7007,
    denied: [{ from: x[0]!, to: y[y.length - 1]!, port: 80, protocol: "TCP" as const }],
  };
}

function expectHarmless(run: MigrationRun, label: string): void {
  const t = run.traffic!;
  const summary = JSON.stringify({ pings: t.pings.map((p) => [p.from, p.to, p.transmitted, p.lost, p.maxGapMs, p.ratePerSecond]), tcp: t.tcp, denied: t.denied, timeline: run.timeline.slice(-3) });
  for (const p of t.pings) {
    expect(p.transmitted, `${label}: ${summary}`).toBeGreaterThan(50);
    expect(p.lost, `${label}: pings lost ${p.from} -> ${p.to}: ${summary}`).toBe(0);
    expect(p.ratePerSecond, `${label}: ping rate ${p.from} -> ${p.to}`).toBeGreaterThanOrEqual(50);
  }
  for (const c of t.tcp) {
    expect(c.alive, `${label}: TCP ${c.from} -> ${c.to}: ${c.error ?? ""}`).toBe(true);
    expect(c.maxGapMs, `${label}: TCP stall ${c.from} -> ${c.to}: ${summary}`).toBeLessThanOrEqual(200);
  }
  for (const d of t.denied) {
    expect(d.probes, label).toBeGreaterThan(5);
    expect(d.leaked, `${label}: the denied flow got through`).toBe(0);
  }
}

/** The other mode of a vxlan <-> host-gw pair, from the cluster's active mode (tests can run alone). */
async function otherMode(cluster: LabCluster): Promise<Mode> {
  const active = ((await cluster.clusterNetwork()).status as { activeMode?: Mode } | undefined)?.activeMode;
  return active === "vxlan" ? "host-gw" : "vxlan";
}

async function routesOf(cluster: LabCluster, node: string): Promise<string> {
  const n = cluster.lab.nodes.find((x) => x.name === node)!;
  return spawnSync("ip", ["-n", n.netns, "route", "show"], { encoding: "utf8" }).stdout;
}

describe("migrations across 2 subnets (VXLAN <-> BGP through top-of-rack peers)", () => {
  let cluster: LabCluster;
  beforeAll(async () => {
    cluster = new LabCluster({ controlPlane: LAB_CONTROL_PLANE, prefix: "sylm1-", nodes: 4, subnets: 2, mode: "vxlan", torRouter: true });
    await cluster.start();
    expect((await cluster.applyPolicy(DENY_Y)).ok).toBe(true);
    await cluster.waitForReady(30_000);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it("blocks host-gw across 2 subnets, names the nodes, and changes nothing", async () => {
    const before = (await cluster.nodeNetworks()).map((n) => n.spec?.planHash).sort();
    const run = await migrateLab(cluster, "host-gw", { rollout: ROLLOUT, timeoutMs: 30_000 });
    expect(run.final?.migration?.phase).toBe("Blocked");
    expect(run.final?.migration?.reason).toMatch(/n[1-4]->n[1-4]/);
    expect(run.final?.migration?.reason).toContain("host-gw needs L2 adjacency");
    expect(run.final?.activeMode).toBe("vxlan");
    expect(run.final?.conditions?.find((c) => c.type === "MigrationBlocked")?.status).toBe("True");
    expect((await cluster.nodeNetworks()).map((n) => n.spec?.planHash).sort()).toEqual(before);
  }, 60_000);

  it("blocks ipip on nodes whose kernel lacks the module, naming them", async () => {
    const run = await migrateLab(cluster, "ipip", { rollout: ROLLOUT, timeoutMs: 30_000 });
    // This machine's kernel has no ipip module (the qemu kernel check covers IPIP itself).
    expect(run.final?.migration?.phase).toBe("Blocked");
    expect(run.final?.migration?.reason).toContain("n1, n2, n3, n4: mode ipip needs the ipip kernel module");
    expect(run.final?.activeMode).toBe("vxlan");
  }, 60_000);

  it("migrates VXLAN -> BGP with 0 packets lost, TCP alive, the denied flow denied", async () => {
    const run = await migrateLab(cluster, "bgp", { rollout: ROLLOUT, traffic: trafficFor(cluster), timeoutMs: 120_000 });
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
    expect(run.final?.activeMode).toBe("bgp");
    expect(run.timeline.some((l) => l.includes("Canary"))).toBe(true);
    expectHarmless(run, "vxlan->bgp");
    expect(await routesOf(cluster, "n1")).toContain("proto bird");
    expect(await routesOf(cluster, "n1")).not.toContain("sy-vxlan");
  }, 180_000);

  it("migrates BGP -> VXLAN with 0 packets lost; lowers the pod MTU first and reports pods created with the old one", async () => {
    // A pod created under BGP gets the native MTU (1500); VXLAN needs 50 bytes of it.
    await cluster.createPod("x", "late", "n1", { app: "late" });
    await cluster.waitForReady(30_000);
    const run = await migrateLab(cluster, "vxlan", { rollout: ROLLOUT, traffic: trafficFor(cluster), timeoutMs: 120_000 });
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
    expect(run.final?.activeMode).toBe("vxlan");
    expectHarmless(run, "bgp->vxlan");
    expect(await routesOf(cluster, "n1")).not.toContain("proto bird");
    const mtu = run.final?.conditions?.find((c) => c.type === "PodMTUTooLarge");
    expect(mtu?.status).toBe("True");
    expect(mtu?.message).toContain("x/late (1500 > 1450 on n1)");
    expect((await cluster.nodeNetworks()).every((n) => n.spec?.mtu === 1450)).toBe(true);
    await cluster.deletePod("x", "late", { wait: true });
  }, 180_000);

  it("rolls back by itself when the canary cannot establish BGP (peer unreachable), losing nothing", async () => {
    const peers = [
      { address: "192.168.10.254", asNumber: 64500, nodeSelector: { matchLabels: { "topology.switchyard.dev/subnet": "a" } } }, // nobody answers there
      { address: "192.168.20.1", asNumber: 64500, nodeSelector: { matchLabels: { "topology.switchyard.dev/subnet": "b" } } },
    ];
    const run = await migrateLab(cluster, "bgp", {
      rollout: { ...ROLLOUT, healthGate: { successfulRounds: 2, probeInterval: "500ms", timeout: "6s" } },
      bgp: { asNumber: 64512, topology: "tor", peers },
      traffic: trafficFor(cluster),
      timeoutMs: 120_000,
    });
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("RolledBack");
    expect(run.final?.migration?.reason).toContain("timed out");
    expect(run.final?.migration?.reason).toContain("planned bgp");
    expect(run.final?.activeMode).toBe("vxlan");
    expectHarmless(run, "failed canary");
    expect(await routesOf(cluster, "n1")).toContain("sy-vxlan");
  }, 180_000);
});

describe("migrations within one subnet (VXLAN <-> host-gw)", () => {
  let cluster: LabCluster;
  beforeAll(async () => {
    cluster = new LabCluster({ controlPlane: LAB_CONTROL_PLANE, prefix: "sylm2-", nodes: 4, subnets: 1, mode: "vxlan" });
    await cluster.start();
    expect((await cluster.applyPolicy(DENY_Y)).ok).toBe(true);
    await cluster.waitForReady(30_000);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  for (const [from, to] of [["vxlan", "host-gw"], ["host-gw", "vxlan"]] as [Mode, Mode][]) {
    it(`migrates ${from} -> ${to} with 0 packets lost, TCP alive, the denied flow denied`, async () => {
      const run = await migrateLab(cluster, to, { rollout: ROLLOUT, traffic: trafficFor(cluster), timeoutMs: 120_000 });
      expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
      expect(run.final?.activeMode).toBe(to);
      expectHarmless(run, `${from}->${to}`);
    }, 180_000);
  }
});

describe("faults during a rollout (controller and agents as separate processes)", () => {
  let cluster: LabCluster;
  beforeAll(async () => {
    cluster = new LabCluster({ controlPlane: LAB_CONTROL_PLANE, prefix: "sylm3-", nodes: 4, subnets: 1, mode: "vxlan", agentsInProcess: false, leaseDurationSec: 3 });
    await cluster.start();
  }, 180_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it("the controller killed during Rolling: a new one resumes from status and completes, losing nothing", async () => {
    let killedAt = "";
    const run = await migrateLab(cluster, await otherMode(cluster), {
      rollout: { ...ROLLOUT, batchSize: 1 },
      traffic: { ...trafficFor(cluster), denied: [] },
      timeoutMs: 150_000,
      onProgress: async (st) => {
        if (!killedAt && st?.migration?.phase === "Rolling") {
          killedAt = `${st.migration.migratedBatches}`;
          await cluster.killController();
          await cluster.startController();
        }
      },
    });
    expect(killedAt, "never saw Rolling").not.toBe("");
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
    expect(run.final?.migration?.batches).toHaveLength(4);
    expectHarmless(run, "controller killed");
  }, 240_000);

  it("an agent killed mid-batch: the batch waits for it, then continues", async () => {
    let killed = false;
    let sawWaiting = false;
    const run = await migrateLab(cluster, await otherMode(cluster), {
      rollout: { ...ROLLOUT, batchSize: 1, healthGate: { successfulRounds: 2, probeInterval: "500ms", timeout: "60s" } },
      traffic: { ...trafficFor(cluster), denied: [] },
      timeoutMs: 150_000,
      onProgress: async (st) => {
        const m = st?.migration;
        if (!killed && m?.phase === "Gate" && (m.migratedBatches ?? 0) === 1) {
          killed = true;
          const victim = m.batches?.[1]?.[0] ?? "n2"; // in the next batch
          await cluster.killAgent(victim);
          // The batch must wait while the victim's agent is down: for 3 s the rollout may not move on, and
          // the status names the node it waits for.
          const end = Date.now() + 3_000;
          let moved = false;
          let named = false;
          while (Date.now() < end) {
            const mm = ((await cluster.clusterNetwork()).status as { migration?: { migratedBatches?: number; message?: string } } | undefined)?.migration;
            if ((mm?.migratedBatches ?? 0) > 1) moved = true;
            if ((mm?.message ?? "").includes("waiting for") && (mm?.message ?? "").includes(victim)) named = true;
            await new Promise((r) => setTimeout(r, 100));
          }
          sawWaiting = !moved && named;
          await cluster.startAgent(victim);
        }
      },
    });
    expect(killed).toBe(true);
    expect(sawWaiting, run.timeline.join("\n")).toBe(true);
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
    expectHarmless(run, "agent killed");
  }, 240_000);
});

describe("pause, resume and abort through the CLI", () => {
  let cluster: LabCluster;
  beforeAll(async () => {
    cluster = new LabCluster({ controlPlane: LAB_CONTROL_PLANE, prefix: "sylm4-", nodes: 4, subnets: 1, mode: "vxlan" });
    await cluster.start();
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });
  // Async: the API server runs in this process, so a blocking spawnSync would deadlock it.
  const cli = (...args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, "migrate", ...args, "--kubeconfig", cluster.kubeconfigPath], { encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it("pauses at a gate (nothing moves), resumes to completion", async () => {
    let paused = false;
    let heldFor = 0;
    const run = await migrateLab(cluster, await otherMode(cluster), {
      rollout: { ...ROLLOUT, batchSize: 1 },
      timeoutMs: 150_000,
      onProgress: async (st) => {
        if (!paused && st?.migration?.phase === "Gate") {
          paused = true;
          expect((await cli("pause")).status).toBe(0);
          const end = Date.now() + 20_000;
          let migrated = -1;
          while (Date.now() < end) {
            const m = ((await cluster.clusterNetwork()).status as { migration?: { phase: string; migratedBatches?: number } } | undefined)?.migration;
            if (m?.phase === "Paused") {
              if (migrated === -1) migrated = m.migratedBatches ?? 0;
              expect(m.migratedBatches).toBe(migrated);
              heldFor += 100;
              if (heldFor >= 2000) break;
            }
            await new Promise((r) => setTimeout(r, 100));
          }
          const status = await cli("status");
          expect(status.stdout).toContain("Paused");
          expect((await cli("resume")).status).toBe(0);
        }
      },
    });
    expect(heldFor).toBeGreaterThanOrEqual(2000);
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
  }, 240_000);

  it("aborts mid-rollout: rolls back in reverse batch order", async () => {
    let aborted = false;
    const from = ((await cluster.clusterNetwork()).status as { activeMode?: Mode } | undefined)?.activeMode;
    const run = await migrateLab(cluster, await otherMode(cluster), {
      rollout: { ...ROLLOUT, batchSize: 1 },
      timeoutMs: 150_000,
      onProgress: async (st) => {
        if (!aborted && st?.migration?.phase === "Rolling") {
          aborted = true;
          expect((await cli("abort")).status).toBe(0);
        }
      },
    });
    expect(aborted).toBe(true);
    expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("RolledBack");
    expect(run.final?.migration?.reason).toBe("aborted by the user");
    expect(run.final?.activeMode).toBe(from);
    expect(run.timeline.some((l) => l.includes("RollingBack"))).toBe(true);
    // spec.mode still names the target: the same `migrate --to` again is a new attempt, followed to its end.
    const target = (run.final as { migration?: { to?: string } } | undefined)?.migration?.to ?? "";
    const again = await cli("--to", target, "--wait", "--timeout", "120");
    expect(again.stdout).toContain("asked the controller to try again");
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(`migration to ${target} completed`);
    expect(((await cluster.clusterNetwork()).status as { activeMode?: string } | undefined)?.activeMode).toBe(target);
  }, 240_000);

  // The same controls in every phase, through the function the CLI runs (in this process: fast enough to
  // land within a phase of the lab's short rollouts). A pause asked for in phase P takes effect in P or a
  // later one; status.migration.pausedFrom says where, and that is what is counted. Preflight is reached by
  // asking for the pause in the edit that starts the migration.
  type Mig = { phase?: string; pausedFrom?: string; migratedBatches?: number; stage?: string; reason?: string };
  const migrationOf = async (): Promise<Mig | undefined> => ((await cluster.clusterNetwork()).status as { migration?: Mig } | undefined)?.migration;
  const control = async (action: "pause" | "resume" | "abort") => expect(await runMigrateControl(action, { name: "default", kubeconfig: cluster.kubeconfigPath })).toBe(0);
  const plans = async () => (await cluster.nodeNetworks()).map((n) => `${n.metadata?.name}=${n.spec?.planHash}`).sort();
  /**
   * Pauses (unless already paused), checks for 1.5 s that nothing moves, and returns the phase it paused
   * in; undefined when the rollout ended before the pause took effect (it was in its last step).
   */
  const pauseAndHold = async (): Promise<string | undefined> => {
    const now = await migrationOf();
    if (now?.phase !== "Paused") await control("pause");
    const paused = await waitFor("the migration to pause", async () => {
      const m = await migrationOf();
      return m?.phase === "Paused" || m?.phase === "Completed" || m?.phase === "RolledBack" ? m : undefined;
    }, 20_000, 20);
    if (paused.phase !== "Paused") return undefined;
    const held = await plans();
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      const m = await migrationOf();
      expect(m?.phase).toBe("Paused");
      expect(m?.migratedBatches).toBe(paused.migratedBatches);
      expect(await plans()).toEqual(held);
      await new Promise((r) => setTimeout(r, 100));
    }
    return paused.pausedFrom ?? "?";
  };
  /**
   * Resumes and waits until the controller has taken the resume (the phase is no longer Paused): until
   * then the status still says Paused, and a progress line seen meanwhile must not count as a new pause.
   */
  const resume = async (): Promise<void> => {
    await control("resume");
    await waitFor("the migration to resume", async () => ((await migrationOf())?.phase !== "Paused" ? true : undefined), 20_000, 20);
  };
  const PHASES = ["Preflight", "Prepare", "Canary", "Gate", "Rolling", "Finalize"];

  it("pauses in every phase (Preflight, Prepare, Canary, Gate, Rolling, Finalize): nothing moves, resume completes", async () => {
    const pausedIn = new Set<string>();
    for (let round = 0; round < 5 && PHASES.some((p) => !pausedIn.has(p)); round++) {
      const run = await migrateLab(cluster, await otherMode(cluster), {
        rollout: { ...ROLLOUT, batchSize: 1 },
        startPaused: !pausedIn.has("Preflight"),
        timeoutMs: 150_000,
        onProgress: async (st) => {
          const phase = st?.migration?.phase ?? "";
          if (phase !== "Paused" && (!PHASES.includes(phase) || pausedIn.has(phase))) return;
          const where = await pauseAndHold();
          if (where === undefined) return;
          pausedIn.add(where);
          await resume();
        },
      });
      expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
    }
    expect([...pausedIn].sort()).toEqual([...PHASES].sort());
  }, 600_000);

  it("aborts in every phase (paused there first): rolls back to the old mode", async () => {
    const abortedIn = new Set<string>();
    for (let round = 0; round < 10 && PHASES.some((p) => !abortedIn.has(p)); round++) {
      const target = PHASES.find((p) => !abortedIn.has(p))!;
      const from = ((await cluster.clusterNetwork()).status as { activeMode?: Mode } | undefined)?.activeMode;
      let where: string | undefined;
      const run = await migrateLab(cluster, await otherMode(cluster), {
        rollout: { ...ROLLOUT, batchSize: 1 },
        startPaused: target === "Preflight",
        timeoutMs: 150_000,
        onProgress: async (st) => {
          const phase = st?.migration?.phase ?? "";
          if (where !== undefined || (phase !== target && phase !== "Paused")) return;
          where = (await pauseAndHold()) ?? "(ended first)";
          // The pause landed in a later phase: let this rollout finish and try again the other way.
          if (where === "(ended first)") return;
          if (where !== target) return resume();
          await control("abort");
        },
      });
      if (where !== target) {
        expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("Completed");
        continue;
      }
      expect(run.final?.migration?.phase, run.timeline.join("\n")).toBe("RolledBack");
      expect(run.final?.migration?.reason).toBe("aborted by the user");
      expect(run.final?.activeMode).toBe(from);
      expect((await cluster.nodeNetworks()).every((n) => n.status?.appliedHash === n.spec?.planHash)).toBe(true);
      abortedIn.add(target);
    }
    expect([...abortedIn].sort()).toEqual([...PHASES].sort());
  }, 900_000);
});
