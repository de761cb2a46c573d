// Why: lab processes (pod agents, later BIRD and per-node agents) must be stoppable after a crash of the
// process that started them, so their pids live in files under the lab's run dir, never only in memory.
// A pid file also records the process start time (field 22 of /proc/PID/stat): a recycled pid belongs to a
// different process with a different start time, and we kill only the exact process we started.
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "../src/base/wait";

export interface PidRecord {
  readonly pid: number;
  /** Start time in clock ticks since boot, from /proc/PID/stat; undefined if it could not be read. */
  readonly startTime: string | undefined;
  /** What it is, for humans: "pod agent x/a". */
  readonly what: string;
  readonly netns?: string;
}

function pidDir(runDir: string): string {
  return join(runDir, "pids");
}

function pidFile(runDir: string, key: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new Error(`invalid pid-file key ${JSON.stringify(key)}`);
  return join(pidDir(runDir), `${key}.json`);
}

/** Start time of a live, non-zombie process; undefined when it is gone (or a zombie). */
export async function readProcessStartTime(pid: number): Promise<string | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return fields[19]; // field 22 overall: state is field 3 = index 0 here
}

export async function recordProcess(runDir: string, key: string, record: Omit<PidRecord, "startTime">): Promise<PidRecord> {
  const full: PidRecord = { ...record, startTime: await readProcessStartTime(record.pid) };
  await mkdir(pidDir(runDir), { recursive: true });
  await writeFile(pidFile(runDir, key), `${JSON.stringify(full)}\n`);
  return full;
}

export async function forgetProcess(runDir: string, key: string): Promise<void> {
  await rm(pidFile(runDir, key), { force: true });
}

/**
 * Stops one process by pid: SIGTERM, then SIGKILL if it is still there after `graceMs`, then waits (bounded)
 * until it is gone. With `startTime` given, does nothing unless the pid still has that start time.
 * Returns true when a signal was sent.
 */
export async function stopPid(pid: number, startTime?: string, graceMs = 500): Promise<boolean> {
  const current = await readProcessStartTime(pid);
  if (current === undefined) return false;
  if (startTime !== undefined && current !== startTime) return false;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone in between
    }
  };
  signal("SIGTERM");
  const gone = async (): Promise<true | undefined> => ((await readProcessStartTime(pid)) !== current ? true : undefined);
  try {
    await waitFor(`pid ${pid} to exit after SIGTERM`, gone, graceMs);
  } catch {
    signal("SIGKILL");
    await waitFor(`pid ${pid} to exit after SIGKILL`, gone, 5_000);
  }
  return true;
}

/** Stops the process recorded under `key` (if it is still the same process) and removes its pid file. */
export async function stopRecordedProcess(runDir: string, key: string): Promise<boolean> {
  let record: PidRecord;
  try {
    record = JSON.parse(await readFile(pidFile(runDir, key), "utf8")) as PidRecord;
  } catch {
    return false;
  }
  const stopped = await stopPid(record.pid, record.startTime);
  await forgetProcess(runDir, key);
  return stopped;
}

/** Stops every recorded process of a run dir; returns the pids signalled. */
export async function stopAllRecordedProcesses(runDir: string): Promise<number[]> {
  let files: string[];
  try {
    files = await readdir(pidDir(runDir));
  } catch {
    return [];
  }
  const stopped: number[] = [];
  await Promise.all(
    files
      .filter((f) => f.endsWith(".json"))
      .map(async (f) => {
        const key = f.slice(0, -".json".length);
        let record: PidRecord | undefined;
        try {
          record = JSON.parse(await readFile(join(pidDir(runDir), f), "utf8")) as PidRecord;
        } catch {
          record = undefined;
        }
        if (await stopRecordedProcess(runDir, key)) stopped.push(record?.pid ?? -1);
      }),
  );
  return stopped;
}
