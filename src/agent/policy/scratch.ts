// Why: drift is a difference between the kernel and what was RENDERED, not what the kernel held right after
// an apply (a listing read back then makes drift present at that moment the baseline). The kernel
// normalises what it is given (nft's JSON, `iptables -S`), so the reference is taken the same way: the
// rendered ruleset is applied once into a scratch network namespace of its own, empty and linked to
// nothing (no traffic ever crosses it), and listed there. Live listing == scratch listing means "as
// rendered". The namespace lives only for that check; one left behind by a crash is removed at the next
// start of an agent (its name carries the pid that made it).
import { runCommand } from "../../base/exec";

const SCRATCH_PREFIX = "sy-verify-";

/**
 * The rendered references of the last few applied slices, by hash. A reference is taken when it is first
 * needed (a drift check on the repair timer, or an unchanged plan after a restart), not at apply time: a
 * scratch render costs about what a whole-ruleset apply costs (bench/policy.ts), and a membership change
 * must stay a one-transaction update on the policy's critical path.
 */
export class ReferenceCache {
  private readonly entries = new Map<string, Promise<string>>();
  constructor(private readonly size = 16) {}

  get(key: string, take: () => Promise<string>): Promise<string> {
    let p = this.entries.get(key);
    if (p === undefined) {
      p = take();
      // A failed render is not remembered: the next check tries again.
      p.catch(() => this.entries.delete(key));
      this.entries.set(key, p);
      while (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value!);
    }
    return p;
  }
}
let counter = 0;

/** Runs `fn` with a fresh, empty network namespace of its own, removed afterwards (also on failure). */
export async function withScratchNetns<T>(fn: (netns: string) => Promise<T>): Promise<T> {
  const name = `${SCRATCH_PREFIX}${process.pid}-${++counter}`;
  const added = await runCommand("ip", ["netns", "add", name], { timeoutMs: 10_000 });
  if (added.code !== 0) throw new Error(`cannot create the scratch namespace ${name}: ${added.stderr.trim()}`);
  try {
    return await fn(name);
  } finally {
    await runCommand("ip", ["netns", "del", name], { timeoutMs: 10_000 });
  }
}

/** Removes scratch namespaces whose creating process is gone (an agent killed during a check). */
export async function removeStaleScratchNetns(): Promise<string[]> {
  const r = await runCommand("ip", ["-j", "netns", "list"], { timeoutMs: 10_000 });
  if (r.code !== 0 || r.stdout.trim() === "") return [];
  const names = (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name).filter((n) => n.startsWith(SCRATCH_PREFIX));
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(name.slice(SCRATCH_PREFIX.length).split("-")[0]);
    if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) continue;
    if ((await runCommand("ip", ["netns", "del", name], { timeoutMs: 10_000 })).code === 0) removed.push(name);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
