// The lab's in-process Kubernetes API server emulator: what the real clients (kfc, client-node, Pepr,
// kubectl) need from a kube-apiserver, on 127.0.0.1, with fault injection for recovery tests.

export { startApiServer, type ApiServer, type ApiServerOptions } from "./server";
export { type AdmissionHook, type AdmissionRequestLike, type AdmissionVerdict } from "./admission";
export { type DelayOptions, type ExpireMode, type FailOptions, Faults } from "./faults";
export { type RequestFilter, type RequestLog, type RequestRecord } from "./request-log";
export { type ObjectInput, StoreAccess } from "./store-access";
export { type Status, type StatusCause } from "./errors";
export { type KubeObject, type ManagedFieldsEntry, type ResourceType, type StoreEvent, type Verb } from "./types";
