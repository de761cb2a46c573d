// The controller's cache of the objects it watches. Bindings (Pepr) or watchers (kfc) only write here;
// everything else reads. Writes are ordered by resourceVersion, so a late event never overwrites a newer
// object, and relists (which replay whole lists) are harmless.
import type { KubernetesObject } from "@kubernetes/client-node";

export type KObj = KubernetesObject & { [key: string]: unknown };
export type Phase = "ADDED" | "MODIFIED" | "DELETED";

export const WATCHED = ["ClusterNetwork", "NodeNetwork", "BlockAffinity", "Node", "Pod", "Namespace", "NetworkPolicy"] as const;
export type WatchedKind = (typeof WATCHED)[number];

function keyOf(o: KubernetesObject): string {
  return o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : `${o.metadata?.name ?? ""}`;
}
function rvOf(o: KubernetesObject): number {
  const n = Number.parseInt(o.metadata?.resourceVersion ?? "0", 10);
  return Number.isFinite(n) ? n : 0;
}

/**
 * What of a ClusterNetwork a pass reads besides its own status bookkeeping: identity, spec, annotations
 * (migration control), and the status fields that are plan inputs: the active mode, the source settings
 * (activeConfig.vxlan / .bgp, as the controller reads them) and the migration state.
 */
export function clusterNetworkInput(o: KObj): string {
  const spec = o["spec"] as { mode?: unknown } | undefined;
  const status = o["status"] as { activeMode?: unknown; activeConfig?: { vxlan?: unknown; bgp?: unknown }; migration?: unknown } | undefined;
  const m = o.metadata;
  const source = [status?.activeConfig?.vxlan ?? null, status?.activeConfig?.bgp ?? null];
  return JSON.stringify([m?.name, m?.uid, m?.generation, m?.deletionTimestamp ?? null, m?.annotations ?? null, spec ?? null, status?.activeMode ?? spec?.mode ?? null, source, status?.migration ?? null]);
}

export class ResourceCache {
  readonly items = new Map<string, KObj>();
  /** RV of the last deletion per key, so a stale ADDED after a DELETED is ignored. */
  private readonly tombstones = new Map<string, number>();

  /** Applies one event; returns true when the cache changed. */
  apply(phase: Phase, obj: KObj): boolean {
    const key = keyOf(obj);
    const rv = rvOf(obj);
    const cur = this.items.get(key);
    if (phase === "DELETED") {
      if (cur && rvOf(cur) > rv && cur.metadata?.uid !== obj.metadata?.uid) return false; // a newer re-creation
      this.tombstones.set(key, rv);
      return this.items.delete(key);
    }
    if (cur && rvOf(cur) >= rv && rv !== 0) return false;
    const dead = this.tombstones.get(key);
    if (!cur && dead !== undefined && dead >= rv && rv !== 0) return false;
    this.items.set(key, obj);
    return true;
  }

  /**
   * Replaces the whole content from a fresh list (the level-triggered resync). Returns true when it changed.
   * A list is a snapshot at `listRv`, and watch events newer than it may have arrived while it was read (a
   * list of 1,000 large objects takes seconds): those stay, so a relist never sets an object back, and
   * objects created after the snapshot are kept. Without `listRv`, the list replaces everything.
   */
  replaceAll(objs: readonly KObj[], listRv?: number): boolean {
    const next = new Map<string, KObj>();
    for (const o of objs) {
      const k = keyOf(o);
      const cur = this.items.get(k);
      const dead = this.tombstones.get(k);
      if (cur && rvOf(cur) > rvOf(o)) next.set(k, cur);
      else if (!cur && dead !== undefined && dead > rvOf(o) && listRv !== undefined) continue;
      else next.set(k, o);
    }
    if (listRv !== undefined) for (const [k, cur] of this.items) if (!next.has(k) && rvOf(cur) > listRv) next.set(k, cur);
    let changed = next.size !== this.items.size;
    for (const [k, o] of next) {
      const cur = this.items.get(k);
      if (!cur || cur.metadata?.resourceVersion !== o.metadata?.resourceVersion) changed = true;
    }
    this.items.clear();
    for (const [k, o] of next) this.items.set(k, o);
    return changed;
  }

  get(key: string): KObj | undefined {
    return this.items.get(key);
  }

  list(): KObj[] {
    return [...this.items.values()];
  }
}

export class ClusterStore {
  readonly caches: Record<WatchedKind, ResourceCache> = {
    ClusterNetwork: new ResourceCache(),
    NodeNetwork: new ResourceCache(),
    BlockAffinity: new ResourceCache(),
    Node: new ResourceCache(),
    Pod: new ResourceCache(),
    Namespace: new ResourceCache(),
    NetworkPolicy: new ResourceCache(),
  };
  readonly synced = new Set<WatchedKind>();
  /**
   * Bumped on every change that can alter a plan, except to NodeNetworks and BlockAffinities: those are
   * mostly the controller's own writes coming back, and the compile compares the blocks they record itself.
   */
  planInputVersion = 0;
  /** The same, per kind: what a part of the compile depends on (the policy model: pods, namespaces, policies). */
  readonly kindVersions: Record<WatchedKind, number> = { ClusterNetwork: 0, NodeNetwork: 0, BlockAffinity: 0, Node: 0, Pod: 0, Namespace: 0, NetworkPolicy: 0 };
  /** When the oldest not-yet-realized policy-affecting change was seen, by input version. */
  readonly changeSeenAt = new Map<number, number>();

  apply(kind: WatchedKind, phase: Phase, obj: KObj, now: number): boolean {
    const before = kind === "ClusterNetwork" ? this.caches.ClusterNetwork.get(keyOf(obj)) : undefined;
    const changed = this.caches[kind].apply(phase, obj);
    if (!changed || kind === "NodeNetwork" || kind === "BlockAffinity") return changed;
    // The controller's own status write (counts, conditions) comes back as a ClusterNetwork event: it moves
    // no plan input, so it must not cost a recompile.
    if (kind === "ClusterNetwork" && phase === "MODIFIED" && before && clusterNetworkInput(before) === clusterNetworkInput(obj)) return changed;
    this.notePlanInput(kind, now);
    return changed;
  }

  replaceAll(kind: WatchedKind, objs: readonly KObj[], now: number, listRv?: number): boolean {
    const changed = this.caches[kind].replaceAll(objs, listRv);
    this.synced.add(kind);
    if (changed && kind !== "NodeNetwork" && kind !== "BlockAffinity") this.notePlanInput(kind, now);
    return changed;
  }

  private notePlanInput(kind: WatchedKind, now: number): void {
    this.kindVersions[kind]++;
    this.planInputVersion++;
    this.changeSeenAt.set(this.planInputVersion, now);
  }

  /** Forgets when the changes up to `version` were seen: a pass published them. */
  forgetChangesThrough(version: number): void {
    for (const v of [...this.changeSeenAt.keys()]) if (v <= version) this.changeSeenAt.delete(v);
  }

  isSynced(): boolean {
    return WATCHED.every((k) => this.synced.has(k));
  }
}
