// metadata.managedFields bookkeeping shared by every write. Apply entries are computed by apply.ts; this
// file handles the entries of non-apply writes (POST, PUT, merge/JSON/strategic patches): the writer takes
// ownership of every field it changed, and any other manager owning one of those fields loses it, which is
// what lets a later apply by that other manager conflict.

import { deepEqual, isObject } from "./json";
import { FieldSet, type FieldScope, fromFieldsV1, OWNABLE_METADATA, overlapping, pathKey, toFieldsV1 } from "./field-sets";
import { type ManagedFieldsEntry, type Obj } from "./types";

export interface Ownership {
  manager: string;
  operation: "Apply" | "Update";
  subresource?: string;
  apiVersion: string;
  time: string;
  fields: FieldSet;
}

export function decodeManagedFields(entries: unknown): Ownership[] {
  if (!Array.isArray(entries)) return [];
  return (entries as ManagedFieldsEntry[]).map((e) => {
    const o: Ownership = {
      manager: e.manager,
      operation: e.operation,
      apiVersion: e.apiVersion,
      time: e.time,
      fields: fromFieldsV1(e.fieldsV1),
    };
    if (e.subresource) o.subresource = e.subresource;
    return o;
  });
}

export function encodeManagedFields(owners: Ownership[]): ManagedFieldsEntry[] {
  return owners.filter((o) => !o.fields.isEmpty).map((o) => {
    const e: ManagedFieldsEntry = {
      manager: o.manager,
      operation: o.operation,
      apiVersion: o.apiVersion,
      time: o.time,
      fieldsType: "FieldsV1",
      fieldsV1: toFieldsV1(o.fields),
    };
    if (o.subresource) e.subresource = o.subresource;
    return e;
  });
}

export function sameOwner(o: Ownership, manager: string, operation: Ownership["operation"], subresource?: string): boolean {
  return o.manager === manager && o.operation === operation && (o.subresource ?? "") === (subresource ?? "");
}

/** Take `paths` (and whatever they overlap in `obj`) away from every owner in the list. */
export function releaseFields(owners: Ownership[], paths: Iterable<readonly string[]>, obj: unknown): void {
  for (const p of paths) for (const o of owners) for (const q of overlapping(o.fields, p, obj)) o.fields.delete(q);
}

export interface UpdateContext {
  manager: string;
  subresource?: string;
  scope: FieldScope;
  hasStatus: boolean;
  apiVersion: string;
  now: string;
}

/** A map with members: collectLeaves descends into it; anything else is a leaf (an owned field). */
function interior(value: unknown): value is Obj {
  return isObject(value) && Object.keys(value).length > 0;
}

/** Leaves `p` of `n` (at `path`) whose value differs from `o`'s, where `o` is getPath(old, path). */
function changedLeaves(o: unknown, n: unknown, path: string[], out: string[][]): void {
  if (o === n || n === undefined) return; // a shared subtree has no changed leaf
  if (!interior(n)) {
    if (!deepEqual(o, n)) out.push(path);
    return;
  }
  for (const [k, v] of Object.entries(n)) if (v !== undefined) changedLeaves(isObject(o) ? o[k] : undefined, v, [...path, k], out);
}

/** Leaves of `o` (at `path`) that are no leaf of the new state, where `n` is the new state's node there (undefined when none). */
function removedLeaves(o: unknown, n: unknown, path: string[], out: string[][]): void {
  if (o === undefined || o === n) return;
  if (!interior(o)) {
    if (n === undefined || interior(n)) out.push(path);
    return;
  }
  for (const [k, v] of Object.entries(o)) if (v !== undefined) removedLeaves(v, interior(n) ? n[k] : undefined, [...path, k], out);
}

/** The top-level positions whose leaves a manager can own in this scope (as field-sets.ts ownableFields). */
function ownableRoots(obj: Obj | undefined, scope: FieldScope, hasStatus: boolean, into: Map<string, string[]>): void {
  if (!obj) return;
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined || key === "apiVersion" || key === "kind") continue;
    if (scope === "status") {
      if (key === "status") into.set(pathKey([key]), [key]);
      continue;
    }
    if (key === "status" && hasStatus) continue;
    if (key === "metadata") {
      if (isObject(value)) for (const mk of Object.keys(value)) if (OWNABLE_METADATA.has(mk) && value[mk] !== undefined) into.set(pathKey([key, mk]), [key, mk]);
      continue;
    }
    into.set(pathKey([key]), [key]);
  }
}

function atPath(obj: Obj | undefined, path: string[]): unknown {
  let cur: unknown = obj;
  for (const seg of path) cur = isObject(cur) ? cur[seg] : undefined;
  return cur;
}

function sortPaths(paths: string[][]): string[][] {
  return paths.map((p) => [pathKey(p), p] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, p]) => p);
}

/**
 * The owned fields a write changed (leaves of `next` whose value differs from `old`'s) and removed (leaves
 * of `old` that are no leaf of `next`), in path order: what comparing ownableFields(old) and
 * ownableFields(next) leaf by leaf gives, found by walking both states together and skipping every
 * subtree they share, so it costs what the write changed.
 */
export function changedFields(old: Obj | undefined, next: Obj, scope: FieldScope, hasStatus: boolean): { changed: string[][]; removed: string[][] } {
  const beforeRoots = new Map<string, string[]>();
  const afterRoots = new Map<string, string[]>();
  ownableRoots(old, scope, hasStatus, beforeRoots);
  ownableRoots(next, scope, hasStatus, afterRoots);
  const changed: string[][] = [];
  const removed: string[][] = [];
  for (const root of afterRoots.values()) changedLeaves(atPath(old, root), atPath(next, root), root, changed);
  for (const [key, root] of beforeRoots) removedLeaves(atPath(old, root), afterRoots.has(key) ? atPath(next, root) : undefined, root, removed);
  return { changed: sortPaths(changed), removed: sortPaths(removed) };
}

/** managedFields after a non-apply write turned `old` (undefined on create) into `next`. */
export function trackUpdate(old: Obj | undefined, next: Obj, previous: unknown, ctx: UpdateContext): ManagedFieldsEntry[] {
  const { changed, removed } = changedFields(old, next, ctx.scope, ctx.hasStatus);
  const owners = decodeManagedFields(previous);
  releaseFields(owners, changed, next);
  releaseFields(owners, removed, old);
  if (changed.length > 0) {
    let mine = owners.find((o) => sameOwner(o, ctx.manager, "Update", ctx.subresource));
    if (!mine) {
      mine = { manager: ctx.manager, operation: "Update", apiVersion: ctx.apiVersion, time: ctx.now, fields: new FieldSet() };
      if (ctx.subresource) mine.subresource = ctx.subresource;
      owners.push(mine);
    }
    for (const p of changed) mine.fields.add(p);
    mine.time = ctx.now;
  }
  return encodeManagedFields(owners);
}
