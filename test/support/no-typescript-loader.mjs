// A Node module hook for tests (`node --import ./no-typescript-loader.mjs ...`): fails the process if it
// loads any TypeScript file or tsx, and, when SWITCHYARD_TEST_LOAD_LOG names a file, appends the URL of
// every file module it loads there. It proves that bin/switchyard.mjs runs the compiled bundle and shows
// which chunks a command reads.
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

// Loaded by --import in the main thread: register this same file as the hooks (they run in their own thread).
if (isMainThread) register(import.meta.url);

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (resolved.url.startsWith("file:")) {
    if (/\.[cm]?tsx?$/.test(new URL(resolved.url).pathname) || resolved.url.includes("/node_modules/tsx/")) {
      throw new Error(`TypeScript was loaded: ${resolved.url}`);
    }
    const log = process.env["SWITCHYARD_TEST_LOAD_LOG"];
    if (log) appendFileSync(log, `${resolved.url}\n`);
  }
  return resolved;
}
