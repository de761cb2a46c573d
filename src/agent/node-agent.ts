// The node agent wired to the API: it watches only its own NodeNetwork, applies the plan to its node's
// kernel (routing devices/entries/routes and NAT, BIRD when the node speaks BGP, then the NetworkPolicy
// table, which is replaced atomically and so never has an open window), and reports what it applied
// (generation, plan hash, capabilities, problems).
//
// Fail closed: the first apply waits for the plan from the API; when the API is unreachable the agent
// keeps enforcing the last applied plan and its repair timer keeps putting back what someone removed.
// A restarted agent finds its own state on disk (the last applied policy hash) and rewrites nothing that
// is already in force, so a restart does not disturb traffic.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { GenericKind, K8s, kind } from "kubernetes-fluent-client";
import type { NodeNetworkSpec } from "../api/node-network";
import type { NodePolicySlice } from "../compile/policy";
import type { RoutingPlan } from "../model/routing-plan";
import { transportInKernel } from "../modes/registry";
import { NodeNetworkGVK } from "../kube/kinds";
import { withoutNulls } from "../kube/objects";
import { KfcClient } from "../kube/kfc-client";
import { resourcePath, restGetMetadata } from "../kube/rest-writes";
import { formatCidr, networkOf, parseIPv4 } from "../api/ipv4";
import { createLogger, type Logger } from "../base/log";
import { CoalescingScheduler } from "../base/scheduler";
import { annotationPath, UNDERLAY_CIDR_ANNOTATION, UNDERLAY_MTU_ANNOTATION } from "../api/annotations";
import { applyBirdConfig, birdPaths, birdProtocols, stopBird } from "./bird";
import { resolveBgpPasswords } from "./bgp-passwords";
import { AgentMetrics } from "./metrics";
import { runCommand } from "../base/exec";
import type { AppliedPolicy, PolicyBackendName } from "./policy/backend";
import { POLICY_BACKENDS, policyBackend } from "./policy/backends";
import { removeStaleScratchNetns } from "./policy/scratch";
import { putPolicyInForce } from "./policy/put-in-force";
import { checkModeRequirements, detectCapabilities, type Capabilities } from "./capabilities";
import { applyRoutingPlan } from "./routing/apply";
import { invalidPlanConditions, invalidPlanMessage, parseNodePlan, parseRoutingSection } from "./plan";
import { installCni, markNodeReady, syncEndpointMarkers, uninstallCni, type CniInstallOptions } from "./cni-install";
import { spawn, type ChildProcess } from "node:child_process";


export interface NodeAgentOptions {
  readonly node: string;
  /** The node's network namespace (the lab); undefined = this process's namespace (production). */
  readonly netns?: string;
  /** Per-node state: BIRD files and the last applied hashes. */
  readonly runDir: string;
  /**
   * Where the last applied plan is kept across reboots (a directory that outlives /run), so an agent that
   * starts while the API server is unreachable puts it in force at once. Default: runDir.
   */
  readonly stateDir?: string;
  /** Drift repair period. */
  readonly repairIntervalMs?: number;
  /**
   * How often the agent asks the API server for its NodeNetwork's resourceVersion (metadata only) to find a
   * watch stream that stalled without closing; two checks in a row that find the watch behind reconnect it.
   * Default 15 s; 0 turns the check off.
   */
  readonly watchCheckIntervalMs?: number;
  readonly log?: Logger;
  /** Install the CNI plugin and keep its markers (src/agent/cni.ts); undefined: another component wires pods. */
  readonly cni?: CniInstallOptions;
  /** Where the Secrets holding BGP passwords live (Switchyard's namespace; switchyard-system by default). */
  readonly secretNamespace?: string;
  /** BIRD runs in a container of its own (`switchyard bird`): the agent writes its config, never starts it. */
  readonly birdContainer?: boolean;
}

/** How long resolved BGP passwords are reused by the repair timer before the Secrets are read again. */
const BGP_PASSWORD_REFRESH_MS = 60_000;

type StatusReport = { nn: NNObject; spec: NodeNetworkSpec; ok: boolean; problems: string[]; routing: RoutingPlan; modeConditions: { reason: string; message: string }[] };

type ProberState = { epoch: number; timer: NodeJS.Timeout | undefined; okRounds: number; failedRounds: number; lastFailure?: string; waiting?: string; reportedOk?: number };
type NNObject = { metadata?: { name?: string; generation?: number; resourceVersion?: string }; spec?: NodeNetworkSpec; status?: Record<string, unknown> };

export class NodeAgent {
  readonly log: Logger;
  private readonly scheduler: CoalescingScheduler;
  private latest: NNObject | undefined;
  private applied: { planHash: string; generation: number } | undefined;
  private policy: AppliedPolicy | undefined;
  private caps: Capabilities | undefined;
  private watcher: { close(): void } | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly counters = { applies: 0, policyFull: 0, policyIncremental: 0, statusWrites: 0, repairs: 0, probeRounds: 0 };
  private prober: ProberState | undefined;
  /** The last status reported, so a change of pod interfaces alone can be reported again. */
  private lastReport: StatusReport | undefined;
  /** Pods of the applied plan whose interface this node does not have ("ns/name"), sorted. */
  private missingInterfaces: string[] = [];
  private linkMonitor: ChildProcess | undefined;
  private interfaceCheck: NodeJS.Timeout | undefined;
  /** BGP passwords of the applied plan, and when they were read (the repair timer re-reads them now and then). */
  private bgpPasswords: { readonly passwords: Readonly<Record<string, string>>; readonly readAt: number } | undefined;
  /** The K8s client for reads (Secrets); the writer below is the agent's field manager. */
  private readonly reader = new KfcClient("switchyard-agent");

  readonly metrics: AgentMetrics;

  /** The agent's writes (its NodeNetwork's status, its Node's underlay annotations), as field manager switchyard-agent. */
  private readonly writer = new KfcClient("switchyard-agent");

  constructor(private readonly opts: NodeAgentOptions) {
    this.log = opts.log ?? createLogger(`agent/${opts.node}`);
    mkdirSync(opts.runDir, { recursive: true });
    this.scheduler = new CoalescingScheduler({
      minIntervalMs: 50,
      run: () => this.exclusive(() => this.applyLatest()),
      onError: (e) => this.log.warn({ err: String(e) }, "apply failed; retrying"),
    });
    this.policy = this.loadAppliedPolicy();
    this.metrics = new AgentMetrics({
      droppedPackets: async () => (this.policy ? policyBackend(this.policy.backend).droppedPackets(this.opts.netns) : 0),
      bgpSessions: async () => {
        const r = await birdProtocols(birdPaths(join(this.opts.runDir, "bird")).socket);
        const bgp = r.ok ? r.protocols.filter((p) => p.proto === "BGP") : [];
        const established = bgp.filter((p) => /Established/.test(p.info)).length;
        return { established, other: bgp.length - established };
      },
    });
  }

  /**
   * Readiness: this node's current plan is applied (the kernel holds what the controller published for
   * it). Not ready before the node has a plan, while a new one is being applied, or while stopping: a
   * DaemonSet rollout then waits for each updated agent to have applied before it moves on.
   */
  readiness(): { ok: boolean; reason: string } {
    if (this.stopped) return { ok: false, reason: "stopping" };
    const want = this.latest?.spec?.planHash;
    if (want === undefined) return { ok: false, reason: `no plan for node ${this.opts.node} yet` };
    if (this.applied?.planHash !== want) return { ok: false, reason: `plan ${want} not applied yet` };
    return { ok: true, reason: `plan ${want} applied` };
  }

  private statePath(): string {
    return join(this.opts.runDir, "agent-state.json");
  }
  private loadAppliedPolicy(): AppliedPolicy | undefined {
    try {
      return JSON.parse(readFileSync(this.statePath(), "utf8")) as AppliedPolicy;
    } catch {
      return undefined;
    }
  }
  private saveAppliedPolicy(): void {
    if (this.policy) writeFileSync(this.statePath(), JSON.stringify(this.policy));
  }

  private planPath(): string {
    return join(this.opts.stateDir ?? this.opts.runDir, "last-plan.json");
  }
  /** The last plan this node applied in full, as saved by savePlan; undefined when there is none (or it is unreadable). */
  private loadSavedPlan(): NNObject | undefined {
    try {
      const saved = JSON.parse(readFileSync(this.planPath(), "utf8")) as NNObject;
      return saved.spec?.nodeName === this.opts.node && typeof saved.spec.planHash === "string" ? saved : undefined;
    } catch {
      return undefined;
    }
  }
  /** Written to a temporary file and renamed over the old one: a crash leaves the old plan or the new, never half of one. */
  private savePlan(nn: NNObject): void {
    const path = this.planPath();
    mkdirSync(dirname(path), { recursive: true });
    const { metadata, spec } = nn;
    writeFileSync(`${path}.tmp`, JSON.stringify({ metadata: { name: metadata?.name, generation: metadata?.generation }, spec }));
    renameSync(`${path}.tmp`, path);
  }

  private nnApi() {
    return K8s(GenericKind, { kindOverride: NodeNetworkGVK });
  }

  /** Writes the node's underlay subnet and MTU as annotations, for the controller's L2-adjacency decisions. */
  async annotateUnderlay(nodeIP: string): Promise<void> {
    const r = await runCommand("ip", ["-j", "addr", "show"], { ...(this.opts.netns ? { netns: this.opts.netns } : {}), timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`ip addr show failed: ${r.stderr}`);
    const links = JSON.parse(r.stdout) as { ifname: string; mtu: number; addr_info?: { family: string; local: string; prefixlen: number }[] }[];
    for (const l of links) {
      const a = l.addr_info?.find((x) => x.family === "inet" && x.local === nodeIP);
      if (!a) continue;
      const cidr = formatCidr(networkOf({ addr: parseIPv4(nodeIP) ?? 0, prefix: a.prefixlen }));
      const node = (await K8s(kind.Node).Get(this.opts.node)) as { metadata?: { annotations?: Record<string, string> } };
      const ops = node.metadata?.annotations
        ? [
            { op: "add" as const, path: annotationPath(UNDERLAY_CIDR_ANNOTATION), value: cidr },
            { op: "add" as const, path: annotationPath(UNDERLAY_MTU_ANNOTATION), value: String(l.mtu) },
          ]
        : [{ op: "add" as const, path: "/metadata/annotations", value: { [UNDERLAY_CIDR_ANNOTATION]: cidr, [UNDERLAY_MTU_ANNOTATION]: String(l.mtu) } }];
      await this.writer.patch("Node", { name: this.opts.node }, ops);
      return;
    }
    throw new Error(`no interface holds the node address ${nodeIP}`);
  }

  /**
   * Starts the agent. The saved last plan (if any) goes in force first, before anything is asked of the API
   * server: after a reboot the node enforces policy from its first second, API or not. Then the agent
   * connects (retrying while the API server is unreachable) and follows its NodeNetwork.
   */
  async start(): Promise<void> {
    this.log.info({ node: this.opts.node }, "agent starting");
    const stale = await removeStaleScratchNetns().catch(() => []);
    if (stale.length > 0) this.log.info({ removed: stale }, "removed scratch namespaces left by a killed agent");
    this.caps = await detectCapabilities(this.opts.netns);
    await this.applySavedPlan();
    const every = this.opts.repairIntervalMs ?? 5_000;
    const repair = () => {
      if (this.stopped) return;
      void this.exclusive(() => this.repair())
        .catch((e: unknown) => this.log.warn({ err: String(e) }, "repair failed"))
        .finally(() => {
          if (!this.stopped) this.repairTimer = setTimeout(repair, every);
        });
    };
    this.repairTimer = setTimeout(repair, every);
    this.startLinkMonitor();
    await this.connect();
    this.scheduleWatchCheck();
    this.log.info({ node: this.opts.node, netns: this.opts.netns, capabilities: this.caps }, "agent started");
  }

  /** Puts the saved last plan in force without the API (no status report: that waits for the API's plan). */
  private async applySavedPlan(): Promise<void> {
    const saved = this.loadSavedPlan();
    if (!saved?.spec) return;
    this.latest = saved;
    const t0 = Date.now();
    try {
      await this.exclusive(() => this.applyLatest({ report: false }));
      this.log.info({ planHash: saved.spec.planHash, ms: Date.now() - t0 }, "the saved last plan is in force; waiting for the API server's");
    } catch (e) {
      this.log.warn({ err: String(e) }, "could not apply the saved last plan");
    }
    // The API's plan is applied (and reported) when it comes, even when it is this same plan.
    if (this.applied) this.applied = { ...this.applied, generation: -1 };
  }

  private watchCheckTimer: NodeJS.Timeout | undefined;
  /** The resourceVersion the last check found ahead of the watch (undefined: the watch was current). */
  private watchBehind: string | undefined;
  readonly watchReconnects = { count: 0 };

  private scheduleWatchCheck(): void {
    const every = this.opts.watchCheckIntervalMs ?? 15_000;
    if (every <= 0 || this.stopped) return;
    this.watchCheckTimer = setTimeout(() => {
      void this.checkWatch()
        .catch((e: unknown) => this.log.debug({ err: String(e) }, "watch check failed"))
        .finally(() => this.scheduleWatchCheck());
    }, every);
  }

  /**
   * A watch can stall without closing (a proxy or load balancer that keeps the connection but passes
   * nothing); kfc notices only after minutes without events, and a NodeNetwork may rightly be quiet for
   * hours. So the agent asks for the object's resourceVersion now and then (metadata only, on a connection
   * of its own); found ahead of the watch twice in a row (once may be an event still in flight), the watch
   * is replaced, and its first list brings the current plan.
   */
  private async checkWatch(): Promise<void> {
    if (this.stopped || !this.watcher) return;
    const meta = await restGetMetadata(resourcePath("NodeNetwork", { name: this.opts.node }), 10_000);
    const rv = meta.metadata?.resourceVersion;
    if (rv === undefined || rv === this.latest?.metadata?.resourceVersion) {
      this.watchBehind = undefined;
      return;
    }
    if (this.watchBehind === undefined) {
      this.watchBehind = rv;
      return;
    }
    this.watchBehind = undefined;
    this.watchReconnects.count++;
    this.log.warn({ watched: this.latest?.metadata?.resourceVersion, current: rv }, "the NodeNetwork watch fell behind (stalled stream); reconnecting");
    this.watcher.close();
    this.watcher = undefined;
    await this.connect();
  }

  /** Reads the node, reports its underlay, and watches its NodeNetwork; retries until it can (or the agent stops). */
  private async connect(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const node = (await K8s(kind.Node).Get(this.opts.node)) as { status?: { addresses?: { type: string; address: string }[] } };
        const ip = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
        if (ip) await this.annotateUnderlay(ip);
        const w = this.nnApi()
          .WithField("metadata.name", this.opts.node)
          .Watch(
            (obj, phase) => {
              if (phase === "DELETED") {
                // The plan was withdrawn (node leaving). Keep enforcing the last plan: fail closed.
                this.log.warn("my NodeNetwork was deleted; keeping the last applied plan in force");
                return;
              }
              if (phase === "ADDED" || phase === "MODIFIED") {
                this.latest = withoutNulls(obj as NNObject);
                if ((obj as NNObject).spec?.planHash !== this.applied?.planHash || (obj as NNObject).metadata?.generation !== this.applied?.generation) this.scheduler.trigger();
              }
            },
            { resyncDelaySec: 1, relistIntervalSec: 600 },
          );
        await w.start();
        if (this.stopped) {
          w.close();
          return;
        }
        this.watcher = w;
        return;
      } catch (e) {
        const delayMs = Math.min(10_000, 500 * 2 ** Math.min(attempt, 5));
        this.log.warn({ err: String(e), retryInMs: delayMs }, "API server not reachable; the last applied plan stays in force");
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /**
   * Stops watching, probing and repairing. Leaves the node as it is: the kernel state and BIRD keep
   * running (a restarted agent adopts that BIRD by its pid file and socket); only teardown removes them.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.prober?.timer) clearTimeout(this.prober.timer);
    this.prober = undefined;
    this.watcher?.close();
    if (this.watchCheckTimer) clearTimeout(this.watchCheckTimer);
    if (this.repairTimer) clearTimeout(this.repairTimer);
    if (this.interfaceCheck) clearTimeout(this.interfaceCheck);
    this.linkMonitor?.kill();
    this.linkMonitor = undefined;
    this.scheduler.stop();
  }

  /**
   * Pod interfaces come and go as the CNI plugin runs: `ip monitor link` says when, and the agent then
   * checks which pods of its plan still lack one (reported at once, not at the next repair).
   */
  private startLinkMonitor(): void {
    const args = [...(this.opts.netns ? ["-n", this.opts.netns] : []), "-o", "monitor", "link"];
    const child = spawn("ip", args, { stdio: ["ignore", "pipe", "ignore"] });
    child.on("error", (e) => this.log.warn({ err: String(e) }, "ip monitor link failed; pod interfaces are checked at repair"));
    child.stdout?.on("data", () => this.scheduleInterfaceCheck());
    this.linkMonitor = child;
  }

  private scheduleInterfaceCheck(): void {
    if (this.stopped || this.interfaceCheck) return;
    this.interfaceCheck = setTimeout(() => {
      this.interfaceCheck = undefined;
      this.checkPodInterfaces().catch((e: unknown) => this.log.warn({ err: String(e) }, "pod interface check failed"));
    }, 20);
  }

  /** Which pods of the plan lack an interface; reports again when that changed. */
  private async checkPodInterfaces(): Promise<void> {
    const report = this.lastReport;
    if (!report || this.stopped) return;
    const missing = await this.findMissingInterfaces(report.spec);
    await this.serially(async () => {
      // An apply reported a newer plan meanwhile (with its own count of missing interfaces): this check is
      // stale, and reporting it would put the older plan's hash back in status.
      if (this.lastReport !== report || missing.join(",") === this.missingInterfaces.join(",")) return;
      this.missingInterfaces = missing;
      await this.reportStatus(report.nn, report.spec, report.ok, report.problems, report.routing, report.modeConditions);
    });
  }

  /** Status writes one at a time, in the order they were asked for. */
  private serially(fn: () => Promise<void>): Promise<void> {
    const next = this.reporting.then(fn, fn);
    this.reporting = next.catch(() => undefined);
    return next;
  }
  private reporting: Promise<void> = Promise.resolve();

  private async findMissingInterfaces(spec: NodeNetworkSpec): Promise<string[]> {
    const pods = (spec.policy as unknown as NodePolicySlice).pods ?? [];
    if (pods.length === 0) return [];
    const r = await runCommand("ip", ["-j", "link", "show"], { ...(this.opts.netns ? { netns: this.opts.netns } : {}), timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`ip link show failed: ${r.stderr}`);
    const present = new Set((JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname));
    return pods.filter((p) => !present.has(p.interface)).map((p) => `${p.namespace}/${p.name}`).sort();
  }

  /** Stop and also remove everything this agent owns from the node (used when a lab node is deleted). */
  async teardown(): Promise<void> {
    await this.stop();
    // After any apply or repair still in flight (a repair could otherwise start BIRD again behind us).
    await this.exclusive(async () => {
      await stopBird(this.birdInstance());
      for (const backend of Object.values(POLICY_BACKENDS)) await backend.remove(this.opts.netns);
      if (this.opts.cni) uninstallCni(this.opts.cni);
    });
  }

  /**
   * Puts the node's policy slice in force with the backend the plan names (putPolicyInForce: a change of
   * backend never opens a window); a failure comes back as the problem to report, the old rules staying.
   */
  private async applyPolicy(slice: NodePolicySlice, name: PolicyBackendName): Promise<string | undefined> {
    const prev = this.policy;
    const r = await putPolicyInForce(this.opts.netns, slice, JSON.stringify(slice), name, prev, { removeOthers: !this.policyCheckedSinceStart });
    if (!r.ok) return r.error;
    this.policyCheckedSinceStart = true;
    if (r.change === "incremental") this.counters.policyIncremental++;
    else if (r.change === "full") this.counters.policyFull++;
    this.policy = r.applied;
    // Recorded only now, after the old backend's removal: an agent killed before this point still finds
    // the old backend on record at its next start, and removes it then.
    if (this.policy !== prev) this.saveAppliedPolicy();
    return undefined;
  }
  private policyCheckedSinceStart = false;

  /** Applies the newest plan; reports status (unless told not to). Runs under the scheduler, never concurrently. */
  private async applyLatest(opts: { report?: boolean } = {}): Promise<void> {
    const nn = this.latest;
    const spec = nn?.spec;
    if (!nn || !spec) return;
    this.counters.applies++;
    const endTimer = this.metrics.applyDuration.startTimer();
    const parsed = parseNodePlan(spec);
    if (!parsed.ok) {
      endTimer({ result: "failed" });
      this.metrics.applyFailures.inc({ part: "plan" });
      // Fail closed: nothing of a plan that fails its schema reaches the kernel; the last one stays in force.
      const message = invalidPlanMessage(spec.planHash, parsed.diagnostics);
      this.log.warn({ planHash: spec.planHash, problems: parsed.diagnostics }, "plan refused: it does not match the NodeNetwork schema");
      if (opts.report === false) return;
      await this.serially(async () => {
        // A pod-interface check must not report the previous plan's Applied condition over this one.
        this.lastReport = undefined;
        await this.writer.patchStatus("NodeNetwork", { name: this.opts.node }, { conditions: invalidPlanConditions(nn.status?.["conditions"], nn.metadata?.generation ?? 0, message, new Date().toISOString()) });
      });
      return;
    }
    const { routing, policy } = parsed;
    const problems: string[] = [];
    const report = await applyRoutingPlan(this.opts.netns, routing, this.caps ? { capabilities: this.caps } : {});
    for (const e of report.errors) problems.push(`${e.reason}: ${e.message}`);
    if (report.errors.length > 0) this.metrics.applyFailures.inc({ part: "routing" });
    if (routing.bgp) {
      const birdProblems = await this.applyBird(routing, true);
      if (birdProblems.length > 0) this.metrics.applyFailures.inc({ part: "bgp" });
      problems.push(...birdProblems);
    } else {
      this.bgpPasswords = undefined;
      await stopBird(this.birdInstance());
    }
    const policyProblem = await this.applyPolicy(policy, policy.backend ?? "nftables");
    if (policyProblem) {
      problems.push(policyProblem);
      this.metrics.applyFailures.inc({ part: "policy" });
    }
    // The plugin may now wire the plan's pods: their policy is in force (an ADD waiting for it goes on).
    else if (this.opts.cni) this.updateCni(spec, policy, problems);
    const modeConditions = this.caps ? checkModeRequirements(routing, this.caps) : [];
    const ok = problems.length === 0;
    endTimer({ result: ok ? "ok" : "failed" });
    this.metrics.planApplied.set(ok ? 1 : 0);
    if (ok) {
      this.appliedRouting = routing;
      this.applied = { planHash: spec.planHash, generation: nn.metadata?.generation ?? 0 };
      this.savePlan(nn);
    }
    if (ok && this.opts.cni) markNodeReady(this.opts.cni, spec.planHash);
    if (opts.report === false) return;
    const missing = await this.findMissingInterfaces(spec);
    await this.serially(async () => {
      this.missingInterfaces = missing;
      this.lastReport = { nn, spec, ok, problems, routing, modeConditions };
      await this.reportStatus(nn, spec, ok, problems, routing, modeConditions);
    });
    if (ok) this.updateProber(spec, routing);
  }

  private birdInstance(): { netns?: string; runDir: string; external?: boolean } {
    return { ...(this.opts.netns ? { netns: this.opts.netns } : {}), runDir: join(this.opts.runDir, "bird"), ...(this.opts.birdContainer ? { external: true } : {}) };
  }

  /**
   * Puts the plan's BIRD configuration in force, with its passwords read from their Secrets (`fresh`, or
   * when the last read is older than BGP_PASSWORD_REFRESH_MS: a rotated password reaches BIRD within a
   * minute). A password that cannot be read leaves the running BIRD as it is. Returns the problems.
   */
  private async applyBird(routing: RoutingPlan, fresh: boolean): Promise<string[]> {
    const bgp = routing.bgp;
    if (!bgp) return [];
    let passwords = this.bgpPasswords;
    if (fresh || !passwords || Date.now() - passwords.readAt > BGP_PASSWORD_REFRESH_MS) {
      const namespace = this.opts.secretNamespace ?? "switchyard-system";
      const r = await resolveBgpPasswords(bgp, namespace, (name) => this.reader.get("Secret", { name, namespace }) as Promise<{ data?: Record<string, string> } | undefined>);
      if (!r.ok) return [...r.problems];
      passwords = { passwords: r.passwords, readAt: Date.now() };
      this.bgpPasswords = passwords;
    }
    const b = await applyBirdConfig(this.birdInstance(), bgp, { passwords: passwords.passwords });
    if (!b.ok) return [`BIRD ${b.reason}: ${b.message}`];
    if (b.action === "started" && !fresh) {
      this.counters.repairs++;
      this.log.info({ pid: b.pid, recovery: b.recovery ?? false }, "BIRD was not running: started it again");
    }
    return [];
  }

  /** Installs or updates the plugin and its conflist (once the node has a block) and the pods' endpoint markers. */
  private updateCni(spec: NodeNetworkSpec, policy: NodePolicySlice, problems: string[]): void {
    const cni = this.opts.cni;
    if (!cni) return;
    try {
      if (spec.block) {
        const r = installCni(cni, { block: spec.block, mtu: spec.mtu });
        if (r.binaryWritten || r.conflistWritten) this.log.info({ binDir: cni.binDir, confDir: cni.confDir, ...r }, "CNI plugin installed");
      }
      syncEndpointMarkers(cni, policy.pods ?? []);
    } catch (e) {
      problems.push(`CNIInstallFailed: ${(e as Error).message}`);
      this.metrics.applyFailures.inc({ part: "cni" });
    }
  }

  /**
   * Migration gates: while the plan carries `health`, probe every target's health address from this
   * node's own (both are blocks' first addresses, so the packets take the pod-network routes and tunnels
   * in both directions) once per interval, and report consecutive healthy rounds for the epoch. With
   * `health.rounds` (what the gate needs) the agent writes when it has that many, and when a round fails
   * or waits: a status write carries the whole (large) object to every watcher, so a gate costs each node
   * one write, not one per round (without it: one healthy round).
   */
  private updateProber(spec: NodeNetworkSpec, routing: RoutingPlan): void {
    const health = spec.health;
    if (!health || !routing.healthAddress) {
      if (this.prober?.timer) clearTimeout(this.prober.timer);
      this.prober = undefined;
      return;
    }
    if (this.prober && this.prober.epoch === health.epoch) return;
    if (this.prober?.timer) clearTimeout(this.prober.timer);
    const p: ProberState = { epoch: health.epoch, timer: undefined, okRounds: 0, failedRounds: 0 };
    this.prober = p;
    const source = routing.healthAddress;
    const round = async (): Promise<void> => {
      if (this.prober !== p || this.stopped) return;
      const current = this.latest?.spec?.health;
      const targets = current && current.epoch === p.epoch ? current.targets : health.targets;
      const netnsOpt = this.opts.netns ? { netns: this.opts.netns } : {};
      // The plan in force now (a batch switch keeps the epoch but changes this node's transports).
      const inForce = parseRoutingSection(this.latest?.spec?.routing) ?? routing;
      const expected = new Map(inForce.peers.map((x) => [x.peer, x.transport]));
      const results = await Promise.all(
        targets.map(async (t) => {
          const r = await runCommand("ping", ["-n", "-q", "-c", "1", "-W", "1", "-I", source, t.address], { ...netnsOpt, timeoutMs: 3_000 });
          const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
          if (r.code === 0 && rtt) this.metrics.probeRtt.observe(Number(rtt[1]) / 1000);
          // Which transport does the kernel use for this peer now? A gate only counts rounds in which every
          // peer is reached the way the plan says (e.g. by BIRD's route, not a standby VXLAN route).
          const g = await runCommand("ip", ["-j", "route", "get", t.address, "from", source], { ...netnsOpt, timeoutMs: 3_000 });
          let actual = "unknown";
          try {
            const rt = (JSON.parse(g.stdout) as { dev?: string; gateway?: string }[])[0] ?? {};
            const main = await runCommand("ip", ["-j", "route", "show", "match", t.address], { ...netnsOpt, timeoutMs: 3_000 });
            const routes = JSON.parse(main.stdout) as { dst: string; dev?: string; protocol?: string; metric?: number; gateway?: string }[];
            const used = routes.filter((x) => x.dst !== "default" && x.dev === rt.dev && (x.gateway ?? "") === (rt.gateway ?? "")).sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
            actual = transportInKernel(rt.dev, used?.protocol);
          } catch {
            actual = "unknown";
          }
          const want = expected.get(t.node);
          return { t, ok: r.code === 0, onPlan: want === undefined || want === "none" || want === actual, actual, want };
        }),
      );
      if (this.prober !== p) return;
      const failed = results.filter((r) => !r.ok).map((r) => `${r.t.node} (${r.t.address})`);
      const offPlan = results.filter((r) => r.ok && !r.onPlan).map((r) => `${r.t.node} via ${r.actual}, planned ${r.want}`);
      this.counters.probeRounds++;
      const before = `${p.failedRounds}/${p.waiting ?? ""}`;
      if (failed.length > 0) {
        p.okRounds = 0;
        p.failedRounds++;
        p.lastFailure = `no answer from ${failed.join(", ")} to ${source}`;
      } else if (offPlan.length > 0) {
        p.okRounds = 0;
        p.waiting = `traffic not yet on the planned transport: ${offPlan.join(", ")}`;
      } else {
        p.okRounds++;
        delete p.waiting;
      }
      const needed = (current && current.epoch === p.epoch ? current.rounds : health.rounds) ?? 1;
      const report = (p.okRounds >= needed && (p.reportedOk ?? -1) < needed) || before !== `${p.failedRounds}/${p.waiting ?? ""}`;
      if (report) {
        try {
          await this.writer.patchStatus("NodeNetwork", { name: this.opts.node }, { health: { epoch: p.epoch, okRounds: p.okRounds, failedRounds: p.failedRounds, ...(p.lastFailure ? { lastFailure: p.lastFailure } : {}), waiting: p.waiting ?? null, at: new Date().toISOString() } });
          p.reportedOk = p.okRounds;
        } catch (e) {
          this.log.warn({ err: String(e) }, "could not report probe round");
        }
      }
      if (this.prober === p && !this.stopped) p.timer = setTimeout(() => void round(), health.intervalMs);
    };
    void round();
  }

  private async reportStatus(nn: NNObject, spec: NodeNetworkSpec, ok: boolean, problems: string[], routing: RoutingPlan, modeConditions: { reason: string; message: string }[]): Promise<void> {
    const now = new Date().toISOString();
    const prev = (nn.status?.["conditions"] ?? []) as { type: string; status: string; lastTransitionTime: string }[];
    const mk = (type: string, status: boolean, reason: string, message: string) => {
      const s = status ? "True" : "False";
      const old = prev.find((c) => c.type === type);
      return { type, status: s, reason, message, observedGeneration: nn.metadata?.generation ?? 0, lastTransitionTime: old && old.status === s ? old.lastTransitionTime : now };
    };
    const refused = routing.diagnostics.find((d) => d.reason === "ModeCannotServePeers");
    const missing = this.missingInterfaces;
    const missingText = missing.length > 5 ? `${missing.slice(0, 5).join(", ")} and ${missing.length - 5} more` : missing.join(", ");
    const applied = ok && missing.length === 0;
    const conditions = [
      mk(
        "Applied",
        applied,
        applied ? "PlanApplied" : ok ? "PodInterfacesMissing" : "ApplyFailed",
        applied ? `plan ${spec.planHash} is in force` : ok ? `plan ${spec.planHash} is in force, but pods of it have no interface on this node (see PodInterfacesMissing)` : problems.join("; ").slice(0, 2000),
      ),
      mk(
        "PodInterfacesMissing",
        missing.length > 0,
        missing.length > 0 ? "PodInterfacesMissing" : "AllPodsWired",
        missing.length > 0 ? `pods of this node's plan without an interface (not wired by the CNI plugin yet, or it failed): ${missingText}` : "every pod of the plan has its interface",
      ),
      mk("ModeCannotServePeers", refused !== undefined, refused ? "ModeCannotServePeers" : "AllPeersServed", refused?.message ?? "the mode reaches every peer"),
      mk("ModeUnsupported", modeConditions.length > 0, modeConditions.length > 0 ? (modeConditions[0]!.reason) : "Supported", modeConditions.map((c) => c.message).join("; ") || "the node has what the plan needs"),
    ];
    const caps = this.caps ? Object.fromEntries(Object.entries(this.caps).filter(([k]) => k !== "details")) : {};
    const status = {
      ...(ok ? { observedGeneration: nn.metadata?.generation ?? 0, appliedHash: spec.planHash, appliedAt: now } : {}),
      capabilities: caps,
      conditions,
    };
    try {
      await this.writer.patchStatus("NodeNetwork", { name: this.opts.node }, status);
      this.counters.statusWrites++;
    } catch (e) {
      // Fail closed: the plan stays applied; the next event or repair reports again.
      this.log.warn({ err: String(e) }, "could not report status");
      throw e;
    }
  }

  /** Drift repair: routes via the idempotent diff, and the policy table when its content differs. */
  /**
   * Applies and repairs one at a time: a repair that read the policy in force just before an apply changed
   * it would otherwise put the previous slice back over the new one.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.kernelTail.then(fn, fn);
    this.kernelTail = next.catch(() => undefined);
    return next;
  }
  private kernelTail: Promise<unknown> = Promise.resolve();
  /** The routing plan of the last apply that succeeded (what repair puts back; never a refused plan's). */
  private appliedRouting: RoutingPlan | undefined;

  private async repair(): Promise<void> {
    const routing = this.appliedRouting;
    if (!routing || !this.applied || this.stopped) return;
    const report = await applyRoutingPlan(this.opts.netns, routing, this.caps ? { capabilities: this.caps } : {});
    const changed = Object.values(report.changes).reduce((a, b) => a + b, 0);
    // A BIRD that died (or a rotated password) is put back here, not only at the next plan.
    const birdProblems = await this.applyBird(routing, false);
    if (birdProblems.length > 0) this.log.warn({ problems: birdProblems }, "BIRD repair failed");
    let policyRepaired = false;
    if (this.policy) {
      const backend = policyBackend(this.policy.backend);
      if (!(await backend.inForce(this.opts.netns, this.policy))) {
        // The whole ruleset again (no previous state to update from: the kernel's copy is what drifted).
        const r = await backend.apply(this.opts.netns, this.policy.slice, this.policy.hash, undefined);
        policyRepaired = r.ok;
        if (r.ok) this.policy = r.applied;
      }
    }
    if (changed > 0) this.metrics.driftRepairs.inc({ part: "routes" });
    if (policyRepaired) this.metrics.driftRepairs.inc({ part: "policy" });
    if (changed > 0 || policyRepaired) {
      this.counters.repairs++;
      this.log.info({ routeChanges: changed, policyRepaired }, "repaired drift");
    }
  }
}
