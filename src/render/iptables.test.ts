// Golden files for renderIptables are checked in nftables.test.ts (one list of golden cases for both).
import { describe, expect, it } from "vitest";
import { GOLDEN_CASES, sliceGoldenCase } from "../../test/golden/policy/cases";
import { IPTABLES_FORWARD_CHAIN, iptablesChainName, ipsetName, renderIptables } from "./iptables";

const shop = sliceGoldenCase(GOLDEN_CASES[0]!);
const protocols = sliceGoldenCase(GOLDEN_CASES[1]!);

describe("renderIptables", () => {
  it("owns only SY- chains and never writes to FORWARD itself", () => {
    const { iptables, forwardJump } = renderIptables(shop);
    const lines = iptables.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(lines[0]).toBe("*filter");
    expect(lines[lines.length - 1]).toBe("COMMIT");
    for (const l of lines.slice(1, -1)) expect(l).toMatch(/^(:SY-[A-Z-]+?(-[0-9a-f]{12})? - \[0:0\]|-A SY-[A-Z-]+?(-[0-9a-f]{12})? .*)$/);
    expect(forwardJump).toEqual(["FORWARD", "-m", "comment", "--comment", "switchyard NetworkPolicy", "-j", IPTABLES_FORWARD_CHAIN]);
  });

  it("puts the unknown-pod-interface checks first, then conntrack, then egress dispatch, then ingress dispatch", () => {
    const text = renderIptables(shop).iptables;
    const fwd = text.split("\n").filter((l) => l.startsWith(`-A ${IPTABLES_FORWARD_CHAIN} `));
    expect(fwd.slice(0, 2)).toEqual([`-A ${IPTABLES_FORWARD_CHAIN} -i sy+ -j SY-FROM-POD`, `-A ${IPTABLES_FORWARD_CHAIN} -o sy+ -j SY-TO-POD`]);
    for (const [chain, flag] of [["SY-FROM-POD", "-i"], ["SY-TO-POD", "-o"]] as const) {
      const rules = text.split("\n").filter((l) => l.startsWith(`-A ${chain} `));
      // The mode devices, then every pod of the slice (isolated or not) return; anything else is dropped.
      expect(rules).toEqual([`-A ${chain} ${flag} sy-+ -j RETURN`, ...shop.pods.map((p) => p.interface).sort().map((i) => `-A ${chain} ${flag} ${i} -j RETURN`), expect.stringMatching(/not in this node's plan.* -j DROP$/)]);
    }
    expect(fwd[2]).toMatch(/--ctstate RELATED,ESTABLISHED .* -j ACCEPT$/);
    expect(fwd[3]).toMatch(/--ctstate INVALID .* -j DROP$/);
    const kinds = fwd.slice(4).map((l) => (l.includes(" -i ") ? "i" : "o"));
    expect(kinds.join("")).toMatch(/^i+o+$/);
  });

  it("egress chains RETURN and ingress chains ACCEPT when allowed; both DROP at the end", () => {
    const text = renderIptables(shop).iptables;
    for (const c of shop.chains) {
      const name = iptablesChainName(c);
      const rules = text.split("\n").filter((l) => l.startsWith(`-A ${name} `));
      expect(rules[rules.length - 1]).toMatch(/-j DROP$/);
      for (const r of rules.slice(0, -1)) expect(r).toMatch(c.direction === "egress" ? /-j RETURN$/ : /-j ACCEPT$/);
    }
  });

  it("fills each ipset through a temp set swapped into place", () => {
    const { ipset } = renderIptables(protocols);
    for (const g of protocols.groups) {
      const name = ipsetName(g);
      expect(ipset).toContain(`create ${name}-t `);
      expect(ipset).toContain(`swap ${name}-t ${name}\ndestroy ${name}-t\n`);
    }
    expect(ipset).toMatch(/^add sy-n-[0-9a-f]{12}-t 10\.244\.1\.5,sctp:9000$/m);
    expect(ipset).toMatch(/^add sy-n-[0-9a-f]{12}-t 10\.244\.2\.6,sctp:9001$/m);
    expect(ipset).toMatch(/^create sy-c-[0-9a-f]{12} hash:net family inet -exist$/m);
  });

  it("never exceeds multiport's 15 slots", () => {
    for (const l of renderIptables(protocols).iptables.split("\n")) {
      const m = / --dports (\S+)/.exec(l);
      if (!m) continue;
      const slots = m[1]!.split(",").reduce((n, p) => n + (p.includes(":") ? 2 : 1), 0);
      expect(slots).toBeLessThanOrEqual(15);
    }
  });

  it("deletes stale SY- chains in the same run and destroys stale sy- sets afterwards, nothing else", () => {
    const wantedChain = iptablesChainName(shop.chains[0]!);
    const r = renderIptables(shop, {
      existingChains: ["SY-FORWARD", wantedChain, "SY-IN-000000000000", "KUBE-SERVICES", "DOCKER"],
      existingSets: [ipsetName(shop.groups[0]!), "sy-g-000000000000", "sy-g-000000000000-t", "kube-something"],
    });
    expect(r.iptables).toContain(":SY-IN-000000000000 - [0:0]\n");
    expect(r.iptables).toContain("-X SY-IN-000000000000\n");
    expect(r.iptables).not.toContain(`-X ${wantedChain}`);
    expect(r.iptables).not.toMatch(/KUBE|DOCKER/);
    expect(r.ipsetCleanup).toBe("destroy sy-g-000000000000\ndestroy sy-g-000000000000-t\n");
    expect(renderIptables(shop).ipsetCleanup).toBe("");
  });

  it("is deterministic", () => {
    expect(renderIptables(JSON.parse(JSON.stringify(shop)) as typeof shop)).toEqual(renderIptables(shop));
  });
});
