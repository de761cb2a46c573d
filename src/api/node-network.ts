// The NodeNetwork API (switchyard.dev/v1alpha1): one per node, written by the controller (spec = the
// node's compiled plan) and reported on by that node's agent (status = what it applied). The plan's
// routing and policy sections are compact (groups by reference) to stay far below etcd's object limit;
// their strict shape is in node-plan.ts (the types they carry are src/model and src/compile's).
import { z } from "zod";
import { API_GROUP_VERSION, ConditionSchema } from "./common";
import { Ipv4AddressSchema, Ipv4CidrSchema, ModeSchema } from "./cluster-network";
import { PolicySectionSchema, RoutingPlanSchema } from "./node-plan";

export const NodeNetworkSpecSchema = z
  .strictObject({
    nodeName: z.string().min(1).describe("The node this plan is for."),
    clusterNetwork: z.string().min(1).describe("The ClusterNetwork the plan was compiled from."),
    generation: z.int().min(0).describe("The ClusterNetwork .metadata.generation the plan was compiled from."),
    planHash: z.string().min(1).describe("Content hash of the plan; the agent reports it back once applied."),
    nodeIP: Ipv4AddressSchema.describe("The node's underlay address."),
    block: Ipv4CidrSchema.optional().describe("The node's pod block; absent while the pools are full."),
    mode: ModeSchema.describe("The mode this node sends with."),
    mtu: z.int().min(0).max(9000).describe("The pod MTU in force on this node."),
    // Both sections are atomic for server-side apply (see node-plan.ts) and strict: the agent renders them
    // into kernel text, so the API server refuses a plan with an unknown field or a malformed name.
    routing: RoutingPlanSchema,
    policy: PolicySectionSchema,
    health: z
      .strictObject({
        epoch: z.int().min(0).describe("The gate epoch the probe rounds count for."),
        intervalMs: z.int().min(100).describe("Time between probe rounds, in milliseconds."),
        rounds: z
          .int()
          .min(1)
          .optional()
          .describe("Consecutive healthy rounds a gate needs: the agent reports every round until then, afterwards only changes."),
        targets: z
          .array(z.strictObject({ node: z.string().describe("The peer node."), address: Ipv4AddressSchema.describe("The peer's health address (its block's first address).") }))
          .describe("Peers to probe through the pod-network routes."),
      })
      .optional()
      .describe("Health probing during a migration (Prepare to Finalize); a gate counts the rounds of its epoch. Absent otherwise."),
  })
  .describe("The compiled plan for one node.");
export type NodeNetworkSpec = z.infer<typeof NodeNetworkSpecSchema>;

export const NodeNetworkStatusSchema = z
  .strictObject({
    observedGeneration: z.int().min(0).optional().describe("The NodeNetwork .metadata.generation the agent applied."),
    appliedHash: z.string().optional().describe("The planHash the agent applied to the kernel."),
    appliedAt: z.string().optional().describe("When the plan was applied (RFC 3339)."),
    capabilities: z
      .record(z.string(), z.boolean())
      .optional()
      .describe("Kernel and node features the agent detected, e.g. vxlan, ipip, nftables, iptables, bird."),
    probes: z
      .array(
        z.strictObject({
          target: z.string().describe("The probed peer (node or pod)."),
          ok: z.boolean().describe("Whether the last probe round reached it."),
          rttMs: z.number().min(0).optional().describe("Round-trip time of the last successful probe, in milliseconds."),
          at: z.string().optional().describe("When it was probed (RFC 3339)."),
        }),
      )
      .optional()
      .describe("Health probe results used by migration gates."),
    health: z
      .strictObject({
        epoch: z.int().min(0).describe("The gate epoch these rounds belong to."),
        okRounds: z.int().min(0).describe("Consecutive probe rounds in which every target answered."),
        failedRounds: z.int().min(0).describe("Probe rounds with at least one unanswered target."),
        lastFailure: z.string().optional().describe("The targets that did not answer in the last failed round."),
        waiting: z.string().optional().describe("Why the last round did not count although every target answered (e.g. traffic still on the old transport)."),
        at: z.string().optional().describe("When the last round finished (RFC 3339)."),
      })
      .optional()
      .describe("Health probe rounds for the current migration gate."),
    conditions: z.array(ConditionSchema).optional().describe("Applied, Degraded, and mode-specific conditions such as ModeUnsupported."),
  })
  .describe("What the node agent applied and observed.");

export const NodeNetworkSchema = z
  .strictObject({
    apiVersion: z.literal(API_GROUP_VERSION).describe("switchyard.dev/v1alpha1"),
    kind: z.literal("NodeNetwork").describe("NodeNetwork"),
    metadata: z.looseObject({ name: z.string().min(1) }).describe("Standard object metadata."),
    spec: NodeNetworkSpecSchema,
    status: NodeNetworkStatusSchema.optional(),
  })
  .describe("NodeNetwork is one node's compiled network plan and what its agent realized.");
export type NodeNetwork = z.infer<typeof NodeNetworkSchema>;
