// A small interpreter of node slices that decides a packet the way the KERNEL will once the rendered rules
// are in place (render/nftables.ts and render/iptables.ts render exactly these semantics). Pure. The
// property tests check it against the reference evaluator, which closes the loop: compile + slice +
// (this model of) the kernel == the v1 semantics.
//
// The kernel's view of a NEW connection (replies ride the `ct state established,related` fast path):
// - A packet from a local pod enters the node's forward hook with iifname = the pod's veth; a packet from
//   the node itself (host-network pods) starts in OUTPUT, and a packet to the node's own address ends in
//   INPUT: neither crosses forward, so neither is filtered.
// - In forward: `iifname vmap @egress_pods` jumps to the source pod's egress chain (a matching rule
//   `return`s, the end drops), then `oifname vmap @ingress_pods` jumps to the destination pod's ingress
//   chain (a matching rule accepts, the end drops). Pods without a map entry are not isolated.
// - Across nodes the source node checks egress (the packet leaves by the uplink, no ingress entry) and the
//   destination node checks ingress (the packet arrives by the uplink, no egress entry).
// - A rule line matches on set membership (hash set of addresses, interval set of prefixes, or the
//   concatenated daddr . l4proto . dport set of a named-port group) and on protocol and port ranges.
import { type Protocol } from "../../src/model/cluster";
import { cidrContains, parseCidr, parseIPv4 } from "../../src/api/ipv4";
import type { NodePolicySlice, SliceChain, SliceGroup, SlicePortMatch, SliceRule } from "../../src/compile/policy/slice";

export interface Packet {
  readonly srcIp: string;
  readonly dstIp: string;
  readonly protocol: Protocol;
  readonly dport: number;
}

export interface ChainVerdict {
  readonly node: string;
  readonly chain: string;
  readonly allowed: boolean;
  /** The source (`ns/name ingress[0]`) of the rule that matched; absent when the chain's end dropped it. */
  readonly matched?: string;
}

export interface InterpretedVerdict {
  readonly allowed: boolean;
  /** The egress chain run on the source node; absent when no chain ran (not isolated, or not forwarded). */
  readonly egress?: ChainVerdict;
  readonly ingress?: ChainVerdict;
  /** The hook path the packet took, for messages. */
  readonly path: readonly string[];
}

interface SliceIndex {
  readonly slice: NodePolicySlice;
  readonly podByIp: ReadonlyMap<string, { readonly interface: string; readonly ingress?: string; readonly egress?: string }>;
  readonly chains: ReadonlyMap<string, SliceChain>;
  readonly groups: ReadonlyMap<string, SliceGroup>;
}

const indexes = new WeakMap<NodePolicySlice, SliceIndex>();

function indexSlice(slice: NodePolicySlice): SliceIndex {
  const hit = indexes.get(slice);
  if (hit) return hit;
  const podByIp = new Map<string, { interface: string; ingress?: string; egress?: string }>();
  for (const p of slice.pods) if (p.ip !== undefined) podByIp.set(p.ip, p);
  const idx: SliceIndex = {
    slice,
    podByIp,
    chains: new Map(slice.chains.map((c) => [c.id, c])),
    groups: new Map(slice.groups.map((g) => [g.id, g])),
  };
  indexes.set(slice, idx);
  return idx;
}

function inGroup(group: SliceGroup | undefined, ip: string): boolean {
  if (!group) return false;
  if (group.kind === "address") return group.members.includes(ip);
  if (group.kind === "cidr") {
    const addr = parseIPv4(ip);
    return addr !== undefined && group.members.some((m) => {
      const c = parseCidr(m);
      return c !== undefined && cidrContains(c, addr);
    });
  }
  return false;
}

function portMatches(ports: "any" | readonly SlicePortMatch[], pkt: Packet): boolean {
  if (ports === "any") return true;
  return ports.some((m) => m.protocol === pkt.protocol && (m.ranges === undefined || m.ranges.some(([lo, hi]) => pkt.dport >= lo && pkt.dport <= hi)));
}

function ruleMatches(idx: SliceIndex, rule: SliceRule, direction: "ingress" | "egress", pkt: Packet): boolean {
  const peerIp = direction === "ingress" ? pkt.srcIp : pkt.dstIp;
  const peerOk = rule.peers === "any" || rule.peers.some((g) => inGroup(idx.groups.get(g), peerIp));
  if (peerOk && portMatches(rule.ports, pkt)) return true;
  if (rule.namedPorts !== undefined) {
    const g = idx.groups.get(rule.namedPorts);
    if (g && g.kind === "named-port") return g.members.some(([ip, proto, port]) => ip === pkt.dstIp && proto === pkt.protocol && port === pkt.dport);
  }
  return false;
}

function runChain(idx: SliceIndex, chainId: string, pkt: Packet): ChainVerdict {
  const chain = idx.chains.get(chainId);
  // A vmap entry jumping to a missing chain cannot load in the kernel; as a model, fail closed.
  if (!chain) return { node: idx.slice.node, chain: chainId, allowed: false };
  for (const rule of chain.rules) {
    if (ruleMatches(idx, rule, chain.direction, pkt)) return { node: idx.slice.node, chain: chainId, allowed: true, matched: rule.source };
  }
  return { node: idx.slice.node, chain: chainId, allowed: false };
}

/**
 * Decides a new connection's first packet. `srcNode` is the slice of the node the source runs on (a pod,
 * or the node itself / a host-network pod), undefined for an address outside the cluster; `dstNode`
 * likewise for the destination.
 */
export function interpretPacket(pkt: Packet, srcNode: NodePolicySlice | undefined, dstNode: NodePolicySlice | undefined): InterpretedVerdict {
  const src = srcNode ? indexSlice(srcNode) : undefined;
  const dst = dstNode ? indexSlice(dstNode) : undefined;
  const srcPod = src?.podByIp.get(pkt.srcIp);
  const dstPod = dst?.podByIp.get(pkt.dstIp);
  const sameNode = src !== undefined && dst !== undefined && src.slice.node === dst.slice.node;
  const path: string[] = [];
  let egress: ChainVerdict | undefined;
  let ingress: ChainVerdict | undefined;

  if (src && !srcPod) {
    // From the node itself: OUTPUT. Delivered locally without forward, or forwarded by the next node.
    path.push(`${src.slice.node}: output`);
    if (sameNode || !dst) return { allowed: true, path };
  }
  if (src && srcPod) {
    if (sameNode && !dstPod) {
      path.push(`${src.slice.node}: input (to the node itself)`);
      return { allowed: true, path };
    }
    path.push(`${src.slice.node}: forward iif ${srcPod.interface}${sameNode && dstPod ? ` oif ${dstPod.interface}` : ""}`);
    if (srcPod.egress !== undefined) {
      egress = runChain(src, srcPod.egress, pkt);
      if (!egress.allowed) return { allowed: false, egress, path };
    }
    if (sameNode && dstPod) {
      if (dstPod.ingress !== undefined) ingress = runChain(src, dstPod.ingress, pkt);
      return { allowed: ingress ? ingress.allowed : true, ...(egress ? { egress } : {}), ...(ingress ? { ingress } : {}), path };
    }
  }
  if (!dst) return { allowed: true, ...(egress ? { egress } : {}), path };
  if (!dstPod) {
    path.push(`${dst.slice.node}: input (to the node itself)`);
    return { allowed: true, ...(egress ? { egress } : {}), path };
  }
  path.push(`${dst.slice.node}: forward oif ${dstPod.interface}`);
  if (dstPod.ingress !== undefined) ingress = runChain(dst, dstPod.ingress, pkt);
  return { allowed: ingress ? ingress.allowed : true, ...(egress ? { egress } : {}), ...(ingress ? { ingress } : {}), path };
}
