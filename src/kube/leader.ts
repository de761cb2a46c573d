// Leader election on a coordination.k8s.io/v1 Lease, so two controller replicas never fight over the
// NodeNetworks: only the holder publishes. Acquire and renew are compare-and-swap writes (a JSON patch
// whose first op tests the resourceVersion), so two candidates cannot both win the same round.
import type { Logger } from "../base/log";
import type { KubeClient } from "./client";
import { KfcClient } from "./kfc-client";
import type { KObj } from "./store";

export interface LeaderOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSec: number;
  readonly renewEveryMs: number;
  readonly log: Logger;
  readonly onChange: (leader: boolean) => void;
  readonly now?: () => number;
  /** The API (kubernetes-fluent-client unless given). */
  readonly client?: KubeClient;
}

type Lease = { metadata?: { resourceVersion?: string }; spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number; leaseTransitions?: number } };

function microTime(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "000Z");
}

export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  private leader = false;
  private stopped = false;
  private lastRenew = 0;

  private readonly client: KubeClient;

  constructor(private readonly opts: LeaderOptions) {
    this.client = opts.client ?? new KfcClient();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  isLeader(): boolean {
    return this.leader && this.now() - this.lastRenew < this.opts.leaseDurationSec * 1000;
  }

  private ref() {
    return { name: this.opts.name, namespace: this.opts.namespace };
  }

  private set(leader: boolean): void {
    if (leader !== this.leader) {
      this.leader = leader;
      this.opts.log.info({ leader, identity: this.opts.identity }, leader ? "acquired the controller lease" : "lost the controller lease");
      this.opts.onChange(leader);
    }
  }

  /** One acquire-or-renew round; returns whether this replica holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    const spec = { holderIdentity: this.opts.identity, leaseDurationSeconds: this.opts.leaseDurationSec, renewTime: microTime(now) };
    const lease = (await this.client.get("Lease", this.ref())) as Lease | undefined;
    if (!lease) {
      try {
        await this.client.create("Lease", {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
        } as KObj);
        this.lastRenew = now;
        return true;
      } catch (e) {
        this.opts.log.debug({ err: JSON.stringify(e).slice(0, 300) }, "lease create lost the race");
        return false; // somebody else created it first
      }
    }
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired = now - renewed > (lease.spec?.leaseDurationSeconds ?? this.opts.leaseDurationSec) * 1000;
    if (holder !== this.opts.identity && !expired) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === this.opts.identity ? 0 : 1);
    try {
      await this.client.patch("Lease", this.ref(), [
        { op: "test", path: "/metadata/resourceVersion", value: lease.metadata?.resourceVersion ?? "" },
        { op: "replace", path: "/spec", value: { ...spec, leaseTransitions: transitions, ...(holder === this.opts.identity ? {} : { acquireTime: microTime(now) }) } },
      ]);
      this.lastRenew = now;
      return true;
    } catch (e) {
      this.opts.log.debug({ err: JSON.stringify(e).slice(0, 300) }, "lease update lost the race");
      return false; // lost the race (resourceVersion moved)
    }
  }

  /** Runs rounds until stopped; calls onChange on every transition. */
  start(): void {
    const round = async (): Promise<void> => {
      if (this.stopped) return;
      // The lease lapsed while we still held the flag (the event loop was blocked longer than the lease,
      // e.g. by a long compile): that is a loss, and passes were skipped meanwhile. Recording it makes the
      // renewal below an acquisition, whose onChange(true) runs them again.
      if (this.leader && !this.isLeader()) this.set(false);
      try {
        const lapsesAt = this.lastRenew + this.opts.leaseDurationSec * 1000;
        const held = await this.tryAcquireOrRenew();
        // The lease can also lapse while this round is in flight (the API answered slowly): passes skipped in
        // that gap would never run again, so a renewal that ends a lapse counts as a loss and an acquisition.
        if (held && this.leader && this.now() >= lapsesAt) this.set(false);
        this.set(held);
      } catch (e) {
        this.opts.log.warn({ err: String(e) }, "lease round failed");
        if (!this.isLeader()) this.set(false);
      }
      if (!this.stopped) this.timer = setTimeout(() => void round(), this.opts.renewEveryMs);
    };
    void round();
  }

  /** Stops renewing; when `release`, gives the lease up so a standby takes over at once. */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (release && this.leader) {
      try {
        await this.client.patch("Lease", this.ref(), [{ op: "replace", path: "/spec/renewTime", value: microTime(0) }]);
      } catch {
        /* best effort */
      }
    }
    this.set(false);
  }
}
