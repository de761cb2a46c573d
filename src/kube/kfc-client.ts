// The KubeClient port on kubernetes-fluent-client: the only place the controller's and the leader
// election's API traffic touches kfc. kfc finds its kubeconfig lazily ($KUBECONFIG, ~/.kube/config or
// in-cluster) on each call, and is itself loaded on first use: importing it costs seconds, which a process
// given another client (the unit tests' in-memory fake) never needs to pay. Constructing this client
// costs nothing and needs no cluster yet.
import type { K8s as K8sFn, WatchCfg } from "kubernetes-fluent-client";
import { BlockAffinityGVK, ClusterNetworkGVK, NodeNetworkGVK } from "../api/kinds";
import { statusOf, type JsonPatchOp, type KubeClient, type KubeKind, type ObjectList, type ObjectRef, type WatchHandle, type WatchHandler } from "./client";
import type * as KindsModule from "./kinds";
import { CONTENT, resourcePath, restWrite } from "./rest-writes";
import type { KObj } from "./store";

/**
 * The controller's watch settings: a quick resync after a dropped stream, kfc's relist every 10 minutes,
 * and a re-list when a stream has been silent for 5 minutes (a half-open connection delivers nothing).
 */
export const CONTROLLER_WATCH: WatchCfg = { resyncDelaySec: 1, relistIntervalSec: 600, lastSeenLimitSeconds: 300 };

type Filters = { name?: string; namespace?: string };
type Api = ReturnType<typeof K8sFn>;
type Kfc = { K8s: typeof K8sFn; kinds: typeof KindsModule };

let loading: Promise<Kfc> | undefined;
const loadKfc = (): Promise<Kfc> => (loading ??= Promise.all([import("kubernetes-fluent-client"), import("./kinds")]).then(([m, kinds]) => ({ K8s: m.K8s, kinds })));

async function apiFor(k: KubeKind, filters: Filters = {}): Promise<Api> {
  const { K8s, kinds } = await loadKfc();
  const { GenericKind, kind, LeaseGVK } = kinds;
  switch (k) {
    case "ClusterNetwork":
      return K8s(GenericKind, { kindOverride: ClusterNetworkGVK, ...filters }) as unknown as Api;
    case "NodeNetwork":
      return K8s(GenericKind, { kindOverride: NodeNetworkGVK, ...filters }) as unknown as Api;
    case "BlockAffinity":
      return K8s(GenericKind, { kindOverride: BlockAffinityGVK, ...filters }) as unknown as Api;
    case "Lease":
      return K8s(GenericKind, { kindOverride: LeaseGVK, ...filters }) as unknown as Api;
    case "Node":
      return K8s(kind.Node, filters) as unknown as Api;
    case "Pod":
      return K8s(kind.Pod, filters) as unknown as Api;
    case "Namespace":
      return K8s(kind.Namespace, filters) as unknown as Api;
    case "NetworkPolicy":
      return K8s(kind.NetworkPolicy, filters) as unknown as Api;
    case "Event":
      return K8s(kind.CoreEvent, filters) as unknown as Api;
    case "Secret":
      return K8s(kind.Secret, filters) as unknown as Api;
  }
}

const inNamespace = (namespace: string | undefined): Filters => (namespace ? { namespace } : {});
const withKind = (o: KObj, k: KubeKind): KObj => ({ ...o, kind: o.kind ?? k });

export class KfcClient implements KubeClient {
  /**
   * `fieldManager`: the name this client's writes carry on the server (managedFields, conflicts);
   * `watchConfig`: kfc's watch settings (the controller's by default).
   */
  constructor(
    private readonly fieldManager = "switchyard-controller",
    private readonly watchConfig: WatchCfg = CONTROLLER_WATCH,
  ) {}

  async list(k: KubeKind, opts: { readonly namespace?: string } = {}): Promise<ObjectList> {
    const list = (await (await apiFor(k, inNamespace(opts.namespace))).Get()) as unknown as { metadata?: { resourceVersion?: string }; items: KObj[] };
    const rv = list.metadata?.resourceVersion;
    return { items: list.items.map((o) => withKind(o, k)), ...(rv !== undefined ? { resourceVersion: rv } : {}) };
  }

  async get(k: KubeKind, ref: ObjectRef): Promise<KObj | undefined> {
    try {
      return withKind((await (await apiFor(k, inNamespace(ref.namespace))).Get(ref.name)) as unknown as KObj, k);
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  async watch(k: KubeKind, onEvent: WatchHandler, opts: { readonly name?: string } = {}): Promise<WatchHandle> {
    const all = await apiFor(k);
    const api = opts.name !== undefined ? all.WithField("metadata.name" as never, opts.name) : all;
    const w = api.Watch((obj, phase) => {
      if (phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED") onEvent(phase, withKind(obj as KObj, k));
    }, this.watchConfig);
    await w.start();
    return { close: () => w.close() };
  }

  // Writes: directly, under this client's field manager (kfc would name them all "pepr"; rest-writes.ts).

  async apply(k: KubeKind, obj: KObj, opts: { readonly force?: boolean } = {}): Promise<KObj> {
    const ref = { name: obj.metadata?.name ?? "", ...inNamespace(obj.metadata?.namespace) };
    const query = { fieldManager: this.fieldManager, fieldValidation: "Strict", force: String(opts.force ?? false) };
    return (await restWrite("PATCH", resourcePath(k, ref), query, obj, CONTENT.apply)) as KObj;
  }

  async patch(k: KubeKind, ref: ObjectRef, ops: readonly JsonPatchOp[]): Promise<KObj> {
    return (await restWrite("PATCH", resourcePath(k, ref), { fieldManager: this.fieldManager }, ops, CONTENT.jsonPatch)) as KObj;
  }

  async patchStatus(k: KubeKind, ref: ObjectRef, status: unknown): Promise<KObj> {
    return (await restWrite("PATCH", resourcePath(k, ref, "status"), { fieldManager: this.fieldManager }, { status }, CONTENT.mergePatch)) as KObj;
  }

  async create(k: KubeKind, obj: KObj): Promise<KObj> {
    return (await restWrite("POST", resourcePath(k, { ...inNamespace(obj.metadata?.namespace) }), { fieldManager: this.fieldManager }, obj, CONTENT.json)) as KObj;
  }

  async delete(k: KubeKind, ref: ObjectRef): Promise<void> {
    try {
      await restWrite("DELETE", resourcePath(k, ref), {}, undefined, CONTENT.json);
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
  }
}
