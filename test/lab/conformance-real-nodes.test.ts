// The NetworkPolicy conformance corpus on real nodes (lab/nodes): kubelet and containerd run every pod of
// every case (the workload image), switchyard-cni wires each through containerd at the corpus's address
// (its `switchyard.dev/ip-addrs` request, planned by the controller and handed to the plugin by the agent),
// Switchyard runs from deploy/, and the matrices are probed with real packets from the pods' own network
// namespaces. Every case of the corpus runs. As in the lab-kubelet run (conformance-cluster.test.ts), the
// corpus's nine addresses fall into one node's block, so the pods share a node; the cross-node pairs on
// kubelet pods are proven by real-nodes.test.ts, and the corpus's across nodes by the direct runner.
// Lab prefix: sycr-.
import { describe, expect, it } from "vitest";
import { runConformanceOnRealNodes } from "../../lab/conformance/api-runner";
import { packagePath } from "../../src/base/package-root";
import { realNodesUnavailable } from "../support/kube";

const unavailable = await realNodesUnavailable();
if (unavailable) console.warn(unavailable);

describe.skipIf(unavailable !== undefined)("the conformance corpus on kubelet pods (real nodes)", () => {
  it("passes every case, nftables backend", async () => {
    const lines: string[] = [];
    const t0 = Date.now();
    const report = await runConformanceOnRealNodes({
      file: packagePath("test", "fixtures", "conformance", "netpol-upstream.yaml"),
      backend: "nftables",
      log: (l) => lines.push(l),
    });
    console.log(lines.filter((l) => !l.startsWith("PASS")).join("\n"));
    console.log(`# the corpus on kubelet pods: ${report.passed} passed, ${report.failed} failed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    expect(report.passed).toBeGreaterThanOrEqual(51);
    expect(report.failed, lines.filter((l) => !l.startsWith("PASS")).join("\n")).toBe(0);
  }, 30 * 60_000);
});
