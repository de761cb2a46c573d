// The shapes of every name and value that a plan carries into kernel-facing text (nft scripts,
// iptables-restore and ipset input, bird.conf, `ip -batch` lines). Why one file: a plan is DATA, and the
// only way a value can become code in those languages is by carrying a character the language reads as
// syntax (a quote, a brace, a semicolon, a newline, a space). So each kind of value has one pattern with
// none of those, used twice: by the NodeNetwork schema (the API server and the agent's parse refuse a bad
// plan) and by the renderers (defence in depth: they throw rather than emit text from a value that got
// past both). Pure.
import { IPV4_CIDR_PATTERN, IPV4_PATTERN } from "./ipv4";

/** A kernel interface name: at most 15 bytes (IFNAMSIZ - 1), no space, quote, slash or colon; not an option (`-x`). */
export const IFNAME_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$";
/** A BIRD interface pattern (`interface "eth*"`): an interface name that may hold the wildcards `*` and `?`. */
export const IFNAME_GLOB_PATTERN = "^[A-Za-z0-9_*?][A-Za-z0-9_.*?-]{0,14}$";
/**
 * A content id of a policy-set chain or an address group: the nft chain/set name, the iptables chain name
 * (`SY-IN-<id>`, 28 bytes at most) and the ipset name (`sy-n-<id>-t`, 31 at most) are built from it.
 */
export const PLAN_ID_PATTERN = "^[A-Za-z0-9_]{1,22}$";
/** A BIRD symbol (protocol name): a letter or `_`, then letters, digits and `_`. */
export const BIRD_SYMBOL_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,254}$";
/** A MAC address, colon-separated. */
export const MAC_PATTERN = "^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$";
/** A Kubernetes DNS label (namespace names). */
export const DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
/** A Kubernetes DNS subdomain (node, pod and policy names). */
export const DNS_SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$";
/**
 * Free text that only ever ends up inside a comment (`# ...` in bird.conf, an nft or iptables comment):
 * printable, without the quote and backslash that would close or escape the comment's string, and
 * without the line breaks that would end a `#` comment.
 */
export const COMMENT_TEXT_PATTERN = '^[^"\\\\\\x00-\\x1f\\x7f]*$';
/** An IPv4 address or CIDR (a route destination). */
export const IPV4_OR_CIDR_PATTERN = `(${IPV4_PATTERN})|(${IPV4_CIDR_PATTERN})`;

const KINDS = {
  "interface name": new RegExp(IFNAME_PATTERN),
  "interface pattern": new RegExp(IFNAME_GLOB_PATTERN),
  "plan id": new RegExp(PLAN_ID_PATTERN),
  "BIRD symbol": new RegExp(BIRD_SYMBOL_PATTERN),
  "MAC address": new RegExp(MAC_PATTERN),
  "comment text": new RegExp(COMMENT_TEXT_PATTERN),
  "node name": new RegExp(DNS_SUBDOMAIN_PATTERN),
  "IPv4 address": new RegExp(IPV4_PATTERN),
  "IPv4 CIDR": new RegExp(IPV4_CIDR_PATTERN),
} as const;

export type KernelValueKind = keyof typeof KINDS | "port" | "AS number" | "protocol" | "unsigned 32-bit integer" | "enum value";

/** A value refused by a renderer: what it is, where it was, and the value itself (JSON-quoted in the message). */
export class UnsafeKernelValueError extends Error {
  constructor(
    readonly kind: KernelValueKind,
    readonly where: string,
    readonly value: unknown,
  ) {
    super(`refusing to render ${where}: not a valid ${kind}: ${JSON.stringify(value)}`);
    this.name = "UnsafeKernelValueError";
  }
}

/** True when `value` is a string of the given kind. */
export function isKernelValue(kind: keyof typeof KINDS, value: unknown): value is string {
  return typeof value === "string" && KINDS[kind].test(value);
}

/** `value` when it is a string of the given kind; throws UnsafeKernelValueError otherwise. For renderers. */
export function safeKernelValue(kind: keyof typeof KINDS, value: unknown, where: string): string {
  if (!isKernelValue(kind, value)) throw new UnsafeKernelValueError(kind, where, value);
  return value;
}

/** An IPv4 address or CIDR, for renderers. */
export function safeIpv4OrCidr(value: unknown, where: string): string {
  if (isKernelValue("IPv4 address", value) || isKernelValue("IPv4 CIDR", value)) return value;
  throw new UnsafeKernelValueError("IPv4 CIDR", where, value);
}

/** An integer in min..max, as text, for renderers. */
export function safeInt(value: unknown, min: number, max: number, kind: KernelValueKind, where: string): string {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) throw new UnsafeKernelValueError(kind, where, value);
  return String(value);
}

/** A NetworkPolicy protocol, lower-cased for nft/iptables/ipset, for renderers. */
export function safeProtocol(value: unknown, where: string): "tcp" | "udp" | "sctp" {
  if (value === "TCP" || value === "UDP" || value === "SCTP") return value.toLowerCase() as "tcp" | "udp" | "sctp";
  throw new UnsafeKernelValueError("protocol", where, value);
}
