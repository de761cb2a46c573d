// BGP: BIRD 2 on every node originates the node's block and installs what it learns. No static routes.
// A plain iBGP mesh (or route reflection) cannot serve a peer on another subnet: its next hop does not
// resolve and BIRD installs an unreachable route (kernel-lab.md §4c, pitfall 1); the tor topology can.
import type { ModeBackend } from "./backend";

export const bgpBackend: ModeBackend = {
  mode: "bgp",
  overhead: 0,
  requires: ["bird"],
  decideSend: ({ bgpReach }) => (bgpReach.ok ? { transport: "bgp" } : { transport: "none", reason: bgpReach.reason ?? "no BGP path" }),
};
