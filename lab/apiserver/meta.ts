// Server-owned metadata rules: names, timestamps, generation. Kept apart so the writer reads as the
// sequence of steps a real apiserver runs on a write.

import { randomBytes } from "node:crypto";
import { type StatusCause } from "./errors";
import { deepEqual, isObject } from "./json";
import { type Obj } from "./types";

/** RFC 3339 with whole seconds, as Kubernetes renders metav1.Time. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Problems with a name for this kind (namespaces must be DNS labels, everything else DNS subdomains). */
export function nameProblems(name: string, kind: string): StatusCause[] {
  const label = kind === "Namespace";
  const ok = label ? DNS_LABEL.test(name) && name.length <= 63 : DNS_SUBDOMAIN.test(name) && name.length <= 253;
  if (ok) return [];
  const what = label ? "a lowercase RFC 1123 label" : "a lowercase RFC 1123 subdomain";
  return [{ reason: "FieldValueInvalid", field: "metadata.name", message: `Invalid value: ${JSON.stringify(name)}: must be ${what}` }];
}

const ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";

/** generateName + 5 random characters, like the real server. */
export function generatedName(prefix: string): string {
  const bytes = randomBytes(5);
  return prefix + [...bytes].map((b) => ALPHANUMS[b % ALPHANUMS.length]).join("");
}

const NOT_SPEC = new Set(["metadata", "status", "apiVersion", "kind"]);

/** Keys of either object; deepEqual treats an undefined value like an absent key, so comparing per key is exact. */
function keysOfEither(a: Obj, b: Obj): Set<string> {
  const keys = new Set(Object.keys(a));
  for (const k of Object.keys(b)) keys.add(k);
  return keys;
}

/**
 * Whether a write changed what `generation` counts: everything but metadata and status. Compared field by
 * field without copies; subtrees shared with the stored object compare by reference.
 */
export function specChanged(old: Obj, next: Obj): boolean {
  for (const k of keysOfEither(old, next)) {
    if (!NOT_SPEC.has(k) && !deepEqual(old[k], next[k])) return true;
  }
  return false;
}

/** managedFields entries equal but for their `time`. */
function sameManagedFields(a: unknown, b: unknown): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return deepEqual(a, b);
  if (a.length !== b.length) return false;
  return a.every((x: unknown, i) => {
    const y: unknown = b[i];
    if (!isObject(x) || !isObject(y)) return deepEqual(x, y);
    for (const k of keysOfEither(x, y)) if (k !== "time" && !deepEqual(x[k], y[k])) return false;
    return true;
  });
}

/**
 * Compare two states ignoring resourceVersion and managedFields timestamps: equal means a no-op write.
 * Field by field, without copies, so unchanged subtrees shared with the stored object cost nothing.
 */
export function sameState(a: Obj, b: Obj): boolean {
  for (const k of keysOfEither(a, b)) {
    if (k !== "metadata") {
      if (!deepEqual(a[k], b[k])) return false;
      continue;
    }
    const ma = a.metadata;
    const mb = b.metadata;
    if (!isObject(ma) || !isObject(mb)) {
      if (!deepEqual(ma, mb)) return false;
      continue;
    }
    for (const mk of keysOfEither(ma, mb)) {
      if (mk === "resourceVersion") continue;
      if (mk === "managedFields" ? !sameManagedFields(ma[mk], mb[mk]) : !deepEqual(ma[mk], mb[mk])) return false;
    }
  }
  return true;
}
