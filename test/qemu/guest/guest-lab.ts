// Why: the qemu guest has no cluster and no NIC, so the checks build a tiny one from network namespaces,
// as the lab does on the host (kernel-lab.md §1): a `fabric` namespace with the bridge of 192.168.10.0/24,
// a `rtr` namespace routing to 192.168.20.0/24, nodes q1 and q2 on the first subnet and q3 behind the
// router, one Calico-style pod per node. No namespace has a link into the guest's root namespace. The
// routing between nodes is left entirely to the code under test (the agent's applyRoutingPlan); what is
// wired here is only what a node has before Switchyard runs (underlay address, default route, the pod's
// veth and /32 route as a CNI plugin leaves them). Commands go through `ip -batch` per namespace because
// process start-up is ~40x slower under TCG than on the host (full-kernel-vm.md).
// Also the guest's check reporter: one `ok - ...` / `not ok - ...` line per check, then `N passed, M failed`.
import { runCommand, runOk, type ExecResult } from "../../../src/base/exec";
import { mapBounded } from "../../../src/base/limit";

export const FABRIC_NETNS = "fabric";
export const ROUTER_NETNS = "rtr";
/** The node-side veth of each node's single pod (one pod per node, so one name fits every node). */
export const POD_HOST_VETH = "cali0";
const UNDERLAY_CIDR_PREFIX = 24;

export interface GuestNode {
  readonly name: string;
  readonly netns: string;
  /** Underlay address on eth0. */
  readonly ip: string;
  readonly underlayCIDR: string;
  readonly gateway: string;
  /** This node's pod block (what IPAM would have given it). */
  readonly block: string;
  readonly pod: { readonly netns: string; readonly ip: string };
}

export interface GuestLab {
  readonly nodes: readonly GuestNode[];
}

function node(name: string, ip: string, subnet: 10 | 20, index: number): GuestNode {
  return {
    name,
    netns: name,
    ip,
    underlayCIDR: `192.168.${subnet}.0/${UNDERLAY_CIDR_PREFIX}`,
    gateway: `192.168.${subnet}.1`,
    block: `10.244.${index}.0/24`,
    pod: { netns: `${name}-pod`, ip: `10.244.${index}.2` },
  };
}

/** q1, q2 on 192.168.10.0/24 (the fabric bridge), q3 on 192.168.20.0/24 behind the router. */
export const GUEST_NODES: readonly GuestNode[] = [node("q1", "192.168.10.11", 10, 1), node("q2", "192.168.10.12", 10, 2), node("q3", "192.168.20.13", 20, 3)];

const TIMEOUT_MS = 60_000;

async function ipBatch(netns: string | undefined, lines: readonly string[]): Promise<void> {
  const args = netns === undefined ? ["-batch", "-"] : ["-n", netns, "-batch", "-"];
  await runOk("ip", args, { stdin: `${lines.join("\n")}\n`, timeoutMs: TIMEOUT_MS });
}

async function sysctl(netns: string, settings: readonly string[]): Promise<void> {
  await runOk("sysctl", ["-q", "-w", ...settings], { netns, timeoutMs: TIMEOUT_MS });
}

/** Builds the namespaces, the underlay and the pods. Throws (after removing what it made) on failure. */
export async function createGuestLab(nodes: readonly GuestNode[] = GUEST_NODES): Promise<GuestLab> {
  const namespaces = [FABRIC_NETNS, ROUTER_NETNS, ...nodes.flatMap((n) => [n.netns, n.pod.netns])];
  try {
    await ipBatch(undefined, namespaces.map((ns) => `netns add ${ns}`));
    const onBridge = nodes.filter((n) => n.gateway === "192.168.10.1");
    const behindRouter = nodes.filter((n) => n.gateway === "192.168.20.1");
    // Subnet 20 is a single veth from the router to its one node (no second bridge needed).
    if (behindRouter.length !== 1) throw new Error(`the guest lab wires exactly one node on 192.168.20.0/24, got ${behindRouter.length}`);
    // The subnet-10 wire: a bridge in the fabric namespace with every subnet-10 node and the router on it.
    await ipBatch(FABRIC_NETNS, [
      "link set lo up",
      "link add br10 type bridge",
      "link set br10 up",
      ...onBridge.flatMap((n) => [`link add ${n.name} type veth peer name eth0 netns ${n.netns}`, `link set ${n.name} master br10`, `link set ${n.name} up`]),
      `link add r10 type veth peer name eth10 netns ${ROUTER_NETNS}`,
      "link set r10 master br10",
      "link set r10 up",
    ]);
    // The router: .1 on both subnets.
    await ipBatch(ROUTER_NETNS, [
      "link set lo up",
      "addr add 192.168.10.1/24 dev eth10",
      "link set eth10 up",
      `link add eth20 type veth peer name eth0 netns ${behindRouter[0]!.netns}`,
      "addr add 192.168.20.1/24 dev eth20",
      "link set eth20 up",
    ]);
    await sysctl(ROUTER_NETNS, ["net.ipv4.ip_forward=1"]);
    await mapBounded(nodes, 3, async (n) => {
      // IPv6 off: Switchyard is IPv4-only here, and IPv6 router solicitations and MLD reports on the
      // tunnel devices would muddy the "which tunnel carried the packets" counters.
      await sysctl(n.netns, ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
      // The default route is also what makes proxy_arp answer for 169.254.1.1 (kernel-lab.md §8.8).
      await ipBatch(n.netns, [
        "link set lo up",
        `addr add ${n.ip}/${UNDERLAY_CIDR_PREFIX} dev eth0`,
        "link set eth0 up",
        `route add default via ${n.gateway} dev eth0`,
        `link add ${POD_HOST_VETH} type veth peer name eth0 netns ${n.pod.netns}`,
        `link set ${POD_HOST_VETH} up`,
      ]);
      await sysctl(n.netns, [`net.ipv4.conf.${POD_HOST_VETH}.proxy_arp=1`, `net.ipv4.neigh.${POD_HOST_VETH}.proxy_delay=0`]);
      await sysctl(n.pod.netns, ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
      await ipBatch(n.pod.netns, [
        "link set lo up",
        `addr add ${n.pod.ip}/32 dev eth0`,
        "link set eth0 up",
        "route add 169.254.1.1 dev eth0 scope link",
        "route add default via 169.254.1.1 dev eth0",
      ]);
      await ipBatch(n.netns, [`route add ${n.pod.ip}/32 dev ${POD_HOST_VETH} scope link`]);
    });
    return { nodes };
  } catch (e) {
    await destroyGuestLab(nodes);
    throw e;
  }
}

/** Deletes every namespace of the lab (those that exist); never throws. */
export async function destroyGuestLab(nodes: readonly GuestNode[] = GUEST_NODES): Promise<void> {
  const namespaces = [...nodes.flatMap((n) => [n.pod.netns, n.netns]), ROUTER_NETNS, FABRIC_NETNS];
  for (const ns of namespaces) await runCommand("ip", ["netns", "del", ns], { timeoutMs: 10_000 });
}

/** Sets the pod MTU on both ends of every pod's veth (Calico gives both sides the pod MTU). */
export async function setPodMtu(nodes: readonly GuestNode[], mtu: number): Promise<void> {
  await mapBounded(nodes, 3, async (n) => {
    await ipBatch(n.netns, [`link set dev ${POD_HOST_VETH} mtu ${mtu}`]);
    await ipBatch(n.pod.netns, [`link set dev eth0 mtu ${mtu}`]);
  });
}

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
