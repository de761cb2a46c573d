// Plan vs kernel, per stage, as `ip`/`bridge` batch lines. Pure (no I/O): the kernel state comes in as the
// parsed JSON of kernel-state.ts, so every ownership rule is visible and testable here:
// - routes: we own exactly the main-table routes with `proto 77`; a route's key is (dst, metric), as the
//   kernel keys IPv4 routes, so a `replace` with another metric ADDS a route (that is how transports stack
//   during a migration) and a planned key held by someone else's route is a conflict, never overwritten;
// - devices: we own `sy-vxlan` and `sy-ipip` (the names the compiler emits) and nothing else;
// - FDB and neighbour entries: the permanent ones on our devices (dynamic ones are the kernel's and age out);
// - sysctls: ip_forward on, rp_filter never strict (loose = 2; 0 is left alone), kernel-lab pitfall 9.
import { parseCidr, parseIPv4 } from "../../api/ipv4";
import { IPIP_DEVICE, VXLAN_DEVICE } from "../../compile/routing/compile-routing";
import { SWITCHYARD_RTPROTO, type PlanFdb, type PlanNeighbor, type PlanRoute, type RoutingPlan } from "../../model/routing-plan";
import { deviceSysctlKey, normalizeDst, type KernelFdb, type KernelLink, type KernelNeighbor, type KernelRoute, type NftListing } from "./kernel-state";

export const OWNED_DEVICES: readonly string[] = [VXLAN_DEVICE, IPIP_DEVICE];
/** Label of the one address Switchyard owns on lo: the node's health address. */
export const HEALTH_LABEL = "lo:sy";
const PROTO = String(SWITCHYARD_RTPROTO);

export function isOwnedRoute(r: KernelRoute): boolean {
  return r.protocol === PROTO;
}

export function routeKey(dst: string, metric: number): string {
  return `${normalizeDst(dst)}|${metric}`;
}

// ----------------------------------------------------------------------------------------- plan checks

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Every value that ends up in a batch line must be what it claims to be (an address, a MAC, a device
 * name, a number): the plan was validated upstream, but a batch line is a command, so a value carrying a
 * newline or a keyword would become one. Returns the problems; empty when the plan is safe to render.
 */
export function checkPlanForKernel(plan: RoutingPlan): string[] {
  const problems: string[] = [];
  const ip = (v: string | undefined, what: string): void => {
    if (v !== undefined && parseIPv4(v) === undefined) problems.push(`${what}: not an IPv4 address: ${JSON.stringify(v)}`);
  };
  const cidrOrIp = (v: string, what: string): void => {
    if (parseCidr(v) === undefined && parseIPv4(v) === undefined) problems.push(`${what}: not an IPv4 CIDR: ${JSON.stringify(v)}`);
  };
  const mac = (v: string, what: string): void => {
    if (!MAC_RE.test(v)) problems.push(`${what}: not a MAC address: ${JSON.stringify(v)}`);
  };
  const owned = (v: string, what: string): void => {
    if (!OWNED_DEVICES.includes(v)) problems.push(`${what}: ${JSON.stringify(v)} is not a device Switchyard owns (${OWNED_DEVICES.join(", ")})`);
  };
  const int = (v: number, min: number, max: number, what: string): void => {
    if (!Number.isInteger(v) || v < min || v > max) problems.push(`${what}: ${v} is not an integer in ${min}..${max}`);
  };
  ip(plan.nodeIP, "nodeIP");
  const vx = plan.devices.vxlan;
  if (vx) {
    owned(vx.name, "devices.vxlan.name");
    int(vx.vni, 1, 16_777_215, "devices.vxlan.vni");
    int(vx.port, 1, 65_535, "devices.vxlan.port");
    int(vx.mtu, 68, 65_535, "devices.vxlan.mtu");
    mac(vx.mac, "devices.vxlan.mac");
    ip(vx.local, "devices.vxlan.local");
    if (vx.address !== undefined) cidrOrIp(vx.address, "devices.vxlan.address");
  }
  if (plan.healthAddress !== undefined) ip(plan.healthAddress, "healthAddress");
  const ipip = plan.devices.ipip;
  if (ipip) {
    owned(ipip.name, "devices.ipip.name");
    int(ipip.mtu, 68, 65_535, "devices.ipip.mtu");
    ip(ipip.local, "devices.ipip.local");
  }
  plan.fdb.forEach((f, i) => {
    owned(f.dev, `fdb[${i}].dev`);
    mac(f.mac, `fdb[${i}].mac`);
    ip(f.dst, `fdb[${i}].dst`);
  });
  plan.neighbors.forEach((n, i) => {
    owned(n.dev, `neighbors[${i}].dev`);
    mac(n.mac, `neighbors[${i}].mac`);
    ip(n.ip, `neighbors[${i}].ip`);
  });
  plan.routes.forEach((r, i) => {
    cidrOrIp(r.dst, `routes[${i}].dst`);
    ip(r.via, `routes[${i}].via`);
    if (r.dev !== undefined && !IFNAME_RE.test(r.dev)) problems.push(`routes[${i}].dev: not an interface name: ${JSON.stringify(r.dev)}`);
    int(r.metric, 0, 4_294_967_295, `routes[${i}].metric`);
  });
  ip(plan.nat.nodeIP, "nat.nodeIP");
  plan.nat.podCIDRs.forEach((c, i) => cidrOrIp(c, `nat.podCIDRs[${i}]`));
  return problems;
}

// ---------------------------------------------------------------------------------------------- sysctls

export interface SysctlDiff {
  /** Every key this stage looks at (read them, then pass the values back in). */
  readonly keys: readonly string[];
  /** `key=value` assignments to make. */
  readonly set: readonly string[];
}

export function sysctlKeys(underlayDev: string | undefined, links: readonly KernelLink[]): string[] {
  const devs = [...(underlayDev ? [underlayDev] : []), ...OWNED_DEVICES.filter((d) => links.some((l) => l.name === d))];
  return ["net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter", ...devs.map((d) => deviceSysctlKey(d, "rp_filter"))];
}

export function diffSysctls(keys: readonly string[], current: ReadonlyMap<string, string>): SysctlDiff {
  const set: string[] = [];
  for (const key of keys) {
    const value = current.get(key);
    if (value === undefined) continue; // a device that vanished between the reads
    if (key === "net.ipv4.ip_forward") {
      if (value !== "1") set.push(`${key}=1`);
    } else if (value !== "0" && value !== "2") {
      // Strict (1) drops the asymmetric paths of a mixed-mode cluster (kernel-lab §7: the whole window).
      set.push(`${key}=2`);
    }
  }
  return { keys, set };
}

// ---------------------------------------------------------------------------------------------- devices

export interface DeviceDiff {
  /** Lines for the device stage (create, recreate, fix attributes, add addresses, set up). */
  readonly apply: readonly string[];
  /** Lines for the last removal stage: devices no longer planned, stale addresses. */
  readonly remove: readonly string[];
  /** Devices (re)created by `apply`: their FDB, neighbours and routes must be re-read afterwards. */
  readonly created: readonly string[];
  /** Devices removed by `remove`: their entries need no separate deletion. */
  readonly removed: readonly string[];
  readonly errors: readonly string[];
}

function info(link: KernelLink, key: string): unknown {
  return link.info[key];
}

export function diffDevices(plan: RoutingPlan, links: readonly KernelLink[], underlayDev: string | undefined): DeviceDiff {
  const apply: string[] = [];
  const remove: string[] = [];
  const created: string[] = [];
  const removed: string[] = [];
  const errors: string[] = [];
  const byName = new Map(links.map((l) => [l.name, l]));

  const ensureUp = (name: string, cur: KernelLink | undefined, mac: string | undefined, mtu: number): void => {
    if (!cur) return;
    const parts: string[] = [];
    if (mac !== undefined && cur.mac !== mac.toLowerCase()) parts.push(`address ${mac}`);
    if (cur.mtu !== mtu) parts.push(`mtu ${mtu}`);
    if (!cur.up) parts.push("up");
    if (parts.length > 0) apply.push(`link set dev ${name} ${parts.join(" ")}`);
  };
  const ensureAddress = (name: string, cur: KernelLink | undefined, address: string | undefined): void => {
    const want = address === undefined ? undefined : address.includes("/") ? address : `${address}/32`;
    const have = cur?.ipv4 ?? [];
    if (want !== undefined && !have.includes(want)) apply.push(`addr add ${want} dev ${name}`);
    for (const a of have) if (a !== want) remove.push(`addr del ${a} dev ${name}`);
  };

  const vx = plan.devices.vxlan;
  if (vx) {
    const cur = byName.get(vx.name);
    if (!underlayDev) {
      errors.push(`cannot create ${vx.name}: no interface holds the node address ${plan.nodeIP}`);
    } else {
      const matches =
        cur !== undefined &&
        cur.kind === "vxlan" &&
        info(cur, "id") === vx.vni &&
        info(cur, "port") === vx.port &&
        info(cur, "local") === vx.local &&
        info(cur, "link") === underlayDev &&
        info(cur, "learning") === false;
      if (!matches) {
        if (cur) apply.push(`link del dev ${vx.name}`);
        apply.push(`link add ${vx.name} address ${vx.mac} mtu ${vx.mtu} type vxlan id ${vx.vni} local ${vx.local} dev ${underlayDev} dstport ${vx.port} nolearning`);
        apply.push(`link set dev ${vx.name} up`);
        if (vx.address !== undefined) apply.push(`addr add ${vx.address}/32 dev ${vx.name}`);
        created.push(vx.name);
      } else {
        ensureUp(vx.name, cur, vx.mac, vx.mtu);
        ensureAddress(vx.name, cur, vx.address);
      }
    }
  }

  const ipip = plan.devices.ipip;
  if (ipip) {
    const cur = byName.get(ipip.name);
    const matches = cur !== undefined && cur.kind === "ipip" && info(cur, "local") === ipip.local;
    if (!matches) {
      if (cur) apply.push(`link del dev ${ipip.name}`);
      apply.push(`link add ${ipip.name} mtu ${ipip.mtu} type ipip local ${ipip.local}`);
      apply.push(`link set dev ${ipip.name} up`);
      created.push(ipip.name);
    } else {
      ensureUp(ipip.name, cur, undefined, ipip.mtu);
    }
  }

  // The node's health address (its block's first address) on lo, labelled lo:sy so it is ours: peers'
  // agents probe it through the pod-network routes during migration gates.
  const lo = byName.get("lo");
  if (lo) {
    const want = plan.healthAddress === undefined ? undefined : `${plan.healthAddress}/32`;
    const have = Object.entries(lo.ipv4Labels ?? {}).filter(([, label]) => label === HEALTH_LABEL).map(([a]) => a);
    if (want !== undefined && !have.includes(want)) apply.push(`addr add ${want} dev lo label ${HEALTH_LABEL}`);
    for (const a of have) if (a !== want) remove.push(`addr del ${a} dev lo label ${HEALTH_LABEL}`);
  }

  const planned = new Set([vx?.name, ipip?.name].filter((n): n is string => n !== undefined));
  for (const name of OWNED_DEVICES) {
    if (!planned.has(name) && byName.has(name)) {
      remove.push(`link del dev ${name}`);
      removed.push(name);
    }
  }
  return { apply, remove, created, removed, errors };
}

// ---------------------------------------------------------------------------------------- fdb, neighbours

export interface EntryDiff {
  readonly apply: readonly string[];
  readonly remove: readonly string[];
}

/** FDB of one device: `fdb replace` sets a MAC's single remote; extra or unplanned remotes go in removal. */
export function diffFdb(dev: string, planned: readonly PlanFdb[], current: readonly KernelFdb[]): EntryDiff {
  const want = new Map(planned.filter((f) => f.dev === dev).map((f) => [f.mac.toLowerCase(), f.dst]));
  const apply: string[] = [];
  const remove: string[] = [];
  for (const [mac, dst] of [...want].sort()) {
    const ok = current.some((e) => e.mac === mac && e.dst === dst && e.permanent);
    if (!ok) apply.push(`fdb replace ${mac} dev ${dev} dst ${dst} self permanent`);
  }
  for (const e of current) {
    if (!e.permanent || e.dst === undefined) continue;
    if (want.get(e.mac) !== e.dst) remove.push(`fdb del ${e.mac} dev ${dev} dst ${e.dst} self`);
  }
  return { apply, remove };
}

export function diffNeighbors(dev: string, planned: readonly PlanNeighbor[], current: readonly KernelNeighbor[]): EntryDiff {
  const want = new Map(planned.filter((n) => n.dev === dev).map((n) => [n.ip, n.mac.toLowerCase()]));
  const apply: string[] = [];
  const remove: string[] = [];
  for (const [ip, mac] of [...want].sort()) {
    const cur = current.find((n) => n.ip === ip);
    if (!cur || cur.mac !== mac || !cur.permanent) apply.push(`neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`);
  }
  for (const n of current) if (n.permanent && !want.has(n.ip)) remove.push(`neigh del ${n.ip} dev ${dev}`);
  return { apply, remove };
}

// ------------------------------------------------------------------------------------------------ routes

export interface RouteDiff {
  readonly apply: readonly string[];
  readonly remove: readonly string[];
  /** Planned routes whose (dst, metric) is held by a route we do not own: left alone, reported. */
  readonly conflicts: readonly string[];
  /** Planned routes skipped because their device does not exist. */
  readonly skipped: readonly PlanRoute[];
}

export function routeCommand(verb: "replace" | "del", r: PlanRoute): string {
  const parts = [`route ${verb} ${normalizeDst(r.dst)}`];
  if (verb === "replace") {
    if (r.via !== undefined) parts.push(`via ${r.via}`);
    if (r.dev !== undefined) parts.push(`dev ${r.dev}`);
    if (r.onlink) parts.push("onlink");
  }
  parts.push(`metric ${r.metric}`, `proto ${PROTO}`, "table main");
  return parts.join(" ");
}

function sameRoute(want: PlanRoute, have: KernelRoute): boolean {
  return have.type === "unicast" && have.gateway === want.via && (want.dev === undefined || have.dev === want.dev) && have.onlink === (want.onlink === true);
}

/** `existingDevices`: names of links present now (routes through a missing device of ours are skipped). */
export function diffRoutes(planned: readonly PlanRoute[], current: readonly KernelRoute[], existingDevices: ReadonlySet<string>): RouteDiff {
  const apply: string[] = [];
  const remove: string[] = [];
  const conflicts: string[] = [];
  const skipped: PlanRoute[] = [];
  const byKey = new Map<string, KernelRoute[]>();
  for (const r of current) byKey.set(routeKey(r.dst, r.metric), [...(byKey.get(routeKey(r.dst, r.metric)) ?? []), r]);
  const wanted = new Set<string>();
  for (const r of planned) {
    const key = routeKey(r.dst, r.metric);
    wanted.add(key);
    if (r.dev !== undefined && !existingDevices.has(r.dev)) {
      skipped.push(r);
      continue;
    }
    const here = byKey.get(key) ?? [];
    const foreign = here.find((h) => !isOwnedRoute(h));
    if (foreign) {
      conflicts.push(`${normalizeDst(r.dst)} metric ${r.metric} is held by a proto ${foreign.protocol} route, which Switchyard does not own`);
      continue;
    }
    const mine = here.find(isOwnedRoute);
    if (!mine || !sameRoute(r, mine)) apply.push(routeCommand("replace", r));
  }
  for (const r of current) {
    if (isOwnedRoute(r) && !wanted.has(routeKey(r.dst, r.metric))) remove.push(`route del ${r.dst} metric ${r.metric} proto ${PROTO} table main`);
  }
  return { apply, remove, conflicts, skipped };
}

// --------------------------------------------------------------------------------------------------- NAT

function elementText(e: unknown): string | undefined {
  if (typeof e === "string") return e.includes("/") ? e : `${e}/32`;
  if (typeof e === "object" && e !== null && "prefix" in e) {
    const p = (e as { prefix: unknown }).prefix;
    if (typeof p === "object" && p !== null && "addr" in p && "len" in p) return `${String((p as { addr: unknown }).addr)}/${String((p as { len: unknown }).len)}`;
  }
  return undefined;
}

/**
 * Whether the listed `ip switchyard_nat` table already is what renderNatTable(nat) would load: the set
 * `pod_cidrs` with exactly the pod CIDRs, one `postrouting` nat chain, and the single natOutgoing SNAT rule
 * to the node address iff enabled. A structural check of the rendered shape (nft prints its own canonical
 * text, so comparing texts is not possible); anything unexpected reads as "differs", which only costs one
 * atomic table replace.
 */
export function natTableMatches(listing: NftListing | undefined, nat: RoutingPlan["nat"]): boolean {
  if (!listing) return false;
  const sets = listing.filter((o) => o["set"] !== undefined).map((o) => o["set"]!);
  const chains = listing.filter((o) => o["chain"] !== undefined).map((o) => o["chain"]!);
  const rules = listing.filter((o) => o["rule"] !== undefined).map((o) => o["rule"]!);
  if (listing.some((o) => o["map"] !== undefined || o["element"] !== undefined)) return false;
  if (sets.length !== 1 || chains.length !== 1) return false;
  const set = sets[0]!;
  const chain = chains[0]!;
  if (set["name"] !== "pod_cidrs" || set["type"] !== "ipv4_addr") return false;
  const elems = (Array.isArray(set["elem"]) ? (set["elem"] as unknown[]) : []).map(elementText);
  const want = [...nat.podCIDRs].map((c) => normalizeDst(c)).sort();
  if (elems.some((e) => e === undefined) || JSON.stringify([...(elems as string[])].sort()) !== JSON.stringify(want)) return false;
  if (chain["name"] !== "postrouting" || chain["type"] !== "nat" || chain["hook"] !== "postrouting" || chain["prio"] !== 100 || chain["policy"] !== "accept") return false;
  if (!nat.enabled) return rules.length === 0;
  if (rules.length !== 1) return false;
  const rule = rules[0]!;
  const expr = JSON.stringify(rule["expr"] ?? null);
  return rule["comment"] === "natOutgoing" && expr.includes(`{"snat":{"addr":"${nat.nodeIP}"}}`) && (expr.match(/"@pod_cidrs"/g) ?? []).length === 2;
}
