// Canonical JSON, stable ordering and CIDR set arithmetic for the policy compiler. Pure.
// Identities (group, rule, chain ids) are sha256 over canonical JSON, so equal content always gets the
// same name on every node and in every run, whatever order the input arrived in.
import * as crypto from "node:crypto";
import { shortHash } from "../../model/names";
import { type Cidr, cidrContains, cidrCovers, cidrsOverlap, formatCidr, networkOf, parseCidr, parseIPv4 } from "../../api/ipv4";

// Node >= 20.12 (package.json asks for >= 20.19); looked up, not assumed, so an older runtime still works.
const cryptoHash: typeof crypto.hash | undefined = (crypto as { hash?: typeof crypto.hash }).hash;

/** Characters JSON.stringify escapes: quote, backslash, controls and (well-formed stringify) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON with object keys sorted at every level; arrays keep their order (sort them before when order is not meaningful). */
export function canonicalJson(value: unknown): string {
  // Fast paths that print exactly what JSON.stringify prints (strings needing no escape, finite numbers).
  if (typeof value === "string") return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out += (i > 0 ? "," : "") + canonicalJson(v === undefined ? null : v);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  // The default sort compares UTF-16 code units, as compareStrings does (own keys are unique).
  const keys = Object.keys(record).sort();
  let out = "{";
  let first = true;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    out += `${first ? "" : ","}${NEEDS_ESCAPE.test(k) ? JSON.stringify(k) : `"${k}"`}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** A 12-hex-char content identity of `value`. */
export function contentId(value: unknown): string {
  return textId(canonicalJson(value));
}

/**
 * `shortHash(text)` (the first `hexChars` hex chars of sha256 over the UTF-8 text), with the one-shot
 * `crypto.hash` where the runtime has it: same digest, without a Hash object per call.
 */
export function textId(text: string, hexChars = 12): string {
  return typeof cryptoHash === "function" ? cryptoHash("sha256", text, "hex").slice(0, hexChars) : shortHash(text, hexChars);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareNumbers(a: number, b: number): number {
  return a - b;
}

/** Orders dotted-quad addresses numerically (unparseable ones last, by text). */
export function compareIPv4(a: string, b: string): number {
  const x = parseIPv4(a);
  const y = parseIPv4(b);
  if (x !== undefined && y !== undefined) return x - y;
  if (x !== undefined) return -1;
  if (y !== undefined) return 1;
  return compareStrings(a, b);
}

export function sortedUniqueStrings(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareStrings);
}

/**
 * `sortedUniqueStrings(values).sort(compareIPv4)`, parsing each address once instead of in every
 * comparison: unique addresses in numeric order, then the unparseable ones by text. `addrs[i]`, when
 * given, is `parseIPv4(values[i])` already computed by the caller.
 *
 * The addresses come back as new strings, built in their sorted order (each checked equal to its input):
 * a large group's member list is then compact in memory instead of pointing at strings spread over the
 * whole snapshot, which makes serialising it into every node's plan markedly cheaper.
 */
export function sortUniqueIPv4(values: readonly string[], addrs?: ArrayLike<number | undefined>): string[] {
  const byAddr = new Map<number, string>();
  const other = new Set<string>();
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const a = addrs !== undefined ? addrs[i] : parseIPv4(v);
    if (a === undefined) other.add(v);
    else if ((byAddr.get(a) ?? v) !== v) return sortedUniqueStrings(values).sort(compareIPv4); // two spellings of one address
    else byAddr.set(a, v);
  }
  const sorted = Float64Array.from(byAddr.keys()).sort();
  const out = Array.from(sorted, (a) => {
    const text = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
    const v = byAddr.get(a)!;
    return text === v ? text : v;
  });
  if (other.size > 0) out.push(...[...other].sort(compareStrings));
  return out;
}

/** True when `ip` is inside `cidr` and inside none of `except` (the ipBlock semantics). */
export function ipInBlock(ip: string, cidr: string, except: readonly string[]): boolean {
  const addr = parseIPv4(ip);
  const c = parseCidr(cidr);
  if (addr === undefined || !c || !cidrContains(c, addr)) return false;
  return !except.some((e) => {
    const ec = parseCidr(e);
    return ec !== undefined && cidrContains(ec, addr);
  });
}

/**
 * `cidr` minus every `except`, as a sorted list of disjoint prefixes, none shorter than /1 (ipset's hash:net
 * cannot hold /0, and two /1s are the same set). One interval-set (or hash:net) lookup then answers the
 * whole ipBlock, excepts included, with no overlapping elements.
 */
export function subtractCidrs(cidr: string, except: readonly string[]): string[] {
  const base = parseCidr(cidr);
  if (!base) return [];
  const holes = except.map((e) => parseCidr(e)).filter((c): c is Cidr => c !== undefined);
  const out: Cidr[] = [];
  const visit = (c: Cidr): void => {
    const overlapping = holes.filter((h) => cidrsOverlap(h, c));
    if (overlapping.some((h) => cidrCovers(h, c))) return;
    if (overlapping.length === 0 && c.prefix >= 1) {
      out.push(c);
      return;
    }
    const half = 2 ** (31 - c.prefix);
    const lo: Cidr = { addr: c.addr >>> 0, prefix: c.prefix + 1 };
    const hi: Cidr = { addr: (c.addr + half) >>> 0, prefix: c.prefix + 1 };
    visit(lo);
    visit(hi);
  };
  visit(networkOf(base));
  return out.sort((a, b) => a.addr - b.addr).map(formatCidr);
}
