// Why: a mode the node cannot run must become a clear condition ("mode ipip needs the ipip kernel module,
// which this node's kernel lacks"), not a crash loop or a silently half-applied plan. Capabilities are
// probed by DOING the thing in the target namespace (creating a throwaway `sy-probe-*` device and deleting
// it, listing nft tables, running `bird --version`), because module lists and version strings lie: a
// module can be built in, blacklisted, or auto-loaded on first use (creating the device is what triggers
// the kernel's own request_module, so the probe covers `modprobe` too). The probe devices are the only
// thing preflight creates; they are removed before it returns, also when a probe fails half-way.
// What the modes need comes from the registry (src/modes): each mode's device names its probe device and
// its `type` arguments, each tool a mode needs names the commands that prove it; wireguard (not a mode)
// and the policy backends' tools are probed here.
import { runCommand } from "../base/exec";
import type { ModeNeed } from "../modes/backend";
import { backendOf, MODE_BACKEND_LIST, MODE_DEVICES, MODE_NEEDS, type ModeCapability } from "../modes/registry";
import type { RoutingPlan } from "../model/routing-plan";

export type Feature = ModeCapability | "nftables" | "iptables" | "ipset" | "wireguard";

/**
 * Whether the node has each feature (every capability a mode needs, and nftables, iptables, ipset,
 * wireguard), and what each probe saw (a version, or the error that made it false): for status and the
 * condition message.
 */
export type Capabilities = { readonly [F in Feature]: boolean } & { readonly details: Readonly<Record<Feature, string>> };

const PROBE_TIMEOUT_MS = 10_000;

type Probe = { readonly ok: boolean; readonly detail: string };

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.trim() ?? "";
}

/** Creates a throwaway device in `netns`, then deletes it; true when the kernel could create it. */
async function probeDevice(netns: string | undefined, name: string, typeArgs: readonly string[]): Promise<Probe> {
  // A probe left behind by a crashed agent would make `link add` fail with "File exists".
  await runCommand("ip", ["link", "del", "dev", name], { netns, timeoutMs: PROBE_TIMEOUT_MS });
  const add = await runCommand("ip", ["link", "add", name, "type", ...typeArgs], { netns, timeoutMs: PROBE_TIMEOUT_MS });
  if (add.code !== 0) return { ok: false, detail: `creating a probe ${typeArgs[0]} device failed: ${firstLine(add.stderr) || `exit ${add.code}`}` };
  const del = await runCommand("ip", ["link", "del", "dev", name], { netns, timeoutMs: PROBE_TIMEOUT_MS });
  return { ok: true, detail: del.code === 0 ? `a probe ${typeArgs[0]} device was created and removed` : `created, but removing ${name} failed: ${firstLine(del.stderr)}` };
}

async function probeTool(netns: string | undefined, label: string, version: readonly [string, ...string[]], use?: readonly [string, ...string[]]): Promise<Probe> {
  const v = await runCommand(version[0], version.slice(1), { timeoutMs: PROBE_TIMEOUT_MS });
  if (v.code !== 0) return { ok: false, detail: `${label} is not installed or does not run: ${firstLine(v.stderr) || `exit ${v.code}`}` };
  const ver = firstLine(v.stdout) || firstLine(v.stderr);
  if (!use) return { ok: true, detail: ver };
  const u = await runCommand(use[0], use.slice(1), { netns, timeoutMs: PROBE_TIMEOUT_MS });
  if (u.code !== 0) return { ok: false, detail: `${ver}, but \`${use.join(" ")}\` failed in the node: ${firstLine(u.stderr) || `exit ${u.code}`}` };
  return { ok: true, detail: ver };
}

/** A tool a mode needs: its version command runs, and its companion (`starts`) at least starts (a usage error still proves it does). */
async function probeProgram(program: NonNullable<ModeNeed["program"]>): Promise<Probe> {
  const v = await probeTool(undefined, program.version[0], program.version);
  if (!v.ok || !program.starts) return v;
  const c = await runCommand(program.starts[0], program.starts.slice(1), { timeoutMs: PROBE_TIMEOUT_MS });
  return c.code === -1 ? { ok: false, detail: `${v.detail}, but ${program.starts[0]} does not start: ${firstLine(c.stderr)}` } : v;
}

/** Probes what the kernel and the node's tools can do, in `netns` (undefined = this process's namespace). */
export async function detectCapabilities(netns: string | undefined): Promise<Capabilities> {
  // Sequential on purpose: cheap (~10 short processes), and parallel device creation would race on names.
  const probes = new Map<Feature, Probe>();
  for (const { device } of MODE_DEVICES) probes.set(device.capability, await probeDevice(netns, device.probe.name, device.probe.type));
  const wireguard = await probeDevice(netns, "sy-probe-wg", ["wireguard"]);
  probes.set("nftables", await probeTool(netns, "nft", ["nft", "--version"], ["nft", "list", "tables"]));
  // iptables-save only reads (listing with `iptables -L` would create tables with the nft backend).
  probes.set("iptables", await probeTool(netns, "iptables", ["iptables", "--version"], ["iptables-save"]));
  probes.set("ipset", await probeTool(netns, "ipset", ["ipset", "--version"], ["ipset", "list", "-n"]));
  for (const need of MODE_NEEDS) if (need.program && !probes.has(need.capability)) probes.set(need.capability, await probeProgram(need.program));
  if (!probes.has("wireguard")) probes.set("wireguard", wireguard);
  const has: Record<string, boolean> = {};
  const details: Record<string, string> = {};
  for (const [feature, probe] of probes) {
    has[feature] = probe.ok;
    details[feature] = probe.detail;
  }
  return { ...has, details } as Capabilities;
}

export interface ModeCondition {
  /** Condition reason, CamelCase (for the NodeNetwork / ClusterNetwork conditions). */
  readonly reason: "KernelFeatureMissing" | "ToolMissing";
  readonly feature: Feature;
  /** A sentence an operator can act on. */
  readonly message: string;
}

/** What the features that are not a mode's need are, for condition messages (a mode's need says it itself). */
const WHY: Readonly<Record<Exclude<Feature, ModeCapability>, string>> = {
  wireguard: "the wireguard kernel module",
  nftables: "nftables (the nft tool and nf_tables in the kernel)",
  iptables: "iptables",
  ipset: "ipset (the tool and ip_set in the kernel)",
};

/**
 * What the plan needs that the node lacks: the node's own mode, every device it must keep for receiving
 * (mixed modes), BIRD when it runs BGP, nftables when it applies NAT. Empty when the node can run the plan.
 */
export function checkModeRequirements(plan: RoutingPlan, caps: Capabilities): ModeCondition[] {
  const needs = new Map<Feature, { readonly what: string; readonly need?: ModeNeed }>();
  for (const need of backendOf(plan.mode).needs) needs.set(need.capability, { what: `mode ${plan.mode}`, need });
  for (const backend of MODE_BACKEND_LIST) {
    const what = backend.neededBy(plan);
    if (what === undefined) continue;
    for (const need of backend.needs) if (!needs.has(need.capability)) needs.set(need.capability, { what, need });
  }
  if (plan.nat.enabled) needs.set("nftables", { what: "natOutgoing" });
  const conditions: ModeCondition[] = [];
  for (const [feature, { what, need }] of needs) {
    if (caps[feature]) continue;
    const kernel = need ? need.kind === "kernel" : feature === "wireguard";
    const why = need ? need.what : WHY[feature as Exclude<Feature, ModeCapability>];
    conditions.push({
      reason: kernel ? "KernelFeatureMissing" : "ToolMissing",
      feature,
      message: kernel
        ? `${what} needs ${why}, which this node's kernel lacks (${caps.details[feature]})`
        : `${what} needs ${why}, which this node lacks (${caps.details[feature]})`,
    });
  }
  return conditions;
}
