// The resource table: what the router can resolve and discovery can describe. Built-in kinds are the ones
// Switchyard, Pepr and the lab touch; custom kinds arrive from CRDs (loaded at start or POSTed at run time).

import { type PrinterColumn, type ResourceType } from "./types";

const AGE: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

type BuiltinSpec = Pick<ResourceType, "group" | "version" | "kind" | "plural" | "namespaced" | "hasStatus"> &
  Partial<Pick<ResourceType, "shortNames" | "categories" | "printerColumns" | "selectableFields" | "returnDeletedObject">>;

function builtin(spec: BuiltinSpec): ResourceType {
  return {
    listKind: `${spec.kind}List`,
    singular: spec.kind.toLowerCase(),
    shortNames: [],
    categories: [],
    printerColumns: [AGE],
    selectableFields: [],
    returnDeletedObject: false,
    builtin: true,
    ...spec,
  };
}

const EVENT_FIELDS = [
  "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
  "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
  "reason", "reportingComponent", "source", "type",
];

export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  builtin({ group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, hasStatus: true, shortNames: ["ns"], returnDeletedObject: true,
    selectableFields: ["status.phase"], printerColumns: [{ name: "Status", type: "string", jsonPath: ".status.phase" }, AGE] }),
  builtin({ group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, hasStatus: true, shortNames: ["po"], categories: ["all"], returnDeletedObject: true,
    selectableFields: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
    printerColumns: [
      { name: "Status", type: "string", jsonPath: ".status.phase" }, AGE,
      { name: "IP", type: "string", jsonPath: ".status.podIP", priority: 1 },
      { name: "Node", type: "string", jsonPath: ".spec.nodeName", priority: 1 },
    ] }),
  builtin({ group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: false, hasStatus: true, shortNames: ["no"], selectableFields: ["spec.unschedulable"],
    printerColumns: [AGE, { name: "Version", type: "string", jsonPath: ".status.nodeInfo.kubeletVersion" }] }),
  builtin({ group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, hasStatus: false, shortNames: ["cm"] }),
  // The agents read BGP session passwords from Secrets (spec.bgp.passwordSecretRef).
  builtin({ group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, hasStatus: false }),
  builtin({ group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, hasStatus: false, shortNames: ["ev"], selectableFields: EVENT_FIELDS }),
  builtin({ group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true, hasStatus: false, shortNames: ["ev"],
    selectableFields: ["reason", "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "reportingController", "type"] }),
  builtin({ group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, hasStatus: false }),
  builtin({ group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true, hasStatus: false, shortNames: ["netpol"] }),
  builtin({ group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: false, hasStatus: true,
    shortNames: ["crd", "crds"], categories: ["api-extensions"], returnDeletedObject: true }),
  // Pepr keeps its state in PeprStore objects; a real cluster gets the CRD from Pepr's deploy manifests.
  { ...builtin({ group: "pepr.dev", version: "v1", kind: "PeprStore", plural: "peprstores", namespaced: true, hasStatus: false }), builtin: false },
];

export function storageKey(rt: Pick<ResourceType, "group" | "plural">): string {
  return `${rt.group}/${rt.plural}`;
}

export function apiVersionOf(rt: Pick<ResourceType, "group" | "version">): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** Registered resource types, looked up by path (group/version/plural) or by apiVersion + kind. */
export class ResourceRegistry {
  #byPath = new Map<string, ResourceType>();
  #owner = new Map<string, string>(); // gvr key -> CRD name that registered it

  constructor(initial: readonly ResourceType[] = BUILTIN_RESOURCES) {
    for (const rt of initial) this.register(rt);
  }

  register(rt: ResourceType, crdName?: string): void {
    const key = `${rt.group}/${rt.version}/${rt.plural}`;
    this.#byPath.set(key, rt);
    if (crdName) this.#owner.set(key, crdName);
  }

  /** Remove every version a CRD registered; returns the storage keys it served. */
  unregisterCrd(crdName: string): string[] {
    const removed = new Set<string>();
    for (const [key, owner] of this.#owner) {
      if (owner !== crdName) continue;
      const rt = this.#byPath.get(key);
      if (rt) removed.add(storageKey(rt));
      this.#byPath.delete(key);
      this.#owner.delete(key);
    }
    return [...removed];
  }

  byPath(group: string, version: string, plural: string): ResourceType | undefined {
    return this.#byPath.get(`${group}/${version}/${plural}`);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
    return this.all().find((rt) => rt.group === group && rt.version === version && rt.kind === kind);
  }

  all(): ResourceType[] {
    return [...this.#byPath.values()];
  }

  /** Every served group (core as ""), each with its versions, in registration order. */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const rt of this.#byPath.values()) {
      const versions = out.get(rt.group) ?? [];
      if (!versions.includes(rt.version)) versions.push(rt.version);
      out.set(rt.group, versions);
    }
    return out;
  }
}
