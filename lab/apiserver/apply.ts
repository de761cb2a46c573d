// Server-side apply (PATCH with application/apply-patch+yaml). The apply configuration states the fields a
// manager wants to own. Fields another manager owns may only change with force=true (otherwise 409 with
// one FieldManagerConflict cause per field); fields this manager applied before and no longer sends are
// removed unless someone else still owns them; fields with unchanged values become shared.

import { ApiError, type StatusCause } from "./errors";
import { describePath, FieldSet, type FieldScope, overlapping, ownableFields } from "./field-sets";
import { clone, deepEqual, getPath, isObject } from "./json";
import { decodeManagedFields, encodeManagedFields, type Ownership, sameOwner } from "./managed-fields";
import { type KubeObject, type ManagedFieldsEntry, type Obj, type ResourceType } from "./types";

export interface ApplyInput {
  rt: ResourceType;
  live: KubeObject | undefined;
  /** The parsed apply configuration. */
  config: Obj;
  manager: string;
  force: boolean;
  scope: FieldScope;
  now: string;
}

export interface ApplyResult {
  /** The desired object (server-owned metadata is settled by the writer). */
  object: Obj;
  managedFields: ManagedFieldsEntry[];
}

const OWNABLE_METADATA = ["labels", "annotations", "finalizers", "ownerReferences"];

/** The part of the configuration that applies in this scope: ownable metadata plus spec-like or status content. */
function scopedConfig(config: Obj, scope: FieldScope, hasStatus: boolean): Obj {
  const out: Obj = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === "apiVersion" || key === "kind") continue;
    if (scope === "status") {
      if (key === "status") out.status = clone(value);
      continue;
    }
    if (key === "status" && hasStatus) continue;
    if (key === "metadata") {
      if (!isObject(value)) continue;
      const meta: Obj = {};
      for (const k of OWNABLE_METADATA) if (value[k] !== undefined) meta[k] = clone(value[k]);
      out.metadata = meta;
      continue;
    }
    out[key] = clone(value);
  }
  return out;
}

/**
 * The result is built from the frozen live object by copy-on-write: a map is copied (once, then `owned`)
 * before its first change, so everything the apply does not change stays shared with the live object.
 */
class CowTree {
  readonly #owned = new Set<Obj>();
  root: Obj;

  constructor(live: Obj) {
    this.root = this.#own(live);
  }

  #own(node: Obj): Obj {
    if (this.#owned.has(node)) return node;
    const copy = { ...node };
    this.#owned.add(copy);
    return copy;
  }

  /** Delete the value at `path`, then drop parent maps the deletion left empty (never a top-level field). */
  deletePath(path: readonly string[]): void {
    const last = path[path.length - 1];
    if (last === undefined) return;
    const parents: Obj[] = [this.root];
    let cur: Obj = this.root;
    for (const seg of path.slice(0, -1)) {
      const next = cur[seg];
      if (!isObject(next)) return;
      parents.push(next);
      cur = next;
    }
    // Nothing changes when the leaf is absent and its (non-empty) parent is not dropped: copy nothing then.
    const parentEmpties = path.length - 1 >= 2 && Object.keys(cur).filter((k) => k !== last).length === 0;
    if (!Object.hasOwn(cur, last) && !parentEmpties) return;
    for (let depth = 1; depth < parents.length; depth++) {
      const owned = this.#own(parents[depth] as Obj);
      (parents[depth - 1] as Obj)[path[depth - 1] as string] = owned;
      parents[depth] = owned;
    }
    delete (parents[parents.length - 1] as Obj)[last];
    for (let depth = path.length - 1; depth >= 2; depth--) {
      const node = parents[depth];
      const parent = parents[depth - 1];
      const key = path[depth - 1];
      if (!node || !parent || key === undefined || Object.keys(node).length > 0) break;
      delete parent[key];
    }
  }

  /**
   * Overlay `patch` (maps merge recursively; lists and scalars replace).
   * A value equal to the one it replaces keeps the existing (shared) one; `patch` is this apply's own copy
   * (scopedConfig), so its values are placed without another copy.
   */
  merge(patch: Obj): void {
    this.root = this.#merged(this.root, patch);
  }

  /** `target` itself when the overlay changes nothing in it, else its owned copy with the changes. */
  #merged(target: Obj, patch: Obj): Obj {
    let out = target;
    for (const [key, value] of Object.entries(patch)) {
      const existing = out[key];
      let merged: unknown = value;
      if (isObject(value) && isObject(existing)) merged = this.#merged(existing, value);
      else if (Object.hasOwn(out, key) && deepEqual(existing, value)) continue;
      if (merged === existing && Object.hasOwn(out, key)) continue;
      out = this.#own(out);
      out[key] = merged;
    }
    return out;
  }
}

function conflictError(rt: ResourceType, conflicts: { manager: string; path: readonly string[] }[]): ApiError {
  const apiVersion = rt.group ? `${rt.group}/${rt.version}` : rt.version;
  const causes: StatusCause[] = conflicts.map((c) => ({
    reason: "FieldManagerConflict",
    message: `conflict with "${c.manager}" using ${apiVersion}`,
    field: describePath(c.path),
  }));
  const byManager = new Map<string, string[]>();
  for (const c of conflicts) byManager.set(c.manager, [...(byManager.get(c.manager) ?? []), describePath(c.path)]);
  const parts = [...byManager].map(([m, paths]) =>
    paths.length === 1 ? `conflict with "${m}" using ${apiVersion}: ${paths[0]}` : `conflicts with "${m}" using ${apiVersion}:\n- ${paths.join("\n- ")}`);
  const n = conflicts.length;
  return new ApiError(409, "Conflict", `Apply failed with ${n} conflict${n === 1 ? "" : "s"}: ${parts.join("\n")}`, { causes });
}

export function serverSideApply(input: ApplyInput): ApplyResult {
  const { rt, live, manager, force, scope, now } = input;
  const subresource = scope === "status" ? "status" : undefined;
  const config = scopedConfig(input.config, scope, rt.hasStatus);
  const applied = ownableFields(config, scope, rt.hasStatus);
  const mine: Ownership = { manager, operation: "Apply", apiVersion: rt.group ? `${rt.group}/${rt.version}` : rt.version, time: now, fields: applied };
  if (subresource) mine.subresource = subresource;

  if (!live) return { object: config, managedFields: encodeManagedFields([mine]) };

  const all = decodeManagedFields(live.metadata.managedFields);
  const myIndex = all.findIndex((o) => sameOwner(o, manager, "Apply", subresource));
  const previous = all[myIndex]?.fields ?? new FieldSet();
  // Re-applying the same fields: keep the stored encoding (toFieldsV1 of the same set gives the same tree).
  if (previous.raw && applied.equals(previous)) mine.fields = previous;
  const owners = all.filter((_, i) => i !== myIndex);

  const conflicts: { owner: Ownership; path: string[] }[] = [];
  for (const owner of owners) {
    if (owner.manager === manager) continue;
    for (const p of applied.paths()) {
      const wanted = getPath(config, p);
      if (isObject(wanted)) continue; // an empty map claims the map, not its content
      if (deepEqual(getPath(live, p), wanted)) continue;
      for (const q of overlapping(owner.fields, p, live)) conflicts.push({ owner, path: q });
    }
  }
  if (conflicts.length > 0 && !force) throw conflictError(rt, conflicts.map((c) => ({ manager: c.owner.manager, path: c.path })));
  for (const c of conflicts) c.owner.fields.delete(c.path);

  const next = new CowTree(live);
  for (const stale of previous.minus(applied).paths()) {
    if (owners.some((o) => overlapping(o.fields, stale, live).length > 0)) continue;
    next.deletePath(stale);
  }
  next.merge(config);
  const entries = myIndex >= 0 ? all.map((o, i) => (i === myIndex ? mine : o)) : [...all, mine];
  return { object: next.root, managedFields: encodeManagedFields(entries) };
}
