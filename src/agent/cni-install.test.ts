// The agent's CNI install step on a scratch directory: the conflist it writes, atomic and idempotent
// writes, the markers the plugin reads, and the uninstall.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CNI_CONFLIST_NAME, CNI_PLUGIN_NAME, cniConflist, installCni, markNodeReady, syncEndpointMarkers, uninstallCni, type CniInstallOptions } from "./cni-install";

let dir: string;
let opts: CniInstallOptions;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sy-cni-install-"));
  const plugin = join(dir, "build", CNI_PLUGIN_NAME);
  mkdirSync(join(dir, "build"));
  writeFileSync(plugin, "#!/bin/sh\nexit 0\n");
  chmodSync(plugin, 0o755);
  opts = { binDir: join(dir, "bin"), confDir: join(dir, "net.d"), stateDir: join(dir, "run"), dataDir: join(dir, "ipam"), pluginBinary: plugin, policyWaitSeconds: 10 };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("cniConflist", () => {
  it("names switchyard-cni first with the node's block, MTU, directories and wait, then the chain", () => {
    expect(cniConflist(opts, { block: "10.244.3.0/26", mtu: 1450 })).toEqual({
      cniVersion: "1.1.0",
      name: "switchyard",
      plugins: [
        { type: "switchyard-cni", mtu: 1450, blocks: ["10.244.3.0/26"], dataDir: opts.dataDir, agentStateDir: opts.stateDir, policyWaitSeconds: 10, capabilities: { ips: true } },
        { type: "portmap", snat: true, capabilities: { portMappings: true } },
      ],
    });
    expect(cniConflist({ ...opts, chain: [], cniVersion: "1.0.0" }, { block: "10.244.3.0/26", mtu: 1450 })).toMatchObject({ cniVersion: "1.0.0", plugins: [{ type: "switchyard-cni" }] });
  });
});

describe("installCni", () => {
  it("writes the binary (executable) and the conflist once, and rewrites only what changed", () => {
    expect(installCni(opts, { block: "10.244.3.0/26", mtu: 1450 })).toEqual({ binaryWritten: true, conflistWritten: true });
    const bin = join(opts.binDir, CNI_PLUGIN_NAME);
    expect(statSync(bin).mode & 0o111).not.toBe(0);
    const conf = JSON.parse(readFileSync(join(opts.confDir, CNI_CONFLIST_NAME), "utf8")) as { plugins: { blocks: string[]; mtu: number }[] };
    expect(conf.plugins[0]).toMatchObject({ blocks: ["10.244.3.0/26"], mtu: 1450 });
    expect(installCni(opts, { block: "10.244.3.0/26", mtu: 1450 })).toEqual({ binaryWritten: false, conflistWritten: false });
    // The plan's MTU changes: only the conflist is rewritten; no temporary file is left behind.
    expect(installCni(opts, { block: "10.244.3.0/26", mtu: 1400 })).toEqual({ binaryWritten: false, conflistWritten: true });
    expect(readdirSync(opts.confDir)).toEqual([CNI_CONFLIST_NAME]);
    expect(readdirSync(opts.binDir)).toEqual([CNI_PLUGIN_NAME]);
  });

  it("says what to do when the plugin binary was never built", () => {
    expect(() => installCni({ ...opts, pluginBinary: join(dir, "nope") }, { block: "10.244.3.0/26", mtu: 1450 })).toThrow(/hack\/build-cni\.sh/);
  });
});

describe("markers", () => {
  it("ready names the plan; endpoints hold exactly the plan's pods", () => {
    markNodeReady(opts, "abc123");
    expect(readFileSync(join(opts.stateDir, "ready"), "utf8")).toBe("abc123\n");
    const pod = (name: string) => ({ namespace: "x", name, interface: `sy${name.padEnd(12, "0")}` });
    expect(syncEndpointMarkers(opts, [pod("a"), pod("b")])).toEqual({ added: 2, removed: 0 });
    expect(readFileSync(join(opts.stateDir, "endpoints", pod("a").interface), "utf8")).toBe("x/a\n");
    expect(syncEndpointMarkers(opts, [pod("b"), pod("c")])).toEqual({ added: 1, removed: 1 });
    expect(readdirSync(join(opts.stateDir, "endpoints")).sort()).toEqual([pod("b").interface, pod("c").interface].sort());
  });

  it("uninstall removes the conflist, the binary and the markers, and keeps the address allocations", () => {
    installCni(opts, { block: "10.244.3.0/26", mtu: 1450 });
    markNodeReady(opts, "abc123");
    syncEndpointMarkers(opts, [{ namespace: "x", name: "a", interface: "sy000000000000" }]);
    writeFileSync(join(opts.dataDir, "10.244.3.2"), "container\neth0\n");
    uninstallCni(opts);
    expect(existsSync(join(opts.confDir, CNI_CONFLIST_NAME))).toBe(false);
    expect(existsSync(join(opts.binDir, CNI_PLUGIN_NAME))).toBe(false);
    expect(existsSync(join(opts.stateDir, "ready"))).toBe(false);
    expect(existsSync(join(opts.stateDir, "endpoints"))).toBe(false);
    expect(existsSync(join(opts.dataDir, "10.244.3.2"))).toBe(true);
  });
});
