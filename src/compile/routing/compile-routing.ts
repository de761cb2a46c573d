// compileRoutingPlan: one node's routing plan from the cluster's nodes and the mode each sends with.
// The per-peer decision takes the node's OWN current mode, and every node receives every transport in
// use, so a cluster with mixed modes (during a migration) still carries every packet: a VXLAN sender's
// packets are decapsulated by a BGP-mode receiver, whose replies go back natively (rp_filter stays loose).
// Generic over the modes: what a mode does (its devices, routes, entries, BIRD's part) comes from its
// backend in src/modes (registry.ts); this file only stacks them (preferred and standby metrics).
import { MODES, type Mode } from "../../api/cluster-network";
import { backendForTransport, backendOf, MODE_BACKEND_LIST } from "../../modes/registry";
import { blockGateway, nativeRoutes, sameSubnet, type NodePair } from "../../modes/backend";
import {
  METRIC,
  type ModePlanParts,
  type ModeSettings,
  type PeerDecision,
  type PlanDevice,
  type PlanDiagnostic,
  type PlanFdb,
  type PlanNeighbor,
  type PlanRoute,
  type RoutingInput,
  type RoutingNode,
  type RoutingPlan,
  type Transport,
} from "../../model/routing-plan";

export const DEFAULT_UNDERLAY_MTU = 1500;

function podMtuFor(input: RoutingInput, self: RoutingNode): number {
  if (input.spec.mtu > 0) return input.spec.mtu;
  const overhead = Math.max(0, ...input.modesInUse.map((m) => backendOf(m).overhead));
  return (self.underlayMtu ?? DEFAULT_UNDERLAY_MTU) - overhead;
}

/** Every mode's settings block: the spec's, else the source mode's (kept from before a migration). */
function settingsOf(input: RoutingInput, sourceConfig: ModeSettings): ModeSettings {
  const out: Record<string, unknown> = { ...sourceConfig };
  for (const m of MODES) {
    const v = (input.spec as Readonly<Record<string, unknown>>)[m];
    if (v !== undefined) out[m] = v;
  }
  return out as ModeSettings;
}

function pairOf(input: RoutingInput, self: RoutingNode, peer: RoutingNode, settings: ModeSettings): NodePair {
  return { self, peer, sameSubnet: sameSubnet(self, peer), crossSubnet: input.spec.crossSubnet, settings };
}

/** Static routes to `dsts` of `peer` over `transport` (none for a transport a daemon routes, as bgp). */
function staticRoutes(transport: Transport, peer: RoutingNode, dsts: readonly string[], metric: number): PlanRoute[] {
  if (transport === "native") return nativeRoutes(peer, dsts, metric);
  return backendForTransport(transport)?.staticRoutes?.(peer, dsts, metric) ?? [];
}

/**
 * The peers `nodeName` cannot send to with its mode, and why: the per-peer decision of
 * compileRoutingPlan without the routes (a preflight asks this of every node pair).
 */
export function refusedPeers(input: RoutingInput, nodeName: string, sourceConfig: ModeSettings = {}): { peer: string; reason: string }[] {
  const self = input.nodes.find((n) => n.name === nodeName);
  if (!self) throw new Error(`refusedPeers: unknown node ${nodeName}`);
  const settings = settingsOf(input, sourceConfig);
  const backend = backendOf(self.mode);
  const out: { peer: string; reason: string }[] = [];
  for (const peer of input.nodes) {
    if (peer.name === nodeName) continue;
    const d = backend.decideSend(pairOf(input, self, peer, settings));
    if (d.transport === "none") out.push({ peer: peer.name, reason: d.reason });
  }
  return out.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
}

/**
 * The routing plan of `nodeName`. Pure and deterministic (peers sorted by name). Throws only on a
 * programming error (unknown node); user-facing problems are diagnostics in the plan.
 */
export function compileRoutingPlan(input: RoutingInput, nodeName: string, sourceConfig: ModeSettings = {}): RoutingPlan {
  const self = input.nodes.find((n) => n.name === nodeName);
  if (!self) throw new Error(`compileRoutingPlan: unknown node ${nodeName}`);
  const others = input.nodes.filter((n) => n.name !== nodeName).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const inUse = new Set<Mode>([...input.modesInUse, self.mode]);
  const inUseBackends = MODE_BACKEND_LIST.filter((b) => inUse.has(b.mode));
  const sending = backendOf(self.mode);
  const settings = settingsOf(input, sourceConfig);
  const underlayMtu = self.underlayMtu ?? DEFAULT_UNDERLAY_MTU;
  const podMtu = podMtuFor(input, self);
  const diagnostics: PlanDiagnostic[] = [];
  const borrowedByNode = new Map<string, string[]>();
  for (const b of input.borrowed ?? []) borrowedByNode.set(b.node, [...(borrowedByNode.get(b.node) ?? []), `${b.ip}/32`]);

  // Every node keeps the device of every mode in use, to receive from peers that send with it.
  const devices: { [M in Mode]?: PlanDevice } = {};
  for (const b of inUseBackends) if (b.device) devices[b.mode] = b.device.compile({ self, underlayMtu, settings });
  const entryDevices = inUseBackends.flatMap((b) => (b.device?.peerEntries ? [b.device] : []));

  const routes: PlanRoute[] = [];
  const neighbors: PlanNeighbor[] = [];
  const fdb: PlanFdb[] = [];
  const peers: PeerDecision[] = [];
  const standbyModes = [...inUse].sort().filter((m) => m !== self.mode);

  for (const peer of others) {
    const pair = pairOf(input, self, peer, settings);
    const decision = sending.decideSend(pair);
    peers.push(decision.transport === "none" ? { peer: peer.name, transport: "none", reason: decision.reason } : { peer: peer.name, transport: decision.transport });
    if (!peer.block) continue;
    const dsts = [peer.block, ...(borrowedByNode.get(peer.name) ?? [])];
    for (const device of entryDevices) {
      const e = device.peerEntries!(peer);
      neighbors.push(...e.neighbors);
      fdb.push(...e.fdb);
    }
    const preferred = decision.transport;
    if (preferred !== "none") routes.push(...staticRoutes(preferred, peer, dsts, METRIC.preferred));
    // Standby routes of the other transports in use: ready for an instant switch or rollback.
    for (const m of standbyModes) {
      const alt = backendOf(m).decideSend(pair);
      if (alt.transport === "none" || alt.transport === preferred) continue;
      routes.push(...staticRoutes(alt.transport, peer, dsts, METRIC.standby));
    }
  }

  const refused = peers.filter((p) => p.transport === "none");
  if (refused.length > 0) {
    diagnostics.push({
      reason: "ModeCannotServePeers",
      message: `mode ${self.mode} cannot reach ${refused.length} peer(s) from ${self.name}: ${refused.map((p) => `${p.peer}: ${p.reason}`).join("; ")}`,
    });
  }
  if (!self.block) diagnostics.push({ reason: "NoPodBlock", message: `${self.name} has no pod block: the pools in spec.podCIDRs are full` });

  // The modes' own parts of the plan (bgp: BIRD's configuration).
  const originate = self.block ? [self.block, ...(borrowedByNode.get(self.name) ?? [])] : [];
  let parts: ModePlanParts = {};
  for (const b of inUseBackends) {
    if (!b.compilePlanPart) continue;
    const r = b.compilePlanPart({ self, others, originate, pools: { podCIDRs: input.spec.podCIDRs, blockSize: input.spec.blockSize }, settings });
    diagnostics.push(...r.diagnostics);
    parts = { ...parts, ...r.part };
  }
  // Dedupe routes (a borrowed /32 equal to a block cannot happen, but keep keys unique by construction).
  const seen = new Set<string>();
  const uniqueRoutes = routes.filter((r) => {
    const k = `${r.dst}|${r.metric}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const healthAddress = self.block ? blockGateway(self.block) : undefined;
  return {
    node: self.name,
    nodeIP: self.ip,
    underlayCIDR: self.underlayCIDR,
    ...(self.block ? { block: self.block } : {}),
    mode: self.mode,
    podMtu,
    ...(healthAddress ? { healthAddress } : {}),
    devices,
    neighbors,
    fdb,
    routes: uniqueRoutes,
    peers,
    ...parts,
    nat: { enabled: input.spec.natOutgoing, podCIDRs: [...input.spec.podCIDRs], nodeIP: self.ip },
    diagnostics,
  };
}
