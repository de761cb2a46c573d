// Fault injection for tests of the controller and agents: dropped watch streams, expired watches (both
// 410 forms), injected errors (409/500/429 with Retry-After) and slow responses, all matched by verb and
// resource. A fault fires on the requests that arrive after it was armed, so a test can arm one and then
// await the client's recovery.

import { ApiError } from "./errors";
import { type Verb } from "./types";

export type ExpireMode = "error-event" | "http-410";

export interface FailOptions {
  verb?: Verb;
  /** A plural (`nodenetworks`, matches every subresource) or `plural/subresource` (`nodenetworks/status`). */
  resource?: string;
  status: 409 | 429 | 500 | 503;
  times?: number;
  retryAfterSeconds?: number;
  message?: string;
}

export interface DelayOptions {
  ms: number;
  verb?: Verb;
  resource?: string;
  /** How many requests to delay; unlimited until reset() when omitted. */
  times?: number;
}

export interface RequestTarget {
  verb: Verb;
  resource: string;
  subresource?: string;
}

interface Armed<T> {
  rule: T;
  remaining: number;
}

function matches(rule: { verb?: Verb; resource?: string }, t: RequestTarget): boolean {
  if (rule.verb && rule.verb !== t.verb) return false;
  if (!rule.resource) return true;
  return rule.resource.includes("/") ? rule.resource === `${t.resource}/${t.subresource ?? ""}` : rule.resource === t.resource;
}

const REASONS: Record<number, string> = { 409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable" };

export class Faults {
  #failures: Armed<FailOptions>[] = [];
  #delays: Armed<DelayOptions>[] = [];
  #expiries: Armed<ExpireMode>[] = [];

  constructor(private readonly endWatches: (abrupt: boolean) => number) {}

  /**
   * End every open watch stream now: a clean end of the chunked response (what a real server's timeout
   * looks like), or with `abrupt` a reset connection (a crashed server or a broken network). Returns how
   * many were open.
   */
  dropWatches(opts: { abrupt?: boolean } = {}): number {
    return this.endWatches(!!opts.abrupt);
  }

  /** The next `times` watch requests get 410 Expired, as an ERROR event on a 200 stream or as HTTP 410. */
  expireWatches(opts: { mode: ExpireMode; times?: number }): void {
    this.#expiries.push({ rule: opts.mode, remaining: opts.times ?? 1 });
  }

  /** The next `times` matching requests fail with `status`. */
  failNext(opts: FailOptions): void {
    this.#failures.push({ rule: opts, remaining: opts.times ?? 1 });
  }

  /** Hold matching requests for `ms` before serving them. */
  delay(opts: DelayOptions): void {
    this.#delays.push({ rule: opts, remaining: opts.times ?? Infinity });
  }

  reset(): void {
    this.#failures = [];
    this.#delays = [];
    this.#expiries = [];
  }

  /** @internal The injected error for this request, if a failure rule is armed for it. */
  takeFailure(t: RequestTarget): ApiError | undefined {
    const armed = this.#failures.find((a) => a.remaining > 0 && matches(a.rule, t));
    if (!armed) return undefined;
    armed.remaining--;
    const { status, retryAfterSeconds } = armed.rule;
    const message = armed.rule.message ?? `injected fault: ${status} for ${t.verb} ${t.resource}${t.subresource ? `/${t.subresource}` : ""}`;
    const headers: Record<string, string> = retryAfterSeconds !== undefined ? { "Retry-After": String(retryAfterSeconds) } : {};
    return new ApiError(status, REASONS[status] ?? "", message, retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}, headers);
  }

  /** @internal Milliseconds to hold this request. */
  takeDelay(t: RequestTarget): number {
    let total = 0;
    for (const armed of this.#delays) {
      if (armed.remaining > 0 && matches(armed.rule, t)) {
        armed.remaining--;
        total += armed.rule.ms;
      }
    }
    return total;
  }

  /** @internal How the next watch request should expire, if an expiry is armed. */
  takeExpiry(): ExpireMode | undefined {
    const armed = this.#expiries.find((a) => a.remaining > 0);
    if (!armed) return undefined;
    armed.remaining--;
    return armed.rule;
  }
}
