import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "lab/**/*.test.ts", "test/**/*.test.ts", "hack/**/*.test.ts", "capabilities/**/*.test.ts"],
    // Pepr registers bindings at import time according to these; keep it inert in tests.
    env: { PEPR_MODE: "dev", PEPR_WATCH_MODE: "false" },
    // Tests spawn bin/switchyard.mjs, which runs dist/cli: build it from the current sources first.
    globalSetup: ["test/support/build-dist.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Kernel tests build network namespaces with fixed prefixes; run files one at a time.
    fileParallelism: false,
  },
});
