// What the controller remembers from one pass to the next, in one place: decide reads it, act updates it,
// nothing else does. All of it can be lost (a restart, a new leader) at the cost of a few extra writes:
// the API is the truth, this only avoids rewriting what is already there.
import type { NodeNetworkSpec } from "../api/node-network";
import { PlanCache } from "../compile/cluster-plan";
import type { CompiledPlans } from "./plans";

/** Plans published in one pass, waiting for their agents to report them applied (the implementation delay). */
export interface PendingDelay {
  /** When the oldest change they carry was seen. */
  readonly seenAt: number;
  /** node -> plan hash published. */
  readonly targets: ReadonlyMap<string, string>;
}

export interface ControllerState {
  /** The plan hash published per node, to skip identical writes even before our own watch event returns. */
  readonly published: Map<string, string>;
  /** The plan body last published per node (shared with planCache): a change of health probing alone is a small patch. */
  readonly publishedSpecs: Map<string, NodeNetworkSpec>;
  /** The block each BlockAffinity we created records, to skip re-creating it before our own watch event returns. */
  readonly recordedBlocks: Map<string, string>;
  /** The last message recorded per event reason: the same message is not recorded twice in a row. */
  readonly lastEvents: Map<string, string>;
  /** Events recorded by this controller, by object name, with their count: a repeat is a count, not a new object. */
  readonly eventCounts: Map<string, number>;
  /** The last status written, with transition times blanked: an unchanged status is not written again. */
  lastStatusJson: string;
  /** The migration layout whose plans were all published, and when (migration step timeouts count from then). */
  layoutPublished: { readonly key: string; readonly at: number } | undefined;
  readonly pendingDelays: PendingDelay[];
  /** The last compile whose plans were all published, without plan bodies (see compilePlans). */
  lastCompile: CompiledPlans | undefined;
  /** Per-node parts of the last compile: a migration step recompiles only the nodes it changes. */
  readonly planCache: PlanCache;
}

export function newControllerState(): ControllerState {
  return {
    published: new Map(),
    publishedSpecs: new Map(),
    recordedBlocks: new Map(),
    lastEvents: new Map(),
    eventCounts: new Map(),
    lastStatusJson: "",
    layoutPublished: undefined,
    pendingDelays: [],
    lastCompile: undefined,
    planCache: new PlanCache(),
  };
}
