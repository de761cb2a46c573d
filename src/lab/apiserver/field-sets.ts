// Field ownership for server-side apply: the set of leaf paths a manager owns, stored on the object as
// metadata.managedFields[].fieldsV1 in the real `{"f:spec":{"f:mode":{}}}` shape. Lists are atomic (one
// leaf), as are empty maps; that is coarser than the real server's keyed lists but keeps every rule the
// clients rely on: ownership, conflicts and removal of fields a manager stops sending.

import { getPath, isObject } from "./json";
import { type Obj } from "./types";

export type FieldPath = readonly string[];
const SEP = "\x1f";

export function pathKey(path: FieldPath): string {
  return path.map((s) => SEP + s).join("");
}

function keyPath(key: string): string[] {
  return key.split(SEP).slice(1);
}

/** Metadata fields a client can own; the rest of metadata belongs to the server. */
const OWNABLE_METADATA = new Set(["labels", "annotations", "finalizers", "ownerReferences"]);

export type FieldScope = "main" | "status";

export class FieldSet {
  #keys = new Set<string>();
  /** Proper prefixes of the keys, counted, so "is anything owned below this path?" is one lookup. */
  #prefixes = new Map<string, number>();

  constructor(paths: Iterable<FieldPath> = []) {
    for (const p of paths) this.add(p);
  }

  add(path: FieldPath): void {
    const key = pathKey(path);
    if (this.#keys.has(key)) return;
    this.#keys.add(key);
    for (let i = 1; i < path.length; i++) {
      const prefix = pathKey(path.slice(0, i));
      this.#prefixes.set(prefix, (this.#prefixes.get(prefix) ?? 0) + 1);
    }
  }
  delete(path: FieldPath): void {
    const key = pathKey(path);
    if (!this.#keys.delete(key)) return;
    for (let i = 1; i < path.length; i++) {
      const prefix = pathKey(path.slice(0, i));
      const n = (this.#prefixes.get(prefix) ?? 1) - 1;
      if (n > 0) this.#prefixes.set(prefix, n);
      else this.#prefixes.delete(prefix);
    }
  }
  has(path: FieldPath): boolean {
    return this.#keys.has(pathKey(path));
  }
  get size(): number {
    return this.#keys.size;
  }
  paths(): string[][] {
    return [...this.#keys].sort().map(keyPath);
  }

  /** Paths of this set equal to `path`, above it or below it (an owner of any of them is affected). */
  related(path: FieldPath): string[][] {
    const key = pathKey(path);
    const out: string[][] = [];
    for (let i = 1; i <= path.length; i++) {
      const ancestor = pathKey(path.slice(0, i));
      if (this.#keys.has(ancestor)) out.push(path.slice(0, i));
    }
    if (this.#prefixes.has(key)) for (const k of this.#keys) if (k.startsWith(key + SEP)) out.push(keyPath(k));
    return out;
  }

  union(other: FieldSet): FieldSet {
    return new FieldSet([...this.paths(), ...other.paths()]);
  }
  minus(other: FieldSet): FieldSet {
    return new FieldSet(this.paths().filter((p) => !other.has(p)));
  }
}

function collectLeaves(value: unknown, prefix: string[], out: FieldSet): void {
  if (isObject(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) if (v !== undefined) collectLeaves(v, [...prefix, k], out);
  } else out.add(prefix);
}

/** The leaf paths of an object that a field manager can own in the given scope. */
export function ownableFields(obj: Obj, scope: FieldScope, hasStatus: boolean): FieldSet {
  const out = new FieldSet();
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined || key === "apiVersion" || key === "kind") continue;
    if (scope === "status") {
      if (key === "status") collectLeaves(value, [key], out);
      continue;
    }
    if (key === "status" && hasStatus) continue;
    if (key === "metadata") {
      if (!isObject(value)) continue;
      for (const [mk, mv] of Object.entries(value)) {
        if (OWNABLE_METADATA.has(mk) && mv !== undefined) collectLeaves(mv, ["metadata", mk], out);
      }
      continue;
    }
    collectLeaves(value, [key], out);
  }
  return out;
}

export function toFieldsV1(set: FieldSet): Obj {
  const root: Obj = {};
  const leaves: Obj[] = [];
  for (const path of set.paths()) {
    let node = root;
    for (const seg of path) {
      const key = `f:${seg}`;
      const next = node[key];
      if (isObject(next)) node = next;
      else {
        const created: Obj = {};
        node[key] = created;
        node = created;
      }
    }
    leaves.push(node);
  }
  // A path that is both owned itself and has owned children keeps the real server's "." marker.
  for (const node of leaves) if (Object.keys(node).length > 0) node["."] = {};
  return root;
}

export function fromFieldsV1(fields: unknown): FieldSet {
  const out = new FieldSet();
  const walk = (node: unknown, prefix: string[]) => {
    if (!isObject(node)) return;
    const children = Object.keys(node).filter((k) => k.startsWith("f:"));
    if ((children.length === 0 || Object.hasOwn(node, ".")) && prefix.length > 0) out.add(prefix);
    for (const k of children) walk(node[k], [...prefix, k.slice(2)]);
  };
  walk(fields, []);
  return out;
}

/** Human form of a path for conflict messages: `.spec.mode`. */
export function describePath(path: FieldPath): string {
  return path.map((s) => (/^[A-Za-z0-9_-]+$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`)).join("");
}

/**
 * Paths of `set` that overlap `path` in `obj`: the path itself, paths below it, and paths above it that
 * hold an atomic value. Owning a map (an applied `{}`) does not make its children overlap.
 */
export function overlapping(set: FieldSet, path: FieldPath, obj: unknown): string[][] {
  return set.related(path).filter((q) => q.length >= path.length || !isObject(getPath(obj, q)));
}
