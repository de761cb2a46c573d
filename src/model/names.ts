// Deterministic names for kernel objects, derived from content so that every node, the lab and the agent
// agree on them without coordination. Pure.
import { createHash } from "node:crypto";

export function shortHash(text: string, hexChars = 12): string {
  return createHash("sha256").update(text).digest("hex").slice(0, hexChars);
}

/**
 * The host-side veth name of a pod: "sy" + 12 hex chars of sha256("namespace/name") = 14 characters,
 * inside the kernel's 15-character IFNAMSIZ limit. The CNI side (the lab, or the CNI plugin) names the
 * veth this way, and policy rules key on it (`oifname`/`iifname`), as Calico does with its cali* names.
 */
export function podInterfaceName(namespace: string, name: string): string {
  return `sy${shortHash(`${namespace}/${name}`)}`;
}
