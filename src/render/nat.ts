// natOutgoing: SNAT traffic from the pod pools to anything outside them to the node's address, never
// between pods (pod-to-pod traffic keeps its source, which NetworkPolicy peers depend on). Its own table,
// replaced in one transaction like the policy table, so the two never disturb each other.
import type { RoutingPlan } from "../model/routing-plan";

export const NAT_TABLE = "switchyard_nat";

export function renderNatTable(nat: RoutingPlan["nat"]): string {
  const lines = [`table ip ${NAT_TABLE}`, `delete table ip ${NAT_TABLE}`, `table ip ${NAT_TABLE} {`];
  lines.push("  set pod_cidrs {", "    type ipv4_addr", "    flags interval");
  if (nat.podCIDRs.length > 0) lines.push(`    elements = { ${[...nat.podCIDRs].sort().join(", ")} }`);
  lines.push("  }");
  lines.push("  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;");
  if (nat.enabled) lines.push(`    ip saddr @pod_cidrs ip daddr != @pod_cidrs snat to ${nat.nodeIP} comment "natOutgoing"`);
  lines.push("  }", "}");
  return lines.join("\n") + "\n";
}
