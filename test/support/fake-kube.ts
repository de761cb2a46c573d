// An in-memory KubeClient for unit tests of the daemons' decisions, with no API server: objects by kind,
// a global resourceVersion, watch events delivered synchronously (so a test that drives passes by hand sees
// every write's echo in the controller's cache before the next pass), JSON patch and merge patch by the
// lab emulator's own pure helpers (a failed `test` is a 422 as on a real server), and a log of every call
// the daemon made. What it simplifies: server-side apply replaces the fields the body names (labels,
// ownerReferences, spec) instead of tracking field managers; no admission, no field selectors but a name.
// Finalizers work as on a server: a delete marks the object (deletionTimestamp) while any remain, and it
// leaves once a write removes the last one; `remove` (the test's own hand) deletes at once.
// Test code changes the world through upsert/mutate/remove, which are not logged as the daemon's calls.
import { jsonPatch } from "../../lab/apiserver/json-patch";
import { mergePatch } from "../../lab/apiserver/merge-patch";
import { ApiError } from "../../lab/apiserver/errors";
import type { JsonPatchOp, KubeClient, KubeKind, ObjectList, ObjectRef, WatchHandle, WatchHandler } from "../../src/kube/client";
import type { KObj, Phase } from "../../src/kube/store";

/** A rejection shaped like kfc's: the HTTP status and the server's Status body. */
export class FakeApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(`${status}: ${message}`);
  }
}

export type Verb = "list" | "get" | "watch" | "apply" | "patch" | "patchStatus" | "create" | "delete";

/** One call the daemon made. `body`: the applied/created object, the patch operations or the status patch. */
export interface FakeCall {
  readonly verb: Verb;
  readonly kind: KubeKind;
  readonly name?: string;
  readonly namespace?: string;
  readonly body?: unknown;
}

const keyOf = (ref: ObjectRef): string => (ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name);
const clone = <T>(v: T): T => structuredClone(v);
const specOf = (o: KObj | undefined): string => JSON.stringify(o?.["spec"] ?? null);

export class FakeKube implements KubeClient {
  private rv = 0;
  private uids = 0;
  private readonly objects = new Map<KubeKind, Map<string, KObj>>();
  private readonly watchers = new Set<{ kind: KubeKind; name?: string; onEvent: WatchHandler }>();
  private readonly faults: { verb: Verb; kind: KubeKind; status: number; times: number }[] = [];
  private muted = false;
  /** Every call the daemon made, in order. */
  readonly calls: FakeCall[] = [];

  // ---- the world, as tests (and fake agents) change it ----

  /** Creates or replaces an object (the generation moves when the spec does). */
  upsert(kind: KubeKind, obj: Record<string, unknown>): KObj {
    const o = obj as KObj;
    const ref = { name: o.metadata?.name ?? "", ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}) };
    const cur = this.bucket(kind).get(keyOf(ref));
    return this.store(kind, ref, { ...clone(o), kind: o.kind ?? kind }, cur);
  }

  /** Changes an object in place through `fn` (which gets a copy); throws when it does not exist. */
  mutate(kind: KubeKind, ref: ObjectRef, fn: (o: KObj) => void): KObj {
    const cur = this.bucket(kind).get(keyOf(ref));
    if (!cur) throw new Error(`no ${kind} ${keyOf(ref)}`);
    const next = clone(cur);
    fn(next);
    return this.store(kind, ref, next, cur);
  }

  remove(kind: KubeKind, ref: ObjectRef): void {
    const cur = this.bucket(kind).get(keyOf(ref));
    if (!cur) return;
    this.bucket(kind).delete(keyOf(ref));
    const gone = { ...clone(cur), metadata: { ...cur.metadata, resourceVersion: String(++this.rv) } } as KObj;
    this.emit(kind, "DELETED", gone);
  }

  /** Runs `fn` with no watch event delivered: a change the daemon's watches miss (only a relist finds it). */
  unseen(fn: () => void): void {
    this.muted = true;
    try {
      fn();
    } finally {
      this.muted = false;
    }
  }

  /** The stored object (a copy), or undefined. */
  peek(kind: KubeKind, ref: ObjectRef): KObj | undefined {
    const o = this.bucket(kind).get(keyOf(ref));
    return o ? clone(o) : undefined;
  }

  all(kind: KubeKind): KObj[] {
    return [...this.bucket(kind).values()].map(clone);
  }

  /** The next `times` calls of `verb` on `kind` fail with `status`. */
  failNext(verb: Verb, kind: KubeKind, status: number, times = 1): void {
    this.faults.push({ verb, kind, status, times });
  }

  /** The daemon's calls filtered by verb and kind; `since` skips the first calls (an index into `calls`). */
  callsOf(verb: Verb | readonly Verb[], kind?: KubeKind, since = 0): FakeCall[] {
    const verbs = typeof verb === "string" ? [verb] : verb;
    return this.calls.slice(since).filter((c) => verbs.includes(c.verb) && (kind === undefined || c.kind === kind));
  }

  // ---- the KubeClient port ----

  async list(kind: KubeKind, opts: { readonly namespace?: string } = {}): Promise<ObjectList> {
    this.record({ verb: "list", kind, ...(opts.namespace ? { namespace: opts.namespace } : {}) });
    const items = [...this.bucket(kind).values()].filter((o) => opts.namespace === undefined || o.metadata?.namespace === opts.namespace);
    return { items: items.map(clone), resourceVersion: String(this.rv) };
  }

  async get(kind: KubeKind, ref: ObjectRef): Promise<KObj | undefined> {
    this.record({ verb: "get", kind, ...ref });
    return this.peek(kind, ref);
  }

  async watch(kind: KubeKind, onEvent: WatchHandler, opts: { readonly name?: string } = {}): Promise<WatchHandle> {
    this.record({ verb: "watch", kind, ...(opts.name ? { name: opts.name } : {}) });
    const w = { kind, ...(opts.name ? { name: opts.name } : {}), onEvent };
    this.watchers.add(w);
    return { close: () => this.watchers.delete(w) };
  }

  async apply(kind: KubeKind, obj: KObj, _opts: { readonly force?: boolean } = {}): Promise<KObj> {
    const ref = { name: obj.metadata?.name ?? "", ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}) };
    this.record({ verb: "apply", kind, ...ref, body: clone(obj) });
    const cur = this.bucket(kind).get(keyOf(ref));
    const meta = obj.metadata ?? {};
    const next = cur
      ? ({
          ...clone(cur),
          metadata: { ...clone(cur.metadata), ...(meta.labels ? { labels: { ...cur.metadata?.labels, ...meta.labels } } : {}), ...(meta.ownerReferences ? { ownerReferences: clone(meta.ownerReferences) } : {}) },
          ...(obj["spec"] !== undefined ? { spec: clone(obj["spec"]) } : {}),
        } as KObj)
      : ({ ...clone(obj), kind: obj.kind ?? kind } as KObj);
    return clone(this.store(kind, ref, next, cur));
  }

  async patch(kind: KubeKind, ref: ObjectRef, ops: readonly JsonPatchOp[]): Promise<KObj> {
    this.record({ verb: "patch", kind, ...ref, body: clone(ops) });
    const cur = this.existing(kind, ref);
    let next: KObj;
    try {
      next = jsonPatch(cur, clone(ops)) as KObj;
    } catch (e) {
      if (e instanceof ApiError) throw new FakeApiError(e.code, e.message);
      throw e;
    }
    return clone(this.store(kind, ref, clone(next), cur));
  }

  async patchStatus(kind: KubeKind, ref: ObjectRef, status: unknown): Promise<KObj> {
    this.record({ verb: "patchStatus", kind, ...ref, body: clone(status) });
    const cur = this.existing(kind, ref);
    const next = { ...clone(cur), status: mergePatch(cur["status"], clone(status)) } as KObj;
    return clone(this.store(kind, ref, next, cur));
  }

  async create(kind: KubeKind, obj: KObj): Promise<KObj> {
    const ref = { name: obj.metadata?.name ?? "", ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}) };
    this.record({ verb: "create", kind, ...ref, body: clone(obj) });
    if (this.bucket(kind).has(keyOf(ref))) throw new FakeApiError(409, `${kind} ${keyOf(ref)} already exists`);
    return clone(this.store(kind, ref, { ...clone(obj), kind: obj.kind ?? kind }, undefined));
  }

  async delete(kind: KubeKind, ref: ObjectRef): Promise<void> {
    this.record({ verb: "delete", kind, ...ref });
    const cur = this.bucket(kind).get(keyOf(ref));
    if (cur?.metadata?.finalizers?.length) {
      if (!cur.metadata.deletionTimestamp) this.store(kind, ref, { ...clone(cur), metadata: { ...clone(cur.metadata), deletionTimestamp: new Date(0).toISOString() } } as unknown as KObj, cur);
      return;
    }
    this.remove(kind, ref);
  }

  // ---- inside ----

  private bucket(kind: KubeKind): Map<string, KObj> {
    let b = this.objects.get(kind);
    if (!b) this.objects.set(kind, (b = new Map()));
    return b;
  }

  private existing(kind: KubeKind, ref: ObjectRef): KObj {
    const cur = this.bucket(kind).get(keyOf(ref));
    if (!cur) throw new FakeApiError(404, `${kind} ${keyOf(ref)} not found`);
    return cur;
  }

  private record(call: FakeCall): void {
    this.calls.push(call);
    const f = this.faults.find((x) => x.verb === call.verb && x.kind === call.kind && x.times > 0);
    if (f) {
      f.times--;
      throw new FakeApiError(f.status, `injected failure of ${call.verb} ${call.kind}`);
    }
  }

  /** Stores `next` as the new version of `ref` (uid, generation, resourceVersion as a server sets them) and tells the watchers. */
  private store(kind: KubeKind, ref: ObjectRef, next: KObj, cur: KObj | undefined): KObj {
    const generation = cur ? (cur.metadata?.generation ?? 1) + (specOf(cur) !== specOf(next) ? 1 : 0) : 1;
    const stored = {
      ...next,
      metadata: {
        ...next.metadata,
        name: ref.name,
        ...(ref.namespace ? { namespace: ref.namespace } : {}),
        uid: cur?.metadata?.uid ?? next.metadata?.uid ?? `uid-${++this.uids}`,
        generation,
        resourceVersion: String(++this.rv),
      },
    } as KObj;
    this.bucket(kind).set(keyOf(ref), stored);
    this.emit(kind, cur ? "MODIFIED" : "ADDED", stored);
    if (stored.metadata?.deletionTimestamp && !stored.metadata.finalizers?.length) this.remove(kind, ref);
    return stored;
  }

  private emit(kind: KubeKind, phase: Phase, obj: KObj): void {
    if (this.muted) return;
    for (const w of [...this.watchers]) if (w.kind === kind && (w.name === undefined || w.name === obj.metadata?.name)) w.onEvent(phase, clone(obj));
  }
}
