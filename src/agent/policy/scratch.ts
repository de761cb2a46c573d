// Why: drift is a difference between the kernel and what was RENDERED, not what the kernel held right after
// an apply (a listing read back then makes drift present at that moment the baseline). The kernel
// normalises what it is given (nft's JSON, `iptables -S`), so the reference is taken the same way: the
// rendered ruleset is applied once into a scratch network namespace of its own, empty and linked to
// nothing (no traffic ever crosses it), and listed there. Live listing == scratch listing means "as
// rendered". The namespace lives only for that check; one left behind by a crash is removed at the next
// start of an agent (its name carries the pid that made it).
import { runCommand } from "../../base/exec";

const SCRATCH_PREFIX = "sy-verify-";
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
