// The JSON patch that moves a ClusterNetwork to another mode, as `switchyard migrate --to` and the lab send
// it: spec.mode, then what keeps the spec valid for the new mode (every other mode's settings block goes,
// crossSubnet is turned off where the target cannot route natively within a subnet, the target's settings
// block is added when it needs one), then the rollout knobs. Each mode's part is its backend's
// (specPatchOutOf / specPatchInto in src/modes); this file only puts them in order. Pure.
import type { Mode } from "../api/cluster-network";
import type { SpecPatchOp, SpecPatchOptions, SpecView } from "../modes/backend";
import { backendOf, MODE_BACKEND_LIST } from "../modes/registry";

export interface MigrationSpecPatchOptions extends SpecPatchOptions {
  /** Rollout knobs merged into spec.migration (canary, batchSize, ...); nothing when empty. */
  readonly rollout?: Readonly<Record<string, unknown>>;
}

export function migrationSpecPatch(spec: SpecView, to: Mode, options: MigrationSpecPatchOptions = {}): SpecPatchOp[] {
  const ops: SpecPatchOp[] = [{ op: spec["mode"] === undefined ? "add" : "replace", path: "/spec/mode", value: to }];
  for (const backend of MODE_BACKEND_LIST) if (backend.mode !== to) ops.push(...backend.specPatchOutOf(spec));
  ops.push(...backendOf(to).specPatchInto(spec, options));
  const rollout = options.rollout ?? {};
  if (Object.keys(rollout).length > 0) {
    const migration = (spec["migration"] ?? {}) as Readonly<Record<string, unknown>>;
    ops.push({ op: spec["migration"] === undefined ? "add" : "replace", path: "/spec/migration", value: { ...migration, ...rollout } });
  }
  return ops;
}
