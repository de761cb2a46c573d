// Kernel test: applying nftables text to a node (one `nft -f -` transaction, the replace idiom), incremental
// set updates, rejection of bad text with the old rules kept in force, and the ownership guard. Rulesets
// are hand-written here (the renderer is tested on its own); every claim is checked with real packets from
// the lab's pod agents and with `nft -j`. Namespaces: prefix sylt2-.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOk } from "../../src/base/exec";
import { applyNftRuleset, applyNftSetUpdate, listSwitchyardTable, removeSwitchyardTable, type NftTableListing } from "../../src/agent/policy/nftables";
import { podInterfaceName } from "../../src/model/names";
import type { Protocol } from "../../src/model/cluster";
import { probe, probeMatrix, startPodAgent, type PodServer } from "../../lab/pods";
import { addPod, createLab, destroyLab, installStaticPodRoutes, type Lab, type PodRef } from "../../lab/topology";

const PREFIX = "sylt2-";
const SERVERS: PodServer[] = [
  { port: 80, protocol: "TCP" },
  { port: 81, protocol: "UDP" },
  { port: 82, protocol: "SCTP" },
];
// a, b on n1; c (the isolated pod) and d (same node as c, not isolated) on n2.
const A = { namespace: "x", name: "a", node: "n1", ip: "10.0.0.10" };
const B = { namespace: "x", name: "b", node: "n1", ip: "10.0.0.11" };
const C = { namespace: "y", name: "c", node: "n2", ip: "10.0.0.20" };
const D = { namespace: "y", name: "d", node: "n2", ip: "10.0.0.21" };
const NODE2 = `${PREFIX}n2`;
const DENY_TIMEOUT_MS = 600;

/** Ingress isolation of y/c on n2: peers in @c_in_allow may reach TCP 80 and SCTP 82; everything else to c drops. */
function isolationRuleset(allowed: readonly string[], extraAccept = ""): string {
  return `table inet switchyard
delete table inet switchyard
table inet switchyard {
  set c_in_allow {
    type ipv4_addr
    elements = { ${allowed.join(", ")} }
  }
  map pod_in {
    type ifname : verdict
    elements = { "${podInterfaceName(C.namespace, C.name)}" : jump pod_c_in }
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    ct state invalid drop
    oifname vmap @pod_in
  }
  chain pod_c_in {
    ip saddr @c_in_allow tcp dport 80 accept
    ip saddr @c_in_allow sctp dport 82 accept
    ${extraAccept}
    counter drop comment "y/c default deny"
  }
}
`;
}

/** The listing without what legitimately changes on every replace: handles and counter values. */
function normalize(listing: NftTableListing | undefined): unknown {
  return JSON.parse(JSON.stringify(listing?.objects ?? null, (key, value: unknown) => (key === "handle" || key === "metainfo" ? undefined : key === "counter" ? "counter" : value)));
}

async function reach(lab: Lab, from: PodRef, to: { ip: string }, port: number, protocol: Protocol): Promise<boolean> {
  return (await probe(lab, from, to.ip, port, protocol, DENY_TIMEOUT_MS)).ok;
}

describe("nftables apply", () => {
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

  it("enforces an isolation ruleset as written: allowed peer and ports pass, the rest drops, TCP and SCTP alike", async () => {
    // Before any rules, everything is open (so the denials below are the ruleset's doing).
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true);

    const applied = await applyNftRuleset(NODE2, isolationRuleset([A.ip]));
    expect(applied).toMatchObject({ ok: true });

    const from = [A, B, D]; // D is on c's own node: same-node traffic crosses the forward hook too
    const tcp = await probeMatrix(lab, from, [C, D], 80, "TCP", { timeoutMs: DENY_TIMEOUT_MS });
    expect(tcp.matrix).toEqual([
      [true, true],
      [false, true],
      [false, true],
    ]);
    // The SCTP rule: a's INIT passes, and the agent's INIT-ACK (verification tag, CRC32c) is not
    // conntrack-invalid, or `ct state invalid drop` would have eaten it.
    const sctp = await probeMatrix(lab, from, [C, D], 82, "SCTP", { timeoutMs: DENY_TIMEOUT_MS });
    expect(sctp.matrix).toEqual([
      [true, true],
      [false, true],
      [false, true],
    ]);
    // No rule allows UDP 81 to c; d is not isolated.
    const udp = await probeMatrix(lab, from, [C, D], 81, "UDP", { timeoutMs: DENY_TIMEOUT_MS });
    expect(udp.matrix).toEqual([
      [false, true],
      [false, true],
      [false, true],
    ]);

    const listing = await listSwitchyardTable(NODE2);
    expect(listing?.chains.map((c) => c["name"]).sort()).toEqual(["forward", "pod_c_in"]);
    const set = listing?.sets.find((s) => s["name"] === "c_in_allow");
    expect(set?.["elem"]).toEqual([A.ip]);
    const dropRule = listing?.rules.find((r) => r["comment"] === "y/c default deny");
    const counter = (dropRule?.["expr"] as { counter?: { packets: number } }[] | undefined)?.find((e) => e.counter !== undefined)?.counter;
    expect(counter?.packets).toBeGreaterThan(0);
  });

  it("rejects a transaction with a syntax error as a value and keeps the old rules in force", async () => {
    const before = normalize(await listSwitchyardTable(NODE2));
    // This text would admit b on UDP too; its last line is broken, so none of it may take effect.
    const broken = `${isolationRuleset([A.ip, B.ip], "udp dport 81 accept")}add rule inet switchyard pod_c_in ip saddr frobnicate accept\n`;
    const result = await applyNftRuleset(NODE2, broken);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/Error/);
    expect(normalize(await listSwitchyardTable(NODE2))).toEqual(before);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);
    expect(await reach(lab, A, C, 81, "UDP")).toBe(false);

    // A kernel-level error (a jump to a chain that does not exist) is rejected the same way.
    const dangling = isolationRuleset([A.ip, B.ip], "jump no_such_chain");
    const second = await applyNftRuleset(NODE2, dangling);
    expect(second.ok).toBe(false);
    expect(normalize(await listSwitchyardTable(NODE2))).toEqual(before);
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);
  });

  it("opens a peer at once with an incremental set element add, and closes it again with a delete", async () => {
    const added = await applyNftSetUpdate(NODE2, `add element inet switchyard c_in_allow { ${B.ip} }\n`);
    expect(added).toMatchObject({ ok: true });
    // One probe, no retry: the element is in force when nft returns.
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true);
    expect(await reach(lab, B, C, 82, "SCTP")).toBe(true);
    expect((await listSwitchyardTable(NODE2))?.sets.find((s) => s["name"] === "c_in_allow")?.["elem"]).toEqual([A.ip, B.ip]);

    const deleted = await applyNftSetUpdate(NODE2, `delete element inet switchyard c_in_allow { ${B.ip} }\n`);
    expect(deleted).toMatchObject({ ok: true });
    expect(await reach(lab, B, C, 80, "TCP")).toBe(false);

    // Deleting an absent element fails the whole transaction (nft 1.0.6 has no `destroy element`).
    const again = await applyNftSetUpdate(NODE2, `delete element inet switchyard c_in_allow { ${B.ip} }\n`);
    expect(again.ok).toBe(false);
  });

  it("changes nothing observable when the same text is applied again", async () => {
    const text = isolationRuleset([A.ip]);
    expect((await applyNftRuleset(NODE2, text)).ok).toBe(true);
    const first = normalize(await listSwitchyardTable(NODE2));
    const matrixFirst = await probeMatrix(lab, [A, B, D], [C, D], 80, "TCP", { timeoutMs: DENY_TIMEOUT_MS });

    const reapplied = await applyNftRuleset(NODE2, text);
    expect(reapplied.ok).toBe(true);
    expect(normalize(await listSwitchyardTable(NODE2))).toEqual(first);
    const matrixAgain = await probeMatrix(lab, [A, B, D], [C, D], 80, "TCP", { timeoutMs: DENY_TIMEOUT_MS });
    expect(matrixAgain.matrix).toEqual(matrixFirst.matrix);
    const tables = JSON.parse(await runOk("nft", ["-j", "list", "tables"], { netns: NODE2 })) as { nftables: { table?: { family: string; name: string } }[] };
    expect(tables.nftables.flatMap((o) => (o.table ? [`${o.table.family} ${o.table.name}`] : []))).toEqual(["inet switchyard"]);
  });

  it("refuses text that reaches beyond table inet switchyard, and removal touches only that table", async () => {
    await runOk("nft", ["-f", "-"], { netns: NODE2, stdin: "table ip admin {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n" });
    for (const text of ["flush ruleset\n", "table ip admin\ndelete table ip admin\n", "add element switchyard c_in_allow { 10.0.0.99 }\n", 'include "/etc/nftables.conf"\n']) {
      const r = await applyNftRuleset(NODE2, text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(/^refused before nft/);
    }
    const listTables = async (): Promise<string[]> =>
      (JSON.parse(await runOk("nft", ["-j", "list", "tables"], { netns: NODE2 })) as { nftables: { table?: { family: string; name: string } }[] }).nftables
        .flatMap((o) => (o.table ? [`${o.table.family} ${o.table.name}`] : []))
        .sort();
    expect(await listTables()).toEqual(["inet switchyard", "ip admin"]);

    expect((await removeSwitchyardTable(NODE2)).ok).toBe(true);
    expect(await listSwitchyardTable(NODE2)).toBeUndefined();
    expect(await listTables()).toEqual(["ip admin"]);
    expect((await removeSwitchyardTable(NODE2)).ok).toBe(true); // idempotent
    expect(await reach(lab, B, C, 80, "TCP")).toBe(true); // no policy left: open again
  });
});
