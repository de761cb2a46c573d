// Defence in depth for the policy renderers (nftables.ts, iptables.ts): before a slice becomes nft,
// iptables-restore or ipset text, every value of it that the text will carry is checked to be what it
// claims (an interface name, an id, an address, a port, a protocol), and the renderer throws instead of
// emitting text. The agent has parsed the plan with the NodeNetwork schema already (src/agent/plan.ts);
// this catches a caller that skipped it, or a schema and a renderer that drifted apart. Pure.
import { safeInt, safeKernelValue, safeProtocol, UnsafeKernelValueError } from "../api/kernel-names";
import type { NodePolicySlice } from "../compile/policy/slice";

/** Throws UnsafeKernelValueError, naming the field, at the first value of `slice` that is not safe to render. */
export function assertSliceRenderable(slice: NodePolicySlice): void {
  safeKernelValue("node name", slice.node, "slice.node");
  slice.pods.forEach((p, i) => {
    safeKernelValue("interface name", p.interface, `pods[${i}].interface`);
    safeKernelValue("comment text", `${p.namespace}/${p.name}`, `pods[${i}] namespace/name`);
    if (p.ingress !== undefined) safeKernelValue("plan id", p.ingress, `pods[${i}].ingress`);
    if (p.egress !== undefined) safeKernelValue("plan id", p.egress, `pods[${i}].egress`);
  });
  slice.chains.forEach((c, i) => {
    const at = `chains[${i}]`;
    safeKernelValue("plan id", c.id, `${at}.id`);
    if (c.direction !== "ingress" && c.direction !== "egress") throw new UnsafeKernelValueError("enum value", `${at}.direction`, c.direction);
    c.rules.forEach((r, j) => {
      const rat = `${at}.rules[${j}]`;
      if (r.peers !== "any") r.peers.forEach((g, k) => safeKernelValue("plan id", g, `${rat}.peers[${k}]`));
      if (r.namedPorts !== undefined) safeKernelValue("plan id", r.namedPorts, `${rat}.namedPorts`);
      if (r.ports !== "any") {
        r.ports.forEach((m, k) => {
          safeProtocol(m.protocol, `${rat}.ports[${k}].protocol`);
          m.ranges?.forEach(([lo, hi], n) => {
            safeInt(lo, 1, 65535, "port", `${rat}.ports[${k}].ranges[${n}][0]`);
            safeInt(hi, lo, 65535, "port", `${rat}.ports[${k}].ranges[${n}][1]`);
          });
        });
      }
    });
  });
  slice.groups.forEach((g, i) => {
    const at = `groups[${i}]`;
    safeKernelValue("plan id", g.id, `${at}.id`);
    if (g.kind === "named-port") {
      g.members.forEach(([ip, proto, port], j) => {
        safeKernelValue("IPv4 address", ip, `${at}.members[${j}][0]`);
        safeProtocol(proto, `${at}.members[${j}][1]`);
        safeInt(port, 1, 65535, "port", `${at}.members[${j}][2]`);
      });
    } else if (g.kind === "address" || g.kind === "cidr") {
      const kind = g.kind === "address" ? "IPv4 address" : "IPv4 CIDR";
      g.members.forEach((m, j) => safeKernelValue(kind, m, `${at}.members[${j}]`));
    } else {
      throw new UnsafeKernelValueError("enum value", `${at}.kind`, (g as { kind: unknown }).kind);
    }
  });
}
