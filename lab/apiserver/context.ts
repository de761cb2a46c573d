// What a request handler can reach, and the request-level helpers every write handler shares.

import { type IncomingMessage } from "node:http";
import { errors } from "./errors";
import { type Faults } from "./faults";
import { isObject } from "./json";
import { apiVersionOf, type ResourceRegistry } from "./resources";
import { type RequestInfo } from "./request-info";
import { type ObjectStore } from "./store";
import { type Obj, type ResourceType } from "./types";
import { type WatchHub } from "./watch";
import { type FieldValidation, type WriteOptions, type Writer } from "./writer";

export interface ApiContext {
  store: ObjectStore;
  registry: ResourceRegistry;
  writer: Writer;
  watches: WatchHub;
  faults: Faults;
  /** Strip kind/apiVersion from items of built-in lists, as a real server does. */
  realisticLists: boolean;
}

/** The field manager of a write: ?fieldManager=, else the User-Agent up to its first "/", like the real server. */
export function fieldManagerOf(query: URLSearchParams, req: IncomingMessage): string {
  const explicit = query.get("fieldManager");
  if (explicit) return explicit;
  const agent = req.headers["user-agent"] ?? "";
  return (agent.split("/")[0] ?? "").slice(0, 128) || "unknown";
}

export function requireObject(value: unknown, what = "the request body"): Obj {
  if (!isObject(value)) throw errors.badRequest(`${what} must be a JSON object`);
  return value;
}

/** Reject a body whose apiVersion/kind name a different resource than the URL. */
export function checkTypeMeta(rt: ResourceType, body: Obj, required = false): void {
  const want = apiVersionOf(rt);
  if (required && (typeof body.apiVersion !== "string" || typeof body.kind !== "string")) {
    throw errors.badRequest("invalid object: apiVersion and kind must be set");
  }
  if (body.apiVersion !== undefined && body.apiVersion !== want) {
    throw errors.badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${want})`);
  }
  if (body.kind !== undefined && body.kind !== rt.kind) {
    throw errors.badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${rt.kind})`);
  }
}

/** Settle metadata.name/namespace of a body against the URL; returns the body's metadata object. */
export function placeObject(info: RequestInfo, body: Obj): Obj {
  const meta = isObject(body.metadata) ? body.metadata : {};
  body.metadata = meta;
  if (info.name !== undefined) {
    if (meta.name !== undefined && meta.name !== info.name) {
      throw errors.badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${info.name})`);
    }
    meta.name = info.name;
  }
  if (info.rt.namespaced) {
    if (meta.namespace !== undefined && meta.namespace !== "" && meta.namespace !== info.namespace) {
      throw errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    meta.namespace = info.namespace;
  } else delete meta.namespace;
  return meta;
}

export function isDryRun(query: URLSearchParams): boolean {
  return query.getAll("dryRun").includes("All");
}

const FIELD_VALIDATION = new Set(["Strict", "Warn", "Ignore"]);

/** The options every write shares, read from the request: manager, dryRun, fieldValidation, a warnings sink. */
export function writeOptionsOf(info: RequestInfo, req: IncomingMessage, optionsKind: string): WriteOptions & { warnings: string[] } {
  const fv = info.query.get("fieldValidation");
  if (fv !== null && !FIELD_VALIDATION.has(fv)) throw errors.badRequest(`fieldValidation: Unsupported value: "${fv}": supported values: "Ignore", "Strict", "Warn"`);
  return {
    manager: fieldManagerOf(info.query, req),
    dryRun: isDryRun(info.query),
    admissionOptions: { kind: optionsKind, apiVersion: "meta.k8s.io/v1" },
    ...(fv ? { fieldValidation: fv as FieldValidation } : {}),
    ...(info.subresource ? { subresource: info.subresource } : {}),
    warnings: [],
  };
}
