#!/usr/bin/env node
// The `switchyard` command (also `kubectl switchyard` when installed as kubectl-switchyard on PATH).
// The CLI is TypeScript run through tsx's loader, so the repository needs no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
