#!/usr/bin/env node
// Builds the `switchyard` command (CLI, controller, agent, lab) into dist/cli/ with esbuild, so that
// nothing runs TypeScript at start: one ESM bundle for Node 20, with code splitting so that a subcommand
// loads only its own chunks (main.ts imports each subcommand's module inside its action).
// - Every library is inlined, the Kubernetes clients too, so the image needs no node_modules at all.
//   Measured (docs/benchmarks.md, "CLI start"): --help and validate never load the client chunks either
//   way, and loading the daemons' code from one bundled chunk took a third of the time that resolving
//   kubernetes-fluent-client, client-node, undici, pino and prom-client file by file in node_modules did.
// - keepNames: kubernetes-fluent-client finds a kind's API group by its model class's name (kind.Pod.name),
//   which a bundler would otherwise be free to rename (`_V1Pod`).
// - A require() for the CommonJS packages inlined into ESM (commander, client-node's dependencies).
// Run by `npm ci`/`npm install` (the `prepare` script), by hack/ensure-deps.sh and vitest's global setup
// when the sources changed (`--if-stale`), and by bin/switchyard.mjs when it finds a stale build.
// Files are written to temporaries and renamed into place, chunks before entries, so a process starting
// while another rebuilds never reads half a file; two concurrent builds write identical bytes.
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { OUT_DIR, ROOT, STAMP, staleReason } from "./build-stamp.mjs";

/** Files besides the bundle's own inputs whose change makes a build stale. */
const EXTRA_INPUTS = ["hack/build.mjs", "hack/build-stamp.mjs", "package.json", "package-lock.json", "tsconfig.json", "node_modules/.package-lock.json"];

function mtime(file) {
  try {
    return statSync(join(ROOT, file)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Builds dist/cli/ from the sources; returns the number of files written. */
export async function buildCli() {
  const { build } = await import("esbuild");
  const startedAt = Date.now();
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { main: "src/cli/main.ts" },
    outdir: OUT_DIR,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    keepNames: true,
    // CommonJS packages inlined into ESM call require() for Node's own modules (and optional packages).
    banner: { js: 'import { createRequire as __syCreateRequire } from "node:module"; const require = __syCreateRequire(import.meta.url);' },
    metafile: true,
    write: false,
    logLevel: "warning",
  });
  mkdirSync(join(OUT_DIR, "chunks"), { recursive: true });
  const written = new Set();
  // Chunks first, entries last: an entry on disk only ever names chunks that are already there.
  const files = [...result.outputFiles].sort((a, b) => Number(!a.path.includes("/chunks/")) - Number(!b.path.includes("/chunks/")));
  for (const f of files) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
    written.add(f.path);
  }
  // Files of earlier builds that this one no longer names; a build running beside this one started
  // after it and writes only files newer than its start, so this never removes what another just wrote.
  for (const dir of [OUT_DIR, join(OUT_DIR, "chunks")]) {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (p === STAMP || name === "chunks" || written.has(p)) continue;
      if ((statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) < startedAt) rmSync(p, { force: true });
    }
  }
  const inputs = {};
  for (const file of [...Object.keys(result.metafile.inputs).filter((f) => !f.includes("node_modules/")), ...EXTRA_INPUTS]) {
    const t = mtime(file);
    // A file changed while we built may not be in this bundle as it is now: record it as stale.
    if (t !== undefined) inputs[file] = t > startedAt ? -1 : t;
  }
  const tmp = `${STAMP}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ builtAt: new Date(startedAt).toISOString(), inputs }, null, 1)}\n`);
  renameSync(tmp, STAMP);
  return written.size;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const reason = staleReason();
  if (args.includes("--if-stale") && reason === undefined) process.exit(0);
  try {
    await import("esbuild");
  } catch {
    // `npm ci --omit=dev` runs `prepare` too, without the devDependencies: that install is not for
    // running from the checkout, so it is no reason to fail; bin/switchyard.mjs says what to do if run.
    console.error("hack/build.mjs: esbuild (a devDependency) is not installed, so dist/cli was not built; run `npm ci` to build it");
    process.exit(args.includes("--prepare") ? 0 : 1);
  }
  const t0 = Date.now();
  try {
    const n = await buildCli();
    if (!args.includes("--quiet")) console.error(`built dist/cli (${n} files, ${Date.now() - t0} ms)${reason ? `: ${reason}` : ""}`);
  } catch (e) {
    // esbuild has printed the errors with their locations already.
    console.error(`hack/build.mjs: the build failed${e instanceof Error && !("errors" in e) ? `: ${e.message}` : ""}`);
    process.exit(1);
  }
}
