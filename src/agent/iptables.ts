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
import { runCommand, type ExecResult } from "../base/exec";
import { shortHash } from "../model/names";

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

/** Every chain Switchyard owns starts with this. */
export const OWNED_CHAIN_PREFIX = "SY-";
/** Sets Switchyard owns start with "sy-" or "SY-" (the renderer uses lower case). */
const OWNED_SET = /^sy-/i;
const STAGE_PREFIX = "SY-stage-";
const STAGE_SET = /^sy-stage-/i;
const IPSET_NAME_MAX = 31;
const BUILTIN_CHAINS = new Set(["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"]);
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

export interface IpsetListing {
  readonly name: string;
  readonly type: string;
  /** The options of the `create` line as `ipset save` prints them, without the random `initval` seed. */
  readonly options: string;
  /** Elements, sorted. */
  readonly members: readonly string[];
}

/** Our (sy-/SY-) sets in `netns` with their members, from `ipset save`. */
export async function listSwitchyardIpsets(netns: string | undefined): Promise<IpsetListing[]> {
  const r = await runCommand("ipset", ["save"], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) throw new Error(`ipset save failed: ${r.stderr.trim()}`);
  return parseIpsetSave(r.stdout);
}

function parseIpsetSave(text: string): IpsetListing[] {
  const sets = new Map<string, { name: string; type: string; options: string; members: string[] }>();
  for (const line of text.split("\n")) {
    const words = line.trim().split(/\s+/);
    const [verb, name, arg] = words;
    if (name === undefined || !OWNED_SET.test(name) || arg === undefined) continue;
    // `initval` is the hash seed the kernel draws for every new set (so for every swap): not state of ours.
    if (verb === "create") sets.set(name, { name, type: arg, options: words.slice(3).join(" ").replace(/\s*\binitval \S+/, ""), members: [] });
    else if (verb === "add") sets.get(name)?.members.push(words.slice(2).join(" "));
  }
  return [...sets.values()].map((s) => ({ ...s, members: [...s.members].sort() })).sort((a, b) => a.name.localeCompare(b.name));
}

// ---- ipset helpers ----

function isOwnedSetName(name: string): boolean {
  return OWNED_SET.test(name) && !STAGE_SET.test(name) && name.length <= IPSET_NAME_MAX;
}

function stageName(name: string): string {
  return `${STAGE_PREFIX}${shortHash(name)}`;
}

/** One set as the script leaves it: its own create line (if any), the live set whose contents it starts from, and the changes. */
interface ScriptSet {
  readonly type: string | undefined;
  readonly options: string;
  /** The live set whose members this one starts with (`create -exist` of an existing set, or a set the script never created); undefined = empty. */
  readonly base: string | undefined;
  readonly adds: string[];
  readonly dels: string[];
}

/** The end state of an ipset script, by set name. */
export type IpsetScriptState = ReadonlyMap<string, ScriptSet>;

/**
 * Evaluates an `ipset restore` script on our sets into its end state, without running it. Knows create
 * (with `-exist`), add, del, flush, swap, rename, destroy. Returns an error sentence for anything else,
 * or for sets that are not ours.
 */
export function evaluateIpsetScript(text: string): IpsetScriptState | string {
  // Working state: element lists as insertion-ordered maps, so that an add or del is O(1) (re-adding an
  // element moves it to the end, as in the arrays returned).
  interface WorkingSet {
    readonly type: string | undefined;
    readonly options: string;
    readonly base: string | undefined;
    readonly adds: Map<string, true>;
    readonly dels: Map<string, true>;
  }
  const sets = new Map<string, WorkingSet>();
  const known = (name: string): WorkingSet => sets.get(name) ?? { type: undefined, options: "", base: name, adds: new Map(), dels: new Map() };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.length === 0 || line.startsWith("#")) continue;
    const all = line.split(/\s+/);
    const words = all.filter((w) => w !== "-exist" && w !== "-!");
    const exist = words.length !== all.length;
    const [verb, name, arg] = words;
    const where = (): string => `ipset line ${i + 1} ("${line}")`;
    if (name === undefined) return `${where()}: missing set name`;
    if (!isOwnedSetName(name)) return `${where()}: set names must start with sy- or SY- (not SY-stage-) and have at most ${IPSET_NAME_MAX} characters`;
    switch (verb) {
      case "create": {
        if (arg === undefined) return `${where()}: missing set type`;
        const prior = sets.get(name);
        if (prior !== undefined) {
          if (!exist || (prior.type !== undefined && prior.type !== arg)) return `${where()}: set already exists in this script`;
          break;
        }
        // `create -exist` keeps an existing set's members; a plain create states the set from scratch.
        sets.set(name, { type: arg, options: words.slice(3).join(" "), base: exist ? name : undefined, adds: new Map(), dels: new Map() });
        break;
      }
      case "add":
      case "del": {
        if (arg === undefined) return `${where()}: missing element`;
        const s = known(name);
        const element = words.slice(2).join(" ");
        s.adds.delete(element);
        s.dels.delete(element);
        (verb === "add" ? s.adds : s.dels).set(element, true);
        sets.set(name, s);
        break;
      }
      case "flush": {
        const s = known(name);
        sets.set(name, { type: s.type, options: s.options, base: undefined, adds: new Map(), dels: new Map() });
        break;
      }
      case "swap":
      case "rename": {
        if (arg === undefined || !isOwnedSetName(arg)) return `${where()}: the second set must be one of ours`;
        const a = known(name);
        const b = sets.get(arg) ?? (verb === "swap" ? known(arg) : undefined);
        if (verb === "rename" && sets.has(arg)) return `${where()}: rename onto an existing set`;
        sets.set(arg, a);
        if (verb === "swap" && b !== undefined) sets.set(name, b);
        else sets.delete(name);
        break;
      }
      case "destroy":
        sets.delete(name);
        break;
      default:
        return `${where()}: unsupported ipset command ${verb ?? ""}`;
    }
  }
  const out = new Map<string, ScriptSet>();
  for (const [name, s] of sets) out.set(name, { type: s.type, options: s.options, base: s.base, adds: [...s.adds.keys()], dels: [...s.dels.keys()] });
  return out;
}

interface DesiredSet {
  readonly name: string;
  readonly type: string;
  readonly family: string | undefined;
  readonly options: string;
  readonly elements: readonly string[];
}

/** Turns the script's end state into full set definitions, reading live members (from `saved`) only where a set starts from a live one. */
function resolveDesiredSets(script: IpsetScriptState, saved: ReadonlyMap<string, IpsetListing>): DesiredSet[] | string {
  const out: DesiredSet[] = [];
  for (const [name, s] of [...script].sort(([a], [b]) => a.localeCompare(b))) {
    const baseLive = s.base !== undefined ? saved.get(s.base) : undefined;
    const type = s.type ?? baseLive?.type;
    if (type === undefined) return `set ${name}: the script uses it without creating it, and it does not exist`;
    const options = s.type !== undefined ? s.options : (baseLive?.options ?? "");
    const words = options.split(/\s+/);
    const fi = words.indexOf("family");
    const family = fi >= 0 ? words[fi + 1] : type.startsWith("hash:") && !type.includes("mac") ? "inet" : undefined;
    const dels = new Set(s.dels);
    const elements = [...new Set([...(baseLive?.members ?? []), ...s.adds])].filter((e) => !dels.has(e));
    out.push({ name, type, family, options, elements });
  }
  return out;
}

/** `create` options that are flags (no value); every other option word takes the next word as its value. */
const IPSET_FLAG_OPTIONS = new Set(["counters", "comment", "skbinfo", "forceadd"]);
/** What `ipset save` prints for options a `create` line leaves out (ipset 7.x); hashsize is the kernel's to grow. */
const IPSET_OPTION_DEFAULTS = new Map([
  ["maxelem", "65536"],
  ["bucketsize", "12"],
]);

function ipsetOptions(text: string): Map<string, string> {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  const out = new Map<string, string>();
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (IPSET_FLAG_OPTIONS.has(w)) out.set(w, "");
    else out.set(w, words[++i] ?? "");
  }
  return out;
}

/**
 * True when the live set already is what staging `set` would create: same type, the same elements (as
 * `ipset save` prints them), and the same options, where options the create line leaves out must be at
 * their defaults. Conservative: anything it cannot tell equal (an option ipset normalises, an element
 * printed differently) counts as changed, which only costs a stage-and-swap.
 */
function isLiveSetAsDesired(set: DesiredSet, live: IpsetListing | undefined): boolean {
  if (live === undefined || live.type !== set.type || live.members.length !== set.elements.length) return false;
  const want = ipsetOptions(set.options);
  if (set.family !== undefined && !want.has("family")) want.set("family", set.family);
  const have = ipsetOptions(live.options);
  have.delete("initval");
  if (!want.has("hashsize")) have.delete("hashsize");
  for (const [k, v] of IPSET_OPTION_DEFAULTS) if (!want.has(k) && have.get(k) === v) have.delete(k);
  if (have.size !== want.size) return false;
  for (const [k, v] of want) if (have.get(k) !== v) return false;
  const members = new Set(live.members);
  return members.size === set.elements.length && set.elements.every((e) => members.has(e));
}

function parseIpsetCleanup(text: string): string[] | string {
  const names: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith("#")) continue;
    const [verb, name, extra] = line.split(/\s+/);
    if (verb !== "destroy" || name === undefined || extra !== undefined || !isOwnedSetName(name)) return `ipsetCleanup line "${line}": only "destroy <one of our sets>" is allowed`;
    names.push(name);
  }
  return names;
}

interface SetHeader {
  readonly type: string;
  readonly family: string | undefined;
}

/** Our sets (including staged ones) with type and family, from `ipset list -t`; an error string on failure. */
async function listIpsetHeaders(netns: string | undefined): Promise<Map<string, SetHeader> | string> {
  const r = await runCommand("ipset", ["list", "-t"], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) return `ipset list -t failed: ${r.stderr.trim()}`;
  const out = new Map<string, SetHeader>();
  let name: string | undefined;
  let type: string | undefined;
  for (const line of r.stdout.split("\n")) {
    const m = /^(Name|Type|Header):\s*(.*)$/.exec(line);
    if (m === null) continue;
    if (m[1] === "Name") {
      name = m[2];
      type = undefined;
    } else if (m[1] === "Type") {
      type = m[2];
      if (name !== undefined && type !== undefined && OWNED_SET.test(name)) out.set(name, { type, family: undefined });
    } else if (name !== undefined && type !== undefined && OWNED_SET.test(name)) {
      const fm = /(?:^|\s)family (\S+)/.exec(m[2] ?? "");
      out.set(name, { type, family: fm?.[1] });
    }
  }
  return out;
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

/** The inverse of swap/rename operations, in reverse order. */
function inverseOps(ops: readonly string[]): string[] {
  return [...ops].reverse().map((op) => {
    const [verb, a, b] = op.split(" ");
    return verb === "rename" ? `rename ${b} ${a}` : op;
  });
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

// ---- iptables-restore helpers ----

interface RestoreSection {
  readonly table: string;
  readonly lines: readonly string[];
  /** Chains the text declares (`:X` or `-N X`) and does not delete again. */
  readonly declared: ReadonlySet<string>;
  /** Chains the text deletes itself (`-X X`). */
  readonly deleted: ReadonlySet<string>;
}

/** Splits a command line the way iptables-restore does (double quotes group words). */
function tokenize(line: string): string[] {
  const tokens: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) tokens.push(m[1] ?? m[2] ?? "");
  return tokens;
}

function quoteArg(arg: string): string {
  return /^[A-Za-z0-9_.,:/=+@%-]+$/.test(arg) ? arg : `"${arg.replace(/["\\]/g, "\\$&")}"`;
}

function jumpTarget(tokens: readonly string[]): string | undefined {
  for (let i = 0; i < tokens.length - 1; i++) {
    if (tokens[i] === "-j" || tokens[i] === "--jump" || tokens[i] === "-g" || tokens[i] === "--goto") return tokens[i + 1];
  }
  return undefined;
}

function checkForwardJump(args: readonly string[]): string[] | string {
  const [chain] = args;
  if (chain === undefined || !BUILTIN_CHAINS.has(chain) || !(jumpTarget(args)?.startsWith(OWNED_CHAIN_PREFIX) ?? false)) {
    return `forwardJump ${JSON.stringify(args)} must be a rule in a built-in chain that jumps to an ${OWNED_CHAIN_PREFIX} chain`;
  }
  return [...args];
}

/** Parses and checks the renderer's restore text; returns an error sentence when it reaches beyond SY- chains. */
export function parseIptablesRestore(text: string): RestoreSection[] | string {
  const sections: RestoreSection[] = [];
  let current: { table: string; lines: string[]; declared: Set<string>; deleted: Set<string> } | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const where = `iptables line ${i + 1} ("${line}")`;
    if (line.length === 0 || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      if (current !== undefined) return `${where}: table section opened before COMMIT`;
      current = { table: line.slice(1), lines: [], declared: new Set(), deleted: new Set() };
      continue;
    }
    if (current === undefined) return `${where}: outside a *table section`;
    if (line === "COMMIT") {
      for (const c of current.deleted) current.declared.delete(c);
      sections.push(current);
      current = undefined;
      continue;
    }
    if (line.startsWith(":")) {
      const chain = line.slice(1).split(/\s+/)[0] ?? "";
      if (!chain.startsWith(OWNED_CHAIN_PREFIX)) return `${where}: declares chain ${chain}; only ${OWNED_CHAIN_PREFIX} chains may be declared`;
      current.declared.add(chain);
      current.lines.push(line);
      continue;
    }
    const tokens = tokenize(line);
    const [op, chain] = tokens;
    if (chain === undefined) return `${where}: missing chain`;
    const ruleOp = ["-A", "--append", "-I", "--insert", "-D", "--delete", "-R", "--replace"].includes(op ?? "");
    const chainOp = ["-F", "--flush", "-X", "--delete-chain", "-N", "--new-chain", "-Z", "--zero"].includes(op ?? "");
    if (!ruleOp && !chainOp) return `${where}: only rule and chain commands on ${OWNED_CHAIN_PREFIX} chains are allowed`;
    if (!chain.startsWith(OWNED_CHAIN_PREFIX)) {
      const isHook = BUILTIN_CHAINS.has(chain) && (op === "-A" || op === "--append" || op === "-I" || op === "--insert") && (jumpTarget(tokens)?.startsWith(OWNED_CHAIN_PREFIX) ?? false);
      if (!isHook) return `${where}: touches chain ${chain}; only ${OWNED_CHAIN_PREFIX} chains and jumps from built-in chains into them are allowed`;
    }
    if (op === "-N" || op === "--new-chain") current.declared.add(chain);
    if (op === "-X" || op === "--delete-chain") current.deleted.add(chain);
    current.lines.push(line);
  }
  if (current !== undefined) return `iptables text: section *${current.table} has no COMMIT`;
  return sections;
}

/**
 * Builds the one restore text: per table, delete the live jumps into SY- chains first (so that re-adding
 * the same jump does not duplicate it), then the renderer's lines, then the jump from `forwardJump`
 * (filter table), then flush and delete SY- chains that exist but are neither declared nor deleted by
 * the text. Tables without changes are left out.
 */
function composeRestore(sections: readonly RestoreSection[], liveTables: ReadonlyMap<string, readonly string[]>, jump: readonly string[] | undefined): { text: string; removedChains: string[] } {
  const out: string[] = [];
  const removedChains: string[] = [];
  const tables = new Set([...liveTables.keys(), ...sections.map((s) => s.table)]);
  for (const table of tables) {
    const section = sections.find((s) => s.table === table);
    const hooks: string[] = [];
    const stale: string[] = [];
    for (const line of liveTables.get(table) ?? []) {
      const tokens = tokenize(line);
      const [op, chain] = tokens;
      if (chain === undefined) continue;
      if (op === "-A" && BUILTIN_CHAINS.has(chain) && (jumpTarget(tokens)?.startsWith(OWNED_CHAIN_PREFIX) ?? false)) hooks.push(`-D ${line.slice(3)}`);
      if (op === "-N" && chain.startsWith(OWNED_CHAIN_PREFIX)) {
        if (section?.deleted.has(chain) ?? false) removedChains.push(`${table}/${chain}`);
        else if (!(section?.declared.has(chain) ?? false)) stale.push(chain);
      }
    }
    const jumpLines = table === "filter" && jump !== undefined ? [`-I ${jump.map(quoteArg).join(" ")}`] : [];
    if (section === undefined && hooks.length === 0 && stale.length === 0 && jumpLines.length === 0) continue;
    out.push(`*${table}`, ...hooks, ...(section?.lines ?? []), ...jumpLines, ...stale.map((c) => `-F ${c}`), ...stale.map((c) => `-X ${c}`), "COMMIT");
    removedChains.push(...stale.map((c) => `${table}/${c}`));
  }
  return { text: out.length > 0 ? `${out.join("\n")}\n` : "", removedChains };
}

function describeFailure(tool: string, r: ExecResult): string {
  return `${tool} failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${r.stderr.trim()}`;
}
