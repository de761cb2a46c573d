// From API objects (as the watch delivers them) to the compiler's plain inputs. Tolerant: a field that
// is missing or malformed makes that object count as "not ready" with a reason, never a crash.
import type { ClusterNode, ContainerPort, NamespaceInfo, PodInfo, Protocol } from "../model/cluster";
import type { KObj } from "./store";
import { STATIC_IP_ANNOTATION, UNDERLAY_CIDR_ANNOTATION, UNDERLAY_MTU_ANNOTATION } from "../api/annotations";
import { parseIPv4 } from "../api/ipv4";

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strMap = (v: unknown): Record<string, string> => Object.fromEntries(Object.entries(rec(v)).filter(([, x]) => typeof x === "string")) as Record<string, string>;

export function nodeFromObject(o: KObj): { node?: ClusterNode; problem?: string } {
  const name = o.metadata?.name ?? "";
  const addresses = arr(rec(o["status"])["addresses"]).map(rec);
  const ip = addresses.find((a) => a["type"] === "InternalIP")?.["address"];
  const annotations = strMap(o.metadata?.annotations);
  const cidr = annotations[UNDERLAY_CIDR_ANNOTATION];
  if (typeof ip !== "string") return { problem: `node ${name} has no InternalIP address yet` };
  if (!cidr) return { problem: `node ${name} has no ${UNDERLAY_CIDR_ANNOTATION} annotation yet (its agent sets it)` };
  const mtu = Number(annotations[UNDERLAY_MTU_ANNOTATION]);
  return { node: { name, labels: strMap(o.metadata?.labels), ip, underlayCIDR: cidr, ...(Number.isFinite(mtu) && mtu > 0 ? { underlayMtu: mtu } : {}) } };
}

export function podFromObject(o: KObj): PodInfo | undefined {
  const spec = rec(o["spec"]);
  const status = rec(o["status"]);
  const node = spec["nodeName"];
  if (typeof node !== "string" || node === "") return undefined; // not scheduled: nothing to enforce yet
  if (status["phase"] === "Succeeded" || status["phase"] === "Failed") return undefined;
  const ports: ContainerPort[] = [];
  for (const c of arr(spec["containers"]).map(rec)) {
    for (const p of arr(c["ports"]).map(rec)) {
      const port = p["containerPort"];
      if (typeof port !== "number") continue;
      const protocol = (typeof p["protocol"] === "string" ? p["protocol"] : "TCP") as Protocol;
      ports.push({ ...(typeof p["name"] === "string" ? { name: p["name"] } : {}), containerPort: port, protocol });
    }
  }
  // Until the runtime reports the pod's address, the address its annotation requests (a kubelet passes no
  // request to the CNI plugin: the agent's endpoint marker carries this one to it, see src/agent/cni-install.ts).
  const ip = typeof status["podIP"] === "string" && status["podIP"] !== "" ? status["podIP"] : requestedAddress(o.metadata?.annotations?.[STATIC_IP_ANNOTATION]);
  return {
    namespace: o.metadata?.namespace ?? "default",
    name: o.metadata?.name ?? "",
    labels: strMap(o.metadata?.labels),
    node,
    ...(typeof ip === "string" && ip !== "" ? { ip } : {}),
    hostNetwork: spec["hostNetwork"] === true,
    ports,
  };
}

/** The one IPv4 address a `switchyard.dev/ip-addrs` annotation (a JSON list) requests; undefined otherwise. */
function requestedAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const list = JSON.parse(value) as unknown;
    return Array.isArray(list) && list.length === 1 && typeof list[0] === "string" && parseIPv4(list[0]) !== undefined ? list[0] : undefined;
  } catch {
    return undefined;
  }
}

export function namespaceFromObject(o: KObj): NamespaceInfo {
  const name = o.metadata?.name ?? "";
  return { name, labels: { ...strMap(o.metadata?.labels), "kubernetes.io/metadata.name": name } };
}

/**
 * The object with every null-valued key removed, at any depth (array items kept). A real API server keeps
 * a map that server-side apply emptied (every field of it dropped from the applied config) as `null`,
 * where the plan's types say "absent or an object"; the emulator removed it. Readers of our own objects
 * go through this so both look the same.
 */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => withoutNulls(v)) as T;
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
  return out as T;
}
