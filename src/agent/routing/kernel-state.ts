// Reading a node's routing state from the kernel as JSON (`ip -j`, `bridge -j`, `nft -j`, `sysctl`), parsed
// with zod so a surprise in a tool's output becomes a clear error value instead of an undefined deep in the
// diff. Why read the kernel instead of remembering what we wrote: the kernel is the only truth (a route
// deleted by hand, a device recreated by someone else, an agent restart); every apply diffs against it,
// which is what makes applying an unchanged plan a no-op and drift repair possible.
import { z } from "zod";
import { runCommand } from "../../base/exec";

const READ_TIMEOUT_MS = 15_000;

const AddrInfoSchema = z.looseObject({ family: z.string(), local: z.string().optional(), prefixlen: z.number().optional() });
const LinkSchema = z.looseObject({
  ifname: z.string(),
  flags: z.array(z.string()).default([]),
  mtu: z.number().optional(),
  address: z.string().optional(),
  linkinfo: z
    .looseObject({
      info_kind: z.string().optional(),
      info_data: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  addr_info: z.array(AddrInfoSchema).default([]),
});
const RouteSchema = z.looseObject({
  dst: z.string(),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  protocol: z.string().optional(),
  metric: z.number().optional(),
  flags: z.array(z.string()).default([]),
  type: z.string().optional(),
});
const FdbSchema = z.looseObject({ mac: z.string(), dst: z.string().optional(), state: z.string().optional(), flags: z.array(z.string()).default([]) });
const NeighSchema = z.looseObject({ dst: z.string(), lladdr: z.string().optional(), state: z.array(z.string()).default([]) });

export interface KernelLink {
  readonly name: string;
  readonly up: boolean;
  readonly mtu?: number;
  readonly mac?: string;
  readonly kind?: string;
  readonly info: Readonly<Record<string, unknown>>;
  /** IPv4 addresses as `a.b.c.d/len`. */
  readonly ipv4: readonly string[];
  /** IPv4 addresses (`a.b.c.d/len`) by their label (e.g. `lo:sy`, the health address Switchyard owns on lo). */
  readonly ipv4Labels: Readonly<Record<string, string>>;
}

export interface KernelRoute {
  /** Normalised: always `a.b.c.d/len` (the kernel prints host routes without `/32`), `0.0.0.0/0` for default. */
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  /** As `ip` prints it: a name from rt_protos (`kernel`, `bird`, `static`) or a number (`77`). */
  readonly protocol: string;
  readonly metric: number;
  readonly onlink: boolean;
  /** unicast unless the kernel says otherwise (blackhole, unreachable, ...). */
  readonly type: string;
}

export interface KernelFdb {
  readonly mac: string;
  readonly dst?: string;
  readonly permanent: boolean;
}

export interface KernelNeighbor {
  readonly ip: string;
  readonly mac?: string;
  readonly permanent: boolean;
}

export type ReadResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** `a.b.c.d` -> `a.b.c.d/32`, `default` -> `0.0.0.0/0`; CIDRs unchanged. */
export function normalizeDst(dst: string): string {
  if (dst === "default") return "0.0.0.0/0";
  return dst.includes("/") ? dst : `${dst}/32`;
}

async function readJson<T>(what: string, netns: string | undefined, cmd: string, args: readonly string[], schema: z.ZodType<T>): Promise<ReadResult<T>> {
  const r = await runCommand(cmd, args, { netns, timeoutMs: READ_TIMEOUT_MS });
  if (r.code !== 0) return { ok: false, error: `${what}: ${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}` };
  let raw: unknown;
  try {
    // `ip -j` prints nothing at all for an empty list on some versions.
    raw = r.stdout.trim() === "" ? [] : JSON.parse(r.stdout);
  } catch (e) {
    return { ok: false, error: `${what}: unparsable JSON from ${cmd}: ${(e as Error).message}` };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { ok: false, error: `${what}: unexpected ${cmd} output: ${parsed.error.message}` };
  return { ok: true, value: parsed.data };
}

/** Every link with its details (`-d`: vxlan VNI, port, local, underlay) and addresses: one process. */
export async function readLinks(netns: string | undefined): Promise<ReadResult<KernelLink[]>> {
  const r = await readJson("links", netns, "ip", ["-j", "-d", "addr", "show"], z.array(LinkSchema));
  if (!r.ok) return r;
  return {
    ok: true,
    value: r.value.map((l) => ({
      name: l.ifname,
      up: l.flags.includes("UP"),
      ...(l.mtu !== undefined ? { mtu: l.mtu } : {}),
      ...(l.address !== undefined ? { mac: l.address.toLowerCase() } : {}),
      ...(l.linkinfo?.info_kind !== undefined ? { kind: l.linkinfo.info_kind } : {}),
      info: l.linkinfo?.info_data ?? {},
      ipv4: l.addr_info.filter((a) => a.family === "inet" && a.local !== undefined).map((a) => `${a.local}/${a.prefixlen ?? 32}`),
      ipv4Labels: Object.fromEntries(
        l.addr_info.filter((a) => a.family === "inet" && a.local !== undefined).map((a) => [`${a.local}/${a.prefixlen ?? 32}`, String((a as { label?: unknown }).label ?? l.ifname)]),
      ),
    })),
  };
}

/** Every IPv4 route of the main table, of every protocol (ownership is decided by the caller). */
export async function readMainRoutes(netns: string | undefined): Promise<ReadResult<KernelRoute[]>> {
  const r = await readJson("routes", netns, "ip", ["-j", "-4", "route", "show", "table", "main"], z.array(RouteSchema));
  if (!r.ok) return r;
  return {
    ok: true,
    value: r.value.map((x) => ({
      dst: normalizeDst(x.dst),
      ...(x.gateway !== undefined ? { gateway: x.gateway } : {}),
      ...(x.dev !== undefined ? { dev: x.dev } : {}),
      // `ip -j route show` omits the protocol for boot (3), the default of `ip route add`.
      protocol: x.protocol ?? "boot",
      metric: x.metric ?? 0,
      onlink: x.flags.includes("onlink"),
      type: x.type ?? "unicast",
    })),
  };
}

/** FDB entries of one device; an absent device reads as an empty list. */
export async function readFdb(netns: string | undefined, dev: string): Promise<ReadResult<KernelFdb[]>> {
  const r = await readJson("fdb", netns, "bridge", ["-j", "fdb", "show", "dev", dev], z.array(FdbSchema));
  if (!r.ok) return r;
  return { ok: true, value: r.value.map((e) => ({ mac: e.mac.toLowerCase(), ...(e.dst !== undefined ? { dst: e.dst } : {}), permanent: e.state === "permanent" })) };
}

/** IPv4 neighbour entries of one device. */
export async function readNeighbors(netns: string | undefined, dev: string): Promise<ReadResult<KernelNeighbor[]>> {
  const r = await readJson("neighbours", netns, "ip", ["-j", "-4", "neigh", "show", "dev", dev], z.array(NeighSchema));
  if (!r.ok) return r;
  return {
    ok: true,
    value: r.value.map((n) => ({ ip: n.dst, ...(n.lladdr !== undefined ? { mac: n.lladdr.toLowerCase() } : {}), permanent: n.state.includes("PERMANENT") })),
  };
}

/** `sysctl KEY...` -> values by key. Keys that do not exist are simply absent from the result. */
export async function readSysctls(netns: string | undefined, keys: readonly string[]): Promise<ReadResult<Map<string, string>>> {
  const r = await runCommand("sysctl", [...keys], { netns, timeoutMs: READ_TIMEOUT_MS });
  // sysctl exits non-zero when one key is missing but still prints the others.
  const values = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const m = /^(\S+)\s*=\s*(.*)$/.exec(line.trim());
    if (m) values.set(m[1]!, m[2]!.trim());
  }
  if (values.size === 0 && keys.length > 0) return { ok: false, error: `sysctl read failed (exit ${r.code}): ${r.stderr.trim()}` };
  return { ok: true, value: values };
}

/** The sysctl key of a per-device setting: dots in interface names are written as slashes. */
export function deviceSysctlKey(dev: string, setting: string): string {
  return `net.ipv4.conf.${dev.replace(/\./g, "/")}.${setting}`;
}

export type NftListing = readonly Readonly<Record<string, Readonly<Record<string, unknown>>>>[];

/** `nft -j list table FAMILY NAME`; `undefined` value when the table does not exist. */
export async function readNftTable(netns: string | undefined, family: string, name: string): Promise<ReadResult<NftListing | undefined>> {
  const r = await runCommand("nft", ["-j", "list", "table", family, name], { netns, timeoutMs: READ_TIMEOUT_MS });
  if (r.code !== 0) {
    if (/No such file or directory/.test(r.stderr)) return { ok: true, value: undefined };
    return { ok: false, error: `nft -j list table ${family} ${name} failed (exit ${r.code}): ${r.stderr.trim()}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(r.stdout);
  } catch (e) {
    return { ok: false, error: `unparsable JSON from nft: ${(e as Error).message}` };
  }
  const parsed = z.looseObject({ nftables: z.array(z.record(z.string(), z.record(z.string(), z.unknown()))) }).safeParse(raw);
  if (!parsed.success) return { ok: false, error: `unexpected nft -j output: ${parsed.error.message}` };
  return { ok: true, value: parsed.data.nftables };
}
