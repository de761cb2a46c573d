// The NetworkPolicy conformance corpus (shared/conformance/FORMAT.md, schema_version 1) as typed data,
// and the pure steps a runner needs: the lab state a case builds up step by step, the PolicySnapshot of
// that state (ipBlock templates substituted with the state's pod IPs), and the expected matrix cells.
// Pure: the caller reads and YAML-parses the file; this module never touches the filesystem.
import { z } from "zod";
import { diagnosticsFromZod, formatDiagnostic } from "../../src/api/diagnostics";
import { formatCidr, networkOf, parseIPv4 } from "../../src/api/ipv4";
import { type ContainerPort, type PodInfo, type PolicySnapshot, type Protocol } from "../../src/model/cluster";
import { compareStrings } from "../../src/compile/policy/canonical";

const LabelsSchema = z.record(z.string(), z.string());
const ProtocolSchema = z.enum(["TCP", "UDP", "SCTP"]);
const ServerSchema = z.looseObject({ port: z.int().min(1).max(65535), protocol: ProtocolSchema });

const NamespaceSchema = z.looseObject({ name: z.string(), labels: LabelsSchema });
const DefaultPodSchema = z.looseObject({ ref: z.string(), namespace: z.string(), name: z.string(), labels: LabelsSchema, ip: z.string() });

const ActionSchema = z.union([
  z.strictObject({ create_policy: z.looseObject({}) }),
  z.strictObject({ update_policy: z.looseObject({}) }),
  z.strictObject({ delete_policy: z.looseObject({ namespace: z.string(), name: z.string() }) }),
  z.strictObject({ delete_all_policies: z.looseObject({}).nullish() }),
  z.strictObject({ add_namespace_labels: z.looseObject({ namespace: z.string(), labels: LabelsSchema }) }),
  z.strictObject({ set_namespace_labels: z.looseObject({ namespace: z.string(), labels: LabelsSchema }) }),
  z.strictObject({ add_pod_labels: z.looseObject({ pod: z.string(), labels: LabelsSchema }) }),
  z.strictObject({ set_pod_labels: z.looseObject({ pod: z.string(), labels: LabelsSchema }) }),
  z.strictObject({ create_namespace: z.looseObject({ namespace: z.string(), labels: LabelsSchema.nullish() }) }),
  z.strictObject({ delete_namespace: z.looseObject({ namespace: z.string() }) }),
  z.strictObject({
    create_pod: z.looseObject({ pod: z.string(), labels: LabelsSchema.nullish(), servers: z.array(ServerSchema).nullish(), ip: z.string().nullish() }),
  }),
  z.strictObject({ delete_pod: z.looseObject({ pod: z.string() }) }),
]);

const ProbeSchema = z.looseObject({
  port: z.int().min(1).max(65535),
  protocol: ProtocolSchema,
  port_name: z.string().nullish(),
  expect: z.looseObject({
    pods: z.array(z.string()).nullish(),
    matrix: z.record(z.string(), z.string()),
    allowed: z.int().nullish(),
    denied: z.int().nullish(),
  }),
});

const StepSchema = z.looseObject({
  step: z.int(),
  note: z.string().nullish(),
  actions: z.array(ActionSchema).nullish(),
  policies_in_effect: z.array(z.string()).nullish(),
  probes: z.array(ProbeSchema).nullish(),
});

const CaseSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  features: z.array(z.string()).nullish(),
  model: z.looseObject({ servers: z.array(ServerSchema) }),
  steps: z.array(StepSchema),
});

const CorpusSchema = z.looseObject({
  schema_version: z.literal(1),
  title: z.string().nullish(),
  model_defaults: z.looseObject({
    namespaces: z.array(NamespaceSchema),
    pods: z.array(DefaultPodSchema),
    pod_order: z.array(z.string()),
    container_port_name: z.string(),
    ignore_loopback: z.boolean().nullish(),
  }),
  cases: z.array(CaseSchema),
});

export type CorpusAction = z.infer<typeof ActionSchema>;

export interface CorpusServer {
  readonly port: number;
  readonly protocol: Protocol;
}

export interface CorpusProbe {
  readonly port: number;
  readonly protocol: Protocol;
  readonly portName?: string;
  /** Row and column order of the matrix. */
  readonly pods: readonly string[];
  /** Source ref -> one character per destination in `pods` order: '.' connected, 'X' not. */
  readonly matrix: Readonly<Record<string, string>>;
}

export interface CorpusStep {
  readonly step: number;
  readonly note?: string;
  readonly actions: readonly CorpusAction[];
  readonly policiesInEffect: readonly string[];
  readonly probes: readonly CorpusProbe[];
}

export interface CorpusCase {
  readonly id: string;
  readonly status: string;
  readonly features: readonly string[];
  readonly servers: readonly CorpusServer[];
  readonly steps: readonly CorpusStep[];
}

export interface CorpusPodState {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip: string;
  readonly servers: readonly CorpusServer[];
}

/** The lab state a case has built so far. Plain data; every action returns a new state. */
export interface CorpusState {
  readonly namespaces: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** By ref `ns/name`. */
  readonly pods: ReadonlyMap<string, CorpusPodState>;
  /** By `ns/name`; the objects as written (templates not yet substituted). */
  readonly policies: ReadonlyMap<string, unknown>;
}

export interface ConformanceCorpus {
  readonly title: string;
  readonly namespaces: readonly { readonly name: string; readonly labels: Readonly<Record<string, string>> }[];
  readonly pods: readonly { readonly ref: string; readonly namespace: string; readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly ip: string }[];
  readonly podOrder: readonly string[];
  /** e.g. `serve-{port}-{protocol_lowercase}`. */
  readonly containerPortName: string;
  readonly ignoreLoopback: boolean;
  readonly cases: readonly CorpusCase[];
}

export type ParsedCorpus = { readonly ok: true; readonly corpus: ConformanceCorpus } | { readonly ok: false; readonly errors: readonly string[] };

/** Validates a YAML-parsed corpus document and returns it typed. */
export function parseConformanceCorpus(doc: unknown): ParsedCorpus {
  const r = CorpusSchema.safeParse(doc);
  if (!r.success) return { ok: false, errors: diagnosticsFromZod(r.error).map(formatDiagnostic) };
  const d = r.data;
  const order = d.model_defaults.pod_order;
  const cases: CorpusCase[] = d.cases.map((c) => ({
    id: c.id,
    status: c.status,
    features: c.features ?? [],
    servers: c.model.servers.map((s) => ({ port: s.port, protocol: s.protocol })),
    steps: c.steps.map((s) => ({
      step: s.step,
      ...(s.note ? { note: s.note } : {}),
      actions: s.actions ?? [],
      policiesInEffect: s.policies_in_effect ?? [],
      probes: (s.probes ?? []).map((p) => ({
        port: p.port,
        protocol: p.protocol,
        ...(p.port_name ? { portName: p.port_name } : {}),
        pods: p.expect.pods ?? order,
        matrix: p.expect.matrix,
      })),
    })),
  }));
  return {
    ok: true,
    corpus: {
      title: d.title ?? "",
      namespaces: d.model_defaults.namespaces.map((n) => ({ name: n.name, labels: n.labels })),
      pods: d.model_defaults.pods.map((p) => ({ ref: p.ref, namespace: p.namespace, name: p.name, labels: p.labels, ip: p.ip })),
      podOrder: order,
      containerPortName: d.model_defaults.container_port_name,
      ignoreLoopback: d.model_defaults.ignore_loopback ?? true,
      cases,
    },
  };
}

/** The clean lab a case starts from: the default namespaces and pods, every pod serving the case's servers. */
export function initialCorpusState(corpus: ConformanceCorpus, c: CorpusCase): CorpusState {
  return {
    namespaces: new Map(corpus.namespaces.map((n) => [n.name, { ...n.labels }])),
    pods: new Map(corpus.pods.map((p) => [p.ref, { namespace: p.namespace, name: p.name, labels: { ...p.labels }, ip: p.ip, servers: c.servers }])),
    policies: new Map(),
  };
}

function policyKeyOf(obj: Record<string, unknown>): string {
  const meta = (obj["metadata"] ?? {}) as Record<string, unknown>;
  return `${String(meta["namespace"])}/${String(meta["name"])}`;
}

function splitRef(ref: string): { namespace: string; name: string } {
  const i = ref.indexOf("/");
  return { namespace: ref.slice(0, i), name: ref.slice(i + 1) };
}

/** Applies one action (FORMAT.md, "Action"); returns the new state. Unknown pods/namespaces are ignored. */
export function applyCorpusAction(state: CorpusState, action: CorpusAction, c: CorpusCase): CorpusState {
  const namespaces = new Map(state.namespaces);
  const pods = new Map(state.pods);
  const policies = new Map(state.policies);
  if ("create_policy" in action) policies.set(policyKeyOf(action.create_policy), action.create_policy);
  else if ("update_policy" in action) policies.set(policyKeyOf(action.update_policy), action.update_policy);
  else if ("delete_policy" in action) policies.delete(`${action.delete_policy.namespace}/${action.delete_policy.name}`);
  else if ("delete_all_policies" in action) policies.clear();
  else if ("add_namespace_labels" in action) {
    const a = action.add_namespace_labels;
    const cur = namespaces.get(a.namespace);
    if (cur) namespaces.set(a.namespace, { ...cur, ...a.labels });
  } else if ("set_namespace_labels" in action) {
    const a = action.set_namespace_labels;
    if (namespaces.has(a.namespace)) namespaces.set(a.namespace, { ...a.labels, "kubernetes.io/metadata.name": a.namespace });
  } else if ("add_pod_labels" in action) {
    const a = action.add_pod_labels;
    const cur = pods.get(a.pod);
    if (cur) pods.set(a.pod, { ...cur, labels: { ...cur.labels, ...a.labels } });
  } else if ("set_pod_labels" in action) {
    const a = action.set_pod_labels;
    const cur = pods.get(a.pod);
    if (cur) pods.set(a.pod, { ...cur, labels: { ...a.labels } });
  } else if ("create_namespace" in action) {
    const a = action.create_namespace;
    namespaces.set(a.namespace, { ...(a.labels ?? {}), "kubernetes.io/metadata.name": a.namespace });
  } else if ("delete_namespace" in action) {
    const ns = action.delete_namespace.namespace;
    namespaces.delete(ns);
    for (const ref of [...pods.keys()]) if (pods.get(ref)!.namespace === ns) pods.delete(ref);
    for (const key of [...policies.keys()]) if (key.startsWith(`${ns}/`)) policies.delete(key);
  } else if ("create_pod" in action) {
    const a = action.create_pod;
    const { namespace, name } = splitRef(a.pod);
    pods.set(a.pod, {
      namespace,
      name,
      labels: { ...(a.labels ?? {}) },
      ip: a.ip ?? "",
      servers: a.servers ?? c.servers,
    });
  } else if ("delete_pod" in action) {
    pods.delete(action.delete_pod.pod);
  }
  return { namespaces, pods, policies };
}

/** The container port name a server gets, e.g. `serve-80-tcp`. */
export function corpusPortName(corpus: ConformanceCorpus, s: CorpusServer): string {
  return corpus.containerPortName.replace("{port}", String(s.port)).replace("{protocol_lowercase}", s.protocol.toLowerCase());
}

const TEMPLATE = /\{\{\s*(podip|hostcidr|supernet)\s+([^\s}]+)(?:\s+(\d+))?\s*\}\}/g;

/** Expands `{{podip NS/POD}}`, `{{hostcidr NS/POD}}` and `{{supernet NS/POD N}}` with `ipOf`. */
export function substituteCorpusTemplates(text: string, ipOf: (ref: string) => string | undefined): string {
  return text.replace(TEMPLATE, (whole, kind: string, ref: string, bits: string | undefined) => {
    const ip = ipOf(ref);
    if (ip === undefined) return whole;
    if (kind === "podip") return ip;
    if (kind === "hostcidr") return `${ip}/32`;
    const addr = parseIPv4(ip);
    if (addr === undefined || bits === undefined) return whole;
    return formatCidr(networkOf({ addr, prefix: Number(bits) }));
  });
}

/** substituteCorpusTemplates through every string of a policy object. */
export function substituteDeep(value: unknown, ipOf: (ref: string) => string | undefined): unknown {
  if (typeof value === "string") return substituteCorpusTemplates(value, ipOf);
  if (Array.isArray(value)) return value.map((v) => substituteDeep(v, ipOf));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, substituteDeep(v, ipOf)]));
  }
  return value;
}

/**
 * The PolicySnapshot of a corpus state. `nodeOf` places each pod on a node (the corpus does not say;
 * a lab spreads them). Every served (port, protocol) becomes a named container port.
 */
export function buildCorpusSnapshot(corpus: ConformanceCorpus, state: CorpusState, nodeOf: (ref: string) => string): PolicySnapshot {
  const ipOf = (ref: string): string | undefined => state.pods.get(ref)?.ip;
  const pods: PodInfo[] = [...state.pods.entries()]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([ref, p]) => {
      const ports: ContainerPort[] = p.servers.map((s) => ({ name: corpusPortName(corpus, s), containerPort: s.port, protocol: s.protocol }));
      return { namespace: p.namespace, name: p.name, labels: p.labels, node: nodeOf(ref), ...(p.ip ? { ip: p.ip } : {}), hostNetwork: false, ports };
    });
  return {
    namespaces: [...state.namespaces.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([name, labels]) => ({ name, labels })),
    pods,
    policies: [...state.policies.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, obj]) => substituteDeep(obj, ipOf)),
  };
}

export interface ExpectedCell {
  readonly from: string;
  readonly to: string;
  readonly connected: boolean;
  /** Source and destination are the same pod (upstream never asserts these when ignore_loopback). */
  readonly loopback: boolean;
}

/** Every cell of a probe's expected matrix. */
export function listExpectedCells(probe: CorpusProbe): ExpectedCell[] {
  const cells: ExpectedCell[] = [];
  for (const from of probe.pods) {
    const row = probe.matrix[from];
    if (row === undefined) continue;
    probe.pods.forEach((to, i) => {
      const ch = row[i];
      if (ch === undefined) return;
      cells.push({ from, to, connected: ch === ".", loopback: from === to });
    });
  }
  return cells;
}

/** True when the pod serves (port, protocol): a probe to anything else fails whatever the policy says. */
export function corpusPodServes(state: CorpusState, ref: string, port: number, protocol: Protocol): boolean {
  const pod = state.pods.get(ref);
  return pod !== undefined && pod.servers.some((s) => s.port === port && s.protocol === protocol);
}
