// Kernel test: the iptables backend. `applyIptables` stages ipsets, swaps them in, runs one
// `iptables-restore --noflush`, and rolls the sets back when that fails. Rulesets are hand-written (the
// renderer is tested on its own); claims are checked with real packets, `iptables -S` and `ipset save`.
// Namespaces: prefix sylt3-.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand, runOk } from "../../src/base/exec";
import { applyIpsetUpdate, applyIptables, listIptablesRules, listSwitchyardIpsets, removeIptables, type IptablesBackend, type IptablesRuleset } from "../../src/agent/policy/iptables";
import { podInterfaceName } from "../../src/model/names";
import type { Protocol } from "../../src/model/cluster";
import { probe, probeMatrix, startPodAgent, type PodServer } from "../../lab/pods";
import { addPod, createLab, destroyLab, installStaticPodRoutes, type Lab, type PodRef } from "../../lab/topology";

const PREFIX = "sylt3-";
const SERVERS: PodServer[] = [
  { port: 80, protocol: "TCP" },
  { port: 81, protocol: "UDP" },
  { port: 82, protocol: "SCTP" },
];
const A = { namespace: "x", name: "a", node: "n1", ip: "10.0.0.10" };
const B = { namespace: "x", name: "b", node: "n1", ip: "10.0.0.11" };
const C = { namespace: "y", name: "c", node: "n2", ip: "10.0.0.20" };
const D = { namespace: "y", name: "d", node: "n2", ip: "10.0.0.21" };
const NODE2 = `${PREFIX}n2`;
const DENY_TIMEOUT_MS = 600;
const VETH_C = podInterfaceName(C.namespace, C.name);

/** Ingress isolation of y/c: members of `setName` may reach TCP 80 and SCTP 82; the rest to c drops. */
function isolationRuleset(members: readonly string[], opts: { setName?: string; podChain?: string; extraRule?: string } = {}): IptablesRuleset {
  const set = opts.setName ?? "SY-c-in";
  const chain = opts.podChain ?? "SY-POD-C-IN";
  return {
    ipset: [`create ${set} hash:ip family inet`, ...members.map((m) => `add ${set} ${m}`)].join("\n") + "\n",
    iptables: [
      "*filter",
      ":SY-FORWARD - [0:0]",
      `:${chain} - [0:0]`,
      '-A FORWARD -m comment --comment "switchyard policy" -j SY-FORWARD',
      "-A SY-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A SY-FORWARD -m conntrack --ctstate INVALID -j DROP",
      `-A SY-FORWARD -o ${VETH_C} -j ${chain}`,
      `-A ${chain} -p tcp -m set --match-set ${set} src -m tcp --dport 80 -j ACCEPT`,
      `-A ${chain} -p sctp -m set --match-set ${set} src -m sctp --dport 82 -j ACCEPT`,
      ...(opts.extraRule !== undefined ? [opts.extraRule] : []),
      `-A ${chain} -m comment --comment "y/c default deny" -j DROP`,
      "COMMIT",
      "",
    ].join("\n"),
  };
}

async function reach(lab: Lab, from: PodRef, to: { ip: string }, port: number, protocol: Protocol): Promise<boolean> {
  return (await probe(lab, from, to.ip, port, protocol, DENY_TIMEOUT_MS)).ok;
}

async function snapshot(backend: IptablesBackend = "nft"): Promise<{ rules: string[]; sets: unknown }> {
  return { rules: await listIptablesRules(NODE2, "filter", { backend }), sets: await listSwitchyardIpsets(NODE2) };
}

describe("iptables apply", () => {
  let lab: Lab;

  beforeAll(async () => {
    await destroyLab(PREFIX);
    lab = await createLab({ prefix: PREFIX, nodes: 2, subnets: 1, podBlocks: ["10.0.0.0/28", "10.0.0.16/28"] });
    for (const p of [A, B, C, D]) await addPod(lab, p);
    await installStaticPodRoutes(lab);
    await Promise.all([A, B, C, D].map((p) => startPodAgent(lab, p, SERVERS)));
  });

  afterAll(async () => {
    await destroyLab(PREFIX);
  });

  it("enforces an isolation ruleset as written (TCP, SCTP, UDP; same-node traffic too)", async () => {
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true);
    const r = await applyIptables(NODE2, isolationRuleset([A.ip]));
    expect(r).toMatchObject({ ok: true, warnings: [] });

    const from = [A, B, D];
    for (const [port, protocol, expected] of [
      [80, "TCP", [[true, true], [false, true], [false, true]]],
      [82, "SCTP", [[true, true], [false, true], [false, true]]],
      [81, "UDP", [[false, true], [false, true], [false, true]]],
    ] as const) {
      const m = await probeMatrix(lab, from, [C, D], port, protocol, { timeoutMs: DENY_TIMEOUT_MS });
      expect(m.matrix, `${protocol}/${port}`).toEqual(expected);
    }
    const rules = await listIptablesRules(NODE2);
    expect(rules.filter((l) => l.startsWith("-A FORWARD"))).toEqual(['-A FORWARD -m comment --comment "switchyard policy" -j SY-FORWARD']);
    expect(await listSwitchyardIpsets(NODE2)).toEqual([expect.objectContaining({ name: "SY-c-in", type: "hash:ip", members: [A.ip] })]);
  });

  it("rolls the sets back and keeps the old rules when iptables-restore rejects the new text", async () => {
    const before = await snapshot();
    // New sets would admit b, but the chains are broken: neither may take effect.
    const broken = isolationRuleset([A.ip, B.ip], { extraRule: "-A SY-POD-C-IN -j SY-NO-SUCH-CHAIN" });
    const r = await applyIptables(NODE2, broken);
    expect(r).toMatchObject({ ok: false, stage: "iptables" });
    if (!r.ok) expect(r.error).toMatch(/SY-NO-SUCH-CHAIN/);
    expect(await snapshot()).toEqual(before);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);
    const allSets = await runOk("ipset", ["list", "-n"], { netns: NODE2 });
    expect(allSets).not.toMatch(/SY-stage-/);
  });

  it("leaves everything in force when the ipset text fails", async () => {
    const before = await snapshot();
    const bad = isolationRuleset([A.ip, "not-an-address"]);
    const r = await applyIptables(NODE2, bad);
    expect(r).toMatchObject({ ok: false, stage: "ipset" });
    expect(await snapshot()).toEqual(before);
    expect(await reach(lab, A, C, 80, "TCP")).toBe(true);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);
  });

  it("swaps a referenced set's contents in place: a new member is admitted at once, the rules keep their set", async () => {
    const r = await applyIptables(NODE2, isolationRuleset([A.ip, B.ip]));
    expect(r).toMatchObject({ ok: true, removedSets: [], removedChains: [] });
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true);
    expect(await reach(lab, B, C, 82, "SCTP")).toBe(true);
    expect((await listSwitchyardIpsets(NODE2)).map((s) => [s.name, s.members])).toEqual([["SY-c-in", [A.ip, B.ip]]]);
    const refs = await runOk("ipset", ["list", "-t", "SY-c-in"], { netns: NODE2 });
    expect(refs).toMatch(/References: [1-9]/);
  });

  it("replaces chains and sets under new names, then removes the stale ones once nothing references them", async () => {
    const r = await applyIptables(NODE2, isolationRuleset([A.ip], { setName: "SY-c-in-v2", podChain: "SY-POD-C-IN-V2" }));
    expect(r).toMatchObject({ ok: true, removedChains: ["filter/SY-POD-C-IN"], removedSets: ["SY-c-in"], warnings: [] });
    const rules = await listIptablesRules(NODE2);
    expect(rules.filter((l) => l.startsWith("-N "))).toEqual(["-N SY-FORWARD", "-N SY-POD-C-IN-V2"]);
    expect((await listSwitchyardIpsets(NODE2)).map((s) => s.name)).toEqual(["SY-c-in-v2"]);
    expect(await reach(lab, A, C, 80, "TCP")).toBe(true);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);
  });

  it("changes nothing observable when the same ruleset is applied again (one FORWARD jump, same rules, same sets)", async () => {
    const ruleset = isolationRuleset([A.ip]);
    expect((await applyIptables(NODE2, ruleset)).ok).toBe(true);
    const first = await snapshot();
    const matrixFirst = await probeMatrix(lab, [A, B, D], [C, D], 80, "TCP", { timeoutMs: DENY_TIMEOUT_MS });
    const again = await applyIptables(NODE2, ruleset);
    expect(again).toMatchObject({ ok: true, removedChains: [], removedSets: [] });
    expect(await snapshot()).toEqual(first);
    expect(first.rules.filter((l) => l.includes("-j SY-FORWARD")).length).toBe(1);
    const matrixAgain = await probeMatrix(lab, [A, B, D], [C, D], 80, "TCP", { timeoutMs: DENY_TIMEOUT_MS });
    expect(matrixAgain.matrix).toEqual(matrixFirst.matrix);
  });

  it("updates set elements incrementally with ipset add/del", async () => {
    expect(await applyIpsetUpdate(NODE2, `add SY-c-in ${B.ip}\n`)).toEqual({ ok: true });
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true);
    expect(await applyIpsetUpdate(NODE2, `del SY-c-in ${B.ip}\ndel SY-c-in ${B.ip}\n`)).toEqual({ ok: true }); // -exist: absent is fine
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);
    expect(await applyIpsetUpdate(NODE2, "flush SY-c-in\n")).toMatchObject({ ok: false });
    expect(await applyIpsetUpdate(NODE2, `add admin ${B.ip}\n`)).toMatchObject({ ok: false });
  });

  it("removes only SY- chains, jumps and sets, leaving the admin's rules and sets alone", async () => {
    await runOk("iptables-nft", ["-w", "5", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT"], { netns: NODE2 });
    await runOk("ipset", ["create", "admin-set", "hash:ip"], { netns: NODE2 });
    const r = await removeIptables(NODE2);
    expect(r).toMatchObject({ ok: true, removedSets: ["SY-c-in"], warnings: [] });
    const rules = await listIptablesRules(NODE2);
    expect(rules.filter((l) => l.includes("SY-"))).toEqual([]);
    expect(rules).toContain("-A FORWARD -s 192.0.2.1/32 -j ACCEPT");
    expect((await runOk("ipset", ["list", "-n"], { netns: NODE2 })).trim().split("\n")).toEqual(["admin-set"]);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true);
    expect(await removeIptables(NODE2)).toMatchObject({ ok: true, removedChains: [], removedSets: [] });
    await runOk("iptables-nft", ["-w", "5", "-D", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT"], { netns: NODE2 });
    await runOk("ipset", ["destroy", "admin-set"], { netns: NODE2 });
  });

  it("works the same with the legacy backend", async () => {
    const r = await applyIptables(NODE2, isolationRuleset([A.ip]), { backend: "legacy" });
    expect(r).toMatchObject({ ok: true });
    expect(await reach(lab, A, C, 80, "TCP")).toBe(true);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);
    expect(await reach(lab, A, C, 82, "SCTP")).toBe(true);
    // The nft-backed view does not show legacy rules: one backend per node.
    expect((await listIptablesRules(NODE2, "filter", { backend: "nft" })).filter((l) => l.includes("SY-"))).toEqual([]);
    expect((await removeIptables(NODE2, { backend: "legacy" })).ok).toBe(true);
    expect((await listIptablesRules(NODE2, "filter", { backend: "legacy" })).filter((l) => l.includes("SY-"))).toEqual([]);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true);
    const sets = await runCommand("ipset", ["list", "-n"], { netns: NODE2 });
    expect(sets.stdout).not.toMatch(/SY-/);
  });

  it("applies the renderer's idiom: lower-case sy- sets filled via temp+swap, forwardJump kept once and first, ipsetCleanup", async () => {
    const rendererStyle = (set: string, members: readonly string[], staleSets: readonly string[] = []): IptablesRuleset => ({
      ipset: [
        "# generated",
        `create ${set} hash:ip family inet -exist`,
        `create ${set}-t hash:ip family inet -exist`,
        `flush ${set}-t`,
        ...members.map((m) => `add ${set}-t ${m}`),
        `swap ${set}-t ${set}`,
        `destroy ${set}-t`,
        "",
      ].join("\n"),
      iptables: [
        "# generated",
        "*filter",
        ":SY-FORWARD - [0:0]",
        ":SY-IN-c - [0:0]",
        '-A SY-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "replies" -j ACCEPT',
        "-A SY-FORWARD -m conntrack --ctstate INVALID -j DROP",
        `-A SY-FORWARD -o ${VETH_C} -m comment --comment "y/c ingress" -j SY-IN-c`,
        `-A SY-IN-c -m set --match-set ${set} src -p tcp --dport 80 -m comment --comment "y/p ingress[0]" -j ACCEPT`,
        '-A SY-IN-c -m comment --comment "default deny ingress: y/p" -j DROP',
        "COMMIT",
        "",
      ].join("\n"),
      ipsetCleanup: staleSets.map((n) => `destroy ${n}\n`).join(""),
      forwardJump: ["FORWARD", "-m", "comment", "--comment", "switchyard NetworkPolicy", "-j", "SY-FORWARD"],
    });
    // Someone else's rule first in FORWARD: our jump must still come first, exactly once.
    await runOk("iptables-nft", ["-w", "5", "-A", "FORWARD", "-s", "192.0.2.7", "-j", "ACCEPT"], { netns: NODE2 });
    try {
      const first = await applyIptables(NODE2, rendererStyle("sy-g-peers", [A.ip]));
      expect(first).toMatchObject({ ok: true, warnings: [] });
      const forward = async (): Promise<string[]> => (await listIptablesRules(NODE2)).filter((l) => l.startsWith("-A FORWARD"));
      const expectedForward = ['-A FORWARD -m comment --comment "switchyard NetworkPolicy" -j SY-FORWARD', "-A FORWARD -s 192.0.2.7/32 -j ACCEPT"];
      expect(await forward()).toEqual(expectedForward);
      expect((await listSwitchyardIpsets(NODE2)).map((s) => [s.name, s.members])).toEqual([["sy-g-peers", [A.ip]]]);
      expect(await reach(lab, A, C, 80, "TCP")).toBe(true);
      expect(await reach(lab, B, C, 80, "TCP")).toBe(false);

      const again = await applyIptables(NODE2, rendererStyle("sy-g-peers", [A.ip, B.ip]));
      expect(again).toMatchObject({ ok: true, removedSets: [], removedChains: [] });
      expect(await forward()).toEqual(expectedForward);
      expect(await reach(lab, B, C, 80, "TCP")).toBe(true);

      const renamed = await applyIptables(NODE2, rendererStyle("sy-g-peers2", [B.ip], ["sy-g-peers"]));
      expect(renamed).toMatchObject({ ok: true, removedSets: ["sy-g-peers"], warnings: [] });
      expect((await listSwitchyardIpsets(NODE2)).map((s) => s.name)).toEqual(["sy-g-peers2"]);
      expect(await reach(lab, A, C, 80, "TCP")).toBe(false);
      expect(await reach(lab, B, C, 80, "TCP")).toBe(true);
      // No temp (-t) or staged set is left behind.
      expect((await runOk("ipset", ["list", "-n"], { netns: NODE2 })).trim().split("\n").filter((n) => /^sy-/i.test(n))).toEqual(["sy-g-peers2"]);
    } finally {
      await removeIptables(NODE2);
      await runOk("iptables-nft", ["-w", "5", "-D", "FORWARD", "-s", "192.0.2.7", "-j", "ACCEPT"], { netns: NODE2 });
    }
    expect(await listSwitchyardIpsets(NODE2)).toEqual([]);
  });
});
