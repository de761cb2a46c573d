// How a migration is steered from outside the controller: the control annotation (pause, resume, abort,
// retry) as a JSON patch, and when setting the same mode again needs an explicit retry. Pure: the CLI and
// the lab send what these build (src/kube/cluster-network-edit.ts); the controller consumes the annotation.
import { annotationPath, MIGRATION_CONTROL_ANNOTATION } from "../api/annotations";
import type { ClusterNetworkStatus, Mode } from "../api/cluster-network";

/** A JSON patch operation (RFC 6902) as the API takes it. */
export type PatchOp = { op: "add" | "replace" | "remove"; path: string; value?: unknown };
/** What of a ClusterNetwork the controls read. */
export type ClusterNetworkView = { metadata?: { name?: string; annotations?: Record<string, string>; generation?: number }; spec?: Record<string, unknown>; status?: ClusterNetworkStatus };

export type MigrationControl = "pause" | "resume" | "abort" | "retry";

/**
 * True when spec.mode already is `to` and the attempt for this generation ended without completing
 * (RolledBack, Failed, Blocked): setting the same mode again changes nothing (no new generation), so a new
 * attempt has to be asked for (the `retry` control).
 */
export function needsRetry(cn: ClusterNetworkView, to: Mode): boolean {
  const m = cn.status?.migration;
  return cn.spec?.["mode"] === to && m?.to === to && ["RolledBack", "Failed", "Blocked"].includes(m.phase) && m.generation === cn.metadata?.generation;
}

/** The JSON patch operation that sets the migration control annotation (the controller removes it). */
export function controlOp(cn: ClusterNetworkView, action: MigrationControl): PatchOp {
  return cn.metadata?.annotations
    ? { op: "add", path: annotationPath(MIGRATION_CONTROL_ANNOTATION), value: action }
    : { op: "add", path: "/metadata/annotations", value: { [MIGRATION_CONTROL_ANNOTATION]: action } };
}
