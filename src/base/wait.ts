// Waiting on a condition, never on a fixed sleep: what the kernel, a child process or the API reaches
// asynchronously is polled (bounded in time) until it holds.
/**
 * Polls `check` until it returns a value other than undefined or false, or throws after `timeoutMs`
 * naming `what`. For conditions reached asynchronously (a process exiting, a namespace disappearing, a
 * watch event arriving): wait on the condition, never on a fixed sleep. A boolean predicate works as is.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, intervalMs = 10): Promise<Exclude<T, false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as Exclude<T, false>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves after `ms` milliseconds: only for pacing a loop that polls a condition, never as a wait for one. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
