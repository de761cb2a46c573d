// The emulator's REST surface over raw HTTP: URL layout, verbs, selectors, resourceVersion/generation
// rules and error bodies, as the reference (shared/reference/apiserver-emulator.md §2-§4, §6) lists them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { type ApiBody, rawClient } from "../../support/apiserver";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;

beforeAll(async () => {
  server = await startApiServer();
  call = rawClient(server.url);
  await call("POST", "/api/v1/namespaces", { metadata: { name: "rest" } });
  await call("POST", "/api/v1/namespaces", { metadata: { name: "other" } });
});
afterAll(() => server.close());

const cm = (name: string, labels: Record<string, string> = {}, data: Record<string, string> = { k: "v" }) => ({
  apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels }, data,
});
const names = (body: ApiBody) => (body.items ?? []).map((i) => i.metadata?.name);

describe("URL layout", () => {
  it("serves the Namespace object itself at /api/v1/namespaces/{name}", async () => {
    const r = await call("GET", "/api/v1/namespaces/rest");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kind: "Namespace", metadata: { name: "rest" }, status: { phase: "Active" } });
  });

  it("lists a namespaced kind per namespace and cluster-wide", async () => {
    await call("POST", "/api/v1/namespaces/rest/configmaps", cm("layout-a"));
    await call("POST", "/api/v1/namespaces/other/configmaps", cm("layout-b"));
    const inRest = await call("GET", "/api/v1/namespaces/rest/configmaps");
    expect(names(inRest.body)).toContain("layout-a");
    expect(names(inRest.body)).not.toContain("layout-b");
    const all = await call("GET", "/api/v1/configmaps");
    expect(all.body.kind).toBe("ConfigMapList");
    expect(names(all.body)).toEqual(expect.arrayContaining(["layout-a", "layout-b"]));
  });

  it.each([
    ["an unknown resource", "GET", "/api/v1/widgets", 404],
    ["an unknown group", "GET", "/apis/nope.example/v1/things", 404],
    ["a cluster-scoped kind under a namespace", "GET", "/apis/switchyard.dev/v1alpha1/namespaces/rest/clusternetworks", 404],
    ["a namespaced object without its namespace", "GET", "/api/v1/configmaps/layout-a", 404],
    ["a status subresource the kind lacks", "GET", "/api/v1/namespaces/rest/configmaps/layout-a/status", 404],
    ["a create on the cluster-wide path of a namespaced kind", "POST", "/api/v1/configmaps", 405],
  ])("rejects %s", async (_what, method, path, code) => {
    const r = await call(method, path, method === "POST" ? cm("x") : undefined);
    expect(r.status).toBe(code);
    expect(r.contentType).toBe("application/json");
    expect(r.body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code });
  });

  it("rejects a body whose namespace differs from the URL (400)", async () => {
    const r = await call("POST", "/api/v1/namespaces/rest/configmaps", { ...cm("mismatch"), metadata: { name: "mismatch", namespace: "other" } });
    expect(r.status).toBe(400);
    expect(r.body.reason).toBe("BadRequest");
  });

  it("answers 404 NotFound with name and kind for a missing object", async () => {
    const r = await call("GET", "/api/v1/namespaces/rest/configmaps/nope");
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ reason: "NotFound", message: 'configmaps "nope" not found', details: { name: "nope", kind: "configmaps" } });
  });

  it("answers 404 when creating in a namespace that does not exist", async () => {
    const r = await call("POST", "/api/v1/namespaces/ghost/configmaps", cm("x"));
    expect(r.status).toBe(404);
    expect(r.body.message).toBe('namespaces "ghost" not found');
  });
});

describe("create", () => {
  it("sets uid, resourceVersion, creationTimestamp and generation=1, and answers 201", async () => {
    const r = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("create-1"));
    expect(r.status).toBe(201);
    const meta = r.body.metadata;
    expect(meta?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(meta?.resourceVersion).toMatch(/^\d+$/);
    expect(meta?.generation).toBe(1);
    expect(meta?.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(meta?.managedFields?.[0]).toMatchObject({ manager: "node", operation: "Update", time: meta?.creationTimestamp, fieldsV1: { "f:data": { "f:k": {} } } });
  });

  it("answers 409 AlreadyExists for a duplicate", async () => {
    const r = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("create-1"));
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ reason: "AlreadyExists", details: { name: "create-1", kind: "configmaps" } });
  });

  it("gives a re-created object a new uid", async () => {
    const first = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("again"));
    await call("DELETE", "/api/v1/namespaces/rest/configmaps/again");
    const second = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("again"));
    expect(second.status).toBe(201);
    expect(second.body.metadata?.uid).not.toBe(first.body.metadata?.uid);
  });

  it("names an object from generateName", async () => {
    const r = await call("POST", "/api/v1/namespaces/rest/configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { generateName: "gen-" } });
    expect(r.status).toBe(201);
    expect(r.body.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
  });

  it("writes nothing for dryRun=All but answers as if it had", async () => {
    const rv = server.store.resourceVersion;
    const r = await call("POST", "/api/v1/namespaces/rest/configmaps?dryRun=All", cm("dry"));
    expect(r.status).toBe(201);
    expect(r.body.metadata?.uid).toBeTruthy();
    expect((await call("GET", "/api/v1/namespaces/rest/configmaps/dry")).status).toBe(404);
    expect(server.store.resourceVersion).toBe(rv);
  });

  it("rejects an invalid name with 422 Invalid", async () => {
    const r = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("Not_A_Name"));
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe("Invalid");
    expect(r.body.details?.causes?.[0]?.field).toBe("metadata.name");
  });
});

describe("resourceVersion", () => {
  it("is one global integer counter, bumped by every write to any resource", async () => {
    const a = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("rv-a"));
    const b = await call("POST", "/apis/networking.k8s.io/v1/namespaces/rest/networkpolicies", {
      apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "rv-b" }, spec: { podSelector: {} },
    });
    const list = await call("GET", "/api/v1/namespaces/rest/configmaps");
    const rvA = Number(a.body.metadata?.resourceVersion);
    const rvB = Number(b.body.metadata?.resourceVersion);
    expect(rvB).toBe(rvA + 1);
    expect(list.body.metadata?.resourceVersion).toBe(String(rvB));
  });

  it("does not move for a write that changes nothing", async () => {
    const created = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("noop"));
    const patched = await call("PATCH", "/api/v1/namespaces/rest/configmaps/noop", { data: { k: "v" } }, "application/merge-patch+json");
    expect(patched.status).toBe(200);
    expect(patched.body.metadata?.resourceVersion).toBe(created.body.metadata?.resourceVersion);
  });
});

describe("selectors", () => {
  beforeAll(async () => {
    await call("POST", "/api/v1/namespaces", { metadata: { name: "sel" } });
    await call("POST", "/api/v1/namespaces/sel/configmaps", cm("web", { app: "web", tier: "front" }));
    await call("POST", "/api/v1/namespaces/sel/configmaps", cm("db", { app: "db" }));
    await call("POST", "/api/v1/namespaces/sel/configmaps", cm("cache", { app: "cache", tier: "back" }));
    await call("POST", "/api/v1/namespaces/sel/configmaps", cm("bare"));
  });

  it.each([
    ["", ["bare", "cache", "db", "web"]],
    ["app=web", ["web"]],
    ["app==web", ["web"]],
    ["app!=web", ["bare", "cache", "db"]],
    ["tier", ["cache", "web"]],
    ["!tier", ["bare", "db"]],
    ["app in (web,db)", ["db", "web"]],
    ["app notin (web, db)", ["bare", "cache"]],
    ["app=web,tier", ["web"]],
    ["app,tier=back", ["cache"]],
  ])("labelSelector %j selects %j", async (selector, expected) => {
    const r = await call("GET", `/api/v1/namespaces/sel/configmaps?labelSelector=${encodeURIComponent(selector)}`);
    expect(r.status).toBe(200);
    expect(names(r.body)).toEqual(expected);
  });

  it("rejects a malformed label selector with 400", async () => {
    const r = await call("GET", `/api/v1/namespaces/sel/configmaps?labelSelector=${encodeURIComponent("app in web")}`);
    expect(r.status).toBe(400);
  });

  it.each([
    ["metadata.name=db", ["db"]],
    ["metadata.name!=db", ["bare", "cache", "web"]],
    ["metadata.namespace=sel,metadata.name==web", ["web"]],
  ])("fieldSelector %j selects %j", async (selector, expected) => {
    const r = await call("GET", `/api/v1/namespaces/sel/configmaps?fieldSelector=${encodeURIComponent(selector)}`);
    expect(names(r.body)).toEqual(expected);
  });

  it("selects pods by spec.nodeName, with labels, the way kfc encodes it", async () => {
    for (const [name, node] of [["p1", "n1"], ["p2", "n2"]] as const) {
      await call("POST", "/api/v1/namespaces/sel/pods", {
        apiVersion: "v1", kind: "Pod", metadata: { name, labels: { app: "web", tier: "x" } }, spec: { nodeName: node, containers: [{ name: "c", image: "i" }] },
      });
    }
    const r = await call("GET", "/api/v1/namespaces/sel/pods?fieldSelector=spec.nodeName%3Dn1&labelSelector=app%3Dweb%2Ctier");
    expect(names(r.body)).toEqual(["p1"]);
  });

  it("rejects a field the kind does not make selectable (400), like the real server", async () => {
    const r = await call("GET", "/api/v1/namespaces/sel/configmaps?fieldSelector=data.k%3Dv");
    expect(r.status).toBe(400);
    expect(r.body.message).toBe("field label not supported: data.k");
  });

  it("pages with limit and continue", async () => {
    const first = await call("GET", "/api/v1/namespaces/sel/configmaps?limit=3");
    expect(names(first.body)).toEqual(["bare", "cache", "db"]);
    expect(first.body.metadata?.remainingItemCount).toBe(1);
    const token = first.body.metadata?.continue ?? "";
    const second = await call("GET", `/api/v1/namespaces/sel/configmaps?limit=3&continue=${token}`);
    expect(names(second.body)).toEqual(["web"]);
    expect(second.body.metadata?.continue).toBeUndefined();
  });
});

describe("update (PUT)", () => {
  it("answers 409 Conflict for a stale resourceVersion and 200 for the current one", async () => {
    const created = await call("POST", "/api/v1/namespaces/rest/configmaps", cm("put-1"));
    const first = await call("PUT", "/api/v1/namespaces/rest/configmaps/put-1", { ...created.body, data: { k: "v2" } });
    expect(first.status).toBe(200);
    expect(Number(first.body.metadata?.resourceVersion)).toBeGreaterThan(Number(created.body.metadata?.resourceVersion));
    const stale = await call("PUT", "/api/v1/namespaces/rest/configmaps/put-1", { ...created.body, data: { k: "v3" } });
    expect(stale.status).toBe(409);
    expect(stale.body.reason).toBe("Conflict");
    expect(stale.body.message).toContain("the object has been modified");
  });

  it("rejects a body whose name differs from the URL (400)", async () => {
    const r = await call("PUT", "/api/v1/namespaces/rest/configmaps/put-1", cm("another"));
    expect(r.status).toBe(400);
  });
});

describe("generation and the status subresource", () => {
  const cn = (mode: string, labels: Record<string, string> = {}) => ({
    apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "gen", labels },
    spec: { podCIDRs: ["10.244.0.0/16"], mode }, status: { phase: "Ignored" },
  });
  const path = "/apis/switchyard.dev/v1alpha1/clusternetworks/gen";

  it("drops .status on create for a kind with a status subresource", async () => {
    const r = await call("POST", "/apis/switchyard.dev/v1alpha1/clusternetworks", cn("vxlan"));
    expect(r.status).toBe(201);
    expect(r.body.status).toBeUndefined();
    expect(r.body.metadata?.generation).toBe(1);
  });

  it("bumps generation for a spec change only, and ignores .status on the main resource", async () => {
    const labelled = await call("PATCH", path, { metadata: { labels: { a: "b" } }, status: { phase: "Nope" } }, "application/merge-patch+json");
    expect(labelled.body.metadata?.generation).toBe(1);
    expect(labelled.body.status).toBeUndefined();
    const moved = await call("PATCH", path, { spec: { mode: "ipip" } }, "application/merge-patch+json");
    expect(moved.body.metadata?.generation).toBe(2);
  });

  it("changes only .status through /status: generation stays, resourceVersion moves", async () => {
    const before = await call("GET", path);
    const r = await call("PATCH", `${path}/status`, { spec: { mode: "bgp" }, status: { phase: "Ready" } }, "application/merge-patch+json");
    expect(r.status).toBe(200);
    expect(r.body.status).toEqual({ phase: "Ready" });
    expect(r.body.spec?.mode).toBe("ipip");
    expect(r.body.metadata?.generation).toBe(before.body.metadata?.generation);
    expect(Number(r.body.metadata?.resourceVersion)).toBeGreaterThan(Number(before.body.metadata?.resourceVersion));
    const put = await call("PUT", `${path}/status`, { ...r.body, status: { phase: "Degraded" } });
    expect(put.body.status).toEqual({ phase: "Degraded" });
  });
});

describe("patch", () => {
  const pod = {
    apiVersion: "v1", kind: "Pod", metadata: { name: "patchme", labels: { a: "1", b: "2" } },
    spec: { containers: [{ name: "app", image: "app:1" }, { name: "side", image: "side:1" }] },
  };
  const path = "/api/v1/namespaces/rest/pods/patchme";
  beforeAll(async () => {
    await call("POST", "/api/v1/namespaces/rest/pods", pod);
  });

  it("merge patch (RFC 7386): maps merge, null removes", async () => {
    const r = await call("PATCH", path, { metadata: { labels: { a: null, c: "3" } } }, "application/merge-patch+json");
    expect(r.body.metadata?.labels).toEqual({ b: "2", c: "3" });
  });

  it("strategic merge patch merges lists of named objects by name", async () => {
    const r = await call("PATCH", path, { spec: { containers: [{ name: "side", image: "side:2" }] } }, "application/strategic-merge-patch+json");
    expect(r.status).toBe(200);
    expect(r.body.spec?.containers).toEqual([{ name: "app", image: "app:1" }, { name: "side", image: "side:2" }]);
  });

  it("refuses strategic merge patch on a custom resource (415), like the real server", async () => {
    const r = await call("PATCH", "/apis/switchyard.dev/v1alpha1/clusternetworks/gen", { spec: {} }, "application/strategic-merge-patch+json");
    expect(r.status).toBe(415);
  });

  it("json patch (RFC 6902) applies every op", async () => {
    const r = await call("PATCH", path, [
      { op: "test", path: "/metadata/labels/b", value: "2" },
      { op: "add", path: "/metadata/labels/d", value: "4" },
      { op: "replace", path: "/spec/containers/0/image", value: "app:2" },
      { op: "remove", path: "/metadata/labels/c" },
      { op: "copy", from: "/metadata/labels/d", path: "/metadata/labels/e" },
      { op: "move", from: "/metadata/labels/e", path: "/metadata/labels/f" },
    ], "application/json-patch+json");
    expect(r.status).toBe(200);
    expect(r.body.metadata?.labels).toEqual({ b: "2", d: "4", f: "4" });
    expect((r.body.spec?.containers as { image: string }[])[0]?.image).toBe("app:2");
  });

  it("json patch with a failing test answers 422 and changes nothing", async () => {
    const before = await call("GET", path);
    const r = await call("PATCH", path, [{ op: "test", path: "/metadata/labels/b", value: "nope" }, { op: "remove", path: "/metadata/labels/b" }], "application/json-patch+json");
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe("Invalid");
    const after = await call("GET", path);
    expect(after.body.metadata?.resourceVersion).toBe(before.body.metadata?.resourceVersion);
  });

  it("answers 415 for an unknown patch type", async () => {
    const r = await call("PATCH", path, { spec: {} }, "text/plain");
    expect(r.status).toBe(415);
    expect(r.body.reason).toBe("UnsupportedMediaType");
  });

  it("treats a resourceVersion in a merge patch as a precondition (409 when stale)", async () => {
    const r = await call("PATCH", path, { metadata: { resourceVersion: "1", labels: { z: "1" } } }, "application/merge-patch+json");
    expect(r.status).toBe(409);
  });
});
