// The switchyard:dev image (hack/build-images.sh) holds every program the agent and the controller
// execute, and each runs there: the list is read from the sources (every literal first argument of
// runCommand/runOk/spawn in the product, the iptables tools of both backends, the capability probes, the
// programs the modes' registry needs, and node itself), and each is started inside the image's root
// filesystem with chroot, so a missing program or a missing shared library fails here, not in a cluster.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../../src/base/package-root";
import { MODE_NEEDS } from "../../src/modes/registry";
import { buildImages } from "../../lab/nodes/real-cluster";

const root = process.getuid?.() === 0;
if (!root) console.warn("SKIPPED: the image check runs programs with chroot, which needs root");

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

/** Every program the daemons (agent, controller) may execute, with where the name came from. */
function programsTheDaemonsRun(): Map<string, string> {
  const found = new Map<string, string>();
  const add = (name: string, from: string) => found.set(name, found.get(name) ?? from);
  const src = packagePath("src");
  // The lab and demo commands are not run in the image (deploy/Dockerfile says so).
  const product = sources(src).filter((f) => !/src\/cli\/(lab|demo|conformance|bench)/.test(f));
  for (const f of product) {
    const text = readFileSync(f, "utf8");
    for (const m of text.matchAll(/\b(?:runCommand|runOk|spawn)\(\s*"([\w.-]+)"/g)) add(m[1]!, relative(src, f));
  }
  // The batch runner's tools are its parameter's type.
  const batch = readFileSync(join(src, "agent", "routing", "batch.ts"), "utf8");
  for (const m of /runBatch\(tool: ([^,]+),/.exec(batch)?.[1]?.matchAll(/"([\w-]+)"/g) ?? []) add(m[1]!, "agent/routing/batch.ts");
  const iptables = readFileSync(join(src, "agent", "policy", "iptables.ts"), "utf8");
  for (const m of iptables.matchAll(/"(ip6?tables[\w-]*|ipset)"/g)) add(m[1]!, "agent/policy/iptables.ts");
  const caps = readFileSync(join(src, "agent", "capabilities.ts"), "utf8");
  // probeTool(netns, label, [version command], [use command]): both commands' programs.
  for (const m of caps.matchAll(/probeTool\([^,]+,\s*"[^"]+",\s*\["([\w-]+)"[^\]]*\](?:,\s*\["([\w-]+)")?/g)) {
    add(m[1]!, "agent/capabilities.ts");
    if (m[2]) add(m[2], "agent/capabilities.ts");
  }
  for (const need of MODE_NEEDS) {
    if (need.program?.version[0]) add(need.program.version[0], "modes registry");
    if (need.program?.starts?.[0]) add(need.program.starts[0], "modes registry");
  }
  add("node", "the image's entry point");
  return found;
}

describe.skipIf(!root)("the switchyard:dev image", () => {
  let rootfs: string;
  beforeAll(async () => {
    const dir = await buildImages();
    rootfs = mkdtempSync(join(tmpdir(), "sy-image-"));
    const layout = mkdtempSync(join(tmpdir(), "sy-image-layout-"));
    execFileSync("tar", ["-xf", join(dir, "switchyard.tar"), "-C", layout]);
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(readFileSync(join(layout, "blobs", "sha256", index.manifests[0]!.digest.slice(7)), "utf8")) as { layers: { digest: string }[] };
    for (const l of manifest.layers) execFileSync("tar", ["-xzf", join(layout, "blobs", "sha256", l.digest.slice(7)), "-C", rootfs]);
    rmSync(layout, { recursive: true, force: true });
  }, 600_000);
  afterAll(() => {
    if (rootfs) rmSync(rootfs, { recursive: true, force: true });
  });

  it("holds every program the agent and the controller execute, and each starts there", () => {
    const programs = programsTheDaemonsRun();
    // The list must be the real one: the tools named in deploy/Dockerfile's apt line are all in it.
    for (const expected of ["ip", "bridge", "nft", "ipset", "iptables-nft-restore", "iptables-legacy-restore", "bird", "birdc", "ping", "sysctl", "node"]) expect([...programs.keys()]).toContain(expected);
    const problems: string[] = [];
    for (const [name, from] of programs) {
      const dir = ["usr/local/bin", "usr/bin", "usr/sbin"].find((d) => existsSync(join(rootfs, d, name)));
      if (!dir) {
        problems.push(`${name} (run by ${from}) is not in the image`);
        continue;
      }
      expect(statSync(join(rootfs, dir, name)).mode & 0o111, name).not.toBe(0);
      // Any answer but "cannot execute" counts: some print their version only with -V, birdc has no such flag.
      let out = "";
      let code = 0;
      try {
        out = execFileSync("chroot", [rootfs, `/${dir}/${name}`, name === "ip" || name === "bridge" || name === "ping" ? "-V" : "--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
      } catch (e) {
        const err = e as { status?: number; stderr?: string; stdout?: string };
        code = err.status ?? -1;
        out = `${err.stdout ?? ""}${err.stderr ?? ""}`;
      }
      if (code === 126 || code === 127 || /error while loading shared libraries|not found/.test(out)) problems.push(`${name} does not run in the image (exit ${code}): ${out.trim().split("\n")[0]}`);
    }
    expect(problems).toEqual([]);
    console.log(`# ${programs.size} programs checked in switchyard:dev: ${[...programs.keys()].sort().join(", ")}`);
  });

  it("carries the bundled command and switchyard-cni that deploy/ runs", () => {
    const out = execFileSync("chroot", [rootfs, "/usr/local/bin/node", "/opt/switchyard/bin/switchyard.mjs", "--version"], { encoding: "utf8", timeout: 30_000 });
    expect(out.trim()).toBe(JSON.parse(readFileSync(packagePath("package.json"), "utf8")).version);
    expect(existsSync(join(rootfs, "opt", "switchyard", "dist", "cni", "switchyard-cni"))).toBe(true);
  });
});
