// IPv4 address and CIDR arithmetic on unsigned 32-bit integers. Pure; shared by validation, IPAM and policy.

export type Cidr = { readonly addr: number; readonly prefix: number };

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
/** An IPv4 address in dotted-quad form, no leading zeros. Also used as the OpenAPI `pattern`. */
export const IPV4_PATTERN = `^${OCTET}(\\.${OCTET}){3}$`;
/** An IPv4 CIDR `a.b.c.d/n`, n in 0..32. Also used as the OpenAPI `pattern`. */
export const IPV4_CIDR_PATTERN = `^${OCTET}(\\.${OCTET}){3}/(3[0-2]|[12]?[0-9])$`;

const ipRe = new RegExp(IPV4_PATTERN);
const cidrRe = new RegExp(IPV4_CIDR_PATTERN);

export function parseIPv4(text: string): number | undefined {
  if (!ipRe.test(text)) return undefined;
  const parts = text.split(".").map(Number);
  return (((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!) >>> 0;
}

export function formatIPv4(addr: number): string {
  return [addr >>> 24, (addr >>> 16) & 255, (addr >>> 8) & 255, addr & 255].join(".");
}

/** Parses `a.b.c.d/n`; a bare address is not a CIDR. Host bits are kept (see hasHostBits). */
export function parseCidr(text: string): Cidr | undefined {
  if (!cidrRe.test(text)) return undefined;
  const [ip, len] = text.split("/");
  const addr = parseIPv4(ip!);
  if (addr === undefined) return undefined;
  return { addr, prefix: Number(len) };
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function networkOf(c: Cidr): Cidr {
  return { addr: (c.addr & maskOf(c.prefix)) >>> 0, prefix: c.prefix };
}

export function hasHostBits(c: Cidr): boolean {
  return networkOf(c).addr !== c.addr;
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.addr)}/${c.prefix}`;
}

/** Number of addresses in the CIDR, as a plain number (2^32 fits in a double). */
export function sizeOf(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function lastAddr(c: Cidr): number {
  return (networkOf(c).addr + sizeOf(c) - 1) >>> 0;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return ((addr & maskOf(c.prefix)) >>> 0) === networkOf(c).addr;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(p);
  return ((a.addr & m) >>> 0) === ((b.addr & m) >>> 0);
}

/** True when `inner` lies wholly inside `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.addr);
}
