// CRD structural schemas applied on every write, as a real apiserver does (minus CEL): defaults, pruning of
// undeclared fields per fieldValidation (Warn: dropped + Warning header; Strict: 400; Ignore: dropped),
// OpenAPI validation (422 with one cause per problem) before the admission hook, and the opt-out.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { rawClient } from "../../support/apiserver";
import { minimalPlan } from "../../support/node-plan";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;
let hookCalls = 0;
const CN = "/apis/switchyard.dev/v1alpha1/clusternetworks";
const NN = "/apis/switchyard.dev/v1alpha1/nodenetworks";

beforeAll(async () => {
  server = await startApiServer({ validate: () => (hookCalls++, { allowed: true }) });
  call = rawClient(server.url);
});
afterAll(() => server.close());

const cn = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name }, spec });
const nn = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name },
  spec: { nodeName: name, clusterNetwork: "default", generation: 1, planHash: "h", nodeIP: "192.168.1.10", mode: "vxlan", mtu: 1450, ...minimalPlan(name), ...extra },
});

describe("CRD schema", () => {
  it("fills in defaults on create", async () => {
    const r = await call("POST", CN, cn("defaults", { podCIDRs: ["10.244.0.0/16"] }));
    expect(r.status).toBe(201);
    expect(r.body.spec).toMatchObject({ mode: "vxlan", blockSize: 26, mtu: 0, natOutgoing: true, policy: { backend: "nftables" } });
  });

  it("drops an undeclared field with a Warning header by default (fieldValidation=Warn)", async () => {
    const r = await call("POST", CN, cn("warned", { podCIDRs: ["10.244.0.0/16"], colour: "blue" }));
    expect(r.status).toBe(201);
    expect(r.body.spec?.colour).toBeUndefined();
    expect(r.headers.get("warning")).toBe('299 - "unknown field \\"spec.colour\\""');
  });

  it("rejects an undeclared field with 400 under fieldValidation=Strict (what kfc Apply sends)", async () => {
    const r = await call("PATCH", `${CN}/strict?fieldManager=pepr&fieldValidation=Strict`, cn("strict", { podCIDRs: ["10.244.0.0/16"], colour: "blue" }), "application/apply-patch+yaml");
    expect(r.status).toBe(400);
    expect(r.body.message).toBe('strict decoding error: unknown field "spec.colour"');
  });

  it("drops it silently under fieldValidation=Ignore", async () => {
    const r = await call("POST", `${CN}?fieldValidation=Ignore`, cn("ignored", { podCIDRs: ["10.244.0.0/16"], colour: "blue" }));
    expect(r.status).toBe(201);
    expect(r.headers.get("warning")).toBeNull();
  });

  it("keeps values of any type under x-kubernetes-preserve-unknown-fields", async () => {
    // A group's members are addresses or [address, protocol, port] triples: the CRD cannot type them.
    const groups = [{ id: "g1", kind: "named-port", members: [["10.0.0.1", "TCP", 80]] }];
    const r = await call("POST", `${NN}?fieldValidation=Strict`, nn("kept", { policy: { ...minimalPlan("kept").policy, groups } }));
    expect(r.status).toBe(201);
    expect((r.body.spec?.policy as { groups?: unknown } | undefined)?.groups).toEqual(groups);
  });

  it("answers 422 with one cause per violation, before the admission hook runs", async () => {
    const before = hookCalls;
    const r = await call("POST", CN, cn("broken", { podCIDRs: ["10.244.0.1/33"], mode: "bogus", blockSize: 40, mtu: "big" }));
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe("Invalid");
    expect(r.body.details?.causes).toEqual(expect.arrayContaining([
      { reason: "FieldValueNotSupported", field: "spec.mode", message: 'Unsupported value: "bogus": supported values: "vxlan", "ipip", "host-gw", "bgp"' },
      { reason: "FieldValueInvalid", field: "spec.blockSize", message: "Invalid value: 40: spec.blockSize in body should be less than or equal to 30" },
      expect.objectContaining({ field: "spec.podCIDRs[0]", message: expect.stringContaining("should match") }),
      expect.objectContaining({ field: "spec.mtu", message: expect.stringContaining("must be of type integer") }),
    ]));
    expect(r.body.message).toMatch(/^ClusterNetwork\.switchyard\.dev "broken" is invalid: /);
    expect(hookCalls).toBe(before);
  });

  it("reports missing required fields", async () => {
    const r = await call("POST", NN, { apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name: "partial" }, spec: { nodeName: "partial" } });
    expect(r.status).toBe(422);
    expect(r.body.details?.causes?.filter((c) => c.reason === "FieldValueRequired").map((c) => c.field)).toEqual(
      ["spec.clusterNetwork", "spec.generation", "spec.planHash", "spec.nodeIP", "spec.mode", "spec.mtu", "spec.routing", "spec.policy"],
    );
  });

  it("validates writes to /status too", async () => {
    await call("POST", NN, nn("st"));
    const bad = await call("PATCH", `${NN}/st/status`, { status: { conditions: [{ type: "Applied", status: "Maybe" }] } }, "application/merge-patch+json");
    expect(bad.status).toBe(422);
    expect(bad.body.details?.causes?.map((c) => c.field)).toEqual(expect.arrayContaining(["status.conditions[0].status", "status.conditions[0].reason"]));
    const good = await call("PATCH", `${NN}/st/status`, { status: { appliedHash: "h", observedGeneration: 1 } }, "application/merge-patch+json");
    expect(good.status).toBe(200);
  });

  it("is skipped entirely with crdValidation: false", async () => {
    const lax = await startApiServer({ crdValidation: false });
    try {
      const r = await rawClient(lax.url)("POST", CN, cn("anything", { mode: "bogus", colour: "blue" }));
      expect(r.status).toBe(201);
      expect(r.body.spec).toEqual({ mode: "bogus", colour: "blue" });
    } finally {
      await lax.close();
    }
  });
});
