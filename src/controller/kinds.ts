// The kinds the controller and agents read and write through kubernetes-fluent-client. Custom kinds must
// name their plural (kfc otherwise guesses `kind + "s"`).
import { GenericKind, kind } from "kubernetes-fluent-client";
import { API_GROUP, API_VERSION } from "../api/common";

export const ClusterNetworkGVK = { group: API_GROUP, version: API_VERSION, kind: "ClusterNetwork", plural: "clusternetworks" };
export const NodeNetworkGVK = { group: API_GROUP, version: API_VERSION, kind: "NodeNetwork", plural: "nodenetworks" };
export const LeaseGVK = { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases" };

export { GenericKind, kind };
