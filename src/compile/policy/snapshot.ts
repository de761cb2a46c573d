// The policy half of a PolicySnapshot, parsed once: every NetworkPolicy normalized (API defaults applied),
// sorted by namespace/name, with the diagnostics of everything that could not be honoured. Pure.
import { type Diagnostic } from "../../api/diagnostics";
import { type NormalizedNetworkPolicy, networkPolicyKey, parseNetworkPolicy } from "../../api/network-policy";
import type { PolicySnapshot } from "../../model/cluster";
import { compareStrings } from "./canonical";

export interface ParsedPolicies {
  /** Sorted by `namespace/name`; at most one per key. */
  readonly policies: readonly NormalizedNetworkPolicy[];
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Parses the snapshot's policies. Duplicate namespace/name keys cannot come from one API server; if a
 * caller passes them anyway, the last one wins (as in a watch-driven store) and the duplicate is reported.
 * Diagnostics are sorted, so the result does not depend on input order (except for that duplicate case).
 */
export function parsePolicySnapshot(snapshot: PolicySnapshot): ParsedPolicies {
  const byKey = new Map<string, NormalizedNetworkPolicy>();
  const diagnostics: Diagnostic[] = [];
  snapshot.policies.forEach((raw) => {
    const parsed = parseNetworkPolicy(raw);
    diagnostics.push(...parsed.diagnostics);
    if (!parsed.policy) return;
    const key = networkPolicyKey(parsed.policy);
    if (byKey.has(key)) {
      diagnostics.push({ path: "metadata.name", message: `NetworkPolicy ${key}: appears more than once in the snapshot; the last copy is used` });
    }
    byKey.set(key, parsed.policy);
  });
  diagnostics.sort((a, b) => compareStrings(a.message, b.message) || compareStrings(a.path, b.path));
  const policies = [...byKey.values()].sort((a, b) => compareStrings(networkPolicyKey(a), networkPolicyKey(b)));
  return { policies, diagnostics };
}
