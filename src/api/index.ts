// The Switchyard API as one import: schemas, kinds, annotations, validation (what the Pepr module and the CLI use).
export * from "./common";
export * from "./cluster-network";
export * from "./node-network";
export * from "./block-affinity";
export * from "./diagnostics";
export * from "./ipv4";
export * from "./validate-cluster-network";
export * from "./network-policy";
export * from "./kinds";
export * from "./annotations";
export * from "./node-plan";
export * from "./kernel-names";
