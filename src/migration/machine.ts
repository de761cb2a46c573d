// The migration state machine: transition(state, observation) -> decision. Pure: no clock, no I/O; the
// driver passes the time and what it observed, persists the returned state in ClusterNetwork.status and
// publishes the plans its layout implies. Phases, as a user reads them:
//   Preflight  every node can serve the target mode (kernel support, BIRD, L2 adjacency, MTU) or Blocked
//   Prepare    every node receives both transports; target-mode state installed but not preferred
//   Canary     the canary batch switches its sending side; then a Gate
//   Gate       agents probe peers on migrated and unmigrated nodes for `successfulRounds` rounds
//   Rolling    the next batch switches; then a Gate; repeat
//   Finalize   a grace period, then the old mode's state is removed everywhere -> Completed
// and Paused (user), RollingBack (failed gate, timeout or abort: batches switch back in reverse order,
// then the target state is removed) -> RolledBack.
import type { Mode } from "../api/cluster-network";
import {
  TERMINAL_PHASES,
  type MigrationDecision,
  type MigrationEvent,
  type MigrationLayout,
  type MigrationObservation,
  type MigrationPhase,
  type MigrationSettings,
  type MigrationState,
} from "./types";

/** Canary batch first (selector or the first N nodes by name), then batches of `batchSize`. */
export function planBatches(nodes: readonly string[], settings: MigrationSettings): string[][] {
  const sorted = [...nodes].sort();
  if (sorted.length === 0) return [];
  const canary = settings.canary.nodeNames
    ? sorted.filter((n) => settings.canary.nodeNames!.includes(n))
    : sorted.slice(0, Math.max(1, Math.min(sorted.length, settings.canary.nodes ?? 1)));
  const rest = sorted.filter((n) => !canary.includes(n));
  const size =
    typeof settings.batchSize === "number"
      ? Math.max(1, settings.batchSize)
      : Math.max(1, Math.ceil((sorted.length * Number.parseInt(settings.batchSize, 10)) / 100));
  const batches: string[][] = canary.length > 0 ? [canary] : [];
  for (let i = 0; i < rest.length; i += size) batches.push(rest.slice(i, i + size));
  return batches;
}

function isActive(s: MigrationState | undefined): boolean {
  return s !== undefined && !TERMINAL_PHASES.includes(s.phase);
}

/** Who sends with what, and what every node must receive, for a state (or for no migration). */
export function layoutOf(state: MigrationState | undefined, activeMode: Mode, nodes: readonly string[], settings?: Pick<MigrationSettings, "probeIntervalMs"> & Partial<Pick<MigrationSettings, "successfulRounds">>): MigrationLayout {
  const all = (m: Mode) => Object.fromEntries(nodes.map((n) => [n, m]));
  if (!state || !isActive(state)) return { nodeModes: all(activeMode), modesInUse: [activeMode] };
  const phase: MigrationPhase = state.phase === "Paused" ? (state.pausedFrom ?? "Prepare") : state.phase;
  const both: Mode[] = [...new Set<Mode>([state.from, state.to])].sort();
  const migrated = new Set(state.batches.slice(0, state.migratedBatches).flat());
  const split = () => Object.fromEntries(nodes.map((n) => [n, migrated.has(n) ? state.to : state.from]));
  // Health probing runs from Prepare until the old mode's state goes: every plan carries the same probe
  // section throughout (only a gate's new epoch changes it), so a batch switch rewrites only that batch's
  // plans and the gate that follows rewrites only the epoch. Only a gate counts the rounds of its epoch.
  const probe = { probe: { epoch: state.epoch, intervalMs: settings?.probeIntervalMs ?? 2000, ...(settings?.successfulRounds !== undefined ? { rounds: settings.successfulRounds } : {}) } };
  switch (phase) {
    case "Preflight":
      return { nodeModes: all(state.from), modesInUse: [state.from] };
    case "Prepare":
      return { nodeModes: all(state.from), modesInUse: both, ...probe };
    case "Canary":
    case "Rolling":
    case "Gate":
      return { nodeModes: split(), modesInUse: both, ...probe };
    case "Finalize":
      return state.stage === "cleanup" ? { nodeModes: all(state.to), modesInUse: [state.to] } : { nodeModes: all(state.to), modesInUse: both };
    case "RollingBack":
      return state.stage === "cleanup" ? { nodeModes: all(state.from), modesInUse: [state.from] } : { nodeModes: split(), modesInUse: both, ...probe };
    default:
      return { nodeModes: all(activeMode), modesInUse: [activeMode] };
  }
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;
const list = (xs: readonly string[]) => (xs.length > 6 ? `${xs.slice(0, 6).join(", ")} and ${xs.length - 6} more` : xs.join(", "));

function startRollback(s: MigrationState, obs: MigrationObservation, reason: string, events: MigrationEvent[]): MigrationState {
  events.push({ type: "Warning", reason: "MigrationRollingBack", message: `rolling back from ${s.to} to ${s.from}: ${reason}` });
  const { pausedFrom: _p, ...rest } = s;
  return { ...rest, phase: "RollingBack", stage: "switch", since: obs.now, reason, message: `rolling back: ${reason}` };
}

function fail(s: MigrationState, obs: MigrationObservation, reason: string, events: MigrationEvent[]): MigrationState {
  if (obs.settings.autoRollback) return startRollback(s, obs, reason, events);
  events.push({ type: "Warning", reason: "MigrationPaused", message: `paused, autoRollback is off: ${reason}; run \`switchyard migrate resume\` or \`switchyard migrate abort\`` });
  return { ...s, phase: "Paused", pausedFrom: s.phase, since: obs.now, reason, message: `paused: ${reason}` };
}

/** The grace period before the old mode's state is removed: in-flight packets and slow peers still need decap. */
export function graceMs(settings: MigrationSettings): number {
  return Math.max(1000, 2 * settings.probeIntervalMs);
}

export function transition(prev: MigrationState | undefined, obs: MigrationObservation): MigrationDecision {
  const events: MigrationEvent[] = [];
  let s = prev;
  let active = obs.activeMode;

  if (!s || !isActive(s)) {
    if (obs.specMode === active) return { state: s, activeMode: active, events };
    // An attempt that ended without completing stays settled for its generation, unless retried.
    if (s && s.to === obs.specMode && s.generation === obs.generation && s.phase !== "Completed") {
      if (obs.control !== "retry") return { state: s, activeMode: active, events };
      events.push({ type: "Normal", reason: "MigrationRetried", message: `retrying after the last attempt ended ${s.phase}: ${s.reason ?? s.message}` });
    }
    s = {
      phase: "Preflight",
      from: active,
      to: obs.specMode,
      generation: obs.generation,
      startedAt: obs.now,
      since: obs.now,
      batches: [],
      migratedBatches: 0,
      epoch: 0,
      message: `checking that every node can serve ${obs.specMode}`,
    };
    events.push({ type: "Normal", reason: "MigrationStarted", message: `migrating from ${active} to ${obs.specMode}` });
  }

  // User intent first: a mode set back (or elsewhere) and abort roll back; pause holds everything.
  if (s.phase !== "RollingBack") {
    if (obs.specMode !== s.to) s = startRollback(s, obs, `spec.mode changed to ${obs.specMode}`, events);
    else if (obs.control === "abort") s = startRollback(s, obs, "aborted by the user", events);
  }
  if (obs.control === "pause" && s.phase !== "Paused" && s.phase !== "RollingBack") {
    events.push({ type: "Normal", reason: "MigrationPaused", message: `paused in phase ${s.phase}` });
    return { state: { ...s, phase: "Paused", pausedFrom: s.phase, message: `paused by the user in phase ${s.phase}` }, activeMode: active, events };
  }
  if (s.phase === "Paused") {
    if (obs.control !== "resume") return { state: s, activeMode: active, events };
    const to = s.pausedFrom ?? "Prepare";
    events.push({ type: "Normal", reason: "MigrationResumed", message: `resumed into phase ${to}` });
    const { pausedFrom: _p, reason: _r, ...rest } = s;
    s = { ...rest, phase: to, since: obs.now, epoch: to === "Gate" ? s.epoch + 1 : s.epoch, message: `resumed into phase ${to}` };
  }

  const st = obs.settings;
  // A step times out after `timeoutMs` without progress: its clock starts when its plans have all been
  // published (a large cluster takes a while to write them; the driver passes that time, or nothing while
  // it is still publishing) and starts again whenever fewer nodes are left to wait for.
  const progressed = (cur: MigrationState, pending: number): MigrationState =>
    cur.waitingFor !== undefined && pending < cur.waitingFor ? { ...cur, since: obs.now, waitingFor: pending } : { ...cur, waitingFor: pending };
  const clockOf = (cur: MigrationState) => Math.max(cur.since, obs.publishedAt ?? cur.since);
  const timedOutAt = (cur: MigrationState) => obs.publishedAt !== undefined && obs.now - clockOf(cur) > st.timeoutMs;
  const step0 = s;
  const lagging = obs.lagging;
  let wakeAt: number | undefined;

  switch (s.phase) {
    case "Preflight": {
      if (obs.blockers.length > 0) {
        const msg = `cannot migrate to ${s.to}: ${obs.blockers.join("; ")}`;
        events.push({ type: "Warning", reason: "MigrationBlocked", message: msg });
        s = { ...s, phase: "Blocked", since: obs.now, reason: msg, message: `${msg}. Nothing was changed.` };
        break;
      }
      const batches = planBatches(obs.nodes, st);
      s = { ...s, phase: "Prepare", since: obs.now, batches, migratedBatches: 0, message: `preparing: every node receives ${s.from} and ${s.to}; ${batches.length} batch(es), canaries ${list(batches[0] ?? [])}` };
      events.push({ type: "Normal", reason: "MigrationPrepare", message: s.message });
      wakeAt = obs.now + st.timeoutMs;
      break;
    }
    case "Prepare":
    case "Canary":
    case "Rolling": {
      if (lagging.length === 0) {
        if (s.phase === "Prepare") {
          s = { ...s, phase: "Canary", since: obs.now, migratedBatches: Math.min(1, s.batches.length), message: `canary: ${list(s.batches[0] ?? [])} send with ${s.to}` };
          events.push({ type: "Normal", reason: "MigrationCanary", message: s.message });
        } else {
          s = { ...s, phase: "Gate", since: obs.now, epoch: s.epoch + 1, message: `gate after batch ${s.migratedBatches - 1}: waiting for ${st.successfulRounds} healthy probe round(s) from every node` };
        }
      } else {
        s = progressed(s, lagging.length);
        if (timedOutAt(s)) {
          s = fail(s, obs, `${list(lagging)} did not apply the ${s.phase.toLowerCase()} plan within ${seconds(st.timeoutMs)}`, events);
        } else {
          s = { ...s, message: `${s.phase.toLowerCase()}: waiting for ${list(lagging)} to apply` };
          wakeAt = clockOf(s) + st.timeoutMs + 1;
        }
      }
      break;
    }
    case "Gate": {
      const failing = obs.nodes.filter((n) => {
        const h = obs.health[n];
        return h !== undefined && h.epoch === s!.epoch && h.failedRounds > 0;
      });
      const passed = obs.nodes.every((n) => {
        const h = obs.health[n];
        return h !== undefined && h.epoch === s!.epoch && h.okRounds >= st.successfulRounds && h.failedRounds === 0;
      });
      const notYetHealthy = obs.nodes.filter((n) => !(obs.health[n]?.epoch === s!.epoch && (obs.health[n]?.okRounds ?? 0) >= st.successfulRounds));
      s = progressed(s, new Set([...lagging, ...notYetHealthy]).size);
      if (failing.length > 0) {
        const detail = failing.map((n) => `${n}: ${obs.health[n]?.lastFailure ?? "probe failed"}`).join("; ");
        events.push({ type: "Warning", reason: "MigrationGateFailed", message: `health gate after batch ${s.migratedBatches - 1} failed: ${detail}` });
        s = fail(s, obs, `health gate failed: ${detail}`, events);
      } else if (passed && lagging.length === 0) {
        events.push({ type: "Normal", reason: "MigrationGatePassed", message: `gate after batch ${s.migratedBatches - 1} passed (${st.successfulRounds} round(s) on ${obs.nodes.length} node(s))` });
        if (s.migratedBatches < s.batches.length) {
          const next = s.batches[s.migratedBatches] ?? [];
          s = { ...s, phase: "Rolling", since: obs.now, migratedBatches: s.migratedBatches + 1, message: `rolling: batch ${s.migratedBatches} (${list(next)}) sends with ${s.to}` };
          events.push({ type: "Normal", reason: "MigrationBatch", message: s.message });
        } else {
          s = { ...s, phase: "Finalize", stage: "grace", since: obs.now, message: `every node sends with ${s.to}; removing ${s.from} state after a grace period` };
          wakeAt = obs.now + graceMs(st);
        }
      } else if (timedOutAt(s)) {
        const why = notYetHealthy.map((n) => obs.health[n]?.waiting).filter((w): w is string => w !== undefined);
        s = fail(s, obs, `health gate timed out after ${seconds(st.timeoutMs)}: no ${st.successfulRounds} healthy round(s) from ${list(notYetHealthy)}${why.length > 0 ? ` (${[...new Set(why)].slice(0, 3).join("; ")})` : ""}`, events);
      } else {
        const done = obs.nodes.length - notYetHealthy.length;
        const waitingFor = lagging.length > 0 ? `; waiting for ${list(lagging)} to apply the gate plan` : notYetHealthy.length > 0 ? `; waiting for healthy rounds from ${list(notYetHealthy)}` : "";
        s = { ...s, message: `gate after batch ${s.migratedBatches - 1}: ${done}/${obs.nodes.length} node(s) healthy for ${st.successfulRounds} round(s)${waitingFor}` };
        wakeAt = clockOf(s) + st.timeoutMs + 1;
      }
      break;
    }
    case "Finalize": {
      if (s.stage !== "cleanup") {
        if (obs.now >= s.since + graceMs(st) && lagging.length === 0) {
          s = { ...s, stage: "cleanup", since: obs.now, message: `removing ${s.from} state from every node` };
        } else wakeAt = s.since + graceMs(st);
      } else if (lagging.length === 0) {
        active = s.to;
        const { stage: _st, ...done } = s;
        s = { ...done, phase: "Completed", since: obs.now, message: `completed: every node sends with ${s.to}; ${s.from} state removed` };
        events.push({ type: "Normal", reason: "MigrationCompleted", message: `migrated from ${s.from} to ${s.to} in ${seconds(obs.now - s.startedAt)}` });
      } else {
        s = { ...s, message: `removing ${s.from} state: waiting for ${list(lagging)}` };
      }
      break;
    }
    case "RollingBack": {
      if (lagging.length > 0) {
        s = { ...s, message: `rolling back: waiting for ${list(lagging)} (${s.reason ?? ""})` };
      } else if (s.stage !== "cleanup" && s.migratedBatches > 0) {
        s = { ...s, since: obs.now, migratedBatches: s.migratedBatches - 1, message: `rolling back batch ${s.migratedBatches - 1} to ${s.from}` };
      } else if (s.stage !== "cleanup") {
        s = { ...s, stage: "cleanup", since: obs.now, message: `every node sends with ${s.from} again; removing ${s.to} state` };
      } else {
        const { stage: _st, ...done } = s;
        s = { ...done, phase: "RolledBack", since: obs.now, message: `rolled back to ${s.from}: ${s.reason ?? ""}` };
        events.push({ type: "Warning", reason: "MigrationRolledBack", message: s.message });
      }
      break;
    }
    default:
      break;
  }
  // A new step (or phase) counts its own progress.
  if (s.waitingFor !== undefined && (s.phase !== step0.phase || s.stage !== step0.stage || s.migratedBatches !== step0.migratedBatches || s.epoch !== step0.epoch)) {
    const { waitingFor: _w, ...rest } = s;
    s = rest;
  }
  return { state: s, activeMode: active, events, ...(wakeAt !== undefined ? { wakeAt } : {}) };
}
