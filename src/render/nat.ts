// natOutgoing: SNAT traffic from the pod pools to anything outside them to the node's address, never
// between pods (pod-to-pod traffic keeps its source, which NetworkPolicy peers depend on). Its own table,
// replaced in one transaction like the policy table, so the two never disturb each other.
import { safeKernelValue } from "../api/kernel-names";
import type { RoutingPlan } from "../model/routing-plan";

export const NAT_TABLE = "switchyard_nat";

export function renderNatTable(nat: RoutingPlan["nat"]): string {
  // A plan is data: each value is checked, and a bad one throws rather than becoming nft text.
  const podCIDRs = nat.podCIDRs.map((c, i) => safeKernelValue("IPv4 CIDR", c, `nat.podCIDRs[${i}]`));
  const nodeIP = safeKernelValue("IPv4 address", nat.nodeIP, "nat.nodeIP");
  const lines = [`table ip ${NAT_TABLE}`, `delete table ip ${NAT_TABLE}`, `table ip ${NAT_TABLE} {`];
  lines.push("  set pod_cidrs {", "    type ipv4_addr", "    flags interval");
  if (podCIDRs.length > 0) lines.push(`    elements = { ${[...podCIDRs].sort().join(", ")} }`);
  lines.push("  }");
  lines.push("  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;");
  if (nat.enabled) lines.push(`    ip saddr @pod_cidrs ip daddr != @pod_cidrs snat to ${nodeIP} comment "natOutgoing"`);
  lines.push("  }", "}");
  return lines.join("\n") + "\n";
}
