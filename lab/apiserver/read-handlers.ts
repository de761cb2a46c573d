// GET of one object, lists (selectors, limit/continue, tables for kubectl) and watches.

import { type IncomingMessage, type ServerResponse } from "node:http";
import { type ApiContext } from "./context";
import { errors } from "./errors";
import { type ExpireMode } from "./faults";
import { sendJson } from "./http-io";
import { apiVersionOf, storageKey } from "./resources";
import { type RequestInfo } from "./request-info";
import { parseFieldSelector, parseLabelSelector } from "./selectors";
import { toTable, wantsTable } from "./table";
import { type KubeObject, type Obj } from "./types";

export function handleGet(ctx: ApiContext, info: RequestInfo, req: IncomingMessage, res: ServerResponse): void {
  const obj = ctx.store.get(storageKey(info.rt), info.namespace, info.name ?? "");
  if (!obj) throw errors.notFound(info.rt, info.name ?? "");
  if (wantsTable(req.headers.accept)) {
    sendJson(res, 200, toTable(info.rt, [obj], { resourceVersion: obj.metadata.resourceVersion }));
  } else sendJson(res, 200, obj);
}

interface ContinueToken {
  after: string;
}

function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify(token)).toString("base64url");
}

function decodeContinue(text: string): ContinueToken {
  try {
    const token = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as ContinueToken;
    if (typeof token.after === "string") return token;
  } catch {
    // fall through
  }
  throw errors.badRequest("invalid continue token");
}

const positionOf = (o: KubeObject) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;

/** Objects in scope of the request that match its label and field selectors. */
export function selectObjects(ctx: ApiContext, info: RequestInfo): KubeObject[] {
  const labels = parseLabelSelector(info.query.get("labelSelector"));
  const fields = parseFieldSelector(info.query.get("fieldSelector"), info.rt);
  return ctx.store.list(storageKey(info.rt), info.namespace).filter((o) => labels(o) && fields(o));
}

export function handleList(ctx: ApiContext, info: RequestInfo, req: IncomingMessage, res: ServerResponse): void {
  const resourceVersion = String(ctx.store.resourceVersion);
  let items = selectObjects(ctx, info);
  const cont = info.query.get("continue");
  if (cont) {
    const { after } = decodeContinue(cont);
    items = items.filter((o) => positionOf(o) > after);
  }
  const meta: Obj = { resourceVersion };
  const limit = Number(info.query.get("limit") ?? "0");
  if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
    meta.remainingItemCount = items.length - limit;
    items = items.slice(0, limit);
    meta.continue = encodeContinue({ after: positionOf(items[items.length - 1] as KubeObject) });
  }
  if (wantsTable(req.headers.accept)) {
    sendJson(res, 200, toTable(info.rt, items, meta));
    return;
  }
  const strip = ctx.realisticLists && info.rt.builtin;
  sendJson(res, 200, {
    kind: info.rt.listKind,
    apiVersion: apiVersionOf(info.rt),
    metadata: meta,
    items: strip ? items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest) : items,
  });
}

export function handleWatch(ctx: ApiContext, info: RequestInfo, req: IncomingMessage, res: ServerResponse, expiry: ExpireMode | undefined): void {
  const q = info.query;
  const fieldText = [q.get("fieldSelector"), info.name !== undefined ? `metadata.name=${info.name}` : null].filter(Boolean).join(",");
  const timeout = q.get("timeoutSeconds");
  ctx.watches.serve(res, {
    rt: info.rt,
    ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
    labelSelector: parseLabelSelector(q.get("labelSelector")),
    fieldSelector: parseFieldSelector(fieldText, info.rt),
    resourceVersion: q.get("resourceVersion"),
    allowBookmarks: q.get("allowWatchBookmarks") === "true",
    ...(timeout !== null && /^\d+$/.test(timeout) ? { timeoutSeconds: Number(timeout) } : {}),
    ...(expiry ? { expiry } : {}),
    ...(wantsTable(req.headers.accept) ? { table: true } : {}),
  });
}
