// `switchyard completion bash|zsh`: shell completion scripts generated from commander's own command tree
// (the commands, options and argument choices `--help` shows, hidden ones left out), so a new command
// or option completes as soon as it is declared in main.ts; nothing here names a subcommand.
// The scripts carry the tree as data (one `case` branch per command) and a small walker: it follows the
// words typed so far down the tree, skipping the value after an option that takes one, then offers the
// subcommands and options of the command reached, the choices of an option or argument, or files.
import type { Command } from "commander";

export const SHELLS = ["bash", "zsh"] as const;
export type Shell = (typeof SHELLS)[number];

interface Word {
  readonly name: string;
  readonly description: string;
}

/** One command of the tree, keyed by its path below the program ("" for the program itself). */
interface CommandSpec {
  readonly key: string;
  readonly subcommands: readonly Word[];
  readonly options: readonly Word[];
  /** Option flags (short and long) that take a value, with the value's choices when they are fixed. */
  readonly valueOptions: readonly { readonly flag: string; readonly choices: readonly string[] }[];
  /** Choices of the first positional argument, when it has fixed ones. */
  readonly argumentChoices: readonly string[];
}

/** The visible command tree, depth first, as help shows it. */
export function collectCommandTree(program: Command): CommandSpec[] {
  const out: CommandSpec[] = [];
  const walk = (cmd: Command, key: string): void => {
    const help = cmd.createHelp();
    const subs = help.visibleCommands(cmd);
    const options = help.visibleOptions(cmd);
    out.push({
      key,
      subcommands: subs.map((s) => ({ name: s.name(), description: s.summary() || s.description() })),
      options: options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined).map((flag) => ({ name: flag, description: o.description }))),
      valueOptions: options
        .filter((o) => o.required || o.optional)
        .flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined).map((flag) => ({ flag, choices: o.argChoices ?? [] }))),
      argumentChoices: cmd.registeredArguments[0]?.argChoices ?? [],
    });
    // The implicit `help` command has no tree of its own below it.
    for (const s of cmd.commands) if (subs.includes(s)) walk(s, key === "" ? s.name() : `${key} ${s.name()}`);
  };
  walk(program, "");
  return out;
}

/** A word in single quotes, for either shell. */
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function renderBash(name: string, aliases: readonly string[], tree: readonly CommandSpec[]): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, "_")}_completion`;
  const nodes = tree.map((c) =>
    [
      `    ${quote(c.key)})`,
      `      subs=${quote(c.subcommands.map((w) => w.name).join(" "))}`,
      `      opts=${quote(c.options.map((w) => w.name).join(" "))}`,
      `      vals=${quote(c.valueOptions.map((v) => v.flag).join(" "))}`,
      `      args=${quote(c.argumentChoices.join(" "))} ;;`,
    ].join("\n"),
  );
  const choices = tree.flatMap((c) => c.valueOptions.filter((v) => v.choices.length > 0).map((v) => `    ${quote(`${c.key}|${v.flag}`)}) words=${quote(v.choices.join(" "))} ;;`));
  return [
    `# bash completion for ${name}, generated from its command tree by \`${name} completion bash\`.`,
    `# Enable it in this shell or in ~/.bashrc:  source <(${name} completion bash)`,
    `# The tree: a command's subcommands, options, options that take a value, and argument choices.`,
    `${fn}_node() {`,
    `  subs="" opts="" vals="" args=""`,
    `  case "$1" in`,
    ...nodes,
    `  esac`,
    `}`,
    `${fn}() {`,
    `  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" w words="" i subs opts vals args`,
    `  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"`,
    `  # Walk the words before the cursor down the tree; the word after an option that takes one is its value.`,
    `  ${fn}_node ""`,
    `  for ((i = 1; i < COMP_CWORD; i++)); do`,
    `    w="\${COMP_WORDS[i]}"`,
    `    if [[ " $vals " == *" $w "* ]]; then ((i++)); continue; fi`,
    `    if [[ " $subs " == *" $w "* ]]; then cmd="\${cmd:+$cmd }$w"; ${fn}_node "$cmd"; fi`,
    `  done`,
    `  if [[ -n "$prev" && " $vals " == *" $prev "* ]]; then`,
    `    # An option's value: its choices, or nothing, so that bash completes files (complete -o default).`,
    `    case "$cmd|$prev" in`,
    ...choices.map((l) => `  ${l}`),
    `    esac`,
    `  else`,
    `    words="$subs $args $opts"`,
    `  fi`,
    `  COMPREPLY=()`,
    `  [[ -n "\${words// /}" ]] && mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")`,
    `  return 0`,
    `}`,
    `complete -o default -F ${fn} ${[name, ...aliases].join(" ")}`,
    "",
  ].join("\n");
}

function renderZsh(name: string, aliases: readonly string[], tree: readonly CommandSpec[]): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
  // _describe takes "name:description"; a colon in the name is escaped.
  const described = (w: Word): string => quote(`${w.name.replace(/:/g, "\\:")}:${w.description}`);
  const nodes = tree.map((c) =>
    [
      `    ${quote(c.key)})`,
      `      subs=(${c.subcommands.map(described).join(" ")})`,
      `      opts=(${c.options.map(described).join(" ")})`,
      `      vals=(${c.valueOptions.map((v) => quote(v.flag)).join(" ")})`,
      `      args=(${c.argumentChoices.map(quote).join(" ")}) ;;`,
    ].join("\n"),
  );
  const choices = tree.flatMap((c) => c.valueOptions.filter((v) => v.choices.length > 0).map((v) => `    ${quote(`${c.key}|${v.flag}`)}) compadd -- ${v.choices.map(quote).join(" ")}; return ;;`));
  return [
    `# zsh completion for ${name}, generated from its command tree by \`${name} completion zsh\`.`,
    `# Enable it in this shell or in ~/.zshrc, after compinit:  source <(${name} completion zsh)`,
    `# The tree: a command's subcommands and options (with their descriptions), options that take a value,`,
    `# and argument choices.`,
    `${fn}_node() {`,
    `  subs=() opts=() vals=() args=()`,
    `  case "$1" in`,
    ...nodes,
    `  esac`,
    `}`,
    `${fn}() {`,
    `  local cmd="" w prev="\${words[CURRENT-1]}"`,
    `  local -a subs opts vals args`,
    `  local -i i ret=1`,
    `  # Walk the words before the cursor down the tree; the word after an option that takes one is its value.`,
    `  ${fn}_node ""`,
    `  for ((i = 2; i < CURRENT; i++)); do`,
    `    w="\${words[i]}"`,
    `    if (( \${vals[(Ie)$w]} )); then ((i++)); continue; fi`,
    `    if (( \${subs[(I)\${(b)w}:*]} )); then cmd="\${cmd:+$cmd }$w"; ${fn}_node "$cmd"; fi`,
    `  done`,
    `  if (( CURRENT > 2 && \${vals[(Ie)$prev]} )); then`,
    `    # An option's value: its choices, or files.`,
    `    case "$cmd|$prev" in`,
    ...choices.map((l) => `  ${l}`),
    `    esac`,
    `    _files`,
    `    return`,
    `  fi`,
    `  if [[ "$PREFIX" == -* ]]; then`,
    `    _describe -t options 'option' opts && ret=0`,
    `  else`,
    `    (( \${#subs} )) && _describe -t commands 'command' subs && ret=0`,
    `    (( \${#args} )) && compadd -a args && ret=0`,
    `    (( ret )) && _files && ret=0`,
    `  fi`,
    `  return ret`,
    `}`,
    `compdef ${fn} ${[name, ...aliases].join(" ")}`,
    "",
  ].join("\n");
}

/** The completion script for `shell`, for the program's name and its aliases (e.g. kubectl-switchyard). */
export function renderCompletion(program: Command, shell: Shell, aliases: readonly string[] = []): string {
  const tree = collectCommandTree(program);
  return shell === "bash" ? renderBash(program.name(), aliases, tree) : renderZsh(program.name(), aliases, tree);
}
