// The ClusterNetwork Validate binding, driven the way Pepr's webhook drives it: an AdmissionRequest in,
// an allow/deny response out, found through the capability's registered bindings (not by calling the
// exported helper directly), so a wrong kind or event in the binding fails this test.
import { describe, expect, it } from "vitest";
import { PeprValidateRequest, type a } from "pepr";
import { ClusterNetworkCapability } from "./cluster-network";
import { allocated, base } from "../test/fixtures/cluster-networks";

type AnyReq = ConstructorParameters<typeof PeprValidateRequest<a.GenericKind>>[0];

function admission(operation: "CREATE" | "UPDATE", object: unknown, oldObject?: unknown): AnyReq {
  return {
    uid: "test-uid",
    kind: { group: "switchyard.dev", version: "v1alpha1", kind: "ClusterNetwork" },
    resource: { group: "switchyard.dev", version: "v1alpha1", resource: "clusternetworks" },
    name: "default",
    operation,
    userInfo: { username: "tester" },
    object,
    oldObject,
    dryRun: false,
    options: {},
  } as unknown as AnyReq;
}

function validateBinding() {
  const binding = ClusterNetworkCapability.bindings.find((b) => b.kind.kind === "ClusterNetwork" && b.validateCallback);
  if (!binding?.validateCallback) throw new Error("no Validate binding for ClusterNetwork");
  return binding;
}

describe("ClusterNetwork Validate binding", () => {
  it("is registered for switchyard.dev/v1alpha1 ClusterNetwork on create and update", () => {
    const b = validateBinding();
    expect(b.kind).toMatchObject({ group: "switchyard.dev", version: "v1alpha1", kind: "ClusterNetwork", plural: "clusternetworks" });
    expect(b.event).toBe("CREATEORUPDATE");
  });

  it("approves a valid ClusterNetwork", async () => {
    const res = await validateBinding().validateCallback!(new PeprValidateRequest(admission("CREATE", base())));
    expect(res.allowed).toBe(true);
  });

  it("denies an invalid one with every error and its path", async () => {
    const res = await validateBinding().validateCallback!(new PeprValidateRequest(admission("CREATE", base({ mode: "bgp", mtu: 10 }))));
    expect(res.allowed).toBe(false);
    expect(res.statusMessage).toContain("spec.bgp: is required when spec.mode is bgp");
    expect(res.statusMessage).toContain("spec.mtu: must be 0 (auto) or between 576 and 9000");
  });

  it("applies the update rules against the old object", async () => {
    const res = await validateBinding().validateCallback!(new PeprValidateRequest(admission("UPDATE", base({ blockSize: 25 }), allocated())));
    expect(res.allowed).toBe(false);
    expect(res.statusMessage).toContain("spec.blockSize: cannot change from 24 to 25");
    const ok = await validateBinding().validateCallback!(new PeprValidateRequest(admission("UPDATE", base({ mode: "host-gw" }), allocated())));
    expect(ok.allowed).toBe(true);
  });
});
