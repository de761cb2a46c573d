// Canonical JSON, stable ordering and CIDR set arithmetic for the policy compiler. Pure.
// Identities (group, rule, chain ids) are sha256 over canonical JSON, so equal content always gets the
// same name on every node and in every run, whatever order the input arrived in.
import { shortHash } from "../../model/names";
import { type Cidr, cidrContains, cidrCovers, cidrsOverlap, formatCidr, networkOf, parseCidr, parseIPv4 } from "../../api/ipv4";

/** JSON with object keys sorted at every level; arrays keep their order (sort them before when order is not meaningful). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => compareStrings(a, b));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** A 12-hex-char content identity of `value`. */
export function contentId(value: unknown): string {
  return shortHash(canonicalJson(value));
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
