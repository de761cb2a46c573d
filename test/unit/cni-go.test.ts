// The Go side (cni/: the switchyard-cni plugin and the libcni driver): its own unit tests and `go vet`,
// run from here so that CI runs them with everything else; and a cross-check that the plugin derives a
// pod's host veth name exactly as podInterfaceName does (the agent's policy rules match on that name).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCommand } from "../../src/base/exec";
import { podInterfaceName } from "../../src/model/names";

const ROOT = join(import.meta.dirname, "..", "..");
const PLUGIN = join(ROOT, "dist", "cni", "switchyard-cni");
const GO_ENV_PATH = `/usr/local/go/bin:${process.env["PATH"] ?? ""}`;

async function go(args: string[]): Promise<{ code: number; output: string }> {
  // runCommand takes no directory or environment: `env -C` gives both, to the child only.
  const r = await runCommand("env", ["-C", join(ROOT, "cni"), `PATH=${GO_ENV_PATH}`, "go", ...args], { timeoutMs: 280_000 });
  return { code: r.code, output: r.stdout + r.stderr };
}

describe("the Go CNI module", () => {
  it("passes go vet", async () => {
    const r = await go(["vet", "./..."]);
    expect(r.code, r.output).toBe(0);
  }, 300_000);

  it("passes its unit tests (IPAM, names, config, the policy wait)", async () => {
    const r = await go(["test", "-count=1", "./..."]);
    expect(r.code, r.output).toBe(0);
    for (const pkg of ["internal/config", "internal/ipam", "internal/names", "internal/plugin"]) expect(r.output).toMatch(new RegExp(`^ok\\s+switchyard\\.dev/cni/${pkg}\\s`, "m"));
  }, 300_000);

  it("names a pod's host veth as podInterfaceName does", async () => {
    const pods = [
      ["default", "web-0"],
      ["kube-system", "coredns-7db6d8ff4d-x2x9q"],
      ["a", "b"],
      ["sycni", "p1"],
      ["a-very-long-namespace-name-of-sixty-three-characters-xxxxxxxxxx", `pod-${"x".repeat(240)}`],
    ] as const;
    for (const [namespace, name] of pods) {
      const r = await runCommand(PLUGIN, ["--interface-name", namespace, name], { timeoutMs: 10_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim(), `${namespace}/${name}`).toBe(podInterfaceName(namespace, name));
    }
  });
});
