// Why: the "Safe mode migration" acceptance item (IPIP -> BGP with 0 packets lost, every TCP connection
// alive with no stall over 200 ms, a denied flow denied at every instant) can only be shown on a kernel with
// ipip, so it runs in a qemu guest (hack/qemu-migration.sh, docs/qemu.md), as part of `npm test` and CI
// (about 80 s of VM time on a quiet host; vitest runs test files one at a time, so nothing else competes for
// the two cores). It is skipped only when SWITCHYARD_SKIP_QEMU=1 says so. The run is bounded: the VM has
// 480 s, and the script is stopped (TERM, which kills its qemu; then KILL) after 540 s.
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import { expectGuestPassed, KILL_GRACE_MS, runQemuScript } from "./run-script";

const SCRIPT = fileURLToPath(new URL("../../hack/qemu-migration.sh", import.meta.url));
const VM_LIMIT_S = 480;
const SCRIPT_LIMIT_MS = 540_000;
const SKIP = process.env["SWITCHYARD_SKIP_QEMU"] === "1";

if (SKIP) console.log("skipping the qemu IPIP -> BGP migration test: SWITCHYARD_SKIP_QEMU=1 is set");

describe.skipIf(SKIP)("IPIP -> BGP migration under traffic on Debian's kernel in qemu (hack/qemu-migration.sh)", () => {
  it(
    "completes with 0 pings lost, the TCP stream alive without a stall over 200 ms, and the denied flow never let through",
    async () => {
      const run = await runQemuScript(SCRIPT, VM_LIMIT_S, SCRIPT_LIMIT_MS);
      expectGuestPassed(run, SCRIPT_LIMIT_MS, 60);
    },
    SCRIPT_LIMIT_MS + KILL_GRACE_MS + 5_000,
  );
});
