// Label selector matching on the normalized selector form. Pure; shared by the reference evaluator and the
// compiler (the property tests cross-check everything built on top of it; the evaluator's table tests pin it).
import type { NormalizedSelector, SelectorRequirement } from "../../api/network-policy";

function matchesRequirement(r: SelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case "In":
      return has && r.values.includes(value!);
    case "NotIn":
      // Kubernetes: NotIn also matches objects that do not have the key at all.
      return !has || !r.values.includes(value!);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
  }
}

/** True when every requirement holds; the empty selector matches everything. */
export function matchesSelector(sel: NormalizedSelector, labels: Readonly<Record<string, string>>): boolean {
  return sel.requirements.every((r) => matchesRequirement(r, labels));
}

/** A short human form, e.g. `{app=web, tier in (a,b), !legacy}`; `{}` for everything. */
export function formatSelector(sel: NormalizedSelector): string {
  const parts = sel.requirements.map((r) => {
    switch (r.operator) {
      case "In":
        return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(",")})`;
      case "NotIn":
        return `${r.key} notin (${r.values.join(",")})`;
      case "Exists":
        return r.key;
      case "DoesNotExist":
        return `!${r.key}`;
    }
  });
  return `{${parts.join(", ")}}`;
}
