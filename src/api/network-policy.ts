// networking.k8s.io/v1 NetworkPolicy: the zod schema of the object as the API server returns it, and the
// parse step that turns one object into the normalized form the policy engine consumes, with API defaults
// applied and a Diagnostic (path + sentence naming the policy) for anything the engine cannot honour.
//
// Fail closed, deliberately: a peer, port or rule we cannot honour is dropped on its own, never the whole
// policy. Dropping a peer or port can only make a rule allow LESS, and a rule whose every peer (or every
// port) was dropped allows NOTHING (it is kept as an empty list, never turned into "all", which is what an
// empty `from`/`ports` means in the API). The policy itself stays in force, so the pods it selects stay
// isolated in its directions. Where even the pod selector or the policy types are unreadable we widen the
// isolation (every pod of the namespace, both directions) rather than leave a pod open.
import { z } from "zod";
import { type Protocol } from "../model/cluster";
import { type Diagnostic, diagnosticsFromZod, formatPath } from "./diagnostics";
import { cidrCovers, formatCidr, networkOf, parseCidr } from "./ipv4";

/* ------------------------------------------------------------------------------------------------ */
/* Schema (the API shape; `null` is accepted wherever Go's omitempty would omit the field)            */
/* ------------------------------------------------------------------------------------------------ */

/** IANA_SVC_NAME: what a named port must look like (1-15 chars, lower-case alphanumerics and '-', a letter). */
export const IANA_SVC_NAME_PATTERN = "^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?=[a-z0-9]))*$";
const ianaSvcName = new RegExp(IANA_SVC_NAME_PATTERN);

export const K8sLabelSelectorRequirementSchema = z.strictObject({
  key: z.string().min(1),
  operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
  values: z.array(z.string()).nullish(),
});

export const K8sLabelSelectorSchema = z
  .strictObject({
    matchLabels: z.record(z.string(), z.string()).nullish(),
    matchExpressions: z.array(K8sLabelSelectorRequirementSchema).nullish(),
  })
  .describe("A Kubernetes label selector (metav1.LabelSelector); {} selects everything.");
export type K8sLabelSelector = z.infer<typeof K8sLabelSelectorSchema>;

export const NetworkPolicyProtocolSchema = z.enum(["TCP", "UDP", "SCTP"]);

export const NetworkPolicyPortSchema = z.strictObject({
  protocol: NetworkPolicyProtocolSchema.nullish().describe("TCP (the default), UDP or SCTP."),
  port: z
    .union([z.int().min(1).max(65535), z.string().min(1).max(15)])
    .nullish()
    .describe("A port number, or the name of a container port on the destination pod. All ports when absent."),
  endPort: z.int().min(1).max(65535).nullish().describe("With a numeric port: the last port of the range port..endPort."),
});
export type NetworkPolicyPort = z.infer<typeof NetworkPolicyPortSchema>;

export const IPBlockSchema = z.strictObject({
  cidr: z.string().min(1),
  except: z.array(z.string()).nullish(),
});

export const NetworkPolicyPeerSchema = z.strictObject({
  podSelector: K8sLabelSelectorSchema.nullish(),
  namespaceSelector: K8sLabelSelectorSchema.nullish(),
  ipBlock: IPBlockSchema.nullish(),
});
export type NetworkPolicyPeer = z.infer<typeof NetworkPolicyPeerSchema>;

export const NetworkPolicyIngressRuleSchema = z.strictObject({
  from: z.array(z.unknown()).nullish(),
  ports: z.array(z.unknown()).nullish(),
});
export const NetworkPolicyEgressRuleSchema = z.strictObject({
  to: z.array(z.unknown()).nullish(),
  ports: z.array(z.unknown()).nullish(),
});

export const PolicyTypeSchema = z.enum(["Ingress", "Egress"]);

export const NetworkPolicySpecSchema = z.strictObject({
  podSelector: K8sLabelSelectorSchema,
  policyTypes: z.array(PolicyTypeSchema).nullish(),
  ingress: z.array(NetworkPolicyIngressRuleSchema.extend({ from: z.array(NetworkPolicyPeerSchema).nullish(), ports: z.array(NetworkPolicyPortSchema).nullish() })).nullish(),
  egress: z.array(NetworkPolicyEgressRuleSchema.extend({ to: z.array(NetworkPolicyPeerSchema).nullish(), ports: z.array(NetworkPolicyPortSchema).nullish() })).nullish(),
});

export const NetworkPolicySchema = z
  .looseObject({
    apiVersion: z.literal("networking.k8s.io/v1").optional(),
    kind: z.literal("NetworkPolicy").optional(),
    metadata: z.looseObject({ name: z.string().min(1), namespace: z.string().min(1) }),
    spec: NetworkPolicySpecSchema,
  })
  .describe("networking.k8s.io/v1 NetworkPolicy, as the API server returns it.");
export type NetworkPolicy = z.infer<typeof NetworkPolicySchema>;

/* ------------------------------------------------------------------------------------------------ */
/* Normalized form                                                                                   */
/* ------------------------------------------------------------------------------------------------ */

export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

/** One requirement; `values` sorted and de-duplicated (empty for Exists/DoesNotExist). */
export interface SelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

/** A label selector as a sorted list of requirements (matchLabels k: v becomes `k In [v]`). Empty = everything. */
export interface NormalizedSelector {
  readonly requirements: readonly SelectorRequirement[];
}

export type NormalizedPeer =
  | {
      readonly kind: "pods";
      /** Which namespaces: the policy's own (no namespaceSelector) or those a selector matches. */
      readonly namespaces: { readonly name: string } | { readonly selector: NormalizedSelector };
      readonly pods: NormalizedSelector;
    }
  | {
      readonly kind: "ipBlock";
      /** Network form (host bits cleared). */
      readonly cidr: string;
      /** Network form, sorted, de-duplicated; each strictly inside `cidr`. */
      readonly except: readonly string[];
    };

export interface NormalizedPort {
  readonly protocol: Protocol;
  /** Absent: every port of the protocol. A string is a named container port of the destination pod. */
  readonly port?: number | string;
  /** Only with a numeric port; >= port. */
  readonly endPort?: number;
}

export interface NormalizedRule {
  /** "any" = the API's absent or empty from/to. A list (possibly emptied by dropped peers) matches only its peers. */
  readonly peers: "any" | readonly NormalizedPeer[];
  /** "any" = the API's absent or empty ports. A list (possibly emptied by dropped ports) matches only its ports. */
  readonly ports: "any" | readonly NormalizedPort[];
}

export interface NormalizedNetworkPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly podSelector: NormalizedSelector;
  readonly policyTypes: { readonly ingress: boolean; readonly egress: boolean };
  /** Rules in API order (indices are kept, so `ingress[2]` names the same rule the user wrote). Empty unless the type applies. */
  readonly ingress: readonly NormalizedRule[];
  readonly egress: readonly NormalizedRule[];
}

export interface ParsedNetworkPolicy {
  /** Undefined only when the object has no usable namespace/name (then nothing can be attributed to it). */
  readonly policy?: NormalizedNetworkPolicy;
  readonly diagnostics: readonly Diagnostic[];
}

export function networkPolicyKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

/* ------------------------------------------------------------------------------------------------ */
/* Parse                                                                                             */
/* ------------------------------------------------------------------------------------------------ */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const absent = (v: unknown): boolean => v === undefined || v === null;

const EVERYTHING: NormalizedSelector = { requirements: [] };

class Collector {
  readonly diagnostics: Diagnostic[] = [];
  constructor(private readonly who: string) {}
  add(path: readonly PropertyKey[], message: string): void {
    this.diagnostics.push({ path: formatPath(path), message: `NetworkPolicy ${this.who}: ${message}` });
  }
  addZod(error: z.ZodError, base: readonly PropertyKey[], consequence: string): void {
    for (const d of diagnosticsFromZod(error, base)) {
      this.diagnostics.push({ path: d.path, message: `NetworkPolicy ${this.who}: ${d.message}; ${consequence}` });
    }
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compareStrings);
}

/** Canonical form of a selector: matchLabels folded into `In` requirements, everything sorted and de-duplicated. */
export function normalizeSelector(sel: K8sLabelSelector): NormalizedSelector {
  const reqs = new Map<string, SelectorRequirement>();
  const put = (r: SelectorRequirement): void => {
    reqs.set(JSON.stringify([r.key, r.operator, r.values]), r);
  };
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) put({ key, operator: "In", values: [value] });
  for (const e of sel.matchExpressions ?? []) {
    const values = e.operator === "In" || e.operator === "NotIn" ? sortedUnique(e.values ?? []) : [];
    put({ key: e.key, operator: e.operator, values });
  }
  const requirements = [...reqs.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, r]) => r);
  return { requirements };
}

/** Parses and checks a selector; undefined (with diagnostics) when it cannot be honoured. */
function parseSelector(raw: unknown, path: readonly PropertyKey[], out: Collector, consequence: string): NormalizedSelector | undefined {
  const r = K8sLabelSelectorSchema.safeParse(raw);
  if (!r.success) {
    out.addZod(r.error, path, consequence);
    return undefined;
  }
  let ok = true;
  (r.data.matchExpressions ?? []).forEach((e, i) => {
    const values = e.values ?? [];
    if ((e.operator === "In" || e.operator === "NotIn") && values.length === 0) {
      out.add([...path, "matchExpressions", i, "values"], `must list at least one value when the operator is ${e.operator}; ${consequence}`);
      ok = false;
    }
    if ((e.operator === "Exists" || e.operator === "DoesNotExist") && values.length > 0) {
      out.add([...path, "matchExpressions", i, "values"], `must be empty when the operator is ${e.operator}; ${consequence}`);
      ok = false;
    }
  });
  return ok ? normalizeSelector(r.data) : undefined;
}

const PEER_DROPPED = "this peer is ignored (it allows nothing; the rest of the policy stays in force)";
const PORT_DROPPED = "this port entry is ignored (it allows nothing; the rest of the policy stays in force)";
const RULE_DROPPED = "this rule is ignored (it allows nothing; the rest of the policy stays in force)";

function parseIpBlock(raw: z.infer<typeof IPBlockSchema>, path: readonly PropertyKey[], out: Collector): NormalizedPeer | undefined {
  const describeBad = (text: string): string =>
    text.includes(":") ? `"${text}" is an IPv6 CIDR; IPv6 is not supported (this cluster is IPv4 only)` : `"${text}" is not a valid IPv4 CIDR such as 10.0.0.0/16`;
  const cidr = parseCidr(raw.cidr);
  if (!cidr) {
    out.add([...path, "cidr"], `${describeBad(raw.cidr)}; ${PEER_DROPPED}`);
    return undefined;
  }
  const net = networkOf(cidr);
  const except: string[] = [];
  let ok = true;
  (raw.except ?? []).forEach((text, i) => {
    const e = parseCidr(text);
    if (!e) {
      out.add([...path, "except", i], `${describeBad(text)}; ${PEER_DROPPED}`);
      ok = false;
      return;
    }
    const en = networkOf(e);
    if (!cidrCovers(net, en) || en.prefix <= net.prefix) {
      out.add([...path, "except", i], `"${text}" is not strictly inside cidr ${formatCidr(net)}; ${PEER_DROPPED}`);
      ok = false;
      return;
    }
    except.push(formatCidr(en));
  });
  if (!ok) return undefined;
  return { kind: "ipBlock", cidr: formatCidr(net), except: sortedUnique(except) };
}

function parsePeer(raw: unknown, path: readonly PropertyKey[], namespace: string, out: Collector): NormalizedPeer | undefined {
  const r = NetworkPolicyPeerSchema.safeParse(raw);
  if (!r.success) {
    out.addZod(r.error, path, PEER_DROPPED);
    return undefined;
  }
  const { podSelector, namespaceSelector, ipBlock } = r.data;
  if (!absent(ipBlock)) {
    if (!absent(podSelector) || !absent(namespaceSelector)) {
      out.add(path, `ipBlock cannot be combined with podSelector or namespaceSelector in one peer; ${PEER_DROPPED}`);
      return undefined;
    }
    return parseIpBlock(ipBlock!, [...path, "ipBlock"], out);
  }
  if (absent(podSelector) && absent(namespaceSelector)) {
    out.add(path, `a peer must set podSelector, namespaceSelector or ipBlock; ${PEER_DROPPED}`);
    return undefined;
  }
  const pods = absent(podSelector) ? EVERYTHING : parseSelector(podSelector, [...path, "podSelector"], out, PEER_DROPPED);
  if (!pods) return undefined;
  if (absent(namespaceSelector)) return { kind: "pods", namespaces: { name: namespace }, pods };
  const ns = parseSelector(namespaceSelector, [...path, "namespaceSelector"], out, PEER_DROPPED);
  if (!ns) return undefined;
  return { kind: "pods", namespaces: { selector: ns }, pods };
}

function parsePort(raw: unknown, path: readonly PropertyKey[], out: Collector): NormalizedPort | undefined {
  const r = NetworkPolicyPortSchema.safeParse(raw);
  if (!r.success) {
    out.addZod(r.error, path, PORT_DROPPED);
    return undefined;
  }
  // API default: an omitted protocol is TCP.
  const protocol: Protocol = r.data.protocol ?? "TCP";
  const port = r.data.port ?? undefined;
  const endPort = r.data.endPort ?? undefined;
  if (typeof port === "string" && !ianaSvcName.test(port)) {
    out.add([...path, "port"], `"${port}" is neither a port number nor a valid port name (1-15 lower-case letters, digits and '-', with at least one letter); ${PORT_DROPPED}`);
    return undefined;
  }
  if (endPort !== undefined) {
    if (port === undefined) {
      out.add([...path, "endPort"], `endPort needs a numeric port; ${PORT_DROPPED}`);
      return undefined;
    }
    if (typeof port === "string") {
      out.add([...path, "endPort"], `endPort cannot be used with the named port "${port}"; ${PORT_DROPPED}`);
      return undefined;
    }
    if (endPort < port) {
      out.add([...path, "endPort"], `endPort ${endPort} is below port ${port}; ${PORT_DROPPED}`);
      return undefined;
    }
  }
  const result: { protocol: Protocol; port?: number | string; endPort?: number } = { protocol };
  if (port !== undefined) result.port = port;
  if (endPort !== undefined && endPort !== port) result.endPort = endPort;
  return result;
}

function parseRule(raw: unknown, path: readonly PropertyKey[], peersField: "from" | "to", namespace: string, out: Collector): NormalizedRule {
  const none: NormalizedRule = { peers: [], ports: [] };
  const schema = peersField === "from" ? NetworkPolicyIngressRuleSchema : NetworkPolicyEgressRuleSchema;
  const r = schema.safeParse(raw);
  if (!r.success) {
    out.addZod(r.error, path, RULE_DROPPED);
    return none;
  }
  const rawPeers = (r.data as Record<string, unknown[] | null | undefined>)[peersField];
  const rawPorts = r.data.ports;
  const peers: "any" | NormalizedPeer[] =
    absent(rawPeers) || rawPeers!.length === 0
      ? "any"
      : rawPeers!.flatMap((p, i) => {
          const peer = parsePeer(p, [...path, peersField, i], namespace, out);
          return peer ? [peer] : [];
        });
  const ports: "any" | NormalizedPort[] =
    absent(rawPorts) || rawPorts!.length === 0
      ? "any"
      : rawPorts!.flatMap((p, i) => {
          const port = parsePort(p, [...path, "ports", i], out);
          return port ? [port] : [];
        });
  return { peers, ports };
}

function parseRules(raw: unknown, field: "ingress" | "egress", namespace: string, out: Collector): NormalizedRule[] {
  if (absent(raw)) return [];
  if (!Array.isArray(raw)) {
    out.add(["spec", field], `must be a list of rules; no ${field} rule is honoured (the selected pods stay isolated)`);
    return [];
  }
  return raw.map((rule, i) => parseRule(rule, ["spec", field, i], field === "ingress" ? "from" : "to", namespace, out));
}

/**
 * Parses one NetworkPolicy object (as the API returns it, or as a user wrote it) into the normalized form,
 * applying the API server's defaults: an omitted port protocol is TCP; when policyTypes is absent or empty
 * it is Ingress, plus Egress when spec.egress has at least one rule (k8s SetDefaults_NetworkPolicy checks
 * len(egress) != 0, so `egress: []` alone does not imply Egress).
 */
export function parseNetworkPolicy(input: unknown): ParsedNetworkPolicy {
  const meta = isObj(input) && isObj(input["metadata"]) ? input["metadata"] : undefined;
  const name = meta && typeof meta["name"] === "string" && meta["name"] !== "" ? meta["name"] : undefined;
  const namespace = meta && typeof meta["namespace"] === "string" && meta["namespace"] !== "" ? meta["namespace"] : undefined;
  if (name === undefined || namespace === undefined) {
    const who = `${namespace ?? "?"}/${name ?? "?"}`;
    return {
      diagnostics: [
        {
          path: name === undefined ? "metadata.name" : "metadata.namespace",
          message: `NetworkPolicy ${who}: has no ${name === undefined ? "name" : "namespace"}, so it cannot be applied to any pod`,
        },
      ],
    };
  }
  const out = new Collector(`${namespace}/${name}`);
  const spec = input !== null && isObj(input) ? input["spec"] : undefined;
  if (!isObj(spec)) {
    out.add(["spec"], `must be an object; treated as denying all traffic to and from every pod in namespace ${namespace} (fail closed)`);
    return {
      policy: { namespace, name, podSelector: EVERYTHING, policyTypes: { ingress: true, egress: true }, ingress: [], egress: [] },
      diagnostics: out.diagnostics,
    };
  }
  for (const key of Object.keys(spec)) {
    if (!["podSelector", "policyTypes", "ingress", "egress"].includes(key)) {
      out.add(["spec", key], `unknown field "${key}" is ignored`);
    }
  }

  let podSelector: NormalizedSelector;
  if (absent(spec["podSelector"])) {
    // The API requires podSelector; `{}` (everything) is what an omitted one means in practice.
    podSelector = EVERYTHING;
  } else {
    podSelector =
      parseSelector(spec["podSelector"], ["spec", "podSelector"], out, `the policy is applied to every pod in namespace ${namespace} instead (fail closed)`) ?? EVERYTHING;
  }

  let policyTypes: { ingress: boolean; egress: boolean };
  const rawTypes = spec["policyTypes"];
  const egressRaw = spec["egress"];
  const impliedEgress = Array.isArray(egressRaw) && egressRaw.length > 0;
  if (absent(rawTypes) || (Array.isArray(rawTypes) && rawTypes.length === 0)) {
    policyTypes = { ingress: true, egress: impliedEgress };
  } else {
    const r = z.array(PolicyTypeSchema).safeParse(rawTypes);
    if (r.success) {
      policyTypes = { ingress: r.data.includes("Ingress"), egress: r.data.includes("Egress") };
    } else {
      out.addZod(r.error, ["spec", "policyTypes"], "the policy is treated as isolating both Ingress and Egress (fail closed)");
      policyTypes = { ingress: true, egress: true };
    }
  }

  const ingress = parseRules(spec["ingress"], "ingress", namespace, out);
  const egress = parseRules(spec["egress"], "egress", namespace, out);
  return {
    policy: {
      namespace,
      name,
      podSelector,
      policyTypes,
      ingress: policyTypes.ingress ? ingress : [],
      egress: policyTypes.egress ? egress : [],
    },
    diagnostics: out.diagnostics,
  };
}
