// Act, the last stage of a pass: carries decisions out through the KubeClient port, in the order the
// design needs (events and the consumed control first, then the plans, then deletions, then status, which
// reports only what agents applied), and updates what the controller remembers (ControllerState), the
// counters and the metrics. No decision is taken here: where a write fails, the failure either is logged
// (events, the control annotation, a refused health patch, which falls back to an apply) or ends the pass,
// which the scheduler retries with backoff.
import { mapBounded } from "../base/limit";
import type { Logger } from "../base/log";
import { shortHash } from "../model/names";
import { describeError, statusOf, type KubeClient } from "../kube/client";
import { BLOCK_IN_USE_FINALIZER } from "../api/block-affinity";
import type { ClusterStore } from "../kube/store";
import type { ControllerMetrics } from "./metrics";
import { clearControlPatch, type EventNote, type FollowUpDecision, type InvalidSpecDecision, type PlanWrite, type PlanWritesDecision } from "./decide";
import type { ClusterNetworkRef } from "./observe";
import type { ControllerState } from "./state";

/** How many plans one pass writes at a time. */
const PUBLISH_CONCURRENCY = 8;

/** Counters for tests and benchmarks. */
export interface ControllerCounters {
  publishes: number;
  deletes: number;
  statusWrites: number;
  passes: number;
  events: number;
}

/** What acting needs: the port, the state it updates, and the controller's clock, counters, metrics and log. */
export interface ActContext {
  readonly client: KubeClient;
  readonly state: ControllerState;
  readonly store: Pick<ClusterStore, "forgetChangesThrough">;
  readonly counters: ControllerCounters;
  readonly metrics: ControllerMetrics;
  readonly log: Logger;
  readonly now: () => number;
  /** Asks for a pass at a time (migration timeouts and grace periods). */
  readonly wakeAt: (at: number) => void;
}

/**
 * Records an Event on the ClusterNetwork, aggregated as Kubernetes' own recorder does: the same event (same
 * object, type, reason and message) is one Event object whose `count` and `lastTimestamp` go up, not a
 * new object per occurrence. Its name is derived from those fields, so a restarted controller finds the
 * object it wrote before (a create refused as AlreadyExists becomes an increment); an Event the API server
 * has expired meanwhile (its TTL, an hour by default) is created anew. A failure is logged, not retried.
 */
async function recordEvent(cn: ClusterNetworkRef, note: EventNote, ctx: ActContext): Promise<void> {
  ctx.state.lastEvents.set(note.reason, note.message);
  const nowIso = new Date(ctx.now()).toISOString();
  const name = `${cn.name}.${shortHash(`${cn.uid ?? ""}/${note.type}/${note.reason}/${note.message}`, 10)}`;
  const ref = { name, namespace: "default" };
  const increment = async (count: number): Promise<void> => {
    await ctx.client.patch("Event", ref, [
      { op: "replace", path: "/count", value: count },
      { op: "replace", path: "/lastTimestamp", value: nowIso },
    ]);
    ctx.state.eventCounts.set(name, count);
    ctx.counters.events++;
    ctx.metrics.writes.inc({ kind: "Event", verb: "patch" });
  };
  try {
    const seen = ctx.state.eventCounts.get(name);
    if (seen !== undefined) {
      try {
        return await increment(seen + 1);
      } catch (e) {
        if (statusOf(e) !== 404) throw e;
        ctx.state.eventCounts.delete(name); // expired: record it anew
      }
    }
    try {
      await ctx.client.create("Event", {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace: "default" },
        involvedObject: { apiVersion: cn.apiVersion, kind: "ClusterNetwork", name: cn.name, uid: cn.uid },
        reason: note.reason,
        message: note.message.slice(0, 1024),
        type: note.type,
        source: { component: "switchyard-controller" },
        firstTimestamp: nowIso,
        lastTimestamp: nowIso,
        count: 1,
      });
    } catch (e) {
      if (statusOf(e) !== 409) throw e;
      // Written by an earlier run of the controller: count on from its count.
      const existing = (await ctx.client.get("Event", ref)) as { count?: number } | undefined;
      return await increment((existing?.count ?? 1) + 1);
    }
    ctx.state.eventCounts.set(name, 1);
    ctx.counters.events++;
    ctx.metrics.writes.inc({ kind: "Event", verb: "create" });
  } catch (e) {
    ctx.log.debug({ err: String(e) }, "event not recorded");
  }
}

async function recordEvents(cn: ClusterNetworkRef, notes: readonly EventNote[], ctx: ActContext): Promise<void> {
  for (const n of notes) await recordEvent(cn, n, ctx);
}

export async function actOnInvalidSpec(d: InvalidSpecDecision, ctx: ActContext): Promise<void> {
  ctx.log.error({ clusterNetwork: d.clusterNetwork.name, problems: d.problems }, "ClusterNetwork is invalid; keeping the plans in force");
  await recordEvents(d.clusterNetwork, d.events, ctx);
}

/** Writes one node's plan: the health patch when decided (falling back to the apply if refused), else the apply. */
async function writePlan(w: PlanWrite, ctx: ActContext): Promise<void> {
  const ref = { name: w.node };
  let patched = false;
  if (w.healthPatch) {
    patched = await ctx.client
      .patch("NodeNetwork", ref, w.healthPatch)
      .then(() => true)
      .catch((e: unknown) => {
        ctx.log.debug({ node: w.node, err: describeError(e) }, "health patch refused; applying the whole plan");
        return false;
      });
    if (patched) ctx.metrics.writes.inc({ kind: "NodeNetwork", verb: "patch" });
  }
  if (!patched) {
    if (w.removeHealthFirst) {
      await ctx.client
        .patch("NodeNetwork", ref, [{ op: "remove", path: "/spec/health" }])
        .catch((e: unknown) => ctx.log.debug({ node: w.node, err: describeError(e) }, "no health section to remove"));
    }
    await ctx.client.apply("NodeNetwork", w.apply, { force: true });
    ctx.metrics.writes.inc({ kind: "NodeNetwork", verb: "apply" });
  }
  ctx.state.published.set(w.node, w.spec.planHash);
  ctx.state.publishedSpecs.set(w.node, w.spec);
  ctx.counters.publishes++;
}

/**
 * Records a block in its BlockAffinity. One that exists already (a create our cache had not seen yet)
 * must record the same block; one recording another block ends the pass, which compiles again from it.
 */
async function recordBlock(a: PlanWritesDecision["affinities"][number], ctx: ActContext): Promise<void> {
  try {
    await ctx.client.create("BlockAffinity", a.create);
    ctx.metrics.writes.inc({ kind: "BlockAffinity", verb: "create" });
  } catch (e) {
    if (statusOf(e) !== 409) throw e;
    const live = await ctx.client.get("BlockAffinity", { name: a.node });
    const cidr = (live?.["spec"] as { cidr?: string } | undefined)?.cidr;
    if (cidr !== a.cidr) throw new Error(`node ${a.node} holds block ${cidr ?? "?"} (BlockAffinity ${a.node}), not ${a.cidr}: compiling again from the recorded allocation`);
  }
  ctx.state.recordedBlocks.set(a.node, a.cidr);
}

/** What the plan writes leave for the follow-up: when the oldest change they carry was seen; the control to consume. */
export interface PlansWritten {
  readonly seenAt: number;
  readonly clearControl?: string;
}

/**
 * The step's events, the MTU warning, then the changed plans (several at a time: plans of one pass are
 * independent of each other; the zero-loss order is between migration steps, never within one).
 */
export async function actOnPlanWrites(d: PlanWritesDecision, ctx: ActContext): Promise<PlansWritten> {
  const cn = d.clusterNetwork;
  await recordEvents(cn, d.events, ctx);
  if (d.wakeAt !== undefined) ctx.wakeAt(d.wakeAt);
  await recordEvents(cn, d.podMtu.events, ctx);
  const seenAt = Math.min(d.oldestChangeSeenAt ?? Infinity, ctx.now());
  // Every block is recorded before any plan carries it: a NodeNetwork deleted, or a ClusterNetwork
  // re-created, finds the allocation in its own objects.
  await mapBounded(d.affinities, PUBLISH_CONCURRENCY, (a) => recordBlock(a, ctx));
  for (const [node, hash] of d.confirmed) ctx.state.published.set(node, hash);
  if (d.missingBody !== undefined) {
    // Compile afresh on the retry.
    ctx.state.lastCompile = undefined;
    throw new Error(`no plan body for ${d.missingBody}`);
  }
  await mapBounded(d.writes, PUBLISH_CONCURRENCY, (w) => writePlan(w, ctx));
  return { seenAt, ...(d.clearControl !== undefined ? { clearControl: d.clearControl } : {}) };
}

/**
 * Deletes the plans of nodes that are gone, notes what was published (for the implementation delay and
 * as an Event), remembers the compile and when its layout was all published, writes the status, and only
 * then consumes the control annotation. That order matters on a real API server, whose watch can deliver
 * the controller's own writes late: a pass that saw the annotation gone but not yet the status it led to
 * (Paused) would carry on from the old phase and undo the pause. With the status written first, a pass in
 * between sees the control still there and decides the same again.
 */
export async function actOnFollowUp(d: FollowUpDecision, sent: PlansWritten, ctx: ActContext): Promise<void> {
  const { state, counters, metrics, log } = ctx;
  const cn = d.clusterNetwork;
  for (const name of d.deletes) {
    await ctx.client.delete("NodeNetwork", { name });
    state.published.delete(name);
    state.publishedSpecs.delete(name);
    counters.deletes++;
    metrics.writes.inc({ kind: "NodeNetwork", verb: "delete" });
    log.info({ node: name }, "deleted the plan of a node that is gone");
  }
  for (const r of d.releases) {
    // Delete first: with the finalizer on, the record stays (terminating, still held) until the finalizer
    // goes, so a crash between the two writes leaves a held block for the next pass, never a lost one.
    if (!r.terminating) await ctx.client.delete("BlockAffinity", { name: r.node });
    if (r.finalizers.includes(BLOCK_IN_USE_FINALIZER)) {
      await ctx.client.patch("BlockAffinity", { name: r.node }, [
        { op: "test", path: "/metadata/finalizers", value: r.finalizers },
        { op: "replace", path: "/metadata/finalizers", value: r.finalizers.filter((f) => f !== BLOCK_IN_USE_FINALIZER) },
      ]).catch((e: unknown) => {
        if (statusOf(e) !== 404) throw e;
      });
    }
    state.recordedBlocks.delete(r.node);
    metrics.writes.inc({ kind: "BlockAffinity", verb: "delete" });
    log.info({ node: r.node, block: r.cidr }, "released the block of a node that is gone");
  }
  if (d.published.size > 0) {
    state.pendingDelays.push({ seenAt: sent.seenAt, targets: d.published });
    log.info({ nodes: [...d.published.keys()], inputVersion: d.inputVersion }, "published plans");
  }
  await recordEvents(cn, d.events, ctx);
  ctx.store.forgetChangesThrough(d.inputVersion);
  state.lastCompile = d.compile;
  if (state.layoutPublished?.key !== d.layoutKey) state.layoutPublished = { key: d.layoutKey, at: ctx.now() };
  metrics.nodes.set({ state: "desired" }, d.nodes.desired);
  metrics.nodes.set({ state: "realized" }, d.nodes.realized);
  if (d.status) {
    await ctx.client.patchStatus("ClusterNetwork", { name: cn.name }, d.status.patch);
    state.lastStatusJson = d.status.comparable;
    counters.statusWrites++;
    metrics.writes.inc({ kind: "ClusterNetwork", verb: "patch-status" });
    await recordEvents(cn, d.status.events, ctx);
  }
  if (sent.clearControl !== undefined) {
    await ctx.client
      .patch("ClusterNetwork", { name: cn.name }, clearControlPatch(sent.clearControl))
      .catch((e: unknown) => ctx.log.info({ err: describeError(e) }, "the migration control annotation was not cleared (already gone, or a newer one arrived: the next pass reads it)"));
  }
}

/** Observes the implementation delay of changes whose affected nodes have now all applied their plans. */
export function recordRealizedDelays(applied: ReadonlyMap<string, string | undefined>, ctx: Pick<ActContext, "state" | "metrics" | "now">): void {
  const { pendingDelays, published } = ctx.state;
  const now = ctx.now();
  for (let i = pendingDelays.length - 1; i >= 0; i--) {
    const p = pendingDelays[i]!;
    const done = [...p.targets].every(([node, hash]) => applied.get(node) === hash || published.get(node) !== hash);
    if (done) {
      ctx.metrics.implementationDelay.observe((now - p.seenAt) / 1000);
      pendingDelays.splice(i, 1);
    }
  }
}
