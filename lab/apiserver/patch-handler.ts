// PATCH in its four flavours, chosen by Content-Type: server-side apply (creates when absent: 201),
// JSON merge patch, strategic merge patch (built-in kinds only, as on a real server) and JSON patch.
// Anything else is 415. A patch that carries metadata.resourceVersion is a precondition (409 when stale).

import { type IncomingMessage, type ServerResponse } from "node:http";
import { serverSideApply } from "./apply";
import { type ApiContext, checkTypeMeta, placeObject, requireObject, writeOptionsOf } from "./context";
import { ApiError, errors } from "./errors";
import { mediaType, parseJson, parseJsonOrYaml, sendJson, warningHeaders } from "./http-io";
import { jsonPatch } from "./json-patch";
import { isObject } from "./json";
import { mergePatch, strategicMergePatch } from "./merge-patch";
import { timestamp } from "./meta";
import { storageKey } from "./resources";
import { type RequestInfo } from "./request-info";
import { type Obj } from "./types";

const APPLY = "application/apply-patch+yaml";
const MERGE = "application/merge-patch+json";
const STRATEGIC = "application/strategic-merge-patch+json";
const JSON_PATCH = "application/json-patch+json";

function resourceVersionOf(obj: Obj): string | undefined {
  const rv = isObject(obj.metadata) ? obj.metadata.resourceVersion : undefined;
  return typeof rv === "string" && rv !== "" ? rv : undefined;
}

export async function handlePatch(ctx: ApiContext, info: RequestInfo, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const type = mediaType(req.headers["content-type"]);
  if (type === APPLY) return handleApply(ctx, info, req, res, body);
  if (type === STRATEGIC && !info.rt.builtin) throw errors.unsupportedMediaType(`${type} (strategic merge patch is not supported for custom resources)`);
  if (![MERGE, STRATEGIC, JSON_PATCH].includes(type)) throw errors.unsupportedMediaType(type);

  const patch = parseJson(body);
  if (type !== JSON_PATCH) requireObject(patch, "a merge patch");
  const w = writeOptionsOf(info, req, "PatchOptions");
  const updated = await ctx.writer.exclusive(async () => {
    const live = ctx.store.get(storageKey(info.rt), info.namespace, info.name ?? "");
    if (!live) throw errors.notFound(info.rt, info.name ?? "");
    const result = type === JSON_PATCH ? jsonPatch(live, patch) : type === MERGE ? mergePatch(live, patch) : strategicMergePatch(live, patch);
    if (!isObject(result)) throw new ApiError(422, "Invalid", "the patch did not produce an object");
    // The result shares what the patch did not touch with the frozen live object; placeObject below
    // writes to the top level and to metadata, so those two are always this request's own copies.
    const patched: Obj = { ...result };
    if (isObject(patched.metadata)) patched.metadata = { ...patched.metadata };
    checkTypeMeta(info.rt, patched);
    placeObject(info, patched);
    const rv = resourceVersionOf(patched);
    return ctx.writer.update(info.rt, live, patched, { ...w, ...(rv ? { resourceVersion: rv } : {}) });
  });
  sendJson(res, 200, updated, warningHeaders(w.warnings));
}

async function handleApply(ctx: ApiContext, info: RequestInfo, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const manager = info.query.get("fieldManager");
  if (!manager) {
    throw errors.badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
  }
  const force = info.query.get("force") === "true";
  const config = requireObject(parseJsonOrYaml(body), "an apply configuration");
  checkTypeMeta(info.rt, config, true);
  placeObject(info, config);
  const sentFields = isObject(config.metadata) ? config.metadata.managedFields : undefined;
  if (Array.isArray(sentFields) && sentFields.length > 0) throw errors.badRequest("metadata.managedFields must be nil");
  const rv = resourceVersionOf(config);
  const w = writeOptionsOf(info, req, "PatchOptions");
  w.admissionOptions = { ...w.admissionOptions, fieldManager: manager, force };
  const { object, created } = await ctx.writer.exclusive(async () => {
    const live = ctx.store.get(storageKey(info.rt), info.namespace, info.name ?? "");
    if (!live && info.subresource) throw errors.notFound(info.rt, info.name ?? "");
    if (!live && rv) throw errors.notFound(info.rt, info.name ?? "");
    const scope = info.subresource === "status" ? "status" : "main";
    const result = serverSideApply({ rt: info.rt, live, config, manager, force, scope, now: timestamp() });
    if (!live) {
      const meta = isObject(result.object.metadata) ? result.object.metadata : {};
      result.object.metadata = { ...meta, name: info.name, ...(info.namespace !== undefined ? { namespace: info.namespace } : {}) };
      return { object: await ctx.writer.create(info.rt, result.object, { ...w, managedFields: result.managedFields }), created: true };
    }
    const updated = await ctx.writer.update(info.rt, live, result.object, { ...w, managedFields: result.managedFields, ...(rv ? { resourceVersion: rv } : {}) });
    return { object: updated, created: false };
  });
  sendJson(res, created ? 201 : 200, object, warningHeaders(w.warnings));
}
