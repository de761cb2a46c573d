// Writes under a field manager of our own. kubernetes-fluent-client names every server-side apply "pepr"
// and leaves the manager of other writes to the server (its user agent, "kubernetes-fluent-client"), so on
// a real API server the controller's and every agent's writes would be indistinguishable in managedFields,
// and a conflict could never say who owns a field. These few verbs go out directly instead, with the
// kubeconfig kfc would use (client-node's loader: $KUBECONFIG, ~/.kube/config or in-cluster) and
// `fieldManager` set; reads and watches stay on kfc. Rejections have kfc's shape ({ status, data }), so
// statusOf/describeError read both alike.
import type { RequestOptions } from "node:https";
import type { KubeKind, ObjectRef } from "./client";

type Where = { readonly prefix: string; readonly plural: string; readonly namespaced: boolean };

const RESOURCES: Record<KubeKind, Where> = {
  ClusterNetwork: { prefix: "/apis/switchyard.dev/v1alpha1", plural: "clusternetworks", namespaced: false },
  NodeNetwork: { prefix: "/apis/switchyard.dev/v1alpha1", plural: "nodenetworks", namespaced: false },
  BlockAffinity: { prefix: "/apis/switchyard.dev/v1alpha1", plural: "blockaffinities", namespaced: false },
  Node: { prefix: "/api/v1", plural: "nodes", namespaced: false },
  Pod: { prefix: "/api/v1", plural: "pods", namespaced: true },
  Namespace: { prefix: "/api/v1", plural: "namespaces", namespaced: false },
  NetworkPolicy: { prefix: "/apis/networking.k8s.io/v1", plural: "networkpolicies", namespaced: true },
  Lease: { prefix: "/apis/coordination.k8s.io/v1", plural: "leases", namespaced: true },
  Event: { prefix: "/api/v1", plural: "events", namespaced: true },
  Secret: { prefix: "/api/v1", plural: "secrets", namespaced: true },
};

/** The REST path of a kind's collection (no name) or of one object, with an optional subresource. */
export function resourcePath(k: KubeKind, ref: Partial<ObjectRef>, subresource?: string): string {
  const r = RESOURCES[k];
  const ns = r.namespaced ? `/namespaces/${encodeURIComponent(ref.namespace ?? "default")}` : "";
  const name = ref.name !== undefined ? `/${encodeURIComponent(ref.name)}` : "";
  return `${r.prefix}${ns}/${r.plural}${name}${subresource && ref.name !== undefined ? `/${subresource}` : ""}`;
}

export const CONTENT = {
  apply: "application/apply-patch+yaml",
  jsonPatch: "application/json-patch+json",
  mergePatch: "application/merge-patch+json",
  json: "application/json",
} as const;

/** One request with the current kubeconfig's server and credentials; resolves with the parsed body. */
export function restWrite(method: "POST" | "PATCH" | "DELETE", path: string, query: Readonly<Record<string, string>>, body: unknown, contentType: string): Promise<unknown> {
  return restRequest(method, path, query, body, contentType);
}

/**
 * A GET of one object's metadata only (PartialObjectMetadata: no spec, no status), on a connection of its
 * own with a short timeout: the cheap "what is the current resourceVersion" question a watcher asks to
 * find out whether its stream still follows the object.
 */
export async function restGetMetadata(path: string, timeoutMs: number): Promise<{ metadata?: { resourceVersion?: string } }> {
  return (await restRequest("GET", path, {}, undefined, CONTENT.json, { accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json", timeoutMs, fresh: true })) as { metadata?: { resourceVersion?: string } };
}

async function restRequest(
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  query: Readonly<Record<string, string>>,
  body: unknown,
  contentType: string,
  o: { readonly accept?: string; readonly timeoutMs?: number; readonly fresh?: boolean } = {},
): Promise<unknown> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in the kubeconfig");
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const url = new URL(`${cluster.server.replace(/\/$/, "")}${path}`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const { request } = url.protocol === "https:" ? await import("node:https") : await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ...opts,
        method,
        timeout: timeoutMs,
        ...(o.fresh ? { agent: false } : {}),
        headers: { ...(opts.headers as Record<string, string> | undefined), accept: o.accept ?? "application/json", ...(payload !== undefined ? { "content-type": contentType } : {}) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          let data: unknown = text;
          try {
            data = text === "" ? {} : JSON.parse(text);
          } catch {
            /* not JSON: keep the text */
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(data);
          else reject({ status, statusText: res.statusMessage ?? "", data });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs / 1000} s`)));
    req.on("error", reject);
    req.end(payload);
  });
}
