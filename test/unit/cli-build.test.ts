// The `switchyard` command as built: bin/switchyard.mjs runs the compiled bundle in dist/cli (never
// TypeScript, never tsx), --help and validate read no Kubernetes client or lab code, --version and the
// completion scripts work, and in a checkout a build older than its sources is rebuilt before anything
// runs (or, when it cannot be built, nothing runs). No wall-clock assertions: bench/cli-start.ts measures.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "switchyard.mjs");
const NO_TS = join(ROOT, "test", "support", "no-typescript-loader.mjs");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const tmp = mkdtempSync(join(tmpdir(), "sy-cli-build-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: readonly string[], opts: { bin?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, ["--import", NO_TS, opts.bin ?? BIN, ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000, env: { ...process.env, ...opts.env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The files a command loaded (through the no-TypeScript hook's log), relative to the root. */
function loadedFiles(args: readonly string[]): string[] {
  const log = join(tmp, `load-${args.join("-").replace(/[^a-z0-9-]/gi, "_")}.log`);
  const r = run(args, { env: { SWITCHYARD_TEST_LOAD_LOG: log } });
  expect(r.code, r.err).toBe(0);
  const files = readFileSync(log, "utf8").trim().split("\n").map((u) => fileURLToPath(u));
  return [...new Set(files)].map((f) => f.slice(ROOT.length + 1));
}

/** Which bundled sources a chunk holds, from esbuild's `// path` comments. */
function chunkSources(file: string): string[] {
  return readFileSync(join(ROOT, file), "utf8").match(/^\/\/ \S+$/gm) ?? [];
}
const isClient = (src: string): boolean => /node_modules\/(kubernetes-fluent-client|@kubernetes\/client-node)\//.test(src);
const isLab = (src: string): boolean => /^\/\/ lab\//.test(src);

describe("bin/switchyard.mjs runs the compiled bundle", () => {
  it("--version prints the package's version", () => {
    const r = run(["--version"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`${VERSION}\n`);
  });

  it("--help runs from dist/cli with TypeScript and tsx unavailable, and loads only the entry chunk", () => {
    const files = loadedFiles(["--help"]);
    expect(files).toContain("dist/cli/main.js");
    expect(files.filter((f) => !f.startsWith("dist/cli/"))).toEqual(["bin/switchyard.mjs", "hack/build-stamp.mjs"]);
    expect(files.flatMap(chunkSources).filter((s) => isClient(s) || isLab(s))).toEqual([]);
  });

  it("validate loads its own chunk but no Kubernetes client and no lab", () => {
    const files = loadedFiles(["validate", "-f", "samples/vxlan.yaml"]);
    expect(files.some((f) => /^dist\/cli\/chunks\/validate-\w+\.js$/.test(f))).toBe(true);
    expect(files.flatMap(chunkSources).filter((s) => isClient(s) || isLab(s))).toEqual([]);
    // ...which the bundle does hold, in the chunks the daemons and the lab load.
    const all = readdirSync(join(ROOT, "dist", "cli", "chunks")).flatMap((f) => chunkSources(join("dist", "cli", "chunks", f)));
    expect(all.some(isClient)).toBe(true);
    expect(all.some(isLab)).toBe(true);
  });

  it("the bundle imports nothing from node_modules (the image ships none)", () => {
    const bare: string[] = [];
    for (const f of ["main.js", ...readdirSync(join(ROOT, "dist", "cli", "chunks")).map((c) => join("chunks", c))]) {
      const text = readFileSync(join(ROOT, "dist", "cli", f), "utf8");
      for (const m of text.matchAll(/(?:^import\s[^;]*?\sfrom\s*|^import\s*|\bimport\()\s*"([^"]+)"/gm)) {
        const spec = m[1]!;
        if (!spec.startsWith(".") && !isBuiltin(spec)) bare.push(`${f}: ${spec}`);
      }
    }
    expect(bare).toEqual([]);
  });
});

describe("switchyard completion", () => {
  it("bash: the script completes subcommands and their options in a real bash", () => {
    const r = run(["completion", "bash"]);
    expect(r.code, r.err).toBe(0);
    const complete = (words: string[]): string[] => {
      const probe = `${r.out}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _switchyard_completion; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const b = spawnSync("bash", ["--norc", "-c", probe], { encoding: "utf8" });
      expect(b.status, b.stderr).toBe(0);
      return b.stdout.split("\n").filter((w) => w !== "");
    };
    expect(complete(["switchyard", ""])).toEqual(expect.arrayContaining(["validate", "migrate", "controller", "agent", "lab", "completion", "--version", "--help"]));
    expect(complete(["switchyard", ""])).not.toContain("serve"); // hidden
    expect(complete(["switchyard", "migrate", ""])).toEqual(expect.arrayContaining(["pause", "resume", "abort", "retry", "status", "--to", "--canary", "--batch", "--wait"]));
    expect(complete(["switchyard", "lab", "up", "--p"])).toEqual(["--prefix", "--pods-per-node", "--processes"]);
    expect(complete(["switchyard", "migrate", "--name", "status", "--w"])).toEqual(["--wait"]); // `status` was --name's value
    expect(complete(["switchyard", "completion", ""])).toEqual(expect.arrayContaining(["bash", "zsh"]));
    expect(r.out).toContain("complete -o default -F _switchyard_completion switchyard kubectl-switchyard");
  });

  it("zsh: the script names every subcommand and option with its description", () => {
    const r = run(["completion", "zsh"]);
    expect(r.code, r.err).toBe(0);
    for (const w of ["validate:validate ClusterNetwork YAML", "migrate:change the mode", "pause:pause the migration", "--to:the target mode", "--nodes:nodes", "--node:the node this agent serves"]) {
      expect(r.out).toContain(`'${w}`);
    }
    expect(r.out).toMatch(/compdef _switchyard switchyard kubectl-switchyard\n$/);
    // Parsed by a real zsh when the machine has one.
    const zsh = spawnSync("zsh", ["-n"], { input: r.out, encoding: "utf8" });
    if (zsh.error === undefined) expect(zsh.status, zsh.stderr).toBe(0);
  });

  it("an unknown shell is a usage error (exit 2) naming the choices", () => {
    const r = run(["completion", "fish"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("bash, zsh");
  });
});

describe("a stale build never runs silently (a copy of the checkout)", () => {
  const repo = join(tmp, "repo");
  mkdirSync(repo);
  for (const p of ["bin", "hack/build.mjs", "hack/build-stamp.mjs", "package.json", "package-lock.json", "tsconfig.json", "src", "lab"]) {
    cpSync(join(ROOT, p), join(repo, p), { recursive: true });
  }
  symlinkSync(realpathSync(join(ROOT, "node_modules")), join(repo, "node_modules"));
  const bin = join(repo, "bin", "switchyard.mjs");
  const main = join(repo, "src", "cli", "main.ts");

  it("builds when there is no build, then runs without rebuilding", () => {
    const first = run(["--version"], { bin });
    expect(first.code, first.err).toBe(0);
    expect(first.err).toContain("dist/cli has not been built; rebuilding");
    expect(first.out).toBe(`${VERSION}\n`);
    const again = run(["--version"], { bin });
    expect(again.err).toBe("");
    expect(again.out).toBe(`${VERSION}\n`);
  });

  it("a changed source is rebuilt and what runs is the change", () => {
    writeFileSync(main, readFileSync(main, "utf8").replace('.description("Switchyard: a Kubernetes pod network', '.description("Edited: a Kubernetes pod network'));
    const r = run(["--help"], { bin });
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("src/cli/main.ts changed since the last build; rebuilding");
    expect(r.out).toContain("Edited: a Kubernetes pod network");
  });

  it("a source that does not build stops the command before it runs anything", () => {
    writeFileSync(main, `${readFileSync(main, "utf8")}\nexport const broken = ;\n`);
    const r = run(["--version"], { bin });
    expect(r.code).toBe(1);
    expect(r.err).toContain("the build failed");
    expect(r.out).toBe("");
  });
});
