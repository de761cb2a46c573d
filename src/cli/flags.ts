// Flag values, parsed and checked while commander reads the command line, so a bad value stops the command
// (exit 2, naming the flag and the value) before anything starts. Why not `Number(text)` in the actions:
// `Number("abc")` is NaN and `Number("")` is 0, and a NaN or 0 period became a timer that fired at once,
// forever (`controller --resync abc` LISTed the API server in a tight loop). Each parser here accepts only
// what it documents: whole numbers in decimal within a range, one of a fixed set of names, an IP address.
// Commander calls a parser for values given on the command line only; defaults are given already parsed.
import { accessSync, constants, statSync } from "node:fs";
import { isIP } from "node:net";
import { InvalidArgumentError, Option } from "commander";

/** A whole number in decimal (no sign for positive numbers, no exponent, no hex, no spaces). */
const INTEGER = /^-?(0|[1-9][0-9]*)$/;

export type Range = { readonly min: number; readonly max: number };

/** Parses `text` as a whole number in `range`; throws InvalidArgumentError saying what is expected. */
export function parseInteger(text: string, range: Range, unit = ""): number {
  const what = `a whole number${unit === "" ? "" : ` of ${unit}`} from ${range.min} to ${range.max}`;
  if (!INTEGER.test(text)) throw new InvalidArgumentError(`Expected ${what}.`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < range.min || n > range.max) throw new InvalidArgumentError(`Expected ${what}.`);
  return n;
}

/** An option taking a whole number in `range` (`unit` names it in the message: "seconds", "ms"). */
export function integerOption(flags: string, description: string, range: Range, opts: { unit?: string; default?: number } = {}): Option {
  const o = new Option(flags, `${description} (${range.min}..${range.max})`).argParser((v: string) => parseInteger(v, range, opts.unit));
  return opts.default === undefined ? o : o.default(opts.default);
}

/** The ranges the commands use; one place, so the help text and the checks agree. */
export const RANGES = {
  port: { min: 1, max: 65535 },
  // A full relist of every watched kind: more often than every 5 s is a load on the API server, not repair.
  resyncSeconds: { min: 5, max: 86_400 },
  // The renewal runs at a third of it; below 2 s a busy event loop loses the lease it holds.
  leaseSeconds: { min: 2, max: 3_600 },
  repairSeconds: { min: 1, max: 3_600 },
  // 0 turns the agent's watch check off.
  watchCheckSeconds: { min: 0, max: 3_600 },
  cniPolicyWaitSeconds: { min: 0, max: 600 },
  probeTimeoutMs: { min: 50, max: 10_000 },
  asNumber: { min: 1, max: 4_294_967_295 },
} as const satisfies Record<string, Range>;

/**
 * An option whose value is one of `choices`; commander prints them in --help and the completion scripts
 * offer them. With `ignoreCase`, `tcp` is read as `TCP` (the value the program gets is the listed one).
 */
export function choiceOption<T extends string>(flags: string, description: string, choices: readonly T[], opts: { default?: T; ignoreCase?: boolean } = {}): Option {
  const o = new Option(flags, description).choices(choices);
  // choices() installed an exact-match parser; replace it to say the value back, and to fold case.
  o.argParser((v: string) => {
    const found = choices.find((c) => (opts.ignoreCase ? c.toLowerCase() === v.toLowerCase() : c === v));
    if (found === undefined) throw new InvalidArgumentError(`Allowed choices are ${choices.join(", ")}.`);
    return found;
  });
  return opts.default === undefined ? o : o.default(opts.default);
}

/** An IPv4 or IPv6 address to listen on (`0.0.0.0`: every address). */
export function addressOption(flags: string, description: string, dflt: string): Option {
  return new Option(flags, description)
    .argParser((v: string) => {
      if (isIP(v) === 0) throw new InvalidArgumentError("Expected an IPv4 or IPv6 address such as 127.0.0.1 or 0.0.0.0.");
      return v;
    })
    .default(dflt);
}

/** `--batch`: a count of nodes (>= 1) or a percentage 1%..100%, as spec.migration.batchSize takes them. */
export function parseBatch(text: string): number | string {
  if (/^(100|[1-9][0-9]?)%$/.test(text)) return text;
  if (INTEGER.test(text) && Number(text) >= 1 && Number.isSafeInteger(Number(text))) return Number(text);
  throw new InvalidArgumentError('Expected a whole number of nodes (>= 1) or a percentage "1%".."100%".');
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Kubernetes object name: `label` for namespaces (RFC 1123 label), else a DNS subdomain (nodes, objects). */
export function nameOption(flags: string, description: string, opts: { label?: boolean; default?: string } = {}): Option {
  const o = new Option(flags, description).argParser((v: string) => {
    const ok = opts.label ? DNS_LABEL.test(v) : v.length <= 253 && DNS_SUBDOMAIN.test(v);
    if (!ok) throw new InvalidArgumentError(`Expected a Kubernetes ${opts.label ? "namespace name (at most 63" : "object name (at most 253"} lower-case letters, digits and '-'${opts.label ? "" : " or '.'"}, starting and ending with a letter or digit).`);
    return v;
  });
  return opts.default === undefined ? o : o.default(opts.default);
}

/**
 * `--kubeconfig FILE`: the file must be there and readable. The Kubernetes client falls back to other
 * configurations (~/.kube/config, in-cluster, localhost) when the one named is missing, so a typo would
 * silently act on another cluster; kubectl refuses it too.
 */
export function kubeconfigOption(description = "kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)"): Option {
  return new Option("--kubeconfig <file>", description).argParser((v: string) => {
    let why: string | undefined;
    try {
      if (!statSync(v).isFile()) why = "it is not a file";
      else accessSync(v, constants.R_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    }
    if (why !== undefined) throw new InvalidArgumentError(`Cannot read the kubeconfig: ${why}.`);
    return v;
  });
}

/** The plugins `--cni-chain` can chain after switchyard-cni (src/cli/daemons.ts has their configurations). */
export const CNI_CHAIN_PLUGINS = ["portmap", "bandwidth"] as const;
export type CniChainPlugin = (typeof CNI_CHAIN_PLUGINS)[number];

/** `--cni-chain portmap,bandwidth` (or `none`): the names, each known, none twice. */
export function parseCniChain(text: string): CniChainPlugin[] {
  if (text === "none") return [];
  const out: CniChainPlugin[] = [];
  for (const name of text.split(",").map((s) => s.trim())) {
    const known = CNI_CHAIN_PLUGINS.find((p) => p === name);
    if (known === undefined) throw new InvalidArgumentError(`Unknown plugin ${JSON.stringify(name)}: expected a comma-separated list of ${CNI_CHAIN_PLUGINS.join(", ")}, or none.`);
    if (out.includes(known)) throw new InvalidArgumentError(`${known} is listed twice.`);
    out.push(known);
  }
  return out;
}
