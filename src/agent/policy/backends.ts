// The policy backends by name: the one place that lists them (spec.policy.backend picks one).
import type { PolicyBackend, PolicyBackendName } from "./backend";
import { iptablesBackend } from "./iptables";
import { nftablesBackend } from "./nftables";

export const POLICY_BACKENDS: Readonly<Record<PolicyBackendName, PolicyBackend>> = {
  nftables: nftablesBackend,
  iptables: iptablesBackend,
};

export function policyBackend(name: PolicyBackendName): PolicyBackend {
  return POLICY_BACKENDS[name];
}
