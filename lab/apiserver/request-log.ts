// Every API request the emulator served, classified by verb and resource, so tests can assert on traffic
// ("the informer rewatched without relisting", "no NodeNetwork plan was rewritten").

import { type Verb } from "./types";

export interface RequestRecord {
  method: string;
  path: string;
  /** Kubernetes verb, or "discovery" / "other" for non-resource paths. */
  verb: Verb | "discovery" | "other";
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  fieldManager?: string;
  contentType?: string;
  userAgent?: string;
  /** HTTP status; 0 while the response has not started. */
  status: number;
  at: number;
}

export type RequestFilter = Partial<Pick<RequestRecord, "verb" | "resource" | "subresource" | "namespace" | "name" | "fieldManager" | "status" | "method">>;

export class RequestLog {
  #records: RequestRecord[] = [];

  constructor(private readonly limit = 100_000) {}

  add(record: RequestRecord): RequestRecord {
    this.#records.push(record);
    if (this.#records.length > this.limit) this.#records.splice(0, this.#records.length - this.limit);
    return record;
  }

  /** Records matching every given field (an omitted field matches anything). */
  find(filter: RequestFilter = {}): RequestRecord[] {
    const entries = Object.entries(filter) as [keyof RequestFilter, unknown][];
    return this.#records.filter((r) => entries.every(([k, v]) => v === undefined || r[k] === v));
  }

  count(filter: RequestFilter = {}): number {
    return this.find(filter).length;
  }

  clear(): void {
    this.#records = [];
  }
}
