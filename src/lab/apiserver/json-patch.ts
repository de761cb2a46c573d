// JSON patch (RFC 6902) over JSON pointers (RFC 6901). A failed `test`, or an operation on a path that
// does not exist, rejects the whole patch with 422 like the real server; a malformed patch is a 400.

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

function parentOf(doc: unknown, path: string[], pointer: string): { parent: unknown; key: string } {
  let cur = doc;
  for (const seg of path.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(seg, cur.length, false)];
    else if (isObject(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else throw unprocessable(`doc is missing path: ${JSON.stringify(pointer)}`);
  }
  return { parent: cur, key: path[path.length - 1] as string };
}

function read(doc: unknown, pointer: string): unknown {
  const path = parsePointer(pointer);
  if (path.length === 0) return doc;
  const { parent, key } = parentOf(doc, path, pointer);
  if (Array.isArray(parent)) return parent[arrayIndex(key, parent.length, false)];
  if (isObject(parent) && Object.hasOwn(parent, key)) return parent[key];
  throw unprocessable(`doc is missing key: ${JSON.stringify(pointer)}`);
}

function add(doc: unknown, pointer: string, value: unknown): unknown {
  const path = parsePointer(pointer);
  if (path.length === 0) return value;
  const { parent, key } = parentOf(doc, path, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, true), 0, value);
  else if (isObject(parent)) parent[key] = value;
  else throw unprocessable(`doc is missing path: ${JSON.stringify(pointer)}`);
  return doc;
}

function remove(doc: unknown, pointer: string): unknown {
  const path = parsePointer(pointer);
  if (path.length === 0) return undefined;
  const { parent, key } = parentOf(doc, path, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, false), 1);
  else if (isObject(parent) && Object.hasOwn(parent, key)) delete parent[key];
  else throw unprocessable(`unable to remove nonexistent key: ${JSON.stringify(pointer)}`);
  return doc;
}

function replace(doc: unknown, pointer: string, value: unknown): unknown {
  const path = parsePointer(pointer);
  if (path.length === 0) return value;
  const { parent, key } = parentOf(doc, path, pointer);
  if (Array.isArray(parent)) parent[arrayIndex(key, parent.length, false)] = value;
  else if (isObject(parent) && Object.hasOwn(parent, key)) parent[key] = value;
  else throw unprocessable(`doc is missing key: ${JSON.stringify(pointer)}`);
  return doc;
}

export function jsonPatch(target: unknown, patch: unknown): unknown {
  let doc = clone(target);
  for (const op of parseOperations(patch)) {
    switch (op.op) {
      case "add": doc = add(doc, op.path, clone(op.value)); break;
      case "remove": doc = remove(doc, op.path); break;
      case "replace": doc = replace(doc, op.path, clone(op.value)); break;
      case "move": { const v = read(doc, op.from as string); doc = add(remove(doc, op.from as string), op.path, v); break; }
      case "copy": doc = add(doc, op.path, clone(read(doc, op.from as string))); break;
      case "test":
        if (!deepEqual(read(doc, op.path), op.value)) {
          throw unprocessable(`testing value ${op.path} failed: test operation failed (found ${JSON.stringify(read(doc, op.path))})`);
        }
        break;
    }
  }
  return doc;
}
