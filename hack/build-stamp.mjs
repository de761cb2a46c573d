// Why: a checkout must never run a stale build. hack/build.mjs records, next to its output, every file
// the bundle was made from (as esbuild's metafile lists them, plus the lock file, tsconfig.json and the
// build script) with its modification time; a build is fresh while every one of them still has the
// recorded time. Checking is one small JSON read and ~150 stat calls (well under a millisecond on a warm
// cache), cheap enough for bin/switchyard.mjs to do at every start in a checkout. A changed time, a
// missing file or a missing stamp all mean "rebuild"; time rather than content, so a check never reads
// sources, and "different" rather than "newer", so a file restored with an older time counts too.
// Plain JavaScript with no dependency: it runs before anything is built and without tsx.
import { readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository (package) root: this file lives in hack/. */
export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** Where the command's bundle goes; `npx pepr build` writes beside it (dist/pepr-*, dist/src/...). */
export const OUT_DIR = join(ROOT, "dist", "cli");
export const STAMP = join(OUT_DIR, "build-stamp.json");

/**
 * Why dist/cli must be rebuilt (a sentence naming the first file that changed), or undefined when it is
 * fresh. `inputs` maps a path relative to the root to the mtime (ms) recorded at build time.
 */
export function staleReason() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, "utf8"));
  } catch {
    return "dist/cli has not been built";
  }
  for (const [file, mtimeMs] of Object.entries(stamp.inputs ?? {})) {
    let now;
    try {
      now = statSync(join(ROOT, file)).mtimeMs;
    } catch {
      return `${file} is gone since the last build`;
    }
    if (now !== mtimeMs) return `${file} changed since the last build`;
  }
  return undefined;
}
