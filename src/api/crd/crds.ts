// The CustomResourceDefinitions of Switchyard, built from the zod schemas (the one source of truth).
// hack/gen-crds.ts writes them to crds/; a test and CI check that the committed files match.
import { API_GROUP, API_VERSION } from "../common";
import { ClusterNetworkSpecSchema, ClusterNetworkStatusSchema } from "../cluster-network";
import { BLOCK_AFFINITY, CLUSTER_NETWORK, NODE_NETWORK, type ResourceKind } from "../kinds";
import { BlockAffinitySpecSchema } from "../block-affinity";
import { NodeNetworkSpecSchema, NodeNetworkStatusSchema } from "../node-network";
import { stringify } from "yaml";
import { openApiFromZod, type JsonSchema } from "./openapi";

type Rule = { rule: string; message: string; fieldPath?: string; reason?: string };

function withRules(schema: JsonSchema, rules: Rule[]): JsonSchema {
  return { ...schema, "x-kubernetes-validations": rules };
}

function prop(schema: JsonSchema, name: string): JsonSchema {
  const p = (schema["properties"] as JsonSchema)[name] as JsonSchema;
  if (!p) throw new Error(`no property ${name}`);
  return p;
}

function clusterNetworkSpecSchema(): JsonSchema {
  const spec = openApiFromZod(ClusterNetworkSpecSchema);
  const props = spec["properties"] as JsonSchema;
  // CEL rules: the cross-field checks kubectl users see even without the webhook.
  const bgp = prop(spec, "bgp");
  props["bgp"] = withRules(bgp, [
    {
      rule: "self.topology != 'route-reflectors' || has(self.routeReflectors)",
      message: "routeReflectors is required when topology is route-reflectors",
      fieldPath: ".routeReflectors",
    },
    { rule: "!has(self.routeReflectors) || self.topology == 'route-reflectors'", message: "routeReflectors is only valid when topology is route-reflectors", fieldPath: ".routeReflectors" },
    { rule: "self.topology != 'tor' || (has(self.peers) && size(self.peers) > 0)", message: "peers must list at least one top-of-rack router when topology is tor", fieldPath: ".peers" },
    { rule: "!has(self.peers) || self.topology == 'tor'", message: "peers is only valid when topology is tor", fieldPath: ".peers" },
  ]);
  const migration = prop(spec, "migration");
  const migProps = migration["properties"] as JsonSchema;
  migProps["canary"] = withRules(prop(migration, "canary"), [
    { rule: "has(self.nodes) != has(self.nodeSelector)", message: "set exactly one of nodes or nodeSelector" },
  ]);
  migProps["batchSize"] = withRules(prop(migration, "batchSize"), [
    {
      rule: "type(self) == int ? self >= 1 : string(self).matches('^(100|[1-9][0-9]?)%$')",
      message: 'must be a whole number of nodes (>= 1) or a percentage "1%".."100%"',
    },
  ]);
  return withRules(spec, [
    { rule: "self.mtu == 0 || self.mtu >= 576", message: "mtu must be 0 (auto) or between 576 and 9000", fieldPath: ".mtu" },
    { rule: "self.mode != 'bgp' || has(self.bgp)", message: "bgp is required when mode is bgp", fieldPath: ".bgp" },
    { rule: "!has(self.bgp) || self.mode == 'bgp'", message: "bgp is only valid when mode is bgp", fieldPath: ".bgp" },
    { rule: "!has(self.vxlan) || self.mode == 'vxlan'", message: "vxlan is only valid when mode is vxlan", fieldPath: ".vxlan" },
    { rule: "!self.crossSubnet || self.mode == 'vxlan' || self.mode == 'ipip'", message: "crossSubnet only applies to the vxlan and ipip modes", fieldPath: ".crossSubnet" },
  ]);
}

function rootSchema(spec: JsonSchema, status: JsonSchema | undefined, description: string, rules: Rule[] = []): JsonSchema {
  const root: JsonSchema = {
    type: "object",
    description,
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "APIVersion defines the versioned schema of this representation of an object." },
      kind: { type: "string", description: "Kind is a string value representing the REST resource this object represents." },
      // The API server accepts nothing under metadata but `type: object` (and name/generateName rules).
      metadata: { type: "object" },
      spec,
      ...(status ? { status } : {}),
    },
  };
  if (rules.length > 0) root["x-kubernetes-validations"] = rules;
  return root;
}

/** The CustomResourceDefinition envelope shared by every kind: cluster-scoped, one version, a status subresource when the kind has a status. */
function crd(names: ResourceKind, columns: JsonSchema[], schema: JsonSchema, opts: { readonly status?: boolean } = {}): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${names.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      names: { kind: names.kind, listKind: `${names.kind}List`, plural: names.plural, singular: names.singular, shortNames: [...names.shortNames], categories: ["switchyard"] },
      scope: "Cluster",
      versions: [{ name: API_VERSION, served: true, storage: true, ...(opts.status === false ? {} : { subresources: { status: {} } }), additionalPrinterColumns: columns, schema: { openAPIV3Schema: schema } }],
    },
  };
}

export function clusterNetworkCrd(): JsonSchema {
  const schema = rootSchema(
    clusterNetworkSpecSchema(),
    openApiFromZod(ClusterNetworkStatusSchema),
    "ClusterNetwork declares a cluster's pod network: pools, mode, MTU, NAT, policy backend and how mode changes roll out.",
    [
      {
        rule: "!has(oldSelf.status) || !has(oldSelf.status.ipam) || oldSelf.status.ipam.allocatedBlocks == 0 || self.spec.blockSize == oldSelf.spec.blockSize",
        message: "spec.blockSize cannot change once node blocks are allocated",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(oldSelf.status) || !has(oldSelf.status.ipam) || oldSelf.status.ipam.allocatedBlocks == 0 || (size(self.spec.podCIDRs) >= size(oldSelf.spec.podCIDRs) && oldSelf.spec.podCIDRs.all(c, self.spec.podCIDRs.exists(n, n == c)))",
        message: "spec.podCIDRs cannot change once node blocks are allocated (new CIDRs may be appended)",
        reason: "FieldValueForbidden",
      },
    ],
  );
  return crd(
    CLUSTER_NETWORK,
    [
      { name: "Mode", type: "string", jsonPath: ".spec.mode", description: "The mode the spec asks for." },
      { name: "Active", type: "string", jsonPath: ".status.activeMode", description: "The mode nodes send with now." },
      { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Pending, Progressing, Ready, Migrating, Degraded or Failed." },
      { name: "Realized", type: "integer", jsonPath: ".status.nodes.realized", description: "Nodes that applied the current plan." },
      { name: "Desired", type: "integer", jsonPath: ".status.nodes.desired", description: "Nodes that should run the current plan." },
      { name: "Migration", type: "string", jsonPath: ".status.migration.phase", priority: 1, description: "Phase of a change of mode." },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
    schema,
  );
}

export function nodeNetworkCrd(): JsonSchema {
  const schema = rootSchema(
    openApiFromZod(NodeNetworkSpecSchema),
    openApiFromZod(NodeNetworkStatusSchema),
    "NodeNetwork is one node's compiled network plan (written by the controller) and what its agent realized (status).",
  );
  return crd(
    NODE_NETWORK,
    [
      { name: "Mode", type: "string", jsonPath: ".spec.mode", description: "The mode this node sends with." },
      { name: "Block", type: "string", jsonPath: ".spec.block", description: "The node's pod block." },
      { name: "Plan", type: "string", jsonPath: ".spec.planHash", description: "Hash of the compiled plan." },
      { name: "Applied", type: "string", jsonPath: ".status.appliedHash", description: "Hash of the plan the agent applied." },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
    schema,
  );
}

export function blockAffinityCrd(): JsonSchema {
  const spec = openApiFromZod(BlockAffinitySpecSchema);
  // The record of an allocation never changes: a node's block moves only by releasing it (node deleted)
  // and allocating again, so an edit that would renumber a node's running pods is refused by the server.
  const schema = rootSchema(spec, undefined, "BlockAffinity records which pod block a node holds (written by the controller); it outlives NodeNetworks and ClusterNetworks.", [
    { rule: "self.spec.node == self.metadata.name", message: "spec.node must be the object's name (one BlockAffinity per node, named after it)", fieldPath: ".spec.node" },
    { rule: "self.spec.node == oldSelf.spec.node && self.spec.cidr == oldSelf.spec.cidr", message: "spec.node and spec.cidr cannot change: a block is released (its node deleted) and allocated again, never moved", reason: "FieldValueForbidden" },
  ]);
  return crd(
    BLOCK_AFFINITY,
    [
      { name: "Node", type: "string", jsonPath: ".spec.node", description: "The node holding the block." },
      { name: "Block", type: "string", jsonPath: ".spec.cidr", description: "The node's pod block." },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
    schema,
    { status: false },
  );
}

export const CRDS: readonly { file: string; build: () => JsonSchema }[] = [
  { file: "clusternetworks.switchyard.dev.yaml", build: clusterNetworkCrd },
  { file: "nodenetworks.switchyard.dev.yaml", build: nodeNetworkCrd },
  { file: "blockaffinities.switchyard.dev.yaml", build: blockAffinityCrd },
];

const HEADER = "# Generated by hack/gen-crds.ts from src/api (zod schemas). Do not edit: run `npm run gen:crds`.\n";

/** The CRD files as they must appear in crds/: file name -> YAML text. */
export function renderCrdFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const c of CRDS) files.set(c.file, HEADER + stringify(c.build(), { lineWidth: 0, aliasDuplicateObjects: false }));
  return files;
}
