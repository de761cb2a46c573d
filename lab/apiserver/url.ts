// Request paths to routes. The one subtle case: under the core group `namespaces/{name}` is the Namespace
// object itself (and `namespaces/{name}/status|finalize` its subresources), while `namespaces/{ns}/{plural}/…`
// scopes a namespaced resource.

export interface ResourceRoute {
  type: "resource";
  group: string;
  version: string;
  plural: string;
  /** Set when the path carried `namespaces/{ns}/` in front of the resource. */
  namespace?: string;
  name?: string;
  subresource?: string;
}

export type Route =
  | { type: "version" }
  | { type: "api" }
  | { type: "apis" }
  | { type: "group"; group: string }
  | { type: "groupVersion"; group: string; version: string }
  | { type: "openapi"; segments: string[] }
  | ResourceRoute
  | { type: "unknown" };

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

function resourceRoute(group: string, version: string, rest: string[]): Route {
  const route = (plural: string | undefined, extra: Partial<ResourceRoute>): Route =>
    plural ? { type: "resource", group, version, plural, ...extra } : { type: "unknown" };
  if (rest[0] === "namespaces" && rest.length >= 2) {
    const ns = rest[1] as string;
    if (rest.length === 2) return group === "" ? route("namespaces", { name: ns }) : { type: "unknown" };
    if (rest.length === 3 && group === "" && NAMESPACE_SUBRESOURCES.has(rest[2] as string)) {
      return route("namespaces", { name: ns, subresource: rest[2] });
    }
    if (rest.length > 5) return { type: "unknown" };
    return route(rest[2], { namespace: ns, ...(rest[3] ? { name: rest[3] } : {}), ...(rest[4] ? { subresource: rest[4] } : {}) });
  }
  if (rest.length === 0 || rest.length > 3) return { type: "unknown" };
  return route(rest[0], { ...(rest[1] ? { name: rest[1] } : {}), ...(rest[2] ? { subresource: rest[2] } : {}) });
}

export function parsePath(pathname: string): Route {
  let segments: string[];
  try {
    segments = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return { type: "unknown" };
  }
  const [root, a, b, ...rest] = segments;
  if (root === "version" && segments.length === 1) return { type: "version" };
  if (root === "openapi") return { type: "openapi", segments: segments.slice(1) };
  if (root === "api") {
    if (a === undefined) return { type: "api" };
    if (b === undefined) return { type: "groupVersion", group: "", version: a };
    return resourceRoute("", a, [b, ...rest]);
  }
  if (root === "apis") {
    if (a === undefined) return { type: "apis" };
    if (b === undefined) return { type: "group", group: a };
    if (rest.length === 0) return { type: "groupVersion", group: a, version: b };
    return resourceRoute(a, b, rest);
  }
  return { type: "unknown" };
}
