// BGP: BIRD 2 on every node originates the node's block and installs what it learns (no static routes,
// no device, no overhead). The mode's part of the plan is BIRD's configuration (compile-bgp.ts); whether a
// pair can be served depends on the topology (reachability.ts).
import type { ModeBackend } from "../backend";
import { crossSubnetOffPatch, removeSettingsBlockPatch, settingsBlockPatch } from "../backend";
import { compileBgp } from "./compile-bgp";
import { bgpReachability } from "./reachability";

/** spec.bgp when a migration to bgp is not told otherwise (the API's defaults, written out). */
export const BGP_DEFAULT_SETTINGS = { asNumber: 64512, topology: "full-mesh" } as const;

export const bgpBackend: ModeBackend = {
  mode: "bgp",
  overhead: 0,
  needs: [
    {
      capability: "bird",
      kind: "tool",
      what: "BIRD 2 (bird and birdc)",
      install: "BIRD 2 (bird2 package)",
      // birdc has no version flag: a usage error still proves it starts.
      program: { version: ["bird", "--version"], starts: ["birdc", "-h"] },
    },
  ],
  transport: "bgp",
  kernelRouteProtocol: "bird",
  decideSend({ self, peer, settings }) {
    const reach = bgpReachability(settings.bgp, self, peer);
    return reach.ok ? { transport: "bgp" } : { transport: "none", reason: reach.reason };
  },
  compilePlanPart: ({ self, others, originate, pools, settings }) =>
    settings.bgp
      ? { part: { bgp: compileBgp(settings.bgp, self, others, originate, pools) }, diagnostics: [] }
      : { part: {}, diagnostics: [{ reason: "BgpConfigMissing", message: "bgp is in use but no BGP settings are known (spec.bgp)" }] },
  neededBy: (plan) => (plan.bgp ? "BGP peering in this plan" : undefined),
  // A BGP peering is routed natively: crossSubnet does not apply; spec.bgp is required.
  specPatchInto: (spec, options) => [...crossSubnetOffPatch(spec), ...settingsBlockPatch("bgp", spec, options, BGP_DEFAULT_SETTINGS)],
  specPatchOutOf: (spec) => removeSettingsBlockPatch("bgp", spec),
};

export { compileBgp } from "./compile-bgp";
export { bgpReachability } from "./reachability";
export { torPeersOf } from "./tor-peers";
