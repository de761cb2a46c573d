// Why: a node enforces NetworkPolicy with one of two backends, as spec.policy.backend says: nftables (one
// owned table replaced or updated in one transaction) or iptables (SY- chains through iptables-restore,
// peers in ipsets). The agent drives both through this one interface and picks one from a table
// (backends.ts), so the choice is a lookup, not an if/else, and a third backend is one more file.
import type { ClusterNetworkSpec } from "../../api/cluster-network";
import type { NodePolicySlice } from "../../compile/policy/slice";

export type PolicyBackendName = ClusterNetworkSpec["policy"]["backend"];

/**
 * What a backend put in force, as the agent keeps it (in memory and in its run dir, so a restarted agent
 * rewrites nothing that is already in force): the slice and its hash. Drift is judged against what the
 * slice renders to (scratch.ts), never against a listing read back from the live kernel.
 */
export interface AppliedPolicy {
  readonly hash: string;
  readonly backend: PolicyBackendName;
  readonly slice: NodePolicySlice;
}

/** How an apply changed the kernel: only set members, the whole ruleset, or nothing (already as planned). */
export type PolicyChange = "incremental" | "full" | "unchanged";

export type PolicyApplyResult =
  | { readonly ok: true; readonly applied: AppliedPolicy; readonly change: PolicyChange }
  | { readonly ok: false; readonly error: string };

export interface PolicyBackend {
  readonly name: PolicyBackendName;
  /**
   * Puts `slice` in force. With `previous` (this backend's own last apply) it changes only what differs
   * where the backend can (set members); without it, it writes the whole ruleset. A failure is a value and
   * leaves the rules that were in force untouched.
   */
  apply(netns: string | undefined, slice: NodePolicySlice, hash: string, previous: AppliedPolicy | undefined): Promise<PolicyApplyResult>;
  /** True while the kernel holds what `applied` put there; false means drift, for the repair timer. */
  inForce(netns: string | undefined, applied: AppliedPolicy): Promise<boolean>;
  /** Packets the backend's drop rules dropped so far, from the kernel's counters (0 when it has no rules). */
  droppedPackets(netns: string | undefined): Promise<number>;
  /** Removes everything the backend owns on the node (and nothing else); a no-op when it owns nothing. */
  remove(netns: string | undefined): Promise<void>;
}
