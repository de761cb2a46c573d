// Why this layout (kernel-facing; pure text, the agent applies it with one `nft -f`):
// - One owned table, `inet switchyard`, replaced atomically: `table` + `delete table` + `table { ... }` in
//   one text is one kernel transaction (kernel-lab.md §8.13), so there is never a moment without rules, and
//   a text nft rejects leaves the old ruleset in force. We never touch another owner's table.
// - One forward-hook base chain. `ct state established,related accept` comes first: replies and related
//   ICMP errors of allowed connections pass without re-evaluating policy (the price: removing a peer does
//   not cut a connection already open, §8.15). Then `ct state invalid drop`.
// - Calico-style wiring means every pod packet, same-node ones too, crosses forward with iifname/oifname
//   naming the pod's veth. EGRESS is dispatched first by `iifname vmap @egress_pods` to the source pod's
//   egress chain, which `return`s when a rule allows and drops at its end, so an allowed packet goes on to
//   INGRESS dispatch by `oifname vmap @ingress_pods` (accept when a rule allows, drop at the end). A pod
//   not isolated in a direction has no entry in that map. Per-packet cost is two map lookups plus the
//   rules of one chain, whatever the number of pods and policies.
// - Chains are per POLICY SET (pods selected by the same policies, with the same resolved named ports,
//   share one), and peers are set lookups: hash sets of pod IPs, interval sets only for ipBlock CIDRs (their
//   excepts already subtracted into disjoint prefixes, so no overlap and no auto-merge is needed), and a
//   concatenated `ip daddr . meta l4proto . th dport` set for egress named ports, which resolve per
//   destination pod. Nothing is ever a linear list per peer.
// - Fail closed for pods: a pod interface (`sy` + hex, podInterfaceName) that is not in the node's plan yet
//   (the CNI plugin created it before the agent programmed the pod, or the pod is gone from the plan) is
//   dropped in both directions before anything else, conntrack included: `@pod_interfaces` holds every pod
//   of the slice, isolated or not, and the mode devices (`sy-vxlan`, `sy-ipip`) are told apart by the dash.
// - Every name derives from content hashes; the same slice always renders byte-identical text.
// - A plan is data: every id, interface name, address, port and protocol of the slice is checked before any
//   text is made (safe-slice.ts), and the renderer throws rather than emit a value that could close a
//   string or a block (an interface name carrying `"; chain x { type filter hook input ...`).
// - nft 1.0.6 quirks (kernel-lab.md §8.12): multi-line text only, a newline before every `}`, no chain
//   named `fwd`; comments are at most 128 bytes.
import { shortHash } from "../model/names";
import type { NodePolicySlice, SliceChain, SliceGroup, SlicePortMatch, SliceRule } from "../compile/policy/slice";
import { sliceHash } from "../compile/policy/slice";
import { safeKernelValue } from "../api/kernel-names";
import { assertSliceRenderable } from "./safe-slice";

export interface NftRenderOptions {
  /** The table name inside family inet; `switchyard` unless a test needs another. */
  readonly table?: string;
}

export const NFT_TABLE_FAMILY = "inet";
export const NFT_TABLE_NAME = "switchyard";
/** nft rejects comments longer than 128 bytes. */
const NFT_COMMENT_MAX = 128;

const INGRESS_MAP = "ingress_pods";
const EGRESS_MAP = "egress_pods";
const POD_INTERFACES_SET = "pod_interfaces";
/** Every pod's host-side veth starts with this (podInterfaceName); mode devices start with `sy-`. */
const POD_INTERFACE_WILDCARD = '"sy*"';
const DEVICE_WILDCARD = '"sy-*"';

/** The nft set name of a group. */
export function nftSetName(group: Pick<SliceGroup, "id" | "kind">): string {
  return `${group.kind === "address" ? "g" : group.kind === "cidr" ? "c" : "n"}_${group.id}`;
}

/** The nft chain name of a policy-set chain. */
export function nftChainName(chain: Pick<SliceChain, "id" | "direction">): string {
  return `${chain.direction === "ingress" ? "in" : "eg"}_${chain.id}`;
}

/** A quoted nft comment, shortened (with a hash of the full text) when it would exceed nft's limit. */
function comment(text: string): string {
  const clean = text.replace(/["\\\u0000-\u001f\u007f]/g, "_");
  const fits = new TextEncoder().encode(clean).length <= NFT_COMMENT_MAX;
  const body = fits ? clean : `${clean.slice(0, NFT_COMMENT_MAX - 14)}~${shortHash(clean)}`;
  return `comment "${body}"`;
}

function protoName(p: string): string {
  return p.toLowerCase();
}

function portMatchText(m: SlicePortMatch): string {
  const proto = protoName(m.protocol);
  if (m.ranges === undefined) return `meta l4proto ${proto}`;
  const items = m.ranges.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`));
  return `${proto} dport ${items.length === 1 ? items[0]! : `{ ${items.join(", ")} }`}`;
}

function groupElements(g: SliceGroup): string[] {
  if (g.kind === "named-port") return g.members.map(([ip, proto, port]) => `${ip} . ${protoName(proto)} . ${port}`);
  return [...g.members];
}

function ruleLines(rule: SliceRule, direction: "ingress" | "egress", kinds: ReadonlyMap<string, SliceGroup["kind"]>): string[] {
  const verdict = direction === "ingress" ? "accept" : "return";
  const addr = direction === "ingress" ? "ip saddr" : "ip daddr";
  const c = comment(rule.source);
  const lines: string[] = [];
  const peerParts = rule.peers === "any" ? [""] : rule.peers.map((id) => `${addr} @${nftSetName({ id, kind: kinds.get(id) ?? "address" })}`);
  const portParts = rule.ports === "any" ? [""] : rule.ports.map(portMatchText);
  for (const peer of peerParts) {
    for (const port of portParts) {
      lines.push([peer, port, verdict, c].filter((s) => s !== "").join(" "));
    }
  }
  if (rule.namedPorts !== undefined) {
    lines.push(`ip daddr . meta l4proto . th dport @${nftSetName({ id: rule.namedPorts, kind: "named-port" })} ${verdict} ${c}`);
  }
  return lines;
}

function chainLines(chain: SliceChain, kinds: ReadonlyMap<string, SliceGroup["kind"]>): string[] {
  const out = [`\tchain ${nftChainName(chain)} {`];
  for (const rule of chain.rules) for (const line of ruleLines(rule, chain.direction, kinds)) out.push(`\t\t${line}`);
  out.push(`\t\tcounter drop ${comment(`default deny ${chain.direction}: ${chain.policies.join(", ")}`)}`);
  out.push("\t}");
  return out;
}

function elementBlock(elements: readonly string[], indent: string): string[] {
  if (elements.length === 0) return [];
  return [`${indent}elements = {`, ...elements.map((e, i) => `${indent}\t${e}${i < elements.length - 1 ? "," : ""}`), `${indent}}`];
}

function setType(kind: SliceGroup["kind"]): string[] {
  if (kind === "address") return ["type ipv4_addr"];
  if (kind === "cidr") return ["type ipv4_addr", "flags interval"];
  return ["type ipv4_addr . inet_proto . inet_service"];
}

/** Every pod interface of the slice, quoted, sorted (the slice's pods are sorted by namespace/name). */
function podInterfaces(slice: NodePolicySlice): string[] {
  return slice.pods.map((p) => `"${p.interface}"`).sort();
}

function mapEntries(slice: NodePolicySlice, direction: "ingress" | "egress"): string[] {
  const chains = new Map(slice.chains.map((c) => [c.id, c]));
  const out: string[] = [];
  for (const p of slice.pods) {
    const id = direction === "ingress" ? p.ingress : p.egress;
    const chain = id !== undefined ? chains.get(id) : undefined;
    if (chain) out.push(`"${p.interface}" : jump ${nftChainName(chain)}`);
  }
  return out;
}

/** The table body; `withElements: false` gives the structure only (what set updates must leave unchanged). */
function renderBody(slice: NodePolicySlice, table: string, withElements: boolean): string[] {
  const kinds = new Map(slice.groups.map((g) => [g.id, g.kind]));
  const lines: string[] = [`table ${NFT_TABLE_FAMILY} ${table} {`];
  for (const g of slice.groups) {
    lines.push(`\tset ${nftSetName(g)} {`, ...setType(g.kind).map((t) => `\t\t${t}`));
    if (withElements) lines.push(...elementBlock(groupElements(g), "\t\t"));
    lines.push("\t}");
  }
  lines.push(`\tset ${POD_INTERFACES_SET} {`, "\t\ttype ifname");
  if (withElements) lines.push(...elementBlock(podInterfaces(slice), "\t\t"));
  lines.push("\t}");
  for (const [name, direction] of [
    [EGRESS_MAP, "egress"],
    [INGRESS_MAP, "ingress"],
  ] as const) {
    lines.push(`\tmap ${name} {`, "\t\ttype ifname : verdict");
    if (withElements) lines.push(...elementBlock(mapEntries(slice, direction), "\t\t"));
    lines.push("\t}");
  }
  lines.push(
    "\tchain forward {",
    "\t\ttype filter hook forward priority filter; policy accept;",
    `\t\tiifname ${POD_INTERFACE_WILDCARD} iifname != ${DEVICE_WILDCARD} iifname != @${POD_INTERFACES_SET} counter drop ${comment("from a pod interface not in this node's plan: dropped until its policy is programmed")}`,
    `\t\toifname ${POD_INTERFACE_WILDCARD} oifname != ${DEVICE_WILDCARD} oifname != @${POD_INTERFACES_SET} counter drop ${comment("to a pod interface not in this node's plan: dropped until its policy is programmed")}`,
    `\t\tct state established,related accept ${comment("replies and related ICMP errors of allowed connections")}`,
    `\t\tct state invalid drop ${comment("invalid conntrack state")}`,
    `\t\tiifname vmap @${EGRESS_MAP} ${comment("egress: jump to the source pod's policy-set chain")}`,
    `\t\toifname vmap @${INGRESS_MAP} ${comment("ingress: jump to the destination pod's policy-set chain")}`,
    "\t}",
  );
  for (const c of slice.chains) lines.push(...chainLines(c, kinds));
  lines.push("}");
  return lines;
}

/**
 * The whole `inet switchyard` table for one node, as one atomic-replace nft script. Same slice, same bytes.
 */
export function renderNftables(slice: NodePolicySlice, opts: NftRenderOptions = {}): string {
  const table = safeKernelValue("plan id", opts.table ?? NFT_TABLE_NAME, "table");
  assertSliceRenderable(slice);
  const lines = [
    `# Switchyard NetworkPolicy for node ${slice.node}, slice ${sliceHash(slice)}. Generated; do not edit.`,
    `table ${NFT_TABLE_FAMILY} ${table}`,
    `delete table ${NFT_TABLE_FAMILY} ${table}`,
    ...renderBody(slice, table, true),
  ];
  return `${lines.join("\n")}\n`;
}

function elementCommands(verb: "add" | "delete", table: string, set: string, elements: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < elements.length; i += 64) {
    out.push(`${verb} element ${NFT_TABLE_FAMILY} ${table} ${set} { ${elements.slice(i, i + 64).join(", ")} }`);
  }
  return out;
}

function mapKey(entry: string): string {
  return entry.slice(0, entry.indexOf(" : "));
}

/**
 * When ONLY set and map membership differ between two slices (same sets, maps, chains and rules), a small
 * script of `delete element` / `add element` commands that turns the old table into the new one in one
 * transaction (`nft -f`); undefined when anything structural changed (render the whole table instead), and
 * "" when nothing changed at all. nft 1.0.6 fails the whole transaction when it deletes an element that is
 * absent, so the agent falls back to the full replace when this script is rejected.
 */
export function renderNftablesSetUpdate(oldSlice: NodePolicySlice, newSlice: NodePolicySlice, opts: NftRenderOptions = {}): string | undefined {
  const table = safeKernelValue("plan id", opts.table ?? NFT_TABLE_NAME, "table");
  assertSliceRenderable(oldSlice);
  assertSliceRenderable(newSlice);
  if (renderBody(oldSlice, table, false).join("\n") !== renderBody(newSlice, table, false).join("\n")) return undefined;
  const deletes: string[] = [];
  const adds: string[] = [];
  const oldGroups = new Map(oldSlice.groups.map((g) => [g.id, g]));
  for (const g of newSlice.groups) {
    const before = new Set(groupElements(oldGroups.get(g.id)!));
    const after = new Set(groupElements(g));
    deletes.push(...elementCommands("delete", table, nftSetName(g), [...before].filter((e) => !after.has(e))));
    adds.push(...elementCommands("add", table, nftSetName(g), [...after].filter((e) => !before.has(e))));
  }
  const podsBefore = new Set(podInterfaces(oldSlice));
  const podsAfter = new Set(podInterfaces(newSlice));
  deletes.push(...elementCommands("delete", table, POD_INTERFACES_SET, [...podsBefore].filter((e) => !podsAfter.has(e))));
  const podAdds = elementCommands("add", table, POD_INTERFACES_SET, [...podsAfter].filter((e) => !podsBefore.has(e)));
  for (const [name, direction] of [
    [EGRESS_MAP, "egress"],
    [INGRESS_MAP, "ingress"],
  ] as const) {
    const before = new Map(mapEntries(oldSlice, direction).map((e) => [mapKey(e), e]));
    const after = new Map(mapEntries(newSlice, direction).map((e) => [mapKey(e), e]));
    const removed = [...before].filter(([k, e]) => after.get(k) !== e).map(([k]) => k);
    const added = [...after].filter(([k, e]) => before.get(k) !== e).map(([, e]) => e);
    deletes.push(...elementCommands("delete", table, name, removed));
    adds.push(...elementCommands("add", table, name, added));
  }
  const commands = [...deletes, ...adds, ...podAdds];
  if (commands.length === 0) return "";
  return `# Switchyard set update for node ${newSlice.node}, slice ${sliceHash(newSlice)}.\n${commands.join("\n")}\n`;
}
