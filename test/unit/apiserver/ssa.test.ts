// Server-side apply over raw HTTP: 201/200, fieldManager required, per-manager field ownership in
// managedFields, conflicts (409 with FieldManagerConflict causes) unless forced, removal of fields a
// manager stopped sending, shared ownership of equal values, YAML bodies, apply on /status; and the
// admission hook on every CREATE/UPDATE path. The CRD schema is switched off here so the ownership rules
// (and a hook that sees an enum-violating spec.mode) are tested in isolation; apiserver-schema covers it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdmissionRequestLike, type ApiServer, startApiServer } from "../../../lab/apiserver";
import { type ApiBody, rawClient } from "../../support/apiserver";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;
const admissions: AdmissionRequestLike[] = [];

beforeAll(async () => {
  server = await startApiServer({
    crdValidation: false,
    validate: (req) => {
      admissions.push(req);
      const spec = req.object.spec as { mode?: string } | undefined;
      if (spec?.mode === "bogus") return { allowed: false, message: "spec.mode: \"bogus\" is not one of vxlan, ipip, host-gw, bgp" };
      if (spec?.mode === "teapot") return { allowed: false, message: "no", code: 422 };
      return { allowed: true };
    },
  });
  call = rawClient(server.url);
});
afterAll(() => server.close());

const BASE = "/apis/switchyard.dev/v1alpha1/clusternetworks";
const APPLY = "application/apply-patch+yaml";
const cn = (name: string, spec: Record<string, unknown>, labels?: Record<string, string>) => ({
  apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name, ...(labels ? { labels } : {}) }, spec,
});
const apply = (name: string, body: unknown, manager: string, force = false) =>
  call("PATCH", `${BASE}/${name}?fieldManager=${manager}&force=${force}`, body, APPLY);
const owned = (body: ApiBody, manager: string, operation = "Apply") =>
  body.metadata?.managedFields?.find((m) => m.manager === manager && m.operation === operation && !m.subresource)?.fieldsV1;

describe("server-side apply", () => {
  it("creates with 201 and records the manager's fields, then updates with 200", async () => {
    const created = await apply("ssa-1", cn("ssa-1", { podCIDRs: ["10.0.0.0/16"], mode: "vxlan" }, { team: "net" }), "pepr");
    expect(created.status).toBe(201);
    expect(owned(created.body, "pepr")).toEqual({ "f:metadata": { "f:labels": { "f:team": {} } }, "f:spec": { "f:podCIDRs": {}, "f:mode": {} } });
    const updated = await apply("ssa-1", cn("ssa-1", { podCIDRs: ["10.0.0.0/16"], mode: "ipip" }, { team: "net" }), "pepr");
    expect(updated.status).toBe(200);
    expect(updated.body.spec?.mode).toBe("ipip");
    expect(updated.body.metadata?.generation).toBe(2);
  });

  it("answers 400 without a fieldManager", async () => {
    const r = await call("PATCH", `${BASE}/ssa-1`, cn("ssa-1", { mode: "vxlan" }), APPLY);
    expect(r.status).toBe(400);
    expect(r.body.message).toContain("fieldManager");
  });

  it("answers 409 with FieldManagerConflict causes when another manager owns a changed field", async () => {
    const r = await apply("ssa-1", cn("ssa-1", { mode: "bgp", mtu: 1400 }), "kubectl");
    expect(r.status).toBe(409);
    expect(r.body.reason).toBe("Conflict");
    expect(r.body.details?.causes).toEqual([{ reason: "FieldManagerConflict", message: 'conflict with "pepr" using switchyard.dev/v1alpha1', field: ".spec.mode" }]);
    expect(r.body.message).toMatch(/^Apply failed with 1 conflict: conflict with "pepr"/);
    expect((await call("GET", `${BASE}/ssa-1`)).body.spec?.mode).toBe("ipip");
  });

  it("shares ownership of a field applied with an equal value (no conflict)", async () => {
    const r = await apply("ssa-1", cn("ssa-1", { mode: "ipip" }), "kubectl");
    expect(r.status).toBe(200);
    expect(owned(r.body, "kubectl")).toEqual({ "f:spec": { "f:mode": {} } });
    expect(owned(r.body, "pepr")).toMatchObject({ "f:spec": { "f:mode": {} } });
  });

  it("takes ownership with force=true", async () => {
    const r = await apply("ssa-1", cn("ssa-1", { mode: "bgp" }), "kubectl", true);
    expect(r.status).toBe(200);
    expect(r.body.spec?.mode).toBe("bgp");
    expect(owned(r.body, "pepr")).toEqual({ "f:metadata": { "f:labels": { "f:team": {} } }, "f:spec": { "f:podCIDRs": {} } });
  });

  it("removes fields a manager stops sending, unless another manager owns them", async () => {
    const r = await apply("ssa-1", cn("ssa-1", { podCIDRs: ["10.0.0.0/16"] }), "pepr");
    expect(r.status).toBe(200);
    expect(r.body.metadata?.labels).toBeUndefined();
    expect(r.body.spec).toEqual({ podCIDRs: ["10.0.0.0/16"], mode: "bgp" });
    const dropped = await apply("ssa-1", cn("ssa-1", {}), "kubectl");
    expect(dropped.body.spec).toEqual({ podCIDRs: ["10.0.0.0/16"] });
    // kubectl now owns only the (empty) spec map, which does not make the fields inside it conflict.
    const changed = await apply("ssa-1", cn("ssa-1", { podCIDRs: ["10.1.0.0/16"] }), "pepr");
    expect(changed.status).toBe(200);
  });

  it("accepts a YAML body", async () => {
    const yaml = "apiVersion: switchyard.dev/v1alpha1\nkind: ClusterNetwork\nmetadata:\n  name: ssa-yaml\nspec:\n  mode: host-gw\n";
    const r = await apply("ssa-yaml", yaml, "kubectl");
    expect(r.status).toBe(201);
    expect(r.body.spec).toEqual({ mode: "host-gw" });
  });

  it("gives an Update manager ownership, so a later apply conflicts with it", async () => {
    await apply("ssa-2", cn("ssa-2", { mode: "vxlan" }), "pepr");
    await call("PATCH", `${BASE}/ssa-2?fieldManager=operator`, { spec: { mode: "ipip" } }, "application/merge-patch+json");
    const r = await apply("ssa-2", cn("ssa-2", { mode: "bgp" }), "pepr");
    expect(r.status).toBe(409);
    expect(r.body.details?.causes?.[0]?.message).toContain('"operator"');
  });

  it("applies .status through /status only, as its own managedFields entry", async () => {
    const r = await call("PATCH", `${BASE}/ssa-2/status?fieldManager=agent&force=true`,
      { apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "ssa-2" }, spec: { mode: "nope" }, status: { phase: "Ready" } }, APPLY);
    expect(r.status).toBe(200);
    expect(r.body.status).toEqual({ phase: "Ready" });
    expect(r.body.spec?.mode).toBe("ipip");
    expect(r.body.metadata?.managedFields?.find((m) => m.manager === "agent")).toMatchObject({ subresource: "status", fieldsV1: { "f:status": { "f:phase": {} } } });
    expect((await call("PATCH", `${BASE}/absent/status?fieldManager=agent`, { apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "absent" }, status: {} }, APPLY)).status).toBe(404);
  });

  it("changes nothing (same resourceVersion) when the same configuration is applied again", async () => {
    const first = await apply("ssa-3", cn("ssa-3", { mode: "vxlan" }), "pepr");
    const second = await apply("ssa-3", cn("ssa-3", { mode: "vxlan" }), "pepr");
    expect(second.body.metadata?.resourceVersion).toBe(first.body.metadata?.resourceVersion);
  });

  it("rejects an apply configuration that carries managedFields (400), like the real server", async () => {
    const live = await call("GET", `${BASE}/ssa-3`);
    const r = await apply("ssa-3", live.body, "pepr");
    expect(r.status).toBe(400);
    expect(r.body.message).toBe("metadata.managedFields must be nil");
  });

  it("rejects a body without apiVersion and kind (400)", async () => {
    const r = await call("PATCH", `${BASE}/ssa-4?fieldManager=pepr`, { metadata: { name: "ssa-4" }, spec: {} }, APPLY);
    expect(r.status).toBe(400);
  });
});

describe("admission hook", () => {
  it("sees an AdmissionRequest for CREATE (apply), UPDATE (merge patch) and not for /status", async () => {
    admissions.length = 0;
    await apply("adm-1", cn("adm-1", { mode: "vxlan" }), "pepr");
    await call("PATCH", `${BASE}/adm-1`, { spec: { mtu: 1400 } }, "application/merge-patch+json");
    await call("PATCH", `${BASE}/adm-1/status`, { status: { phase: "Ready" } }, "application/merge-patch+json");
    expect(admissions.map((a) => a.operation)).toEqual(["CREATE", "UPDATE"]);
    const [create, update] = admissions;
    expect(create).toMatchObject({
      kind: { group: "switchyard.dev", version: "v1alpha1", kind: "ClusterNetwork" },
      resource: { group: "switchyard.dev", version: "v1alpha1", resource: "clusternetworks" },
      name: "adm-1", oldObject: null, dryRun: false, userInfo: { username: expect.any(String) },
    });
    expect(create?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(update?.oldObject?.spec).toEqual({ mode: "vxlan" });
    expect(update?.object.spec).toEqual({ mode: "vxlan", mtu: 1400 });
  });

  it("denies like a real webhook: 400 with the hook's message, nothing written", async () => {
    const r = await apply("adm-2", cn("adm-2", { mode: "bogus" }), "pepr");
    expect(r.status).toBe(400);
    expect(r.body.message).toBe('admission webhook "pepr-switchyard.pepr.dev" denied the request: spec.mode: "bogus" is not one of vxlan, ipip, host-gw, bgp');
    expect((await call("GET", `${BASE}/adm-2`)).status).toBe(404);
  });

  it("uses the hook's code when it gives one, and also guards PUT", async () => {
    const live = await call("GET", `${BASE}/adm-1`);
    const r = await call("PUT", `${BASE}/adm-1`, { ...live.body, spec: { mode: "teapot" } });
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe("Invalid");
  });
});
