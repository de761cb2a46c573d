// Every mode through the whole operator (API server, controller, agents) on a lab of 4 nodes over 2
// subnets (issue "Routing modes", acceptance): every pod reaches every pod where the mode can serve the
// topology, a don't-fragment ping at exactly the pod MTU crosses, and where the mode cannot serve a pair
// (host-gw across the router; ipip on this kernel) the affected nodes carry a condition saying why.
// Lab prefix: sylx-.
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import type { Mode } from "../../src/api/cluster-network";
import { LabCluster } from "../../lab/cluster/lab-cluster";
import type { LabPod } from "../../lab/topology";

let cluster: LabCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

function ping(from: LabPod, to: LabPod, size: number): boolean {
  return spawnSync("ip", ["netns", "exec", from.netns, "ping", "-n", "-q", "-M", "do", "-c", "1", "-W", "1", "-s", String(size), to.ip]).status === 0;
}

/** The pairs (on different nodes) that fail a 1-packet ping, retried once. */
async function unreachable(c: LabCluster): Promise<string[]> {
  const m = await c.matrix(80, "TCP", { retries: 1, retryIntervalMs: 200 });
  return m.pods.flatMap((a, i) => m.pods.flatMap((b, j) => (a.node !== b.node && !m.result.matrix[i]![j] ? [`${a.node}->${b.node}`] : [])));
}

const CASES: { name: string; mode: Mode; spec?: Record<string, unknown>; servesAll: boolean }[] = [
  { name: "vxlan", mode: "vxlan", servesAll: true },
  { name: "vxlan crossSubnet", mode: "vxlan", spec: { crossSubnet: true }, servesAll: true },
  { name: "bgp through top-of-rack peers", mode: "bgp", servesAll: true },
  { name: "host-gw (within a subnet only)", mode: "host-gw", servesAll: false },
];

describe("modes on 4 nodes over 2 subnets, through the operator", () => {
  for (const c of CASES) {
    it(`${c.name}: pods reach pods where the mode can serve them; DF ping at exactly the pod MTU`, async () => {
      const base = new LabCluster({ prefix: "sylx-", nodes: 4, subnets: 2, mode: c.mode, waitReady: false });
      cluster = base;
      if (c.spec) {
        // Start from the sample for the mode with the variant applied (e.g. crossSubnet).
        await base.start().catch(() => undefined);
        const cn = await base.clusterNetwork();
        expect((await base.applyClusterNetwork({ ...cn, metadata: { name: "default" }, spec: { ...(cn.spec ?? {}), ...c.spec }, status: undefined } as never)).ok).toBe(true);
      } else {
        await base.start().catch(() => undefined);
      }
      const ready = await base.waitForReady(60_000, { acceptDegraded: !c.servesAll });
      expect(ready.realized).toBe(4);
      const bad = await unreachable(base);
      const nns = await base.nodeNetworks();
      if (c.servesAll) {
        expect(bad).toEqual([]);
        expect(ready.phase).toBe("Ready");
      } else {
        // host-gw: n1,n2 (subnet a) and n3,n4 (subnet b) cannot reach across the router ...
        expect(bad.length).toBeGreaterThan(0);
        expect(bad.every((p) => ["n1->n3", "n1->n4", "n2->n3", "n2->n4", "n3->n1", "n3->n2", "n4->n1", "n4->n2"].includes(p))).toBe(true);
        // ... and every node says why, as does the ClusterNetwork.
        for (const nn of nns) {
          const cond = ((nn as { status?: { conditions?: { type: string; status: string; message?: string }[] } }).status?.conditions ?? []).find((x) => x.type === "ModeCannotServePeers");
          expect(cond?.status, nn.metadata?.name).toBe("True");
          expect(cond?.message).toContain("L2 adjacency");
        }
        const cn = await base.clusterNetwork();
        expect(cn.status?.conditions?.find((x) => x.type === "Degraded")?.message).toContain("L2 adjacency");
      }
      // Don't-fragment pings at exactly the pod MTU, across nodes the mode serves.
      const pods = base.podsSorted();
      const a = pods.find((p) => p.node === "n1")!;
      const peers = [pods.find((p) => p.node === "n2")!, ...(c.servesAll ? [pods.find((p) => p.node === "n4")!] : [])];
      const mtu = nns.find((n) => n.metadata?.name === "n1")?.spec?.mtu ?? 0;
      expect(a.mtu).toBe(mtu);
      for (const b of peers) {
        expect(ping(a, b, mtu - 28), `DF ping of ${mtu} bytes ${a.node} -> ${b.node}`).toBe(true);
        expect(ping(a, b, mtu - 27), `DF ping of ${mtu + 1} bytes must not pass`).toBe(false);
      }
    }, 120_000);
  }

  it("ipip on this kernel (no ipip module): nodes report ModeUnsupported with the reason; nothing crashes", async () => {
    const base = new LabCluster({ prefix: "sylx-", nodes: 4, subnets: 2, mode: "ipip", waitReady: false });
    cluster = base;
    await base.start().catch(() => undefined);
    const end = Date.now() + 30_000;
    let messages: string[] = [];
    while (Date.now() < end) {
      const nns = await base.nodeNetworks();
      messages = nns.flatMap((nn) => ((nn as { status?: { conditions?: { type: string; status: string; message?: string }[] } }).status?.conditions ?? []).filter((x) => x.type === "ModeUnsupported" && x.status === "True").map((x) => x.message ?? ""));
      if (messages.length === 4) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(messages).toHaveLength(4);
    expect(messages[0]).toContain("ipip kernel module");
    const cn = await base.clusterNetwork();
    expect(cn.status?.phase).not.toBe("Ready");
  }, 90_000);
});
