// deploy/Dockerfile cannot be built on the CI machine (no container engine), so this reads it and checks
// what it claims: a build stage that installs from the lock file and builds dist/cli from sources it
// copies (every file the bundle was made from is among them); a runtime stage with no npm install beyond
// production dependencies, no tsx or TypeScript, the agent's kernel tools, and the compiled command laid
// out as in the repository (bin/ beside dist/cli and package.json, so bin finds the bundle and the
// package root), run by its ENTRYPOINT; and every path either stage COPYs exists after a build.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}
/** One COPY: where a file or directory lands in the stage, and where it comes from. */
interface Placement {
  readonly from: string | undefined;
  readonly source: string;
  readonly target: string;
}

/** Instructions by stage; continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === "")) continue;
    pending += `${line.replace(/\\$/, "")} `;
    if (line.endsWith("\\")) continue;
    const [op = "", ...rest] = pending.trim().split(/\s+/);
    pending = "";
    const args = rest.join(" ");
    if (op.toUpperCase() === "FROM") stages.push({ name: /\sAS\s+(\S+)/i.exec(` ${args}`)?.[1], instructions: [] });
    stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

function workdir(stage: Stage): string {
  return stage.instructions.filter((i) => i.op === "WORKDIR").at(-1)?.args ?? "/";
}

function placements(stage: Stage): Placement[] {
  const wd = workdir(stage);
  return stage.instructions
    .filter((i) => i.op === "COPY")
    .flatMap((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
      const paths = words.filter((w) => !w.startsWith("--"));
      const dest = posix.resolve(wd, paths.at(-1)!);
      const sources = paths.slice(0, -1);
      const intoDir = paths.at(-1)!.endsWith("/") || sources.length > 1;
      return sources.map((source) => ({ from, source, target: intoDir ? posix.join(dest, basename(source)) : dest }));
    });
}

/** Repository paths a context source names (one level of `*` globbing, as the Dockerfile uses). */
function expand(source: string): string[] {
  if (!source.includes("*")) return existsSync(join(ROOT, source)) ? [source] : [];
  const dir = dirname(source);
  const re = new RegExp(`^${basename(source).replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);
  return existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).filter((f) => re.test(f)).map((f) => posix.join(dir, f)) : [];
}

const stages = parseDockerfile(readFileSync(join(ROOT, "deploy", "Dockerfile"), "utf8"));
const runtime = stages.at(-1)!;
const build = stages.find((s) => s !== runtime && s.name !== undefined && s.instructions.some((i) => i.op === "RUN" && /\bhack\/build\.mjs\b/.test(i.args)));
const runs = (s: Stage): string[] => s.instructions.filter((i) => i.op === "RUN").map((i) => i.args);

describe("deploy/Dockerfile", () => {
  it("builds in a stage of its own: npm ci from the lock file, then hack/build.mjs", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build, "a named stage that runs hack/build.mjs").toBeDefined();
    const cmds = runs(build!);
    const ci = cmds.findIndex((c) => /\bnpm ci\b/.test(c));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(cmds.findIndex((c) => /\bnode hack\/build\.mjs\b/.test(c))).toBeGreaterThan(ci);
  });

  it("the build stage copies every file the bundle is made from, at its repository path", () => {
    const wd = workdir(build!);
    const placed = placements(build!);
    for (const p of placed) expect(p.target, `${p.source} lands at its repository path`).toBe(posix.join(wd, p.source));
    // The inputs esbuild read for the last build (dist/cli/build-stamp.json), apart from node_modules.
    const inputs = Object.keys((JSON.parse(readFileSync(join(ROOT, "dist", "cli", "build-stamp.json"), "utf8")) as { inputs: Record<string, number> }).inputs);
    const missing = inputs.filter((f) => !f.startsWith("node_modules/") && !placed.some((p) => f === p.source || f.startsWith(`${p.source}/`)));
    expect(missing).toEqual([]);
  });

  it("the runtime stage installs no development packages and runs no TypeScript", () => {
    for (const c of runs(runtime)) {
      if (/\bnpm (ci|install|i)\b/.test(c)) expect(c).toMatch(/--omit=dev\b/);
    }
    const text = runtime.instructions.map((i) => `${i.op} ${i.args}`).join("\n");
    expect(text).not.toMatch(/\btsx\b|\.ts\b|typescript|\bpepr\b/);
    expect(placements(runtime).map((p) => p.source)).not.toContain("src");
    // Nothing of hack/: bin/switchyard.mjs checks for a stale build only where hack/ is present.
    expect(placements(runtime).some((p) => p.source.startsWith("hack"))).toBe(false);
  });

  it("the runtime stage has the kernel tools the agent drives", () => {
    const apt = runs(runtime).find((c) => c.includes("apt-get install")) ?? "";
    for (const pkg of ["iproute2", "nftables", "iptables", "ipset", "bird2", "conntrack", "iputils-ping", "procps"]) {
      expect(apt.split(/\s+/), pkg).toContain(pkg);
    }
  });

  it("runs the compiled command: ENTRYPOINT is node on bin/switchyard.mjs, beside dist/cli and package.json", () => {
    const wd = workdir(runtime);
    const placed = placements(runtime);
    // Laid out as in the repository, so bin's `../dist/cli/main.js` and the package root resolve.
    for (const p of placed) {
      const repoPath = p.from === undefined ? p.source : posix.relative(workdir(stages.find((s) => s.name === p.from)!), p.source);
      expect(p.target, `${p.source} lands at its repository path`).toBe(posix.join(wd, repoPath));
    }
    const entry = JSON.parse(runtime.instructions.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    expect(entry[0]).toBe("node");
    expect(posix.resolve(wd, entry[1]!)).toBe(posix.join(wd, "bin", "switchyard.mjs"));
    const targets = placed.map((p) => p.target);
    expect(targets).toEqual(expect.arrayContaining([posix.join(wd, "bin", "switchyard.mjs"), posix.join(wd, "dist", "cli"), posix.join(wd, "package.json")]));
    expect(placed.find((p) => p.target === posix.join(wd, "dist", "cli"))?.from).toBe(build!.name);
    expect(readFileSync(join(ROOT, "bin", "switchyard.mjs"), "utf8")).toContain('import("../dist/cli/main.js")');
  });

  it("ships the CNI plugin the agent installs: a static Go build in a stage of its own, at dist/cni", () => {
    const cni = stages.find((s) => runs(s).some((c) => /\bgo build\b.*\.\/cmd\/switchyard-cni\b/.test(c)));
    expect(cni, "a stage that builds cmd/switchyard-cni").toBeDefined();
    expect(runs(cni!).find((c) => c.includes("go build"))).toMatch(/CGO_ENABLED=0/);
    const wd = workdir(runtime);
    expect(placements(runtime).find((p) => p.target === posix.join(wd, "dist", "cni"))?.from).toBe(cni!.name);
  });

  it("every path it COPYs exists after a build", () => {
    // deploy/Dockerfile.dockerignore keeps a host's node_modules and dist out of the build context.
    const ignored = readFileSync(join(ROOT, "deploy", "Dockerfile.dockerignore"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    for (const stage of stages) {
      for (const p of placements(stage)) {
        if (p.from === undefined) {
          expect(expand(p.source), `COPY ${p.source}`).not.toEqual([]);
          expect(ignored.filter((i) => p.source === i || p.source.startsWith(`${i}/`)), `COPY ${p.source} is not ignored`).toEqual([]);
        } else {
          // A path the build stage made or copied: the same path in the repository, after a build.
          const repoPath = posix.relative(workdir(stages.find((s) => s.name === p.from)!), p.source);
          expect(existsSync(join(ROOT, repoPath)), `COPY --from=${p.from} ${p.source}`).toBe(true);
        }
      }
    }
  });
});
