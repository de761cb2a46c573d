// metadata.managedFields bookkeeping shared by every write. Apply entries are computed by apply.ts; this
// file handles the entries of non-apply writes (POST, PUT, merge/JSON/strategic patches): the writer takes
// ownership of every field it changed, and any other manager owning one of those fields loses it, which is
// what lets a later apply by that other manager conflict.

import { deepEqual, getPath } from "./json";
import { FieldSet, type FieldScope, fromFieldsV1, overlapping, ownableFields, toFieldsV1 } from "./field-sets";
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
  return owners.filter((o) => o.fields.size > 0).map((o) => {
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

/** managedFields after a non-apply write turned `old` (undefined on create) into `next`. */
export function trackUpdate(old: Obj | undefined, next: Obj, previous: unknown, ctx: UpdateContext): ManagedFieldsEntry[] {
  const before = old ? ownableFields(old, ctx.scope, ctx.hasStatus) : new FieldSet();
  const after = ownableFields(next, ctx.scope, ctx.hasStatus);
  const changed = after.paths().filter((p) => !deepEqual(getPath(old, p), getPath(next, p)));
  const removed = before.minus(after).paths();
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
