// Why: the JSON contract between the migration check and its per-pod traffic helper
// (test/qemu/pod-traffic.ts, which runs as its own process in a pod's namespace): kept apart so the check
// can import the types without running the helper.

export interface StreamRole {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  readonly intervalMs: number;
}

export interface ProbeRole {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  /** A connect that has not completed after this long counts as blocked. */
  readonly timeoutMs: number;
  /** Staggered loops: one attempt starts about every timeoutMs / parallel ms while the flow is blocked. */
  readonly parallel: number;
}

export interface ListenRole {
  readonly port: number;
  /**
   * true: echo what the connection sends (the server side of a stream); false: log the connection
   * (time, peer) and close it (the server side of a probed flow).
   */
  readonly echo: boolean;
}

export interface PodTrafficConfig {
  readonly listen?: readonly ListenRole[];
  readonly streams?: readonly StreamRole[];
  readonly probes?: readonly ProbeRole[];
  /** Hard bound on the helper's life (s). */
  readonly maxSeconds: number;
}

/** A time window [start, end] in epoch ms. */
export type Window = readonly [number, number];

export interface StreamResult {
  readonly id: string;
  readonly sent: number;
  readonly echoed: number;
  /** Longest time between two reads that completed at least one echo (ms), whatever caused it. */
  readonly maxGapMs: number;
  /** When that gap ended (epoch ms). */
  readonly maxGapAt: number;
  /** Every gap between echoes longer than 50 ms (for attributing it: network, or this helper stalled). */
  readonly gaps: readonly Window[];
  /** Longest round trip of one line (ms). */
  readonly maxRttMs: number;
  /** Open from connect to the end, with no error. */
  readonly alive: boolean;
  readonly error?: string;
}

/** One connect attempt: [start (epoch ms), duration (ms), 1 = connected / 0 = not]. */
export type ProbeAttempt = readonly [number, number, 0 | 1];

export interface ProbeResult {
  readonly id: string;
  readonly attempts: readonly ProbeAttempt[];
  /** Errors other than a timeout (e.g. ECONNREFUSED), counted by code. */
  readonly errors: Readonly<Record<string, number>>;
}

/** Connections a listener accepted: [time (epoch ms), peer address]. */
export interface ListenResult {
  readonly port: number;
  readonly echo: boolean;
  readonly accepted: readonly (readonly [number, string])[];
}

export interface PodTrafficResult {
  readonly ev: "result";
  readonly listeners: readonly ListenResult[];
  readonly streams: readonly StreamResult[];
  readonly probes: readonly ProbeResult[];
  /**
   * Windows in which this helper process itself did not run (its 20 ms timer fired more than 30 ms late):
   * CPU starvation of the emulated guest, not the network.
   */
  readonly stalls: readonly Window[];
}

/** Every line the helper prints. */
export type PodTrafficEvent =
  | { readonly ev: "ready" }
  | { readonly ev: "probe"; readonly id: string; readonly ok: boolean; readonly at: number }
  | { readonly ev: "error"; readonly message: string }
  | PodTrafficResult;
