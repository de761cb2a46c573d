// The BlockAffinity API (switchyard.dev/v1alpha1): one per node that holds a pod block, written by the
// controller before the block is published in that node's NodeNetwork. It is the record of the
// allocation, and it outlives the objects that use it (Calico keeps block affinities the same way):
// deleting a NodeNetwork or re-creating the ClusterNetwork never moves a node to another block, because
// the controller reads these first and is not their owner's garbage (no ownerReference to the
// ClusterNetwork). A block is released only once its node is gone and no pod holds an address in it; the
// finalizer makes any other deletion wait until then, so the record cannot vanish under running pods.
import { z } from "zod";
import { API_GROUP_VERSION } from "./common";
import { Ipv4CidrSchema } from "./cluster-network";

/** Held by the controller while the block may still be in use; removed when it releases the block. */
export const BLOCK_IN_USE_FINALIZER = "switchyard.dev/block-in-use";

export const BlockAffinitySpecSchema = z
  .strictObject({
    node: z.string().min(1).describe("The node the block belongs to (the object's name is the node's name)."),
    cidr: Ipv4CidrSchema.describe("The node's pod block, a /blockSize block of one of the ClusterNetwork's podCIDRs."),
    clusterNetwork: z.string().min(1).optional().describe("The ClusterNetwork the block was first allocated under (for people; a re-created ClusterNetwork finds the same blocks)."),
  })
  .describe("One node's pod block.");
export type BlockAffinitySpec = z.infer<typeof BlockAffinitySpecSchema>;

export const BlockAffinitySchema = z
  .strictObject({
    apiVersion: z.literal(API_GROUP_VERSION).describe("switchyard.dev/v1alpha1"),
    kind: z.literal("BlockAffinity").describe("BlockAffinity"),
    metadata: z.looseObject({ name: z.string().min(1) }).describe("Standard object metadata."),
    spec: BlockAffinitySpecSchema,
  })
  .describe("BlockAffinity records which pod block a node holds; it outlives NodeNetworks and ClusterNetworks.");
export type BlockAffinity = z.infer<typeof BlockAffinitySchema>;
