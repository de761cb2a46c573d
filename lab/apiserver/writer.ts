// Every committed write goes through here, in the order a real apiserver applies its rules: server-owned
// metadata, status-subresource separation, generation, managedFields, admission, size limit, commit,
// then the consequences (finalizers releasing an object, a namespace finishing its termination, a CRD
// registering or dropping its kind). Writes run one at a time (exclusive), so a read-modify-write inside a
// handler can never interleave with another, even while an admission hook is awaited.
//
// Cost follows what a write changes, not the object's size. Stored objects are deep-frozen (store.ts), so a
// new state shares every unchanged subtree with the old one instead of copying it: a status write builds a
// shallow copy of the stored object with a fresh metadata map and the new status; a main-resource write
// copies only what differs from the stored object (copySharing). The schema steps (#conform) skip shared
// subtrees when the stored object already passed them against the same schema (#conformed); otherwise the
// whole new state is copied and checked, as before. A status write conforms .status alone (statusRootSchema),
// like the real server's status strategy, so a main resource that predates a schema change is left as is.

import { randomUUID } from "node:crypto";
import { admit, type AdmissionHook } from "./admission";
import { resourceTypesOfCrd } from "./crds";
import { ApiError, errors } from "./errors";
import { clone, copySharing, isObject, jsonBytes } from "./json";
import { trackUpdate } from "./managed-fields";
import { applyDefaults, pruneUnknown, statusRootSchema, validateSchema } from "./schema";
import { generatedName, nameProblems, sameState, specChanged, timestamp } from "./meta";
import { apiVersionOf, type ResourceRegistry, storageKey } from "./resources";
import { type ObjectStore } from "./store";
import { type KubeObject, type ManagedFieldsEntry, type Obj, type ObjectMeta, type ResourceType } from "./types";

export interface WriterOptions {
  admission?: AdmissionHook;
  webhookName: string;
  maxObjectBytes: number;
  /** Apply CRD schemas (defaults, pruning, validation) like a real server. */
  crdValidation: boolean;
}

export type FieldValidation = "Strict" | "Warn" | "Ignore";

export interface WriteOptions {
  /** Field manager recorded in managedFields. */
  manager: string;
  subresource?: "status";
  dryRun?: boolean;
  /** managedFields computed by server-side apply; otherwise the write is tracked as an Update. */
  managedFields?: ManagedFieldsEntry[];
  /** resourceVersion precondition (PUT bodies, patches that carry one). */
  resourceVersion?: string;
  admissionOptions?: Obj;
  /** How unknown fields are handled (the fieldValidation query parameter); the server default is Warn. */
  fieldValidation?: FieldValidation;
  /** Collects warnings (dropped unknown fields) for the response's Warning headers. */
  warnings?: string[];
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

const NAMESPACES = "/namespaces";
const CRDS = "apiextensions.k8s.io/customresourcedefinitions";

function isCrd(rt: ResourceType): boolean {
  return storageKey(rt) === CRDS;
}

/** apiVersion, kind, metadata first, then the rest in the order the client sent it. */
function assemble(rt: ResourceType, metadata: ObjectMeta, body: Obj): KubeObject {
  const { apiVersion: _a, kind: _k, metadata: _m, ...rest } = body;
  return { apiVersion: apiVersionOf(rt), kind: rt.kind, metadata, ...rest };
}

/** A stored object's next state that shares everything with it but a fresh (mutable) metadata map. */
function withFreshMetadata(old: KubeObject): KubeObject {
  return { ...old, metadata: { ...old.metadata } };
}

export class Writer {
  #queue: Promise<unknown> = Promise.resolve();
  /** Stored objects known to have gone through #conform (defaults, pruning, validation) against this schema. */
  #conformed = new WeakMap<KubeObject, Obj>();

  constructor(
    private readonly store: ObjectStore,
    private readonly registry: ResourceRegistry,
    private readonly opts: WriterOptions,
  ) {}

  /** Run `fn` after every write queued before it has finished. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async create(rt: ResourceType, input: Obj, w: WriteOptions): Promise<KubeObject> {
    const body = clone(input);
    const inMeta = isObject(body.metadata) ? body.metadata : {};
    let name = typeof inMeta.name === "string" ? inMeta.name : "";
    if (!name && typeof inMeta.generateName === "string" && inMeta.generateName) name = generatedName(inMeta.generateName);
    if (!name) {
      throw errors.invalid(rt, "", [{ reason: "FieldValueRequired", field: "metadata.name", message: "Required value: name or generateName is required" }]);
    }
    const problems = nameProblems(name, rt.kind);
    if (problems.length > 0) throw errors.invalid(rt, name, problems);
    const namespace = rt.namespaced && typeof inMeta.namespace === "string" ? inMeta.namespace : undefined;
    if (rt.namespaced) this.#checkNamespaceOpen(rt, name, namespace);
    if (this.store.get(storageKey(rt), namespace, name)) throw errors.alreadyExists(rt, name);

    const now = timestamp();
    const { deletionTimestamp: _d, deletionGracePeriodSeconds: _g, selfLink: _s, namespace: _n, ...keep } = inMeta;
    const metadata: ObjectMeta = { ...keep, name, uid: randomUUID(), resourceVersion: "", generation: 1, creationTimestamp: now };
    if (namespace !== undefined) metadata.namespace = namespace;
    const object = assemble(rt, metadata, body);
    this.#initialStatus(rt, object, now);
    this.#conform(rt, object, w);
    metadata.managedFields = w.managedFields ?? trackUpdate(undefined, object, undefined, {
      manager: w.manager, scope: "main", hasStatus: rt.hasStatus, apiVersion: object.apiVersion, now,
    });
    await admit(this.opts.admission, this.opts.webhookName, { rt, operation: "CREATE", object, dryRun: !!w.dryRun, options: w.admissionOptions ?? {} });
    this.#checkSize(object);
    if (w.dryRun) return object;
    const saved = this.store.commit("ADDED", storageKey(rt), object);
    if (rt.schema && this.opts.crdValidation) this.#conformed.set(saved, rt.schema);
    if (isCrd(rt)) this.#registerCrd(saved);
    return saved;
  }

  async update(rt: ResourceType, old: KubeObject, input: Obj, w: WriteOptions): Promise<KubeObject> {
    const name = old.metadata.name;
    if (w.resourceVersion && w.resourceVersion !== old.metadata.resourceVersion) throw errors.conflict(rt, name);
    const now = timestamp();
    // What the new state may share with `old` untouched: everything when no schema step will run, the
    // subtrees the schema steps may skip when `old` passed them against the same schema, otherwise nothing.
    const checks = !!rt.schema && this.opts.crdValidation;
    const conformedOld = checks && this.#conformed.get(old) === rt.schema;
    const base = !checks || conformedOld ? old : undefined;
    let next: KubeObject;
    if (w.subresource === "status") {
      next = withFreshMetadata(old);
      if (input.status === undefined) delete next.status;
      else next.status = copySharing(input.status, base?.status);
    } else {
      const body = copySharing(input, base); // only read below: assemble builds the new top level
      const inMeta = isObject(body.metadata) ? body.metadata : {};
      const { deletionTimestamp: _d, deletionGracePeriodSeconds: _g, selfLink: _s, ...keep } = inMeta;
      const metadata: ObjectMeta = {
        ...keep,
        name,
        uid: old.metadata.uid,
        resourceVersion: old.metadata.resourceVersion,
        generation: old.metadata.generation,
        creationTimestamp: old.metadata.creationTimestamp,
      };
      if (old.metadata.namespace !== undefined) metadata.namespace = old.metadata.namespace;
      else delete metadata.namespace;
      if (old.metadata.deletionTimestamp) {
        metadata.deletionTimestamp = old.metadata.deletionTimestamp;
        metadata.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
      }
      next = assemble(rt, metadata, body);
      if (rt.hasStatus) {
        if (old.status === undefined) delete next.status;
        else next.status = base ? old.status : clone(old.status);
      }
    }
    if (old.metadata.deletionTimestamp) {
      const added = (next.metadata.finalizers ?? []).filter((f) => !(old.metadata.finalizers ?? []).includes(f));
      if (added.length > 0) {
        throw errors.invalid(rt, name, [{ reason: "FieldValueForbidden", field: "metadata.finalizers", message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }]);
      }
    }
    if (w.subresource === "status") this.#conformStatus(rt, next, w, base);
    else this.#conform(rt, next, w, base);
    if (specChanged(old, next)) next.metadata.generation = old.metadata.generation + 1;
    next.metadata.managedFields = w.managedFields ?? trackUpdate(old, next, old.metadata.managedFields, {
      manager: w.manager, scope: w.subresource === "status" ? "status" : "main", hasStatus: rt.hasStatus,
      apiVersion: next.apiVersion, now, ...(w.subresource ? { subresource: w.subresource } : {}),
    });
    if (!next.metadata.managedFields?.length) delete next.metadata.managedFields;
    if (w.subresource !== "status") {
      await admit(this.opts.admission, this.opts.webhookName, {
        rt, operation: "UPDATE", object: next, oldObject: old, dryRun: !!w.dryRun, options: w.admissionOptions ?? {},
      });
    }
    if (sameState(old, next)) return old;
    this.#checkSize(next);
    if (w.dryRun) return next;
    const saved = this.store.commit("MODIFIED", storageKey(rt), next, old);
    // A status write checked .status only: the result is fully conformed only when `old` was.
    if (checks && (w.subresource !== "status" || conformedOld)) this.#conformed.set(saved, rt.schema as Obj);
    if (isCrd(rt)) this.#registerCrd(saved);
    if (saved.metadata.deletionTimestamp && !saved.metadata.finalizers?.length) {
      if (storageKey(rt) === NAMESPACES) this.#maybeFinishNamespace(name);
      else this.#remove(rt, saved);
    }
    return saved;
  }

  /** Delete, or only mark for deletion while finalizers remain. `gone` says whether the object left the store. */
  async delete(rt: ResourceType, old: KubeObject, opts: DeleteOptions = {}): Promise<{ object: KubeObject; gone: boolean }> {
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw errors.conflict(rt, old.metadata.name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw errors.conflict(rt, old.metadata.name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
    }
    if (opts.dryRun) return { object: old, gone: !old.metadata.finalizers?.length };
    if (storageKey(rt) === NAMESPACES) return this.#deleteNamespace(rt, old);
    if (old.metadata.finalizers?.length) {
      if (old.metadata.deletionTimestamp) return { object: old, gone: false };
      const next = withFreshMetadata(old);
      next.metadata.deletionTimestamp = timestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      next.metadata.generation = old.metadata.generation + 1;
      return { object: this.#commitLike(old, "MODIFIED", storageKey(rt), next), gone: false };
    }
    return { object: this.#remove(rt, old), gone: true };
  }

  #remove(rt: ResourceType, old: KubeObject): KubeObject {
    const saved = this.store.commit("DELETED", storageKey(rt), withFreshMetadata(old));
    if (isCrd(rt)) this.#dropCrd(saved);
    if (saved.metadata.namespace) this.#maybeFinishNamespace(saved.metadata.namespace);
    return saved;
  }

  #deleteNamespace(rt: ResourceType, old: KubeObject): { object: KubeObject; gone: boolean } {
    const name = old.metadata.name;
    let ns = old;
    if (!old.metadata.deletionTimestamp) {
      const next = withFreshMetadata(old);
      next.metadata.deletionTimestamp = timestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      next.status = { ...(isObject(next.status) ? next.status : {}), phase: "Terminating" };
      ns = this.store.commit("MODIFIED", NAMESPACES, next, old);
    }
    for (const key of this.store.resources()) {
      const contentRt = this.registry.all().find((r) => storageKey(r) === key);
      if (!contentRt?.namespaced) continue;
      for (const obj of this.store.list(key, name)) {
        if (!obj.metadata.finalizers?.length) {
          this.store.commit("DELETED", key, withFreshMetadata(obj));
        } else if (!obj.metadata.deletionTimestamp) {
          const next = withFreshMetadata(obj);
          next.metadata.deletionTimestamp = timestamp();
          next.metadata.deletionGracePeriodSeconds = 0;
          this.#commitLike(obj, "MODIFIED", key, next);
        }
      }
    }
    const gone = this.#maybeFinishNamespace(name);
    return { object: ns, gone };
  }

  /** Remove a terminating namespace once it holds nothing and has no finalizers left. */
  #maybeFinishNamespace(name: string): boolean {
    const ns = this.store.get(NAMESPACES, undefined, name);
    if (!ns) return true;
    if (!ns.metadata.deletionTimestamp || ns.metadata.finalizers?.length) return false;
    if (this.store.resources().some((key) => this.store.list(key, name).length > 0)) return false;
    this.store.commit("DELETED", NAMESPACES, withFreshMetadata(ns));
    return true;
  }

  #checkNamespaceOpen(rt: ResourceType, name: string, namespace: string | undefined): void {
    if (!namespace) throw errors.badRequest("the namespace of the object is not set");
    const ns = this.store.get(NAMESPACES, undefined, namespace);
    if (!ns) throw new ApiError(404, "NotFound", `namespaces "${namespace}" not found`, { name: namespace, kind: "namespaces" });
    if (ns.metadata.deletionTimestamp) {
      throw errors.forbidden(rt, name, `unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  /** What a real server puts in .status on create: dropped for status-subresource kinds, with a few defaults. */
  #initialStatus(rt: ResourceType, object: KubeObject, now: string): void {
    if (rt.hasStatus && rt.kind !== "Node") delete object.status;
    if (rt.group === "" && rt.kind === "Namespace") object.status = { phase: "Active" };
    if (rt.group === "" && rt.kind === "Pod") object.status = { phase: "Pending" };
    if (isCrd(rt)) {
      const types = resourceTypesOfCrd(object);
      const spec = object.spec as Obj;
      const condition = (type: string, reason: string, message: string) => ({ type, status: "True", lastTransitionTime: now, reason, message });
      object.status = {
        conditions: [
          condition("NamesAccepted", "NoConflicts", "no conflicts found"),
          condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        acceptedNames: clone(spec.names),
        storedVersions: [types[0]?.version],
      };
    }
  }

  /** Commit a metadata-only change of `old` (deletion marks); it stays as conformed as `old` was. */
  #commitLike(old: KubeObject, type: "MODIFIED", resource: string, next: KubeObject): KubeObject {
    const saved = this.store.commit(type, resource, next, old);
    const schema = this.#conformed.get(old);
    if (schema) this.#conformed.set(saved, schema);
    return saved;
  }

  /**
   * The CRD schema's defaults, pruning (or strict rejection) of unknown fields, and validation. Subtrees
   * identical to `base`'s at the same position are skipped (base passed all three against this schema).
   */
  #conform(rt: ResourceType, object: KubeObject, w: WriteOptions, base?: KubeObject): void {
    if (!rt.schema || !this.opts.crdValidation) return;
    this.#conformAgainst(rt, object, rt.schema, w, base, object.metadata.name);
  }

  /**
   * A status-subresource write: only .status is defaulted, pruned and validated (against the root's status
   * property and the root rules that can involve it, see statusRootSchema); the rest of the object is the
   * stored one, shared untouched.
   */
  #conformStatus(rt: ResourceType, object: KubeObject, w: WriteOptions, base?: KubeObject): void {
    if (!rt.schema || !this.opts.crdValidation) return;
    const view: Obj = object.status === undefined ? {} : { status: object.status };
    const prev = base && base.status !== undefined ? { status: base.status } : undefined;
    this.#conformAgainst(rt, view, statusRootSchema(rt.schema), w, prev, object.metadata.name);
    if (view.status === undefined) delete object.status;
    else object.status = view.status;
  }

  #conformAgainst(rt: ResourceType, object: Obj, schema: Obj, w: WriteOptions, base: Obj | undefined, name: string): void {
    applyDefaults(object, schema, base);
    const unknown = pruneUnknown(object, schema, "", base);
    if (unknown.length > 0) {
      const mode = w.fieldValidation ?? "Warn";
      if (mode === "Strict") throw errors.badRequest(`strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(", ")}`);
      if (mode === "Warn") w.warnings?.push(...unknown.map((u) => `unknown field "${u}"`));
    }
    const causes = validateSchema(object, schema, "", base);
    if (causes.length > 0) throw errors.invalid(rt, name, causes);
  }

  /** The exact JSON size against etcd's limit; shared frozen subtrees are measured once (jsonBytes). */
  #checkSize(object: KubeObject): void {
    if (jsonBytes(object) > this.opts.maxObjectBytes) {
      throw errors.tooLarge(`etcdserver: request is too large (object ${object.metadata.name} exceeds ${this.opts.maxObjectBytes} bytes)`);
    }
  }

  #registerCrd(crd: KubeObject): void {
    const types = resourceTypesOfCrd(crd);
    this.registry.unregisterCrd(crd.metadata.name);
    for (const t of types) this.registry.register(t, crd.metadata.name);
  }

  #dropCrd(crd: KubeObject): void {
    for (const key of this.registry.unregisterCrd(crd.metadata.name)) {
      for (const obj of this.store.list(key)) this.store.commit("DELETED", key, withFreshMetadata(obj));
    }
  }
}
