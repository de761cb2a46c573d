// Checks the qemu guest programs share (test/qemu/guest/*-check.ts): bounded pings, the device and route
// the kernel picks, tunnel counters, and the reporter: one `ok - ...` / `not ok - ...` line per check,
// then `N passed, M failed`, which the host script reads from the console. The guests build their nodes
// and pods with the lab's topology builder (lab/topology.ts), as the host lab does; process start-up is
// ~40x slower under TCG than on the host (full-kernel-vm.md), which is why that builder batches commands.
import { runCommand, type ExecResult } from "../../../src/base/exec";

const TIMEOUT_MS = 60_000;

/**
 * Pings from a pod's namespace: bounded (2 probes 0.2 s apart, up to 2 s to wait for a reply, a hard
 * process timeout); succeeds when at least one reply came back. `payload` with DF set (`-M do`) probes the path MTU: the IP packet is payload + 28 bytes.
 * iputils ping, not busybox's, which cannot set DF.
 */
export function ping(fromNetns: string, to: string, opts: { readonly payload?: number } = {}): Promise<ExecResult> {
  const args = ["-n", "-q", "-c", "2", "-i", "0.2", "-W", "2"];
  if (opts.payload !== undefined) args.push("-M", "do", "-s", String(opts.payload));
  return runCommand("ping", [...args, to], { netns: fromNetns, timeoutMs: 10_000 });
}

/** Transmitted packets per device (the tunnel devices that exist); a missing device is absent. */
export async function txPackets(netns: string, devices: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const r = await runCommand("ip", ["-j", "-s", "link", "show"], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) return out;
  const links = JSON.parse(r.stdout) as { ifname?: string; stats64?: { tx?: { packets?: number } } }[];
  for (const l of links) {
    if (l.ifname !== undefined && devices.includes(l.ifname)) out.set(l.ifname, l.stats64?.tx?.packets ?? 0);
  }
  return out;
}

/** The device the node's own routing picks for a destination (`ip route get`), or an error text. */
export async function routeDevice(netns: string, dst: string): Promise<{ dev?: string; gateway?: string; error?: string }> {
  const r = await runCommand("ip", ["-j", "route", "get", dst], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) return { error: r.stderr.trim() };
  const routes = JSON.parse(r.stdout) as { dev?: string; gateway?: string }[];
  const first = routes[0];
  return { ...(first?.dev !== undefined ? { dev: first.dev } : {}), ...(first?.gateway !== undefined ? { gateway: first.gateway } : {}) };
}

/** Kind, local address and MTU of a device as the kernel reports them (`ip -d -j link show`). */
export async function deviceInfo(netns: string, dev: string): Promise<{ kind?: string; local?: string; mtu?: number } | undefined> {
  const r = await runCommand("ip", ["-j", "-d", "link", "show", "dev", dev], { netns, timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) return undefined;
  const links = JSON.parse(r.stdout) as { mtu?: number; linkinfo?: { info_kind?: string; info_data?: { local?: string } } }[];
  const l = links[0];
  if (l === undefined) return undefined;
  return {
    ...(l.linkinfo?.info_kind !== undefined ? { kind: l.linkinfo.info_kind } : {}),
    ...(l.linkinfo?.info_data?.local !== undefined ? { local: l.linkinfo.info_data.local } : {}),
    ...(l.mtu !== undefined ? { mtu: l.mtu } : {}),
  };
}

/** The guest's report: TAP-like lines the host script echoes and parses. */
export class CheckReport {
  passed = 0;
  failed = 0;

  /** Records one check; `details` lines are printed as comments under a failure. */
  check(name: string, ok: boolean, details: readonly string[] = []): boolean {
    if (ok) {
      this.passed++;
      console.log(`ok - ${name}`);
    } else {
      this.failed++;
      console.log(`not ok - ${name}`);
      for (const d of details) for (const line of d.split("\n")) if (line.trim() !== "") console.log(`#   ${line}`);
    }
    return ok;
  }

  note(text: string): void {
    console.log(`# ${text}`);
  }

  /** The final line the host looks for. */
  verdict(): string {
    return `${this.passed} passed, ${this.failed} failed`;
  }
}
