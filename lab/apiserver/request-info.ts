// From method + path + query to "which verb on which resource": the same classification the real server's
// RequestInfoResolver makes, plus the scope rules (a cluster-scoped kind under namespaces/{ns}/ is 404,
// a named namespaced object outside a namespace path is 404, a subresource the kind lacks is 404).

import { errors } from "./errors";
import { type ResourceRegistry } from "./resources";
import { type ResourceType, type Verb } from "./types";
import { type ResourceRoute } from "./url";

export interface RequestInfo {
  verb: Verb;
  rt: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: "status";
  query: URLSearchParams;
}

function isTrue(value: string | null): boolean {
  return value === "true" || value === "1";
}

export function resolveRequest(method: string, route: ResourceRoute, query: URLSearchParams, registry: ResourceRegistry): RequestInfo {
  const rt = registry.byPath(route.group, route.version, route.plural);
  if (!rt) throw errors.noSuchResource();
  if (route.namespace !== undefined && !rt.namespaced) throw errors.noSuchResource();
  if (rt.namespaced && route.namespace === undefined && route.name !== undefined) throw errors.noSuchResource();
  if (route.subresource !== undefined && (route.subresource !== "status" || !rt.hasStatus)) throw errors.noSuchResource();

  const info: RequestInfo = { verb: "get", rt, query };
  if (route.namespace !== undefined) info.namespace = route.namespace;
  if (route.name !== undefined) info.name = route.name;
  if (route.subresource === "status") info.subresource = "status";

  const named = route.name !== undefined;
  const watch = isTrue(query.get("watch"));
  switch (method) {
    case "GET":
      info.verb = watch ? "watch" : named ? "get" : "list";
      if (watch && info.subresource) throw errors.methodNotAllowed("watch on a subresource");
      break;
    case "POST":
      if (named || (rt.namespaced && route.namespace === undefined)) throw errors.methodNotAllowed(method);
      info.verb = "create";
      break;
    case "PUT":
      if (!named) throw errors.methodNotAllowed(method);
      info.verb = "update";
      break;
    case "PATCH":
      if (!named) throw errors.methodNotAllowed(method);
      info.verb = "patch";
      break;
    case "DELETE":
      if (info.subresource) throw errors.methodNotAllowed(method);
      if (!named && rt.namespaced && route.namespace === undefined) throw errors.methodNotAllowed(method);
      info.verb = named ? "delete" : "deletecollection";
      break;
    default:
      throw errors.methodNotAllowed(method);
  }
  return info;
}
