// @kubernetes/client-node 1.4.0 against the emulator over HTTP: CoreV1Api (CRUD, stale replace, default
// JSON-patch, merge-patch on /status), CustomObjectsApi, KubernetesObjectApi.patch with server-side apply
// (it resolves plurals through discovery), and an informer that keeps up across a dropped watch through
// history replay (it rewatches from its last RV without relisting) and relists after a 410.
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1ObjectMeta,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { waitFor } from "../../../src/base/wait";
import { minimalPlan } from "../../support/node-plan";

let server: ApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const NS = "cn";

async function apiError(p: Promise<unknown>): Promise<ApiException<string>> {
  return p.then(
    () => expect.unreachable("the call should have failed"),
    (err: unknown) => {
      expect(err).toBeInstanceOf(ApiException);
      return err as ApiException<string>;
    },
  );
}

beforeAll(async () => {
  server = await startApiServer();
  kc = new KubeConfig();
  kc.loadFromFile(server.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: NS } } });
});
afterAll(() => server.close());

describe("CoreV1Api", () => {
  it("creates, reads and lists with a label selector", async () => {
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "a", labels: { app: "x" } }, data: { k: "1" } } });
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "b" }, data: { k: "2" } } });
    expect((await core.readNamespacedConfigMap({ namespace: NS, name: "a" })).data).toEqual({ k: "1" });
    const list = await core.listNamespacedConfigMap({ namespace: NS, labelSelector: "app=x" });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(["a"]);
  });

  it("surfaces a 404 as ApiException with the Status body", async () => {
    const err = await apiError(core.readNamespacedConfigMap({ namespace: NS, name: "missing" }));
    expect(err.code).toBe(404);
    expect(JSON.parse(err.body)).toMatchObject({ kind: "Status", reason: "NotFound" });
  });

  it("replaces with the current resourceVersion and gets 409 Conflict with a stale one", async () => {
    const live = await core.readNamespacedConfigMap({ namespace: NS, name: "a" });
    const replaced = await core.replaceNamespacedConfigMap({ namespace: NS, name: "a", body: { ...live, data: { k: "replaced" } } });
    expect(replaced.data).toEqual({ k: "replaced" });
    const err = await apiError(core.replaceNamespacedConfigMap({ namespace: NS, name: "a", body: { ...live, data: { k: "stale" } } }));
    expect(err.code).toBe(409);
    expect(JSON.parse(err.body).reason).toBe("Conflict");
  });

  it("patches with client-node's default JSON patch", async () => {
    const patched = await core.patchNamespacedConfigMap({ namespace: NS, name: "b", body: [{ op: "replace", path: "/data/k", value: "patched" }] });
    expect(patched.data).toEqual({ k: "patched" });
    expect(server.requests.find({ verb: "patch", name: "b" }).at(-1)?.contentType).toBe("application/json-patch+json");
  });

  it("merge-patches a pod's status through setHeaderOptions, leaving generation alone", async () => {
    await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "i" }] } } });
    const pod = await core.patchNamespacedPodStatus(
      { namespace: NS, name: "p", body: { status: { phase: "Running", podIP: "10.244.1.5" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    expect(pod.status).toMatchObject({ phase: "Running", podIP: "10.244.1.5" });
    expect(pod.metadata?.generation).toBe(1);
  });

  it("deletes and gets a Status back", async () => {
    const status = await core.deleteNamespacedConfigMap({ namespace: NS, name: "b" });
    expect(status).toMatchObject({ status: "Success" });
  });
});

describe("CustomObjectsApi", () => {
  const gvr = { group: "switchyard.dev", version: "v1alpha1", plural: "clusternetworks" };

  it("creates, gets, lists, patches status and deletes a cluster-scoped custom resource", async () => {
    await custom.createClusterCustomObject({ ...gvr, body: { apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "cno", labels: { env: "lab" } }, spec: { podCIDRs: ["10.244.0.0/16"], mode: "vxlan" } } });
    const got = (await custom.getClusterCustomObject({ ...gvr, name: "cno" })) as { spec: { mode: string } };
    expect(got.spec.mode).toBe("vxlan");
    const list = (await custom.listClusterCustomObject({ ...gvr, labelSelector: "env=lab" })) as { items: { metadata: { name: string } }[] };
    expect(list.items.map((i) => i.metadata.name)).toEqual(["cno"]);
    const patched = (await custom.patchClusterCustomObjectStatus(
      { ...gvr, name: "cno", body: { status: { phase: "Ready" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as { status: { phase: string } };
    expect(patched.status.phase).toBe("Ready");
    await custom.deleteClusterCustomObject({ ...gvr, name: "cno" });
    expect((await apiError(custom.getClusterCustomObject({ ...gvr, name: "cno" }))).code).toBe(404);
  });
});

describe("KubernetesObjectApi", () => {
  it("applies server-side after resolving the plural through discovery, and conflicts without force", async () => {
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const spec = { apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name: "node-1" } as V1ObjectMeta,
      spec: { nodeName: "node-1", clusterNetwork: "default", generation: 1, planHash: "h1", nodeIP: "192.168.1.11", mode: "vxlan", mtu: 1450, ...minimalPlan("node-1", "192.168.1.11") },
    };
    const created = await objects.patch(spec, undefined, undefined, "controller", true, PatchStrategy.ServerSideApply);
    expect(created.metadata?.uid).toBeTruthy();
    expect(server.requests.count({ verb: "discovery" })).toBeGreaterThan(0);
    expect(server.requests.find({ verb: "patch", resource: "nodenetworks" })[0]?.contentType).toBe("application/apply-patch+yaml");

    const err = await apiError(objects.patch({ ...spec, spec: { ...spec.spec, mode: "ipip" } }, undefined, undefined, "someone-else", false, PatchStrategy.ServerSideApply));
    expect(err.code).toBe(409);
    expect(JSON.parse(err.body).details.causes[0].reason).toBe("FieldManagerConflict");
  });
});

describe("informer", () => {
  it("keeps up across a dropped watch by replay (no relist), and relists after a 410", async () => {
    await core.createNamespace({ body: { metadata: { name: "inf" } } });
    const seen: string[] = [];
    const informer = makeInformer<V1ConfigMap>(kc, "/api/v1/namespaces/inf/configmaps", () => core.listNamespacedConfigMap({ namespace: "inf" }));
    informer.on("add", (o) => seen.push(`add ${o.metadata?.name}`));
    informer.on("update", (o) => seen.push(`update ${o.metadata?.name} ${o.data?.v}`));
    informer.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
    const sees = (entry: string) => waitFor(`the informer to see "${entry}" (saw ${JSON.stringify(seen)})`, () => seen.includes(entry), 10_000, 20);
    await informer.start();
    try {
      await waitFor("the informer's watch", () => server.openWatches() === 1, 10_000, 20);
      await server.store.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "one", namespace: "inf" }, data: { v: "1" } });
      await sees("add one");

      const lists = server.requests.count({ verb: "list", resource: "configmaps" });
      const watches = server.requests.count({ verb: "watch", resource: "configmaps" });
      server.faults.dropWatches();
      // These land before the informer can reconnect: only replay from its last RV can deliver them.
      await server.store.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "two", namespace: "inf" }, data: { v: "1" } });
      await server.store.apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "one", namespace: "inf" }, data: { v: "2" } }, { force: true });
      await sees("add two");
      await sees("update one 2");
      expect(server.requests.count({ verb: "watch", resource: "configmaps" })).toBe(watches + 1);
      expect(server.requests.count({ verb: "list", resource: "configmaps" })).toBe(lists);

      server.faults.expireWatches({ mode: "error-event", times: 1 });
      server.faults.dropWatches();
      await server.store.delete("v1", "ConfigMap", "two", "inf");
      await sees("delete two");
      await waitFor("the informer to relist after 410", () => server.requests.count({ verb: "list", resource: "configmaps" }) > lists, 10_000, 20);
      await waitFor("the informer to rewatch", () => server.openWatches() === 1, 10_000, 20);
      await server.store.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "three", namespace: "inf" } });
      await sees("add three");
    } finally {
      await informer.stop();
    }
  });
});
