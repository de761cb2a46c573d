// JSON merge patch (RFC 7386) and the emulator's strategic merge patch: a merge patch whose lists of
// objects that all carry a `name` merge element by element (containers, ports, volumes), with the
// `$patch: replace|delete` directives; other `$` directives are dropped. Real strategic merge uses
// per-field Go struct tags; this approximation covers what clients send for the built-in kinds.
//
// Both copy only the maps and lists along the paths the patch touches: the result shares every other
// subtree with the target (a frozen stored object), and the writer copies what it must (copySharing).
// Values taken from the patch are copied, so the result never aliases the caller's patch.

import { clone, isObject } from "./json";
import { type Obj } from "./types";

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const result: Obj = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

const named = (list: unknown[]): list is Obj[] => list.length > 0 && list.every((e) => isObject(e) && typeof e.name === "string");

function stripDirectives(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => !k.startsWith("$")).map(([k, v]) => [k, stripDirectives(v)]));
}

function mergeNamedLists(target: Obj[], patch: Obj[]): Obj[] {
  const out = [...target];
  for (const element of patch) {
    const index = out.findIndex((e) => e.name === element.name);
    if (element.$patch === "delete") {
      if (index >= 0) out.splice(index, 1);
    } else if (index >= 0) out[index] = strategicMergePatch(out[index], element) as Obj;
    else out.push(stripDirectives(element) as Obj);
  }
  return out;
}

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (Array.isArray(patch) && Array.isArray(target) && named(patch) && (target.length === 0 || named(target))) {
    return mergeNamedLists(target as Obj[], patch);
  }
  if (!isObject(patch)) return stripDirectives(patch);
  if (patch.$patch === "replace") return stripDirectives(patch);
  if (patch.$patch === "delete") return undefined;
  const result: Obj = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) continue;
    if (value === null) delete result[key];
    else {
      const merged = strategicMergePatch(result[key], value);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    }
  }
  return result;
}
