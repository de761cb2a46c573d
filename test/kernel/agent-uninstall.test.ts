// Kernel test: `switchyard agent --uninstall` removes what the agent put on a node (its policy table, the
// CNI plugin, the conflist and the markers) and leaves what is not its own (another nft table, the
// plugin's address allocations), then exits 0. The "node" is a network namespace: prefix syun-.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand, runOk } from "../../src/base/exec";
import { installCni, markNodeReady, syncEndpointMarkers, CNI_CONFLIST_NAME, CNI_PLUGIN_NAME } from "../../src/agent/cni-install";
import { policyBackend } from "../../src/agent/policy/backends";
import { sliceHash } from "../../src/compile/policy/slice";
import { compilePolicies, slicePolicyForNode } from "../../src/compile/policy";
import { packagePath } from "../../src/base/package-root";
import { buildNamespace, buildPod, buildSnapshot } from "../support/policy-builders";

const NETNS = "syun-n1";
const BIN = packagePath("bin", "switchyard.mjs");

describe("switchyard agent --uninstall", () => {
  let dir: string;
  beforeAll(async () => {
    await runCommand("ip", ["netns", "del", NETNS]);
    await runOk("ip", ["netns", "add", NETNS]);
    dir = mkdtempSync(join(tmpdir(), "syun-"));
  });
  afterAll(async () => {
    await runCommand("ip", ["netns", "del", NETNS]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("removes the policy table, the plugin, the conflist and the markers; keeps allocations and others' tables", async () => {
    const cni = { binDir: join(dir, "bin"), confDir: join(dir, "net.d"), stateDir: join(dir, "run"), dataDir: join(dir, "ipam"), pluginBinary: packagePath("dist", "cni", "switchyard-cni"), policyWaitSeconds: 10 };
    installCni(cni, { block: "10.244.1.0/24", mtu: 1450 });
    markNodeReady(cni, "h1");
    syncEndpointMarkers(cni, [{ namespace: "x", name: "a", interface: "sy000000000001" }]);
    writeFileSync(join(cni.dataDir, "10.244.1.1"), "c1\neth0\nx/a\n");
    const slice = slicePolicyForNode(compilePolicies(buildSnapshot([buildNamespace("x")], [buildPod("x/a", {}, { node: "n1", ip: "10.244.1.1" })], [])), "n1");
    const applied = await policyBackend("nftables").apply(NETNS, slice, sliceHash(slice), undefined);
    expect(applied.ok).toBe(true);
    await runOk("nft", ["add", "table", "inet", "someone-else"], { netns: NETNS });

    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [BIN, "agent", "--node", "n1", "--netns", NETNS, "--run-dir", join(dir, "agent"), "--cni-bin-dir", cni.binDir, "--cni-conf-dir", cni.confDir, "--cni-state-dir", cni.stateDir, "--cni-data-dir", cni.dataDir, "--uninstall"], { timeout: 60_000 }, (err, _out, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    const tables = await runOk("nft", ["list", "tables"], { netns: NETNS });
    expect(tables).not.toContain("switchyard");
    expect(tables).toContain("someone-else");
    expect(existsSync(join(cni.binDir, CNI_PLUGIN_NAME))).toBe(false);
    expect(existsSync(join(cni.confDir, CNI_CONFLIST_NAME))).toBe(false);
    expect(existsSync(join(cni.stateDir, "ready"))).toBe(false);
    expect(existsSync(join(cni.stateDir, "endpoints"))).toBe(false);
    expect(existsSync(join(cni.dataDir, "10.244.1.1"))).toBe(true);
  }, 90_000);
});
