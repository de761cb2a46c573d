// Watch streams: chunked, one JSON event per line, each flushed as it is written (kfc and client-node both
// split on "\n"). A watch from resourceVersion N replays the history after N and then goes live in the same
// tick, so nothing falls between the two; without an RV (or with 0) it starts with a synthetic ADDED per
// current object. Selectors apply to events: an update that moves an object out of (into) a selector is
// sent as DELETED (ADDED). Bookmarks only when asked for: kfc hands every non-410 event to user callbacks.
// A client going away is seen on res 'close' (req 'close' fires as soon as the empty GET body was read).

import { type ServerResponse } from "node:http";
import { errors, failureStatus } from "./errors";
import { type ExpireMode } from "./faults";
import { apiVersionOf, storageKey } from "./resources";
import { type Selector } from "./selectors";
import { toTable } from "./table";
import { type ObjectStore } from "./store";
import { type KubeObject, type ResourceType, type StoreEvent } from "./types";

export interface WatchRequest {
  rt: ResourceType;
  namespace?: string;
  labelSelector: Selector;
  fieldSelector: Selector;
  /** The resourceVersion query parameter as sent (null when absent). */
  resourceVersion: string | null;
  allowBookmarks: boolean;
  timeoutSeconds?: number;
  /** An injected expiry for this request (faults.expireWatches). */
  expiry?: ExpireMode;
  /** Send each object as a one-row meta.k8s.io Table (`kubectl get -w`). */
  table?: boolean;
}

type EventType = StoreEvent["type"] | "BOOKMARK" | "ERROR";

export class WatchHub {
  #open = new Set<(abrupt?: boolean) => void>();

  constructor(
    private readonly store: ObjectStore,
    private readonly bookmarkIntervalMs: number,
    /** How a watch from a resourceVersion older than the history is refused. */
    private readonly tooOldForm: ExpireMode = "error-event",
  ) {}

  get openCount(): number {
    return this.#open.size;
  }

  /** End every open stream (abruptly: reset the connection instead of a clean end); returns how many there were. */
  dropAll(abrupt = false): number {
    const ends = [...this.#open];
    for (const end of ends) end(abrupt);
    return ends.length;
  }

  /** Validate and start a watch. Throws ApiError (before any byte is written) for HTTP-level failures. */
  serve(res: ServerResponse, w: WatchRequest): void {
    const rv = w.resourceVersion;
    if (rv !== null && rv !== "" && !/^\d+$/.test(rv)) throw errors.badRequest(`invalid resource version: ${JSON.stringify(rv)}`);
    const startRv = rv && rv !== "0" ? Number(rv) : undefined;
    const expiredError = () => errors.expired(startRv ?? 0, Math.max(this.store.compactedThrough + 1, (startRv ?? 0) + 1));
    const replay = startRv === undefined ? [] : this.store.since(startRv);
    const expiry = w.expiry ?? (replay === undefined ? this.tooOldForm : undefined);
    if (expiry === "http-410") throw expiredError();

    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    let columnsSent = false;
    const asTable = (obj: KubeObject) => {
      const table = toTable(w.rt, [obj], { resourceVersion: obj.metadata.resourceVersion });
      // Like the real server, only the first event of a table watch carries the column definitions.
      if (columnsSent) table.columnDefinitions = [];
      columnsSent = true;
      return table;
    };
    const write = (type: EventType, object: unknown) => {
      if (res.writableEnded || res.destroyed) return;
      const body = w.table && type !== "BOOKMARK" && type !== "ERROR" ? asTable(object as KubeObject) : object;
      res.write(`${JSON.stringify({ type, object: body })}\n`);
    };

    if (expiry === "error-event" || replay === undefined) {
      const e = expiredError();
      write("ERROR", failureStatus(e.code, e.reason, e.message));
      res.end();
      return;
    }

    const key = storageKey(w.rt);
    const inScope = (o: KubeObject) =>
      (w.namespace === undefined || o.metadata.namespace === w.namespace) && w.labelSelector(o) && w.fieldSelector(o);
    const deliver = (event: StoreEvent) => {
      if (event.resource !== key) return;
      const now = inScope(event.object);
      if (event.type !== "MODIFIED") {
        if (now) write(event.type, event.object);
        return;
      }
      const before = event.oldObject ? inScope(event.oldObject) : now;
      if (before && now) write("MODIFIED", event.object);
      else if (now) write("ADDED", event.object);
      else if (before) write("DELETED", event.object);
    };

    if (startRv === undefined) {
      for (const obj of this.store.list(key, w.namespace)) if (inScope(obj)) write("ADDED", obj);
    } else {
      for (const event of replay) deliver(event);
    }
    const unsubscribe = this.store.subscribe(deliver);

    const bookmark = () => write("BOOKMARK", { kind: w.rt.kind, apiVersion: apiVersionOf(w.rt), metadata: { resourceVersion: String(this.store.resourceVersion) } });
    const bookmarkTimer = w.allowBookmarks ? setInterval(bookmark, this.bookmarkIntervalMs) : undefined;
    const timeoutTimer = w.timeoutSeconds !== undefined
      ? setTimeout(() => {
        if (w.allowBookmarks) bookmark();
        end();
      }, w.timeoutSeconds * 1000)
      : undefined;

    const end = (abrupt = false) => {
      if (!this.#open.delete(end)) return;
      unsubscribe();
      clearInterval(bookmarkTimer);
      clearTimeout(timeoutTimer);
      if (abrupt) res.destroy();
      else if (!res.writableEnded) res.end();
    };
    this.#open.add(end);
    res.on("close", () => end());
  }
}
