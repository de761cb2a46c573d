// The port through which the daemons reach the Kubernetes API: only the verbs they use, keyed by the
// kinds they use. Why a port: the controller's decisions can then be exercised against an in-memory fake
// with no API server (test/support/fake-kube.ts), and kubernetes-fluent-client stays behind one file
// (kfc-client.ts), whose behaviour (watch options, 404 handling) is the contract every implementation keeps.
import type { KObj, Phase } from "./store";

/** Every kind the controller, the leader election and (later) the agent read or write. */
export const KUBE_KINDS = ["ClusterNetwork", "NodeNetwork", "BlockAffinity", "Node", "Pod", "Namespace", "NetworkPolicy", "Lease", "Event", "Secret"] as const;
export type KubeKind = (typeof KUBE_KINDS)[number];

export interface ObjectRef {
  readonly name: string;
  /** Absent for cluster-scoped kinds. */
  readonly namespace?: string;
}

export interface ObjectList {
  /** The objects, each with its `kind` set (API servers leave it out of list items). */
  readonly items: readonly KObj[];
  /** The list's resourceVersion: a snapshot version a relist can be ordered against. */
  readonly resourceVersion?: string;
}

/** One JSON patch (RFC 6902) operation. */
export type JsonPatchOp =
  | { readonly op: "add" | "replace" | "test"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string }
  | { readonly op: "move" | "copy"; readonly path: string; readonly from: string };

export type WatchHandler = (phase: Phase, obj: KObj) => void;

export interface WatchHandle {
  close(): void;
}

/**
 * What the daemons ask of the API. Failures reject with the server's answer (an object with `status`, the
 * HTTP code, as kfc rejects) or an Error; `statusOf` and `describeError` read both. Not-found is a value
 * where callers expect it: `get` resolves undefined, `delete` of an object already gone resolves.
 */
export interface KubeClient {
  /** Every object of a kind (in one namespace when given), with the list's resourceVersion. */
  list(kind: KubeKind, opts?: { readonly namespace?: string }): Promise<ObjectList>;
  /** One object (its `kind` set), or undefined when it does not exist. */
  get(kind: KubeKind, ref: ObjectRef): Promise<KObj | undefined>;
  /**
   * Streams ADDED, MODIFIED and DELETED events (objects with their `kind` set) until closed; re-lists and
   * re-watches by itself after errors. Resolves once the watch runs. `name` watches one object.
   */
  watch(kind: KubeKind, onEvent: WatchHandler, opts?: { readonly name?: string }): Promise<WatchHandle>;
  /** Server-side apply of an object that names itself (our field manager); `force` takes over conflicting fields. */
  apply(kind: KubeKind, obj: KObj, opts?: { readonly force?: boolean }): Promise<KObj>;
  /** A JSON patch; a failed `test` operation rejects the whole patch (422). */
  patch(kind: KubeKind, ref: ObjectRef, ops: readonly JsonPatchOp[]): Promise<KObj>;
  /** A JSON merge patch (RFC 7386) of the status subresource: keys set to null are removed. */
  patchStatus(kind: KubeKind, ref: ObjectRef, status: unknown): Promise<KObj>;
  /** Creates an object that names itself (and its namespace); rejects when it exists (409). */
  create(kind: KubeKind, obj: KObj): Promise<KObj>;
  /** Deletes an object; one that is already gone is not an error. */
  delete(kind: KubeKind, ref: ObjectRef): Promise<void>;
}

/** The HTTP status of a rejected request, when the rejection carries one. */
export function statusOf(e: unknown): number | undefined {
  const s = (e as { status?: unknown } | undefined)?.status;
  return typeof e === "object" && e !== null && typeof s === "number" ? s : undefined;
}

/** A rejection as a log line: kfc rejects with the API server's response (status and Status body), not an Error. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  const r = e as { status?: number; statusText?: string; data?: { message?: string } } | undefined;
  if (r && typeof r === "object" && (r.status !== undefined || r.data !== undefined)) return `${r.status ?? "?"} ${r.statusText ?? ""}: ${r.data?.message ?? JSON.stringify(r.data)}`.trim();
  return String(e);
}

/** A write refused because this replica no longer holds the controller lease. */
export class FencedError extends Error {
  constructor(what: string) {
    super(`${what} refused: this controller no longer holds the lease`);
    this.name = "FencedError";
  }
}

/**
 * Fencing: every write goes out only while `holds()` says the lease is held, checked at the moment of the
 * write (not once per pass): a replica whose lease lapsed mid-pass, or that was frozen and woke up with a
 * stale cache, writes nothing and cannot undo what the new leader wrote. Reads and watches pass through.
 */
export function fencedWrites(client: KubeClient, holds: () => boolean): KubeClient {
  const fence = <A extends unknown[], R>(what: string, write: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => (holds() ? write(...args) : Promise.reject(new FencedError(`${what} ${String(args[0])}`)));
  return {
    list: (k, o) => client.list(k, o),
    get: (k, r) => client.get(k, r),
    watch: (k, h, o) => client.watch(k, h, o),
    apply: fence("apply", (k, o, opts) => client.apply(k, o, opts)),
    patch: fence("patch", (k, r, ops) => client.patch(k, r, ops)),
    patchStatus: fence("status patch", (k, r, s) => client.patchStatus(k, r, s)),
    create: fence("create", (k, o) => client.create(k, o)),
    delete: fence("delete", (k, r) => client.delete(k, r)),
  };
}
