// Why this layout (kernel-facing; pure text): the iptables backend gives the same semantics as the
// nftables one (render/nftables.ts) on nodes where nft is not an option.
// - Peers live in ipsets, never in per-peer rules: hash:ip for pod IPs, hash:net for ipBlock CIDRs (the
//   excepts are already subtracted into disjoint prefixes, so no `nomatch` entries are needed), and
//   hash:ip,port for egress named ports, which resolve per destination pod. `ipset restore` fills a temp
//   set and SWAPs it into place, so each set's membership changes atomically, and it runs BEFORE
//   iptables-restore so every set a rule names exists.
// - iptables-restore --noflush owns only chains prefixed `SY-`: declaring a chain flushes it, so one run
//   rewrites all of ours atomically and leaves everyone else's chains alone. Chains we no longer need are
//   passed in (`existingChains`) and deleted in the same run; their ipsets are destroyed afterwards
//   (`ipsetCleanup`), once no rule references them.
// - SY-FORWARD (jumped from FORWARD by one rule, which the agent ensures with `iptables -C` / `-I`,
//   see `forwardJump`: a restore file cannot add a rule idempotently) starts with conntrack
//   ESTABLISHED,RELATED ACCEPT (replies and related ICMP errors) and INVALID DROP, then dispatches per
//   local pod: `-i <veth>` to the pod's egress policy-set chain, then `-o <veth>` to its ingress chain.
//   An egress chain RETURNs when a rule allows, which resumes SY-FORWARD after the jump, so the packet
//   falls through to the ingress dispatch; it DROPs at its end. An ingress chain ACCEPTs when a rule
//   allows and DROPs at its end. A packet no chain stopped returns to FORWARD and its other rules.
// - Fail closed for pods, first in SY-FORWARD (before conntrack): packets from or to a pod interface
//   (`sy+`, podInterfaceName) that is not in the node's plan go to SY-FROM-POD / SY-TO-POD, which RETURN
//   for the mode devices (`sy-+`) and every pod of the slice, isolated or not, and DROP the rest: a pod
//   the CNI plugin wired before the agent programmed it sends and receives nothing.
// - A plan is data: every id, interface name, address, port and protocol of the slice is checked before any
//   text is made (safe-slice.ts); the renderer throws rather than emit a value that would end a line or
//   add an option (an interface name carrying a newline and `-A FORWARD -j DROP`).
// - Comments (`-m comment`) name the source rule, `ns/policy ingress[0]`; same slice, same bytes.
import { shortHash } from "../model/names";
import type { NodePolicySlice, SliceChain, SliceGroup, SlicePortMatch, SliceRule } from "../compile/policy/slice";
import { sliceHash } from "../compile/policy/slice";
import { assertSliceRenderable } from "./safe-slice";

export interface IptablesRenderOptions {
  /** `SY-*` chains that exist in the filter table now (from `iptables -S`); stale ones are deleted. */
  readonly existingChains?: readonly string[];
  /** `sy-*` ipsets that exist now (from `ipset list -n`); stale ones are destroyed by `ipsetCleanup`. */
  readonly existingSets?: readonly string[];
}

export interface IptablesRendering {
  /** Input for `ipset restore` (run first). */
  readonly ipset: string;
  /** Input for `iptables-restore --noflush` (run second). */
  readonly iptables: string;
  /** Input for `ipset restore` (run last): destroys stale `sy-` sets; "" when there are none. */
  readonly ipsetCleanup: string;
  /** The FORWARD rule, as iptables arguments after `-C`/`-I`, that jumps to SY-FORWARD. */
  readonly forwardJump: readonly string[];
}

export const IPTABLES_FORWARD_CHAIN = "SY-FORWARD";
const FROM_POD_CHAIN = "SY-FROM-POD";
const TO_POD_CHAIN = "SY-TO-POD";
const CHAIN_PREFIX = "SY-";
const SET_PREFIX = "sy-";
/** The comment match takes at most 255 characters. */
const COMMENT_MAX = 255;
/** multiport takes at most 15 ports; a range counts as two. */
const MULTIPORT_SLOTS = 15;

export function ipsetName(group: Pick<SliceGroup, "id" | "kind">): string {
  return `${SET_PREFIX}${group.kind === "address" ? "g" : group.kind === "cidr" ? "c" : "n"}-${group.id}`;
}

export function iptablesChainName(chain: Pick<SliceChain, "id" | "direction">): string {
  return `${CHAIN_PREFIX}${chain.direction === "ingress" ? "IN" : "EG"}-${chain.id}`;
}

function comment(text: string): string {
  const clean = text.replace(/["\\\u0000-\u001f\u007f]/g, "_");
  const body = clean.length <= COMMENT_MAX ? clean : `${clean.slice(0, COMMENT_MAX - 14)}~${shortHash(clean)}`;
  return `-m comment --comment "${body}"`;
}

function ipsetType(kind: SliceGroup["kind"]): string {
  return kind === "address" ? "hash:ip" : kind === "cidr" ? "hash:net" : "hash:ip,port";
}

function ipsetEntries(g: SliceGroup): string[] {
  if (g.kind === "named-port") return g.members.map(([ip, proto, port]) => `${ip},${proto.toLowerCase()}:${port}`);
  return [...g.members];
}

/** Port matches of one protocol, split so no multiport match exceeds 15 slots. */
function portMatchArgs(m: SlicePortMatch): string[] {
  const proto = m.protocol.toLowerCase();
  if (m.ranges === undefined) return [`-p ${proto}`];
  if (m.ranges.length === 1) {
    const [lo, hi] = m.ranges[0]!;
    return [`-p ${proto} --dport ${lo === hi ? lo : `${lo}:${hi}`}`];
  }
  const out: string[] = [];
  let chunk: string[] = [];
  let slots = 0;
  for (const [lo, hi] of m.ranges) {
    const need = lo === hi ? 1 : 2;
    if (slots + need > MULTIPORT_SLOTS) {
      out.push(`-p ${proto} -m multiport --dports ${chunk.join(",")}`);
      chunk = [];
      slots = 0;
    }
    chunk.push(lo === hi ? String(lo) : `${lo}:${hi}`);
    slots += need;
  }
  if (chunk.length > 0) out.push(`-p ${proto} -m multiport --dports ${chunk.join(",")}`);
  return out;
}

function ruleLines(chainName: string, rule: SliceRule, direction: "ingress" | "egress", kinds: ReadonlyMap<string, SliceGroup["kind"]>): string[] {
  const verdict = direction === "ingress" ? "-j ACCEPT" : "-j RETURN";
  const dir = direction === "ingress" ? "src" : "dst";
  const c = comment(rule.source);
  const peerParts = rule.peers === "any" ? [""] : rule.peers.map((id) => `-m set --match-set ${ipsetName({ id, kind: kinds.get(id) ?? "address" })} ${dir}`);
  const portParts = rule.ports === "any" ? [""] : rule.ports.flatMap(portMatchArgs);
  const lines: string[] = [];
  for (const peer of peerParts) {
    for (const port of portParts) lines.push(["-A", chainName, peer, port, c, verdict].filter((s) => s !== "").join(" "));
  }
  if (rule.namedPorts !== undefined) {
    lines.push(`-A ${chainName} -m set --match-set ${ipsetName({ id: rule.namedPorts, kind: "named-port" })} dst,dst ${c} ${verdict}`);
  }
  return lines;
}

/** ipset + iptables-restore inputs with the same semantics as renderNftables. Same slice, same bytes. */
export function renderIptables(slice: NodePolicySlice, opts: IptablesRenderOptions = {}): IptablesRendering {
  assertSliceRenderable(slice);
  const hash = sliceHash(slice);
  const kinds = new Map(slice.groups.map((g) => [g.id, g.kind]));

  const ipset: string[] = [`# Switchyard NetworkPolicy ipsets for node ${slice.node}, slice ${hash}. Generated; do not edit.`];
  for (const g of slice.groups) {
    const name = ipsetName(g);
    const temp = `${name}-t`;
    const type = ipsetType(g.kind);
    ipset.push(`create ${name} ${type} family inet -exist`, `create ${temp} ${type} family inet -exist`, `flush ${temp}`);
    for (const e of ipsetEntries(g)) ipset.push(`add ${temp} ${e}`);
    ipset.push(`swap ${temp} ${name}`, `destroy ${temp}`);
  }

  const chainNames = slice.chains.map(iptablesChainName);
  const ownChains = [IPTABLES_FORWARD_CHAIN, FROM_POD_CHAIN, TO_POD_CHAIN];
  const wanted = new Set([...ownChains, ...chainNames]);
  const stale = [...new Set(opts.existingChains ?? [])].filter((c) => c.startsWith(CHAIN_PREFIX) && !wanted.has(c)).sort();

  const ipt: string[] = [`# Switchyard NetworkPolicy for node ${slice.node}, slice ${hash}. Generated; do not edit.`, "*filter"];
  for (const name of [...ownChains, ...chainNames, ...stale]) ipt.push(`:${name} - [0:0]`);
  for (const name of stale) ipt.push(`-X ${name}`);
  const F = IPTABLES_FORWARD_CHAIN;
  const interfaces = slice.pods.map((p) => p.interface).sort();
  for (const [chain, flag, what] of [
    [FROM_POD_CHAIN, "-i", "from"],
    [TO_POD_CHAIN, "-o", "to"],
  ] as const) {
    ipt.push(`-A ${F} ${flag} sy+ -j ${chain}`, `-A ${chain} ${flag} sy-+ -j RETURN`);
    for (const i of interfaces) ipt.push(`-A ${chain} ${flag} ${i} -j RETURN`);
    ipt.push(`-A ${chain} ${comment(`${what} a pod interface not in this node's plan: dropped until its policy is programmed`)} -j DROP`);
  }
  ipt.push(
    `-A ${F} -m conntrack --ctstate RELATED,ESTABLISHED ${comment("replies and related ICMP errors of allowed connections")} -j ACCEPT`,
    `-A ${F} -m conntrack --ctstate INVALID ${comment("invalid conntrack state")} -j DROP`,
  );
  const chains = new Map(slice.chains.map((c) => [c.id, c]));
  for (const p of slice.pods) {
    const c = p.egress !== undefined ? chains.get(p.egress) : undefined;
    if (c) ipt.push(`-A ${F} -i ${p.interface} ${comment(`${p.namespace}/${p.name} egress`)} -j ${iptablesChainName(c)}`);
  }
  for (const p of slice.pods) {
    const c = p.ingress !== undefined ? chains.get(p.ingress) : undefined;
    if (c) ipt.push(`-A ${F} -o ${p.interface} ${comment(`${p.namespace}/${p.name} ingress`)} -j ${iptablesChainName(c)}`);
  }
  for (const c of slice.chains) {
    const name = iptablesChainName(c);
    for (const rule of c.rules) ipt.push(...ruleLines(name, rule, c.direction, kinds));
    ipt.push(`-A ${name} ${comment(`default deny ${c.direction}: ${c.policies.join(", ")}`)} -j DROP`);
  }
  ipt.push("COMMIT");

  const wantedSets = new Set(slice.groups.flatMap((g) => [ipsetName(g), `${ipsetName(g)}-t`]));
  const staleSets = [...new Set(opts.existingSets ?? [])].filter((s) => s.startsWith(SET_PREFIX) && !wantedSets.has(s)).sort();

  return {
    ipset: `${ipset.join("\n")}\n`,
    iptables: `${ipt.join("\n")}\n`,
    ipsetCleanup: staleSets.length === 0 ? "" : `${staleSets.map((s) => `destroy ${s}`).join("\n")}\n`,
    forwardJump: ["FORWARD", "-m", "comment", "--comment", "switchyard NetworkPolicy", "-j", IPTABLES_FORWARD_CHAIN],
  };
}
