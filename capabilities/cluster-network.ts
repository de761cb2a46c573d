// Pepr bindings for ClusterNetwork. Thin: each binding hands the object to src/ and maps the result.
import { isDeepStrictEqual } from "node:util";
import { Capability, a, type PeprValidateRequest } from "pepr";
import { ClusterNetworkGVK, formatDiagnostic, validateClusterNetwork, validateClusterNetworkUpdate } from "../src/api";

export const ClusterNetworkCapability = new Capability({
  name: "switchyard-cluster-network",
  description: "Validates ClusterNetwork objects with the same rules as `switchyard validate`.",
});

const { When } = ClusterNetworkCapability;

/**
 * Admission: deny a ClusterNetwork with every problem listed as `<path>: <message>`, so kubectl shows the
 * user exactly what to fix. Why here: a typo or an impossible pool must never reach the controller.
 */
export function handleValidateClusterNetwork(req: PeprValidateRequest<a.GenericKind>) {
  // A write that leaves the spec alone (a migration control, a label) is never refused here: `migrate
  // abort` must work even on an object that newer rules would no longer admit.
  if (req.Request.operation === "UPDATE" && req.OldResource && isDeepStrictEqual((req.OldResource as { spec?: unknown }).spec, (req.Raw as { spec?: unknown }).spec)) return req.Approve();
  const diags = req.Request.operation === "UPDATE" && req.OldResource
    ? validateClusterNetworkUpdate(req.OldResource, req.Raw)
    : validateClusterNetwork(req.Raw);
  if (diags.length === 0) return req.Approve();
  return req.Deny(`ClusterNetwork "${req.Raw.metadata?.name ?? ""}" is invalid: ${diags.map(formatDiagnostic).join("; ")}`, 422);
}

When(a.GenericKind, ClusterNetworkGVK)
  .IsCreatedOrUpdated()
  .Validate(async function handleValidate(req) {
    return handleValidateClusterNetwork(req);
  });
