// JSON patch (RFC 6902) over JSON pointers (RFC 6901). A failed `test`, or an operation on a path that
// does not exist, rejects the whole patch with 422 like the real server; a malformed patch is a 400.
// The target (a frozen stored object) is never copied whole: each operation copies the maps and lists on
// its way to the place it changes, once per patch (Doc.owned), and the rest stays shared with the target.

import { ApiError, errors } from "./errors";
import { clone, deepEqual, isObject } from "./json";

interface Operation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: unknown;
}

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

function unprocessable(message: string): ApiError {
  return new ApiError(422, "Invalid", message);
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw unprocessable(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parseOperations(patch: unknown): Operation[] {
  if (!Array.isArray(patch)) throw errors.badRequest("json patch must be a list of operations");
  return patch.map((op) => {
    if (!isObject(op) || typeof op.op !== "string" || !OPS.has(op.op) || typeof op.path !== "string") {
      throw errors.badRequest(`invalid json patch operation: ${JSON.stringify(op)}`);
    }
    if ((op.op === "move" || op.op === "copy") && typeof op.from !== "string") throw errors.badRequest(`${op.op} needs "from"`);
    if ((op.op === "add" || op.op === "replace" || op.op === "test") && !Object.hasOwn(op, "value")) throw errors.badRequest(`${op.op} needs "value"`);
    return op as unknown as Operation;
  });
}

function arrayIndex(seg: string, length: number, forInsert: boolean): number {
  if (forInsert && seg === "-") return length;
  if (!/^(0|[1-9]\d*)$/.test(seg)) throw unprocessable(`invalid array index ${JSON.stringify(seg)}`);
  const i = Number(seg);
  if (i > length || (!forInsert && i === length)) throw unprocessable(`array index ${i} out of bounds`);
  return i;
}

/** The document being patched, and the containers this patch already copied (safe to change in place). */
interface Doc {
  root: unknown;
  owned: Set<unknown>;
}

/** `value`, or a shallow copy of it owned by this patch when it is a container the patch did not copy yet. */
function own(doc: Doc, value: unknown): unknown {
  if (doc.owned.has(value) || typeof value !== "object" || value === null) return value;
  const copy = Array.isArray(value) ? [...(value as unknown[])] : isObject(value) ? { ...value } : value;
  doc.owned.add(copy);
  return copy;
}

/** The container holding the pointer's last segment; with `write`, every container on the way is owned. */
function parentOf(doc: Doc, path: string[], pointer: string, write: boolean): { parent: unknown; key: string } {
  if (write) doc.root = own(doc, doc.root);
  let cur = doc.root;
  for (const seg of path.slice(0, -1)) {
    if (Array.isArray(cur)) {
      const i = arrayIndex(seg, cur.length, false);
      if (write) cur[i] = own(doc, cur[i]);
      cur = cur[i];
    } else if (isObject(cur) && Object.hasOwn(cur, seg)) {
      if (write) cur[seg] = own(doc, cur[seg]);
      cur = cur[seg];
    } else throw unprocessable(`doc is missing path: ${JSON.stringify(pointer)}`);
  }
  return { parent: cur, key: path[path.length - 1] as string };
}

function read(doc: Doc, pointer: string): unknown {
  const path = parsePointer(pointer);
  if (path.length === 0) return doc.root;
  const { parent, key } = parentOf(doc, path, pointer, false);
  if (Array.isArray(parent)) return parent[arrayIndex(key, parent.length, false)];
  if (isObject(parent) && Object.hasOwn(parent, key)) return parent[key];
  throw unprocessable(`doc is missing key: ${JSON.stringify(pointer)}`);
}

/** A value this patch created (a clone of an operation's value): it may be changed in place later. */
function fresh(doc: Doc, value: unknown): unknown {
  if (typeof value === "object" && value !== null) doc.owned.add(value);
  return value;
}

function add(doc: Doc, pointer: string, value: unknown): void {
  const path = parsePointer(pointer);
  if (path.length === 0) {
    doc.root = value;
    return;
  }
  const { parent, key } = parentOf(doc, path, pointer, true);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, true), 0, value);
  else if (isObject(parent)) parent[key] = value;
  else throw unprocessable(`doc is missing path: ${JSON.stringify(pointer)}`);
}

function remove(doc: Doc, pointer: string): void {
  const path = parsePointer(pointer);
  if (path.length === 0) {
    doc.root = undefined;
    return;
  }
  const { parent, key } = parentOf(doc, path, pointer, true);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, false), 1);
  else if (isObject(parent) && Object.hasOwn(parent, key)) delete parent[key];
  else throw unprocessable(`unable to remove nonexistent key: ${JSON.stringify(pointer)}`);
}

function replace(doc: Doc, pointer: string, value: unknown): void {
  const path = parsePointer(pointer);
  if (path.length === 0) {
    doc.root = value;
    return;
  }
  const { parent, key } = parentOf(doc, path, pointer, true);
  if (Array.isArray(parent)) parent[arrayIndex(key, parent.length, false)] = value;
  else if (isObject(parent) && Object.hasOwn(parent, key)) parent[key] = value;
  else throw unprocessable(`doc is missing key: ${JSON.stringify(pointer)}`);
}

/**
 * Apply the operations to `target` without changing it. The result shares the subtrees no operation
 * touched with `target`; a subtree moved elsewhere stays shared too (unchanged, at its new place).
 */
export function jsonPatch(target: unknown, patch: unknown): unknown {
  const doc: Doc = { root: target, owned: new Set() };
  for (const op of parseOperations(patch)) {
    switch (op.op) {
      case "add": add(doc, op.path, fresh(doc, clone(op.value))); break;
      case "remove": remove(doc, op.path); break;
      case "replace": replace(doc, op.path, fresh(doc, clone(op.value))); break;
      case "move": { const v = read(doc, op.from as string); remove(doc, op.from as string); add(doc, op.path, v); break; }
      case "copy": add(doc, op.path, fresh(doc, clone(read(doc, op.from as string)))); break;
      case "test":
        if (!deepEqual(read(doc, op.path), op.value)) {
          throw unprocessable(`testing value ${op.path} failed: test operation failed (found ${JSON.stringify(read(doc, op.path))})`);
        }
        break;
    }
  }
  return doc.root;
}
