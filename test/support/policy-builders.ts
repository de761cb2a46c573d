// Small builders for policy-engine tests and fixtures (golden files, property tests). Pure.
import type { ContainerPort, NamespaceInfo, PodInfo, PolicySnapshot, Protocol } from "../../src/model/cluster";

export function buildNamespace(name: string, labels: Record<string, string> = {}): NamespaceInfo {
  return { name, labels: { "kubernetes.io/metadata.name": name, ...labels } };
}

export interface PodOptions {
  readonly node?: string;
  readonly ip?: string;
  readonly hostNetwork?: boolean;
  /** `name:port/PROTO`, `port/PROTO` or `name:port` (TCP). */
  readonly ports?: readonly string[];
}

export function buildContainerPort(spec: string): ContainerPort {
  const m = /^(?:([a-z0-9-]+):)?(\d+)(?:\/(TCP|UDP|SCTP))?$/.exec(spec);
  if (!m) throw new Error(`bad port spec ${spec}`);
  const protocol = (m[3] ?? "TCP") as Protocol;
  return m[1] !== undefined ? { name: m[1], containerPort: Number(m[2]), protocol } : { containerPort: Number(m[2]), protocol };
}

/** `ref` is `ns/name`. */
export function buildPod(ref: string, labels: Record<string, string>, opts: PodOptions = {}): PodInfo {
  const [namespace, name] = ref.split("/") as [string, string];
  return {
    namespace,
    name,
    labels,
    node: opts.node ?? "n1",
    ...(opts.ip !== undefined ? { ip: opts.ip } : {}),
    hostNetwork: opts.hostNetwork ?? false,
    ports: (opts.ports ?? []).map(buildContainerPort),
  };
}

/** A NetworkPolicy object as the API would return it; `ref` is `ns/name`. */
export function buildPolicy(ref: string, spec: Record<string, unknown>): Record<string, unknown> {
  const [namespace, name] = ref.split("/") as [string, string];
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace, name }, spec };
}

export function buildSnapshot(namespaces: readonly NamespaceInfo[], pods: readonly PodInfo[], policies: readonly unknown[]): PolicySnapshot {
  return { namespaces, pods, policies };
}
