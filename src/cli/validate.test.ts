// `switchyard validate` on the input users actually feed it: every refusal names the file, the line and
// column, and the field; input that is not Kubernetes objects at all (binary, not YAML, an alias bomb, a
// scalar) is exit 2, objects with errors exit 1; a List is checked item by item; `-f -` reads stdin.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runValidate } from "./validate";

const dir = mkdtempSync(join(tmpdir(), "sy-validate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

function validate(f: string, opts: { old?: string; stdin?: string | Buffer } = {}): { code: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const stdin = opts.stdin;
  const code = runValidate(
    { file: f, ...(opts.old !== undefined ? { old: opts.old } : {}) },
    { out: (l) => out.push(l), err: (l) => err.push(l), ...(stdin !== undefined ? { stdin: () => Buffer.from(stdin) } : {}) },
  );
  return { code, out, err };
}

const CN = (name: string, spec: string, indent = ""): string =>
  [`apiVersion: switchyard.dev/v1alpha1`, `kind: ClusterNetwork`, `metadata:`, `  name: ${name}`, `spec:`, ...spec.split("\n").map((l) => `  ${l}`)].map((l) => indent + l).join("\n");

/** A deterministic byte stream (a linear congruential generator), so a failure can be replayed. */
function pseudoRandomBytes(seed: number, n: number, printable = false): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = printable ? 32 + ((x >>> 24) % 95) : x >>> 24;
  }
  return b;
}

const BILLION_LAUGHS = [
  "apiVersion: v1",
  "kind: ConfigMap",
  "metadata: {name: lol}",
  "data:",
  '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ..."bcdefghi".split("").map((c, i) => `  ${c}: &${c} [${Array(9).fill(`*${"abcdefghi"[i]}`).join(",")}]`),
].join("\n");

describe("validate: where each error is", () => {
  it("prints FILE:LINE:COL: <path>: <message>, the line of the field in its own document", () => {
    const f = file("two.yaml", `${CN("a", 'podCIDRs: ["10.244.0.0/16"]')}\n---\n${CN("b", 'podCIDRs: ["10.244.0.0/16"]\nmtu: 100\nblockSize: 40')}\n`);
    const r = validate(f);
    expect(r.code).toBe(1);
    expect(r.out).toEqual([`${f}:15:3: spec.blockSize: must be at most 30, got the number 40`, `${f}:14:3: spec.mtu: must be 0 (auto) or between 576 and 9000, got 100`]);
    expect(r.err).toEqual([`${f} document 1: ClusterNetwork/a is valid`, `# ${f} document 2: ClusterNetwork/b: 2 error(s)`]);
  });

  it("a list item, a label key with dots, a missing field (at the nearest field that is there)", () => {
    const f = file(
      "where.yaml",
      CN("a", 'podCIDRs: ["10.244.0.0/16", "10.244.1.0/24"]\nmigration:\n  canary:\n    nodeSelector:\n      matchLabels:\n        app.kubernetes.io/name: "-x"\n  healthGate:\n    bogus: 1'),
    );
    const r = validate(f);
    expect(r.code).toBe(1);
    expect(r.out).toEqual([
      `${f}:13:7: spec.migration.healthGate.bogus: unknown field "bogus" (check its spelling and indentation; unknown fields are rejected, not ignored)`,
      `${f}:6:31: spec.podCIDRs[1]: 10.244.1.0/24 overlaps spec.podCIDRs[0] (10.244.0.0/16); pools must be disjoint`,
      `${f}:11:11: spec.migration.canary.nodeSelector.matchLabels.app.kubernetes.io/name: label value "-x" must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
    ]);
    const missing = file("missing-field.yaml", CN("a", "mode: vxlan"));
    expect(validate(missing).out).toEqual([`${missing}:5:1: spec.podCIDRs: is required`]);
  });

  it("a value out of its schema's bounds is reported once, not again by a rule computed from it", () => {
    const f = file("bounds.yaml", CN("a", 'podCIDRs: ["10.244.0.0/16"]\nblockSize: 12\nmigration:\n  healthGate: {successfulRounds: 1000}'));
    const r = validate(f);
    expect(r.code).toBe(1);
    expect(r.out).toEqual([
      `${f}:7:3: spec.blockSize: must be at least 16, got the number 12`,
      `${f}:9:18: spec.migration.healthGate.successfulRounds: must be at most 100, got the number 1000`,
    ]);
  });
});

describe("validate: a kind: List is expanded", () => {
  it("checks each item, naming items[i] and its line", () => {
    const f = file(
      "list.yaml",
      ["apiVersion: v1", "kind: List", "items:", `- ${CN("a", 'podCIDRs: ["10.244.0.0/16"]', "  ").trimStart()}`, `- ${CN("b", 'podCIDRs: ["10.244.0.0/16"]\nblockSize: 31', "  ").trimStart()}`, "- just a string", "- {kind: Pod, apiVersion: v1, metadata: {name: p}}"].join("\n"),
    );
    const r = validate(f);
    expect(r.code).toBe(1);
    expect(r.out).toEqual([
      `${f}:16:5: items[1].spec.blockSize: must be at most 30, got the number 31`,
      `${f}:17:3: items[2]: must be a Kubernetes object (a mapping with apiVersion and kind), not the string "just a string"`,
      `${f}:18:4: items[3].kind: "Pod" is not a kind switchyard validates (ClusterNetwork, or a List of them)`,
    ]);
    expect(r.err[0]).toBe(`${f} document 1 items[0]: ClusterNetwork/a is valid`);
  });

  it("a valid List is valid; a List without items is invalid", () => {
    expect(validate(file("ok-list.yaml", `apiVersion: v1\nkind: List\nitems:\n- ${CN("a", 'podCIDRs: ["10.244.0.0/16"]', "  ").trimStart()}\n`)).code).toBe(0);
    const f = file("no-items.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n");
    expect(validate(f)).toMatchObject({ code: 1, out: [`${f}:3:1: items: must be a list of objects, not a mapping`] });
  });
});

describe("validate: input that is not Kubernetes objects is exit 2, naming the file", () => {
  it("a billion-laughs alias bomb is refused at once", () => {
    const f = file("bomb.yaml", BILLION_LAUGHS);
    const r = validate(f);
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(new RegExp(`^error: ${f}:1:1: document 1: its aliases expand to more than 100 references \\(an alias bomb\\?\\)`));
  });

  it("binary data is not UTF-8 text", () => {
    const f = file("random.bin", pseudoRandomBytes(7, 4096));
    expect(validate(f)).toEqual({ code: 2, out: [], err: [`error: ${f}: not UTF-8 text (a binary file?); expected YAML`] });
  });

  it("random printable text is never valid, never a crash, and every line names the file", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const f = file(`noise-${seed}.txt`, pseudoRandomBytes(seed, 1 + (seed % 300), true));
      const r = validate(f);
      expect([1, 2], `seed ${seed}: exit ${r.code}`).toContain(r.code);
      for (const line of [...r.out, ...r.err.filter((l) => !l.startsWith("#"))]) expect(line, `seed ${seed}`).toMatch(new RegExp(`^(error: )?${f}`));
    }
  });

  it("a scalar or a list document is not a Kubernetes object", () => {
    const f = file("scalar.yaml", `${CN("a", 'podCIDRs: ["10.244.0.0/16"]')}\n---\nhello world\n---\n- 1\n- 2\n`);
    expect(validate(f)).toEqual({
      code: 2,
      out: [],
      err: [
        `error: ${f}:8:1: document 2 is not a Kubernetes object: expected a mapping with apiVersion and kind, got the string "hello world"`,
        `error: ${f}:10:1: document 3 is not a Kubernetes object: expected a mapping with apiVersion and kind, got a list`,
      ],
    });
  });

  it("YAML syntax errors, every one with its line and column; duplicate keys are one", () => {
    const f = file("syntax.yaml", `${CN("a", 'podCIDRs: ["10.244.0.0/16"]\nmode: vxlan\nmode: ipip')}\n---\nspec: [unclosed\n`);
    const r = validate(f);
    expect(r.code).toBe(2);
    expect(r.err[0]).toBe(`error: ${f}:8:3: YAML syntax error: Map keys must be unique`);
    expect(r.err.slice(1).every((l) => l.startsWith(`error: ${f}:10:`) || l.startsWith(`error: ${f}:11:`))).toBe(true);
    expect(r.err.length).toBeGreaterThan(1);
  });

  it("an empty file, a missing file, a directory", () => {
    expect(validate(file("empty.yaml", "# nothing\n---\n"))).toMatchObject({ code: 2, err: [`error: ${join(dir, "empty.yaml")} holds no YAML document`] });
    expect(validate(join(dir, "nope.yaml"))).toMatchObject({ code: 2, err: [`error: cannot read ${join(dir, "nope.yaml")}: no such file`] });
    expect(validate(dir)).toMatchObject({ code: 2, err: [`error: cannot read ${dir}: is a directory`] });
  });
});

describe("validate -f -", () => {
  it("reads standard input, named <stdin>", () => {
    const r = validate("-", { stdin: CN("a", 'podCIDRs: ["10.244.0.0/16"]\nmtu: 9001') });
    expect(r).toEqual({ code: 1, out: ["<stdin>:7:3: spec.mtu: must be at most 9000, got the number 9001"], err: [] });
    expect(validate("-", { stdin: CN("a", 'podCIDRs: ["10.244.0.0/16"]') })).toEqual({ code: 0, out: [], err: ["<stdin> document 1: ClusterNetwork/a is valid"] });
  });

  it("--old - reads the old object from stdin; both cannot", () => {
    const old = `${CN("a", 'podCIDRs: ["10.244.0.0/16"]\nblockSize: 24')}\nstatus: {ipam: {allocatedBlocks: 3, freeBlocks: 253}}\n`;
    const f = file("new.yaml", CN("a", 'podCIDRs: ["10.244.0.0/16"]\nblockSize: 26'));
    const r = validate(f, { old: "-", stdin: old });
    expect(r.code).toBe(1);
    expect(r.out[0]).toMatch(new RegExp(`^${f}:7:3: spec.blockSize: cannot change from 24 to 26`));
    expect(validate("-", { old: "-", stdin: old })).toMatchObject({ code: 2, err: ["error: -f and --old cannot both read standard input"] });
  });
});
