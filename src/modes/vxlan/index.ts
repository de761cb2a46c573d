// VXLAN (Flannel-style kernel VXLAN): the device sy-vxlan on every node while vxlan is in use, a
// permanent neighbour and an FDB entry per peer, and onlink routes to each peer's block via the peer's
// VTEP address. With crossSubnet, peers on the same subnet get native routes instead.
import type { ModeBackend } from "../backend";
import { blockGateway, receivingDeviceNeed, removeSettingsBlockPatch, settingsBlockPatch, tunnelSend } from "../backend";
import { VXLAN_OVERHEAD, vxlanDevice } from "./device";
import { VXLAN_DEVICE } from "./vtep";

export const vxlanBackend: ModeBackend = {
  mode: "vxlan",
  overhead: VXLAN_OVERHEAD,
  needs: [{ capability: "vxlan", kind: "kernel", what: "the vxlan kernel module" }],
  transport: "vxlan",
  device: vxlanDevice,
  decideSend: tunnelSend("vxlan"),
  staticRoutes(peer, dsts, metric) {
    const gw = peer.block ? blockGateway(peer.block) : undefined;
    return gw ? dsts.map((dst) => ({ dst, via: gw, dev: VXLAN_DEVICE, onlink: true, metric, transport: "vxlan", peer: peer.name })) : [];
  },
  neededBy: (plan) => receivingDeviceNeed("vxlan", vxlanDevice, plan),
  // spec.vxlan is optional (VXLAN_DEFAULTS): a migration to vxlan adds it only when asked to.
  specPatchInto: (spec, options) => settingsBlockPatch("vxlan", spec, options),
  specPatchOutOf: (spec) => removeSettingsBlockPatch("vxlan", spec),
};

export { VXLAN_DEVICE, vtepMac } from "./vtep";
export { vxlanDevice, VXLAN_OVERHEAD, type VxlanDevice } from "./device";
