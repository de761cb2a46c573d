// IPIP: one tunnel device per node; onlink routes to each peer's block via the peer's underlay address.
// With crossSubnet, peers on the same subnet get native routes instead.
import type { ModeBackend } from "./backend";

export const ipipBackend: ModeBackend = {
  mode: "ipip",
  overhead: 20,
  requires: ["ipip"],
  decideSend: ({ sameSubnet, crossSubnet }) => ({ transport: crossSubnet && sameSubnet ? "native" : "ipip" }),
};
