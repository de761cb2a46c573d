// Helpers for tests that drive the emulator: read a raw watch stream line by line, raw requests.

import { type Obj } from "../../lab/apiserver/types";
import { waitFor } from "../../src/base/wait";

export interface WatchLine {
  type: string;
  object: Obj & { metadata?: Obj & { name?: string; resourceVersion?: string } };
}

export interface RawWatch {
  status: number;
  /** Every event received so far, in order. */
  events: WatchLine[];
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  /** Wait until at least `count` events arrived; returns them all. */
  waitForCount(count: number, timeoutMs?: number): Promise<WatchLine[]>;
  close(): void;
}

/** Open `GET url` (a watch URL) and collect its newline-delimited events. */
export async function openWatch(url: string): Promise<RawWatch> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  const events: WatchLine[] = [];
  let finished = false;
  const ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        const lines = buffer.split("\n");
        buffer = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as WatchLine);
      }
    } catch {
      // aborted by close()
    } finally {
      finished = true;
    }
  })();
  return {
    status: response.status,
    events,
    ended,
    waitForCount: (count, timeoutMs = 5_000) =>
      waitFor(`${count} watch events`, () => (events.length >= count ? events : finished ? Promise.reject(new Error(`stream ended after ${events.length} of ${count} events: ${JSON.stringify(events.map((e) => e.type))}`)) : undefined), timeoutMs, 20),
    close: () => controller.abort(),
  };
}

/** The fields tests usually look at in an API response body (objects, lists, Status, tables). */
export interface ApiBody {
  kind?: string;
  apiVersion?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    finalizers?: string[];
    managedFields?: { manager: string; operation: string; subresource?: string; fieldsV1: Obj; time: string }[];
    continue?: string;
    remainingItemCount?: number;
  };
  items?: ApiBody[];
  spec?: Obj;
  status?: Obj | string;
  data?: Record<string, string>;
  reason?: string;
  code?: number;
  message?: string;
  details?: { name?: string; kind?: string; group?: string; causes?: { reason: string; message: string; field?: string }[] };
  [key: string]: unknown;
}

export interface ApiResponse {
  status: number;
  contentType: string;
  headers: Headers;
  body: ApiBody;
}

/** A minimal client for raw requests against the emulator. */
export function rawClient(baseUrl: string) {
  return async (method: string, path: string, body?: unknown, contentType = "application/json", headers: Record<string, string> = {}): Promise<ApiResponse> => {
    const init: RequestInit = { method, headers: { ...headers, ...(body !== undefined ? { "Content-Type": contentType } : {}) } };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    const res = await fetch(baseUrl + path, init);
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", headers: res.headers, body: (text ? JSON.parse(text) : {}) as ApiBody };
  };
}
