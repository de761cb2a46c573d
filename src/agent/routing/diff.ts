// Plan vs kernel, per stage, as `ip`/`bridge` batch lines. Pure (no I/O): the kernel state comes in as the
// parsed JSON of kernel-state.ts, so every ownership rule is visible and testable here:
// - routes: we own exactly the main-table routes with `proto 77`; a route's key is (dst, metric), as the
//   kernel keys IPv4 routes, so a `replace` with another metric ADDS a route (that is how transports stack
//   during a migration) and a planned key held by someone else's route is a conflict, never overwritten;
// - devices: we own the modes' devices (OWNED_DEVICES in src/modes/registry.ts: sy-vxlan, sy-ipip) and
//   nothing else; how each is created and matched is its mode's (src/modes/<mode>/device.ts);
// - FDB and neighbour entries: the permanent ones on our devices (dynamic ones are the kernel's and age out);
// - sysctls: ip_forward on, rp_filter never strict (loose = 2; 0 is left alone), kernel-lab pitfall 9.
import { parseCidr, parseIPv4 } from "../../api/ipv4";
import type { PlanValueChecks } from "../../modes/backend";
import { MODE_DEVICES, OWNED_DEVICES } from "../../modes/registry";
import { SWITCHYARD_RTPROTO, type PlanFdb, type PlanNeighbor, type PlanRoute, type RoutingPlan } from "../../model/routing-plan";
import { deviceSysctlKey, normalizeDst, type KernelFdb, type KernelLink, type KernelNeighbor, type KernelRoute, type NftListing } from "./kernel-state";

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
  const check: PlanValueChecks = {
    ip(v, what) {
      if (v !== undefined && parseIPv4(v) === undefined) problems.push(`${what}: not an IPv4 address: ${JSON.stringify(v)}`);
    },
    cidrOrIp(v, what) {
      if (parseCidr(v) === undefined && parseIPv4(v) === undefined) problems.push(`${what}: not an IPv4 CIDR: ${JSON.stringify(v)}`);
    },
    mac(v, what) {
      if (!MAC_RE.test(v)) problems.push(`${what}: not a MAC address: ${JSON.stringify(v)}`);
    },
    int(v, min, max, what) {
      if (!Number.isInteger(v) || v < min || v > max) problems.push(`${what}: ${v} is not an integer in ${min}..${max}`);
    },
    ownedDevice(v, what) {
      if (!OWNED_DEVICES.includes(v)) problems.push(`${what}: ${JSON.stringify(v)} is not a device Switchyard owns (${OWNED_DEVICES.join(", ")})`);
    },
  };
  check.ip(plan.nodeIP, "nodeIP");
  for (const { mode, device } of MODE_DEVICES) {
    const entry = plan.devices[mode];
    if (entry) device.checkEntry(entry, `devices.${mode}`, check);
  }
  if (plan.healthAddress !== undefined) check.ip(plan.healthAddress, "healthAddress");
  plan.fdb.forEach((f, i) => {
    check.ownedDevice(f.dev, `fdb[${i}].dev`);
    check.mac(f.mac, `fdb[${i}].mac`);
    check.ip(f.dst, `fdb[${i}].dst`);
  });
  plan.neighbors.forEach((n, i) => {
    check.ownedDevice(n.dev, `neighbors[${i}].dev`);
    check.mac(n.mac, `neighbors[${i}].mac`);
    check.ip(n.ip, `neighbors[${i}].ip`);
  });
  plan.routes.forEach((r, i) => {
    check.cidrOrIp(r.dst, `routes[${i}].dst`);
    check.ip(r.via, `routes[${i}].via`);
    if (r.dev !== undefined && !IFNAME_RE.test(r.dev)) problems.push(`routes[${i}].dev: not an interface name: ${JSON.stringify(r.dev)}`);
    check.int(r.metric, 0, 4_294_967_295, `routes[${i}].metric`);
  });
  check.ip(plan.nat.nodeIP, "nat.nodeIP");
  plan.nat.podCIDRs.forEach((c, i) => check.cidrOrIp(c, `nat.podCIDRs[${i}]`));
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

export function diffDevices(plan: RoutingPlan, links: readonly KernelLink[], underlayDev: string | undefined): DeviceDiff {
  const apply: string[] = [];
  const remove: string[] = [];
  const created: string[] = [];
  const removed: string[] = [];
  const errors: string[] = [];
  const byName = new Map(links.map((l) => [l.name, l]));

  const ensureUp = (name: string, cur: KernelLink, mac: string | undefined, mtu: number): void => {
    const parts: string[] = [];
    if (mac !== undefined && cur.mac !== mac.toLowerCase()) parts.push(`address ${mac}`);
    if (cur.mtu !== mtu) parts.push(`mtu ${mtu}`);
    if (!cur.up) parts.push("up");
    if (parts.length > 0) apply.push(`link set dev ${name} ${parts.join(" ")}`);
  };
  const ensureAddress = (name: string, cur: KernelLink, address: string | undefined): void => {
    const want = address === undefined ? undefined : address.includes("/") ? address : `${address}/32`;
    const have = cur.ipv4;
    if (want !== undefined && !have.includes(want)) apply.push(`addr add ${want} dev ${name}`);
    for (const a of have) if (a !== want) remove.push(`addr del ${a} dev ${name}`);
  };

  // Each planned device (its mode says how it is created and what must match for an existing link to stay).
  const planned = new Set<string>();
  for (const { mode, device } of MODE_DEVICES) {
    const entry = plan.devices[mode];
    if (!entry) continue;
    planned.add(entry.name);
    if (device.needsUnderlay && !underlayDev) {
      errors.push(`cannot create ${entry.name}: no interface holds the node address ${plan.nodeIP}`);
      continue;
    }
    const cur = byName.get(entry.name);
    if (cur === undefined || !device.matches(entry, cur, underlayDev)) {
      if (cur) apply.push(`link del dev ${entry.name}`);
      apply.push(...device.createCommands(entry, underlayDev));
      created.push(entry.name);
    } else {
      ensureUp(entry.name, cur, entry.mac, entry.mtu);
      if (device.ownsAddresses) ensureAddress(entry.name, cur, entry.address);
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
