// POST, PUT and DELETE. Each read-modify-write runs inside writer.exclusive so it sees the latest state.

import { type IncomingMessage, type ServerResponse } from "node:http";
import { type ApiContext, checkTypeMeta, isDryRun, placeObject, requireObject, writeOptionsOf } from "./context";
import { errors, successStatus, type StatusDetails } from "./errors";
import { parseJson, sendJson, warningHeaders } from "./http-io";
import { isObject } from "./json";
import { selectObjects } from "./read-handlers";
import { storageKey } from "./resources";
import { type RequestInfo } from "./request-info";
import { type KubeObject, type Obj } from "./types";
import { type DeleteOptions } from "./writer";

export async function handleCreate(ctx: ApiContext, info: RequestInfo, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const obj = requireObject(parseJson(body));
  checkTypeMeta(info.rt, obj);
  placeObject(info, obj);
  const w = writeOptionsOf(info, req, "CreateOptions");
  const created = await ctx.writer.exclusive(() => ctx.writer.create(info.rt, obj, w));
  sendJson(res, 201, created, warningHeaders(w.warnings));
}

export async function handleUpdate(ctx: ApiContext, info: RequestInfo, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const obj = requireObject(parseJson(body));
  checkTypeMeta(info.rt, obj);
  const meta = placeObject(info, obj);
  const w = writeOptionsOf(info, req, "UpdateOptions");
  if (typeof meta.resourceVersion === "string" && meta.resourceVersion) w.resourceVersion = meta.resourceVersion;
  const updated = await ctx.writer.exclusive(async () => {
    const live = ctx.store.get(storageKey(info.rt), info.namespace, info.name ?? "");
    if (!live) throw errors.notFound(info.rt, info.name ?? "");
    return ctx.writer.update(info.rt, live, obj, w);
  });
  sendJson(res, 200, updated, warningHeaders(w.warnings));
}

function deleteOptionsOf(info: RequestInfo, body: Buffer): DeleteOptions {
  const opts: DeleteOptions = { dryRun: isDryRun(info.query) };
  if (body.length === 0) return opts;
  const parsed = requireObject(parseJson(body), "DeleteOptions");
  if (Array.isArray(parsed.dryRun) && parsed.dryRun.includes("All")) opts.dryRun = true;
  if (isObject(parsed.preconditions)) {
    const { uid, resourceVersion } = parsed.preconditions;
    opts.preconditions = {
      ...(typeof uid === "string" ? { uid } : {}),
      ...(typeof resourceVersion === "string" ? { resourceVersion } : {}),
    };
  }
  return opts;
}

function deletedDetails(info: RequestInfo, obj: KubeObject): StatusDetails {
  return { name: obj.metadata.name, kind: info.rt.plural, uid: obj.metadata.uid, ...(info.rt.group ? { group: info.rt.group } : {}) };
}

export async function handleDelete(ctx: ApiContext, info: RequestInfo, res: ServerResponse, body: Buffer): Promise<void> {
  const opts = deleteOptionsOf(info, body);
  const { object, gone } = await ctx.writer.exclusive(async () => {
    const live = ctx.store.get(storageKey(info.rt), info.namespace, info.name ?? "");
    if (!live) throw errors.notFound(info.rt, info.name ?? "");
    return ctx.writer.delete(info.rt, live, opts);
  });
  if (gone && !info.rt.returnDeletedObject) sendJson(res, 200, successStatus(deletedDetails(info, object)));
  else sendJson(res, 200, object);
}

export async function handleDeleteCollection(ctx: ApiContext, info: RequestInfo, res: ServerResponse, body: Buffer): Promise<void> {
  const opts = deleteOptionsOf(info, body);
  const items: Obj[] = await ctx.writer.exclusive(async () => {
    const out: Obj[] = [];
    for (const obj of selectObjects(ctx, info)) out.push((await ctx.writer.delete(info.rt, obj, opts)).object);
    return out;
  });
  sendJson(res, 200, { kind: info.rt.listKind, apiVersion: info.rt.group ? `${info.rt.group}/${info.rt.version}` : info.rt.version, metadata: { resourceVersion: String(ctx.store.resourceVersion) }, items });
}
