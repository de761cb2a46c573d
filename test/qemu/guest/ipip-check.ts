// Why: IPIP cannot run on the build machines' kernel (no ipip module), so this program runs inside a qemu
// guest on Debian's kernel (hack/qemu-ipip.sh bundles it with esbuild and boots it; docs/qemu.md). It
// drives Switchyard's REAL code, not a re-implementation: plans come from compileRoutingPlan, the kernel is
// programmed by the agent's applyRoutingPlan, and every claim is checked with real packets between pods in
// network namespaces: every pod reaches every pod, the path MTU equals plan.podMtu exactly (DF ping), the
// route each node picks is the transport of its own mode, and the tunnel device that carried the packets
// is read from its counters. Three scenarios run in order on one lab, so each apply also reconciles the
// previous scenario's state (device added, routes switched): ipip; ipip crossSubnet; and the mixed pair of a
// migration, n1 sending IPIP while n2 (and n3) send VXLAN, every node receiving both.
// Output: `ok - ...` / `not ok - ...` per check, `# ...` notes, then `N passed, M failed`. Exit 0 when all
// passed, 1 when some failed (the guest's /init prints a failing verdict itself for any other exit).
import { ClusterNetworkSpecSchema, type Mode } from "../../../src/api/cluster-network";
import { compileRoutingPlan } from "../../../src/compile/routing/compile-routing";
import { IPIP_DEVICE } from "../../../src/modes/ipip";
import { VXLAN_DEVICE } from "../../../src/modes/vxlan";
import type { RoutingInput, RoutingPlan } from "../../../src/model/routing-plan";
import { applyRoutingPlan, type ApplyReport } from "../../../src/agent/routing/apply";
import { join } from "node:path";
import { mapBounded } from "../../../src/base/limit";
import { addPod, createLab, destroyLab, setPodMtu, type Lab, type LabPod } from "../../../lab/topology";
import { CheckReport, deviceInfo, ping, routeDevice, txPackets } from "./guest-checks";

const TUNNELS = [IPIP_DEVICE, VXLAN_DEVICE] as const;
/** The guest's lab (lab/topology.ts): n1, n2 on 192.168.10.0/24, n3 on 192.168.20.0/24 behind the router. */
const PREFIX = "qipip-";

/** A node as the checks use it: the lab's node, its subnet, the block IPAM would give it, its one pod. */
interface GuestNode {
  readonly name: string;
  readonly netns: string;
  readonly ip: string;
  readonly underlayCIDR: string;
  readonly block: string;
  readonly pod: LabPod;
}
/** The underlay device: what a natively routed packet leaves by. */
const UNDERLAY = "eth0";

interface Scenario {
  readonly title: string;
  readonly mode: Mode;
  readonly crossSubnet: boolean;
  /** The mode each node sends with (differs from spec.mode only mid-migration). */
  readonly nodeModes: Readonly<Record<string, Mode>>;
  readonly modesInUse: readonly Mode[];
  /** The device a node must send to a peer's pods by: written from the mode's definition, not read from the plan. */
  readonly expectedDevice: (from: GuestNode, to: GuestNode) => string;
  /** Pairs whose path MTU is probed with DF pings. */
  readonly mtuPairs: readonly (readonly [string, string])[];
  /** Also apply every plan a second time and require no kernel change (idempotence on a real kernel). */
  readonly reapply?: boolean;
}

const sameSubnet = (a: GuestNode, b: GuestNode): boolean => a.underlayCIDR === b.underlayCIDR;

const SCENARIOS: readonly Scenario[] = [
  {
    title: "ipip",
    mode: "ipip",
    crossSubnet: false,
    nodeModes: { n1: "ipip", n2: "ipip", n3: "ipip" },
    modesInUse: ["ipip"],
    expectedDevice: () => IPIP_DEVICE,
    mtuPairs: [
      ["n1", "n2"],
      ["n1", "n3"],
    ],
    reapply: true,
  },
  {
    title: "ipip crossSubnet",
    mode: "ipip",
    crossSubnet: true,
    nodeModes: { n1: "ipip", n2: "ipip", n3: "ipip" },
    modesInUse: ["ipip"],
    expectedDevice: (from, to) => (sameSubnet(from, to) ? UNDERLAY : IPIP_DEVICE),
    mtuPairs: [["n3", "n1"]],
  },
  {
    title: "mixed ipip+vxlan",
    mode: "ipip",
    crossSubnet: false,
    nodeModes: { n1: "ipip", n2: "vxlan", n3: "vxlan" },
    modesInUse: ["ipip", "vxlan"],
    expectedDevice: (from) => (from.name === "n1" ? IPIP_DEVICE : VXLAN_DEVICE),
    mtuPairs: [
      ["n1", "n2"],
      ["n2", "n1"],
    ],
  },
];

function routingInput(s: Scenario, nodes: readonly GuestNode[]): RoutingInput {
  const spec = ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: s.mode, crossSubnet: s.crossSubnet });
  return {
    spec,
    modesInUse: s.modesInUse,
    nodes: nodes.map((n) => ({ name: n.name, labels: {}, ip: n.ip, underlayCIDR: n.underlayCIDR, block: n.block, mode: s.nodeModes[n.name] ?? s.mode })),
  };
}

function describeReport(r: ApplyReport): string[] {
  return [...r.errors.map((e) => `${e.stage} ${e.reason}: ${e.message}${e.command ? ` (${e.command})` : ""}`), ...r.commands.map((c) => `issued: ${c}`)];
}

function changeCount(r: ApplyReport): number {
  return Object.values(r.changes).reduce((a, b) => a + b, 0);
}

function since(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)} s`;
}

async function runScenario(report: CheckReport, s: Scenario, lab: Lab, nodes: readonly GuestNode[]): Promise<void> {
  const started = Date.now();
  report.note(`scenario ${s.title}: modes ${nodes.map((n) => `${n.name}=${s.nodeModes[n.name] ?? s.mode}`).join(" ")}, in use [${s.modesInUse.join(", ")}]`);
  const input = routingInput(s, nodes);
  const plans = new Map<string, RoutingPlan>(nodes.map((n) => [n.name, compileRoutingPlan(input, n.name)]));
  const plan = (n: GuestNode): RoutingPlan => plans.get(n.name)!;
  for (const n of nodes) {
    const p = plan(n);
    report.check(`${s.title}: ${n.name} plan compiles without diagnostics`, p.diagnostics.length === 0, p.diagnostics.map((d) => `${d.reason}: ${d.message}`));
  }
  const podMtus = [...new Set(nodes.map((n) => plan(n).podMtu))];
  const podMtu = podMtus[0]!;
  report.check(`${s.title}: every node's plan has the same pod MTU (${podMtus.join(", ")})`, podMtus.length === 1);
  await setPodMtu(lab, podMtu);

  // Apply on all nodes at once, as the agents of a cluster would.
  const reports = await mapBounded(nodes, nodes.length, (n) => applyRoutingPlan(n.netns, plan(n)));
  nodes.forEach((n, i) => {
    const r = reports[i]!;
    report.check(`${s.title}: applyRoutingPlan on ${n.name} succeeds (${changeCount(r)} changes, ${r.durationMs} ms)`, r.ok, describeReport(r));
  });
  if (s.reapply) {
    const again = await mapBounded(nodes, nodes.length, (n) => applyRoutingPlan(n.netns, plan(n)));
    nodes.forEach((n, i) => {
      const r = again[i]!;
      report.check(`${s.title}: re-applying the unchanged plan on ${n.name} changes nothing (${r.durationMs} ms)`, r.ok && changeCount(r) === 0, describeReport(r));
    });
  }

  // The tunnel devices as the kernel has them.
  await mapBounded(nodes, nodes.length, async (n) => {
    const p = plan(n);
    if (p.devices.ipip) {
      const d = await deviceInfo(n.netns, IPIP_DEVICE);
      const want = { kind: "ipip", local: n.ip, mtu: p.devices.ipip.mtu };
      report.check(`${s.title}: ${n.name} has ${IPIP_DEVICE} (ipip, local ${n.ip}, mtu ${want.mtu})`, d?.kind === want.kind && d.local === want.local && d.mtu === want.mtu, [`kernel: ${JSON.stringify(d)}`]);
    }
    if (p.devices.vxlan) {
      const d = await deviceInfo(n.netns, VXLAN_DEVICE);
      report.check(`${s.title}: ${n.name} has ${VXLAN_DEVICE} (vxlan, mtu ${p.devices.vxlan.mtu})`, d?.kind === "vxlan" && d.mtu === p.devices.vxlan.mtu, [`kernel: ${JSON.stringify(d)}`]);
    }
    for (const t of TUNNELS) {
      const planned = (t === IPIP_DEVICE ? p.devices.ipip : p.devices.vxlan) !== undefined;
      if (!planned) {
        const d = await deviceInfo(n.netns, t);
        report.check(`${s.title}: ${n.name} has no ${t} (not in its plan)`, d === undefined, [`kernel: ${JSON.stringify(d)}`]);
      }
    }
  });

  // Each node sends by its own mode: the route the kernel picks for every peer's pod.
  const pairs = nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => [a, b] as const));
  await mapBounded(pairs, 3, async ([a, b]) => {
    const want = s.expectedDevice(a, b);
    const got = await routeDevice(a.netns, b.pod.ip);
    report.check(`${s.title}: ${a.name} routes ${b.name}'s pod ${b.pod.ip} via ${want}`, got.dev === want, [`ip route get: ${JSON.stringify(got)}`]);
  });

  // Every pod pings every pod; the tunnel counters say which devices carried the packets.
  const before = await mapBounded(nodes, nodes.length, (n) => txPackets(n.netns, TUNNELS));
  const pings = await mapBounded(pairs, pairs.length, ([a, b]) => ping(a.pod.netns, b.pod.ip));
  pairs.forEach(([a, b], i) => {
    const r = pings[i]!;
    report.check(`${s.title}: pod on ${a.name} (${a.pod.ip}) pings pod on ${b.name} (${b.pod.ip})`, r.code === 0, [r.stdout, r.stderr]);
  });
  const after = await mapBounded(nodes, nodes.length, (n) => txPackets(n.netns, TUNNELS));
  nodes.forEach((n, i) => {
    const used = TUNNELS.filter((t) => (after[i]!.get(t) ?? 0) > (before[i]!.get(t) ?? 0));
    const expected = TUNNELS.filter((t) => nodes.some((peer) => peer !== n && s.expectedDevice(n, peer) === t));
    const show = (xs: readonly string[]): string => (xs.length === 0 ? "none" : xs.join(", "));
    report.check(`${s.title}: ${n.name} sent through tunnel(s) ${show(expected)} only`, used.join() === expected.join(), [
      `devices whose tx counter grew: ${show(used)}`,
      `before ${JSON.stringify([...before[i]!])}, after ${JSON.stringify([...after[i]!])}`,
    ]);
  });

  // Path MTU: a DF ping of exactly the pod MTU passes (its encapsulation fits the underlay), one byte more fails.
  for (const [fromName, toName] of s.mtuPairs) {
    const a = nodes.find((n) => n.name === fromName)!;
    const b = nodes.find((n) => n.name === toName)!;
    const fits = await ping(a.pod.netns, b.pod.ip, { payload: podMtu - 28 });
    report.check(`${s.title}: DF ping of ${podMtu} bytes (the pod MTU) from ${a.name}'s pod to ${b.name}'s pod passes`, fits.code === 0, [fits.stdout, fits.stderr]);
    const over = await ping(a.pod.netns, b.pod.ip, { payload: podMtu - 27 });
    report.check(`${s.title}: DF ping of ${podMtu + 1} bytes from ${a.name}'s pod to ${b.name}'s pod fails`, over.code !== 0, [over.stdout, over.stderr]);
  }
  report.note(`scenario ${s.title}: ${since(started)}`);
}

async function main(report: CheckReport): Promise<void> {
  if (process.env["SWITCHYARD_QEMU_GUEST"] !== "1") {
    throw new Error(`this program builds namespaces ${PREFIX}*: it runs only inside the qemu guest (hack/qemu-ipip.sh)`);
  }
  const started = Date.now();
  // IPv6 off: Switchyard is IPv4-only here, and IPv6 router solicitations and MLD reports on the tunnel
  // devices would muddy the "which tunnel carried the packets" counters.
  // switchyard-cni wires the pods; hack/qemu-ipip.sh puts the binary beside this bundle.
  const lab = await createLab({
    prefix: PREFIX,
    nodes: 3,
    subnets: 2,
    disableIpv6: true,
    runDir: `/tmp/${PREFIX}lab`,
    podBlocks: [1, 2, 3].map((i) => `10.244.${i}.0/24`),
    cniPlugin: join(import.meta.dirname, "switchyard-cni"),
  });
  try {
    const nodes: GuestNode[] = [];
    for (const [i, n] of lab.nodes.entries()) {
      const pod = await addPod(lab, { namespace: "guest", name: `p${i + 1}`, node: n.name, ip: `10.244.${i + 1}.2` });
      nodes.push({ name: n.name, netns: n.netns, ip: n.ip, underlayCIDR: lab.subnets[n.subnet]!.cidr, block: `10.244.${i + 1}.0/24`, pod });
    }
    report.note(`lab of ${nodes.length} nodes and ${nodes.length} pods built in ${since(started)}`);
    for (const s of SCENARIOS) await runScenario(report, s, lab, nodes);
  } finally {
    await destroyLab(PREFIX, { runDir: `/tmp/${PREFIX}lab` });
  }
  report.note(`all scenarios: ${since(started)}`);
}

const report = new CheckReport();
main(report).then(
  () => {
    console.log(report.verdict());
    process.exit(report.failed === 0 && report.passed > 0 ? 0 : 1);
  },
  (e: unknown) => {
    report.check(`the check program ran to the end`, false, [e instanceof Error ? (e.stack ?? e.message) : String(e)]);
    console.log(report.verdict());
    process.exit(1);
  },
);
