// The migration state machine's data: the state persisted in ClusterNetwork.status.migration (so a
// restarted controller resumes exactly where it was), what the driver observes each pass, and the
// decision it returns. Plain JSON; times are epoch milliseconds passed in by the caller.
import type { Mode } from "../api/cluster-network";

export type MigrationPhase =
  | "Preflight"
  | "Prepare"
  | "Canary"
  | "Gate"
  | "Rolling"
  | "Finalize"
  | "Completed"
  | "Paused"
  | "RollingBack"
  | "RolledBack"
  | "Failed"
  | "Blocked";

export const TERMINAL_PHASES: readonly MigrationPhase[] = ["Completed", "RolledBack", "Failed", "Blocked"];

export interface MigrationState {
  readonly phase: MigrationPhase;
  readonly from: Mode;
  readonly to: Mode;
  /** The ClusterNetwork generation the migration was started for (an edit retries a blocked/rolled-back one). */
  readonly generation: number;
  readonly startedAt: number;
  /** When the current phase (or step) began or last made progress: timeouts count from here. */
  readonly since: number;
  /** How many nodes the current step still waits for (fewer than last time is progress). */
  readonly waitingFor?: number;
  /** Batch 0 = the canaries; fixed at Preflight so a resumed controller uses the same order. */
  readonly batches: readonly (readonly string[])[];
  /** How many batches (from the front) send with `to`. */
  readonly migratedBatches: number;
  /** Health-gate epoch: agents report probe rounds per epoch; a new gate starts a new epoch. */
  readonly epoch: number;
  /** Finalize/RollingBack: "switch" while nodes change sending side, "cleanup" once the other mode's state is removed. */
  readonly stage?: "switch" | "grace" | "cleanup";
  /** Where a paused migration resumes. */
  readonly pausedFrom?: MigrationPhase;
  /** Why it failed, blocked or rolled back. */
  readonly reason?: string;
  readonly message: string;
}

export interface MigrationSettings {
  readonly canary: { readonly nodes?: number; readonly nodeNames?: readonly string[] };
  /** A count, or a percentage string "25%". */
  readonly batchSize: number | string;
  readonly successfulRounds: number;
  readonly probeIntervalMs: number;
  readonly timeoutMs: number;
  readonly autoRollback: boolean;
}

export interface NodeHealth {
  readonly epoch: number;
  /** Consecutive successful probe rounds in that epoch. */
  readonly okRounds: number;
  /** Failed rounds in that epoch. */
  readonly failedRounds: number;
  readonly lastFailure?: string;
  /** Why the latest round did not count although nothing was lost (e.g. traffic not yet on the target transport). */
  readonly waiting?: string;
}

export interface MigrationObservation {
  readonly now: number;
  readonly specMode: Mode;
  readonly activeMode: Mode;
  readonly generation: number;
  readonly settings: MigrationSettings;
  /** Node names, sorted. */
  readonly nodes: readonly string[];
  /**
   * What the user asked through `switchyard migrate pause|resume|abort|retry`. Retry starts a new attempt
   * at the mode spec.mode names after one that ended without completing (RolledBack, Failed, Blocked):
   * such an attempt stays settled for its generation, and setting spec.mode to the value it already has
   * does not make a new generation.
   */
  readonly control?: "pause" | "resume" | "abort" | "retry";
  /** Reasons the target mode cannot be served (preflight); empty when it can. */
  readonly blockers: readonly string[];
  /** Nodes that have not applied the plan of the current state. */
  readonly lagging: readonly string[];
  readonly health: Readonly<Record<string, NodeHealth | undefined>>;
  /**
   * When the driver finished publishing the plans of the current state; undefined while it has not.
   * Apply and gate timeouts count from here (or from the step's start, whichever is later).
   */
  readonly publishedAt?: number;
}

export interface MigrationEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

export interface MigrationDecision {
  readonly state: MigrationState | undefined;
  /** The mode the cluster counts as active (status.activeMode). */
  readonly activeMode: Mode;
  readonly events: readonly MigrationEvent[];
  /** When the driver should look again even if nothing changes (timeouts, grace periods). */
  readonly wakeAt?: number;
}

/** How the current state maps onto nodes: who sends with what, what every node must receive, gates. */
export interface MigrationLayout {
  readonly nodeModes: Readonly<Record<string, Mode>>;
  readonly modesInUse: readonly Mode[];
  /** Health probing (Prepare..Gate): agents probe peers' health addresses and report rounds for this epoch; a gate counts them. */
  readonly probe?: { readonly epoch: number; readonly intervalMs: number; readonly rounds?: number };
}
