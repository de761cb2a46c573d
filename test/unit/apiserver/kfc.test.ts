// kubernetes-fluent-client 3.11.6 (the client Pepr uses) against the emulator over HTTP: Get/list with
// selectors, Create, Apply (SSA, manager "pepr") create/update/conflict/force, Patch, PatchStatus, Delete
// with finalizers released through Finalize, and custom kinds via kindOverride and RegisterKind.
import { GenericKind, K8s, kind, RegisterKind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { rawClient } from "../../support/apiserver";
import { minimalPlan } from "../../support/node-plan";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;
const NS = "kfc";

const ClusterNetworkKind = { group: "switchyard.dev", version: "v1alpha1", kind: "ClusterNetwork", plural: "clusternetworks" };
class NodeNetwork extends GenericKind {}
RegisterKind(NodeNetwork, { group: "switchyard.dev", version: "v1alpha1", kind: "NodeNetwork", plural: "nodenetworks" });
const ClusterNetworks = () => K8s(GenericKind, { kindOverride: ClusterNetworkKind });

interface KfcError {
  status: number;
  data: { reason?: string; details?: { causes?: { reason: string; field?: string }[] } };
}
async function rejection(p: Promise<unknown>): Promise<KfcError> {
  return p.then(
    () => expect.unreachable("the call should have failed"),
    (err: KfcError) => err,
  );
}

beforeAll(async () => {
  server = await startApiServer();
  call = rawClient(server.url);
  process.env.KUBECONFIG = server.kubeconfigPath;
  await K8s(kind.Namespace).Create({ metadata: { name: NS } });
});
afterAll(() => server.close());

describe("kfc Get", () => {
  beforeAll(async () => {
    const pod = (name: string, node: string, labels: Record<string, string>) =>
      K8s(kind.Pod).Create({ metadata: { name, namespace: NS, labels }, spec: { nodeName: node, containers: [{ name: "c", image: "i" }] } });
    await pod("web-1", "n1", { app: "web", tier: "front" });
    await pod("web-2", "n2", { app: "web" });
    await pod("db-1", "n1", { app: "db", tier: "back" });
  });

  it("lists a namespace", async () => {
    const list = await K8s(kind.Pod).InNamespace(NS).Get();
    expect(list.items.map((p) => p.metadata?.name)).toEqual(["db-1", "web-1", "web-2"]);
  });

  it("filters by label equality, label existence and field", async () => {
    const byLabel = await K8s(kind.Pod).InNamespace(NS).WithLabel("app", "web").WithLabel("tier").Get();
    expect(byLabel.items.map((p) => p.metadata?.name)).toEqual(["web-1"]);
    const byField = await K8s(kind.Pod).InNamespace(NS).WithField("spec.nodeName", "n1").Get();
    expect(byField.items.map((p) => p.metadata?.name)).toEqual(["db-1", "web-1"]);
  });

  it("gets one object, and throws the 404 Status for a missing one", async () => {
    const pod = await K8s(kind.Pod).InNamespace(NS).Get("web-2");
    expect(pod.spec?.nodeName).toBe("n2");
    expect(pod.metadata?.uid).toBeTruthy();
    const err = await rejection(K8s(kind.Pod).InNamespace(NS).Get("nope"));
    expect(err.status).toBe(404);
    expect(err.data.reason).toBe("NotFound");
  });
});

describe("kfc Create", () => {
  it("creates, and fails with 409 AlreadyExists on a duplicate", async () => {
    const cm = await K8s(kind.ConfigMap).Create({ metadata: { name: "made", namespace: NS }, data: { a: "1" } });
    expect(cm.metadata?.resourceVersion).toMatch(/^\d+$/);
    const err = await rejection(K8s(kind.ConfigMap).Create({ metadata: { name: "made", namespace: NS } }));
    expect(err.status).toBe(409);
    expect(err.data.reason).toBe("AlreadyExists");
  });
});

describe("kfc Apply (server-side apply as manager pepr)", () => {
  it("creates, updates, conflicts with another manager, and wins with force", async () => {
    const created = await ClusterNetworks().Apply({ metadata: { name: "kfc-net" }, spec: { podCIDRs: ["10.244.0.0/16"], mode: "vxlan" } });
    expect(created.metadata?.managedFields?.map((m) => `${m.manager}/${m.operation}`)).toEqual(["pepr/Apply"]);
    const updated = await ClusterNetworks().Apply({ metadata: { name: "kfc-net" }, spec: { podCIDRs: ["10.244.0.0/16"], mode: "ipip" } });
    expect(updated.spec.mode).toBe("ipip");
    expect(updated.metadata?.generation).toBe(2);

    // Someone else (kubectl) takes spec.mode.
    await call("PATCH", "/apis/switchyard.dev/v1alpha1/clusternetworks/kfc-net?fieldManager=kubectl&force=true",
      { apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "kfc-net" }, spec: { mode: "bgp" } }, "application/apply-patch+yaml");
    const err = await rejection(ClusterNetworks().Apply({ metadata: { name: "kfc-net" }, spec: { podCIDRs: ["10.244.0.0/16"], mode: "host-gw" } }));
    expect(err.status).toBe(409);
    expect(err.data.details?.causes).toEqual([expect.objectContaining({ reason: "FieldManagerConflict", field: ".spec.mode" })]);

    const forced = await ClusterNetworks().Apply({ metadata: { name: "kfc-net" }, spec: { podCIDRs: ["10.244.0.0/16"], mode: "host-gw" } }, { force: true });
    expect(forced.spec.mode).toBe("host-gw");
  });

  it("works for a kind registered with RegisterKind", async () => {
    const nn = await K8s(NodeNetwork).Apply({
      metadata: { name: "node-a" },
      spec: { nodeName: "node-a", clusterNetwork: "default", generation: 1, planHash: "h1", nodeIP: "192.168.1.10", block: "10.244.1.0/24", mode: "vxlan", mtu: 1450, ...minimalPlan("node-a") },
    });
    expect(nn.kind).toBe("NodeNetwork");
    expect((await K8s(NodeNetwork).Get("node-a")).spec.block).toBe("10.244.1.0/24");
  });
});

describe("kfc Patch and PatchStatus", () => {
  it("applies a JSON patch", async () => {
    const cm = await K8s(kind.ConfigMap, { name: "made", namespace: NS }).Patch([{ op: "add", path: "/data/b", value: "2" }]);
    expect(cm.data).toEqual({ a: "1", b: "2" });
  });

  it("changes only .status: generation unchanged, resourceVersion bumped", async () => {
    const before = await ClusterNetworks().Get("kfc-net");
    const after = await ClusterNetworks().PatchStatus({ metadata: { name: "kfc-net" }, spec: { mode: "ignored" }, status: { phase: "Ready", observedGeneration: 3 } });
    expect(after.status).toEqual({ phase: "Ready", observedGeneration: 3 });
    expect(after.spec.mode).toBe("host-gw");
    expect(after.metadata?.generation).toBe(before.metadata?.generation);
    expect(Number(after.metadata?.resourceVersion)).toBeGreaterThan(Number(before.metadata?.resourceVersion));
  });

  it("gets 404 from PatchStatus on a kind without a status subresource", async () => {
    const configMaps = K8s(GenericKind, { namespace: NS, kindOverride: { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" } });
    const err = await rejection(configMaps.PatchStatus({ metadata: { name: "made" }, status: {} }));
    expect(err.status).toBe(404);
  });
});

describe("kfc Delete", () => {
  it("keeps an object with finalizers (deletionTimestamp set) until Finalize removes the last one", async () => {
    await K8s(kind.ConfigMap).Create({ metadata: { name: "guarded", namespace: NS, finalizers: ["switchyard.dev/cleanup"] }, data: { x: "y" } });
    await K8s(kind.ConfigMap).InNamespace(NS).Delete("guarded");
    const marked = await K8s(kind.ConfigMap).InNamespace(NS).Get("guarded");
    expect(marked.metadata?.deletionTimestamp).toBeDefined();

    await K8s(kind.ConfigMap, { namespace: NS }).Finalize("remove", "switchyard.dev/cleanup", "guarded");
    const err = await rejection(K8s(kind.ConfigMap).InNamespace(NS).Get("guarded"));
    expect(err.status).toBe(404);
  });

  it("deletes a custom resource, and returns quietly for a missing one (kfc swallows 404)", async () => {
    await ClusterNetworks().Delete("kfc-net");
    expect((await call("GET", "/apis/switchyard.dev/v1alpha1/clusternetworks/kfc-net")).status).toBe(404);
    await expect(ClusterNetworks().Delete("kfc-net")).resolves.toBeUndefined();
  });
});
