// The object store: objects per resource, one global integer resourceVersion bumped by every committed
// change, and a bounded history of change events so a watch can resume from any recent resourceVersion
// (the client-node informer rewatches from its last RV without relisting; without replay it would miss
// whatever happened while it was disconnected). Watches older than the history get 410 Expired.

import { deepFreeze } from "./json";
import { type KubeObject, type StoreEvent, type WatchEventType } from "./types";

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}

function compareObjects(a: KubeObject, b: KubeObject): number {
  const ka = objectKey(a.metadata.namespace, a.metadata.name);
  const kb = objectKey(b.metadata.namespace, b.metadata.name);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export class ObjectStore {
  #rv = 0;
  #objects = new Map<string, Map<string, KubeObject>>();
  #history: StoreEvent[] = [];
  #historyStart = 0;
  #compactedThrough = 0;
  #listeners = new Set<(event: StoreEvent) => void>();

  constructor(private readonly historySize: number) {}

  /** The current resourceVersion (the RV of the last committed change). */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** Events with rv <= this value are gone from the history. */
  get compactedThrough(): number {
    return this.#compactedThrough;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#objects.get(resource)?.get(objectKey(namespace, name));
  }

  /** Objects of a resource, optionally in one namespace, sorted by namespace/name. */
  list(resource: string, namespace?: string): KubeObject[] {
    const all = [...(this.#objects.get(resource)?.values() ?? [])];
    const items = namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
    return items.sort(compareObjects);
  }

  /** Keys of every resource that holds at least one object. */
  resources(): string[] {
    return [...this.#objects.entries()].filter(([, m]) => m.size > 0).map(([k]) => k);
  }

  /**
   * Commit one change: stamp the next resourceVersion on `object`, store it (or remove it for DELETED),
   * record it in the history and tell every listener. The object is frozen from here on.
   */
  commit(type: WatchEventType, resource: string, object: KubeObject, oldObject?: KubeObject): KubeObject {
    const rv = ++this.#rv;
    object.metadata.resourceVersion = String(rv);
    deepFreeze(object);
    let bucket = this.#objects.get(resource);
    if (!bucket) {
      bucket = new Map();
      this.#objects.set(resource, bucket);
    }
    const key = objectKey(object.metadata.namespace, object.metadata.name);
    if (type === "DELETED") bucket.delete(key);
    else bucket.set(key, object);
    const event: StoreEvent = { type, resource, object, rv };
    if (oldObject) event.oldObject = oldObject;
    this.#record(event);
    for (const listener of this.#listeners) listener(event);
    return object;
  }

  #record(event: StoreEvent): void {
    this.#history.push(event);
    while (this.#history.length - this.#historyStart > this.historySize) {
      const dropped = this.#history[this.#historyStart++];
      if (dropped) this.#compactedThrough = dropped.rv;
    }
    if (this.#historyStart > 1024 && this.#historyStart > this.historySize) {
      this.#history = this.#history.slice(this.#historyStart);
      this.#historyStart = 0;
    }
  }

  /** Events after `rv`, oldest first, or undefined when some of them were already compacted away. */
  since(rv: number): StoreEvent[] | undefined {
    if (rv < this.#compactedThrough) return undefined;
    const out: StoreEvent[] = [];
    for (let i = this.#history.length - 1; i >= this.#historyStart; i--) {
      const event = this.#history[i] as StoreEvent;
      if (event.rv <= rv) break;
      out.push(event);
    }
    return out.reverse();
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
