import type { Mode } from "../../../api/cluster-network";
import type { ModeBackend } from "./backend";
import { bgpBackend } from "./bgp";
import { hostGwBackend } from "./host-gw";
import { ipipBackend } from "./ipip";
import { vxlanBackend } from "./vxlan";

export const MODE_BACKENDS: Readonly<Record<Mode, ModeBackend>> = {
  vxlan: vxlanBackend,
  ipip: ipipBackend,
  "host-gw": hostGwBackend,
  bgp: bgpBackend,
};

export type { ModeBackend, KernelFeature, PairContext, SendDecision } from "./backend";
