// The iptables backend's text work, apart from its I/O (iptables.ts): evaluating an `ipset restore` script
// into the sets it leaves, reading `ipset save` / `ipset list -t`, checking and composing
// `iptables-restore` text that may touch only SY- chains (and the jumps into them). Pure: text in, values
// out, so every ownership rule is testable without a kernel.
import { shortHash } from "../../model/names";

/** Every chain Switchyard owns starts with this. */
export const OWNED_CHAIN_PREFIX = "SY-";
/** Sets Switchyard owns start with "sy-" or "SY-" (the renderer uses lower case). */
export const OWNED_SET = /^sy-/i;
const STAGE_PREFIX = "SY-stage-";
/** Sets staged under a temporary name during an apply. */
export const STAGE_SET = /^sy-stage-/i;
const IPSET_NAME_MAX = 31;
const BUILTIN_CHAINS = new Set(["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"]);

export interface SetHeader {
  readonly type: string;
  readonly family: string | undefined;
}

/** Our sets (including staged ones) with type and family, from the text of `ipset list -t`. */
export function parseIpsetHeaders(text: string): Map<string, SetHeader> {
  const out = new Map<string, SetHeader>();
  let name: string | undefined;
  let type: string | undefined;
  for (const line of text.split("\n")) {
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

export interface IpsetListing {
  readonly name: string;
  readonly type: string;
  /** The options of the `create` line as `ipset save` prints them, without the random `initval` seed. */
  readonly options: string;
  /** Elements, sorted. */
  readonly members: readonly string[];
}

/** Our (sy-/SY-) sets in `netns` with their members, from `ipset save`. */

export function parseIpsetSave(text: string): IpsetListing[] {
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

export function isOwnedSetName(name: string): boolean {
  return OWNED_SET.test(name) && !STAGE_SET.test(name) && name.length <= IPSET_NAME_MAX;
}

export function stageName(name: string): string {
  return `${STAGE_PREFIX}${shortHash(name)}`;
}

/** One set as the script leaves it: its own create line (if any), the live set whose contents it starts from, and the changes. */
export interface ScriptSet {
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

export interface DesiredSet {
  readonly name: string;
  readonly type: string;
  readonly family: string | undefined;
  readonly options: string;
  readonly elements: readonly string[];
}

/** Turns the script's end state into full set definitions, reading live members (from `saved`) only where a set starts from a live one. */
export function resolveDesiredSets(script: IpsetScriptState, saved: ReadonlyMap<string, IpsetListing>): DesiredSet[] | string {
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

export function ipsetOptions(text: string): Map<string, string> {
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
export function isLiveSetAsDesired(set: DesiredSet, live: IpsetListing | undefined): boolean {
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

export function parseIpsetCleanup(text: string): string[] | string {
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

/** The inverse of swap/rename operations, in reverse order. */
export function inverseOps(ops: readonly string[]): string[] {
  return [...ops].reverse().map((op) => {
    const [verb, a, b] = op.split(" ");
    return verb === "rename" ? `rename ${b} ${a}` : op;
  });
}

export interface RestoreSection {
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

export function checkForwardJump(args: readonly string[]): string[] | string {
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
export function composeRestore(sections: readonly RestoreSection[], liveTables: ReadonlyMap<string, readonly string[]>, jump: readonly string[] | undefined): { text: string; removedChains: string[] } {
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
