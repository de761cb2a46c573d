// Just enough OpenAPI for kubectl's default validation (--validate=strict). kubectl first loads the v2
// document (client-go decodes it as protobuf; an empty body is a valid, empty document), then asks the
// v3 document of each group/version whether PATCH supports the `fieldValidation` query parameter. When it
// does, kubectl leaves validation to the server instead of validating client-side against full schemas.

import { createHash } from "node:crypto";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { errors } from "./errors";
import { sendJson } from "./http-io";
import { type ResourceRegistry } from "./resources";
import { type Obj, type ResourceType } from "./types";

export const OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

const QUERY_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"];

function itemPath(rt: ResourceType): string {
  const base = `/${gvPath(rt.group, rt.version)}`;
  return rt.namespaced ? `${base}/namespaces/{namespace}/${rt.plural}/{name}` : `${base}/${rt.plural}/{name}`;
}

function operation(rt: ResourceType, action: string): Obj {
  return {
    operationId: `${action}${rt.kind}`,
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": { group: rt.group, version: rt.version, kind: rt.kind },
    parameters: QUERY_PARAMS.map((name) => ({ name, in: "query", schema: { type: name === "force" ? "boolean" : "string" }, uniqueItems: true })),
    responses: { "200": { description: "OK" } },
  };
}

export function openApiV3Document(registry: ResourceRegistry, group: string, version: string): Obj {
  const types = registry.all().filter((rt) => rt.group === group && rt.version === version);
  if (types.length === 0) throw errors.noSuchResource();
  const paths: Obj = {};
  for (const rt of types) {
    paths[itemPath(rt)] = { patch: operation(rt, "patch"), put: operation(rt, "put"), get: { ...operation(rt, "get"), parameters: [] } };
  }
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: "v1.32.0" }, paths, components: { schemas: {} } };
}

export function openApiV3Index(registry: ResourceRegistry): Obj {
  const paths: Obj = {};
  for (const [group, versions] of registry.groups()) {
    for (const version of versions) {
      const doc = JSON.stringify(openApiV3Document(registry, group, version));
      const hash = createHash("sha512").update(doc).digest("hex").slice(0, 64).toUpperCase();
      paths[gvPath(group, version)] = { serverRelativeURL: `/openapi/v3/${gvPath(group, version)}?hash=${hash}` };
    }
  }
  return { paths };
}

export function openApiV2Json(): Obj {
  return { swagger: "2.0", info: { title: "Kubernetes", version: "v1.32.0" }, paths: {}, definitions: {} };
}

/** GET /openapi/v2, /openapi/v3 and /openapi/v3/{api/v1 | apis/g/v}. */
export function serveOpenApi(registry: ResourceRegistry, segments: string[], req: IncomingMessage, res: ServerResponse): void {
  const [version, ...gv] = segments;
  if (version === "v2" && gv.length === 0) {
    if ((req.headers.accept ?? "").includes("protobuf")) {
      // An empty protobuf message is a valid, empty openapi_v2.Document.
      res.writeHead(200, { "Content-Type": OPENAPI_V2_PROTOBUF, "Content-Length": 0 });
      res.end();
      return;
    }
    return sendJson(res, 200, openApiV2Json());
  }
  if (version === "v3") {
    if (gv.length === 0) return sendJson(res, 200, openApiV3Index(registry));
    if (gv[0] === "api" && gv.length === 2) return sendJson(res, 200, openApiV3Document(registry, "", gv[1] as string));
    if (gv[0] === "apis" && gv.length === 3) return sendJson(res, 200, openApiV3Document(registry, gv[1] as string, gv[2] as string));
  }
  throw errors.noSuchResource();
}
