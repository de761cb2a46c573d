// Why: the agent's routing side makes one node's kernel match its RoutingPlan, and nothing else. The order
// is the one that loses no packet (kernel-lab.md §7, ARCHITECTURE "mixed modes interoperate"):
//   1. sysctls: ip_forward on, rp_filter loose (strict drops the asymmetric paths of a mixed cluster);
//   2. devices (each mode's: sy-vxlan, sy-ipip), address, MTU, up: receiving works before anyone sends to us;
//   3. FDB and permanent neighbour entries: the encapsulation targets exist before a route points there;
//   4. routes (`proto 77`, keyed by (dst, metric)): a new transport's route is added next to the old one,
//      and the better metric wins the moment it exists (no delete-then-add gap);
//   5. NAT (`ip switchyard_nat`, one `nft -f` transaction);
// then removals in reverse: stale routes first, stale FDB/neighbour entries, and devices LAST, because
// in-flight packets and peers that have not switched yet still arrive encapsulated and need decap.
// Ownership: only `proto 77` routes of the main table, the modes' devices (`sy-vxlan`/`sy-ipip`) and the permanent
// entries on them, the `ip switchyard_nat` table, and the three sysctls. Kernel, BIRD, CNI (pod /32) and
// admin routes are never touched; a planned route whose key a foreign route holds is reported, not taken.
// Every stage diffs against state read back from the kernel, so an unchanged plan issues no change at all
// and the same call repairs drift. Failures are values in the report; one failing entry never stops others.
import { renderNatTable } from "../../render/nat";
import type { PlanRoute, RoutingPlan } from "../../model/routing-plan";
import { runCommand } from "../../base/exec";
import { runBatch, type BatchResult } from "./batch";
import { MODE_DEVICES, OWNED_DEVICES } from "../../modes/registry";
import { checkPlanForKernel, diffDevices, diffFdb, diffNeighbors, diffRoutes, diffSysctls, natTableMatches, sysctlKeys } from "./diff";
import { readFdb, readLinks, readMainRoutes, readNeighbors, readNftTable, readSysctls, type KernelLink, type ReadResult } from "./kernel-state";
import type { Capabilities } from "../capabilities";
import { diagnosticsFromZod, formatDiagnostic } from "../../api/diagnostics";
import { RoutingPlanSchema } from "../../api/node-plan";
import { firstPerPath } from "../plan";

export type ChangeKind = "sysctl" | "device" | "address" | "fdb" | "neighbor" | "route" | "nat";
export type ApplyStage = "read" | "sysctl" | "devices" | "entries" | "routes" | "nat" | "remove-routes" | "remove-entries" | "remove-devices";

export interface ApplyError {
  readonly stage: ApplyStage;
  readonly reason: "InvalidPlan" | "ReadFailed" | "CommandFailed" | "UnderlayNotFound" | "DeviceUnsupported" | "DeviceMissing" | "RouteConflict";
  readonly message: string;
  readonly command?: string;
}

export interface ApplyReport {
  readonly node: string;
  readonly netns?: string;
  /** No error at all. */
  readonly ok: boolean;
  /** Kernel changes made, per kind (additions, updates and removals). All zero for an unchanged plan. */
  readonly changes: Readonly<Record<ChangeKind, number>>;
  /** Of those, the removals. */
  readonly removals: Readonly<Record<ChangeKind, number>>;
  /** Every state-changing command issued, in order, prefixed by its stage (reads are not listed). */
  readonly commands: readonly string[];
  readonly errors: readonly ApplyError[];
  /** The interface holding plan.nodeIP. */
  readonly underlayDevice?: string;
  readonly durationMs: number;
}

export interface ApplyOptions {
  /** From detectCapabilities: a device the kernel cannot create is skipped with a DeviceUnsupported error instead of tried. */
  readonly capabilities?: Partial<Capabilities>;
  /** Apply the NAT table (default true). */
  readonly nat?: boolean;
}

const ZERO: Readonly<Record<ChangeKind, number>> = { sysctl: 0, device: 0, address: 0, fdb: 0, neighbor: 0, route: 0, nat: 0 };

/** Serialises applies per namespace: the repair loop and an explicit apply never interleave their stages. */
const inFlight = new Map<string, Promise<unknown>>();

/** Reconciles the kernel of one node (`netns`, undefined = this process's namespace) to `plan`. Never throws. */
export function applyRoutingPlan(netns: string | undefined, plan: RoutingPlan, opts: ApplyOptions = {}): Promise<ApplyReport> {
  const key = netns ?? "";
  const previous = inFlight.get(key) ?? Promise.resolve();
  const run = previous.then(
    () => applyRoutingPlanNow(netns, plan, opts),
    () => applyRoutingPlanNow(netns, plan, opts),
  );
  inFlight.set(key, run);
  void run.finally(() => {
    if (inFlight.get(key) === run) inFlight.delete(key);
  });
  return run;
}

function kindOf(line: string): ChangeKind {
  if (line.startsWith("addr ")) return "address";
  if (line.startsWith("link ")) return "device";
  if (line.startsWith("fdb ")) return "fdb";
  if (line.startsWith("neigh ")) return "neighbor";
  return "route";
}

async function applyRoutingPlanNow(netns: string | undefined, plan: RoutingPlan, opts: ApplyOptions): Promise<ApplyReport> {
  const started = Date.now();
  const changes: Record<ChangeKind, number> = { ...ZERO };
  const removals: Record<ChangeKind, number> = { ...ZERO };
  const commands: string[] = [];
  const errors: ApplyError[] = [];

  const record = (stage: ApplyStage, result: BatchResult, removal: boolean): void => {
    for (const line of result.succeeded) {
      const kind = kindOf(line);
      changes[kind]++;
      if (removal) removals[kind]++;
    }
    // A device the kernel cannot create (no ipip module) is one DeviceUnsupported error; the lines that
    // would have configured it fail as a consequence and are not reported again.
    const missing = new Set<string>();
    for (const f of result.failed) {
      const add = /^link add (\S+) /.exec(f.command);
      if (add && /Unknown device type|not supported/i.test(f.message)) {
        missing.add(add[1]!);
        errors.push({ stage, reason: "DeviceUnsupported", message: `cannot create ${add[1]!}: ${f.message} (the kernel lacks the module)`, command: f.command });
      } else if (![...missing].some((d) => f.command.includes(` ${d}`))) {
        errors.push({ stage, reason: "CommandFailed", message: f.message, command: f.command });
      }
    }
  };
  const batch = async (stage: ApplyStage, tool: "ip" | "bridge", lines: readonly string[], removal = false): Promise<BatchResult> => {
    for (const l of lines) commands.push(`${stage}: ${tool} ${l}`);
    const result = await runBatch(tool, netns, lines);
    record(stage, result, removal);
    return result;
  };
  const readOr = <T>(r: ReadResult<T>, fallback: T): T => {
    if (r.ok) return r.value;
    errors.push({ stage: "read", reason: "ReadFailed", message: r.error });
    return fallback;
  };
  const finish = (underlayDevice?: string): ApplyReport => ({
    node: String(plan.node),
    ...(netns !== undefined ? { netns } : {}),
    ok: errors.length === 0,
    changes,
    removals,
    commands,
    errors,
    ...(underlayDevice !== undefined ? { underlayDevice } : {}),
    durationMs: Date.now() - started,
  });

  // The plan's schema first (the agent parsed it, but this is also the repair timer's door): a plan that
  // fails it changes nothing, and checkPlanForKernel below only ever sees the shape it expects.
  const parsed = RoutingPlanSchema.safeParse(plan);
  if (!parsed.success) {
    for (const d of firstPerPath(diagnosticsFromZod(parsed.error, ["routing"]))) errors.push({ stage: "read", reason: "InvalidPlan", message: formatDiagnostic(d) });
    return finish();
  }
  const problems = checkPlanForKernel(plan);
  if (problems.length > 0) {
    for (const p of problems) errors.push({ stage: "read", reason: "InvalidPlan", message: p });
    return finish();
  }

  // Read what every stage needs up front (in parallel); re-read only what a device change invalidates.
  const applyNat = opts.nat ?? true;
  const [linksRead, routesRead, natRead] = await Promise.all([
    readLinks(netns),
    readMainRoutes(netns),
    applyNat ? readNftTable(netns, "ip", "switchyard_nat") : Promise.resolve(undefined),
  ]);
  if (!linksRead.ok || !routesRead.ok) {
    // Without the current state no diff is safe: change nothing.
    readOr(linksRead, []);
    readOr(routesRead, []);
    return finish();
  }
  let links: KernelLink[] = linksRead.value;
  const underlay = links.find((l) => l.ipv4.some((a) => a.split("/")[0] === plan.nodeIP))?.name;
  if (underlay === undefined) errors.push({ stage: "read", reason: "UnderlayNotFound", message: `no interface holds the node address ${plan.nodeIP}` });

  // 1. sysctls
  const keys = sysctlKeys(underlay, links);
  const sysctls = readOr(await readSysctls(netns, keys), new Map<string, string>());
  const sys = diffSysctls(keys, sysctls);
  if (sys.set.length > 0) {
    for (const s of sys.set) commands.push(`sysctl: sysctl -w ${s}`);
    const r = await runCommand("sysctl", ["-q", "-w", ...sys.set], { netns, timeoutMs: 15_000 });
    if (r.code === 0) changes.sysctl += sys.set.length;
    else errors.push({ stage: "sysctl", reason: "CommandFailed", message: r.stderr.trim(), command: `sysctl -w ${sys.set.join(" ")}` });
  }

  // 2. devices (creation, attribute fixes, address); the kernel may lack a device type.
  let effectivePlan = plan;
  const unsupported: string[] = [];
  const devices: RoutingPlan["devices"] = { ...plan.devices };
  for (const { mode, device } of MODE_DEVICES) {
    const entry = plan.devices[mode];
    if (entry && opts.capabilities?.[device.capability] === false) {
      unsupported.push(entry.name);
      delete (devices as Record<string, unknown>)[mode];
    }
  }
  for (const name of unsupported) {
    errors.push({ stage: "devices", reason: "DeviceUnsupported", message: `the kernel cannot create ${name} (see the node's capabilities); its routes are skipped` });
  }
  if (unsupported.length > 0) effectivePlan = { ...plan, devices };
  const dev = diffDevices(effectivePlan, links, underlay);
  for (const e of dev.errors) errors.push({ stage: "devices", reason: "UnderlayNotFound", message: e });
  // A device kept only because an unsupported plan device shares its name must not be deleted below.
  const devRemove = dev.remove.filter((l) => !unsupported.some((n) => l === `link del dev ${n}`));
  if (dev.apply.length > 0) {
    await batch("devices", "ip", dev.apply);
    links = readOr(await readLinks(netns), links);
    // A device created just now inherits conf.default.rp_filter, which stage 1 made loose.
  }
  const existing = new Set(links.map((l) => l.name));

  // 3. FDB and neighbours on our planned devices.
  const entryDevs = OWNED_DEVICES.filter((d) => existing.has(d) && !dev.removed.includes(d));
  for (const d of new Set([...plan.fdb.map((f) => f.dev), ...plan.neighbors.map((n) => n.dev)])) {
    if (!existing.has(d)) errors.push({ stage: "entries", reason: "DeviceMissing", message: `${d} does not exist: its FDB and neighbour entries are skipped` });
  }
  const entryReads = await Promise.all(entryDevs.map(async (d) => ({ d, fdb: readOr(await readFdb(netns, d), undefined), neigh: readOr(await readNeighbors(netns, d), undefined) })));
  const fdbApply: string[] = [];
  const neighApply: string[] = [];
  const fdbRemove: string[] = [];
  const neighRemove: string[] = [];
  for (const { d, fdb, neigh } of entryReads) {
    if (fdb) {
      const f = diffFdb(d, plan.fdb, fdb);
      fdbApply.push(...f.apply);
      fdbRemove.push(...f.remove);
    }
    if (neigh) {
      const n = diffNeighbors(d, plan.neighbors, neigh);
      neighApply.push(...n.apply);
      neighRemove.push(...n.remove);
    }
  }
  if (fdbApply.length > 0) await batch("entries", "bridge", fdbApply);
  if (neighApply.length > 0) await batch("entries", "ip", neighApply);

  // 4. routes (re-read if a device was created or recreated: the kernel dropped its routes).
  const routes = dev.created.length > 0 ? readOr(await readMainRoutes(netns), routesRead.value) : routesRead.value;
  const rd = diffRoutes(plan.routes, routes, existing);
  for (const c of rd.conflicts) errors.push({ stage: "routes", reason: "RouteConflict", message: c });
  const skippedByDev = new Map<string, PlanRoute[]>();
  for (const r of rd.skipped) skippedByDev.set(r.dev ?? "", [...(skippedByDev.get(r.dev ?? "") ?? []), r]);
  for (const [d, rs] of skippedByDev) errors.push({ stage: "routes", reason: "DeviceMissing", message: `${d} does not exist: ${rs.length} route(s) through it skipped (${rs.map((r) => r.dst).join(", ")})` });
  if (rd.apply.length > 0) await batch("routes", "ip", rd.apply);

  // 5. NAT: one transaction, only when the table differs.
  if (applyNat) {
    const listing = natRead && natRead.ok ? natRead.value : undefined;
    if (natRead && !natRead.ok) errors.push({ stage: "read", reason: "ReadFailed", message: natRead.error });
    if (!natTableMatches(listing, plan.nat)) {
      commands.push("nat: nft -f - (table ip switchyard_nat)");
      const r = await runCommand("nft", ["-f", "-"], { netns, stdin: renderNatTable(plan.nat), timeoutMs: 30_000 });
      if (r.code === 0) changes.nat++;
      else errors.push({ stage: "nat", reason: "CommandFailed", message: r.stderr.trim(), command: "nft -f - (table ip switchyard_nat)" });
    }
  }

  // 6-8. removals, in reverse dependency order; devices last.
  if (rd.remove.length > 0) await batch("remove-routes", "ip", rd.remove, true);
  if (fdbRemove.length > 0) await batch("remove-entries", "bridge", fdbRemove, true);
  if (neighRemove.length > 0) await batch("remove-entries", "ip", neighRemove, true);
  if (devRemove.length > 0) await batch("remove-devices", "ip", devRemove, true);

  return finish(underlay);
}

// ------------------------------------------------------------------------------------------ drift repair

export interface RoutingRepair {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
  /** Runs once now (after a run in progress, never alongside it); undefined when there is no plan or it was stopped. */
  runNow(): Promise<ApplyReport | undefined>;
  readonly runs: number;
  readonly lastReport: ApplyReport | undefined;
}

export interface RepairOptions extends ApplyOptions {
  readonly onReport?: (report: ApplyReport) => void;
  /** getPlan or onReport threw (applyRoutingPlan itself never throws). */
  readonly onError?: (error: unknown) => void;
}

/**
 * Re-applies the current plan every `intervalMs` (measured from the end of one run to the start of the
 * next, so runs never overlap): a route deleted by hand is back within one interval plus one apply.
 * `getPlan` returning undefined skips the run (no plan yet: change nothing).
 */
export function startRoutingRepair(
  netns: string | undefined,
  getPlan: () => RoutingPlan | undefined | Promise<RoutingPlan | undefined>,
  intervalMs: number,
  opts: RepairOptions = {},
): RoutingRepair {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<ApplyReport | undefined> = Promise.resolve(undefined);
  let runs = 0;
  let lastReport: ApplyReport | undefined;

  const runOnce = async (): Promise<ApplyReport | undefined> => {
    if (stopped) return undefined;
    try {
      const plan = await getPlan();
      if (!plan || stopped) return undefined;
      const report = await applyRoutingPlan(netns, plan, opts);
      runs++;
      lastReport = report;
      opts.onReport?.(report);
      return report;
    } catch (e) {
      // getPlan or onReport threw: the loop survives it and tries again next interval.
      opts.onError?.(e);
      return undefined;
    }
  };
  const chain = (): Promise<ApplyReport | undefined> => {
    const next = current.then(runOnce, runOnce);
    current = next;
    return next;
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      void chain().finally(schedule);
    }, intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await current;
    },
    runNow: chain,
    get runs() {
      return runs;
    },
    get lastReport() {
      return lastReport;
    },
  };
}
