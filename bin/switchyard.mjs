#!/usr/bin/env node
// The `switchyard` command (also `kubectl switchyard` when installed as kubectl-switchyard on PATH).
// It runs the compiled bundle in dist/cli/ (hack/build.mjs; `npm ci` builds it), never TypeScript, so a
// start costs what Node costs plus the chunks a command needs. In a checkout (hack/ is here) a build
// older than the sources is rebuilt before it runs, never run silently; the check is a few stat calls.
// The image has no sources and no hack/, so there is nothing to check.
import { existsSync } from "node:fs";

// A reader that goes away (`switchyard ... | head`) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e && e.code === "EPIPE") process.exit(0);
    throw e;
  });
}

const stampModule = new URL("../hack/build-stamp.mjs", import.meta.url);
if (existsSync(stampModule)) {
  const { staleReason } = await import(stampModule.href);
  const reason = staleReason();
  if (reason !== undefined) {
    process.stderr.write(`switchyard: ${reason}; rebuilding dist/cli (node hack/build.mjs)\n`);
    let buildCli;
    try {
      ({ buildCli } = await import(new URL("../hack/build.mjs", import.meta.url).href));
      await import("esbuild");
    } catch (e) {
      process.stderr.write(`switchyard: cannot rebuild: ${e.message}\n  esbuild is a devDependency: run \`npm ci\` in the repository, then try again\n`);
      process.exit(1);
    }
    try {
      await buildCli();
    } catch {
      // esbuild printed the errors with their file and line.
      process.stderr.write("switchyard: the build failed (see above); nothing was run\n");
      process.exit(1);
    }
  }
}

const { main } = await import("../dist/cli/main.js");
const code = await main(process.argv.slice(2));
// Exit explicitly: the Kubernetes client keeps idle keep-alive sockets open for minutes, which would
// otherwise hold a finished one-shot command. (Long-running commands return only when they stop.)
process.exit(code);
