// The IPIP device `sy-ipip`: one per node while ipip is in use, `local` the node's underlay address and no
// remote, so one device decapsulates from every peer and encapsulates to whichever peer a route's onlink
// gateway names. An existing link is reused only when it is an ipip device with the same local address;
// its MTU is fixed in place. Its addresses are left alone (it has none of its own).
import type { PlanDevice } from "../../model/routing-plan";
import type { ModeDevice } from "../backend";

export const IPIP_DEVICE = "sy-ipip";
/** The outer IPv4 header. */
export const IPIP_OVERHEAD = 20;

export interface IpipDevice extends PlanDevice {
  readonly name: string;
  readonly local: string;
  readonly mtu: number;
}

export const ipipDevice: ModeDevice<IpipDevice> = {
  name: IPIP_DEVICE,
  carries: "IPIP",
  capability: "ipip",
  probe: { name: "sy-probe-ipip", type: ["ipip", "local", "127.0.0.1"] },
  needsUnderlay: false,
  ownsAddresses: false,
  compile: ({ self, underlayMtu }) => ({ name: IPIP_DEVICE, local: self.ip, mtu: underlayMtu - IPIP_OVERHEAD }),
  checkEntry(ipip, path, check) {
    check.ownedDevice(ipip.name, `${path}.name`);
    check.int(ipip.mtu, 68, 65_535, `${path}.mtu`);
    check.ip(ipip.local, `${path}.local`);
  },
  matches: (ipip, link) => link.kind === "ipip" && link.info["local"] === ipip.local,
  createCommands: (ipip) => [`link add ${ipip.name} mtu ${ipip.mtu} type ipip local ${ipip.local}`, `link set dev ${ipip.name} up`],
};
