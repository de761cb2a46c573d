// Why: IPIP needs a kernel module the build machines lack, so its data-plane check runs in a qemu guest on
// Debian's kernel (hack/qemu-ipip.sh, docs/qemu.md). This wrapper makes that part of `vitest run`, so CI runs
// it like any other kernel test. It is skipped only when SWITCHYARD_SKIP_QEMU=1 says so explicitly: a
// missing tool or root is a failure to see, not a silent skip. The run is bounded: the VM has 540 s, and the
// script is stopped (TERM, which kills its qemu; then KILL) if it is still running after 600 s.
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import { expectGuestPassed, KILL_GRACE_MS, runQemuScript } from "./run-script";

const SCRIPT = fileURLToPath(new URL("../../hack/qemu-ipip.sh", import.meta.url));
const VM_LIMIT_S = 540;
const SCRIPT_LIMIT_MS = 600_000;
const SKIP = process.env["SWITCHYARD_SKIP_QEMU"] === "1";

if (SKIP) console.log("skipping the qemu IPIP test: SWITCHYARD_SKIP_QEMU=1 is set");

describe.skipIf(SKIP)("IPIP on Debian's kernel in qemu (hack/qemu-ipip.sh)", () => {
  it(
    "compiles and applies ipip, ipip crossSubnet and mixed ipip+vxlan plans with the real agent, and every check passes",
    async () => {
      const run = await runQemuScript(SCRIPT, VM_LIMIT_S, SCRIPT_LIMIT_MS);
      expectGuestPassed(run, SCRIPT_LIMIT_MS, 40);
    },
    SCRIPT_LIMIT_MS + KILL_GRACE_MS + 5_000,
  );
});
