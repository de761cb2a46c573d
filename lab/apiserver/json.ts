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

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

/**
 * A mutable copy of `value` that shares every subtree identical (the same reference) to the one at the
 * same path in `prev`, typically a frozen stored object the value was derived from; everything else is
 * copied, so the copy never aliases a caller's object and never exposes a frozen node at another path.
 */
export function copySharing<T>(value: T, prev: unknown): T {
  if (value === prev || typeof value !== "object" || value === null) return value;
  if (!isPlain(value)) return structuredClone(value);
  if (Array.isArray(value)) {
    const p = Array.isArray(prev) ? prev : undefined;
    return value.map((v: unknown, i) => copySharing(v, p?.[i])) as T;
  }
  const src = value as Obj;
  const p = isObject(prev) ? prev : undefined;
  const out: Obj = {};
  for (const key of Object.keys(src)) {
    const v = copySharing(src[key], p?.[key]);
    if (key === "__proto__") Object.defineProperty(out, key, { value: v, writable: true, enumerable: true, configurable: true });
    else out[key] = v;
  }
  return out as T;
}

/** UTF-8 size of frozen (stored, immutable) subtrees' JSON, so shared subtrees are measured once. */
const frozenBytes = new WeakMap<object, number>();

function jsonText(value: unknown): string {
  return JSON.stringify(value) ?? "null";
}

/**
 * Exactly Buffer.byteLength(JSON.stringify(value)) for a JSON tree: the top `depth` levels of mutable
 * containers are summed member by member, and a frozen subtree's size is computed once and remembered.
 */
export function jsonBytes(value: unknown, depth = 5): number {
  if (typeof value !== "object" || value === null) return Buffer.byteLength(jsonText(value));
  if (Object.isFrozen(value)) {
    let n = frozenBytes.get(value);
    if (n === undefined) {
      n = Buffer.byteLength(jsonText(value));
      frozenBytes.set(value, n);
    }
    return n;
  }
  if (depth <= 0 || !isPlain(value) || typeof (value as { toJSON?: unknown }).toJSON === "function") return Buffer.byteLength(jsonText(value));
  if (Array.isArray(value)) {
    let n = 2 + Math.max(0, value.length - 1); // brackets and commas
    for (const v of value as unknown[]) n += v === undefined || typeof v === "function" || typeof v === "symbol" ? 4 : jsonBytes(v, depth - 1);
    return n;
  }
  let n = 2; // braces
  let members = 0;
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
    n += Buffer.byteLength(JSON.stringify(key)) + 1 + jsonBytes(v, depth - 1);
    members++;
  }
  return n + Math.max(0, members - 1);
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
