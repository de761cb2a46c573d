// Why: in the starved qemu guest a migration step sometimes makes no progress for a minute and more although
// every agent has applied its plan. That is either the control plane missing something (a lost watch event,
// a request that never completes, a pass that never runs) or just slowness, and only evidence can tell. This
// looks every few seconds, in the check's own process, at what the check can see without touching the
// project's code: API requests the emulator has not answered, the controller's cached NodeNetwork status
// against the API's (a missed event shows as a lasting difference), and whether the controller's scheduler
// ran passes since the last look, and whether it counted itself leader (a pass is skipped while it does
// not: a lease that lapses because the API answered slowly stalls the migration). It prints a `#` line for
// each finding, once, and a heartbeat every 30 s (passes run and skipped, lease lapses, the migration's
// message).
import type { ApiServer } from "../../../lab/apiserver";
import type { Controller } from "../../../src/controller/controller";
import type { ApiView } from "./api-view";

const EVERY_MS = 1_000;
/** The request and cache checks run every this many looks. */
const SLOW_LOOK_EVERY = 5;
/** A non-watch request unanswered for this long is reported. */
const SLOW_REQUEST_MS = 15_000;
/** The controller's cache disagreeing with the API for this long is reported. */
const STALE_CACHE_MS = 15_000;
const HEARTBEAT_MS = 30_000;

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private readonly reported = new Set<unknown>();
  private readonly staleSince = new Map<string, number>();
  private lastRuns = 0;
  private lastTriggers = 0;
  private beat = { at: Date.now(), runs: 0, triggers: 0, passes: 0, notLeaderMs: 0 };
  private looks = 0;
  private notLeaderSince: number | undefined;
  /** Time the controller did not count itself leader, in total (ms). */
  notLeaderMs = 0;

  constructor(
    private readonly api: ApiServer,
    private readonly controller: Controller,
    private readonly nodeNetworks: ApiView,
    private readonly note: (text: string) => void,
    /** The migration's current message, for the heartbeat. */
    private readonly progress: () => string,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.look(), EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private look(): void {
    const now = Date.now();
    if (!this.controller.isLeader()) this.notLeaderSince ??= now;
    else if (this.notLeaderSince !== undefined) {
      this.notLeaderMs += now - this.notLeaderSince;
      if (now - this.notLeaderSince >= 3_000) this.note(`watchdog: the controller did not count itself leader for ${Math.round((now - this.notLeaderSince) / 1000)} s (its lease lapsed: passes were skipped)`);
      this.notLeaderSince = undefined;
    }
    if (++this.looks % SLOW_LOOK_EVERY !== 0) return;
    for (const r of this.api.requests.find({ status: 0 })) {
      if (r.verb === "watch" || now - r.at < SLOW_REQUEST_MS || this.reported.has(r)) continue;
      this.reported.add(r);
      this.note(`watchdog: API request ${r.method} ${r.path} (${r.verb}${r.fieldManager ? `, manager ${r.fieldManager}` : ""}) unanswered for ${Math.round((now - r.at) / 1000)} s`);
    }
    const runs = this.controller.scheduler.runs;
    const triggers = this.controller.scheduler.triggers;
    for (const o of this.nodeNetworks.all()) {
      const name = o.metadata?.name ?? "";
      const api = o.status?.["appliedHash"];
      const cached = (this.controller.store.caches.NodeNetwork.get(name)?.["status"] as { appliedHash?: string } | undefined)?.appliedHash;
      if (api === cached) {
        this.staleSince.delete(name);
        continue;
      }
      const since = this.staleSince.get(name) ?? now;
      this.staleSince.set(name, since);
      const key = `${name}/${String(api)}`;
      if (now - since >= STALE_CACHE_MS && !this.reported.has(key)) {
        this.reported.add(key);
        this.note(`watchdog: for ${Math.round((now - since) / 1000)} s the controller's cache has ${name} appliedHash ${String(cached)}, the API ${String(api)}; scheduler runs +${runs - this.lastRuns}, triggers +${triggers - this.lastTriggers} in the last ${EVERY_MS / 1000} s`);
      }
    }
    this.lastRuns = runs;
    this.lastTriggers = triggers;
    if (now - this.beat.at >= HEARTBEAT_MS) {
      const passes = this.controller.counters.passes;
      const lapsed = this.notLeaderMs - this.beat.notLeaderMs + (this.notLeaderSince !== undefined ? now - Math.max(this.notLeaderSince, this.beat.at) : 0);
      this.note(
        `heartbeat: in the last ${Math.round((now - this.beat.at) / 1000)} s the controller ran ${passes - this.beat.passes} pass(es) and skipped ${runs - this.beat.runs - (passes - this.beat.passes)} (triggers +${triggers - this.beat.triggers}; not leader for ${(lapsed / 1000).toFixed(0)} s); ${this.progress()}`,
      );
      this.beat = { at: now, runs, triggers, passes, notLeaderMs: this.notLeaderMs };
    }
  }
}
