// Fencing, on the real kube-apiserver: a controller frozen past its lease (SIGSTOP: a long GC pause, a
// stalled node) wakes up with a stale cache while another replica leads and has published newer plans.
// It must write nothing: not one NodeNetwork or ClusterNetwork write, so it never undoes the new leader's
// work. Every write of the controller's pipeline goes through fencedWrites (src/kube/client.ts), which
// asks at the moment of the write whether the lease is still held. Lab prefix: syfe-.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LabCluster } from "../../lab/cluster/lab-cluster";
import type { DaemonHandle } from "../../lab/cluster/daemons";
import { waitFor } from "../../src/base/wait";
import { kubeUnavailable } from "../support/kube";

const unavailable = await kubeUnavailable();
if (unavailable) console.warn(unavailable);

const LEASE_SEC = 3;

async function leaseHolder(cluster: LabCluster): Promise<string | undefined> {
  const r = await cluster.kube.kubectl(["get", "lease", "switchyard-controller", "-n", "switchyard-system", "-o", "jsonpath={.spec.holderIdentity}"]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

async function leaderGauge(h: DaemonHandle): Promise<number | undefined> {
  if (!h.metricsUrl) return undefined;
  try {
    const text = await (await fetch(h.metricsUrl)).text();
    const m = /^switchyard_controller_leader (\S+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** name -> resourceVersion of every object the controller writes. */
async function writtenVersions(cluster: LabCluster): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const kind of ["nodenetworks", "clusternetworks"]) {
    const r = await cluster.kube.kubectl(["get", kind, "-o", "json"]);
    for (const o of (JSON.parse(r.stdout) as { items: { metadata: { name: string; resourceVersion: string } }[] }).items) out[`${kind}/${o.metadata.name}`] = o.metadata.resourceVersion;
  }
  return out;
}

describe.skipIf(unavailable !== undefined)("fencing on the real control plane", () => {
  let cluster: LabCluster;
  let second: DaemonHandle | undefined;
  let frozen: number | undefined;

  beforeAll(async () => {
    cluster = new LabCluster({ controlPlane: "kubernetes", prefix: "syfe-", nodes: 2, subnets: 1, mode: "vxlan", podsPerNode: 1, leaseDurationSec: LEASE_SEC });
    await cluster.start();
  }, 120_000);
  afterAll(async () => {
    if (frozen !== undefined) process.kill(frozen, "SIGCONT");
    await second?.stop();
    await cluster?.close();
  }, 60_000);

  it("a controller frozen past its lease writes nothing when it wakes, and the new leader's plans stay", async () => {
    const first = cluster.controller!;
    const firstHolder = await leaseHolder(cluster);
    expect(firstHolder).toBeTruthy();
    expect(await leaderGauge(first)).toBe(1);

    frozen = first.pid!;
    process.kill(frozen, "SIGSTOP");
    second = await cluster.startExtraController("fence-b");
    await waitFor("the second controller to take the lease", async () => ((await leaseHolder(cluster)) === "fence-b" ? true : undefined), 30_000, 200);

    // A change only the new leader sees: its plans carry the policy.
    const before = Object.fromEntries((await cluster.nodeNetworks()).map((n) => [n.metadata?.name, n.spec?.planHash]));
    expect((await cluster.applyPolicy({ metadata: { namespace: "x", name: "deny-all" }, spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [] } })).ok).toBe(true);
    await waitFor("the new leader to publish plans with the policy", async () => ((await cluster.nodeNetworks()).some((n) => n.spec?.planHash !== before[n.metadata?.name ?? ""]) ? true : undefined), 30_000, 100);
    await cluster.waitForReady(30_000);
    const published = await writtenVersions(cluster);

    // The stale replica wakes up: its timers and watch backlog fire at once, its cache predates the policy.
    process.kill(frozen, "SIGCONT");
    frozen = undefined;
    await waitFor("the woken controller to report it does not lead", async () => ((await leaderGauge(first)) === 0 ? true : undefined), 30_000, 50);
    // It ran a lease round (it knows it lost) and has had its watch backlog: a further lease period
    // passes in which a stale write would show as a changed resourceVersion.
    const until = Date.now() + LEASE_SEC * 1000;
    while (Date.now() < until) {
      expect(await writtenVersions(cluster)).toEqual(published);
      await cluster.waitForReady(10_000, { settleMs: 200 });
    }
    expect(await writtenVersions(cluster)).toEqual(published);
    expect(await leaseHolder(cluster)).toBe("fence-b");
    expect(first.exitReason()).toBeUndefined();
  }, 120_000);
});
