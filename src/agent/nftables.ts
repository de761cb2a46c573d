// Why: nftables is the policy backend because one `nft -f` is one kernel transaction. The renderer emits
// the whole `inet switchyard` table with the replace idiom (`table inet switchyard` / `delete table ...` /
// `table inet switchyard { ... }`), so a new ruleset takes effect atomically with no window of "no rules",
// and a text nft rejects (syntax, a missing set, a kernel error) leaves the previous ruleset in force. That
// is why a rejected apply is a value, not a throw: the caller keeps serving the old plan and reports it.
// Switchyard owns exactly one table; every text is checked before it reaches nft so that no bug upstream
// can flush the ruleset or touch another owner's table (kube-proxy, firewalld, the admin's own rules).
import { runCommand } from "../base/exec";

export const SWITCHYARD_TABLE_FAMILY = "inet";
export const SWITCHYARD_TABLE_NAME = "switchyard";

export type NftApplyResult = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly ms: number; readonly error: string };

const NFT_TIMEOUT_MS = 30_000;

/**
 * Replaces the `inet switchyard` table in `netns` (undefined = the caller's namespace) with `text`, in one
 * `nft -f -` transaction. On failure the previous ruleset is untouched and the result carries nft's error.
 */
export async function applyNftRuleset(netns: string | undefined, text: string): Promise<NftApplyResult> {
  return applyNftScript(netns, text);
}

/**
 * Applies an incremental script (`add element inet switchyard S { ... }`, `delete element ...`) in one
 * `nft -f -` transaction: all of it or none of it. Deleting an element that is absent fails the whole
 * transaction in nft 1.0.6 (there is no `destroy element` yet), so callers send only real changes.
 */
export async function applyNftSetUpdate(netns: string | undefined, script: string): Promise<NftApplyResult> {
  return applyNftScript(netns, script);
}

/** Deletes the `inet switchyard` table; succeeds when it does not exist. Touches nothing else. */
export async function removeSwitchyardTable(netns: string | undefined): Promise<NftApplyResult> {
  const t = `${SWITCHYARD_TABLE_FAMILY} ${SWITCHYARD_TABLE_NAME}`;
  return applyNftScript(netns, `table ${t}\ndelete table ${t}\n`);
}

/** One object of `nft -j` output: `{table: {...}}`, `{chain: {...}}`, `{set: {...}}`, `{rule: {...}}`, `{map: ...}`, `{metainfo: ...}`. */
export type NftJsonObject = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

export interface NftTableListing {
  /** Every object nft listed, in its order (metainfo first). */
  readonly objects: readonly NftJsonObject[];
  readonly chains: readonly Readonly<Record<string, unknown>>[];
  readonly sets: readonly Readonly<Record<string, unknown>>[];
  readonly maps: readonly Readonly<Record<string, unknown>>[];
  readonly rules: readonly Readonly<Record<string, unknown>>[];
}

/** `nft -j list table inet switchyard`; undefined when the table does not exist. Throws on any other failure. */
export async function listSwitchyardTable(netns: string | undefined): Promise<NftTableListing | undefined> {
  const r = await runCommand("nft", ["-j", "list", "table", SWITCHYARD_TABLE_FAMILY, SWITCHYARD_TABLE_NAME], { netns, timeoutMs: NFT_TIMEOUT_MS });
  if (r.code !== 0) {
    if (/No such file or directory/.test(r.stderr)) return undefined;
    throw new Error(`nft -j list table ${SWITCHYARD_TABLE_FAMILY} ${SWITCHYARD_TABLE_NAME} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  const parsed: unknown = JSON.parse(r.stdout);
  const list = isRecord(parsed) && Array.isArray(parsed["nftables"]) ? (parsed["nftables"] as unknown[]) : [];
  const objects = list.filter((o): o is NftJsonObject => isRecord(o));
  const pick = (kind: string): Readonly<Record<string, unknown>>[] =>
    objects.flatMap((o) => {
      const v = o[kind];
      return v !== undefined && isRecord(v) ? [v] : [];
    });
  return { objects, chains: pick("chain"), sets: pick("set"), maps: pick("map"), rules: pick("rule") };
}

async function applyNftScript(netns: string | undefined, text: string): Promise<NftApplyResult> {
  const started = Date.now();
  const violation = checkNftScope(text);
  if (violation !== undefined) return { ok: false, ms: Date.now() - started, error: `refused before nft: ${violation}` };
  const r = await runCommand("nft", ["-f", "-"], { netns, stdin: text, timeoutMs: NFT_TIMEOUT_MS });
  const ms = Date.now() - started;
  if (r.code === 0) return { ok: true, ms };
  return { ok: false, ms, error: (r.stderr.trim() || `nft exited with code ${r.code}`) + (r.timedOut ? " (timed out)" : "") };
}

const FAMILIES = new Set(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);
const VERBS = new Set(["add", "create", "delete", "destroy", "flush", "insert", "replace", "reset"]);
const OBJECTS = new Set(["table", "chain", "rule", "set", "map", "element", "counter", "quota", "limit", "ct", "flowtable", "secmark", "synproxy"]);

/**
 * Returns why `text` would touch something other than `inet switchyard`, or undefined when it only touches
 * that table. Checked are the top-level statements (everything outside braces); the body of a
 * `table inet switchyard { ... }` block can only ever name objects of that table. Allowed at top level:
 * `table inet switchyard [{...}]`, `<verb> <object> inet switchyard ...`, `define`, comments.
 */
export function checkNftScope(text: string): string | undefined {
  for (const statement of topLevelStatements(text)) {
    const words = statement.split(/\s+/).filter((w) => w.length > 0);
    const [first, second] = words;
    if (first === undefined) continue;
    if (first === "define") continue;
    let rest: string[];
    if (first === "table") rest = words.slice(1);
    else if (VERBS.has(first) && second !== undefined && OBJECTS.has(second)) rest = words.slice(second === "ct" ? 3 : 2);
    else return `statement "${statement}" is not an operation on table ${SWITCHYARD_TABLE_FAMILY} ${SWITCHYARD_TABLE_NAME}`;
    // nft defaults the family to `ip` when it is omitted, so a missing family means another table.
    const family = rest[0] !== undefined && FAMILIES.has(rest[0]) ? rest[0] : "ip";
    const table = rest[0] !== undefined && FAMILIES.has(rest[0]) ? rest[1] : rest[0];
    if (family !== SWITCHYARD_TABLE_FAMILY || table !== SWITCHYARD_TABLE_NAME) {
      return `statement "${statement}" touches table ${family} ${table ?? "(none)"}, not ${SWITCHYARD_TABLE_FAMILY} ${SWITCHYARD_TABLE_NAME}`;
    }
  }
  return undefined;
}

/** The text outside any braces, split into statements at newlines and `;`, with comments and strings handled. */
function topLevelStatements(text: string): string[] {
  const statements: string[] = [];
  let depth = 0;
  let current = "";
  let inString = false;
  let inComment = false;
  const flush = (): void => {
    const s = current.trim();
    if (s.length > 0) statements.push(s);
    current = "";
  };
  for (const ch of text) {
    if (inComment) {
      if (ch === "\n") {
        inComment = false;
        if (depth === 0) flush();
      }
      continue;
    }
    if (inString) {
      if (ch === '"') inString = false;
      if (depth === 0) current += ch;
      continue;
    }
    if (ch === "#") inComment = true;
    else if (ch === '"') {
      inString = true;
      if (depth === 0) current += ch;
    } else if (ch === "{") {
      if (depth === 0) current += " ";
      depth++;
    } else if (ch === "}") depth = Math.max(0, depth - 1);
    else if (depth === 0) {
      if (ch === "\n" || ch === ";") flush();
      else current += ch;
    }
  }
  flush();
  return statements;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
