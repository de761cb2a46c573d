// Why: a packet the kernel drops leaves a trace in a counter of the namespace that dropped it (IP and ICMP
// discards and errors in /proc/net/snmp, conntrack insert failures and drops in /proc/net/stat/nf_conntrack,
// per-device rx/tx drops). The migration check snapshots them in every node and pod namespace around a
// window in which packets went missing, so the report says WHERE they were lost, not only that they were.
import { runCommand } from "../../../src/base/exec";

/** Counter name -> value (only the ones that count drops and errors). */
export type DropCounters = ReadonlyMap<string, number>;

const SNMP_FIELD = /Discard|Err|NoRoute|Drop|Fail|Unknown|NoPorts/;
const CONNTRACK_FIELDS = new Set(["invalid", "insert_failed", "drop", "early_drop", "icmp_error", "clashres", "clash_resolve", "search_restart"]);

function parseSnmp(text: string, out: Map<string, number>): void {
  const lines = text.split("\n");
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i]!.trim().split(/\s+/);
    const vals = lines[i + 1]!.trim().split(/\s+/);
    if (head[0] === undefined || head[0] !== vals[0] || !head[0].endsWith(":") || Number.isNaN(Number(vals[1]))) continue;
    const prefix = head[0].slice(0, -1);
    for (let k = 1; k < head.length; k++) if (SNMP_FIELD.test(head[k]!)) out.set(`${prefix}.${head[k]}`, Number(vals[k]));
    i++;
  }
}

function parseConntrack(text: string, out: Map<string, number>): void {
  const lines = text.trim().split("\n").filter((l) => l.trim() !== "");
  const head = lines[0]?.trim().split(/\s+/) ?? [];
  for (const line of lines.slice(1)) {
    const vals = line.trim().split(/\s+/);
    head.forEach((name, k) => {
      if (CONNTRACK_FIELDS.has(name)) out.set(`conntrack.${name}`, (out.get(`conntrack.${name}`) ?? 0) + parseInt(vals[k] ?? "0", 16));
    });
  }
}

function parseLinks(json: string, out: Map<string, number>): void {
  let links: { ifname?: string; stats64?: Record<"rx" | "tx", Record<string, number>> }[] = [];
  try {
    links = JSON.parse(json || "[]") as typeof links;
  } catch {
    return;
  }
  for (const l of links) {
    for (const dir of ["rx", "tx"] as const) {
      const s = l.stats64?.[dir];
      if (!s) continue;
      for (const k of ["dropped", "errors"]) if (typeof s[k] === "number") out.set(`${l.ifname}.${dir}_${k}`, s[k]);
    }
  }
}

/** One namespace's drop counters (one process: `sh` reads them all). */
export async function dropCounters(netns: string): Promise<DropCounters> {
  const r = await runCommand("sh", ["-c", "cat /proc/net/snmp; echo @@; cat /proc/net/stat/nf_conntrack 2>/dev/null; echo @@; ip -s -j link show"], { netns, timeoutMs: 30_000 });
  const [snmp = "", ct = "", links = ""] = r.stdout.split("@@\n");
  const out = new Map<string, number>();
  parseSnmp(snmp, out);
  parseConntrack(ct, out);
  parseLinks(links.trim(), out);
  return out;
}

/** "name +n" for every counter that grew between two snapshots; "" when none did. */
export function describeDropDiff(before: DropCounters, after: DropCounters): string {
  const grown: string[] = [];
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) grown.push(`${k} +${d}`);
  }
  return grown.join(", ");
}
