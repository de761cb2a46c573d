// The VXLAN device `sy-vxlan` (kernel VXLAN, as Flannel's vxlan backend): one per node, on the underlay
// interface, learning off because Switchyard writes every FDB and neighbour entry itself (vtep.ts), a
// deterministic MAC, and the first address of the node's block as its own /32 (the VTEP address peers
// route to, onlink). An existing link is reused only when every attribute the kernel cannot change in
// place (id, port, local, underlay link, learning) matches; MAC, MTU and address are fixed in place.
import type { PlanDevice } from "../../model/routing-plan";
import { blockGateway, type ModeDevice } from "../backend";
import { VXLAN_DEVICE, vtepEntries, vtepMac } from "./vtep";

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) bytes. */
export const VXLAN_OVERHEAD = 50;
/** Used when neither the spec nor the source mode's settings give spec.vxlan (Flannel's kernel VXLAN port). */
export const VXLAN_DEFAULTS = { vni: 1, port: 8472 } as const;

export interface VxlanDevice extends PlanDevice {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  readonly mac: string;
  readonly local: string;
  /** The device's own address: the first address of the node's block, /32. */
  readonly address?: string;
  readonly mtu: number;
}

export const vxlanDevice: ModeDevice<VxlanDevice> = {
  name: VXLAN_DEVICE,
  carries: "VXLAN",
  capability: "vxlan",
  probe: { name: "sy-probe-vx", type: ["vxlan", "id", "4242", "dstport", "4789"] },
  needsUnderlay: true,
  ownsAddresses: true,
  compile({ self, underlayMtu, settings }) {
    const cfg = settings.vxlan ?? VXLAN_DEFAULTS;
    const gw = self.block ? blockGateway(self.block) : undefined;
    return { name: VXLAN_DEVICE, vni: cfg.vni, port: cfg.port, mac: vtepMac(self.name), local: self.ip, ...(gw ? { address: gw } : {}), mtu: underlayMtu - VXLAN_OVERHEAD };
  },
  peerEntries: vtepEntries,
  checkEntry(vx, path, check) {
    check.ownedDevice(vx.name, `${path}.name`);
    check.int(vx.vni, 1, 16_777_215, `${path}.vni`);
    check.int(vx.port, 1, 65_535, `${path}.port`);
    check.int(vx.mtu, 68, 65_535, `${path}.mtu`);
    check.mac(vx.mac, `${path}.mac`);
    check.ip(vx.local, `${path}.local`);
    if (vx.address !== undefined) check.cidrOrIp(vx.address, `${path}.address`);
  },
  matches(vx, link, underlayDev) {
    return (
      link.kind === "vxlan" &&
      link.info["id"] === vx.vni &&
      link.info["port"] === vx.port &&
      link.info["local"] === vx.local &&
      underlayDev !== undefined &&
      link.info["link"] === underlayDev &&
      link.info["learning"] === false
    );
  },
  createCommands(vx, underlayDev) {
    // diffDevices reports a missing underlay instead of asking (needsUnderlay).
    if (underlayDev === undefined) return [];
    return [
      `link add ${vx.name} address ${vx.mac} mtu ${vx.mtu} type vxlan id ${vx.vni} local ${vx.local} dev ${underlayDev} dstport ${vx.port} nolearning`,
      `link set dev ${vx.name} up`,
      ...(vx.address !== undefined ? [`addr add ${vx.address}/32 dev ${vx.name}`] : []),
    ];
  },
};
