// What a pass observes besides the compile inputs: the agents' reports in NodeNetwork status.
import type { KObj } from "../kube/store";
import type { NodeHealth } from "../migration/types";

/** The health-probe rounds a node's agent reported for the current gate (NodeNetwork status.health). */
export function healthOf(nn: KObj | undefined): NodeHealth | undefined {
  const h = (nn?.["status"] as { health?: { epoch: number; okRounds: number; failedRounds: number; lastFailure?: string; waiting?: string } } | undefined)?.health;
  return h ? { epoch: h.epoch, okRounds: h.okRounds, failedRounds: h.failedRounds, ...(h.lastFailure ? { lastFailure: h.lastFailure } : {}), ...(h.waiting ? { waiting: h.waiting } : {}) } : undefined;
}
