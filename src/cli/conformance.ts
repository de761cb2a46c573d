// `switchyard conformance FILE [--case ID ...] [--backend nftables|iptables] [--control-plane K]`: runs a
// NetworkPolicy corpus on the real kernel in a throwaway lab (with --control-plane: through a whole lab
// cluster on that control plane). Exit 0 when every case passes, 1 on any failure, 2 on bad input.
import { ConformanceInputError, runConformance, type PolicyBackend } from "../../lab/conformance/runner";

/** The flags, the numbers and choices already parsed and checked by src/cli/flags.ts. */
export type ConformanceCliOptions = { case?: string[]; backend: PolicyBackend; nodes: number; timeout: number; verbose?: boolean; controlPlane?: "embedded" | "kubernetes"; kubelet?: boolean };

export async function runConformanceCommand(file: string, opts: ConformanceCliOptions): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("error: the conformance runner builds network namespaces and needs root");
    return 2;
  }
  if (opts.kubelet && opts.controlPlane !== "kubernetes") {
    console.error("error: --kubelet needs --control-plane kubernetes (kubelets register with the real API server)");
    return 2;
  }
  try {
    if (opts.kubelet) {
      const { runConformanceOnRealNodes } = await import("../../lab/conformance/api-runner");
      const report = await runConformanceOnRealNodes({ file, backend: opts.backend, cases: opts.case ?? [], log: (l: string) => console.log(l) });
      return report.failed === 0 && report.passed > 0 ? 0 : 1;
    }
    if (opts.controlPlane !== undefined) {
      const { runConformanceOnCluster } = await import("../../lab/conformance/api-runner");
      const report = await runConformanceOnCluster({ file, backend: opts.backend, controlPlane: opts.controlPlane, cases: opts.case ?? [], log: (l: string) => console.log(l) });
      return report.failed === 0 && report.passed > 0 ? 0 : 1;
    }
    const report = await runConformance({
      file,
      backend: opts.backend,
      cases: opts.case ?? [],
      nodes: opts.nodes,
      timeoutMs: opts.timeout,
      verbose: opts.verbose ?? false,
      log: (l) => console.log(l),
    });
    return report.failed === 0 && report.passed > 0 ? 0 : 1;
  } catch (e) {
    if (e instanceof ConformanceInputError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
