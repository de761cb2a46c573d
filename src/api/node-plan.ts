// The two plan sections of a NodeNetwork spec, as strict schemas: `routing` (src/model/routing-plan.ts,
// RoutingPlan) and `policy` (src/compile/policy/slice.ts, NodePolicySlice, plus the backend). Why strict:
// the agent renders these into nft, iptables-restore, ipset, `ip -batch` and bird.conf text, so a field
// the schema does not know, or a name with a quote, brace, semicolon or newline in it, could add a base
// chain on any hook or a BIRD protocol. Every name and address has its shape (kernel-names.ts); unknown
// fields are refused. The same schemas generate the CRD (the API server refuses a bad plan) and parse the
// plan in the agent (src/agent/plan.ts: a plan that fails is not applied).
//
// Where a value's JSON type depends on another field (a group's members are addresses, CIDRs or
// [address, protocol, port] triples; a rule's peers and ports are "any" or a list) a structural CRD schema
// cannot say it: those nodes are `x-kubernetes-preserve-unknown-fields` without a type in the CRD, and
// only the agent's parse checks them. The list of such nodes is short and each is marked below.
import { z } from "zod";
import { BgpPasswordSecretRefSchema, Ipv4AddressSchema, Ipv4CidrSchema, MODES, ModeSchema } from "./cluster-network";
import {
  BIRD_SYMBOL_PATTERN,
  COMMENT_TEXT_PATTERN,
  DNS_LABEL_PATTERN,
  DNS_SUBDOMAIN_PATTERN,
  IFNAME_GLOB_PATTERN,
  IFNAME_PATTERN,
  IPV4_OR_CIDR_PATTERN,
  MAC_PATTERN,
  PLAN_ID_PATTERN,
} from "./kernel-names";

/** A node in the CRD whose JSON type varies (see the file comment): any value there, the agent's parse checks it. */
const MIXED = { "x-kubernetes-preserve-unknown-fields": true } as const;

const IfnameSchema = z.string().regex(new RegExp(IFNAME_PATTERN), { message: "must be an interface name: 1-15 of A-Z a-z 0-9 _ . - (not starting with . or -)" }).max(15);
const PlanIdSchema = z.string().regex(new RegExp(PLAN_ID_PATTERN), { message: "must be an id of 1-22 letters, digits or _" }).max(22);
const MacSchema = z.string().regex(new RegExp(MAC_PATTERN), { message: "must be a MAC address such as 0e:00:00:00:00:01" }).max(17);
const NodeNameSchema = z.string().regex(new RegExp(DNS_SUBDOMAIN_PATTERN), { message: "must be a node name (a DNS subdomain)" }).max(253);
const CommentTextSchema = z.string().regex(new RegExp(COMMENT_TEXT_PATTERN), { message: "must be printable text without quotes, backslashes or line breaks" }).max(1024);
const Ipv4OrCidrSchema = z.string().regex(new RegExp(IPV4_OR_CIDR_PATTERN), { message: "must be an IPv4 address or CIDR" }).max(18);
const Uint32Schema = z.int().min(0).max(4294967295);
const MtuSchema = z.int().min(68).max(65535);
const PortSchema = z.int().min(1).max(65535);
const ProtocolSchema = z.enum(["TCP", "UDP", "SCTP"]);
export const TRANSPORTS = [...MODES, "native"] as const;

// ------------------------------------------------------------------------------------------------ routing

export const VxlanDevicePlanSchema = z
  .strictObject({
    name: IfnameSchema.describe("The device's name (sy-vxlan)."),
    vni: z.int().min(1).max(16777215).describe("VXLAN network identifier."),
    port: PortSchema.describe("VXLAN UDP port."),
    mac: MacSchema.describe("The device's MAC (derived from the node's name)."),
    local: Ipv4AddressSchema.describe("The node's underlay address, the tunnel's source."),
    address: Ipv4AddressSchema.optional().describe("The device's own /32 address (its block's first address)."),
    mtu: MtuSchema.describe("The device's MTU."),
  })
  .describe("The VXLAN device.");

export const IpipDevicePlanSchema = z
  .strictObject({
    name: IfnameSchema.describe("The device's name (sy-ipip)."),
    local: Ipv4AddressSchema.describe("The node's underlay address, the tunnel's source."),
    mtu: MtuSchema.describe("The device's MTU."),
  })
  .describe("The IPIP device.");

export const BgpPeerPlanSchema = z
  .strictObject({
    name: z.string().regex(new RegExp(BIRD_SYMBOL_PATTERN), { message: "must be a BIRD symbol: a letter or _, then letters, digits or _" }).max(255).describe("BIRD protocol name."),
    address: Ipv4AddressSchema.describe("The peer's address."),
    asNumber: z.int().min(1).max(4294967295).describe("The peer's AS number."),
    routeReflectorClient: z.boolean().optional().describe("The peer is a route-reflector client of this node."),
    allowLocalAs: z.boolean().optional().describe("Accept routes carrying this node's own AS (eBGP to top-of-rack routers)."),
    passwordSecretRef: BgpPasswordSecretRefSchema.optional().describe("The Secret (in the agent's namespace) holding the session's password; the password itself never travels in the plan."),
    acceptPrefixes: z
      .array(z.strictObject({ cidr: Ipv4CidrSchema.describe("A prefix the peer may announce."), maxLength: z.int().min(0).max(32).describe("The longest prefix accepted inside it.") }))
      .optional()
      .describe("What this peer may announce beyond pod blocks (a top-of-rack router's acceptPrefixes)."),
    description: CommentTextSchema.describe("What the peer is (a comment in bird.conf)."),
  })
  .describe("One BGP session.");

export const BgpPlanSchema = z
  .strictObject({
    asNumber: z.int().min(1).max(4294967295).describe("The cluster's AS number."),
    routerId: Ipv4AddressSchema.describe("BIRD's router id (the node's address)."),
    podCIDRs: z.array(Ipv4CidrSchema).describe("The pools: only blocks (and /32s) inside them are imported from peers."),
    blockSize: z.int().min(0).max(32).describe("The pools' block size: the prefix length a node's block has."),
    originate: z.array(Ipv4CidrSchema).describe("Prefixes this node originates: its block and borrowed /32s."),
    kernelMetric: Uint32Schema.describe("The metric BIRD installs learned routes with."),
    routeReflectorClusterId: Ipv4AddressSchema.optional().describe("Route-reflector cluster id, on reflectors."),
    peers: z.array(BgpPeerPlanSchema).describe("BGP sessions."),
    underlayInterface: z.string().regex(new RegExp(IFNAME_GLOB_PATTERN), { message: "must be an interface name or pattern (* and ? allowed)" }).max(15).describe("Underlay interface pattern for BIRD's direct protocol."),
  })
  .describe("BIRD's configuration, when bgp is in use.");

export const RoutingPlanSchema = z
  .strictObject({
    node: NodeNameSchema.describe("The node."),
    nodeIP: Ipv4AddressSchema.describe("The node's underlay address."),
    underlayCIDR: Ipv4CidrSchema.describe("The underlay subnet of that address."),
    block: Ipv4CidrSchema.optional().describe("The node's pod block."),
    mode: ModeSchema,
    podMtu: z.int().min(0).max(65535).describe("The pod MTU."),
    healthAddress: Ipv4AddressSchema.optional().describe("The node's health address (its block's first address)."),
    devices: z
      .strictObject({ vxlan: VxlanDevicePlanSchema.optional(), ipip: IpipDevicePlanSchema.optional() })
      .describe("The tunnel device of every mode in use that has one."),
    neighbors: z
      .array(z.strictObject({ dev: IfnameSchema.describe("Device."), ip: Ipv4AddressSchema.describe("Neighbour address."), mac: MacSchema.describe("Neighbour MAC.") }).describe("A permanent neighbour entry."))
      .describe("Permanent neighbour entries on the devices."),
    fdb: z
      .array(z.strictObject({ dev: IfnameSchema.describe("Device."), mac: MacSchema.describe("Peer's MAC."), dst: Ipv4AddressSchema.describe("Peer's underlay address.") }).describe("An FDB entry."))
      .describe("FDB entries on the devices."),
    routes: z
      .array(
        z
          .strictObject({
            dst: Ipv4OrCidrSchema.describe("Destination."),
            via: Ipv4AddressSchema.optional().describe("Gateway."),
            dev: IfnameSchema.optional().describe("Output device."),
            onlink: z.boolean().optional().describe("The gateway is on the link even without a connected route."),
            metric: Uint32Schema.describe("Route metric (part of the route's key)."),
            transport: z.enum(TRANSPORTS).describe("The transport the route sends with."),
            peer: NodeNameSchema.describe("The peer node the route reaches."),
          })
          .describe("A static route (proto 77)."),
      )
      .describe("Static routes to peers' prefixes."),
    peers: z
      .array(
        z
          .strictObject({
            peer: NodeNameSchema.describe("The peer node."),
            transport: z.enum([...TRANSPORTS, "none"]).describe("How this node sends to it; none when the mode cannot serve the pair."),
            reason: z.string().max(4096).optional().describe("Why none."),
          })
          .describe("How this node sends to one peer."),
      )
      .describe("Per-peer transport decisions."),
    bgp: BgpPlanSchema.optional(),
    nat: z
      .strictObject({
        enabled: z.boolean().describe("SNAT pod traffic leaving the pools."),
        podCIDRs: z.array(Ipv4CidrSchema).describe("The pod pools."),
        nodeIP: Ipv4AddressSchema.describe("The address to SNAT to."),
      })
      .describe("natOutgoing."),
    diagnostics: z
      .array(z.strictObject({ reason: z.string().max(1024).describe("CamelCase reason."), message: z.string().max(32768).describe("Human sentence.") }).describe("A problem of this node with its mode."))
      .describe("Problems of this node with the mode."),
  })
  // Atomic for server-side apply: the controller replaces a section whole. Without it a real API server
  // tracks every leaf of the plan in managedFields and leaves a map the new plan emptied behind as null.
  .meta({ "x-kubernetes-map-type": "atomic" })
  .describe("Per-peer transport, routes, devices, FDB and neighbour entries, and BGP settings.");
export type RoutingPlanSection = z.infer<typeof RoutingPlanSchema>;

// ------------------------------------------------------------------------------------------------- policy

const PortRangeSchema = z
  .tuple([PortSchema, PortSchema])
  .refine(([lo, hi]) => lo <= hi, { message: "a port range must not end before it starts" })
  .describe("An inclusive port range [first, last].");

const SlicePortMatchSchema = z
  .strictObject({
    protocol: ProtocolSchema.describe("TCP, UDP or SCTP."),
    ranges: z.array(PortRangeSchema).optional().describe("Port ranges; absent = every port of the protocol."),
  })
  .describe("Ports of one protocol.");

const SliceRuleSchema = z
  .strictObject({
    id: PlanIdSchema.describe("The compiled rule's id."),
    source: CommentTextSchema.describe("ns/name ingress[i] (a comment in the rules)."),
    peers: z.union([z.literal("any"), z.array(PlanIdSchema)]).meta(MIXED).describe('"any", or the peer group ids.'),
    ports: z.union([z.literal("any"), z.array(SlicePortMatchSchema)]).meta(MIXED).describe('"any", or the port matches.'),
    namedPorts: PlanIdSchema.optional().describe("Egress: a named-port group id."),
  })
  .describe("One rule of a chain.");

const SliceChainSchema = z
  .strictObject({
    id: PlanIdSchema.describe("Content id of the chain."),
    direction: z.enum(["ingress", "egress"]).describe("ingress or egress."),
    policies: z.array(CommentTextSchema).describe("The policies (ns/name) whose rules the chain holds."),
    rules: z.array(SliceRuleSchema).describe("The rules, in order."),
  })
  .describe("A policy-set chain.");

const SlicePodSchema = z
  .strictObject({
    namespace: z.string().regex(new RegExp(DNS_LABEL_PATTERN), { message: "must be a namespace name (a DNS label)" }).max(63).describe("The pod's namespace."),
    name: z.string().regex(new RegExp(DNS_SUBDOMAIN_PATTERN), { message: "must be a pod name (a DNS subdomain)" }).max(253).describe("The pod's name."),
    ip: Ipv4AddressSchema.optional().describe("The pod's address."),
    interface: IfnameSchema.describe("The pod's host-side veth."),
    ingress: PlanIdSchema.optional().describe("Ingress chain id, when isolated for ingress."),
    egress: PlanIdSchema.optional().describe("Egress chain id, when isolated for egress."),
  })
  .describe("A pod-network pod on the node.");

const NamedPortMemberSchema = z.tuple([Ipv4AddressSchema, ProtocolSchema, PortSchema]);

const SliceGroupSchema = z
  .strictObject({
    id: PlanIdSchema.describe("Content id of the group."),
    kind: z.enum(["address", "cidr", "named-port"]).describe("address (pod IPs), cidr (ipBlock prefixes) or named-port ([ip, protocol, port])."),
    members: z.array(z.union([Ipv4OrCidrSchema, NamedPortMemberSchema]).meta(MIXED).describe("A member.")).describe("The members, as the kind says."),
  })
  .superRefine((g, ctx) => {
    // The kind decides the members' shape: the CRD cannot say it, so the parse does.
    g.members.forEach((m, i) => {
      const ok =
        g.kind === "address" ? Ipv4AddressSchema.safeParse(m).success : g.kind === "cidr" ? Ipv4CidrSchema.safeParse(m).success : NamedPortMemberSchema.safeParse(m).success;
      if (!ok) {
        const want = g.kind === "address" ? "an IPv4 address" : g.kind === "cidr" ? "an IPv4 CIDR" : "an [IPv4 address, protocol, port] triple";
        ctx.addIssue({ code: "custom", path: ["members", i], message: `must be ${want} in a ${g.kind} group`, input: m });
      }
    });
  })
  .describe("An address group a chain references.");

export const PolicySectionSchema = z
  .strictObject({
    version: z.literal(1).describe("Slice format version."),
    node: NodeNameSchema.describe("The node."),
    pods: z.array(SlicePodSchema).describe("Every pod-network pod on the node."),
    chains: z.array(SliceChainSchema).describe("Policy-set chains."),
    groups: z.array(SliceGroupSchema).describe("Every group a chain references."),
    backend: z.enum(["nftables", "iptables"]).optional().describe("The policy backend (nftables when absent)."),
  })
  .superRefine((s, ctx) => {
    // Every reference resolves: a dangling id would render a jump to, or a lookup in, nothing.
    const chains = new Set(s.chains.map((c) => c.id));
    const groups = new Map(s.groups.map((g) => [g.id, g.kind]));
    s.pods.forEach((p, i) => {
      for (const dir of ["ingress", "egress"] as const) {
        const id = p[dir];
        if (id !== undefined && !chains.has(id)) ctx.addIssue({ code: "custom", path: ["pods", i, dir], message: `names chain ${id}, which the slice does not have`, input: id });
      }
    });
    s.chains.forEach((c, i) =>
      c.rules.forEach((r, j) => {
        if (r.peers !== "any") {
          r.peers.forEach((g, k) => {
            const kind = groups.get(g);
            if (kind === undefined || kind === "named-port") ctx.addIssue({ code: "custom", path: ["chains", i, "rules", j, "peers", k], message: `names group ${g}, which the slice has no address or cidr group of`, input: g });
          });
        }
        if (r.namedPorts !== undefined && groups.get(r.namedPorts) !== "named-port") {
          ctx.addIssue({ code: "custom", path: ["chains", i, "rules", j, "namedPorts"], message: `names group ${r.namedPorts}, which the slice has no named-port group of`, input: r.namedPorts });
        }
      }),
    );
  })
  .meta({ "x-kubernetes-map-type": "atomic" })
  .describe("The NetworkPolicy slice for this node's pods and the address groups it references.");
export type PolicySection = z.infer<typeof PolicySectionSchema>;
