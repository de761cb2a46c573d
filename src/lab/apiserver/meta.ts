// Server-owned metadata rules: names, timestamps, generation. Kept apart so the writer reads as the
// sequence of steps a real apiserver runs on a write.

import { randomBytes } from "node:crypto";
import { type StatusCause } from "./errors";
import { deepEqual } from "./json";
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

/** Whether a write changed what `generation` counts: everything but metadata and status. */
export function specChanged(old: Obj, next: Obj): boolean {
  const strip = (o: Obj) => Object.fromEntries(Object.entries(o).filter(([k]) => !["metadata", "status", "apiVersion", "kind"].includes(k)));
  return !deepEqual(strip(old), strip(next));
}

/** Compare two states ignoring resourceVersion and managedFields timestamps: equal means a no-op write. */
export function sameState(a: Obj, b: Obj): boolean {
  const norm = (o: Obj): unknown => {
    const copy = structuredClone(o);
    const meta = copy.metadata as Obj | undefined;
    if (meta) {
      delete meta.resourceVersion;
      if (Array.isArray(meta.managedFields)) {
        meta.managedFields = (meta.managedFields as Obj[]).map(({ time: _time, ...rest }) => rest);
      }
    }
    return copy;
  };
  return deepEqual(norm(a), norm(b));
}
