// Entry point of the `switchyard` command. Subcommands live in their own files; this only parses flags,
// maps errors to exit codes and never prints a stack trace for bad input.
import { Command, CommanderError } from "commander";
import { join } from "node:path";
import { runConformanceCommand, type ConformanceCliOptions } from "./conformance";
import { runAgentCommand, runControllerCommand } from "./daemons";
import { runDemo } from "./demo";
import { runValidate } from "./validate";

const ROOT = join(import.meta.dirname, "..", "..");

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command()
    .name("switchyard")
    .description("Switchyard: a Kubernetes pod network with NetworkPolicy on nftables/iptables and safe live mode migration.")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  program
    .command("validate")
    .description("validate ClusterNetwork YAML as the admission webhook would; one line per error: <path>: <message>")
    .requiredOption("-f, --file <file>", "YAML file with one or more documents")
    .option("--old <file>", "the current object(s), to check the update rules (immutable fields, migrations)")
    .action((opts: { file: string; old?: string }) => {
      code = runValidate(opts, { out: (l) => console.log(l), err: (l) => console.error(l) });
    });

  program
    .command("conformance")
    .description("run a NetworkPolicy conformance corpus (FORMAT.md schema) on the real kernel; prints `N passed, M failed`")
    .argument("<file>", "the corpus YAML, e.g. ../shared/conformance/netpol-upstream.yaml")
    .option("--case <id...>", "only these case ids")
    .option("--backend <backend>", "nftables or iptables", "nftables")
    .option("--nodes <n>", "nodes to spread the pods over (>= 3)", "3")
    .option("--timeout <ms>", "per-probe timeout in ms (what a denied cell costs)", "800")
    .option("-v, --verbose", "print cross-check notes for every case")
    .action(async (file: string, opts: ConformanceCliOptions) => {
      code = await runConformanceCommand(file, opts);
    });

  program
    .command("controller")
    .description("run the controller (watches ClusterNetwork, NetworkPolicies, Pods, Namespaces, Nodes; publishes NodeNetworks)")
    .option("--identity <id>", "leader-election identity (default: pid-based)")
    .option("--lease-namespace <ns>", "namespace of the leader-election Lease", "switchyard-system")
    .option("--metrics-port <port>", "serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    .option("--resync <seconds>", "full relist period", "30")
    .action(async (opts: { identity?: string; metricsPort?: string; leaseNamespace?: string; resync?: string }) => {
      code = await runControllerCommand(opts);
    });

  program
    .command("agent")
    .description("run the node agent for one node (applies its NodeNetwork to the kernel, reports status)")
    .requiredOption("--node <name>", "the node this agent serves")
    .option("--netns <name>", "apply to this network namespace instead of the agent's own (the lab)")
    .option("--run-dir <dir>", "per-node state directory (BIRD files, last applied hashes)")
    .option("--repair <seconds>", "drift repair period", "5")
    .action(async (opts: { node: string; netns?: string; runDir?: string; repair?: string }) => {
      code = await runAgentCommand(opts);
    });

  program
    .command("demo")
    .description("the lab demo on the embedded default (the README's main job)")
    .action(async () => {
      code = await runDemo({ root: ROOT });
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
  return code;
}
