// Direct access to the emulator's objects for tests and the lab: read without HTTP, and write through the
// same writer the HTTP handlers use (same resourceVersions, watch events, admission and finalizer rules).

import { serverSideApply } from "./apply";
import { errors } from "./errors";
import { isObject } from "./json";
import { mergePatch } from "./merge-patch";
import { timestamp } from "./meta";
import { type ResourceRegistry, storageKey } from "./resources";
import { type ObjectStore } from "./store";
import { type KubeObject, type Obj, type ResourceType, type StoreEvent } from "./types";
import { type Writer } from "./writer";

export interface ObjectInput extends Obj {
  apiVersion: string;
  kind: string;
  metadata: Obj & { name?: string; namespace?: string };
}

export class StoreAccess {
  constructor(
    private readonly store: ObjectStore,
    private readonly registry: ResourceRegistry,
    private readonly writer: Writer,
  ) {}

  /** The current global resourceVersion. */
  get resourceVersion(): number {
    return this.store.resourceVersion;
  }

  #type(apiVersion: string, kind: string): ResourceType {
    const rt = this.registry.byKind(apiVersion, kind);
    if (!rt) throw new Error(`the emulator serves no ${kind} in ${apiVersion}`);
    return rt;
  }

  get(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined {
    return this.store.get(storageKey(this.#type(apiVersion, kind)), namespace, name);
  }

  list(apiVersion: string, kind: string, namespace?: string): KubeObject[] {
    return this.store.list(storageKey(this.#type(apiVersion, kind)), namespace);
  }

  /** Events committed after `rv` that are still in the history (undefined if some were compacted). */
  history(rv: number): StoreEvent[] | undefined {
    return this.store.since(rv);
  }

  create(obj: ObjectInput, manager = "switchyard-lab"): Promise<KubeObject> {
    const rt = this.#type(obj.apiVersion, obj.kind);
    return this.writer.exclusive(() => this.writer.create(rt, obj, { manager }));
  }

  /** Server-side apply, like `PATCH` with application/apply-patch+yaml. */
  apply(obj: ObjectInput, opts: { manager?: string; force?: boolean } = {}): Promise<KubeObject> {
    const rt = this.#type(obj.apiVersion, obj.kind);
    const manager = opts.manager ?? "switchyard-lab";
    const name = String(obj.metadata.name ?? "");
    const namespace = rt.namespaced ? String(obj.metadata.namespace ?? "") : undefined;
    return this.writer.exclusive(async () => {
      const live = this.store.get(storageKey(rt), namespace, name);
      const result = serverSideApply({ rt, live, config: obj, manager, force: !!opts.force, scope: "main", now: timestamp() });
      if (!live) {
        const meta = isObject(result.object.metadata) ? result.object.metadata : {};
        result.object.metadata = { ...meta, name, ...(namespace !== undefined ? { namespace } : {}) };
        return this.writer.create(rt, result.object, { manager, managedFields: result.managedFields });
      }
      return this.writer.update(rt, live, result.object, { manager, managedFields: result.managedFields });
    });
  }

  /** Merge `status` into the object's status (the status subresource, so generation does not move). */
  patchStatus(apiVersion: string, kind: string, name: string, namespace: string | undefined, status: Obj, manager = "switchyard-lab"): Promise<KubeObject> {
    const rt = this.#type(apiVersion, kind);
    return this.writer.exclusive(async () => {
      const live = this.store.get(storageKey(rt), namespace, name);
      if (!live) throw errors.notFound(rt, name);
      const next = mergePatch(live, { status }) as Obj;
      return this.writer.update(rt, live, next, { manager, ...(rt.hasStatus ? { subresource: "status" as const } : {}) });
    });
  }

  /** Delete (or mark for deletion while finalizers remain); resolves false when the object did not exist. */
  delete(apiVersion: string, kind: string, name: string, namespace?: string): Promise<boolean> {
    const rt = this.#type(apiVersion, kind);
    return this.writer.exclusive(async () => {
      const live = this.store.get(storageKey(rt), namespace, name);
      if (!live) return false;
      await this.writer.delete(rt, live);
      return true;
    });
  }
}
