#!/usr/bin/env node
// The `switchyard` command (also `kubectl switchyard` when installed as kubectl-switchyard on PATH).
// The CLI is TypeScript run through tsx's loader, so the repository needs no build step.
import { register } from "tsx/esm/api";

// A reader that goes away (`switchyard ... | head`) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e && e.code === "EPIPE") process.exit(0);
    throw e;
  });
}

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
// Exit explicitly: the Kubernetes client keeps idle keep-alive sockets open for minutes, which would
// otherwise hold a finished one-shot command. (Long-running commands return only when they stop.)
process.exit(code);
