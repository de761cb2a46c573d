// Entry point of the `switchyard` command. Subcommands live in their own files; this only parses flags,
// maps errors to exit codes and never prints a stack trace for bad input.
// Each action imports its subcommand's module when it runs (and the bundle puts each in its own chunk),
// so `--help`, `--version`, `completion` and `validate` start without loading a Kubernetes client, the
// lab or the daemons: only what a command uses is read from disk (docs/benchmarks.md, "CLI start").
import { readFileSync } from "node:fs";
import { Argument, Command, CommanderError, Option } from "commander";

import { BGP_TOPOLOGIES, MODES } from "../api/mode-names";
import { PROTOCOLS } from "../model/cluster";
import { addressOption, choiceOption, CNI_CHAIN_PLUGINS, integerOption, kubeconfigOption, nameOption, parseBatch, parseCniChain, RANGES } from "./flags";

import type { ConformanceCliOptions } from "./conformance";
import type { LabProbeOptions, LabUpOptions } from "./lab";
import { DEFAULT_LAB_PREFIX } from "./lab-defaults";
import type { MigrateOptions } from "./migrate";
import type { AgentCliOptions, ControllerCliOptions } from "./daemons";
import { packagePath, packageRoot } from "../base/package-root";
import { describeError } from "../kube/client";

const POLICY_BACKENDS = ["nftables", "iptables"] as const;
const CONTROL_PLANES = ["embedded", "kubernetes"] as const;
/** What switchyard-cni speaks (cni/internal/plugin: version.PluginSupports). */
const CNI_VERSIONS = ["1.1.0", "1.0.0", "0.4.0", "0.3.1", "0.3.0"] as const;

/**
 * `migrate --name X status`: --name and --kubeconfig typed before the subcommand are migrate's own; the
 * subcommand takes them unless it was given its own, rather than silently acting on "default" elsewhere.
 */
export function givenBefore(cmd: Command): { name?: string; kubeconfig?: string } {
  const parent = cmd.parent!;
  const out: { name?: string; kubeconfig?: string } = {};
  for (const key of ["name", "kubeconfig"] as const) {
    const v = parent.getOptionValue(key) as string | undefined;
    if (parent.getOptionValueSource(key) === "cli" && cmd.getOptionValueSource(key) !== "cli" && v !== undefined) out[key] = v;
  }
  return out;
}

/** The package's version, from the package.json the program runs from (a checkout or the image). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as { version: string }).version;
}

/** Where commander writes help and usage errors (a test passes its own). */
export interface ProgramOutput {
  readonly writeOut: (s: string) => void;
  readonly writeErr: (s: string) => void;
}
const STDIO: ProgramOutput = { writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) };

/**
 * The whole command tree; every action reports its exit code through `setCode`. Apart from main so a test
 * can read every option (and parse a command line without running the action it names).
 */
export function buildProgram(setCode: (code: number) => void, output: ProgramOutput = STDIO): Command {
  const program = new Command()
    .name("switchyard")
    .description("Switchyard: a Kubernetes pod network with NetworkPolicy on nftables/iptables and safe live mode migration.")
    .version(packageVersion(), "-V, --version", "print the version")
    .exitOverride()
    // Options after a subcommand belong to it (with migrate's below: `migrate status --name X`).
    .enablePositionalOptions()
    .configureOutput(output);

  program
    .command("validate")
    .description("validate ClusterNetwork YAML as the admission webhook would; one line per error: FILE:LINE:COL: <path>: <message>; exit 0 valid, 1 invalid, 2 unreadable")
    .requiredOption("-f, --file <file>", "YAML file with one or more documents (a kind: List is expanded), or - for standard input")
    .option("--old <file>", "the current object(s), to check the update rules (immutable fields, migrations); - for standard input")
    .action(async (opts: { file: string; old?: string }) => {
      const { runValidate } = await import("./validate");
      setCode(runValidate(opts, { out: (l) => console.log(l), err: (l) => console.error(l) }));
    });

  program
    .command("conformance")
    .description("run a NetworkPolicy conformance corpus (FORMAT.md schema) on the real kernel; prints `N passed, M failed`")
    .argument("<file>", "the corpus YAML, e.g. ../shared/conformance/netpol-upstream.yaml")
    .option("--case <id...>", "only these case ids")
    .addOption(choiceOption("--backend <backend>", "the policy backend", POLICY_BACKENDS, { default: "nftables" }))
    .addOption(integerOption("--nodes <n>", "nodes to spread the pods over", { min: 3, max: 20 }, { default: 3 }))
    .addOption(integerOption("--timeout <ms>", "per-probe timeout in ms (what a denied cell costs)", RANGES.probeTimeoutMs, { unit: "ms", default: 800 }))
    .option("-v, --verbose", "print cross-check notes for every case")
    .addOption(choiceOption("--control-plane <kind>", "run every case through a lab cluster instead (the API server, the controller, the agents, switchyard-cni)", CONTROL_PLANES))
    .option("--kubelet", "with --control-plane kubernetes: on real nodes (kubelet and containerd run every pod of the corpus; Switchyard from deploy/)")
    .action(async (file: string, opts: ConformanceCliOptions) => {
      const { runConformanceCommand } = await import("./conformance");
      setCode(await runConformanceCommand(file, opts));
    });

  const migrate = program
    .command("migrate")
    .description("change the mode of a live cluster: canary nodes first, health-gated batches, automatic rollback")
    // `migrate status --name X --kubeconfig F`: options after a subcommand are the subcommand's. Without
    // this, migrate's own --name and --kubeconfig took them and status read the default object elsewhere.
    .enablePositionalOptions()
    .addOption(choiceOption("--to <mode>", "the target mode", MODES))
    .addOption(integerOption("--canary <n>", "how many nodes migrate first", { min: 1, max: 10_000 }))
    .option("--batch <n|p%>", "nodes per batch after the canaries, a count (>= 1) or a percentage (1%..100%)", parseBatch)
    .addOption(integerOption("--bgp-as <asn>", "AS number when moving to bgp without spec.bgp (default 64512)", RANGES.asNumber))
    .addOption(choiceOption("--bgp-topology <t>", "the BGP topology when moving to bgp without spec.bgp", BGP_TOPOLOGIES))
    .option("--wait", "follow the migration until it completes or rolls back (exit 0 only when completed)")
    .addOption(integerOption("--timeout <seconds>", "how long --wait waits", { min: 1, max: 86_400 }, { unit: "seconds", default: 600 }))
    .addOption(nameOption("--name <name>", "the ClusterNetwork", { default: "default" }))
    .addOption(kubeconfigOption())
    .action(async (opts: Omit<MigrateOptions, "to"> & { to?: MigrateOptions["to"] }) => {
      if (!opts.to) {
        console.error("error: --to MODE is required (or use: migrate pause|resume|abort|retry|status)");
        setCode(2);
        return;
      }
      const { runMigrateTo } = await import("./migrate");
      setCode(await runMigrateTo({ ...opts, to: opts.to }));
    });
  const what = {
    pause: "pause the migration in progress (nothing moves until resume)",
    resume: "resume a paused migration",
    abort: "abort the migration in progress: roll back in reverse batch order",
    retry: "try again a migration that rolled back, failed or was blocked (spec.mode unchanged)",
  };
  for (const action of ["pause", "resume", "abort", "retry"] as const) {
    migrate
      .command(action)
      .description(what[action])
      .addOption(nameOption("--name <name>", "the ClusterNetwork", { default: "default" }))
      .addOption(kubeconfigOption("kubeconfig"))
      .action(async (opts: { name: string; kubeconfig?: string }, cmd: Command) => {
        const { runMigrateControl } = await import("./migrate");
        setCode(await runMigrateControl(action, { ...opts, ...givenBefore(cmd) }));
      });
  }
  migrate
    .command("status")
    .description("show the migration: phase, batches, nodes done, gate results, conditions")
    .addOption(nameOption("--name <name>", "the ClusterNetwork", { default: "default" }))
    .addOption(kubeconfigOption("kubeconfig"))
    .option("--json", "the raw status.migration")
    .action(async (opts: { name: string; kubeconfig?: string; json?: boolean }, cmd: Command) => {
      const { runMigrateStatus } = await import("./migrate");
      setCode(await runMigrateStatus({ ...opts, ...givenBefore(cmd) }));
    });

  program
    .command("controller")
    .description("run the controller (watches ClusterNetwork, NetworkPolicies, Pods, Namespaces, Nodes; publishes NodeNetworks)")
    .option("--identity <id>", "leader-election identity (default: pid-based)")
    .addOption(nameOption("--lease-namespace <ns>", "namespace of the leader-election Lease", { label: true, default: "switchyard-system" }))
    .addOption(integerOption("--metrics-port <port>", "serve Prometheus metrics (/metrics) and the probes (/healthz, /readyz) on PORT", RANGES.port))
    .addOption(addressOption("--metrics-address <ip>", "the address the metrics port listens on (0.0.0.0: reachable from outside the node)", "127.0.0.1"))
    .addOption(integerOption("--resync <seconds>", "full relist period (lost-event repair; watches carry every change)", RANGES.resyncSeconds, { unit: "seconds", default: 300 }))
    .addOption(integerOption("--lease-duration <seconds>", "leader-election lease duration (a standby takes over this long after a crash)", RANGES.leaseSeconds, { unit: "seconds", default: 15 }))
    .action(async (opts: ControllerCliOptions) => {
      const { runControllerCommand } = await import("./daemons");
      setCode(await runControllerCommand(opts));
    });

  program
    .command("agent")
    .description("run the node agent for one node (applies its NodeNetwork to the kernel, reports status)")
    .addOption(nameOption("--node <name>", "the node this agent serves").makeOptionMandatory())
    .option("--netns <name>", "apply to this network namespace instead of the agent's own (the lab)")
    .option("--run-dir <dir>", "per-node state directory (BIRD files, last applied hashes)")
    .option("--state-dir <dir>", "where the last applied plan is kept across reboots, put in force at start before the API answers (default: the run dir)")
    .addOption(integerOption("--repair <seconds>", "drift repair period", RANGES.repairSeconds, { unit: "seconds", default: 5 }))
    .addOption(integerOption("--watch-check <seconds>", "how often to check that the NodeNetwork watch still follows the object (a stalled stream is replaced); 0: never", RANGES.watchCheckSeconds, { unit: "seconds", default: 15 }))
    .option("--cni-bin-dir <dir>", "where the container runtime finds CNI plugins (switchyard-cni is installed here)", "/opt/cni/bin")
    .option("--cni-conf-dir <dir>", "where the container runtime finds network configurations (the conflist is written here)", "/etc/cni/net.d")
    .option("--cni-state-dir <dir>", "the markers switchyard-cni reads (node ready, pods whose policy is programmed)", "/run/switchyard")
    .option("--cni-data-dir <dir>", "switchyard-cni's durable address allocations", "/var/lib/switchyard/cni")
    .addOption(integerOption("--cni-policy-wait <seconds>", "how long a pod's CNI ADD waits for its policy to be programmed (0: no wait)", RANGES.cniPolicyWaitSeconds, { unit: "seconds", default: 10 }))
    .addOption(choiceOption("--cni-version <version>", "the conflist's cniVersion (lower it when the node's chained plugins are older than 1.1.0)", CNI_VERSIONS, { default: "1.1.0" }))
    .addOption(new Option("--cni-chain <plugins>", `plugins chained after switchyard-cni, comma-separated (${CNI_CHAIN_PLUGINS.join(", ")}), or none (portmap: hostPorts)`).argParser(parseCniChain).default(["portmap"], "portmap"))
    .option("--no-cni", "do not install the CNI plugin (another component wires pods)")
    .addOption(integerOption("--health-port <port>", "serve the probes (/healthz; /readyz: this node's current plan is applied) on PORT", RANGES.port))
    .addOption(addressOption("--health-address <ip>", "the address the health port listens on", "127.0.0.1"))
    .addOption(integerOption("--metrics-port <port>", "serve Prometheus metrics (/metrics, and the probes) on PORT", RANGES.port))
    .addOption(addressOption("--metrics-address <ip>", "the address the metrics port listens on (e.g. the node's own address, for a scraper outside the node)", "127.0.0.1"))
    .option("--uninstall", "remove everything the agent put on the node (policy tables, BIRD, the CNI plugin and conflist), then exit")
    .option("--bird-container", "BIRD runs in a container of its own (`switchyard bird`): write its config, never start it")
    .action(async (opts: AgentCliOptions) => {
      const { runAgentCommand } = await import("./daemons");
      setCode(await runAgentCommand(opts));
    });

  program
    .command("bird")
    .description("run the node's BIRD (the agent DaemonSet's bird container): whenever the agent has written bird.conf; on SIGTERM, shut it down for a graceful restart")
    .option("--run-dir <dir>", "the agent's run dir (BIRD's files are in its bird/ subdirectory)", "/run/switchyard")
    .option("--netns <name>", "run BIRD in this network namespace instead of this process's (the lab)")
    .action(async (opts: { runDir: string; netns?: string }) => {
      const { runBirdCommand } = await import("./daemons");
      setCode(await runBirdCommand(opts));
    });

  program
    .command("demo")
    .description("the lab demo on the embedded default (the README's main job)")
    .action(async () => {
      const { runDemo } = await import("./demo");
      setCode(await runDemo({ root: packageRoot() }));
    });

  const labIo = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) };
  const lab = program.command("lab").description("the embedded default: a whole cluster of network namespaces on this machine");
  const withUpOptions = (c: Command): Command =>
    c
      .option("--prefix <prefix>", "namespace prefix of the lab (ends with '-')", DEFAULT_LAB_PREFIX)
      .addOption(integerOption("--nodes <n>", "nodes", { min: 1, max: 50 }, { default: 4 }))
      .addOption(integerOption("--subnets <k>", "underlay subnets (nodes spread over them)", { min: 1, max: 10 }, { default: 2 }))
      .addOption(choiceOption("--mode <mode>", "applies samples/<mode>.yaml (bgp: top-of-rack)", MODES, { default: "vxlan" }))
      .option("--cluster-network <file>", "apply this ClusterNetwork YAML instead of the mode's sample")
      .addOption(integerOption("--pods-per-node <n>", "generated pods per node", { min: 0, max: 20 }, { default: 2 }))
      .option("--processes", "run the controller and the agents as child processes instead of in the supervisor")
      .addOption(choiceOption("--control-plane <kind>", "embedded (the in-process API server emulator) or kubernetes (the real kube-apiserver and etcd, built by hack/build-kube.sh or from KUBEBUILDER_ASSETS)", CONTROL_PLANES, { default: "embedded" }))
      .option("--kubelet", "real nodes (with --control-plane kubernetes): kubelet, containerd and runc per node, kube-controller-manager and kube-scheduler, Switchyard installed from deploy/ as workloads (images built by hack/build-images.sh)")
      .addOption(integerOption("--timeout <seconds>", "give up when not Ready by then", { min: 20, max: 3_600 }, { unit: "seconds", default: 120 }));
  withUpOptions(lab.command("up").description("start a lab cluster in the background; prints the KUBECONFIG to use"))
    .action(async (opts: LabUpOptions) => {
      const { runLabUp } = await import("./lab");
      setCode(await runLabUp(opts, labIo));
    });
  withUpOptions(lab.command("serve", { hidden: true }).description("the supervisor process `lab up` starts"))
    .action(async (opts: LabUpOptions) => {
      const { runLabServe } = await import("./lab");
      setCode(await runLabServe(opts, labIo));
    });
  lab
    .command("status")
    .description("nodes (netns, IP, subnet, block, mode, applied) and pods (node, netns, IP) of a lab")
    .option("--prefix <prefix>", "namespace prefix of the lab", DEFAULT_LAB_PREFIX)
    .option("--json", "machine-readable output")
    .action(async (opts: { prefix?: string; json?: boolean }) => {
      const { runLabStatus } = await import("./lab");
      setCode(await runLabStatus(opts, labIo));
    });
  lab
    .command("probe")
    .description("the pod-to-pod reachability matrix, with real packets")
    .option("--prefix <prefix>", "namespace prefix of the lab", DEFAULT_LAB_PREFIX)
    .addOption(integerOption("--port <port>", "destination port", RANGES.port, { default: 80 }))
    .addOption(choiceOption("--protocol <protocol>", "the protocol (any case)", PROTOCOLS, { default: "TCP", ignoreCase: true }))
    .addOption(integerOption("--timeout <ms>", "per-probe timeout (what a denied cell costs)", RANGES.probeTimeoutMs, { unit: "ms", default: 800 }))
    .option("--json", "machine-readable output")
    .action(async (opts: LabProbeOptions) => {
      const { runLabProbe } = await import("./lab");
      setCode(await runLabProbe(opts, labIo));
    });
  lab
    .command("down")
    .description("stop a lab and remove everything it made (also after a crash)")
    .option("--prefix <prefix>", "namespace prefix of the lab", DEFAULT_LAB_PREFIX)
    .action(async (opts: { prefix?: string }) => {
      const { runLabDown } = await import("./lab");
      setCode(await runLabDown(opts, labIo));
    });

  program
    .command("completion")
    .description("print a shell completion script; enable it with: source <(switchyard completion bash) (or zsh)")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .action(async (shell: "bash" | "zsh") => {
      const { renderCompletion } = await import("./completion");
      process.stdout.write(renderCompletion(program, shell, ["kubectl-switchyard"]));
    });

  return program;
}

export async function main(argv: string[], output: ProgramOutput = STDIO): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => {
    code = c;
  }, output);
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    // kfc rejects with the API server's answer (status and message), not an Error.
    console.error(`error: ${describeError(e)}`);
    return 1;
  }
  return code;
}
