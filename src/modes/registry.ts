// The one table of modes: spec.mode -> backend. Everything generic (the routing compile, the agent's device
// diff, capability probes and transport detection, preflight, the migration spec patch) asks this file,
// so adding a mode is its folder plus one line here (docs/design.md, "Adding a mode"). The order of the
// table is the order devices are created, checked and listed in.
import type { Mode } from "../api/cluster-network";
import type { PlanDevice, Transport } from "../model/routing-plan";
import type { ModeBackend, ModeDevice, ModeNeed } from "./backend";
import { bgpBackend } from "./bgp";
import { hostGwBackend } from "./host-gw";
import { ipipBackend } from "./ipip";
import { vxlanBackend } from "./vxlan";

/** Every capability a mode needs; the agent probes each (a kernel one by creating the device that needs it, a tool by running it). */
export type ModeCapability = "vxlan" | "ipip" | "bird";

export const MODE_BACKENDS: Readonly<Record<Mode, ModeBackend>> = {
  vxlan: vxlanBackend,
  ipip: ipipBackend,
  "host-gw": hostGwBackend,
  bgp: bgpBackend,
};

/** The backends in table order. */
export const MODE_BACKEND_LIST: readonly ModeBackend[] = Object.values(MODE_BACKENDS);

export function backendOf(mode: Mode): ModeBackend {
  return MODE_BACKENDS[mode];
}

/** The backend that provides `transport` (undefined for native: plain routing is every mode's, see nativeRoutes). */
export function backendForTransport(transport: Transport): ModeBackend | undefined {
  return MODE_BACKEND_LIST.find((b) => b.transport === transport);
}

/** The backend whose device is called `name`, if any. */
export function backendForDevice(name: string): ModeBackend | undefined {
  return MODE_BACKEND_LIST.find((b) => b.device?.name === name);
}

/** Every mode's device with its mode, in table order. */
export const MODE_DEVICES: readonly { readonly mode: Mode; readonly device: ModeDevice<PlanDevice> }[] = MODE_BACKEND_LIST.flatMap((b) =>
  b.device ? [{ mode: b.mode, device: b.device }] : [],
);

/** The devices Switchyard owns on a node: nothing else is ever created, changed or deleted. */
export const OWNED_DEVICES: readonly string[] = MODE_DEVICES.map((d) => d.device.name);

/** Every mode's needs, each capability once (the first mode that names it describes it). */
export const MODE_NEEDS: readonly ModeNeed[] = MODE_BACKEND_LIST.flatMap((b) => b.needs).filter((n, i, all) => all.findIndex((m) => m.capability === n.capability) === i);

/**
 * Which transport the kernel uses for a destination, from the route it takes: a mode's device names its
 * transport; else a route installed by a mode's daemon (its route protocol, e.g. `bird`); else native.
 */
export function transportInKernel(routeDevice: string | undefined, routeProtocol: string | undefined): Transport {
  const byDevice = routeDevice === undefined ? undefined : backendForDevice(routeDevice);
  if (byDevice?.transport) return byDevice.transport;
  const byProtocol = routeProtocol === undefined ? undefined : MODE_BACKEND_LIST.find((b) => b.kernelRouteProtocol === routeProtocol);
  return byProtocol?.transport ?? "native";
}
