// Small helpers for plain JSON trees: the store, patches and server-side apply all walk objects by path.

import { type Obj } from "./types";

export function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function getPath(root: unknown, path: readonly string[]): unknown {
  let cur = root;
  for (const seg of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[seg];
  }
  return cur;
}

/** Delete the value at `path`, then drop parent maps the deletion left empty (never a top-level field). */
export function deletePath(root: Obj, path: readonly string[]): void {
  const parents: Obj[] = [root];
  let cur: Obj = root;
  for (const seg of path.slice(0, -1)) {
    const next = cur[seg];
    if (!isObject(next)) return;
    parents.push(next);
    cur = next;
  }
  const last = path[path.length - 1];
  if (last === undefined) return;
  delete cur[last];
  for (let depth = path.length - 1; depth >= 2; depth--) {
    const node = parents[depth];
    const parent = parents[depth - 1];
    const key = path[depth - 1];
    if (!node || !parent || key === undefined || Object.keys(node).length > 0) break;
    delete parent[key];
  }
}

/** Overlay `patch` onto `target` (maps merge recursively; lists and scalars replace). Mutates target. */
export function deepMerge(target: Obj, patch: Obj): Obj {
  for (const [key, value] of Object.entries(patch)) {
    const existing = target[key];
    if (isObject(value) && isObject(existing)) deepMerge(existing, value);
    else target[key] = clone(value);
  }
  return target;
}
