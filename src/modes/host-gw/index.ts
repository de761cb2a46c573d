// host-gw: `<peer block> via <peer address>`. Needs L2 adjacency: the kernel refuses a gateway that is not
// on a connected subnet ("Nexthop has invalid gateway"), so peers on other subnets are refused with a
// reason instead of a route that cannot exist (kernel-lab.md pitfall 11). No device, no overhead.
import type { ModeBackend } from "../backend";
import { crossSubnetOffPatch } from "../backend";

export const hostGwBackend: ModeBackend = {
  mode: "host-gw",
  overhead: 0,
  needs: [],
  decideSend: ({ self, peer, sameSubnet }) =>
    sameSubnet
      ? { transport: "native" }
      : {
          transport: "none",
          reason: `host-gw needs L2 adjacency: ${peer.name} (${peer.ip}) is on ${peer.underlayCIDR}, ${self.name} on ${self.underlayCIDR}; use vxlan or ipip (crossSubnet), or bgp with top-of-rack peers`,
        },
  neededBy: () => undefined,
  // host-gw is native everywhere: crossSubnet does not apply to it.
  specPatchInto: (spec) => crossSubnetOffPatch(spec),
  specPatchOutOf: () => [],
};
