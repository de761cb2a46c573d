// The guarded read-modify-write through which the CLI and the lab edit a ClusterNetwork (spec.mode, the
// rollout knobs, the migration-control annotation): the read's resourceVersion is the patch's precondition.
import { GenericKind, K8s } from "kubernetes-fluent-client";
import { statusOf } from "./client";
import { ClusterNetworkGVK } from "./kinds";
import { CONTENT, resourcePath, restWrite } from "./rest-writes";
import type { KObj } from "./store";

/** One JSON patch (RFC 6902) operation as the editors build it. */
export type EditOp = { readonly op: string; readonly path: string; readonly value?: unknown };

/** How an edit reads and patches one object (the API through kfc and a direct PATCH; a test can stand in). */
export interface ObjectIO {
  get(): Promise<KObj>;
  patch(ops: readonly EditOp[]): Promise<unknown>;
}

/**
 * Read-modify-write with the read's resourceVersion as a precondition (a JSON patch `test`), retried on a
 * fresh read when the object changed in between. The controller writes the ClusterNetwork all through a
 * migration (status, and the removal of a consumed control annotation, which drops an emptied annotations
 * map altogether); without the precondition a patch built from a stale read could fail on a path that just
 * vanished, or undo a change it never saw. `build` returns the operations for what it read (none: nothing
 * to do); T is the caller's view of the object. Resolves with the object the edit was built from; rejects with the server's answer when the
 * object had not changed (a real refusal), on 401/403/404, or after `attempts` conflicts.
 */
export async function editObject<T = KObj>(io: ObjectIO, build: (o: T) => readonly EditOp[], attempts = 8): Promise<T> {
  for (let i = 1; ; i++) {
    const read = await io.get();
    const o = read as T;
    const ops = build(o);
    if (ops.length === 0) return o;
    const rv = read.metadata?.resourceVersion;
    try {
      await io.patch(rv ? [{ op: "test", path: "/metadata/resourceVersion", value: rv }, ...ops] : ops);
      return o;
    } catch (e) {
      const status = statusOf(e);
      if (status === 401 || status === 403 || status === 404 || i >= attempts) throw e;
      // Only a changed object makes a retry worth it: an unchanged one would be refused the same way again.
      if ((await io.get()).metadata?.resourceVersion === rv) throw e;
    }
  }
}

/** The ClusterNetwork `name` on the kubeconfig's API server; patches carry the field manager `fieldManager`. */
export function clusterNetworkIO(name: string, fieldManager = "switchyard-cli"): ObjectIO {
  return {
    get: async () => (await K8s(GenericKind, { kindOverride: ClusterNetworkGVK }).Get(name)) as KObj,
    patch: (ops) => restWrite("PATCH", resourcePath("ClusterNetwork", { name }), { fieldManager }, ops, CONTENT.jsonPatch),
  };
}
