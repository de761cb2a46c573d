// Legacy (non-aggregated) discovery: /api, /apis, /apis/{g}, /api/v1, /apis/{g}/{v}, and /version.
// kubectl asks for aggregated discovery first and falls back to these when the answer is plain JSON;
// client-node's KubernetesObjectApi resolves kind -> plural and scope through /api/v1 and /apis/{g}/{v}.

import { errors } from "./errors";
import { type ResourceRegistry } from "./resources";
import { type Obj } from "./types";

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export const SERVER_VERSION = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-switchyard-lab",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2025-01-01T00:00:00Z",
  goVersion: "go1.23.4",
  compiler: "gc",
  platform: "linux/amd64",
};

export function apiVersions(address: string): Obj {
  return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: address }] };
}

function groupEntry(name: string, versions: string[]): Obj {
  const list = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: list, preferredVersion: list[0] };
}

export function apiGroupList(registry: ResourceRegistry): Obj {
  const groups = [...registry.groups()].filter(([g]) => g !== "").map(([g, versions]) => groupEntry(g, versions));
  return { kind: "APIGroupList", apiVersion: "v1", groups };
}

export function apiGroup(registry: ResourceRegistry, group: string): Obj {
  const versions = registry.groups().get(group);
  if (!group || !versions) throw errors.noSuchResource();
  return { kind: "APIGroup", apiVersion: "v1", ...groupEntry(group, versions) };
}

export function apiResourceList(registry: ResourceRegistry, group: string, version: string): Obj {
  const types = registry.all().filter((rt) => rt.group === group && rt.version === version);
  if (types.length === 0) throw errors.noSuchResource();
  const resources: Obj[] = [];
  for (const rt of types) {
    const entry: Obj = { name: rt.plural, singularName: rt.singular, namespaced: rt.namespaced, kind: rt.kind, verbs: VERBS };
    if (rt.shortNames.length > 0) entry.shortNames = rt.shortNames;
    if (rt.categories.length > 0) entry.categories = rt.categories;
    resources.push(entry);
    if (rt.hasStatus) resources.push({ name: `${rt.plural}/status`, singularName: "", namespaced: rt.namespaced, kind: rt.kind, verbs: ["get", "patch", "update"] });
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group ? `${group}/${version}` : version, resources };
}
