export * from "./common";
export * from "./cluster-network";
export * from "./node-network";
export * from "./diagnostics";
export * from "./ipv4";
export * from "./validate-cluster-network";
export * from "./network-policy";
