// Why: the one place that decides how a node's policy goes in force, so the order that keeps it closed is
// written (and tested on the kernel) once. A change of backend never opens a window: the new backend's rules
// go in first (a packet then has to pass both, and both enforce the same slice), and the old backend's are
// removed only once the new ones are in force. A failed apply leaves the old rules in force and on record.
// Removing the old backend first (the obvious order) lets a long-lived session through the gap, and
// conntrack then carries that session past the new rules for as long as it lasts.
import type { AppliedPolicy, PolicyBackendName, PolicyChange } from "./backend";
import { POLICY_BACKENDS, policyBackend } from "./backends";
import type { NodePolicySlice } from "../../compile/policy/slice";

export type PutInForceResult =
  | { readonly ok: true; readonly applied: AppliedPolicy; readonly change: PolicyChange; readonly removed: readonly PolicyBackendName[] }
  | { readonly ok: false; readonly error: string };

/**
 * Puts `slice` in force with backend `name`, given what is in force now (`previous`). With `removeOthers`
 * (the first apply after a start: an agent killed between the two steps left the old backend behind), every
 * other backend is removed after the apply even when the backend did not change.
 */
export async function putPolicyInForce(
  netns: string | undefined,
  slice: NodePolicySlice,
  hash: string,
  name: PolicyBackendName,
  previous: AppliedPolicy | undefined,
  opts: { readonly removeOthers?: boolean } = {},
): Promise<PutInForceResult> {
  const backend = policyBackend(name);
  let applied: AppliedPolicy;
  let change: PolicyChange = "unchanged";
  if (previous && previous.hash === hash && previous.backend === name && (await backend.inForce(netns, previous).catch(() => false))) {
    applied = previous;
  } else {
    const r = await backend.apply(netns, slice, hash, previous?.backend === name ? previous : undefined);
    if (!r.ok) return r;
    applied = r.applied;
    change = r.change;
  }
  const removed: PolicyBackendName[] = [];
  if (opts.removeOthers || (previous !== undefined && previous.backend !== name)) {
    for (const other of Object.values(POLICY_BACKENDS)) {
      if (other.name === name) continue;
      await other.remove(netns);
      removed.push(other.name);
    }
  }
  return { ok: true, applied, change, removed };
}
