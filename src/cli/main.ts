// Entry point of the `switchyard` command. Subcommands live in their own files; this only parses flags,
// maps errors to exit codes and never prints a stack trace for bad input.
// Each action imports its subcommand's module when it runs (and the bundle puts each in its own chunk),
// so `--help`, `--version`, `completion` and `validate` start without loading a Kubernetes client, the
// lab or the daemons: only what a command uses is read from disk (docs/benchmarks.md, "CLI start").
import { readFileSync } from "node:fs";
import { Argument, Command, CommanderError } from "commander";

import type { ConformanceCliOptions } from "./conformance";
import type { LabUpOptions } from "./lab";
import { DEFAULT_LAB_PREFIX } from "./lab-defaults";
import type { MigrateOptions } from "./migrate";
import type { AgentCliOptions } from "./daemons";
import { packagePath, packageRoot } from "../base/package-root";
import { describeError } from "../kube/client";

/** The package's version, from the package.json the program runs from (a checkout or the image). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command()
    .name("switchyard")
    .description("Switchyard: a Kubernetes pod network with NetworkPolicy on nftables/iptables and safe live mode migration.")
    .version(packageVersion(), "-V, --version", "print the version")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  program
    .command("validate")
    .description("validate ClusterNetwork YAML as the admission webhook would; one line per error: <path>: <message>")
    .requiredOption("-f, --file <file>", "YAML file with one or more documents")
    .option("--old <file>", "the current object(s), to check the update rules (immutable fields, migrations)")
    .action(async (opts: { file: string; old?: string }) => {
      const { runValidate } = await import("./validate");
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
    .option("--control-plane <kind>", "run every case through a lab cluster instead (the API server, the controller, the agents, switchyard-cni): embedded or kubernetes")
    .option("--kubelet", "with --control-plane kubernetes: on real nodes (kubelet and containerd run every pod of the corpus; Switchyard from deploy/)")
    .action(async (file: string, opts: ConformanceCliOptions) => {
      const { runConformanceCommand } = await import("./conformance");
      code = await runConformanceCommand(file, opts);
    });

  const migrate = program
    .command("migrate")
    .description("change the mode of a live cluster: canary nodes first, health-gated batches, automatic rollback")
    .option("--to <mode>", "the target mode: vxlan, ipip, host-gw or bgp")
    .option("--canary <n>", "how many nodes migrate first")
    .option("--batch <n|p%>", "nodes per batch after the canaries, a count or a percentage")
    .option("--bgp-as <asn>", "AS number when moving to bgp without spec.bgp (default 64512)")
    .option("--bgp-topology <t>", "full-mesh, route-reflectors or tor when moving to bgp without spec.bgp")
    .option("--wait", "follow the migration until it completes or rolls back (exit 0 only when completed)")
    .option("--timeout <seconds>", "how long --wait waits", "600")
    .option("--name <name>", "the ClusterNetwork", "default")
    .option("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    .action(async (opts: MigrateOptions) => {
      if (!opts.to) {
        console.error("error: --to MODE is required (or use: migrate pause|resume|abort|retry|status)");
        code = 2;
        return;
      }
      const { runMigrateTo } = await import("./migrate");
      code = await runMigrateTo(opts);
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
      .option("--name <name>", "the ClusterNetwork", "default")
      .option("--kubeconfig <file>", "kubeconfig")
      .action(async (opts: { name: string; kubeconfig?: string }) => {
        const { runMigrateControl } = await import("./migrate");
        code = await runMigrateControl(action, opts);
      });
  }
  migrate
    .command("status")
    .description("show the migration: phase, batches, nodes done, gate results, conditions")
    .option("--name <name>", "the ClusterNetwork", "default")
    .option("--kubeconfig <file>", "kubeconfig")
    .option("--json", "the raw status.migration")
    .action(async (opts: { name: string; kubeconfig?: string; json?: boolean }) => {
      const { runMigrateStatus } = await import("./migrate");
      code = await runMigrateStatus(opts);
    });

  program
    .command("controller")
    .description("run the controller (watches ClusterNetwork, NetworkPolicies, Pods, Namespaces, Nodes; publishes NodeNetworks)")
    .option("--identity <id>", "leader-election identity (default: pid-based)")
    .option("--lease-namespace <ns>", "namespace of the leader-election Lease", "switchyard-system")
    .option("--metrics-port <port>", "serve Prometheus metrics (/metrics) and the probes (/healthz, /readyz) on PORT")
    .option("--metrics-address <ip>", "the address the metrics port listens on (0.0.0.0: reachable from outside the node)", "127.0.0.1")
    .option("--resync <seconds>", "full relist period (lost-event repair; watches carry every change)", "300")
    .option("--lease-duration <seconds>", "leader-election lease duration (a standby takes over this long after a crash)", "15")
    .action(async (opts: { identity?: string; metricsPort?: string; metricsAddress?: string; leaseNamespace?: string; resync?: string; leaseDuration?: string }) => {
      const { runControllerCommand } = await import("./daemons");
      code = await runControllerCommand(opts);
    });

  program
    .command("agent")
    .description("run the node agent for one node (applies its NodeNetwork to the kernel, reports status)")
    .requiredOption("--node <name>", "the node this agent serves")
    .option("--netns <name>", "apply to this network namespace instead of the agent's own (the lab)")
    .option("--run-dir <dir>", "per-node state directory (BIRD files, last applied hashes)")
    .option("--repair <seconds>", "drift repair period", "5")
    .option("--cni-bin-dir <dir>", "where the container runtime finds CNI plugins (switchyard-cni is installed here)", "/opt/cni/bin")
    .option("--cni-conf-dir <dir>", "where the container runtime finds network configurations (the conflist is written here)", "/etc/cni/net.d")
    .option("--cni-state-dir <dir>", "the markers switchyard-cni reads (node ready, pods whose policy is programmed)", "/run/switchyard")
    .option("--cni-data-dir <dir>", "switchyard-cni's durable address allocations", "/var/lib/switchyard/cni")
    .option("--cni-policy-wait <seconds>", "how long a pod's CNI ADD waits for its policy to be programmed (0: no wait)", "10")
    .option("--cni-version <version>", "the conflist's cniVersion (lower it when the node's chained plugins are older than 1.1.0)", "1.1.0")
    .option("--cni-chain <plugins>", "plugins chained after switchyard-cni, comma-separated, or none (portmap: hostPorts)", "portmap")
    .option("--no-cni", "do not install the CNI plugin (another component wires pods)")
    .option("--health-port <port>", "serve the probes (/healthz; /readyz: this node's current plan is applied) on PORT")
    .option("--health-address <ip>", "the address the health port listens on", "127.0.0.1")
    .option("--uninstall", "remove everything the agent put on the node (policy tables, BIRD, the CNI plugin and conflist), then exit")
    .option("--bird-container", "BIRD runs in a container of its own (`switchyard bird`): write its config, never start it")
    .action(async (opts: AgentCliOptions) => {
      const { runAgentCommand } = await import("./daemons");
      code = await runAgentCommand(opts);
    });

  program
    .command("bird")
    .description("run the node's BIRD (the agent DaemonSet's bird container): whenever the agent has written bird.conf; on SIGTERM, shut it down for a graceful restart")
    .option("--run-dir <dir>", "the agent's run dir (BIRD's files are in its bird/ subdirectory)", "/run/switchyard")
    .option("--netns <name>", "run BIRD in this network namespace instead of this process's (the lab)")
    .action(async (opts: { runDir: string; netns?: string }) => {
      const { runBirdCommand } = await import("./daemons");
      code = await runBirdCommand(opts);
    });

  program
    .command("demo")
    .description("the lab demo on the embedded default (the README's main job)")
    .action(async () => {
      const { runDemo } = await import("./demo");
      code = await runDemo({ root: packageRoot() });
    });

  const labIo = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) };
  const lab = program.command("lab").description("the embedded default: a whole cluster of network namespaces on this machine");
  const withUpOptions = (c: Command): Command =>
    c
      .option("--prefix <prefix>", "namespace prefix of the lab (ends with '-')", DEFAULT_LAB_PREFIX)
      .option("--nodes <n>", "nodes", "4")
      .option("--subnets <k>", "underlay subnets (nodes spread over them)", "2")
      .option("--mode <mode>", "vxlan, ipip, host-gw or bgp: applies samples/<mode>.yaml (bgp: top-of-rack)", "vxlan")
      .option("--cluster-network <file>", "apply this ClusterNetwork YAML instead of the mode's sample")
      .option("--pods-per-node <n>", "generated pods per node", "2")
      .option("--processes", "run the controller and the agents as child processes instead of in the supervisor")
      .option("--control-plane <kind>", "embedded (the in-process API server emulator) or kubernetes (the real kube-apiserver and etcd, built by hack/build-kube.sh or from KUBEBUILDER_ASSETS)", "embedded")
      .option("--kubelet", "real nodes (with --control-plane kubernetes): kubelet, containerd and runc per node, kube-controller-manager and kube-scheduler, Switchyard installed from deploy/ as workloads (images built by hack/build-images.sh)")
      .option("--timeout <seconds>", "give up when not Ready by then", "120");
  withUpOptions(lab.command("up").description("start a lab cluster in the background; prints the KUBECONFIG to use"))
    .action(async (opts: LabUpOptions) => {
      const { runLabUp } = await import("./lab");
      code = await runLabUp(opts, labIo);
    });
  withUpOptions(lab.command("serve", { hidden: true }).description("the supervisor process `lab up` starts"))
    .action(async (opts: LabUpOptions) => {
      const { runLabServe } = await import("./lab");
      code = await runLabServe(opts, labIo);
    });
  lab
    .command("status")
    .description("nodes (netns, IP, subnet, block, mode, applied) and pods (node, netns, IP) of a lab")
    .option("--prefix <prefix>", "namespace prefix of the lab", DEFAULT_LAB_PREFIX)
    .option("--json", "machine-readable output")
    .action(async (opts: { prefix?: string; json?: boolean }) => {
      const { runLabStatus } = await import("./lab");
      code = await runLabStatus(opts, labIo);
    });
  lab
    .command("probe")
    .description("the pod-to-pod reachability matrix, with real packets")
    .option("--prefix <prefix>", "namespace prefix of the lab", DEFAULT_LAB_PREFIX)
    .option("--port <port>", "destination port", "80")
    .option("--protocol <protocol>", "TCP, UDP or SCTP", "TCP")
    .option("--timeout <ms>", "per-probe timeout (what a denied cell costs)", "800")
    .option("--json", "machine-readable output")
    .action(async (opts: { prefix?: string; port?: string; protocol?: string; timeout?: string; json?: boolean }) => {
      const { runLabProbe } = await import("./lab");
      code = await runLabProbe(opts, labIo);
    });
  lab
    .command("down")
    .description("stop a lab and remove everything it made (also after a crash)")
    .option("--prefix <prefix>", "namespace prefix of the lab", DEFAULT_LAB_PREFIX)
    .action(async (opts: { prefix?: string }) => {
      const { runLabDown } = await import("./lab");
      code = await runLabDown(opts, labIo);
    });

  program
    .command("completion")
    .description("print a shell completion script; enable it with: source <(switchyard completion bash) (or zsh)")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .action(async (shell: "bash" | "zsh") => {
      const { renderCompletion } = await import("./completion");
      process.stdout.write(renderCompletion(program, shell, ["kubectl-switchyard"]));
    });

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
