// Why: the iptables backend exists for nodes where the nftables backend is not wanted. Its text comes from
// the renderer (render/iptables.ts) as {ipset, iptables, ipsetCleanup?, forwardJump?}: an `ipset restore`
// script, an `iptables-restore` file that owns only `SY-` chains, the stale sets to destroy afterwards,
// and the one rule that jumps from FORWARD into SY-FORWARD.
//
// Backend: the nf_tables flavour (`iptables-nft-restore`), called by its explicit name rather than through
// Debian's `iptables` alternative. It is Debian's default (kernel-lab.md §8.17), so the node's admin and
// tools (`iptables -S`, kube-proxy in nft mode) see our rules instead of a hidden second ruleset; and the
// legacy x_tables backend is being phased out of kernels. Its price is ~2x per linear rule (kernel-lab.md
// §6), which the renderer avoids with a conntrack fast path and ipset lookups instead of per-peer rules.
// `backend: "legacy"` is available for hosts that already run legacy iptables (never mix both on a node).
//
// Order and atomicity: each tool is atomic on its own (one iptables-restore = one transaction; every set
// is swapped as a whole), and the two are stitched together so that a failure leaves what was in force.
// `ipset restore` itself is not transactional (it stops at the first bad line with the earlier lines
// applied), so the ipset script is not run as is: it is evaluated into the desired final sets, compared
// with the live ones (one `ipset save`), and then
//   1. every desired set that is new or differs from its live version (members or options) is staged under
//      a temporary name (SY-stage-<hash>) and filled; nothing live changes. A set already as desired is
//      left alone, so re-applying an unchanged ruleset (drift repair) stages nothing;
//   2. each staged set is swapped with its live set (same name, same type) or renamed into place if new;
//   3. one `iptables-restore --noflush`: delete our old jumps from built-in chains, redeclare (= flush)
//      and refill our chains, insert the jump again, flush+delete SY- chains no longer wanted;
//   4. if 3 fails, the sets are swapped back (swap is its own inverse) and new ones dropped: old state;
//   5. on success, the staged sets (now holding the old contents) and sets no longer wanted are destroyed.
// Each step is one process whatever the number of sets (`ipset restore` batches; a process per set costs
// ~4 ms, seconds for a thousand sets), so an apply spawns about six processes.
// Sets are never destroyed while a rule references them (the kernel refuses: "in use by a kernel
// component"), which is why stale sets go only after the chains that used them are replaced, and why a
// set keeps its name across contents (swap) and changes type only under a new name.
import { runCommand, type ExecResult } from "../../base/exec";
import { UnsafeKernelValueError } from "../../api/kernel-names";
import { renderIptables } from "../../render/iptables";
import type { PolicyBackend } from "./backend";
import {
  checkForwardJump,
  composeRestore,
  evaluateIpsetScript,
  inverseOps,
  ipsetOptions,
  isLiveSetAsDesired,
  isOwnedSetName,
  parseIpsetCleanup,
  parseIpsetHeaders,
  parseIpsetSave,
  parseIptablesRestore,
  resolveDesiredSets,
  stageName,
  STAGE_SET,
  type IpsetListing,
  type SetHeader,
} from "./iptables-scripts";
import { ReferenceCache, withScratchNetns } from "./scratch";

const iptablesReferences = new ReferenceCache();


export type IptablesBackend = "nft" | "legacy";

export interface IptablesRuleset {
  /**
   * `ipset restore` script describing the wanted sets: create/add/del/flush/swap/rename/destroy on our sets
   * (`-exist` allowed), e.g. the renderer's temp-set-and-swap idiom or plain `create` + `add` lines. It is
   * evaluated, not run: its end state is what gets applied, atomically per set. Sets it does not leave
   * in place are stale and destroyed after the chains no longer use them.
   */
  readonly ipset: string;
  /** `iptables-restore` text: `*table`, `:SY-x - [0:0]`, rules on SY- chains, jumps from built-in chains to SY- chains, `COMMIT`. */
  readonly iptables: string;
  /** Optional `destroy <set>` lines for stale sets (already implied: every of our sets not wanted is destroyed). */
  readonly ipsetCleanup?: string;
  /** Optional: the jump into our chains as iptables arguments after `-I`, e.g. ["FORWARD", "-j", "SY-FORWARD"]; kept exactly once, first. */
  readonly forwardJump?: readonly string[];
}

export interface IptablesOptions {
  /** Default "nft" (see the file comment). */
  readonly backend?: IptablesBackend;
}

export type IptablesApplyResult =
  | { readonly ok: true; readonly ms: number; readonly removedChains: readonly string[]; readonly removedSets: readonly string[]; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly ms: number; readonly stage: "validate" | "ipset" | "iptables"; readonly error: string; readonly warnings: readonly string[] };

const TIMEOUT_MS = 30_000;

function tools(backend: IptablesBackend): { iptables: string; restore: string } {
  return backend === "nft" ? { iptables: "iptables-nft", restore: "iptables-nft-restore" } : { iptables: "iptables-legacy", restore: "iptables-legacy-restore" };
}

// One apply at a time per namespace within this process: the steps above are a sequence, not one call.
const locks = new Map<string, Promise<unknown>>();
function withNetnsLock<T>(netns: string | undefined, fn: () => Promise<T>): Promise<T> {
  const key = netns ?? "";
  const previous = locks.get(key) ?? Promise.resolve();
  const next = previous.then(fn, fn);
  const tail = next.catch(() => undefined);
  locks.set(key, tail);
  void tail.then(() => {
    if (locks.get(key) === tail) locks.delete(key);
  });
  return next;
}

/** Applies a rendered iptables+ipset ruleset (see the file comment for the order); failure is a value. */
export function applyIptables(netns: string | undefined, ruleset: IptablesRuleset, options: IptablesOptions = {}): Promise<IptablesApplyResult> {
  return withNetnsLock(netns, () => applyIptablesLocked(netns, ruleset, options.backend ?? "nft"));
}

async function applyIptablesLocked(netns: string | undefined, ruleset: IptablesRuleset, backend: IptablesBackend): Promise<IptablesApplyResult> {
  const started = Date.now();
  const warnings: string[] = [];
  const fail = (stage: "validate" | "ipset" | "iptables", error: string): IptablesApplyResult => ({ ok: false, ms: Date.now() - started, stage, error, warnings });

  const script = evaluateIpsetScript(ruleset.ipset);
  if (typeof script === "string") return fail("validate", script);
  const sections = parseIptablesRestore(ruleset.iptables);
  if (typeof sections === "string") return fail("validate", sections);
  const cleanup = parseIpsetCleanup(ruleset.ipsetCleanup ?? "");
  if (typeof cleanup === "string") return fail("validate", cleanup);
  const jump = ruleset.forwardJump === undefined ? undefined : checkForwardJump(ruleset.forwardJump);
  if (typeof jump === "string") return fail("validate", jump);

  // One `ipset save` gives our live sets with type, options and members: the members are needed where
  // the script builds on a live set, and to leave alone a set whose live contents and options already are
  // the desired ones.
  const listed = await runCommand("ipset", ["save"], { netns, timeoutMs: TIMEOUT_MS });
  if (listed.code !== 0) return fail("ipset", `ipset save failed: ${listed.stderr.trim()}`);
  const saved = new Map(parseIpsetSave(listed.stdout).map((l) => [l.name, l]));
  const live = new Map([...saved].map(([name, l]): [string, SetHeader] => [name, { type: l.type, family: ipsetOptions(l.options).get("family") }]));
  const desiredSets = resolveDesiredSets(script, saved);
  if (typeof desiredSets === "string") return fail("validate", desiredSets);
  for (const set of desiredSets) {
    if (cleanup.includes(set.name)) return fail("validate", `set ${set.name} is both wanted and in ipsetCleanup`);
    const current = live.get(set.name);
    if (current !== undefined && (current.type !== set.type || current.family !== set.family)) {
      return fail("validate", `set ${set.name} exists as ${current.type} (family ${current.family ?? "-"}) but is wanted as ${set.type} (family ${set.family ?? "-"}); a set changes type only under a new name`);
    }
  }

  // 1. Stage (also clears staged sets left behind by a crash). Only sets that are new or differ from their
  //    live version: re-applying an unchanged ruleset (drift repair) then creates and swaps nothing.
  const leftovers = [...live.keys()].filter((n) => STAGE_SET.test(n));
  const changedSets = desiredSets.filter((s) => !live.has(s.name) || !isLiveSetAsDesired(s, saved.get(s.name)));
  const stageScript = [
    ...leftovers.map((n) => `destroy ${n}`),
    ...changedSets.flatMap((s) => [`create ${stageName(s.name)} ${s.type}${s.options.length > 0 ? ` ${s.options}` : ""}`, ...s.elements.map((e) => `add ${stageName(s.name)} ${e} -exist`)]),
  ];
  const staged = await ipsetRestore(netns, stageScript);
  if (!staged.ok) {
    await destroyStagedSets(netns, warnings);
    return fail("ipset", `staging sets failed: ${staged.error}`);
  }

  // 2. Swap into place (existing) or rename into place (new). A separate run from staging, so that a
  //    staging failure (whatever ipset reports about where it stopped) has changed nothing live.
  const swapOps: string[] = changedSets.map((s) => (live.has(s.name) ? `swap ${stageName(s.name)} ${s.name}` : `rename ${stageName(s.name)} ${s.name}`));
  const swapped = await ipsetRestore(netns, swapOps);
  if (!swapped.ok) {
    await ipsetRestore(netns, inverseOps(swapOps.slice(0, swapped.doneLines)));
    await destroyStagedSets(netns, warnings);
    return fail("ipset", `swapping sets into place failed: ${swapped.error}`);
  }

  // 3. One iptables transaction.
  const { iptables, restore } = tools(backend);
  const liveTables = new Map<string, string[]>();
  for (const table of new Set(["filter", ...sections.map((s) => s.table)])) {
    const r = await runCommand(iptables, ["-w", "5", "-t", table, "-S"], { netns, timeoutMs: TIMEOUT_MS });
    if (r.code !== 0) {
      await ipsetRestore(netns, inverseOps(swapOps));
      await destroyStagedSets(netns, warnings);
      return fail("iptables", `${iptables} -t ${table} -S failed: ${r.stderr.trim()}`);
    }
    liveTables.set(table, r.stdout.split("\n"));
  }
  const composed = composeRestore(sections, liveTables, jump);
  const applied = await runCommand(restore, ["-w", "5", "--noflush"], { netns, stdin: composed.text, timeoutMs: TIMEOUT_MS });
  if (applied.code !== 0) {
    // 4. Roll the sets back: swap is its own inverse; new sets are unreferenced and go.
    const back = await ipsetRestore(netns, inverseOps(swapOps));
    if (!back.ok) warnings.push(`rolling sets back failed: ${back.error}`);
    await destroyStagedSets(netns, warnings);
    return fail("iptables", describeFailure(restore, applied));
  }

  // 5. Clean up: staged sets now hold the old contents; stale sets are unreferenced now. One `ipset
  //    restore` destroys them all (one process, not one per set: with 1,000 sets that was seconds).
  //    The staged sets left are exactly those swapped with a live set (renamed ones are live now).
  const wanted = new Set(desiredSets.map((s) => s.name));
  const stale = [...live.keys()].filter((name) => !STAGE_SET.test(name) && !wanted.has(name));
  const leftStaged = changedSets.filter((s) => live.has(s.name)).map((s) => stageName(s.name));
  const destroyed = await destroySets(netns, [...leftStaged, ...stale]);
  for (const f of destroyed.failed) warnings.push(`${STAGE_SET.test(f.name) ? "staged" : "stale"} set ${f.name} not destroyed: ${f.error}`);
  const removedSets = stale.filter((name) => destroyed.destroyed.has(name));
  return { ok: true, ms: Date.now() - started, removedChains: composed.removedChains, removedSets, warnings };
}

/**
 * Applies incremental set changes (`add SET ELEM`, `del SET ELEM`) in one `ipset restore`. ipset has no
 * transactions: lines before a failing one stay applied; the error names the line. `-exist` is added so
 * that adding a present element or deleting an absent one is not an error.
 */
export async function applyIpsetUpdate(netns: string | undefined, script: string): Promise<{ readonly ok: true } | { readonly ok: false; readonly error: string }> {
  const ops: string[] = [];
  for (const raw of script.split("\n")) {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith("#")) continue;
    const words = line.split(/\s+/).filter((w) => w !== "-exist" && w !== "-!");
    const [verb, name] = words;
    if ((verb !== "add" && verb !== "del") || name === undefined || !isOwnedSetName(name)) {
      return { ok: false, error: `refused: "${line}" is not an add/del on one of our (sy-) sets` };
    }
    ops.push(`${words.join(" ")} -exist`);
  }
  const r = await ipsetRestore(netns, ops);
  return r.ok ? { ok: true } : { ok: false, error: r.error };
}

/** Removes every SY- chain (and the jumps into them) in `tables`, then every sy-/SY- set. Touches nothing else. */
export function removeIptables(netns: string | undefined, options: IptablesOptions & { readonly tables?: readonly string[] } = {}): Promise<IptablesApplyResult> {
  return withNetnsLock(netns, async () => {
    const started = Date.now();
    const warnings: string[] = [];
    const { iptables, restore } = tools(options.backend ?? "nft");
    const liveTables = new Map<string, string[]>();
    for (const table of options.tables ?? ["filter"]) {
      const r = await runCommand(iptables, ["-w", "5", "-t", table, "-S"], { netns, timeoutMs: TIMEOUT_MS });
      if (r.code !== 0) return { ok: false, ms: Date.now() - started, stage: "iptables", error: `${iptables} -t ${table} -S failed: ${r.stderr.trim()}`, warnings };
      liveTables.set(table, r.stdout.split("\n"));
    }
    const composed = composeRestore([], liveTables, undefined);
    if (composed.text.length > 0) {
      const applied = await runCommand(restore, ["-w", "5", "--noflush"], { netns, stdin: composed.text, timeoutMs: TIMEOUT_MS });
      if (applied.code !== 0) return { ok: false, ms: Date.now() - started, stage: "iptables", error: describeFailure(restore, applied), warnings };
    }
    const live = await listIpsetHeaders(netns);
    if (typeof live === "string") return { ok: false, ms: Date.now() - started, stage: "ipset", error: live, warnings };
    const names = [...live.keys()];
    const { destroyed, failed } = await destroySets(netns, names);
    for (const f of failed) warnings.push(`set ${f.name} not destroyed: ${f.error}`);
    const removedSets = names.filter((name) => destroyed.has(name));
    return { ok: true, ms: Date.now() - started, removedChains: composed.removedChains, removedSets, warnings };
  });
}

/** `iptables -t TABLE -S` lines (empty lines dropped). */
export async function listIptablesRules(netns: string | undefined, table = "filter", options: IptablesOptions = {}): Promise<string[]> {
  const { iptables } = tools(options.backend ?? "nft");
  const r = await runCommand(iptables, ["-w", "5", "-t", table, "-S"], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) throw new Error(`${iptables} -t ${table} -S failed: ${r.stderr.trim()}`);
  return r.stdout.split("\n").filter((l) => l.length > 0);
}

export async function listSwitchyardIpsets(netns: string | undefined): Promise<IpsetListing[]> {
  const r = await runCommand("ipset", ["save"], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) throw new Error(`ipset save failed: ${r.stderr.trim()}`);
  return parseIpsetSave(r.stdout);
}


/** Our sets (including staged ones) with type and family, from `ipset list -t`; an error string on failure. */
async function listIpsetHeaders(netns: string | undefined): Promise<Map<string, SetHeader> | string> {
  const r = await runCommand("ipset", ["list", "-t"], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) return `ipset list -t failed: ${r.stderr.trim()}`;
  return parseIpsetHeaders(r.stdout);
}

/**
 * Runs `ipset restore`; on failure reports how many lines were applied before the failing one, and the
 * failing line's index when ipset named it.
 */
async function ipsetRestore(
  netns: string | undefined,
  ops: readonly string[],
): Promise<{ ok: true } | { ok: false; error: string; doneLines: number; failedLine: number | undefined }> {
  if (ops.length === 0) return { ok: true };
  const r = await runCommand("ipset", ["restore"], { netns, stdin: `${ops.join("\n")}\n`, timeoutMs: TIMEOUT_MS });
  if (r.code === 0) return { ok: true };
  const m = /Error in line (\d+)/.exec(r.stderr);
  const failedLine = m !== null ? Number(m[1]) - 1 : undefined;
  return { ok: false, error: r.stderr.trim() || `ipset restore exited with ${r.code}`, doneLines: failedLine ?? 0, failedLine };
}

async function destroyStagedSets(netns: string | undefined, warnings: string[]): Promise<void> {
  const live = await listIpsetHeaders(netns);
  if (typeof live === "string") {
    warnings.push(live);
    return;
  }
  const { failed } = await destroySets(
    netns,
    [...live.keys()].filter((name) => STAGE_SET.test(name)),
  );
  for (const f of failed) warnings.push(`staged set ${f.name} not destroyed: ${f.error}`);
}

/**
 * Destroys `names` with `ipset restore` (one process for all of them). ipset stops at the first line that
 * fails and names it; that set is reported and the rest are tried again, so one set the kernel still
 * uses costs one extra process, not a failure of everything after it.
 */
async function destroySets(netns: string | undefined, names: readonly string[]): Promise<{ destroyed: Set<string>; failed: { name: string; error: string }[] }> {
  const destroyed = new Set<string>();
  const failed: { name: string; error: string }[] = [];
  let rest = [...names];
  while (rest.length > 0) {
    const r = await ipsetRestore(netns, rest.map((name) => `destroy ${name}`));
    if (r.ok) {
      rest.forEach((name) => destroyed.add(name));
      break;
    }
    if (r.failedLine === undefined || r.failedLine >= rest.length) {
      // No line to blame (ipset missing, killed...): report every remaining set.
      for (const name of rest) failed.push({ name, error: r.error });
      break;
    }
    rest.slice(0, r.failedLine).forEach((name) => destroyed.add(name));
    failed.push({ name: rest[r.failedLine]!, error: r.error });
    rest = rest.slice(r.failedLine + 1);
  }
  return { destroyed, failed };
}


function describeFailure(tool: string, r: ExecResult): string {
  return `${tool} failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${r.stderr.trim()}`;
}

/**
 * What the kernel holds of ours, normalised for comparison: the SY- chains with their rules and the
 * jumps into them from built-in chains (with whether the FORWARD jump is first, as it must be), and our
 * sets with their members sorted.
 */
export async function ownedIptablesListing(netns: string | undefined, options: IptablesOptions = {}): Promise<string> {
  const rules = await listIptablesRules(netns, "filter", options);
  const ours = rules.filter((l) => /(^-[NA] SY-)|(-j SY-)/.test(l));
  const forward = rules.filter((l) => l.startsWith("-A FORWARD"));
  const jumpFirst = forward.length > 0 && /-j SY-/.test(forward[0]!);
  const sets = (await listSwitchyardIpsets(netns))
    .filter((set) => isOwnedSetName(set.name) && !STAGE_SET.test(set.name))
    .map((set) => ({ name: set.name, type: set.type, options: set.options, members: [...set.members].sort() }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return JSON.stringify({ rules: ours, jumpFirst, sets });
}

/** What the rendered ruleset becomes in the kernel, normalised: applied into a scratch namespace and listed there. */
export async function renderedIptablesListing(ruleset: IptablesRuleset, options: IptablesOptions = {}): Promise<string> {
  return withScratchNetns(async (scratch) => {
    const r = await applyIptables(scratch, ruleset, options);
    if (!r.ok) throw new Error(`the rendered ruleset does not load into an empty namespace: ${r.error}`);
    return ownedIptablesListing(scratch, options);
  });
}

/**
 * The iptables backend: every apply writes the whole SY- ruleset (sets staged and swapped, one
 * iptables-restore), which leaves unchanged sets alone. Drift (a flushed FORWARD, a deleted rule, a
 * changed set) is any difference of what the kernel holds of ours from the rendered ruleset.
 */
export const iptablesBackend: PolicyBackend = {
  name: "iptables",
  async apply(netns, slice, hash) {
    let rendered: ReturnType<typeof renderIptables>;
    try {
      rendered = renderIptables(slice);
    } catch (e) {
      // A value the renderer refuses (it would have been iptables-restore syntax, not data) is a failed apply.
      if (e instanceof UnsafeKernelValueError) return { ok: false, error: `iptables rules not rendered, the previous rules stay in force: ${e.message}` };
      throw e;
    }
    const r = await applyIptables(netns, rendered);
    if (!r.ok) return { ok: false, error: `iptables apply failed at ${r.stage}, the previous rules stay in force: ${r.error}` };
    return { ok: true, change: "full", applied: { hash, backend: "iptables", slice } };
  },
  async inForce(netns, applied) {
    const reference = await iptablesReferences.get(applied.hash, () => renderedIptablesListing(renderIptables(applied.slice)));
    return (await ownedIptablesListing(netns)) === reference;
  },
  async droppedPackets(netns) {
    // `-L -v -x -n`: per chain a header, a column line, then "pkts bytes target ..." per rule.
    const r = await runCommand("iptables-nft", ["-w", "5", "-t", "filter", "-L", "-v", "-x", "-n"], { netns, timeoutMs: TIMEOUT_MS });
    if (r.code !== 0) return 0;
    let chain = "";
    let n = 0;
    for (const line of r.stdout.split("\n")) {
      const header = /^Chain (\S+)/.exec(line);
      if (header) {
        chain = header[1]!;
        continue;
      }
      const cols = line.trim().split(/\s+/);
      if (chain.startsWith("SY-") && cols[2] === "DROP") n += Number(cols[0]) || 0;
    }
    return n;
  },
  async remove(netns) {
    await removeIptables(netns);
  },
};
