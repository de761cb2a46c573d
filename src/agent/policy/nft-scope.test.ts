// The one-table guard, without a kernel: what `nft -f` text the agent lets through.
import { describe, expect, it } from "vitest";
import { checkNftScope } from "./nft-scope";

describe("checkNftScope", () => {
  it.each([
    ["the replace idiom", "table inet switchyard\ndelete table inet switchyard\ntable inet switchyard {\n  chain c {\n  }\n}\n", undefined],
    ["element updates", "add element inet switchyard s { 10.0.0.1 }\ndelete element inet switchyard s { 10.0.0.2 }", undefined],
    ["a define and comments", '# header\ndefine PODS = { 10.0.0.1 }\ntable inet switchyard { # "quoted { brace"\n}\n', undefined],
    ["flush ruleset", "flush ruleset", /not an operation/],
    ["another table", "table ip filter {\n}\n", /touches table ip filter/],
    ["a family-less command (defaults to ip)", "add rule switchyard forward accept", /touches table ip switchyard/],
    ["a second statement on one line", "table inet switchyard; delete table inet other", /touches table inet other/],
  ])("%s", (_name, text, expected) => {
    const v = checkNftScope(text);
    if (expected === undefined) expect(v).toBeUndefined();
    else expect(v).toMatch(expected);
  });
});
