// The iptables backend's text rules without a kernel: what the restore text may touch, how an ipset script
// evaluates, how live state is read back, and what one restore transaction is composed of.
import { describe, expect, it } from "vitest";
import { composeRestore, evaluateIpsetScript, isLiveSetAsDesired, parseIpsetHeaders, parseIpsetSave, parseIptablesRestore } from "./iptables-scripts";

describe("ownership checks of the iptables text", () => {
  it.each([
    ["a built-in chain policy", "*filter\n-P FORWARD DROP\nCOMMIT\n", /only rule and chain commands/],
    ["declaring a built-in chain", "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n", /only SY- chains may be declared/],
    ["a rule in a built-in chain that does not jump to SY-", "*filter\n-A FORWARD -j ACCEPT\nCOMMIT\n", /touches chain FORWARD/],
    ["flushing everything", "*filter\n-F\nCOMMIT\n", /missing chain/],
    ["a missing COMMIT", "*filter\n:SY-X - [0:0]\n", /no COMMIT/],
  ])("refuses %s", (_name, text, expected) => {
    expect(parseIptablesRestore(text)).toMatch(expected);
  });

  it("accepts SY- chains and a jump from FORWARD", () => {
    const text = ["*filter", ":SY-FORWARD - [0:0]", ":SY-POD - [0:0]", "-A FORWARD -j SY-FORWARD", "-A SY-FORWARD -o syabc -j SY-POD", '-A SY-POD -m comment --comment "y/c default deny" -j DROP', "COMMIT", ""].join("\n");
    expect(parseIptablesRestore(text)).toEqual([expect.objectContaining({ table: "filter", declared: new Set(["SY-FORWARD", "SY-POD"]) })]);
  });

  it.each([
    ["a foreign set", "create admin hash:ip\n", /must start with sy- or SY-/],
    ["an unsupported command", "test SY-x 10.0.0.1\n", /unsupported ipset command test/],
    ["a swap with a foreign set", "create sy-a hash:ip\nswap sy-a admin\n", /must be one of ours/],
  ])("refuses ipset text with %s", (_name, text, expected) => {
    expect(evaluateIpsetScript(text)).toMatch(expected);
  });

  it("evaluates the temp-set-and-swap idiom to its end state: the final set holds exactly the temp's elements", () => {
    const state = evaluateIpsetScript(
      ["create sy-g-1 hash:ip family inet -exist", "create sy-g-1-t hash:ip family inet -exist", "flush sy-g-1-t", "add sy-g-1-t 10.0.0.1", "add sy-g-1-t 10.0.0.2", "swap sy-g-1-t sy-g-1", "destroy sy-g-1-t"].join("\n"),
    );
    expect(state).toEqual(new Map([["sy-g-1", { type: "hash:ip", options: "family inet", base: undefined, adds: ["10.0.0.1", "10.0.0.2"], dels: [] }]]));
  });

  it("evaluates adds to a set the script never created as changes to the live set", () => {
    expect(evaluateIpsetScript("add SY-x 10.0.0.1\ndel SY-x 10.0.0.2\n")).toEqual(new Map([["SY-x", { type: undefined, options: "", base: "SY-x", adds: ["10.0.0.1"], dels: ["10.0.0.2"] }]]));
  });
});

describe("reading live state", () => {
  it("parses our sets from `ipset save`, without the random initval, members sorted; other owners' sets ignored", () => {
    const text = ["create admin hash:ip family inet hashsize 1024 maxelem 65536", "add admin 10.9.9.9", "create sy-g-1 hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1234abcd", "add sy-g-1 10.0.0.2", "add sy-g-1 10.0.0.1", ""].join("\n");
    expect(parseIpsetSave(text)).toEqual([{ name: "sy-g-1", type: "hash:ip", options: "family inet hashsize 1024 maxelem 65536 bucketsize 12", members: ["10.0.0.1", "10.0.0.2"] }]);
  });

  it("parses type and family of our sets from `ipset list -t`", () => {
    const text = ["Name: admin", "Type: hash:ip", "Header: family inet hashsize 1024", "", "Name: sy-n-1", "Type: hash:net", "Header: family inet hashsize 1024 maxelem 65536", "", "Name: SY-stage-abc", "Type: hash:ip", ""].join("\n");
    expect(parseIpsetHeaders(text)).toEqual(new Map([["sy-n-1", { type: "hash:net", family: "inet" }], ["SY-stage-abc", { type: "hash:ip", family: undefined }]]));
  });

  it("tells a live set that already is as desired (so re-applying stages nothing) from one that is not", () => {
    const live = { name: "sy-g-1", type: "hash:ip", options: "family inet hashsize 1024 maxelem 65536 bucketsize 12", members: ["10.0.0.1"] };
    const want = { name: "sy-g-1", type: "hash:ip", family: "inet", options: "family inet", elements: ["10.0.0.1"] };
    expect(isLiveSetAsDesired(want, live)).toBe(true);
    expect(isLiveSetAsDesired({ ...want, elements: ["10.0.0.2"] }, live)).toBe(false);
    expect(isLiveSetAsDesired({ ...want, options: "family inet maxelem 1024" }, live)).toBe(false);
    expect(isLiveSetAsDesired(want, undefined)).toBe(false);
  });
});

describe("composing one restore transaction", () => {
  it("deletes the live jumps into SY- chains first, then writes the text, re-inserts the forward jump once, and drops stale SY- chains", () => {
    const sections = parseIptablesRestore(["*filter", ":SY-FORWARD - [0:0]", "-A SY-FORWARD -j ACCEPT", "COMMIT"].join("\n"));
    if (typeof sections === "string") throw new Error(sections);
    const live = new Map([["filter", ["-P FORWARD ACCEPT", "-N SY-FORWARD", "-N SY-OLD", "-A FORWARD -j SY-FORWARD", "-A FORWARD -j ACCEPT", "-A SY-OLD -j DROP"]]]);
    const composed = composeRestore(sections, live, ["FORWARD", "-j", "SY-FORWARD"]);
    expect(composed.text).toBe(["*filter", "-D FORWARD -j SY-FORWARD", ":SY-FORWARD - [0:0]", "-A SY-FORWARD -j ACCEPT", "-I FORWARD -j SY-FORWARD", "-F SY-OLD", "-X SY-OLD", "COMMIT", ""].join("\n"));
    expect(composed.removedChains).toEqual(["filter/SY-OLD"]);
  });

  it("composes nothing when nothing of ours is live and nothing is asked for", () => {
    expect(composeRestore([], new Map([["filter", ["-P FORWARD ACCEPT", "-A FORWARD -j ACCEPT"]]]), undefined)).toEqual({ text: "", removedChains: [] });
  });
});
