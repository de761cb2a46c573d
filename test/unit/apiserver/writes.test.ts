// Writes that share unchanged subtrees with the stored (frozen) object instead of copying it: what a write
// did not touch is the very same object afterwards, the previous state (watch history) never changes, and
// status writes conform .status alone. Also the exact size limit, now measured without one big stringify.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { rawClient } from "../../support/apiserver";
import { opaquePlanNodeNetworkCrd } from "../../support/node-plan";

const LIMIT = 64 * 1024;
let server: ApiServer;
let call: ReturnType<typeof rawClient>;
const NN = "/apis/switchyard.dev/v1alpha1/nodenetworks";
const V = "switchyard.dev/v1alpha1";

beforeAll(async () => {
  // The NodeNetwork CRD with opaque plan sections: these tests are about how the emulator stores and
  // shares values, and a map of peers of any shape is the convenient subject.
  server = await startApiServer({ maxObjectBytes: LIMIT, crdDir: false, crds: [opaquePlanNodeNetworkCrd()] });
  call = rawClient(server.url);
});
afterAll(() => server.close());

const peers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { routes: [{ dst: `10.0.${i}.0/24` }], mtu: 1450 }]));
const nn = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: V, kind: "NodeNetwork", metadata: { name },
  spec: { nodeName: name, clusterNetwork: "default", generation: 1, planHash: "h", nodeIP: "192.168.1.10", mode: "vxlan", mtu: 1450, routing: { peers: peers(20) }, policy: {}, ...extra },
});
const get = (name: string) => server.store.get(V, "NodeNetwork", name) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("writes share what they do not change", () => {
  it("a status merge patch keeps the stored spec object and conforms only the status", async () => {
    expect((await call("POST", NN, nn("st"))).status).toBe(201);
    const before = get("st");
    const r = await call("PATCH", `${NN}/st/status`, { status: { appliedHash: "h", bogus: 1 } }, "application/merge-patch+json");
    expect(r.status).toBe(200);
    expect(r.headers.get("warning")).toBe('299 - "unknown field \\"status.bogus\\""');
    const after = get("st");
    expect(after.spec).toBe(before.spec);
    expect(after.status).toEqual({ appliedHash: "h" });
    expect(after.metadata.generation).toBe(before.metadata.generation);
    expect(Object.isFrozen(after.status) && Object.isFrozen(after.metadata)).toBe(true);
    expect(before.status).toBeUndefined();
    const bad = await call("PATCH", `${NN}/st/status`, { status: { observedGeneration: -1 } }, "application/merge-patch+json");
    expect(bad.status).toBe(422);
    expect(bad.body.details?.causes?.[0]?.field).toBe("status.observedGeneration");
  });

  it("a spec merge patch copies only the path it changes and leaves the previous state intact", async () => {
    expect((await call("POST", NN, nn("sp"))).status).toBe(201);
    const before = get("sp");
    const snapshot = JSON.stringify(before);
    const r = await call("PATCH", `${NN}/sp`, { spec: { routing: { peers: { p3: { mtu: 1400 } } } } }, "application/merge-patch+json");
    expect(r.status).toBe(200);
    const after = get("sp");
    expect(JSON.stringify(before)).toBe(snapshot);
    expect(after.metadata.generation).toBe(before.metadata.generation + 1);
    expect(after.spec.routing.peers.p3).toEqual({ routes: [{ dst: "10.0.3.0/24" }], mtu: 1400 });
    expect(after.spec.routing.peers.p4).toBe(before.spec.routing.peers.p4);
    expect(after.spec.policy).toBe(before.spec.policy);
  });

  it("a JSON patch that moves a subtree and then edits it leaves the stored object alone", async () => {
    expect((await call("POST", NN, nn("jp"))).status).toBe(201);
    const before = get("jp");
    const snapshot = JSON.stringify(before);
    const r = await call("PATCH", `${NN}/jp`, [
      { op: "move", from: "/spec/routing/peers/p1", path: "/spec/routing/peers/moved" },
      { op: "replace", path: "/spec/routing/peers/moved/mtu", value: 9000 },
      { op: "add", path: "/spec/routing/peers/moved/routes/-", value: { dst: "10.9.0.0/24" } },
    ], "application/json-patch+json");
    expect(r.status).toBe(200);
    expect(JSON.stringify(before)).toBe(snapshot);
    const after = get("jp");
    expect(after.spec.routing.peers.p1).toBeUndefined();
    expect(after.spec.routing.peers.moved).toEqual({ routes: [{ dst: "10.0.1.0/24" }, { dst: "10.9.0.0/24" }], mtu: 9000 });
    expect(after.spec.routing.peers.p2).toBe(before.spec.routing.peers.p2);
  });

  it("re-applying the same configuration is a no-op; a changed apply shares the rest", async () => {
    const apply = (body: unknown) => call("PATCH", `${NN}/ssa?fieldManager=ctl&force=true`, body, "application/apply-patch+yaml");
    expect((await apply(nn("ssa"))).status).toBe(201);
    const first = get("ssa");
    expect((await apply(nn("ssa"))).status).toBe(200);
    expect(get("ssa")).toBe(first);
    const changed = nn("ssa");
    (changed.spec.routing.peers as Record<string, { mtu: number }>)["p5"]!.mtu = 1300;
    expect((await apply(changed)).status).toBe(200);
    const after = get("ssa");
    expect(after.metadata.resourceVersion).not.toBe(first.metadata.resourceVersion);
    expect(after.spec.routing.peers.p5.mtu).toBe(1300);
    expect(after.spec.routing.peers.p6).toBe(first.spec.routing.peers.p6);
    expect(after.metadata.managedFields[0].fieldsV1).toBe(first.metadata.managedFields[0].fieldsV1);
  });

  it("enforces the size limit to the byte", async () => {
    expect((await call("POST", NN, nn("big"))).status).toBe(201);
    const write = (pad: string, dryRun: boolean) =>
      call("PATCH", `${NN}/big/status${dryRun ? "?dryRun=All" : ""}`, { status: { appliedHash: pad } }, "application/merge-patch+json");
    const probe = await write("", true);
    expect(probe.status).toBe(200);
    const base = Buffer.byteLength(JSON.stringify(probe.body));
    expect((await write("x".repeat(LIMIT - base + 1), true)).status).toBe(413);
    expect((await write("x".repeat(LIMIT - base), false)).status).toBe(200);
  });
});
