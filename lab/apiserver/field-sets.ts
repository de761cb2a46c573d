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
export const OWNABLE_METADATA = new Set(["labels", "annotations", "finalizers", "ownerReferences"]);

export type FieldScope = "main" | "status";

/** Whether a fieldsV1 node stands for an owned path: a leaf, or a node marked "." (owned and with children). */
function ownedNode(node: Obj): boolean {
  return Object.hasOwn(node, ".") || !Object.keys(node).some((k) => k.startsWith("f:"));
}

/** fromFieldsV1's walk below `node` (pre-order, key order), calling `visit` for every owned path. */
function walkOwned(node: Obj, prefix: string[], visit: (path: string[]) => boolean | void): boolean {
  for (const k of Object.keys(node)) {
    if (!k.startsWith("f:")) continue;
    const child = node[k];
    if (!isObject(child)) continue;
    const path = [...prefix, k.slice(2)];
    if (ownedNode(child) && visit(path) === true) return true;
    if (walkOwned(child, path, visit)) return true;
  }
  return false;
}

export class FieldSet {
  #keys = new Set<string>();
  /**
   * Proper prefixes of the keys, counted, so "is anything owned below this path?" is one lookup. Built on
   * the first related() call: the sets a write builds and compares (applied, previous) never need it.
   */
  #prefixes: Map<string, number> | undefined;
  /**
   * The stored fieldsV1 this set was read from (fromFieldsV1), while the set has not changed since. Most
   * owners of a write are only asked what they own near a changed path and then written back unchanged,
   * which the encoded tree answers without decoding (related, isEmpty) and is (toFieldsV1).
   */
  #raw: Obj | undefined;
  /** Whether #keys holds the set yet (false while only #raw does). */
  #decoded = true;
  /** paths(), kept until the set changes. */
  #paths: string[][] | undefined;

  constructor(paths: Iterable<FieldPath> = []) {
    for (const p of paths) this.add(p);
  }

  /** A set that decodes `raw` (a fieldsV1 tree) only when it has to. */
  static encoded(raw: Obj): FieldSet {
    const set = new FieldSet();
    set.#raw = raw;
    set.#decoded = false;
    return set;
  }

  /** The fieldsV1 tree this set was read from, as long as the set is unchanged since. */
  get raw(): Obj | undefined {
    return this.#raw;
  }

  #decode(): void {
    if (this.#decoded) return;
    this.#decoded = true;
    const visit = (node: Obj, prefix: string): void => {
      for (const k of Object.keys(node)) {
        if (!k.startsWith("f:")) continue;
        const child = node[k];
        if (!isObject(child)) continue;
        const key = prefix + SEP + k.slice(2);
        if (ownedNode(child)) this.#addKey(key);
        visit(child, key);
      }
    };
    if (this.#raw) visit(this.#raw, "");
  }

  /** Add a pathKey; false when it was already there. Prefixes are the key up to each later separator. */
  #addKey(key: string): boolean {
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    this.#paths = undefined;
    if (this.#prefixes) FieldSet.#count(this.#prefixes, key, 1);
    return true;
  }

  static #count(prefixes: Map<string, number>, key: string, delta: 1 | -1): void {
    for (let i = key.indexOf(SEP, 1); i > 0; i = key.indexOf(SEP, i + 1)) {
      const prefix = key.slice(0, i);
      const n = (prefixes.get(prefix) ?? 0) + delta;
      if (n > 0) prefixes.set(prefix, n);
      else prefixes.delete(prefix);
    }
  }

  add(path: FieldPath): void {
    this.#decode();
    if (this.#addKey(pathKey(path))) this.#raw = undefined;
  }
  delete(path: FieldPath): void {
    this.#decode();
    const key = pathKey(path);
    if (!this.#keys.delete(key)) return;
    this.#raw = undefined;
    this.#paths = undefined;
    if (this.#prefixes) FieldSet.#count(this.#prefixes, key, -1);
  }
  has(path: FieldPath): boolean {
    this.#decode();
    return this.#keys.has(pathKey(path));
  }
  get size(): number {
    this.#decode();
    return this.#keys.size;
  }
  /** size === 0, answered from the encoded tree while the set is not decoded. */
  get isEmpty(): boolean {
    if (!this.#decoded && this.#raw) return !walkOwned(this.#raw, [], () => true);
    this.#decode();
    return this.#keys.size === 0;
  }
  #sortedKeys(): string[] {
    this.#decode();
    return [...this.#keys].sort();
  }
  paths(): string[][] {
    this.#paths ??= this.#sortedKeys().map(keyPath);
    return this.#paths.slice();
  }
  /** The same paths as `other`. */
  equals(other: FieldSet): boolean {
    this.#decode();
    other.#decode();
    if (this.#keys.size !== other.#keys.size) return false;
    for (const k of this.#keys) if (!other.#keys.has(k)) return false;
    return true;
  }

  /** Paths of this set equal to `path`, above it or below it (an owner of any of them is affected). */
  related(path: FieldPath): string[][] {
    if (!this.#decoded && this.#raw) return relatedEncoded(this.#raw, path);
    const key = pathKey(path);
    const out: string[][] = [];
    for (let i = 1; i <= path.length; i++) {
      const ancestor = pathKey(path.slice(0, i));
      if (this.#keys.has(ancestor)) out.push(path.slice(0, i));
    }
    if (!this.#prefixes) {
      this.#prefixes = new Map();
      for (const k of this.#keys) FieldSet.#count(this.#prefixes, k, 1);
    }
    if (this.#prefixes.has(key)) for (const k of this.#keys) if (k.startsWith(key + SEP)) out.push(keyPath(k));
    return out;
  }

  union(other: FieldSet): FieldSet {
    return new FieldSet([...this.paths(), ...other.paths()]);
  }
  minus(other: FieldSet): FieldSet {
    other.#decode();
    const out = new FieldSet();
    for (const key of this.#sortedKeys()) if (!other.#keys.has(key)) out.#addKey(key);
    return out;
  }
}

/** FieldSet.related on an encoded set, in the same order: ancestors (and the path) first, then descendants pre-order. */
function relatedEncoded(raw: Obj, path: FieldPath): string[][] {
  const out: string[][] = [];
  let node: Obj = raw;
  for (let i = 0; i < path.length; i++) {
    const next = node[`f:${path[i]}`];
    if (!isObject(next)) return out;
    node = next;
    if (ownedNode(node)) out.push(path.slice(0, i + 1));
  }
  walkOwned(node, [...path], (p) => {
    out.push(p);
  });
  return out;
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
  // A set read from managedFields and never changed encodes to the very tree it was read from.
  if (set.raw) return set.raw;
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
  // Stored fieldsV1 trees are toFieldsV1's output, so decoding can wait (FieldSet.encoded).
  return isObject(fields) ? FieldSet.encoded(fields) : new FieldSet();
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
