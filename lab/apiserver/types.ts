// Shared shapes of the emulator: JSON values, stored Kubernetes objects and the resource table entry.
// Objects held by the store are frozen snapshots; every write builds a new object instead of mutating one,
// so a watch event or a history entry can never change after it was recorded.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Obj = Record<string, unknown>;

export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: Obj;
  subresource?: string;
}

export interface ObjectMeta extends Obj {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  generation: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
}

/** An object as the store holds it: every server-owned field is set. */
export interface KubeObject extends Obj {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

/** One served group/version/resource, as discovery describes it and the router resolves it. */
export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  hasStatus: boolean;
  shortNames: string[];
  categories: string[];
  /** Extra columns for `kubectl get` tables (a CRD's additionalPrinterColumns). */
  printerColumns: PrinterColumn[];
  /** Field selectors the real server accepts for this kind, beyond metadata.name and metadata.namespace. */
  selectableFields: string[];
  /** DELETE answers with the object (true) or with a Success Status (false). */
  returnDeletedObject: boolean;
  /** Typed built-in kinds: a real server omits kind/apiVersion on list items. */
  builtin: boolean;
  /** A CRD version's openAPIV3Schema: defaults, pruning and validation on every write. */
  schema?: Obj;
}

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** A committed change, kept in the bounded history for watch replay. */
export interface StoreEvent {
  type: WatchEventType;
  /** Storage key of the resource: `${group}/${plural}`. */
  resource: string;
  object: KubeObject;
  /** State before the change (MODIFIED only): lets a selector watch turn updates into ADDED/DELETED. */
  oldObject?: KubeObject;
  rv: number;
}
