// `switchyard migrate ...`: change the mode of a live cluster and follow the rollout. The command only
// edits the ClusterNetwork (spec.mode and the rollout knobs, or a control annotation); the controller's
// migration driver does the work, so `kubectl edit` has exactly the same effect.
import { GenericKind, K8s } from "kubernetes-fluent-client";
import type { Mode } from "../api/cluster-network";
import type { BGP_TOPOLOGIES } from "../api/mode-names";
import { ClusterNetworkGVK } from "../kube/kinds";
import { clusterNetworkIO, editObject } from "../kube/guarded-edit";
import { controlOp, needsRetry, type ClusterNetworkView, type PatchOp } from "../migration/controls";
import { describeProgress } from "../migration/progress";
import { migrationSpecPatch } from "../migration/spec-patch";

/** `migrate --to`'s flags, already parsed and checked by src/cli/flags.ts (the kubeconfig is readable). */
type BgpTopology = (typeof BGP_TOPOLOGIES)[number];

export interface MigrateOptions {
  readonly to: Mode;
  readonly canary?: number;
  readonly batch?: number | string;
  readonly wait?: boolean;
  readonly name: string;
  readonly kubeconfig?: string;
  readonly bgpAs?: number;
  readonly bgpTopology?: BgpTopology;
  readonly timeout: number;
}

function api(name?: string) {
  return K8s(GenericKind, { kindOverride: ClusterNetworkGVK, ...(name ? { name } : {}) });
}

function apiError(e: unknown): string {
  const d = (e as { data?: { message?: string }; status?: number; statusText?: string }) ?? {};
  return d.data?.message ?? (d.status ? `${d.status} ${d.statusText ?? ""}` : String(e));
}

async function getCN(name: string): Promise<ClusterNetworkView> {
  return (await api().Get(name)) as ClusterNetworkView;
}

export async function runMigrateTo(opts: MigrateOptions): Promise<number> {
  if (opts.kubeconfig) process.env["KUBECONFIG"] = opts.kubeconfig;
  const to = opts.to;
  try {
    await getCN(opts.name);
  } catch (e) {
    console.error(`error: cannot read ClusterNetwork ${opts.name}: ${apiError(e)}`);
    return 2;
  }
  // Keep the spec valid for the new mode: mode-specific blocks move with the mode.
  const rollout: Record<string, unknown> = {};
  if (opts.canary !== undefined) rollout["canary"] = { nodes: opts.canary };
  if (opts.batch !== undefined) rollout["batchSize"] = opts.batch;
  const runsAlready = (c: ClusterNetworkView) => c.spec?.["mode"] === to && c.status?.activeMode === to;
  const edit = (c: ClusterNetworkView): PatchOp[] => {
    if (runsAlready(c)) return [];
    const ops: PatchOp[] = migrationSpecPatch(c.spec ?? {}, to, {
      defaults: { bgp: { asNumber: opts.bgpAs ?? 64512, topology: opts.bgpTopology ?? "full-mesh" } },
      rollout,
    });
    if (needsRetry(c, to)) ops.push(controlOp(c, "retry"));
    return ops;
  };
  let cn: ClusterNetworkView;
  try {
    cn = await editObject<ClusterNetworkView>(clusterNetworkIO(opts.name), edit);
  } catch (e) {
    console.error(`error: the ClusterNetwork was not changed: ${apiError(e)}`);
    return 1;
  }
  if (runsAlready(cn)) {
    console.log(`ClusterNetwork ${opts.name} already runs ${to}: nothing to migrate.`);
    return 0;
  }
  const last = cn.status?.migration;
  const retry = needsRetry(cn, to);
  console.log(
    retry
      ? `ClusterNetwork ${opts.name}: spec.mode is already ${to} and the last attempt ended ${last?.phase}; asked the controller to try again.`
      : `ClusterNetwork ${opts.name}: spec.mode set to ${to}; the controller migrates node by node (canaries first, gated batches).`,
  );
  if (!opts.wait) return 0;
  return followMigration(opts.name, to, opts.timeout * 1000, last?.startedAt);
}

/**
 * Follows the migration to `to` until it ends. `previousStart` is status.migration.startedAt from before the
 * edit: that attempt's end (e.g. an earlier rollback to the same mode) is not this one's.
 */
export async function followMigration(name: string, to: Mode, timeoutMs: number, previousStart?: string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let sawMigration = false;
  while (Date.now() < deadline) {
    let cn: ClusterNetworkView;
    try {
      cn = await getCN(name);
    } catch (e) {
      console.error(`warning: ${apiError(e)}`);
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    const st = cn.status;
    const m = st?.migration;
    if (m && m.to === to && (previousStart === undefined || m.startedAt !== previousStart)) sawMigration = true;
    const line = describeProgress(st);
    if (line !== last) {
      console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
      last = line;
    }
    if (sawMigration && m && ["Completed", "RolledBack", "Failed", "Blocked"].includes(m.phase) && st?.phase !== "Progressing") {
      if (m.phase === "Completed") {
        console.log(`migration to ${to} completed; active mode ${st?.activeMode}`);
        return 0;
      }
      console.log(`migration to ${to} ended ${m.phase}: ${m.reason ?? m.message ?? ""}`);
      return 1;
    }
    if (!sawMigration && st?.activeMode === to && st.phase === "Ready") {
      console.log(`already on ${to}`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  console.error(`timed out after ${timeoutMs / 1000}s; the migration continues: \`switchyard migrate status\``);
  return 1;
}

export async function runMigrateControl(action: "pause" | "resume" | "abort" | "retry", opts: { name: string; kubeconfig?: string }): Promise<number> {
  if (opts.kubeconfig) process.env["KUBECONFIG"] = opts.kubeconfig;
  try {
    const cn = await editObject<ClusterNetworkView>(clusterNetworkIO(opts.name), (c) => [controlOp(c, action)]);
    console.log(`asked the controller to ${action} the migration of ClusterNetwork ${opts.name}`);
    console.log(describeProgress(cn.status));
    return 0;
  } catch (e) {
    console.error(`error: ${apiError(e)}`);
    return 1;
  }
}

export async function runMigrateStatus(opts: { name: string; kubeconfig?: string; json?: boolean }): Promise<number> {
  if (opts.kubeconfig) process.env["KUBECONFIG"] = opts.kubeconfig;
  try {
    const cn = await getCN(opts.name);
    if (opts.json) {
      console.log(JSON.stringify(cn.status?.migration ?? null, null, 2));
      return 0;
    }
    console.log(describeProgress(cn.status));
    const m = cn.status?.migration;
    if (m?.batches) m.batches.forEach((b, i) => console.log(`  batch ${i}${i === 0 ? " (canary)" : ""}: ${b.join(", ")}${i < (m.migratedBatches ?? 0) ? `  -> ${m.to}` : ""}`));
    for (const c of cn.status?.conditions ?? []) console.log(`  ${c.type}=${c.status} (${c.reason}): ${c.message}`);
    return 0;
  } catch (e) {
    console.error(`error: ${apiError(e)}`);
    return 1;
  }
}
