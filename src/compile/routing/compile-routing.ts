// compileRoutingPlan: one node's routing plan from the cluster's nodes and the mode each sends with.
// The per-peer decision takes the node's OWN current mode, and every node receives every transport in
// use, so a cluster with mixed modes (during a migration) still carries every packet: a VXLAN sender's
// packets are decapsulated by a BGP-mode receiver, whose replies go back natively (rp_filter stays loose).
import type { BgpConfigSchema, Mode } from "../../api/cluster-network";
import type { z } from "zod";
import { cidrContains, formatIPv4, parseCidr, parseIPv4 } from "../../api/ipv4";
import { shortHash } from "../../model/names";
import { matchesLabelSelector } from "../../model/label-selector";
import { MODE_BACKENDS } from "./modes";
import {
  METRIC,
  MODE_OVERHEAD,
  type BgpPeerPlan,
  type BgpPlan,
  type PeerDecision,
  type PlanFdb,
  type PlanNeighbor,
  type PlanRoute,
  type RoutingInput,
  type RoutingNode,
  type RoutingPlan,
  type Transport,
} from "../../model/routing-plan";

export const VXLAN_DEVICE = "sy-vxlan";
export const IPIP_DEVICE = "sy-ipip";
export const DEFAULT_UNDERLAY_MTU = 1500;

type BgpConfig = z.infer<typeof BgpConfigSchema>;

// Per-peer values are computed for every (node, peer) pair, N^2 per cluster compile: memoise the ones that
// depend on the peer alone (pure functions of their argument, so the caches change no result).
const macCache = new Map<string, string>();
const gatewayCache = new Map<string, string | undefined>();
function remember<V>(cache: Map<string, V>, key: string, make: () => V): V {
  if (cache.has(key)) return cache.get(key) as V;
  if (cache.size > 200_000) cache.clear();
  const v = make();
  cache.set(key, v);
  return v;
}

/** A deterministic, locally administered unicast MAC for a node's VTEP (no need to read MACs back). */
export function vtepMac(nodeName: string): string {
  return remember(macCache, nodeName, () => {
    const h = shortHash(`vtep/${nodeName}`, 10);
    return `0e:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}`;
  });
}

/** The first address of a block: the node's tunnel device address (VXLAN VTEP "gateway" for peers). */
export function blockGateway(block: string): string | undefined {
  return remember(gatewayCache, block, () => {
    const c = parseCidr(block);
    return c ? formatIPv4(c.addr) : undefined;
  });
}

export function sameSubnet(a: RoutingNode, b: RoutingNode): boolean {
  if (a.underlayCIDR !== b.underlayCIDR) return false;
  const ca = parseCidr(a.underlayCIDR);
  const ipb = parseIPv4(b.ip);
  return ca !== undefined && ipb !== undefined && cidrContains(ca, ipb);
}

/** BIRD protocol names must be identifiers. */
function birdName(prefix: string, text: string): string {
  return `${prefix}_${text.replace(/[^A-Za-z0-9]/g, "_")}`;
}

function podMtuFor(input: RoutingInput, self: RoutingNode): number {
  if (input.spec.mtu > 0) return input.spec.mtu;
  const overhead = Math.max(0, ...input.modesInUse.map((m) => MODE_OVERHEAD[m]));
  return (self.underlayMtu ?? DEFAULT_UNDERLAY_MTU) - overhead;
}

function bgpReachability(bgp: BgpConfig | undefined, self: RoutingNode, peer: RoutingNode, torPeersOf: (n: RoutingNode) => BgpPeerPlan[]): { ok: boolean; reason?: string } {
  if (!bgp) return { ok: false, reason: "spec.bgp is not set" };
  if (bgp.topology === "tor") {
    if (torPeersOf(self).length === 0) return { ok: false, reason: `${self.name} matches no spec.bgp.peers[].nodeSelector, so it has no top-of-rack peer` };
    if (torPeersOf(peer).length === 0) return { ok: false, reason: `${peer.name} has no top-of-rack peer, so its block is never announced` };
    return { ok: true };
  }
  if (!sameSubnet(self, peer)) {
    return {
      ok: false,
      reason: `BGP ${bgp.topology} cannot reach ${peer.name} on ${peer.underlayCIDR} from ${self.underlayCIDR}: iBGP next hops on another subnet do not resolve; use topology tor`,
    };
  }
  return { ok: true };
}

function compileBgp(bgp: BgpConfig, self: RoutingNode, others: readonly RoutingNode[], originate: string[], torPeersOf: (n: RoutingNode) => BgpPeerPlan[]): BgpPlan {
  const peers: BgpPeerPlan[] = [];
  const isRR = (n: RoutingNode) => bgp.topology === "route-reflectors" && matchesLabelSelector(bgp.routeReflectors?.nodeSelector, n.labels);
  const sessionPeer = (n: RoutingNode, rrClient: boolean): BgpPeerPlan => ({
    name: birdName("node", n.name),
    address: n.ip,
    asNumber: bgp.asNumber,
    ...(rrClient ? { routeReflectorClient: true } : {}),
    description: `node ${n.name}`,
  });
  // Sessions only where next hops resolve (same subnet); other pairs are reported by bgpReachability.
  const reachable = others.filter((n) => sameSubnet(self, n));
  if (bgp.topology === "full-mesh") {
    for (const n of reachable) peers.push(sessionPeer(n, false));
  } else if (bgp.topology === "route-reflectors") {
    if (isRR(self)) for (const n of reachable) peers.push(sessionPeer(n, !isRR(n)));
    else for (const n of reachable.filter(isRR)) peers.push(sessionPeer(n, false));
  } else {
    peers.push(...torPeersOf(self));
  }
  const rrId = bgp.topology === "route-reflectors" && isRR(self) ? self.ip : undefined;
  return {
    asNumber: bgp.asNumber,
    routerId: self.ip,
    originate,
    kernelMetric: METRIC.bird,
    ...(rrId ? { routeReflectorClusterId: rrId } : {}),
    peers: peers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    underlayInterface: "eth*",
  };
}

function torPeersFor(bgpCfg: BgpConfig | undefined): (n: RoutingNode) => BgpPeerPlan[] {
  return (n) =>
    (bgpCfg?.topology === "tor" ? bgpCfg.peers ?? [] : [])
      .filter((p) => matchesLabelSelector(p.nodeSelector, n.labels))
      .map((p) => ({ name: birdName("tor", p.address), address: p.address, asNumber: p.asNumber, allowLocalAs: true, description: `top-of-rack ${p.address}` }));
}

function pairContext(input: RoutingInput, self: RoutingNode, peer: RoutingNode, bgpCfg: BgpConfig | undefined, torPeersOf: (n: RoutingNode) => BgpPeerPlan[]) {
  return { self, peer, sameSubnet: sameSubnet(self, peer), crossSubnet: input.spec.crossSubnet, bgpReach: bgpReachability(bgpCfg, self, peer, torPeersOf) };
}

/**
 * The peers `nodeName` cannot send to with its mode, and why: the per-peer decision of
 * compileRoutingPlan without the routes (a preflight asks this of every node pair).
 */
export function refusedPeers(input: RoutingInput, nodeName: string, sourceConfig: { bgp?: BgpConfig } = {}): { peer: string; reason: string }[] {
  const self = input.nodes.find((n) => n.name === nodeName);
  if (!self) throw new Error(`refusedPeers: unknown node ${nodeName}`);
  const bgpCfg = input.spec.bgp ?? sourceConfig.bgp;
  const torPeersOf = torPeersFor(bgpCfg);
  const out: { peer: string; reason: string }[] = [];
  for (const peer of input.nodes) {
    if (peer.name === nodeName) continue;
    const d = MODE_BACKENDS[self.mode].decideSend(pairContext(input, self, peer, bgpCfg, torPeersOf));
    if (d.transport === "none") out.push({ peer: peer.name, reason: d.reason });
  }
  return out.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
}

/**
 * The routing plan of `nodeName`. Pure and deterministic (peers sorted by name). Throws only on a
 * programming error (unknown node); user-facing problems are diagnostics in the plan.
 */
export function compileRoutingPlan(input: RoutingInput, nodeName: string, sourceConfig: { bgp?: BgpConfig; vxlan?: { vni: number; port: number } } = {}): RoutingPlan {
  const self = input.nodes.find((n) => n.name === nodeName);
  if (!self) throw new Error(`compileRoutingPlan: unknown node ${nodeName}`);
  const others = input.nodes.filter((n) => n.name !== nodeName).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const inUse = new Set<Mode>([...input.modesInUse, self.mode]);
  const bgpCfg = input.spec.bgp ?? sourceConfig.bgp;
  const vxCfg = input.spec.vxlan ?? sourceConfig.vxlan ?? { vni: 1, port: 8472 };
  const underlayMtu = self.underlayMtu ?? DEFAULT_UNDERLAY_MTU;
  const podMtu = podMtuFor(input, self);
  const diagnostics: { reason: string; message: string }[] = [];
  const borrowedByNode = new Map<string, string[]>();
  for (const b of input.borrowed ?? []) borrowedByNode.set(b.node, [...(borrowedByNode.get(b.node) ?? []), `${b.ip}/32`]);

  const torPeersOf = torPeersFor(bgpCfg);

  const devices: { vxlan?: RoutingPlan["devices"]["vxlan"]; ipip?: RoutingPlan["devices"]["ipip"] } = {};
  if (inUse.has("vxlan")) {
    const gw = self.block ? blockGateway(self.block) : undefined;
    devices.vxlan = { name: VXLAN_DEVICE, vni: vxCfg.vni, port: vxCfg.port, mac: vtepMac(self.name), local: self.ip, ...(gw ? { address: gw } : {}), mtu: underlayMtu - MODE_OVERHEAD.vxlan };
  }
  if (inUse.has("ipip")) devices.ipip = { name: IPIP_DEVICE, local: self.ip, mtu: underlayMtu - MODE_OVERHEAD.ipip };

  const routes: PlanRoute[] = [];
  const neighbors: PlanNeighbor[] = [];
  const fdb: PlanFdb[] = [];
  const peers: PeerDecision[] = [];

  const staticRoutes = (transport: Exclude<Transport, "bgp">, peer: RoutingNode, dsts: string[], metric: number): PlanRoute[] => {
    switch (transport) {
      case "native":
        return dsts.map((dst) => ({ dst, via: peer.ip, metric, transport, peer: peer.name }));
      case "ipip":
        return dsts.map((dst) => ({ dst, via: peer.ip, dev: IPIP_DEVICE, onlink: true, metric, transport, peer: peer.name }));
      case "vxlan": {
        const gw = peer.block ? blockGateway(peer.block) : undefined;
        return gw ? dsts.map((dst) => ({ dst, via: gw, dev: VXLAN_DEVICE, onlink: true, metric, transport, peer: peer.name })) : [];
      }
    }
  };

  for (const peer of others) {
    const ctx = pairContext(input, self, peer, bgpCfg, torPeersOf);
    const decision = MODE_BACKENDS[self.mode].decideSend(ctx);
    peers.push(decision.transport === "none" ? { peer: peer.name, transport: "none", reason: decision.reason } : { peer: peer.name, transport: decision.transport });
    if (!peer.block) continue;
    const dsts = [peer.block, ...(borrowedByNode.get(peer.name) ?? [])];
    if (devices.vxlan && peer.block) {
      const gw = blockGateway(peer.block);
      if (gw) {
        neighbors.push({ dev: VXLAN_DEVICE, ip: gw, mac: vtepMac(peer.name) });
        fdb.push({ dev: VXLAN_DEVICE, mac: vtepMac(peer.name), dst: peer.ip });
      }
    }
    const preferred = decision.transport;
    if (preferred !== "none" && preferred !== "bgp") routes.push(...staticRoutes(preferred, peer, dsts, METRIC.preferred));
    // Standby routes of the other transports in use: ready for an instant switch or rollback.
    for (const m of [...inUse].sort()) {
      if (m === self.mode || m === "bgp") continue;
      const alt = MODE_BACKENDS[m].decideSend(ctx);
      if (alt.transport === "none" || alt.transport === "bgp" || alt.transport === preferred) continue;
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

  const originate = self.block ? [self.block, ...(borrowedByNode.get(self.name) ?? [])] : [];
  let bgp: BgpPlan | undefined;
  if (inUse.has("bgp")) {
    if (!bgpCfg) diagnostics.push({ reason: "BgpConfigMissing", message: "bgp is in use but no BGP settings are known (spec.bgp)" });
    else bgp = compileBgp(bgpCfg, self, others, originate, torPeersOf);
  }
  // Dedupe routes (a borrowed /32 equal to a block cannot happen, but keep keys unique by construction).
  const seen = new Set<string>();
  const uniqueRoutes = routes.filter((r) => {
    const k = `${r.dst}|${r.metric}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return {
    node: self.name,
    nodeIP: self.ip,
    underlayCIDR: self.underlayCIDR,
    ...(self.block ? { block: self.block } : {}),
    mode: self.mode,
    podMtu,
    ...(self.block && blockGateway(self.block) ? { healthAddress: blockGateway(self.block)! } : {}),
    devices,
    neighbors,
    fdb,
    routes: uniqueRoutes,
    peers,
    ...(bgp ? { bgp } : {}),
    nat: { enabled: input.spec.natOutgoing, podCIDRs: [...input.spec.podCIDRs], nodeIP: self.ip },
    diagnostics,
  };
}
