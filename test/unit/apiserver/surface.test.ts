// Transport, discovery, OpenAPI stubs, Table output, fault injection and the request log, over raw HTTP.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { rawClient } from "../../support/apiserver";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;

beforeAll(async () => {
  server = await startApiServer();
  call = rawClient(server.url);
});
afterAll(() => server.close());

const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

describe("transport", () => {
  it("listens on 127.0.0.1 with an ephemeral port and writes a kubeconfig the clients accept", () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect(server.port).toBeGreaterThan(0);
    const kc = parse(readFileSync(server.kubeconfigPath, "utf8")) as {
      clusters: { cluster: { server: string; "insecure-skip-tls-verify": boolean } }[];
      users: { user: { token: string } }[];
      "current-context": string;
    };
    expect(kc.clusters[0]?.cluster).toEqual({ server: server.url, "insecure-skip-tls-verify": true });
    expect(kc.users[0]?.user.token).toBeTruthy();
    expect(kc["current-context"]).toBeTruthy();
  });

  it.each([
    ["GET", "/version"],
    ["GET", "/api/v1/namespaces"],
    ["GET", "/api/v1/namespaces/default"],
    ["GET", "/nothing/here"],
    ["PATCH", "/api/v1/namespaces/default"],
  ])("answers %s %s with Content-Type application/json", async (method, path) => {
    const r = await call(method, path, method === "PATCH" ? "{}" : undefined, "text/plain");
    expect(r.contentType).toBe("application/json");
  });
});

describe("discovery", () => {
  it("serves /version", async () => {
    expect((await call("GET", "/version")).body).toMatchObject({ major: "1", minor: "32", gitVersion: expect.stringMatching(/^v1\.32/) });
  });

  it("serves /api and /apis with every group and its preferred version", async () => {
    expect((await call("GET", "/api")).body).toMatchObject({ kind: "APIVersions", versions: ["v1"] });
    const apis = await call("GET", "/apis");
    const groups = (apis.body.groups as { name: string; preferredVersion: { groupVersion: string } }[]).map((g) => g.preferredVersion.groupVersion);
    expect(groups).toEqual(expect.arrayContaining([
      "networking.k8s.io/v1", "coordination.k8s.io/v1", "events.k8s.io/v1", "pepr.dev/v1", "apiextensions.k8s.io/v1", "switchyard.dev/v1alpha1",
    ]));
    expect((await call("GET", "/apis/switchyard.dev")).body).toMatchObject({ kind: "APIGroup", name: "switchyard.dev" });
  });

  it("describes each resource with verbs, scope, kind and short names", async () => {
    const r = await call("GET", "/api/v1");
    const pods = (r.body.resources as { name: string }[]).find((x) => x.name === "pods");
    expect(pods).toEqual({
      name: "pods", singularName: "pod", namespaced: true, kind: "Pod", shortNames: ["po"], categories: ["all"],
      verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
    });
    expect((r.body.resources as { name: string }[]).map((x) => x.name)).toEqual(expect.arrayContaining(["namespaces", "nodes", "configmaps", "events", "pods/status"]));
  });

  it("answers 404 for an unknown group/version", async () => {
    expect((await call("GET", "/apis/nope.example/v1")).status).toBe(404);
  });

  it("serves an OpenAPI v3 index whose documents declare fieldValidation on PATCH", async () => {
    const index = await call("GET", "/openapi/v3");
    const entry = (index.body.paths as Record<string, { serverRelativeURL: string }>)["apis/switchyard.dev/v1alpha1"];
    expect(entry?.serverRelativeURL).toMatch(/^\/openapi\/v3\/apis\/switchyard\.dev\/v1alpha1\?hash=/);
    const doc = await call("GET", entry?.serverRelativeURL ?? "");
    const patch = (doc.body.paths as Record<string, { patch: { parameters: { name: string }[]; "x-kubernetes-group-version-kind": unknown } }>)[
      "/apis/switchyard.dev/v1alpha1/clusternetworks/{name}"
    ]?.patch;
    expect(patch?.["x-kubernetes-group-version-kind"]).toEqual({ group: "switchyard.dev", version: "v1alpha1", kind: "ClusterNetwork" });
    expect(patch?.parameters.map((p) => p.name)).toContain("fieldValidation");
  });
});

describe("tables", () => {
  beforeAll(async () => {
    await call("POST", "/apis/switchyard.dev/v1alpha1/clusternetworks", {
      apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "default" }, spec: { podCIDRs: ["10.244.0.0/16"], mode: "vxlan" },
    });
    await call("PATCH", "/apis/switchyard.dev/v1alpha1/clusternetworks/default/status", {
      status: { phase: "Ready", activeMode: "vxlan", nodes: { desired: 3, realized: 2 } },
    }, "application/merge-patch+json");
  });

  it("computes the CRD's printer columns when asked for a Table", async () => {
    const r = await call("GET", "/apis/switchyard.dev/v1alpha1/clusternetworks", undefined, undefined, { Accept: TABLE });
    expect(r.body).toMatchObject({ kind: "Table", apiVersion: "meta.k8s.io/v1" });
    const columns = (r.body.columnDefinitions as { name: string; priority: number }[]).map((c) => `${c.name}/${c.priority}`);
    expect(columns).toEqual(["Name/0", "Mode/0", "Active/0", "Phase/0", "Realized/0", "Desired/0", "Migration/1", "Age/0"]);
    const [row] = r.body.rows as { cells: unknown[]; object: { kind: string; metadata: { name: string } } }[];
    expect(row?.cells.slice(0, 7)).toEqual(["default", "vxlan", "vxlan", "Ready", 2, 3, null]);
    expect(row?.cells[7]).toMatch(/^\d+s$/);
    expect(row?.object).toMatchObject({ kind: "PartialObjectMetadata", metadata: { name: "default" } });
  });

  it("answers plain JSON when the Accept header does not ask for a Table", async () => {
    const r = await call("GET", "/apis/switchyard.dev/v1alpha1/clusternetworks/default", undefined, undefined, { Accept: "application/json, */*;q=0.8" });
    expect(r.body.kind).toBe("ClusterNetwork");
  });
});

describe("faults", () => {
  it("failNext fails the next matching requests only, with the given code", async () => {
    server.faults.failNext({ verb: "list", resource: "configmaps", status: 500, times: 2 });
    expect((await call("GET", "/api/v1/namespaces")).status).toBe(200);
    expect((await call("GET", "/api/v1/namespaces/default/configmaps")).status).toBe(500);
    const second = await call("GET", "/api/v1/configmaps");
    expect(second.body).toMatchObject({ kind: "Status", code: 500, reason: "InternalError" });
    expect((await call("GET", "/api/v1/configmaps")).status).toBe(200);
  });

  it("failNext 429 carries Retry-After", async () => {
    server.faults.failNext({ status: 429, retryAfterSeconds: 2 });
    const r = await call("GET", "/api/v1/namespaces");
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("2");
    expect(r.body).toMatchObject({ reason: "TooManyRequests", details: { retryAfterSeconds: 2 } });
  });

  it("failNext 409 on a subresource leaves the main resource alone", async () => {
    server.faults.failNext({ verb: "patch", resource: "clusternetworks/status", status: 409 });
    const main = await call("PATCH", "/apis/switchyard.dev/v1alpha1/clusternetworks/default", { metadata: { labels: { x: "1" } } }, "application/merge-patch+json");
    expect(main.status).toBe(200);
    const status = await call("PATCH", "/apis/switchyard.dev/v1alpha1/clusternetworks/default/status", { status: { phase: "Degraded" } }, "application/merge-patch+json");
    expect(status.status).toBe(409);
    expect(status.body.reason).toBe("Conflict");
  });

  it("delay holds matching requests", async () => {
    server.faults.delay({ ms: 300, resource: "nodes", times: 1 });
    const started = Date.now();
    await call("GET", "/api/v1/nodes");
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const again = Date.now();
    await call("GET", "/api/v1/nodes");
    expect(Date.now() - again).toBeLessThan(290);
  });

  it("reset disarms everything", async () => {
    server.faults.failNext({ status: 500, times: 5 });
    server.faults.reset();
    expect((await call("GET", "/api/v1/namespaces")).status).toBe(200);
  });

  it("counts requests per verb and resource", async () => {
    server.requests.clear();
    await call("GET", "/api/v1/namespaces/default/configmaps");
    await call("GET", "/api/v1/configmaps");
    await call("POST", "/api/v1/namespaces/default/configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "counted" } });
    await call("PATCH", "/api/v1/namespaces/default/configmaps/counted?fieldManager=me", { data: { a: "b" } }, "application/merge-patch+json");
    expect(server.requests.count({ verb: "list", resource: "configmaps" })).toBe(2);
    expect(server.requests.count({ verb: "create", resource: "configmaps", status: 201 })).toBe(1);
    expect(server.requests.count({ verb: "patch", fieldManager: "me" })).toBe(1);
    expect(server.requests.count({ verb: "patch", resource: "nodenetworks" })).toBe(0);
  });
});

describe("options", () => {
  it("realisticLists strips kind/apiVersion from built-in list items only; logRequests logs; maxObjectBytes caps objects", async () => {
    const lines: string[] = [];
    const other = await startApiServer({ realisticLists: true, logRequests: (line) => lines.push(line), maxObjectBytes: 64 * 1024 });
    try {
      const c = rawClient(other.url);
      await c("POST", "/api/v1/namespaces/default/configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" } });
      const builtin = await c("GET", "/api/v1/namespaces/default/configmaps");
      expect(builtin.body.items?.[0]?.kind).toBeUndefined();
      expect(builtin.body.items?.[0]?.metadata?.name).toBe("a");
      await c("POST", "/apis/switchyard.dev/v1alpha1/clusternetworks", { apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "n" }, spec: { podCIDRs: ["10.0.0.0/16"] } });
      expect((await c("GET", "/apis/switchyard.dev/v1alpha1/clusternetworks")).body.items?.[0]?.kind).toBe("ClusterNetwork");
      expect(lines).toContainEqual(expect.stringMatching(/^GET \/api\/v1\/namespaces\/default\/configmaps -> 200 \(\d+ ms\)$/));

      const big = await c("POST", "/api/v1/namespaces/default/configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "big" }, data: { blob: "x".repeat(70 * 1024) } });
      expect(big.status).toBe(413);
      expect(big.body.reason).toBe("RequestEntityTooLarge");
    } finally {
      await other.close();
    }
  });
});
