// Object lifecycles over raw HTTP: delete answers, finalizers and deletionTimestamp, namespace deletion
// cascading to its content, CRDs registering and dropping kinds at run time, PeprStore without a CRD.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { rawClient } from "../../support/apiserver";
import { minimalPlan } from "../../support/node-plan";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;

beforeAll(async () => {
  server = await startApiServer();
  call = rawClient(server.url);
  await call("POST", "/api/v1/namespaces", { metadata: { name: "life" } });
});
afterAll(() => server.close());

const cm = (name: string, finalizers?: string[]) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...(finalizers ? { finalizers } : {}) }, data: { k: "v" } });

describe("delete", () => {
  it("answers a Success Status for a built-in kind and the object for a custom resource", async () => {
    await call("POST", "/api/v1/namespaces/life/configmaps", cm("del-1"));
    const builtin = await call("DELETE", "/api/v1/namespaces/life/configmaps/del-1");
    expect(builtin.status).toBe(200);
    expect(builtin.body).toMatchObject({ kind: "Status", status: "Success", details: { name: "del-1", kind: "configmaps" } });

    const created = await call("POST", "/apis/switchyard.dev/v1alpha1/nodenetworks", {
      apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name: "n1" },
      spec: { nodeName: "n1", clusterNetwork: "default", generation: 1, planHash: "h1", nodeIP: "192.168.1.10", mode: "vxlan", mtu: 1450, ...minimalPlan("n1") },
    });
    expect(created.status).toBe(201);
    const custom = await call("DELETE", "/apis/switchyard.dev/v1alpha1/nodenetworks/n1");
    expect(custom.status).toBe(200);
    expect(custom.body).toMatchObject({ kind: "NodeNetwork", metadata: { name: "n1" } });
    expect((await call("GET", "/apis/switchyard.dev/v1alpha1/nodenetworks/n1")).status).toBe(404);
  });

  it("answers 404 for a missing object", async () => {
    const r = await call("DELETE", "/api/v1/namespaces/life/configmaps/never");
    expect(r.status).toBe(404);
    expect(r.body.reason).toBe("NotFound");
  });

  it("honours a uid precondition (409 when it does not match)", async () => {
    await call("POST", "/api/v1/namespaces/life/configmaps", cm("pre"));
    const r = await call("DELETE", "/api/v1/namespaces/life/configmaps/pre", { preconditions: { uid: "not-the-uid" } });
    expect(r.status).toBe(409);
    expect((await call("GET", "/api/v1/namespaces/life/configmaps/pre")).status).toBe(200);
  });
});

describe("deletecollection", () => {
  it("deletes only the objects the selector picks, in the namespace of the path", async () => {
    await call("POST", "/api/v1/namespaces", { metadata: { name: "coll" } });
    for (const [name, labels] of [["x1", { drop: "yes" }], ["x2", { drop: "yes" }], ["x3", {}]] as const) {
      await call("POST", "/api/v1/namespaces/coll/configmaps", { ...cm(name), metadata: { name, labels } });
    }
    const r = await call("DELETE", "/api/v1/namespaces/coll/configmaps?labelSelector=drop%3Dyes");
    expect(r.status).toBe(200);
    expect(r.body.items?.map((i) => i.metadata?.name)).toEqual(["x1", "x2"]);
    expect((await call("GET", "/api/v1/namespaces/coll/configmaps")).body.items?.map((i) => i.metadata?.name)).toEqual(["x3"]);
  });
});

describe("finalizers", () => {
  it("mark the object with deletionTimestamp, keep it until the last finalizer goes, then remove it", async () => {
    const created = await call("POST", "/api/v1/namespaces/life/configmaps", cm("fin", ["example.com/a", "example.com/b"]));
    const del = await call("DELETE", "/api/v1/namespaces/life/configmaps/fin");
    expect(del.status).toBe(200);
    expect(del.body.metadata?.deletionTimestamp).toBeDefined();
    expect(Number(del.body.metadata?.resourceVersion)).toBeGreaterThan(Number(created.body.metadata?.resourceVersion));

    const again = await call("DELETE", "/api/v1/namespaces/life/configmaps/fin");
    expect(again.body.metadata?.resourceVersion).toBe(del.body.metadata?.resourceVersion);

    const added = await call("PATCH", "/api/v1/namespaces/life/configmaps/fin", { metadata: { finalizers: ["example.com/a", "example.com/b", "example.com/c"] } }, "application/merge-patch+json");
    expect(added.status).toBe(422);
    expect(added.body.details?.causes?.[0]?.field).toBe("metadata.finalizers");

    const one = await call("PATCH", "/api/v1/namespaces/life/configmaps/fin", { metadata: { finalizers: ["example.com/b"] } }, "application/merge-patch+json");
    expect(one.status).toBe(200);
    expect((await call("GET", "/api/v1/namespaces/life/configmaps/fin")).status).toBe(200);

    await call("PATCH", "/api/v1/namespaces/life/configmaps/fin", [{ op: "remove", path: "/metadata/finalizers" }], "application/json-patch+json");
    expect((await call("GET", "/api/v1/namespaces/life/configmaps/fin")).status).toBe(404);
  });
});

describe("namespace deletion", () => {
  it("cascades to the namespace's objects and then removes the namespace", async () => {
    await call("POST", "/api/v1/namespaces", { metadata: { name: "doomed" } });
    await call("POST", "/api/v1/namespaces/doomed/configmaps", cm("a"));
    await call("POST", "/apis/networking.k8s.io/v1/namespaces/doomed/networkpolicies", {
      apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "np" }, spec: { podSelector: {} },
    });
    const r = await call("DELETE", "/api/v1/namespaces/doomed");
    expect(r.status).toBe(200);
    expect(r.body.status).toEqual({ phase: "Terminating" });
    expect((await call("GET", "/api/v1/namespaces/doomed/configmaps")).body.items).toEqual([]);
    expect((await call("GET", "/apis/networking.k8s.io/v1/namespaces/doomed/networkpolicies")).body.items).toEqual([]);
    expect((await call("GET", "/api/v1/namespaces/doomed")).status).toBe(404);
  });

  it("stays Terminating while an object holds a finalizer, refusing new content (403)", async () => {
    await call("POST", "/api/v1/namespaces", { metadata: { name: "held" } });
    await call("POST", "/api/v1/namespaces/held/configmaps", cm("holder", ["example.com/hold"]));
    await call("DELETE", "/api/v1/namespaces/held");
    const ns = await call("GET", "/api/v1/namespaces/held");
    expect(ns.body.status).toEqual({ phase: "Terminating" });
    expect((await call("GET", "/api/v1/namespaces/held/configmaps/holder")).body.metadata?.deletionTimestamp).toBeDefined();
    const refused = await call("POST", "/api/v1/namespaces/held/configmaps", cm("late"));
    expect(refused.status).toBe(403);
    expect(refused.body.reason).toBe("Forbidden");

    await call("PATCH", "/api/v1/namespaces/held/configmaps/holder", { metadata: { finalizers: null } }, "application/merge-patch+json");
    expect((await call("GET", "/api/v1/namespaces/held")).status).toBe(404);
  });
});

describe("custom resource definitions", () => {
  it("loads the repository's CRDs at start: cluster-scoped, status subresource, short names", async () => {
    const r = await call("GET", "/apis/switchyard.dev/v1alpha1");
    const byName = new Map((r.body.resources as { name: string }[]).map((x) => [x.name, x]));
    expect(byName.get("clusternetworks")).toMatchObject({ kind: "ClusterNetwork", namespaced: false, shortNames: ["cn", "cnet"] });
    expect(byName.get("clusternetworks/status")).toBeDefined();
    expect(byName.get("nodenetworks")).toMatchObject({ kind: "NodeNetwork", namespaced: false });
    const crd = await call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/clusternetworks.switchyard.dev");
    expect(crd.body.status).toMatchObject({ conditions: expect.arrayContaining([expect.objectContaining({ type: "Established", status: "True" })]) });
  });

  const widgetCrd = {
    apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "widgets.example.com" },
    spec: {
      group: "example.com", scope: "Namespaced",
      names: { kind: "Widget", plural: "widgets", singular: "widget", shortNames: ["wd"] },
      versions: [{ name: "v1", served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }],
    },
  };

  it("registers a kind POSTed as a CRD at run time and drops it (with its objects) when the CRD goes", async () => {
    expect((await call("GET", "/apis/example.com/v1/widgets")).status).toBe(404);
    expect((await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widgetCrd)).status).toBe(201);
    const created = await call("POST", "/apis/example.com/v1/namespaces/life/widgets", { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w1" }, spec: { size: 1 } });
    expect(created.status).toBe(201);
    expect((await call("GET", "/apis")).body.groups).toEqual(expect.arrayContaining([expect.objectContaining({ name: "example.com" })]));
    const status = await call("PATCH", "/apis/example.com/v1/namespaces/life/widgets/w1/status", { status: { ok: true } }, "application/merge-patch+json");
    expect(status.body.status).toEqual({ ok: true });

    await call("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com");
    expect((await call("GET", "/apis/example.com/v1/widgets")).status).toBe(404);
    expect(server.store.history(Number(created.body.metadata?.resourceVersion))?.some((e) => e.type === "DELETED" && e.object.metadata.name === "w1")).toBe(true);
  });

  it("rejects a CRD without group or names (422)", async () => {
    const r = await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "broken.example.com" }, spec: {} });
    expect(r.status).toBe(422);
  });
});

describe("PeprStore", () => {
  it("is served without a CRD (pepr.dev/v1, namespaced)", async () => {
    await call("POST", "/api/v1/namespaces", { metadata: { name: "pepr-system" } });
    const r = await call("PATCH", "/apis/pepr.dev/v1/namespaces/pepr-system/peprstores/pepr-switchyard-store?fieldManager=pepr&fieldValidation=Strict&force=false",
      { apiVersion: "pepr.dev/v1", kind: "PeprStore", metadata: { name: "pepr-switchyard-store", namespace: "pepr-system" }, data: { "__pepr_do_not_delete__": "k-thx-bye" } },
      "application/apply-patch+yaml");
    expect(r.status).toBe(201);
    const list = await call("GET", "/apis/pepr.dev/v1/namespaces/pepr-system/peprstores?fieldSelector=metadata.name%3Dpepr-switchyard-store");
    expect(list.body.items?.map((i) => i.metadata?.name)).toEqual(["pepr-switchyard-store"]);
  });
});

describe("store access for tests", () => {
  it("writes through the same path as HTTP (RVs, events) and reads back", async () => {
    const before = server.store.resourceVersion;
    const obj = await server.store.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "direct", namespace: "life" }, data: { a: "b" } });
    expect(Number(obj.metadata.resourceVersion)).toBe(before + 1);
    expect((await call("GET", "/api/v1/namespaces/life/configmaps/direct")).body.data).toEqual({ a: "b" });
    await server.store.patchStatus("switchyard.dev/v1alpha1", "ClusterNetwork", "nope", undefined, {}).then(
      () => expect.unreachable("patching a missing object must fail"),
      (err: Error) => expect(err.message).toContain("not found"),
    );
    expect(await server.store.delete("v1", "ConfigMap", "direct", "life")).toBe(true);
    expect(server.store.get("v1", "ConfigMap", "direct", "life")).toBeUndefined();
  });
});
