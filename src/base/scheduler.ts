// A coalescing, bounded-rate scheduler: any number of triggers while a run is pending or in flight become
// one more run; runs never overlap and start at most once per `minIntervalMs`. Pepr's queue neither
// de-duplicates nor retries, so this is where both happen: a failed run is retried with backoff.
export interface SchedulerOptions {
  readonly minIntervalMs: number;
  readonly maxBackoffMs?: number;
  readonly run: () => Promise<void>;
  readonly onError?: (e: unknown) => void;
  readonly now?: () => number;
}

export class CoalescingScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private dirty = false;
  private lastStart = -Infinity;
  private failures = 0;
  private stopped = false;
  runs = 0;
  triggers = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: SchedulerOptions) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Asks for a run; coalesced with any pending one. */
  trigger(): void {
    if (this.stopped) return;
    this.triggers++;
    this.dirty = true;
    this.arm();
  }

  private arm(): void {
    if (this.running || this.timer || !this.dirty || this.stopped) return;
    const backoff = this.failures > 0 ? Math.min(this.opts.maxBackoffMs ?? 10_000, this.opts.minIntervalMs * 2 ** this.failures) : 0;
    const wait = Math.max(0, this.lastStart + this.opts.minIntervalMs - this.now(), backoff);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.fire();
    }, wait);
  }

  private async fire(): Promise<void> {
    if (this.stopped) return;
    this.running = true;
    this.dirty = false;
    this.lastStart = this.now();
    this.runs++;
    try {
      await this.opts.run();
      this.failures = 0;
    } catch (e) {
      this.failures++;
      this.dirty = true;
      this.opts.onError?.(e);
    } finally {
      this.running = false;
    }
    if (this.dirty) this.arm();
    else for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when nothing is pending or running. */
  idle(): Promise<void> {
    if (!this.running && !this.dirty && !this.timer) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
