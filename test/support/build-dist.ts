// vitest's global setup: tests spawn bin/switchyard.mjs (the CLI tests, the lab's child daemons and its
// supervisor), which runs the compiled bundle in dist/cli, and the CNI tests run dist/cni/switchyard-cni
// through dist/cni/cni-driver. Build both here, once and before any test, when a source changed since the
// last build, so every spawned command runs the sources under test and none spends its own timeout
// rebuilding.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

export default function buildDist(): void {
  const root = join(import.meta.dirname, "..", "..");
  execFileSync(process.execPath, [join(root, "hack", "build.mjs"), "--if-stale"], { cwd: root, stdio: "inherit" });
  execFileSync("bash", [join(root, "hack", "build-cni.sh")], { cwd: root, stdio: "inherit" });
}
