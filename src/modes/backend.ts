// One interface for every mode, and the pieces every mode shares. A mode is one folder beside this file
// (Flannel's pkg/backend is the model): the backend says what the mode costs (overhead), what a node needs
// to run it (capabilities the agent probes), how a node sending with it reaches each peer (the send
// decision, the static routes of its transport, per-peer FDB/neighbour entries), the tunnel device it keeps
// (with the pure `ip link` lines that create and check it), and how a migration to or from it patches the
// ClusterNetwork spec. Generic code (compile-routing, the agent's diff and probes, preflight, the CLI and
// the lab) asks the registry (registry.ts) and never names a mode. Pure: no I/O, no clock.
import type { Mode } from "../api/cluster-network";
import { cidrContains, formatIPv4, parseCidr, parseIPv4 } from "../api/ipv4";
import type { ModeCapability } from "./registry";
import type {
  ModePlanParts,
  ModeSettings,
  PlanDevice,
  PlanDiagnostic,
  PlanFdb,
  PlanNeighbor,
  PlanRoute,
  RoutingNode,
  RoutingPlan,
  Transport,
} from "../model/routing-plan";

export interface ModeBackend {
  /** The mode's name in spec.mode. */
  readonly mode: Mode;
  /** Bytes of encapsulation per packet: the pod MTU leaves room for the largest overhead in use. */
  readonly overhead: number;
  /** What a node must have to send (and receive) with this mode: capabilities the agent probes and reports. */
  readonly needs: readonly ModeNeed[];
  /** The transport this mode provides, when it is not plain routing (host-gw has none: it sends natively). */
  readonly transport?: Transport;
  /** The kernel route protocol of this transport's routes, when a daemon installs them (bgp: `bird`). */
  readonly kernelRouteProtocol?: string;
  /** The tunnel device every node keeps while the mode is in use (to receive it), if the mode has one. */
  readonly device?: ModeDevice;
  /** How `pair.self` sends to `pair.peer` when `self` sends with this mode. */
  decideSend(pair: NodePair): SendDecision;
  /** Static routes to a peer's prefixes over this mode's transport (absent when a daemon installs them). */
  staticRoutes?(peer: RoutingNode, dsts: readonly string[], metric: number): PlanRoute[];
  /** The mode's own part of a node's plan while the mode is in use (bgp: BIRD's configuration). */
  compilePlanPart?(node: PlanPartNode): { readonly part: ModePlanParts; readonly diagnostics: readonly PlanDiagnostic[] };
  /**
   * What in `plan` needs this mode's capabilities besides sending with it (the device kept to receive,
   * the daemon), for a condition message; undefined when nothing does.
   */
  neededBy(plan: RoutingPlan): string | undefined;
  /** Migration: the JSON patch ops that keep the spec valid when a cluster moves TO this mode. */
  specPatchInto(spec: SpecView, options: SpecPatchOptions): SpecPatchOp[];
  /** Migration: the JSON patch ops that remove what only this mode uses when a cluster moves AWAY from it. */
  specPatchOutOf(spec: SpecView): SpecPatchOp[];
}

/** One node sending to one peer. */
export interface NodePair {
  readonly self: RoutingNode;
  readonly peer: RoutingNode;
  /** Both nodes' addresses are on one underlay subnet (L2 adjacency). */
  readonly sameSubnet: boolean;
  /** spec.crossSubnet: route natively inside a subnet, use the mode's transport only across subnets. */
  readonly crossSubnet: boolean;
  /** Every mode's settings block (the spec's, or the source mode's during a migration). */
  readonly settings: ModeSettings;
}

export type SendDecision = { readonly transport: Transport } | { readonly transport: "none"; readonly reason: string };

/** Something a node needs to run a mode. */
export interface ModeNeed {
  /** The name the agent probes and reports it under (NodeNetwork status.capabilities). */
  readonly capability: ModeCapability;
  /** kernel: a kernel feature, probed by creating the mode's device; tool: a program, probed by running it. */
  readonly kind: "kernel" | "tool";
  /** What it is, in the node's condition message: "the vxlan kernel module". */
  readonly what: string;
  /** What to install, in a preflight blocker (`what` when absent). */
  readonly install?: string;
  /** A tool's probe: `version` must succeed (its first line is the detail), `starts` must at least start. */
  readonly program?: { readonly version: readonly [string, ...string[]]; readonly starts?: readonly [string, ...string[]] };
}

/** A link as the agent reads it back from `ip -j -d link` (the part a device matches on). */
export interface DeviceLink {
  readonly kind?: string;
  readonly info: Readonly<Record<string, unknown>>;
}

/** What a device's entry is compiled from. */
export interface DeviceNode {
  readonly self: RoutingNode;
  /** The node's underlay MTU (1500 when unknown). */
  readonly underlayMtu: number;
  readonly settings: ModeSettings;
}

/** Value checks for everything that ends up in an `ip -batch` line; each adds a problem when it fails. */
export interface PlanValueChecks {
  ip(value: string | undefined, what: string): void;
  cidrOrIp(value: string, what: string): void;
  mac(value: string, what: string): void;
  int(value: number, min: number, max: number, what: string): void;
  /** The name is one of the devices Switchyard owns (registry.ts, OWNED_DEVICES). */
  ownedDevice(name: string, what: string): void;
}

/**
 * A mode's tunnel device: its plan entry, and the pure side of the agent's work on it (the `ip` lines
 * that create it, whether an existing link already is it). The agent owns exactly one device per mode,
 * under `name`.
 */
export interface ModeDevice<D extends PlanDevice = PlanDevice> {
  /** The kernel name of the device (at most 15 characters). */
  readonly name: string;
  /** What it carries, for messages: "VXLAN". */
  readonly carries: string;
  /** The capability a node needs to create it. */
  readonly capability: ModeCapability;
  /** The throwaway device detectCapabilities creates and deletes: `ip link add <name> type <type...>`. */
  readonly probe: { readonly name: string; readonly type: readonly [string, ...string[]] };
  /** Its `link add` names the underlay interface: without one it cannot be created. */
  readonly needsUnderlay: boolean;
  /** The device keeps exactly its planned address (others on it are removed); otherwise its addresses are left alone. */
  readonly ownsAddresses: boolean;
  /** The node's entry in its plan (`devices.<mode>`). */
  compile(node: DeviceNode): D;
  /** The FDB and neighbour entries that reach `peer` through this device, if the device needs any. */
  peerEntries?(peer: RoutingNode): { readonly neighbors: readonly PlanNeighbor[]; readonly fdb: readonly PlanFdb[] };
  /** Checks every value of the entry that ends up in a command (`path`: where the entry is, e.g. devices.vxlan). */
  checkEntry(entry: D, path: string, check: PlanValueChecks): void;
  /** Whether an existing link already is the planned device (else the agent deletes it and creates it again). */
  matches(entry: D, link: DeviceLink, underlayDev: string | undefined): boolean;
  /** The `ip -batch` lines that create the device, bring it up and give it its address. */
  createCommands(entry: D, underlayDev: string | undefined): string[];
}

/** What a mode's own part of a plan is compiled from. */
export interface PlanPartNode {
  readonly self: RoutingNode;
  /** Every other node, sorted by name. */
  readonly others: readonly RoutingNode[];
  /** The prefixes the node originates: its block and borrowed /32s. */
  readonly originate: readonly string[];
  /** The cluster's pod pools and block size: what a node's block (or a borrowed /32) can be. */
  readonly pools: { readonly podCIDRs: readonly string[]; readonly blockSize: number };
  readonly settings: ModeSettings;
}

// ------------------------------------------------------------------------------------- spec patches

/** A JSON patch operation (RFC 6902) on a ClusterNetwork. */
export type SpecPatchOp = { op: "add" | "replace" | "remove"; path: string; value?: unknown };
/** The ClusterNetwork spec as stored (defaults not applied). */
export type SpecView = Readonly<Record<string, unknown>>;

export interface SpecPatchOptions {
  /** Settings block for the target mode (`spec.<mode>`), set even when the spec has one. */
  readonly settings?: Readonly<Partial<Record<Mode, unknown>>>;
  /** Settings block for the target mode when the spec has none (else the backend's default, if any). */
  readonly defaults?: Readonly<Partial<Record<Mode, unknown>>>;
}

/** A mode that cannot route natively within a subnet turns spec.crossSubnet off (the API refuses it otherwise). */
export function crossSubnetOffPatch(spec: SpecView): SpecPatchOp[] {
  return spec["crossSubnet"] === true ? [{ op: "replace", path: "/spec/crossSubnet", value: false }] : [];
}

/** The target's settings block `spec.<mode>`: the one asked for, else the default when the spec has none. */
export function settingsBlockPatch(mode: Mode, spec: SpecView, options: SpecPatchOptions, fallback?: unknown): SpecPatchOp[] {
  const path = `/spec/${mode}`;
  const given = options.settings?.[mode];
  if (given !== undefined) return [{ op: spec[mode] === undefined ? "add" : "replace", path, value: given }];
  if (spec[mode] !== undefined) return [];
  const value = options.defaults?.[mode] ?? fallback;
  return value === undefined ? [] : [{ op: "add", path, value }];
}

/** A mode's settings block is only valid while the mode is spec.mode: it goes when the cluster leaves it. */
export function removeSettingsBlockPatch(mode: Mode, spec: SpecView): SpecPatchOp[] {
  return spec[mode] !== undefined ? [{ op: "remove", path: `/spec/${mode}` }] : [];
}

// ------------------------------------------------------------------------------------- shared pieces

export function sameSubnet(a: RoutingNode, b: RoutingNode): boolean {
  if (a.underlayCIDR !== b.underlayCIDR) return false;
  const ca = parseCidr(a.underlayCIDR);
  const ipb = parseIPv4(b.ip);
  return ca !== undefined && ipb !== undefined && cidrContains(ca, ipb);
}

/** A tunnel mode's send decision: its transport, or native within a subnet when crossSubnet is on. */
export function tunnelSend(transport: Transport): (pair: NodePair) => SendDecision {
  return ({ sameSubnet: local, crossSubnet }) => ({ transport: crossSubnet && local ? "native" : transport });
}

/** Native routes: `<dst> via <peer's underlay address>` (needs L2 adjacency: the gateway must be on a connected subnet). */
export function nativeRoutes(peer: RoutingNode, dsts: readonly string[], metric: number): PlanRoute[] {
  return dsts.map((dst) => ({ dst, via: peer.ip, metric, transport: "native", peer: peer.name }));
}

/** A device mode's neededBy: the device a node keeps to receive the mode from peers that send with it. */
export function receivingDeviceNeed(mode: Mode, device: ModeDevice, plan: RoutingPlan): string | undefined {
  const entry = plan.devices[mode];
  return entry ? `receiving ${device.carries} from peers (device ${entry.name})` : undefined;
}

// Per-peer values are computed for every (node, peer) pair, N^2 per cluster compile: memoise the ones that
// depend on their argument alone (pure functions of it, so the caches change no result).
export function memoize<V>(make: (key: string) => V): (key: string) => V {
  const cache = new Map<string, V>();
  return (key) => {
    if (cache.has(key)) return cache.get(key) as V;
    if (cache.size > 200_000) cache.clear();
    const v = make(key);
    cache.set(key, v);
    return v;
  };
}

/** The first address of a block: the node's health address, and its VXLAN VTEP address (peers' gateway). */
export const blockGateway: (block: string) => string | undefined = memoize((block) => {
  const c = parseCidr(block);
  return c ? formatIPv4(c.addr) : undefined;
});
