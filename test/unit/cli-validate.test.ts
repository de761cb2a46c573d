// The `switchyard validate` command as a user runs it: the real bin, real files and stdin, exit codes
// (0 valid, 1 invalid, 2 unreadable) and `FILE:LINE:COL: <path>: <message>` lines.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { allocated, base } from "../fixtures/cluster-networks";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "switchyard.mjs");
const dir = mkdtempSync(join(tmpdir(), "sy-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  return runWith(undefined, ...args);
}
function runWith(input: string | Buffer | undefined, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000, ...(input !== undefined ? { input } : {}) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function write(name: string, docs: unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, docs.map((d) => stringify(d)).join("---\n"));
  return p;
}

describe("switchyard validate", () => {
  const samples = readdirSync(join(ROOT, "samples")).filter((f) => f.endsWith(".yaml"));
  it.each(samples)("exits 0 for samples/%s", (f) => {
    const r = run("validate", "-f", join("samples", f));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe("");
  });

  it("exits 1 with one `FILE:LINE:COL: <path>: <message>` line per error", () => {
    const f = write("bad.yaml", [base({ podCIDRs: ["10.244.1.0/16", "10.244.0.0/24"], mode: "ipip", mtu: 100, vxlan: { vni: 1 } })]);
    const r = run("validate", "-f", f);
    expect(r.code).toBe(1);
    const lines = r.out.trim().split("\n");
    for (const l of lines) expect(l).toMatch(new RegExp(`^${f}:\\d+:\\d+: spec\\.`));
    expect(lines.map((l) => l.slice(l.indexOf(": ") + 2))).toEqual([
      "spec.podCIDRs[0]: 10.244.1.0/16 has host bits set; did you mean 10.244.0.0/16?",
      "spec.podCIDRs[1]: 10.244.0.0/24 overlaps spec.podCIDRs[0] (10.244.1.0/16); pools must be disjoint",
      "spec.mtu: must be 0 (auto) or between 576 and 9000, got 100",
      "spec.vxlan: only valid when spec.mode is vxlan (mode is ipip); remove this block",
    ]);
    expect(r.err).not.toMatch(/at .*\(.*:\d+:\d+\)/); // no stack trace
  });

  it("checks every document of a multi-document file", () => {
    const f = write("multi.yaml", [base(), base({ blockSize: 40 })]);
    const r = run("validate", "-f", f);
    expect(r.code).toBe(1);
    expect(r.out.trim()).toMatch(/^\S+multi\.yaml:\d+:3: spec\.blockSize: must be at most 30, got the number 40$/);
    expect(r.err).toContain("document 2");
  });

  it("applies the update rules with --old", () => {
    const old = write("old.yaml", [allocated()]);
    const next = write("new.yaml", [base({ blockSize: 26 })]);
    const r = run("validate", "-f", next, "--old", old);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^\S+new\.yaml:\d+:3: spec\.blockSize: cannot change from 24 to 26/);
    const modeChange = write("mode.yaml", [base({ mode: "host-gw" })]);
    expect(run("validate", "-f", modeChange, "--old", old).code).toBe(0);
  });

  it("exits 2 with a clear message when the file is missing", () => {
    const r = run("validate", "-f", join(dir, "missing.yaml"));
    expect(r.code).toBe(2);
    expect(r.err).toContain("cannot read");
    expect(r.err).toContain("no such file");
    expect(r.err).not.toContain("    at ");
  });

  it("exits 2 when the YAML cannot be parsed", () => {
    const p = join(dir, "broken.yaml");
    writeFileSync(p, "spec: [unclosed\n  mode: vxlan\n");
    const r = run("validate", "-f", p);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`error: ${p}:1:8: YAML syntax error:`);
    expect(r.err).not.toContain("    at ");
  });

  it("-f - reads standard input", () => {
    const text = stringify(base({ mtu: 9001 }));
    const r = runWith(text, "validate", "-f", "-");
    expect(r.code, r.err).toBe(1);
    expect(r.out).toMatch(/^<stdin>:\d+:\d+: spec\.mtu: must be at most 9000, got the number 9001\n$/);
    expect(runWith(stringify(base()), "validate", "-f", "-").code).toBe(0);
  });

  it("a kind: List is checked item by item", () => {
    const p = join(dir, "list.yaml");
    writeFileSync(p, stringify({ apiVersion: "v1", kind: "List", items: [base(), base({ blockSize: 12 })] }));
    const r = run("validate", "-f", p);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^${p}:\\d+:\\d+: items\\[1\\]\\.spec\\.blockSize: must be at least 16, got the number 12\\n$`));
  });

  it("exits 2 naming the file for an alias bomb, binary data and a scalar", () => {
    const bomb = join(dir, "bomb.yaml");
    const level = (c: string, prev: string) => `  ${c}: &${c} [${Array(9).fill(`*${prev}`).join(",")}]`;
    writeFileSync(bomb, ["kind: ConfigMap", "data:", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ..."bcdefghi".split("").map((c, i) => level(c, "abcdefghi"[i]!))].join("\n"));
    const b = run("validate", "-f", bomb);
    expect(b.code).toBe(2);
    expect(b.err).toContain(`error: ${bomb}:1:1: document 1: its aliases expand to more than 100 references`);
    const bin = join(dir, "random.bin");
    writeFileSync(bin, Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7919 + 13) % 256)));
    expect(run("validate", "-f", bin)).toMatchObject({ code: 2, err: `error: ${bin}: not UTF-8 text (a binary file?); expected YAML\n` });
    const scalar = runWith("just some words\n", "validate", "-f", "-");
    expect(scalar.code).toBe(2);
    expect(scalar.err).toContain("error: <stdin>:1:1: document 1 is not a Kubernetes object");
  });

  it("lab up --cluster-network refuses an invalid file the same way, before it builds anything", () => {
    const f = write("lab-cn.yaml", [base({ blockSize: 12 })]);
    const r = run("lab", "up", "--prefix", "syh7-", "--cluster-network", f);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`--cluster-network ${f} is not a valid ClusterNetwork:\\n  ${f}:\\d+:\\d+: spec\\.blockSize: must be at least 16, got the number 12`));
    expect(existsSync("/tmp/switchyard-lab-cli/syh7-")).toBe(false);
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain("syh7-");
  });

  it("works as a kubectl plugin name too", () => {
    const out = execFileSync(process.execPath, [BIN, "--help"], { cwd: ROOT, encoding: "utf8" });
    expect(out).toContain("validate");
  });
});
