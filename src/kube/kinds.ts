// The kinds the controller and agents read and write through kubernetes-fluent-client. Custom kinds must
// name their plural (kfc otherwise guesses `kind + "s"`); Switchyard's own come from src/api/kinds.ts.
import { GenericKind, kind } from "kubernetes-fluent-client";

export { BlockAffinityGVK, ClusterNetworkGVK, NodeNetworkGVK } from "../api/kinds";
export const LeaseGVK = { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases" };

export { GenericKind, kind };
