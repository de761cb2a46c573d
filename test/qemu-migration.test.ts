// Why: the "Safe mode migration" acceptance item (IPIP -> BGP with 0 packets lost, every TCP connection
// alive with no stall over 200 ms, a denied flow denied at every instant) can only be shown on a kernel with
// ipip, so it runs in a qemu guest (hack/qemu-migration.sh, docs/qemu.md). It is OPT-IN for now
// (SWITCHYARD_QEMU_MIGRATION=1): the whole stack under TCG emulation on 2 shared cores takes 3-7 minutes and
// its timing depends on the host's load (docs/qemu.md has the measurements), so it is not yet part of the
// default `npm test`; when it is skipped it says so. The run is bounded: the VM has 480 s, and the script is
// stopped (TERM, which kills its qemu; then KILL) after 540 s.
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import { expectGuestPassed, KILL_GRACE_MS, runQemuScript } from "./qemu/run-script";

const SCRIPT = fileURLToPath(new URL("../hack/qemu-migration.sh", import.meta.url));
const VM_LIMIT_S = 480;
const SCRIPT_LIMIT_MS = 540_000;
const SKIP = process.env["SWITCHYARD_SKIP_QEMU"] === "1" || process.env["SWITCHYARD_QEMU_MIGRATION"] !== "1";

if (SKIP) console.log("skipping the qemu IPIP -> BGP migration test: opt-in with SWITCHYARD_QEMU_MIGRATION=1 (3-7 min of emulated VM time); or run bash hack/qemu-migration.sh");

describe.skipIf(SKIP)("IPIP -> BGP migration under traffic on Debian's kernel in qemu (hack/qemu-migration.sh)", () => {
  it(
    "completes with 0 pings lost, the TCP stream alive without a network stall over 200 ms, and the denied flow never let through",
    async () => {
      const run = await runQemuScript(SCRIPT, VM_LIMIT_S, SCRIPT_LIMIT_MS);
      expectGuestPassed(run, SCRIPT_LIMIT_MS, 60);
    },
    SCRIPT_LIMIT_MS + KILL_GRACE_MS + 5_000,
  );
});
