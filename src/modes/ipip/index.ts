// IPIP: the device sy-ipip on every node while ipip is in use, and onlink routes to each peer's block via
// the peer's underlay address (the outer destination). With crossSubnet, peers on the same subnet get
// native routes instead.
import type { ModeBackend } from "../backend";
import { receivingDeviceNeed, tunnelSend } from "../backend";
import { IPIP_DEVICE, IPIP_OVERHEAD, ipipDevice } from "./device";

export const ipipBackend: ModeBackend = {
  mode: "ipip",
  overhead: IPIP_OVERHEAD,
  needs: [{ capability: "ipip", kind: "kernel", what: "the ipip kernel module" }],
  transport: "ipip",
  device: ipipDevice,
  decideSend: tunnelSend("ipip"),
  staticRoutes: (peer, dsts, metric) => dsts.map((dst) => ({ dst, via: peer.ip, dev: IPIP_DEVICE, onlink: true, metric, transport: "ipip", peer: peer.name })),
  neededBy: (plan) => receivingDeviceNeed("ipip", ipipDevice, plan),
  // ipip has no settings block and keeps crossSubnet.
  specPatchInto: () => [],
  specPatchOutOf: () => [],
};

export { IPIP_DEVICE, IPIP_OVERHEAD, ipipDevice, type IpipDevice } from "./device";
