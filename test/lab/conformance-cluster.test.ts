// The NetworkPolicy conformance corpus through a whole lab cluster on the control plane of this run (on CI
// the real kube-apiserver): each case's Namespaces, Pods and NetworkPolicies go to the API, the controller
// compiles and publishes, the agents apply, switchyard-cni wires the pods at the corpus's addresses, and the
// matrices are probed with real packets (lab/conformance/api-runner.ts). The nftables backend here; both
// backends also run through the direct runner (npm test's conformance steps). Lab prefix: sycc-.
import { describe, expect, it } from "vitest";
import { runConformanceOnCluster } from "../../lab/conformance/api-runner";
import { packagePath } from "../../src/base/package-root";
import { LAB_CONTROL_PLANE } from "../support/control-plane";

describe(`the conformance corpus through a lab cluster (${LAB_CONTROL_PLANE} control plane)`, () => {
  it("passes every case, nftables backend", async () => {
    const lines: string[] = [];
    const report = await runConformanceOnCluster({
      file: packagePath("test", "fixtures", "conformance", "netpol-upstream.yaml"),
      backend: "nftables",
      controlPlane: LAB_CONTROL_PLANE,
      log: (l) => lines.push(l),
    });
    console.log(lines.filter((l) => !l.startsWith("PASS")).join("\n"));
    expect(report.passed).toBeGreaterThanOrEqual(51);
    expect(report.failed, lines.filter((l) => !l.startsWith("PASS")).join("\n")).toBe(0);
  }, 20 * 60_000);
});
