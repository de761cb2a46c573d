// Why: nftables is the policy backend because one `nft -f` is one kernel transaction. The renderer emits
// the whole `inet switchyard` table with the replace idiom (`table inet switchyard` / `delete table ...` /
// `table inet switchyard { ... }`), so a new ruleset takes effect atomically with no window of "no rules",
// and a text nft rejects (syntax, a missing set, a kernel error) leaves the previous ruleset in force. That
// is why a rejected apply is a value, not a throw: the caller keeps serving the old plan and reports it.
// Switchyard owns exactly one table; every text is checked before it reaches nft so that no bug upstream
// can flush the ruleset or touch another owner's table (kube-proxy, firewalld, the admin's own rules).
import { runCommand } from "../../base/exec";
import { renderNftables, renderNftablesSetUpdate } from "../../render/nftables";
import { UnsafeKernelValueError } from "../../api/kernel-names";
import type { NodePolicySlice } from "../../compile/policy/slice";
import type { AppliedPolicy, PolicyApplyResult, PolicyBackend } from "./backend";
import { checkNftScope, SWITCHYARD_TABLE_FAMILY, SWITCHYARD_TABLE_NAME } from "./nft-scope";
import { ReferenceCache, withScratchNetns } from "./scratch";

const nftReferences = new ReferenceCache();

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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A table listing as the agent compares it: without handles and metainfo, counters as one value, and the
 * elements of every set and map sorted (nft lists a hash set in hash order, which depends on the history of
 * adds and deletes, not only on the members).
 */
export function normalizeListing(objects: readonly unknown[] | undefined): string {
  return JSON.stringify(objects ?? [], (key, value: unknown) => {
    if (key === "handle" || key === "metainfo") return undefined;
    if (key === "counter") return "c";
    if (key === "elem" && Array.isArray(value)) return [...(value as unknown[])].map((e) => JSON.stringify(e)).sort().map((e) => JSON.parse(e) as unknown);
    return value;
  });
}

/** The live table, normalised. */
export async function liveNftListing(netns: string | undefined): Promise<string> {
  return normalizeListing((await listSwitchyardTable(netns))?.objects);
}

/** What the rendered text becomes in the kernel, normalised: applied into a scratch namespace and listed there. */
export async function renderedNftListing(text: string): Promise<string> {
  return withScratchNetns(async (scratch) => {
    const r = await applyNftRuleset(scratch, text);
    if (!r.ok) throw new Error(`the rendered table does not load into an empty namespace: ${r.error}`);
    return liveNftListing(scratch);
  });
}

/**
 * The nftables backend: a change of set members only is one incremental transaction; anything else (or a
 * failed incremental update, or a live table that is not what the previous apply rendered) replaces the
 * whole table in one transaction. Drift is any difference of the live table from the rendered one.
 */
export const nftablesBackend: PolicyBackend = {
  name: "nftables",
  async apply(netns, slice, hash, previous) {
    try {
      return await applyNftables(netns, slice, hash, previous);
    } catch (e) {
      // A value the renderer refuses (it would have been nft syntax, not data) is a failed apply.
      if (e instanceof UnsafeKernelValueError) return { ok: false, error: `nftables rules not rendered, the previous rules stay in force: ${e.message}` };
      throw e;
    }
  },
  async inForce(netns, applied) {
    const reference = await nftReferences.get(applied.hash, () => renderedNftListing(renderNftables(applied.slice)));
    return (await liveNftListing(netns)) === reference;
  },
  async droppedPackets(netns) {
    let n = 0;
    for (const rule of (await listSwitchyardTable(netns))?.rules ?? []) {
      const expr = (rule["expr"] as Record<string, unknown>[] | undefined) ?? [];
      if (!expr.some((e) => "drop" in e)) continue;
      for (const e of expr) n += (e["counter"] as { packets?: number } | undefined)?.packets ?? 0;
    }
    return n;
  },
  async remove(netns) {
    await removeSwitchyardTable(netns);
  },
};

/** nftablesBackend.apply: an incremental update where only set members differ, else the whole table. */
async function applyNftables(netns: string | undefined, slice: NodePolicySlice, hash: string, previous: AppliedPolicy | undefined): Promise<PolicyApplyResult> {
  const update = previous ? renderNftablesSetUpdate(previous.slice, slice) : undefined;
  let change: "incremental" | "full" | "unchanged" | undefined;
  if (update !== undefined && update !== "") {
    if ((await applyNftSetUpdate(netns, update)).ok) change = "incremental";
  } else if (update === "") {
    if ((await listSwitchyardTable(netns)) !== undefined) change = "unchanged";
  }
  if (change === undefined) {
    const r = await applyNftRuleset(netns, renderNftables(slice));
    if (!r.ok) return { ok: false, error: `nftables transaction failed, the previous rules stay in force: ${r.error}` };
    change = "full";
  }
  return { ok: true, change, applied: { hash, backend: "nftables", slice } };
}
