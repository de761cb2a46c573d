// The ClusterNetwork API (switchyard.dev/v1alpha1): the one source of truth for the CRD, the validation
// webhook and the controller's parsing. Field names are the public contract; descriptions are what
// `kubectl explain clusternetwork.spec` shows.
import { z } from "zod";
import { API_GROUP_VERSION, ConditionSchema, DurationSchema, LabelSelectorSchema } from "./common";
import { IPV4_CIDR_PATTERN, IPV4_PATTERN } from "./ipv4";
import { BGP_TOPOLOGIES, MODES } from "./mode-names";

export { BGP_TOPOLOGIES, MODES };
export const ModeSchema = z
  .enum(MODES)
  .describe("How pod traffic crosses between nodes: vxlan, ipip, host-gw or bgp. Changing it on a live cluster starts a migration.");
export type Mode = z.infer<typeof ModeSchema>;

export const Ipv4CidrSchema = z.string().max(18).regex(new RegExp(IPV4_CIDR_PATTERN), { message: "must be an IPv4 CIDR such as 10.244.0.0/16" });
export const Ipv4AddressSchema = z.string().max(15).regex(new RegExp(IPV4_PATTERN), { message: "must be an IPv4 address such as 192.168.10.1" });
const AsNumberSchema = z.int().min(1).max(4294967295);

export const VxlanConfigSchema = z
  .strictObject({
    vni: z.int().min(1).max(16777215).default(1).describe("The VXLAN network identifier, 1..16777215."),
    port: z.int().min(1).max(65535).default(8472).describe("The UDP port VXLAN uses, 1..65535 (8472, as Flannel's kernel VXLAN, by default)."),
  })
  .describe("VXLAN settings; only valid when mode is vxlan.");

// A Secret's name: a DNS-1123 subdomain. Its key: what a Secret's data may be keyed by.
const SECRET_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const SECRET_KEY_PATTERN = "^[-._a-zA-Z0-9]+$";
export const BgpPasswordSecretRefSchema = z
  .strictObject({
    name: z.string().min(1).max(253).regex(new RegExp(SECRET_NAME_PATTERN), { message: "must be a Secret name (lower-case letters, digits, '-' and '.')" }).describe("The Secret's name, in the namespace Switchyard runs in (switchyard-system)."),
    key: z.string().min(1).max(253).regex(new RegExp(SECRET_KEY_PATTERN), { message: "must be a Secret key (letters, digits, '-', '_' and '.')" }).describe("The key in the Secret's data that holds the password."),
  })
  .describe("A BGP session password (TCP-MD5, RFC 2385) kept in a Secret of Switchyard's namespace; the agents read it, the NodeNetwork plans carry only this reference. 1..80 printable ASCII characters, without a double quote or a backslash.");
export type BgpPasswordSecretRef = z.infer<typeof BgpPasswordSecretRefSchema>;

export const BgpAcceptPrefixSchema = z
  .strictObject({
    cidr: Ipv4CidrSchema.describe("A prefix the router may announce, e.g. 0.0.0.0/0 (a default route) or 172.16.0.0/12. No host bits; must not overlap spec.podCIDRs."),
    maxLength: z.int().min(0).max(32).optional().describe("Also accept more specific prefixes inside cidr, up to this prefix length (cidr's own length by default: that prefix only)."),
  })
  .describe("A prefix accepted from a top-of-rack router beyond the cluster's pod blocks.");

export const BgpPeerSchema = z
  .strictObject({
    address: Ipv4AddressSchema.describe("The peer router's IPv4 address (usually the top-of-rack switch on the node's subnet)."),
    asNumber: AsNumberSchema.describe("The peer's autonomous system number, 1..4294967295."),
    nodeSelector: LabelSelectorSchema.optional().describe("Which nodes peer with this router; all nodes when absent."),
    passwordSecretRef: BgpPasswordSecretRefSchema.optional().describe("The password of the sessions with this router; none when absent."),
    acceptPrefixes: z
      .array(BgpAcceptPrefixSchema)
      .max(64)
      .optional()
      .describe("What nodes import from this router besides pod blocks (blockSize-long prefixes and /32s inside spec.podCIDRs, always accepted): nothing else when absent. Everything not listed is rejected."),
  })
  .describe("An external BGP peer (a top-of-rack router).");

export const BgpConfigSchema = z
  .strictObject({
    asNumber: AsNumberSchema.default(64512).describe("The cluster's autonomous system number, 1..4294967295 (64512 by default)."),
    topology: z
      .enum(BGP_TOPOLOGIES)
      .default("full-mesh")
      .describe("full-mesh: every node peers with every other; route-reflectors: nodes peer with the selected reflectors; tor: each node peers with its top-of-rack router."),
    routeReflectors: z
      .strictObject({
        nodeSelector: LabelSelectorSchema.describe("Selects the nodes that act as route reflectors."),
      })
      .optional()
      .describe("Route reflector selection; required when topology is route-reflectors, not allowed otherwise."),
    peers: z
      .array(BgpPeerSchema)
      .max(64)
      .optional()
      .describe("Top-of-rack peers; required (non-empty) when topology is tor, not allowed otherwise."),
    passwordSecretRef: BgpPasswordSecretRefSchema.optional().describe("The password of the sessions between nodes (full-mesh and route-reflectors); none when absent. Top-of-rack sessions take theirs from spec.bgp.peers[].passwordSecretRef."),
  })
  .describe("BGP settings; required when mode is bgp, not allowed otherwise. Routes are exchanged by BIRD 2 on every node.");

export const PolicyConfigSchema = z
  .strictObject({
    backend: z
      .enum(["nftables", "iptables"])
      .default("nftables")
      .describe("How NetworkPolicy is enforced on nodes: nftables (one table with sets and verdict maps) or iptables (iptables-restore with ipsets)."),
  })
  .describe("NetworkPolicy enforcement settings.");

export const BATCH_PERCENT_PATTERN = "^(100|[1-9][0-9]?)%$";
export const MigrationConfigSchema = z
  .strictObject({
    canary: z
      .strictObject({
        nodes: z.int().min(1).optional().describe("How many nodes migrate first, as canaries."),
        nodeSelector: LabelSelectorSchema.optional().describe("Which nodes migrate first, as canaries."),
      })
      .default({ nodes: 1 })
      .describe("The canary nodes: exactly one of nodes or nodeSelector (1 node by default)."),
    batchSize: z
      .union([
        z.int().min(1),
        z.string().regex(new RegExp(BATCH_PERCENT_PATTERN), { message: 'must be a whole number of nodes (>= 1) or a percentage "1%".."100%"' }),
      ], { error: 'must be a whole number of nodes (>= 1) or a percentage "1%".."100%"' })
      .default("25%")
      .describe('How many nodes migrate per batch after the canaries: a count (>= 1) or a percentage of the nodes ("1%".."100%"; 25% by default).'),
    healthGate: z
      .strictObject({
        successfulRounds: z.int().min(1).max(100).default(3).describe("Probe rounds that must all succeed before the next step (1..100)."),
        probeInterval: DurationSchema.default("2s").describe("Time between probe rounds, e.g. 2s."),
        timeout: DurationSchema.default("60s").describe("How long a migration step (applying its plans, or a gate) may go without progress before it fails, e.g. 60s; counted from when the step's plans were all published."),
      })
      .default({ successfulRounds: 3, probeInterval: "2s", timeout: "60s" })
      .describe("The health gate after the canaries and after every batch: agents probe pods on migrated and unmigrated nodes."),
    autoRollback: z.boolean().default(true).describe("Roll back automatically when a gate fails (true by default)."),
  })
  .describe("How a change of mode is rolled out: canary nodes first, then gated batches.");

export const ClusterNetworkSpecSchema = z
  .strictObject({
    podCIDRs: z.array(Ipv4CidrSchema).min(1).max(16).describe("The IPv4 pools pod addresses come from; at least one, no host bits, no overlaps. Fixed once blocks are allocated (new CIDRs may be appended)."),
    blockSize: z.int().min(16).max(30).default(26).describe("The prefix length of each node's pod block, 16..30, not shorter than any pod CIDR's prefix (26 = 64 addresses by default)."),
    mode: ModeSchema.default("vxlan"),
    crossSubnet: z.boolean().default(false).describe("For vxlan and ipip only: encapsulate only between nodes in different subnets, route natively within a subnet."),
    mtu: z.int().min(0).max(9000).default(0).describe("The pod MTU: 0 = auto (the underlay MTU minus the mode's overhead: 50 for vxlan, 20 for ipip), else 576..9000."),
    natOutgoing: z.boolean().default(true).describe("SNAT traffic from pods to destinations outside the pod CIDRs to the node's address."),
    vxlan: VxlanConfigSchema.optional(),
    bgp: BgpConfigSchema.optional(),
    policy: PolicyConfigSchema.default({ backend: "nftables" }),
    migration: MigrationConfigSchema.default({
      canary: { nodes: 1 },
      batchSize: "25%",
      healthGate: { successfulRounds: 3, probeInterval: "2s", timeout: "60s" },
      autoRollback: true,
    }),
  })
  .describe("The desired pod network of the cluster.");
export type ClusterNetworkSpec = z.infer<typeof ClusterNetworkSpecSchema>;
export type ClusterNetworkSpecInput = z.input<typeof ClusterNetworkSpecSchema>;

export const CLUSTER_PHASES = ["Pending", "Progressing", "Ready", "Migrating", "Degraded", "Failed"] as const;
export const MIGRATION_PHASES = [
  "Preflight", "Prepare", "Canary", "Gate", "Rolling", "Finalize", "Completed",
  "Paused", "RollingBack", "RolledBack", "Failed", "Blocked",
] as const;

export const MigrationStatusSchema = z
  .strictObject({
    phase: z.enum(MIGRATION_PHASES).describe("Where the migration is: Preflight, Prepare, Canary, Gate, Rolling, Finalize, Completed, Paused, RollingBack, RolledBack, Failed or Blocked."),
    from: ModeSchema.describe("The mode the cluster is moving from."),
    to: ModeSchema.describe("The mode the cluster is moving to."),
    generation: z.int().min(0).optional().describe("The ClusterNetwork generation the migration started for (editing the object retries a blocked or rolled-back migration)."),
    startedAt: z.string().optional().describe("When the migration started (RFC 3339)."),
    since: z.string().optional().describe("When the current phase or step began or last made progress (RFC 3339); timeouts count from here."),
    waitingFor: z.int().min(0).optional().describe("How many nodes the current step still waits for; whenever this falls, the step made progress and its timeout starts again."),
    stage: z.enum(["switch", "grace", "cleanup"]).optional().describe("Within Finalize and RollingBack: switching sending sides, waiting out the grace period, or removing the other mode's state."),
    pausedFrom: z.enum(MIGRATION_PHASES).optional().describe("The phase a paused migration resumes into."),
    batches: z.array(z.array(z.string())).optional().describe("The node batches, in order; the first is the canary batch. Fixed at Preflight."),
    migratedBatches: z.int().min(0).optional().describe("How many batches (from the first) send with the target mode."),
    epoch: z.int().min(0).optional().describe("The current health-gate epoch (agents report probe rounds per epoch)."),
    nodesTotal: z.int().min(0).optional().describe("Nodes taking part."),
    nodesMigrated: z.int().min(0).optional().describe("Nodes whose sending side uses the target mode."),
    reason: z.string().optional().describe("Why the migration was blocked, failed or rolled back."),
    message: z.string().optional().describe("What is happening now."),
  })
  .describe("Progress of a change of mode, persisted so a restarted controller resumes exactly where it was.");

export const ClusterNetworkStatusSchema = z
  .strictObject({
    observedGeneration: z.int().min(0).optional().describe("The .metadata.generation this status describes."),
    phase: z.enum(CLUSTER_PHASES).optional().describe("A one-word summary: Pending, Progressing, Ready, Migrating, Degraded or Failed."),
    activeMode: ModeSchema.optional().describe("The mode nodes send with now."),
    targetMode: ModeSchema.optional().describe("The mode the spec asks for."),
    nodes: z
      .strictObject({
        desired: z.int().min(0).describe("Nodes that should run the current plan."),
        realized: z.int().min(0).describe("Nodes whose agent reports the current plan applied."),
      })
      .optional()
      .describe("Node counts: desired versus realized at the current generation."),
    ipam: z
      .strictObject({
        allocatedBlocks: z.int().min(0).describe("Pod blocks allocated to nodes."),
        freeBlocks: z.int().min(0).describe("Pod blocks still free in the pools."),
      })
      .optional()
      .describe("Pod block allocation."),
    activeConfig: z
      .strictObject({ vxlan: VxlanConfigSchema.optional(), bgp: BgpConfigSchema.optional() })
      .optional()
      .describe("The settings of the active mode, kept so a migration away from it (and a rollback to it) uses them after the spec has moved on."),
    migration: MigrationStatusSchema.optional(),
    conditions: z.array(ConditionSchema).optional().describe("Ready, Progressing, Degraded, MigrationBlocked and others."),
  })
  .describe("What the cluster network has realized, as reported by the node agents.");
export type ClusterNetworkStatus = z.infer<typeof ClusterNetworkStatusSchema>;

export const ClusterNetworkSchema = z
  .strictObject({
    apiVersion: z.literal(API_GROUP_VERSION).describe("switchyard.dev/v1alpha1"),
    kind: z.literal("ClusterNetwork").describe("ClusterNetwork"),
    metadata: z.looseObject({ name: z.string().min(1) }).describe("Standard object metadata."),
    spec: ClusterNetworkSpecSchema,
    status: ClusterNetworkStatusSchema.optional(),
  })
  .describe("ClusterNetwork declares a cluster's pod network: pools, mode, MTU, NAT, policy backend and how mode changes roll out.");
export type ClusterNetwork = z.infer<typeof ClusterNetworkSchema>;
