// VXLAN (Flannel-style kernel VXLAN): a device per node with a deterministic VTEP MAC, a permanent
// neighbour entry and an FDB entry per peer, and onlink routes to each peer's block via its VTEP address.
// With crossSubnet, peers on the same subnet get native routes instead.
import type { ModeBackend } from "./backend";

export const vxlanBackend: ModeBackend = {
  mode: "vxlan",
  overhead: 50,
  requires: ["vxlan"],
  decideSend: ({ sameSubnet, crossSubnet }) => ({ transport: crossSubnet && sameSubnet ? "native" : "vxlan" }),
};
