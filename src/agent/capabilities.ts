// Why: a mode the node cannot run must become a clear condition ("mode ipip needs the ipip kernel module,
// which this node's kernel lacks"), not a crash loop or a silently half-applied plan. Capabilities are
// probed by DOING the thing in the target namespace (creating a throwaway `sy-probe-*` device and deleting
// it, listing nft tables, running `bird --version`), because module lists and version strings lie: a
// module can be built in, blacklisted, or auto-loaded on first use (creating the device is what triggers
// the kernel's own request_module, so the probe covers `modprobe` too). The probe devices are the only
// thing preflight creates; they are removed before it returns, also when a probe fails half-way.
import { runCommand } from "../base/exec";
import { MODE_BACKENDS } from "../compile/routing/modes";
import type { RoutingPlan } from "../model/routing-plan";

export type Feature = "vxlan" | "ipip" | "nftables" | "iptables" | "ipset" | "bird" | "wireguard";

export interface Capabilities {
  readonly vxlan: boolean;
  readonly ipip: boolean;
  readonly nftables: boolean;
  readonly iptables: boolean;
  readonly ipset: boolean;
  readonly bird: boolean;
  readonly wireguard: boolean;
  /** What each probe saw (a version, or the error that made it false): for status and the condition message. */
  readonly details: Readonly<Record<Feature, string>>;
}

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

/** `bird --version` runs and `birdc` exists (it has no version flag: a usage error still proves it starts). */
async function probeBird(): Promise<Probe> {
  const v = await probeTool(undefined, "bird", ["bird", "--version"]);
  if (!v.ok) return v;
  const c = await runCommand("birdc", ["-h"], { timeoutMs: PROBE_TIMEOUT_MS });
  return c.code === -1 ? { ok: false, detail: `${v.detail}, but birdc does not start: ${firstLine(c.stderr)}` } : v;
}

/** Probes what the kernel and the node's tools can do, in `netns` (undefined = this process's namespace). */
export async function detectCapabilities(netns: string | undefined): Promise<Capabilities> {
  // Sequential on purpose: cheap (~10 short processes), and parallel device creation would race on names.
  const vxlan = await probeDevice(netns, "sy-probe-vx", ["vxlan", "id", "4242", "dstport", "4789"]);
  const ipip = await probeDevice(netns, "sy-probe-ipip", ["ipip", "local", "127.0.0.1"]);
  const wireguard = await probeDevice(netns, "sy-probe-wg", ["wireguard"]);
  const nftables = await probeTool(netns, "nft", ["nft", "--version"], ["nft", "list", "tables"]);
  // iptables-save only reads (listing with `iptables -L` would create tables with the nft backend).
  const iptables = await probeTool(netns, "iptables", ["iptables", "--version"], ["iptables-save"]);
  const ipset = await probeTool(netns, "ipset", ["ipset", "--version"], ["ipset", "list", "-n"]);
  const bird = await probeBird();
  return {
    vxlan: vxlan.ok,
    ipip: ipip.ok,
    nftables: nftables.ok,
    iptables: iptables.ok,
    ipset: ipset.ok,
    bird: bird.ok,
    wireguard: wireguard.ok,
    details: { vxlan: vxlan.detail, ipip: ipip.detail, nftables: nftables.detail, iptables: iptables.detail, ipset: ipset.detail, bird: bird.detail, wireguard: wireguard.detail },
  };
}

export interface ModeCondition {
  /** Condition reason, CamelCase (for the NodeNetwork / ClusterNetwork conditions). */
  readonly reason: "KernelFeatureMissing" | "ToolMissing";
  readonly feature: Feature;
  /** A sentence an operator can act on. */
  readonly message: string;
}

const WHY: Readonly<Record<Feature, string>> = {
  vxlan: "the vxlan kernel module",
  ipip: "the ipip kernel module",
  wireguard: "the wireguard kernel module",
  nftables: "nftables (the nft tool and nf_tables in the kernel)",
  iptables: "iptables",
  ipset: "ipset (the tool and ip_set in the kernel)",
  bird: "BIRD 2 (bird and birdc)",
};

/**
 * What the plan needs that the node lacks: the node's own mode, every device it must keep for receiving
 * (mixed modes), BIRD when it runs BGP, nftables when it applies NAT. Empty when the node can run the plan.
 */
export function checkModeRequirements(plan: RoutingPlan, caps: Capabilities): ModeCondition[] {
  const needs = new Map<Feature, string>();
  for (const f of MODE_BACKENDS[plan.mode].requires) needs.set(f, `mode ${plan.mode}`);
  if (plan.devices.vxlan && !needs.has("vxlan")) needs.set("vxlan", `receiving VXLAN from peers (device ${plan.devices.vxlan.name})`);
  if (plan.devices.ipip && !needs.has("ipip")) needs.set("ipip", `receiving IPIP from peers (device ${plan.devices.ipip.name})`);
  if (plan.bgp && !needs.has("bird")) needs.set("bird", "BGP peering in this plan");
  if (plan.nat.enabled) needs.set("nftables", "natOutgoing");
  const conditions: ModeCondition[] = [];
  for (const [feature, what] of needs) {
    if (caps[feature]) continue;
    const kernel = feature === "vxlan" || feature === "ipip" || feature === "wireguard";
    conditions.push({
      reason: kernel ? "KernelFeatureMissing" : "ToolMissing",
      feature,
      message: kernel
        ? `${what} needs ${WHY[feature]}, which this node's kernel lacks (${caps.details[feature]})`
        : `${what} needs ${WHY[feature]}, which this node lacks (${caps.details[feature]})`,
    });
  }
  return conditions;
}
