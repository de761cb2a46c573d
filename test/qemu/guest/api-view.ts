// Why: the migration check waits on what the controller and agents report (ClusterNetwork status phases,
// NodeNetwork appliedHash) and prints every migration phase as it happens. Polling the API in the qemu
// guest costs CPU that the traffic being measured needs, so this keeps a watched copy of one kind (kfc
// Watch, the same client the controller uses) and wakes waiters on every event: a wait is a condition
// checked on each change, bounded by a timeout, never a sleep.
import { GenericKind, K8s } from "kubernetes-fluent-client";

export interface ViewObject {
  readonly metadata?: { readonly name?: string; readonly generation?: number };
  readonly spec?: Record<string, unknown>;
  readonly status?: Record<string, unknown>;
}

export interface Gvk {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
}

export class ApiView {
  private readonly objects = new Map<string, ViewObject>();
  private readonly waiters = new Set<() => void>();
  private watcher: { close(): void } | undefined;

  constructor(
    private readonly gvk: Gvk,
    /** Called with every object the watch delivers (after it is stored). */
    private readonly onEvent?: (o: ViewObject) => void,
  ) {}

  async start(): Promise<void> {
    const api = K8s(GenericKind, { kindOverride: this.gvk });
    const list = (await api.Get()) as unknown as { items: ViewObject[] };
    for (const o of list.items) this.store(o);
    const w = api.Watch(
      (obj, phase) => {
        const o = obj as unknown as ViewObject;
        if (phase === "DELETED") this.objects.delete(o.metadata?.name ?? "");
        else if (phase === "ADDED" || phase === "MODIFIED") this.store(o);
        for (const wake of [...this.waiters]) wake();
      },
      { resyncDelaySec: 1, relistIntervalSec: 600 },
    );
    await w.start();
    this.watcher = w;
  }

  private store(o: ViewObject): void {
    this.objects.set(o.metadata?.name ?? "", o);
    this.onEvent?.(o);
  }

  get(name: string): ViewObject | undefined {
    return this.objects.get(name);
  }

  all(): ViewObject[] {
    return [...this.objects.values()];
  }

  /**
   * Resolves with the first non-undefined value of `check`, evaluated now and after every watch event;
   * rejects after `timeoutMs` with `what` and `describe()` (the state that did not satisfy it).
   */
  until<T>(what: string, check: () => T | undefined, timeoutMs: number, describe: () => string = () => ""): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const wake = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (e) {
          finish();
          reject(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const timer = setTimeout(() => {
        finish();
        const state = describe();
        reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${state ? `; last seen: ${state}` : ""}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      this.waiters.add(wake);
      wake();
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    for (const wake of [...this.waiters]) wake();
  }
}
