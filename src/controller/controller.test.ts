// The controller's passes against an in-memory API (test/support/fake-kube.ts), with no server: what each
// pass writes, in which form, and the status it reports, as fake agents report plans applied, capabilities
// and probe rounds. The test drives every pass itself (the scheduler is stopped; time is a variable), so a
// case is a sequence of world changes and passes, each followed by exact expectations.
import { afterEach, describe, expect, it } from "vitest";
import type { ClusterNetworkStatus } from "../api/cluster-network";
import { MIGRATION_CONTROL_ANNOTATION } from "../api/annotations";
import { createLogger } from "../base/log";
import { waitFor } from "../base/wait";
import type { JsonPatchOp } from "../kube/client";
import { Controller } from "./controller";
import { clearControlPatch } from "./decide";
import { FakeKube, type FakeCall } from "../../test/support/fake-kube";
import { ALL_CAPABILITIES, clusterNetworkObject, namespaceObject, nodeObject, podObject, unannotatedNodeObject } from "../../test/support/cluster-objects";

const T0 = Date.parse("2030-01-01T00:00:00Z");
const CN = { name: "default" };
const running: Controller[] = [];

afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

/** A controller on `kube` whose passes the test runs itself, at the test's time. */
async function startController(kube: FakeKube, clock: { now: number }): Promise<Controller> {
  const controller = new Controller({ client: kube, leaderElection: false, now: () => clock.now, log: createLogger("controller", "silent") });
  controller.scheduler.stop(); // the test calls reconcile() itself
  running.push(controller);
  await controller.start();
  return controller;
}

/** A call as one line: `verb Kind/name`, events by reason (a repeat is a patch of the Event's count). */
function line(c: FakeCall, kube?: FakeKube): string {
  if (c.kind === "Event" && c.verb === "create") return `event ${(c.body as { reason: string }).reason}`;
  if (c.kind === "Event" && c.verb === "patch") return `event ${(kube?.peek("Event", { name: c.name ?? "", namespace: c.namespace ?? "default" }) as { reason?: string } | undefined)?.reason ?? "?"}`;
  return `${c.verb} ${c.kind}/${c.name}`;
}

/** A cluster of `nodes` ready nodes, namespace `default`, and a ClusterNetwork, with a running controller. */
async function cluster(opts: { nodes?: number; spec?: Record<string, unknown> } = {}) {
  const kube = new FakeKube();
  const clock = { now: T0 };
  const names = Array.from({ length: opts.nodes ?? 3 }, (_, i) => `n${i + 1}`);
  kube.upsert("Namespace", namespaceObject("default"));
  for (const n of names) kube.upsert("Node", nodeObject(n));
  kube.upsert("ClusterNetwork", clusterNetworkObject(opts.spec));
  let controller = await startController(kube, clock);
  const h = {
    kube,
    clock,
    names,
    get controller() {
      return controller;
    },
    /** Runs one pass; returns the writes it made, one line each. */
    async pass(): Promise<string[]> {
      const from = kube.calls.length;
      await controller.reconcile();
      const calls = kube.calls.slice(from).filter((c) => c.verb !== "list" && c.verb !== "watch" && c.verb !== "get");
      // An Event create refused as AlreadyExists (written before a restart) and its increment are one event.
      const refused = (c: FakeCall, i: number) => c.kind === "Event" && c.verb === "create" && calls.slice(i + 1).some((d) => d.kind === "Event" && d.verb === "patch" && d.name === (c.body as { metadata: { name: string } }).metadata.name);
      return calls.filter((c, i) => !refused(c, i)).map((c) => line(c, kube));
    },
    /** The calls the last passes made (since index `from`). */
    callsSince(from: number): FakeCall[] {
      return kube.calls.slice(from);
    },
    status(): ClusterNetworkStatus {
      return kube.peek("ClusterNetwork", CN)?.["status"] as ClusterNetworkStatus;
    },
    condition(type: string) {
      const c = h.status().conditions?.find((x) => x.type === type);
      return c ? { status: c.status, reason: c.reason, message: c.message } : undefined;
    },
    plan(node: string) {
      return kube.peek("NodeNetwork", { name: node })?.["spec"] as { planHash: string; mode: string; generation: number; health?: { epoch: number } } | undefined;
    },
    /** Each agent reports its current plan applied, with its node's capabilities. */
    agentsApply(nodes: readonly string[] = names, capabilities: Readonly<Record<string, boolean>> = ALL_CAPABILITIES): void {
      for (const n of nodes) {
        kube.mutate("NodeNetwork", { name: n }, (nn) => {
          const spec = nn["spec"] as { planHash: string };
          nn["status"] = { ...(nn["status"] as object), appliedHash: spec.planHash, observedGeneration: nn.metadata?.generation, capabilities };
        });
      }
    },
    /** Each agent reports probe rounds for the gate epoch its plan names. */
    agentsProbe(okRounds: number, failedRounds = 0, lastFailure?: string): void {
      for (const n of names) {
        kube.mutate("NodeNetwork", { name: n }, (nn) => {
          const epoch = (nn["spec"] as { health?: { epoch: number } }).health?.epoch ?? 0;
          nn["status"] = { ...(nn["status"] as object), health: { epoch, okRounds, failedRounds, ...(lastFailure ? { lastFailure } : {}) } };
        });
      }
    },
    setClusterNetwork(fn: (spec: Record<string, unknown>, annotations: Record<string, string>) => void): void {
      kube.mutate("ClusterNetwork", CN, (cn) => {
        const annotations = { ...(cn.metadata?.annotations ?? {}) };
        fn(cn["spec"] as Record<string, unknown>, annotations);
        cn.metadata = { ...cn.metadata, annotations };
      });
    },
    /** A new controller on the same API (the old one stopped as if it crashed). */
    async restart(): Promise<void> {
      await controller.stop({ releaseLease: false });
      controller = await startController(kube, clock);
    },
  };
  return h;
}

/** A cluster whose agents applied the first plans: Ready. */
async function readyCluster(opts: Parameters<typeof cluster>[0] = {}) {
  const h = await cluster(opts);
  await h.pass();
  h.agentsApply();
  await h.pass();
  expect(h.condition("Ready")?.status).toBe("True");
  return h;
}

describe("controller passes: publishing", () => {
  it("writes nothing until every watched kind has been listed once", async () => {
    const kube = new FakeKube();
    kube.upsert("Node", nodeObject("n1"));
    kube.upsert("ClusterNetwork", clusterNetworkObject());
    kube.failNext("list", "Pod", 500);
    const clock = { now: T0 };
    const controller = new Controller({ client: kube, leaderElection: false, now: () => clock.now, log: createLogger("controller", "silent") });
    controller.scheduler.stop();
    running.push(controller);
    await expect(controller.start()).rejects.toThrow(/injected failure of list Pod/);
    expect(controller.store.isSynced()).toBe(false);
    await controller.reconcile();
    expect(controller.counters.passes).toBe(0);
    expect(kube.callsOf(["apply", "patch", "patchStatus", "create", "delete"])).toEqual([]);
    // Once the last kind is listed, the pass publishes.
    await controller.relistAll();
    await controller.reconcile();
    expect(kube.callsOf("apply", "NodeNetwork").map((c) => c.name)).toEqual(["n1"]);
  });

  it("first pass: each block recorded in its BlockAffinity, then one server-side apply per node, owned by the ClusterNetwork, then an event and the status", async () => {
    const h = await cluster();
    expect(await h.pass()).toEqual(["create BlockAffinity/n1", "create BlockAffinity/n2", "create BlockAffinity/n3", "apply NodeNetwork/n1", "apply NodeNetwork/n2", "apply NodeNetwork/n3", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    const cn = h.kube.peek("ClusterNetwork", CN)!;
    const body = h.kube.callsOf("apply", "NodeNetwork")[0]!.body as { metadata: Record<string, unknown>; spec: { nodeName: string; mode: string; block: string; clusterNetwork: string } };
    expect(body.metadata).toEqual({
      name: "n1",
      labels: { "switchyard.dev/cluster-network": "default" },
      ownerReferences: [{ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", name: "default", uid: cn.metadata?.uid, controller: true }],
    });
    expect(body.spec).toMatchObject({ nodeName: "n1", clusterNetwork: "default", mode: "vxlan", block: "10.244.0.0/24" });
    // The allocation's record: no owner (the ClusterNetwork's garbage collection must not take it), a finalizer.
    expect(h.kube.callsOf("create", "BlockAffinity")[0]!.body).toEqual({
      apiVersion: "switchyard.dev/v1alpha1",
      kind: "BlockAffinity",
      metadata: { name: "n1", finalizers: ["switchyard.dev/block-in-use"] },
      spec: { node: "n1", cidr: "10.244.0.0/24", clusterNetwork: "default" },
    });
    const event = h.kube.callsOf("create", "Event")[0]!.body as Record<string, unknown>;
    expect(event).toMatchObject({ reason: "PlansPublished", type: "Normal", message: "published new plans for 3 node(s): n1, n2, n3", involvedObject: { kind: "ClusterNetwork", name: "default" }, firstTimestamp: "2030-01-01T00:00:00.000Z" });
    expect(h.controller.counters).toEqual({ publishes: 3, deletes: 0, statusWrites: 1, passes: 1, events: 1 });
  });

  it("publishes only changed plans: a second pass and a restarted controller write no plan", async () => {
    const h = await readyCluster();
    expect(await h.pass()).toEqual([]);
    const before = h.status();
    await h.restart();
    // A new controller has written no status yet, so it writes one (the same); no plan is rewritten.
    expect(await h.pass()).toEqual(["patchStatus ClusterNetwork/default"]);
    expect(h.status()).toEqual(before);
    expect(await h.pass()).toEqual([]);
  });

  it("a changed input rewrites only the plans it changes", async () => {
    const h = await readyCluster();
    h.kube.upsert("Node", nodeObject("n4"));
    // Every node's plan gains the new peer; the new node gets its first plan and the next free block.
    expect(await h.pass()).toEqual(["create BlockAffinity/n4", "apply NodeNetwork/n1", "apply NodeNetwork/n2", "apply NodeNetwork/n3", "apply NodeNetwork/n4", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(h.plan("n4")).toMatchObject({ block: "10.244.3.0/24" });
    h.agentsApply(["n1", "n2", "n3", "n4"]);
    await h.pass();
    // A new pod is in its own node's plan only.
    h.kube.upsert("Pod", podObject("default", "p1", "n1", { ip: "10.244.0.5" }));
    expect(await h.pass()).toEqual(["apply NodeNetwork/n1", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(h.status().nodes).toEqual({ desired: 4, realized: 3 });
  });

  it("measures the implementation delay from the change seen to the last agent's report", async () => {
    const h = await cluster();
    h.clock.now = T0 + 100;
    await h.pass();
    h.clock.now = T0 + 600;
    h.agentsApply(["n1", "n2"]);
    expect((await h.controller.metrics.implementationDelay.get()).values.find((v) => v.metricName?.endsWith("_count"))?.value).toBe(0);
    h.agentsApply(["n3"]);
    const values = (await h.controller.metrics.implementationDelay.get()).values;
    expect(values.find((v) => v.metricName?.endsWith("_count"))?.value).toBe(1);
    expect(values.find((v) => v.metricName?.endsWith("_sum"))?.value).toBeCloseTo(0.6, 6);
  });

  it("aggregates a repeated event into one Event object with a count, as Kubernetes' recorder does", async () => {
    const h = await readyCluster();
    const flip = async (mode: string) => {
      h.setClusterNetwork((spec) => {
        spec["mode"] = mode;
      });
      await h.pass();
    };
    // Two invalid specs in turn: each message is new relative to the last one, so each is recorded.
    await flip("geneve");
    await flip("gre");
    await flip("geneve");
    await flip("gre");
    await flip("geneve");
    const invalid = h.kube.callsOf("create", "Event").filter((c) => (c.body as { reason: string }).reason === "InvalidSpec");
    expect(invalid).toHaveLength(2);
    const name = (invalid[0]!.body as { metadata: { name: string } }).metadata.name;
    const patches = h.kube.callsOf("patch", "Event").filter((c) => c.name === name);
    expect(patches.map((c) => ((c.body as JsonPatchOp[]).find((o) => o.path === "/count") as { value?: unknown } | undefined)?.value)).toEqual([2, 3]);
    expect(h.kube.peek("Event", { name, namespace: "default" })).toMatchObject({ count: 3, reason: "InvalidSpec" });
    // A restarted controller finds the object it wrote before and counts on.
    await h.restart();
    await flip("geneve");
    expect(h.kube.peek("Event", { name, namespace: "default" })).toMatchObject({ count: 4 });
  });

  it("an invalid ClusterNetwork keeps the plans in force and says why once", async () => {
    const h = await readyCluster();
    h.setClusterNetwork((spec) => {
      spec["mode"] = "geneve";
    });
    expect(await h.pass()).toEqual(["event InvalidSpec"]);
    expect((h.kube.callsOf("create", "Event").at(-1)!.body as { message: string }).message).toContain("spec.mode");
    expect(await h.pass()).toEqual([]);
    expect(h.condition("Ready")?.status).toBe("True");
  });
});

describe("controller passes: status from realization", () => {
  it("no node yet: Pending, Ready False with NoNodes, no plan written; the first node gets one", async () => {
    const h = await cluster({ nodes: 0 });
    expect(await h.pass()).toEqual(["patchStatus ClusterNetwork/default"]);
    expect(h.status().phase).toBe("Pending");
    expect(h.condition("Ready")).toEqual({ status: "False", reason: "NoNodes", message: "no node has a plan yet" });
    expect(h.condition("Progressing")).toEqual({ status: "False", reason: "Stable", message: "every published plan is applied" });
    h.kube.upsert("Node", nodeObject("n1"));
    await h.controller.relistAll();
    expect(await h.pass()).toContain("apply NodeNetwork/n1");
    expect(h.condition("Ready")).toMatchObject({ status: "False", reason: "NodesPending" });
  });

  it("counts desired and realized nodes as agents report, and says who it waits for", async () => {
    const h = await cluster();
    await h.pass();
    expect(h.status().nodes).toEqual({ desired: 3, realized: 0 });
    expect(h.status().phase).toBe("Progressing");
    h.agentsApply(["n1", "n3"]);
    expect(await h.pass()).toEqual(["patchStatus ClusterNetwork/default"]);
    expect(h.status().nodes).toEqual({ desired: 3, realized: 2 });
    expect(h.condition("Ready")).toEqual({ status: "False", reason: "NodesPending", message: "2/3 nodes applied the current plan; waiting for n2" });
    expect(h.condition("Progressing")).toEqual({ status: "True", reason: "NodesApplying", message: "1 node(s) still applying" });
    await expect(h.controller.metrics.nodes.get()).resolves.toMatchObject({ values: [{ labels: { state: "desired" }, value: 3 }, { labels: { state: "realized" }, value: 2 }] });
    h.agentsApply(["n2"]);
    await h.pass();
    expect(h.status().nodes).toEqual({ desired: 3, realized: 3 });
    expect(h.status().phase).toBe("Ready");
    expect(h.condition("Ready")).toEqual({ status: "True", reason: "AllNodesRealized", message: "all 3 nodes applied the current plan" });
    expect(h.condition("Progressing")).toEqual({ status: "False", reason: "Stable", message: "every published plan is applied" });
  });

  it("an agent's report of an older plan does not count", async () => {
    const h = await readyCluster();
    h.kube.upsert("Node", nodeObject("n4"));
    await h.pass();
    // The agents still report the plans from before n4 joined.
    expect(h.status().nodes).toEqual({ desired: 4, realized: 0 });
  });

  it("Degraded: a node that is not ready, and an agent's problem; each cleared again", async () => {
    const h = await readyCluster();
    h.kube.upsert("Node", unannotatedNodeObject("n4", "192.168.10.14"));
    expect(await h.pass()).toEqual(["patchStatus ClusterNetwork/default", "event Degraded"]);
    expect(h.condition("Degraded")).toEqual({ status: "True", reason: "NodeNotReady", message: "n4: node n4 has no switchyard.dev/underlay-cidr annotation yet (its agent sets it)" });
    expect(h.condition("Ready")).toMatchObject({ status: "False", reason: "Degraded" });
    expect(h.status().phase).toBe("Degraded");
    h.kube.remove("Node", { name: "n4" });
    await h.pass();
    expect(h.condition("Degraded")).toEqual({ status: "False", reason: "NoProblems", message: "no node reports a problem" });
    h.kube.mutate("NodeNetwork", { name: "n2" }, (nn) => {
      nn["status"] = { ...(nn["status"] as object), conditions: [{ type: "Applied", status: "False", reason: "NftFailed", message: "nft: transaction failed" }] };
    });
    await h.pass();
    expect(h.condition("Degraded")).toEqual({ status: "True", reason: "AgentProblems", message: "n2: Applied: nft: transaction failed" });
    expect(h.condition("Ready")?.status).toBe("False");
    // The same problem again is no new event.
    h.kube.mutate("NodeNetwork", { name: "n1" }, (nn) => {
      nn["status"] = { ...(nn["status"] as object), appliedAt: "later" };
    });
    expect(await h.pass()).toEqual([]);
  });

  it("PodMTUTooLarge: a pod whose interface MTU exceeds its node's plan; fine once it fits", async () => {
    const h = await readyCluster();
    expect(h.condition("PodMTUTooLarge")).toEqual({ status: "False", reason: "PodMTUsFit", message: "every pod's MTU fits the pod network" });
    h.kube.upsert("Pod", podObject("default", "big", "n2", { ip: "10.244.1.9", mtu: 1500 }));
    expect(await h.pass()).toEqual(["event PodMTUTooLarge", "apply NodeNetwork/n2", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(h.condition("PodMTUTooLarge")).toEqual({
      status: "True",
      reason: "PodsNeedRestart",
      message: "1 pod(s) have a larger MTU than the pod network now allows and rely on path-MTU discovery until restarted: default/big (1500 > 1450 on n2)",
    });
    // Restarted with a fitting MTU (the annotation is no plan input: no plan is rewritten).
    h.kube.upsert("Pod", podObject("default", "big", "n2", { ip: "10.244.1.9", mtu: 1450 }));
    expect(await h.pass()).toEqual(["patchStatus ClusterNetwork/default"]);
    expect(h.condition("PodMTUTooLarge")?.status).toBe("False");
  });
});

describe("controller passes: garbage collection", () => {
  it("deletes the plan of a node that is gone, keeps the others and the plan of a node that is only not ready", async () => {
    const h = await readyCluster({ nodes: 4 });
    h.kube.remove("Node", { name: "n3" });
    // n4 stays, but loses its underlay annotation: no plan for it now, yet its node exists.
    h.kube.upsert("Node", unannotatedNodeObject("n4", "192.168.10.14"));
    const writes = await h.pass();
    expect(writes.filter((w) => w.startsWith("delete"))).toEqual(["delete NodeNetwork/n3", "delete BlockAffinity/n3"]);
    expect(h.kube.all("NodeNetwork").map((o) => o.metadata?.name).sort()).toEqual(["n1", "n2", "n4"]);
    // n4's node exists: it keeps its block although it has no plan now.
    expect(h.kube.all("BlockAffinity").map((o) => o.metadata?.name).sort()).toEqual(["n1", "n2", "n4"]);
    expect(h.controller.counters.deletes).toBe(1);
    expect(h.status().nodes).toEqual({ desired: 2, realized: 0 });
  });
});

describe("controller passes: durable IPAM (blocks recorded in BlockAffinities)", () => {
  const blocksOf = (h: { kube: FakeKube }): Record<string, string | undefined> =>
    Object.fromEntries(h.kube.all("NodeNetwork").map((o) => [o.metadata?.name ?? "", (o["spec"] as { block?: string }).block]));
  const heldOf = (h: { kube: FakeKube }): Record<string, string> =>
    Object.fromEntries(h.kube.all("BlockAffinity").map((o) => [o.metadata?.name ?? "", (o["spec"] as { cidr: string }).cidr]));
  const FIRST = { n1: "10.244.0.0/24", n2: "10.244.1.0/24", n3: "10.244.2.0/24" };

  it("a deleted NodeNetwork is republished by the next pass, with the same block, although a new node sorts before it", async () => {
    const h = await readyCluster();
    expect(heldOf(h)).toEqual(FIRST);
    // n1's plan is deleted (by hand, or a garbage collection) while n0 joins: with blocks kept only in
    // NodeNetworks, n0 took n1's block; with a stale publish cache, n1's plan never came back at all.
    h.kube.remove("NodeNetwork", { name: "n1" });
    h.kube.upsert("Node", nodeObject("n0", { ip: "192.168.10.10" }));
    const writes = await h.pass();
    expect(writes).toContain("apply NodeNetwork/n1");
    expect(writes).toContain("create BlockAffinity/n0");
    expect(blocksOf(h)).toEqual({ ...FIRST, n0: "10.244.3.0/24" });
    expect(heldOf(h)).toEqual({ ...FIRST, n0: "10.244.3.0/24" });
  });

  it("a deleted NodeNetwork alone is written again at once (the publish cache forgets it on the DELETED event)", async () => {
    const h = await readyCluster();
    h.kube.remove("NodeNetwork", { name: "n2" });
    expect(await h.pass()).toEqual(["apply NodeNetwork/n2", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(blocksOf(h)).toEqual(FIRST);
  });

  it("a NodeNetwork deleted while no watch saw it is written again once a relist finds it gone", async () => {
    const h = await readyCluster();
    h.kube.unseen(() => h.kube.remove("NodeNetwork", { name: "n3" }));
    expect(await h.pass()).toEqual([]); // the cache still has it
    await h.controller.relistAll();
    expect(await h.pass()).toEqual(["apply NodeNetwork/n3", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(blocksOf(h)).toEqual(FIRST);
  });

  it("a ClusterNetwork deleted and re-created (its garbage collection deleting every NodeNetwork) finds every node's block again, also across a controller restart", async () => {
    const h = await readyCluster();
    const oldUid = h.kube.peek("ClusterNetwork", CN)?.metadata?.uid;
    h.kube.remove("ClusterNetwork", CN);
    for (const n of h.names) h.kube.remove("NodeNetwork", { name: n }); // what the garbage collector does
    expect(await h.pass()).toEqual([]);
    expect(heldOf(h)).toEqual(FIRST); // the records are nobody's garbage
    await h.restart(); // a controller starting now has only the BlockAffinities to go by
    h.kube.upsert("Node", nodeObject("n0", { ip: "192.168.10.10" }));
    h.kube.upsert("ClusterNetwork", clusterNetworkObject()); // a new object: new uid, empty status
    const uid = h.kube.peek("ClusterNetwork", CN)?.metadata?.uid;
    expect(uid).not.toBe(oldUid);
    await h.pass();
    expect(blocksOf(h)).toEqual({ ...FIRST, n0: "10.244.3.0/24" });
    expect(h.kube.all("NodeNetwork").every((o) => o.metadata?.ownerReferences?.[0]?.uid === uid)).toBe(true);
  });

  it("a deleted node's block is released once no pod holds an address in it, and then goes to the next node", async () => {
    const h = await readyCluster();
    h.kube.upsert("Pod", podObject("default", "left-behind", "n2", { ip: "10.244.1.5" }));
    await h.pass();
    h.kube.remove("Node", { name: "n2" });
    // The plan goes; the block stays while a pod of the deleted node still has an address in it.
    const writes = await h.pass();
    expect(writes.filter((w) => w.includes("n2"))).toEqual(["delete NodeNetwork/n2"]);
    h.kube.upsert("Node", nodeObject("n4"));
    await h.pass();
    expect(heldOf(h)).toEqual({ ...FIRST, n4: "10.244.3.0/24" });
    // The pod is gone (its garbage collector ran): the block is released, finalizer and all.
    h.kube.remove("Pod", { name: "left-behind", namespace: "default" });
    expect((await h.pass()).filter((w) => w.includes("BlockAffinity"))).toEqual(["delete BlockAffinity/n2", "patch BlockAffinity/n2"]);
    expect(h.kube.peek("BlockAffinity", { name: "n2" })).toBeUndefined();
    h.kube.upsert("Node", nodeObject("n5"));
    await h.pass();
    expect(heldOf(h)).toEqual({ n1: FIRST.n1, n3: FIRST.n3, n4: "10.244.3.0/24", n5: "10.244.1.0/24" });
  });

  it("a BlockAffinity deleted while its node exists waits (the finalizer) and its block stays the node's", async () => {
    const h = await readyCluster();
    await h.kube.delete("BlockAffinity", { name: "n1" }); // as `kubectl delete blockaffinity n1` would
    expect(h.kube.peek("BlockAffinity", { name: "n1" })?.metadata?.deletionTimestamp).toBeDefined();
    h.kube.remove("NodeNetwork", { name: "n1" });
    h.kube.upsert("Node", nodeObject("n0", { ip: "192.168.10.10" }));
    const writes = await h.pass();
    expect(writes.filter((w) => w.includes("BlockAffinity"))).toEqual(["create BlockAffinity/n0"]);
    expect(blocksOf(h)).toEqual({ ...FIRST, n0: "10.244.3.0/24" });
    // Once the node is gone, the terminating record is released: only the finalizer is left to remove.
    h.kube.remove("Node", { name: "n1" });
    expect((await h.pass()).filter((w) => w.includes("n1"))).toEqual(["delete NodeNetwork/n1", "patch BlockAffinity/n1"]);
    expect(h.kube.peek("BlockAffinity", { name: "n1" })).toBeUndefined();
  });
});

describe("controller passes: migration", () => {
  const strategy = { canary: { nodes: 1 }, batchSize: 2, healthGate: { successfulRounds: 2, probeInterval: "1s", timeout: "60s" } };

  /** The health-only patch a gate sends for a node: guarded by the plan hash we wrote. */
  const healthPatch = (oldHash: string, newHash: string, generation: number, last: JsonPatchOp): JsonPatchOp[] => [
    { op: "test", path: "/spec/planHash", value: oldHash },
    { op: "replace", path: "/spec/planHash", value: newHash },
    { op: "replace", path: "/spec/generation", value: generation },
    last,
  ];

  it("vxlan -> ipip: Preflight, Prepare, canary, gates as small patches, a batch, Finalize after the grace period, Completed", async () => {
    const h = await readyCluster({ spec: { migration: strategy } });
    h.setClusterNetwork((spec) => {
      spec["mode"] = "ipip";
    });
    // Preflight passes (every agent reported ipip) straight into Prepare: every node receives both. (An
    // event whose message is the last one of its reason is not recorded again: PlansPublished here.)
    expect(await h.pass()).toEqual(["event MigrationStarted", "event MigrationPrepare", "apply NodeNetwork/n1", "apply NodeNetwork/n2", "apply NodeNetwork/n3", "patchStatus ClusterNetwork/default"]);
    expect(h.status().migration).toMatchObject({ phase: "Prepare", from: "vxlan", to: "ipip", batches: [["n1"], ["n2", "n3"]], epoch: 0 });
    expect(h.condition("Migrating")).toMatchObject({ status: "True", reason: "Prepare" });
    expect(h.status().phase).toBe("Migrating");
    expect(h.plan("n1")?.health?.epoch).toBe(0);
    // Nothing moves while an agent lags.
    h.agentsApply(["n1", "n2"]);
    await h.pass();
    expect(h.status().migration?.phase).toBe("Prepare");
    h.agentsApply(["n3"]);
    // Canary: only the canary's plan changes.
    expect(await h.pass()).toEqual(["event MigrationCanary", "apply NodeNetwork/n1", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(h.plan("n1")?.mode).toBe("ipip");
    expect(h.plan("n2")?.mode).toBe("vxlan");
    h.agentsApply();
    // Gate: a new probe epoch, which changes every plan's health section only: small guarded patches.
    const before = Object.fromEntries(h.names.map((n) => [n, h.plan(n)!.planHash]));
    const from = h.kube.calls.length;
    expect(await h.pass()).toEqual(["patch NodeNetwork/n1", "patch NodeNetwork/n2", "patch NodeNetwork/n3", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    const n1 = h.plan("n1")!;
    expect(h.callsSince(from).find((c) => c.verb === "patch" && c.name === "n1")?.body).toEqual(healthPatch(before["n1"]!, n1.planHash, 2, { op: "add", path: "/spec/health", value: n1.health }));
    expect(n1.health?.epoch).toBe(1);
    expect(h.status().migration).toMatchObject({ phase: "Gate", epoch: 1 });
    h.agentsApply();
    h.agentsProbe(1);
    await h.pass();
    expect(h.status().migration?.phase).toBe("Gate");
    h.agentsProbe(2);
    // The gate passes: the next batch switches.
    expect(await h.pass()).toEqual(["event MigrationGatePassed", "event MigrationBatch", "apply NodeNetwork/n2", "apply NodeNetwork/n3", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(h.status().migration).toMatchObject({ phase: "Rolling", migratedBatches: 2 });
    h.agentsApply();
    expect(await h.pass()).toEqual(["patch NodeNetwork/n1", "patch NodeNetwork/n2", "patch NodeNetwork/n3", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    h.agentsApply();
    h.agentsProbe(2);
    // Finalize: probing ends (a patch that removes the health section), then a grace period.
    const before2 = h.plan("n2")!.planHash;
    const from2 = h.kube.calls.length;
    expect(await h.pass()).toEqual(["event MigrationGatePassed", "patch NodeNetwork/n1", "patch NodeNetwork/n2", "patch NodeNetwork/n3", "patchStatus ClusterNetwork/default"]);
    expect(h.callsSince(from2).find((c) => c.verb === "patch" && c.name === "n2")?.body).toEqual(healthPatch(before2, h.plan("n2")!.planHash, 2, { op: "remove", path: "/spec/health" }));
    expect(h.plan("n2")?.health).toBeUndefined();
    expect(h.status().migration).toMatchObject({ phase: "Finalize", stage: "grace" });
    h.agentsApply();
    h.clock.now += 1000;
    // Within the grace period: only the realized count moves.
    expect(await h.pass()).toEqual(["patchStatus ClusterNetwork/default"]);
    expect(h.status().migration).toMatchObject({ phase: "Finalize", stage: "grace" });
    h.clock.now += 1000; // grace: 2 probe intervals
    // The vxlan state goes from every node: a full apply each.
    expect(await h.pass()).toEqual(["apply NodeNetwork/n1", "apply NodeNetwork/n2", "apply NodeNetwork/n3", "patchStatus ClusterNetwork/default"]);
    expect(h.status().migration).toMatchObject({ phase: "Finalize", stage: "cleanup" });
    h.agentsApply();
    expect(await h.pass()).toEqual(["event MigrationCompleted", "patchStatus ClusterNetwork/default"]);
    expect(h.status()).toMatchObject({ phase: "Ready", activeMode: "ipip", targetMode: "ipip", migration: { phase: "Completed", nodesMigrated: 3 } });
    expect(h.condition("Migrating")).toMatchObject({ status: "False", reason: "Completed" });
    expect(h.condition("Ready")?.status).toBe("True");
    // Settled: nothing more to write.
    expect(await h.pass()).toEqual([]);
  });

  it.each([
    ["a node lacks the kernel module", { n2: false }, "n2: mode ipip needs the ipip kernel module, which the node lacks"],
    ["no agent reported yet", undefined, "n1, n2, n3: the agent has not reported the node's capabilities yet"],
  ])("preflight blocks when %s, names the nodes, and rewrites no plan", async (_name, lacking, message) => {
    const h = await cluster({ spec: { migration: strategy } });
    await h.pass();
    if (lacking) {
      h.agentsApply(h.names, ALL_CAPABILITIES);
      h.agentsApply(Object.keys(lacking), { ...ALL_CAPABILITIES, ipip: false });
    } else {
      // Agents that apply but report no capabilities (an older agent).
      for (const n of h.names) h.kube.mutate("NodeNetwork", { name: n }, (nn) => void (nn["status"] = { appliedHash: (nn["spec"] as { planHash: string }).planHash }));
    }
    await h.pass();
    expect(h.condition("MigrationBlocked")).toEqual({ status: "False", reason: "NotBlocked", message: "no migration is blocked" });
    h.setClusterNetwork((spec) => {
      spec["mode"] = "ipip";
    });
    expect(await h.pass()).toEqual(["event MigrationStarted", "event MigrationBlocked", "patchStatus ClusterNetwork/default"]);
    expect(h.condition("MigrationBlocked")).toEqual({ status: "True", reason: "PreflightFailed", message: `cannot migrate to ipip: ${message}` });
    expect(h.condition("Migrating")).toMatchObject({ status: "False", reason: "Blocked" });
    expect(h.status()).toMatchObject({ activeMode: "vxlan", targetMode: "ipip", migration: { phase: "Blocked" } });
    expect(h.plan("n1")?.mode).toBe("vxlan");
    expect(await h.pass()).toEqual([]);
  });

  it("consumes the control annotation: pause holds the migration, resume continues it; the annotation is removed each time", async () => {
    const h = await readyCluster({ spec: { migration: strategy } });
    h.setClusterNetwork((spec) => {
      spec["mode"] = "ipip";
    });
    await h.pass();
    h.setClusterNetwork((_spec, annotations) => {
      annotations[MIGRATION_CONTROL_ANNOTATION] = "pause";
    });
    h.agentsApply();
    const from = h.kube.calls.length;
    // The status (Paused) first, then the annotation: a pass that read the annotation gone must find the status it led to.
    expect(await h.pass()).toEqual(["event MigrationPaused", "patchStatus ClusterNetwork/default", "patch ClusterNetwork/default"]);
    expect(h.callsSince(from).find((c) => c.verb === "patch")?.body).toEqual([
      { op: "test", path: "/metadata/annotations/switchyard.dev~1migration-control", value: "pause" },
      { op: "remove", path: "/metadata/annotations/switchyard.dev~1migration-control" },
    ]);
    expect(h.kube.peek("ClusterNetwork", CN)?.metadata?.annotations).toEqual({});
    expect(h.status().migration).toMatchObject({ phase: "Paused", pausedFrom: "Prepare" });
    expect(h.condition("Migrating")).toMatchObject({ status: "True", reason: "Paused" });
    // Paused: although every agent applied the Prepare plans, no canary.
    expect(await h.pass()).toEqual([]);
    h.setClusterNetwork((_spec, annotations) => {
      annotations[MIGRATION_CONTROL_ANNOTATION] = "resume";
    });
    expect(await h.pass()).toEqual(["event MigrationResumed", "event MigrationCanary", "apply NodeNetwork/n1", "event PlansPublished", "patchStatus ClusterNetwork/default", "patch ClusterNetwork/default"]);
    expect(h.kube.peek("ClusterNetwork", CN)?.metadata?.annotations).toEqual({});
    expect(h.status().migration?.phase).toBe("Canary");
  });

  it("consuming a control never removes a newer one: the removal is guarded by the value the pass read", async () => {
    const h = await readyCluster();
    h.setClusterNetwork((_spec, annotations) => {
      annotations[MIGRATION_CONTROL_ANNOTATION] = "resume";
    });
    // A pass that read a stale "pause" (the watch had not delivered the user's "resume" yet) clears with this patch.
    await expect(h.kube.patch("ClusterNetwork", CN, clearControlPatch("pause"))).rejects.toMatchObject({ status: 422 });
    expect(h.kube.peek("ClusterNetwork", CN)?.metadata?.annotations?.[MIGRATION_CONTROL_ANNOTATION]).toBe("resume");
    await h.kube.patch("ClusterNetwork", CN, clearControlPatch("resume"));
    expect(h.kube.peek("ClusterNetwork", CN)?.metadata?.annotations).toEqual({});
  });

  it("a health patch whose guard fails (the plan was changed behind our back) falls back to a full apply", async () => {
    const h = await readyCluster({ spec: { migration: strategy } });
    h.setClusterNetwork((spec) => {
      spec["mode"] = "ipip";
    });
    await h.pass();
    h.agentsApply();
    await h.pass(); // Canary
    h.agentsApply();
    h.kube.mutate("NodeNetwork", { name: "n3" }, (nn) => void ((nn["spec"] as { planHash: string }).planHash = "someone-else"));
    expect(await h.pass()).toEqual(["patch NodeNetwork/n1", "patch NodeNetwork/n2", "patch NodeNetwork/n3", "apply NodeNetwork/n3", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    expect(h.plan("n3")?.planHash).toBe(h.plan("n3")?.planHash);
    expect(h.plan("n3")?.health?.epoch).toBe(1);
    expect(h.plan("n3")?.planHash).not.toBe("someone-else");
    await expect(h.controller.metrics.writes.get()).resolves.toMatchObject({ values: expect.arrayContaining([expect.objectContaining({ labels: { kind: "NodeNetwork", verb: "patch" }, value: 2 })]) });
  });

  it("a restarted controller ends health probing by removing the section before applying (it no longer knows what it wrote)", async () => {
    const h = await readyCluster({ spec: { migration: { ...strategy, batchSize: 3, canary: { nodes: 3 } } } });
    h.setClusterNetwork((spec) => {
      spec["mode"] = "ipip";
    });
    await h.pass(); // Prepare
    h.agentsApply();
    await h.pass(); // Canary: every node
    h.agentsApply();
    await h.pass(); // Gate
    h.agentsApply();
    h.agentsProbe(2);
    await h.restart();
    const from = h.kube.calls.length;
    // Finalize: the plan bodies differ only in health, but the new controller has no body of its own to
    // compare, so each node's write is a removal of the section, then an apply (plans go out in parallel).
    expect(await h.pass()).toEqual(["event MigrationGatePassed", "patch NodeNetwork/n1", "patch NodeNetwork/n2", "patch NodeNetwork/n3", "apply NodeNetwork/n1", "apply NodeNetwork/n2", "apply NodeNetwork/n3", "event PlansPublished", "patchStatus ClusterNetwork/default"]);
    for (const n of h.names) {
      expect(h.callsSince(from).filter((c) => c.name === n && c.kind === "NodeNetwork").map((c) => [c.verb, c.verb === "patch" ? c.body : undefined])).toEqual([
        ["patch", [{ op: "remove", path: "/spec/health" }]],
        ["apply", undefined],
      ]);
    }
    expect(h.plan("n1")?.health).toBeUndefined();
    expect(h.status().migration).toMatchObject({ phase: "Finalize", stage: "grace" });
  });
});

describe("fencing", () => {
  it("writes nothing once its lease has lapsed, even before a lease round notices (a frozen replica waking up)", async () => {
    const kube = new FakeKube();
    const clock = { now: T0 };
    kube.upsert("Namespace", namespaceObject("default"));
    for (const n of ["n1", "n2"]) kube.upsert("Node", nodeObject(n));
    kube.upsert("ClusterNetwork", clusterNetworkObject());
    // A long lease: its renewal round (every 20 s of real time) cannot run during the test.
    const controller = new Controller({ client: kube, now: () => clock.now, leaseDurationSec: 60, log: createLogger("controller", "silent") });
    controller.scheduler.stop();
    running.push(controller);
    await controller.start();
    await waitFor("the lease", () => (controller.isLeader() ? true : undefined), 5_000, 5);
    const first = kube.calls.length;
    await controller.reconcile();
    expect(kube.callsOf(["apply", "patchStatus"], undefined, first).length).toBeGreaterThan(0);

    kube.upsert("Node", nodeObject("n3")); // work to do: a plan for n3
    clock.now += 61_000; // frozen past the lease
    expect(controller.isLeader()).toBe(false);
    const mark = kube.calls.length;
    await controller.reconcile();
    expect(kube.callsOf(["apply", "patch", "patchStatus", "create", "delete"], undefined, mark)).toEqual([]);
  });
});
