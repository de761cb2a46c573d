// Drives a mode migration on a lab cluster (lab kubelet or real nodes) the way a user does (one edit of the ClusterNetwork through the
// API) and follows it from status.migration until it ends, while continuous traffic measures what the
// rollout cost: lost pings, TCP stalls, and whether a denied flow ever got through.
import type { ClusterNetworkStatus, Mode } from "../src/api/cluster-network";
import { clusterNetworkIO, editObject } from "../src/kube/guarded-edit";
import { controlOp, needsRetry, type ClusterNetworkView, type PatchOp } from "../src/migration/controls";
import { describeProgress } from "../src/migration/progress";
import { migrationSpecPatch } from "../src/migration/spec-patch";
import type { Lab } from "./topology";

/** What a migration run needs of a cluster: a LabCluster, or a RealCluster (kubelet nodes). */
export interface MigratableCluster {
  readonly lab: Lab;
  clusterNetwork(): Promise<{ status?: unknown }>;
  waitForReady(timeoutMs?: number, opts?: { readonly acceptDegraded?: boolean }): Promise<unknown>;
}
import { torPeersFor } from "./cluster/samples";
import { TOR_AS_NUMBER } from "./router";
import { startTraffic, type PingResult, type TcpStreamResult, type DeniedResult, type TrafficOptions } from "./traffic";


/** The JSON patch that moves this lab's ClusterNetwork `cn` to `to` (mode-specific blocks move with the mode). */
export function migrationPatch(cluster: Pick<MigratableCluster, "lab">, cn: ClusterNetworkView, to: Mode, rollout: Record<string, unknown> = {}, bgp?: Record<string, unknown>): PatchOp[] {
  const spec = cn.spec ?? {};
  // On several subnets a BGP mesh cannot reach across the router: peer with the lab's top-of-rack router.
  const multiSubnet = cluster.lab.subnets.length > 1;
  return migrationSpecPatch(spec, to, {
    ...(bgp !== undefined ? { settings: { bgp } } : {}),
    ...(multiSubnet ? { defaults: { bgp: { asNumber: 64512, topology: "tor", peers: torPeersFor(cluster.lab, TOR_AS_NUMBER) } } } : {}),
    rollout,
  });
}

export interface MigrationRun {
  readonly final: ClusterNetworkStatus | undefined;
  /** Every distinct progress line, with the time since the edit. */
  readonly timeline: readonly string[];
  readonly ms: number;
  readonly traffic?: { pings: PingResult[]; tcp: TcpStreamResult[]; denied: DeniedResult[] };
}

export interface MigrateOptions {
  readonly rollout?: Record<string, unknown>;
  /** spec.bgp to use when moving to bgp (default: the lab's top-of-rack peers, or a full mesh on one subnet). */
  readonly bgp?: Record<string, unknown>;
  readonly traffic?: Omit<TrafficOptions, "maxDurationSec">;
  readonly timeoutMs?: number;
  readonly progress?: (line: string) => void;
  /** Called once per progress change; may act on the cluster (pause, kill a controller, ...). */
  readonly onProgress?: (status: ClusterNetworkStatus | undefined) => Promise<void> | void;
  /** The phases that end the run (default: Completed, RolledBack, Failed, Blocked). */
  readonly until?: readonly string[];
  /**
   * Asks for a pause in the same edit that starts the migration, so it holds in Preflight. (The controller
   * consumes a control annotation on its next pass: one set before the edit would be gone by then.)
   */
  readonly startPaused?: boolean;
}

export async function migrateLab(cluster: MigratableCluster, to: Mode, opts: MigrateOptions = {}): Promise<MigrationRun> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const traffic = opts.traffic ? await startTraffic(cluster.lab, { ...opts.traffic, maxDurationSec: Math.ceil(timeoutMs / 1000) + 10 }) : undefined;
  const started = Date.now();
  const timeline: string[] = [];
  let final: ClusterNetworkStatus | undefined;
  try {
    // As `switchyard migrate --to` does: the same mode again after an attempt that did not complete asks
    // for a new attempt. An attempt is this run's once its start time differs from the last one's.
    const before = await editObject<ClusterNetworkView>(clusterNetworkIO("default", "switchyard-lab"), (cn) => {
      const ops: PatchOp[] = migrationPatch(cluster, cn, to, opts.rollout ?? {}, opts.bgp);
      if (needsRetry(cn, to)) ops.push(controlOp(cn, "retry"));
      // One annotation per edit: a retry and a pause in the same patch would overwrite each other.
      else if (opts.startPaused) ops.push(controlOp(cn, "pause"));
      return ops;
    });
    const previousStart = before.status?.migration?.startedAt;
    const until = opts.until ?? ["Completed", "RolledBack", "Failed", "Blocked"];
    let last = "";
    let saw = false;
    while (Date.now() - started < timeoutMs) {
      const cn = await cluster.clusterNetwork();
      const st = cn.status as ClusterNetworkStatus | undefined;
      if (st?.migration?.to === to && st.migration.startedAt !== previousStart) saw = true;
      const line = describeProgress(st);
      if (line !== last) {
        last = line;
        const stamped = `${((Date.now() - started) / 1000).toFixed(2)}s ${line}`;
        timeline.push(stamped);
        opts.progress?.(stamped);
        await opts.onProgress?.(st);
      }
      if (saw && st?.migration && until.includes(st.migration.phase)) {
        final = st;
        if (["Completed", "RolledBack", "Failed", "Blocked"].includes(st.migration.phase)) {
          // Settle: every agent applied the final plans.
          await cluster.waitForReady(30_000, { acceptDegraded: true }).catch(() => undefined);
          final = (await cluster.clusterNetwork()).status as ClusterNetworkStatus;
        }
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    if (traffic) await traffic.stop();
    throw e;
  }
  const t = traffic ? await traffic.stop() : undefined;
  return { final, timeline, ms: Date.now() - started, ...(t ? { traffic: t } : {}) };
}
