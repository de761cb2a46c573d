// The completion scripts come from the command tree alone: a command or option declared on a commander
// program completes without touching completion.ts, hidden ones never do, and an option's value is
// skipped on the way down the tree. The bash script is run in a real bash, as `complete -F` calls it.
import { spawnSync } from "node:child_process";
import { Command, Option } from "commander";
import { describe, expect, it } from "vitest";
import { collectCommandTree, renderCompletion } from "./completion";

function program(): Command {
  const p = new Command().name("tool").version("1.2.3");
  p.command("alpha").description("the first").option("-n, --name <name>", "a name").option("--json", "raw output");
  const beta = p.command("beta").description("the second");
  beta.command("gamma").description("below beta").addOption(new Option("--color <c>", "a colour").choices(["red", "green"]));
  beta.command("secret", { hidden: true }).description("not for users");
  return p;
}

/** COMPREPLY of the generated bash function for a command line; "|" marks the cursor (at the end). */
function bashComplete(script: string, line: string): string[] {
  const before = line.slice(0, line.indexOf("|"));
  const words = before.split(/\s+/).filter((w) => w !== "");
  if (before.endsWith(" ")) words.push("");
  const fn = /complete -o default -F (\S+)/.exec(script)?.[1];
  const probe = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync("bash", ["--norc", "-c", probe], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n").filter((w) => w !== "");
}

describe("completion scripts generated from the command tree", () => {
  it("collects visible commands, their options and which options take a value", () => {
    const tree = collectCommandTree(program());
    expect(tree.map((c) => c.key)).toEqual(["", "alpha", "beta", "beta gamma"]);
    const alpha = tree.find((c) => c.key === "alpha")!;
    expect(alpha.options.map((o) => o.name)).toEqual(["-n", "--name", "--json", "-h", "--help"]);
    expect(alpha.valueOptions.map((v) => v.flag)).toEqual(["-n", "--name"]);
    expect(tree.find((c) => c.key === "beta gamma")!.valueOptions).toEqual([{ flag: "--color", choices: ["red", "green"] }]);
  });

  it.each([
    ["tool |", ["alpha", "beta", "help", "-V", "--version", "-h", "--help"]],
    ["tool al|", ["alpha"]],
    ["tool alpha --|", ["--name", "--json", "--help"]],
    ["tool alpha --name |", []], // a value: bash falls back to files
    ["tool alpha --name beta |", ["-n", "--name", "--json", "-h", "--help"]], // `beta` was the value, not a command
    ["tool beta |", ["gamma", "help", "-h", "--help"]], // the hidden command is not offered
    ["tool beta gamma --color |", ["red", "green"]],
  ])("bash: %s", (line, expected) => {
    expect(bashComplete(renderCompletion(program(), "bash"), line)).toEqual(expected);
  });

  it("a command added to the program completes without any other change", () => {
    const p = program();
    p.command("delta").option("--fresh <x>", "new");
    const script = renderCompletion(p, "bash");
    expect(bashComplete(script, "tool d|")).toEqual(["delta"]);
    expect(bashComplete(script, "tool delta --f|")).toEqual(["--fresh"]);
    expect(renderCompletion(p, "zsh")).toContain("'--fresh:new'");
  });

  it("registers the program's name and its aliases", () => {
    expect(renderCompletion(program(), "bash", ["kubectl-tool"])).toMatch(/complete -o default -F _tool_completion tool kubectl-tool\n$/);
    expect(renderCompletion(program(), "zsh", ["kubectl-tool"])).toMatch(/compdef _tool tool kubectl-tool\n$/);
  });

  it("zsh: commands and options with their descriptions, quotes escaped", () => {
    const p = program();
    p.command("quoted").description("it's here");
    const script = renderCompletion(p, "zsh");
    expect(script).toContain("'alpha:the first'");
    expect(script).toContain("'gamma:below beta'");
    expect(script).toContain(`'quoted:it'\\''s here'`);
    expect(script).not.toContain("secret");
  });
});
