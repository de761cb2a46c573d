// The real kernel accepts what render/nftables.ts and render/iptables.ts produce: for the golden slices
// and for the slices of a few conformance-corpus cases, `nft -c -f` then `nft -f` (twice: the replace
// idiom must work on an existing table), the incremental set update, `ipset restore` and
// `iptables-restore --test` / `--noflush`, each in a throwaway network namespace named `sypc-*` that is
// deleted afterwards, even on failure. Nothing is created in the root namespace and no traffic is sent.
// Needs root and nft/ipset/iptables-restore; without them the tests are skipped with a reason.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { GOLDEN_CASES, sliceGoldenCase } from "../golden/policy/cases";
import { compilePolicies, type NodePolicySlice, slicePolicyForNode } from "../../src/compile/policy";
import { applyCorpusAction, buildCorpusSnapshot, initialCorpusState, parseConformanceCorpus } from "../../lab/conformance/corpus";
import { buildNamespace, buildPod, buildPolicy, buildSnapshot } from "../support/policy-builders";
import { nftChainName, nftSetName, renderNftables, renderNftablesSetUpdate } from "../../src/render/nftables";
import { IPTABLES_FORWARD_CHAIN, iptablesChainName, renderIptables } from "../../src/render/iptables";

const PATH = `/usr/sbin:/sbin:/usr/bin:/bin:${process.env["PATH"] ?? ""}`;
const env = { ...process.env, PATH };
const have = (tool: string): boolean => spawnSync("sh", ["-c", `command -v ${tool}`], { env }).status === 0;
const missing = ["ip", "nft", "ipset", "iptables", "iptables-restore"].filter((t) => !have(t));
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? "needs root to create network namespaces" : missing.length > 0 ? `missing tools: ${missing.join(", ")}` : undefined;
if (skipReason) console.warn(`policy-render-kernel: skipped (${skipReason})`);

const PREFIX = `sypc-r${process.pid}-`;
let counter = 0;

function run(cmd: string, args: readonly string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { env, input, encoding: "utf8", timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function inNs(ns: string, cmd: string, args: readonly string[], input?: string): { code: number; stdout: string; stderr: string } {
  return run("ip", ["netns", "exec", ns, cmd, ...args], input);
}

function mustInNs(ns: string, cmd: string, args: readonly string[], input?: string): string {
  const r = inNs(ns, cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed in ${ns} (exit ${r.code}): ${r.stderr}\n--- input ---\n${input ?? ""}`);
  return r.stdout;
}

function deleteNs(ns: string): void {
  if (!ns.startsWith("sypc-")) throw new Error(`refusing to delete namespace ${ns}`);
  run("ip", ["netns", "delete", ns]);
}

/** Runs `fn` in a fresh `sypc-*` namespace that is deleted afterwards, whatever happens. */
function withNetns(fn: (ns: string) => void): void {
  const ns = `${PREFIX}${counter++}`;
  const add = run("ip", ["netns", "add", ns]);
  if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr}`);
  try {
    fn(ns);
  } finally {
    deleteNs(ns);
  }
}

afterAll(() => {
  if (skipReason) return;
  // Belt and braces: anything this run created and a crash left behind.
  const list = run("ip", ["netns", "list"]).stdout;
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    if (name.startsWith(PREFIX)) deleteNs(name);
  }
});

interface NftJson {
  nftables: Record<string, Record<string, unknown>>[];
}

function listTable(ns: string): NftJson {
  return JSON.parse(mustInNs(ns, "nft", ["-j", "list", "table", "inet", "switchyard"])) as NftJson;
}

/** Applies the nft rendering (check, apply, apply again) and asserts the kernel holds what the slice says. */
function checkNft(ns: string, slice: NodePolicySlice): void {
  const text = renderNftables(slice);
  mustInNs(ns, "nft", ["-c", "-f", "-"], text);
  mustInNs(ns, "nft", ["-f", "-"], text);
  mustInNs(ns, "nft", ["-f", "-"], text); // the replace idiom on an existing table
  const objs = listTable(ns).nftables;
  const chains = objs.flatMap((o) => (o["chain"] ? [String(o["chain"]["name"])] : []));
  expect(chains.sort()).toEqual(["forward", ...slice.chains.map(nftChainName)].sort());
  const sets = objs.flatMap((o) => (o["set"] ? [o["set"]] : []));
  // The groups' sets, and the node's pod interfaces (everything else from or to a pod interface drops).
  expect(sets.map((s) => String(s["name"])).sort()).toEqual([...slice.groups.map(nftSetName), "pod_interfaces"].sort());
  expect(((sets.find((s) => s["name"] === "pod_interfaces")?.["elem"] as unknown[] | undefined) ?? []).length).toBe(slice.pods.length);
  for (const g of slice.groups) {
    const s = sets.find((x) => x["name"] === nftSetName(g))!;
    const elems = (s["elem"] as unknown[] | undefined) ?? [];
    // Interval sets list merged ranges, so only hash and concatenated sets compare one to one.
    if (g.kind !== "cidr") expect(elems).toHaveLength(g.members.length);
    else expect(elems.length > 0).toBe(g.members.length > 0);
  }
  const maps = objs.flatMap((o) => (o["map"] ? [o["map"]] : []));
  const ingressEntries = ((maps.find((m) => m["name"] === "ingress_pods")?.["elem"] as unknown[] | undefined) ?? []).length;
  expect(ingressEntries).toBe(slice.pods.filter((p) => p.ingress !== undefined).length);
}

/** Applies the iptables rendering twice (idempotent) and checks the chains it owns. */
function checkIptables(ns: string, slice: NodePolicySlice): void {
  for (let round = 0; round < 2; round++) {
    const existingChains = mustInNs(ns, "iptables", ["-S"])
      .split("\n")
      .flatMap((l) => (l.startsWith("-N ") ? [l.slice(3)] : []));
    const existingSets = mustInNs(ns, "ipset", ["list", "-n"]).split("\n").filter((s) => s !== "");
    const r = renderIptables(slice, { existingChains, existingSets });
    mustInNs(ns, "ipset", ["restore"], r.ipset);
    mustInNs(ns, "iptables-restore", ["--test", "--noflush"], r.iptables);
    mustInNs(ns, "iptables-restore", ["--noflush"], r.iptables);
    if (r.ipsetCleanup !== "") mustInNs(ns, "ipset", ["restore"], r.ipsetCleanup);
    if (inNs(ns, "iptables", ["-C", ...r.forwardJump]).code !== 0) mustInNs(ns, "iptables", ["-I", r.forwardJump[0]!, "1", ...r.forwardJump.slice(1)]);
  }
  const rules = mustInNs(ns, "iptables", ["-S"]);
  expect(rules.split("\n").filter((l) => l.startsWith("-A FORWARD ") && l.includes(`-j ${IPTABLES_FORWARD_CHAIN}`))).toHaveLength(1);
  const owned = rules.split("\n").flatMap((l) => (l.startsWith("-N ") ? [l.slice(3)] : []));
  expect(owned.sort()).toEqual([IPTABLES_FORWARD_CHAIN, "SY-FROM-POD", "SY-TO-POD", ...slice.chains.map(iptablesChainName)].sort());
  const sets = mustInNs(ns, "ipset", ["list", "-n"]).split("\n").filter((s) => s !== "");
  expect(sets.sort()).toEqual(slice.groups.map((g) => `sy-${g.kind === "address" ? "g" : g.kind === "cidr" ? "c" : "n"}-${g.id}`).sort());
}

const CORPUS_PATH = fileURLToPath(new URL("../../../shared/conformance/netpol-upstream.yaml", import.meta.url));
const CORPUS_CASES = ["tcp-ingress-named-port", "tcp-egress-named-port", "tcp-egress-cidr-except", "tcp-ipblock-cidr-and-except-overlap", "sctp-ports", "udp-ports", "prop-tcp-endport-egress", "tcp-ingress-and-egress-together"];

function corpusSlices(): { name: string; slice: NodePolicySlice }[] {
  if (!existsSync(CORPUS_PATH)) return [];
  const parsed = parseConformanceCorpus(parse(readFileSync(CORPUS_PATH, "utf8")));
  if (!parsed.ok) throw new Error(parsed.errors.join("\n"));
  const corpus = parsed.corpus;
  const out: { name: string; slice: NodePolicySlice }[] = [];
  for (const id of CORPUS_CASES) {
    const c = corpus.cases.find((x) => x.id === id);
    if (!c) throw new Error(`corpus case ${id} not found`);
    let state = initialCorpusState(corpus, c);
    for (const step of c.steps) {
      for (const a of step.actions) state = applyCorpusAction(state, a, c);
      const model = compilePolicies(buildCorpusSnapshot(corpus, state, (ref) => (ref.startsWith("x/") ? "n1" : "n2")));
      for (const node of ["n1", "n2"]) out.push({ name: `${id} step ${step.step} ${node}`, slice: slicePolicyForNode(model, node) });
    }
  }
  return out;
}

describe.skipIf(skipReason !== undefined)("rendered policy in the real kernel", () => {
  it("nft is the expected version family (the quirks we generate for are 1.0.6's)", () => {
    expect(execFileSync("nft", ["--version"], { env, encoding: "utf8" })).toMatch(/^nftables v1\./);
  });

  for (const c of GOLDEN_CASES) {
    it(`golden ${c.name}: nft accepts and loads it`, () => withNetns((ns) => checkNft(ns, sliceGoldenCase(c))));
    it(`golden ${c.name}: ipset + iptables-restore accept and load it`, () => withNetns((ns) => checkIptables(ns, sliceGoldenCase(c))));
  }

  for (const { name, slice } of corpusSlices()) {
    it(`corpus ${name}: nft and iptables accept it`, () => {
      withNetns((ns) => checkNft(ns, slice));
      withNetns((ns) => checkIptables(ns, slice));
    });
  }

  it("a set update applies in one transaction and leaves exactly the new members", () => {
    const slice = (extra: boolean): NodePolicySlice =>
      slicePolicyForNode(
        compilePolicies(
          buildSnapshot(
            [buildNamespace("x")],
            [
              buildPod("x/web", { app: "web" }, { node: "n1", ip: "10.0.0.1" }),
              buildPod("x/db", { app: "db" }, { node: "n1", ip: "10.0.0.2", ports: ["pg:5432/TCP", "pgx:5433/SCTP"] }),
              ...(extra ? [buildPod("x/web-2", { app: "web" }, { node: "n1", ip: "10.0.0.3" }), buildPod("x/db-2", { app: "db" }, { node: "n2", ip: "10.0.1.2", ports: ["pg:5440/TCP"] })] : []),
            ],
            [
              buildPolicy("x/db", { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }] }),
              buildPolicy("x/web", { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: {} }], ports: [{ port: "pg" }, { port: "pgx", protocol: "SCTP" }] }] }),
            ],
          ),
        ),
        "n1",
      );
    const before = slice(false);
    const after = slice(true);
    withNetns((ns) => {
      mustInNs(ns, "nft", ["-f", "-"], renderNftables(before));
      const up = renderNftablesSetUpdate(before, after);
      expect(up).toBeTruthy();
      mustInNs(ns, "nft", ["-f", "-"], up!);
      const direct = listTable(ns);
      // The table after the update equals the table rendered from the new slice.
      mustInNs(ns, "nft", ["-f", "-"], renderNftables(after));
      const fresh = listTable(ns);
      // Compare without kernel handles and with set elements in a stable order.
      const strip = (v: unknown): unknown => {
        if (Array.isArray(v)) return v.map(strip);
        if (v === null || typeof v !== "object") return v;
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
          if (k === "handle") continue;
          out[k] = k === "elem" && Array.isArray(x) ? x.map(strip).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)) : strip(x);
        }
        return out;
      };
      const norm = (j: NftJson): string[] =>
        j.nftables
          .filter((o) => !o["metainfo"])
          .map((o) => JSON.stringify(strip(o)))
          .sort();
      expect(norm(direct)).toEqual(norm(fresh));
      // And back again.
      const down = renderNftablesSetUpdate(after, before)!;
      mustInNs(ns, "nft", ["-f", "-"], down);
      const back = listTable(ns);
      mustInNs(ns, "nft", ["-f", "-"], renderNftables(before));
      expect(norm(back)).toEqual(norm(listTable(ns)));
    });
  });

  it("a text with an error is rejected as a whole and the old table stays", () => {
    const slice = sliceGoldenCase(GOLDEN_CASES[0]!);
    withNetns((ns) => {
      mustInNs(ns, "nft", ["-f", "-"], renderNftables(slice));
      const before = mustInNs(ns, "nft", ["list", "table", "inet", "switchyard"]);
      const broken = renderNftables(sliceGoldenCase(GOLDEN_CASES[2]!)).replace("policy accept;", "policy acept;");
      expect(inNs(ns, "nft", ["-f", "-"], broken).code).not.toBe(0);
      expect(mustInNs(ns, "nft", ["list", "table", "inet", "switchyard"])).toBe(before);
    });
  });
});
