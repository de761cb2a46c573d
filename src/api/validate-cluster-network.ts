// Semantic validation of ClusterNetwork: every error at once, each with its field path and a sentence a
// user can act on. Structural checks come from the zod schema; the rules that span fields (overlaps,
// blockSize vs pools, mode-specific blocks) and the update rules live here. Pure: the admission webhook,
// the CLI and the controller all call it.
import { diagnosticsFromZod, type Diagnostic } from "./diagnostics";
import { API_GROUP_VERSION, parseDurationMs } from "./common";
import type { z } from "zod";
import { ClusterNetworkSchema, ClusterNetworkSpecSchema, type ClusterNetwork, MigrationConfigSchema, MIGRATION_PHASES, MODES } from "./cluster-network";
import { cidrsOverlap, formatCidr, hasHostBits, networkOf, parseCidr, type Cidr } from "./ipv4";

type Obj = Record<string, unknown>;

/**
 * A field's value when its own schema accepts it, else undefined. The cross-field rules below read fields
 * through this: a value the schema refuses (blockSize 12, successfulRounds 1000) has its error already,
 * and a rule computed from it would only say the same thing again in other words.
 */
function accepted<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
}
const SPEC = ClusterNetworkSpecSchema.shape;
const GATE = MigrationConfigSchema.shape.healthGate.unwrap().shape;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Address ranges a pod pool must not overlap, and why. */
const RESERVED: readonly { cidr: string; why: string }[] = [
  { cidr: "0.0.0.0/8", why: "\"this network\" (0.0.0.0/8)" },
  { cidr: "127.0.0.0/8", why: "loopback (127.0.0.0/8)" },
  { cidr: "169.254.0.0/16", why: "link-local (169.254.0.0/16), which pods use for their gateway 169.254.1.1" },
  { cidr: "224.0.0.0/3", why: "multicast and reserved space (224.0.0.0/3)" },
];

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function validateLabelKey(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key prefix "${prefix}" must be a DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) return `label key "${key}" must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

export function validateLabelSelector(sel: unknown, path: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (!isObj(sel)) return out;
  const labels = sel["matchLabels"];
  if (isObj(labels)) {
    for (const [k, v] of Object.entries(labels)) {
      const keyErr = validateLabelKey(k);
      if (keyErr) out.push({ path: `${path}.matchLabels.${k}`, message: keyErr });
      if (typeof v === "string" && (v.length > 63 || !LABEL_VALUE.test(v))) {
        out.push({ path: `${path}.matchLabels.${k}`, message: `label value "${v}" must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit` });
      }
    }
  }
  const exprs = sel["matchExpressions"];
  if (Array.isArray(exprs)) {
    exprs.forEach((e, i) => {
      if (!isObj(e)) return;
      const p = `${path}.matchExpressions[${i}]`;
      if (typeof e["key"] === "string") {
        const keyErr = validateLabelKey(e["key"]);
        if (keyErr) out.push({ path: `${p}.key`, message: keyErr });
      }
      const values = e["values"];
      const op = e["operator"];
      if ((op === "In" || op === "NotIn") && (!Array.isArray(values) || values.length === 0)) {
        out.push({ path: `${p}.values`, message: `must list at least one value when the operator is ${op}` });
      }
      if ((op === "Exists" || op === "DoesNotExist") && Array.isArray(values) && values.length > 0) {
        out.push({ path: `${p}.values`, message: `must be empty when the operator is ${op}` });
      }
    });
  }
  return out;
}

function checkPodCIDRs(spec: Obj, out: Diagnostic[]): { cidrs: (Cidr | undefined)[] } {
  const raw = spec["podCIDRs"];
  const cidrs: (Cidr | undefined)[] = [];
  if (!Array.isArray(raw)) return { cidrs };
  raw.forEach((text, i) => {
    const c = typeof text === "string" ? parseCidr(text) : undefined;
    cidrs.push(c);
    if (!c) return; // the schema already reported the format
    const path = `spec.podCIDRs[${i}]`;
    if (hasHostBits(c)) {
      out.push({ path, message: `${text} has host bits set; did you mean ${formatCidr(networkOf(c))}?` });
    }
    if (c.prefix < 8) out.push({ path, message: `${text} is too large for a pod pool: use a prefix of /8 or longer` });
    for (const r of RESERVED) {
      if (cidrsOverlap(c, parseCidr(r.cidr)!)) out.push({ path, message: `${text} overlaps ${r.why}; pick a private range such as 10.244.0.0/16` });
    }
    for (let j = 0; j < i; j++) {
      const o = cidrs[j];
      if (o && cidrsOverlap(o, c)) {
        out.push({ path, message: `${text} overlaps spec.podCIDRs[${j}] (${String(raw[j])}); pools must be disjoint` });
      }
    }
  });
  return { cidrs };
}

function checkModeRules(spec: Obj, out: Diagnostic[]): void {
  const rawMode = spec["mode"] ?? "vxlan";
  if (!(MODES as readonly unknown[]).includes(rawMode)) return; // the schema reports it; these rules need a known mode
  const mode = rawMode as string;
  if (spec["crossSubnet"] === true && mode !== "vxlan" && mode !== "ipip") {
    out.push({ path: "spec.crossSubnet", message: `only applies to the vxlan and ipip modes (mode is ${mode}); remove it or set it to false` });
  }
  if (spec["vxlan"] !== undefined && mode !== "vxlan") {
    out.push({ path: "spec.vxlan", message: `only valid when spec.mode is vxlan (mode is ${mode}); remove this block` });
  }
  const bgp = spec["bgp"];
  if (mode === "bgp" && bgp === undefined) {
    out.push({ path: "spec.bgp", message: "is required when spec.mode is bgp: set at least asNumber and topology" });
  }
  if (bgp !== undefined && mode !== "bgp") {
    out.push({ path: "spec.bgp", message: `only valid when spec.mode is bgp (mode is ${mode}); remove this block` });
  }
  if (isObj(bgp)) {
    const topology = typeof bgp["topology"] === "string" ? bgp["topology"] : "full-mesh";
    const rr = bgp["routeReflectors"];
    if (topology === "route-reflectors" && rr === undefined) {
      out.push({ path: "spec.bgp.routeReflectors", message: "is required when topology is route-reflectors: give a nodeSelector for the reflector nodes" });
    }
    if (rr !== undefined && topology !== "route-reflectors") {
      out.push({ path: "spec.bgp.routeReflectors", message: `only valid when topology is route-reflectors (topology is ${topology})` });
    }
    if (isObj(rr)) out.push(...validateLabelSelector(rr["nodeSelector"], "spec.bgp.routeReflectors.nodeSelector"));
    const peers = bgp["peers"];
    if (topology === "tor" && (!Array.isArray(peers) || peers.length === 0)) {
      out.push({ path: "spec.bgp.peers", message: "must list at least one top-of-rack peer when topology is tor" });
    }
    if (peers !== undefined && topology !== "tor") {
      out.push({ path: "spec.bgp.peers", message: `only valid when topology is tor (topology is ${topology})` });
    }
    if (Array.isArray(peers)) {
      const seen = new Map<string, number>();
      peers.forEach((p, i) => {
        if (!isObj(p)) return;
        if (typeof p["address"] === "string") {
          const prev = seen.get(p["address"]);
          if (prev !== undefined) out.push({ path: `spec.bgp.peers[${i}].address`, message: `${p["address"]} is already listed at spec.bgp.peers[${prev}]` });
          else seen.set(p["address"], i);
        }
        out.push(...validateLabelSelector(p["nodeSelector"], `spec.bgp.peers[${i}].nodeSelector`));
      });
    }
    if (bgp["passwordSecretRef"] !== undefined && topology === "tor") {
      out.push({ path: "spec.bgp.passwordSecretRef", message: "only valid when topology is full-mesh or route-reflectors (sessions between nodes); with tor, set spec.bgp.peers[].passwordSecretRef" });
    }
  }

}

/**
 * What nodes import from a top-of-rack router beyond pod blocks: real prefixes, and none inside the pod
 * CIDRs (pod blocks are always accepted at the block size; accepting other lengths there would let the
 * router claim part of a node's block, or a single pod's address).
 */
function checkBgpAcceptPrefixes(spec: Obj, pools: readonly (Cidr | undefined)[], out: Diagnostic[]): void {
  const bgp = spec["bgp"];
  const peers = isObj(bgp) ? bgp["peers"] : undefined;
  if (!Array.isArray(peers)) return;
  peers.forEach((p, i) => {
    const accept = isObj(p) ? p["acceptPrefixes"] : undefined;
    if (!Array.isArray(accept)) return;
    accept.forEach((a, j) => {
      if (!isObj(a) || typeof a["cidr"] !== "string") return;
      const path = `spec.bgp.peers[${i}].acceptPrefixes[${j}]`;
      const c = parseCidr(a["cidr"]);
      if (!c) return; // the schema reports it
      if (hasHostBits(c)) {
        out.push({ path: `${path}.cidr`, message: `${a["cidr"]} has host bits set; did you mean ${formatCidr(networkOf(c))}?` });
        return;
      }
      const max = a["maxLength"];
      if (typeof max === "number" && Number.isInteger(max) && max < c.prefix) {
        out.push({ path: `${path}.maxLength`, message: `${max} is shorter than ${a["cidr"]}'s own prefix length ${c.prefix}: it must be ${c.prefix}..32` });
      }
      pools.forEach((pool, k) => {
        if (pool && cidrsOverlap(pool, c)) {
          out.push({ path: `${path}.cidr`, message: `${a["cidr"]} overlaps spec.podCIDRs[${k}] (${formatCidr(pool)}): pod blocks are always accepted, and nothing else inside the pod CIDRs may be (it would let the router take over pod addresses)` });
        }
      });
    });
  });
}

function checkSpecRules(spec: Obj, out: Diagnostic[]): void {
  const { cidrs } = checkPodCIDRs(spec, out);

  const blockSize = accepted(SPEC.blockSize, spec["blockSize"]);
  if (blockSize !== undefined) {
    cidrs.forEach((c, i) => {
      if (c && blockSize < c.prefix) {
        out.push({
          path: "spec.blockSize",
          message: `/${blockSize} blocks do not fit in spec.podCIDRs[${i}] (${formatCidr(c)}): blockSize must be at least the pool's prefix length ${c.prefix}`,
        });
      }
    });
  }

  const mtu = spec["mtu"];
  if (typeof mtu === "number" && Number.isInteger(mtu) && mtu > 0 && mtu < 576) {
    out.push({ path: "spec.mtu", message: `must be 0 (auto) or between 576 and 9000, got ${mtu}` });
  }

  checkModeRules(spec, out);
  checkBgpAcceptPrefixes(spec, cidrs, out);

  const mig = spec["migration"];
  if (isObj(mig)) {
    const canary = mig["canary"];
    if (isObj(canary)) {
      const hasNodes = canary["nodes"] !== undefined;
      const hasSel = canary["nodeSelector"] !== undefined;
      if (hasNodes === hasSel) {
        out.push({ path: "spec.migration.canary", message: hasNodes ? "set only one of nodes or nodeSelector, not both" : "set one of nodes (a count) or nodeSelector" });
      }
      out.push(...validateLabelSelector(canary["nodeSelector"], "spec.migration.canary.nodeSelector"));
    }
    const gate = mig["healthGate"];
    if (isObj(gate)) {
      const rounds = accepted(GATE.successfulRounds, gate["successfulRounds"]);
      const intervalText = typeof gate["probeInterval"] === "string" ? gate["probeInterval"] : "2s";
      const timeoutText = typeof gate["timeout"] === "string" ? gate["timeout"] : "60s";
      const interval = parseDurationMs(intervalText);
      const timeout = parseDurationMs(timeoutText);
      if (interval !== undefined && interval <= 0) {
        out.push({ path: "spec.migration.healthGate.probeInterval", message: "must be longer than 0" });
      }
      if (rounds !== undefined && interval !== undefined && timeout !== undefined && timeout < rounds * interval) {
        out.push({
          path: "spec.migration.healthGate.timeout",
          message: `${timeoutText} is shorter than successfulRounds x probeInterval (${rounds} x ${intervalText}): the gate could never pass`,
        });
      }
    }
  }
}

function checkEnvelope(obj: Obj, out: Diagnostic[]): void {
  if (obj["apiVersion"] !== API_GROUP_VERSION) {
    out.push({ path: "apiVersion", message: `must be ${API_GROUP_VERSION}, not ${JSON.stringify(obj["apiVersion"] ?? null)}` });
  }
  if (obj["kind"] !== "ClusterNetwork") {
    out.push({ path: "kind", message: `must be ClusterNetwork, not ${JSON.stringify(obj["kind"] ?? null)}` });
  }
  const md = obj["metadata"];
  if (!isObj(md)) {
    out.push({ path: "metadata", message: "is required, with at least a name" });
    return;
  }
  const name = md["name"];
  if (typeof name !== "string" || name === "") {
    out.push({ path: "metadata.name", message: "is required" });
  } else if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    out.push({ path: "metadata.name", message: `"${name}" must be a DNS subdomain: lower-case letters, digits, '-' and '.'` });
  }
  if (md["namespace"] !== undefined && md["namespace"] !== "") {
    out.push({ path: "metadata.namespace", message: "must not be set: ClusterNetwork is cluster-scoped" });
  }
}

/** Every problem with a ClusterNetwork object, each with its field path. Empty when valid. */
export function validateClusterNetwork(obj: unknown): Diagnostic[] {
  if (!isObj(obj)) return [{ path: "", message: "a ClusterNetwork must be a YAML/JSON object" }];
  const out: Diagnostic[] = [];
  checkEnvelope(obj, out);
  const spec = obj["spec"];
  if (!isObj(spec)) {
    out.push({ path: "spec", message: spec === undefined ? "is required" : "must be an object" });
    return out;
  }
  const parsed = ClusterNetworkSpecSchema.safeParse(spec, { reportInput: true });
  if (!parsed.success) out.push(...diagnosticsFromZod(parsed.error, ["spec"]));
  checkSpecRules(spec, out);
  // Status is written by the controller; check its shape only when present (a client sending a bad status
  // on create is a bug worth naming).
  if (obj["status"] !== undefined) {
    const st = ClusterNetworkSchema.shape.status.safeParse(obj["status"], { reportInput: true });
    if (!st.success) out.push(...diagnosticsFromZod(st.error, ["status"]));
  }
  return out;
}

/** A node's block as its BlockAffinity records it. */
export interface RecordedBlock {
  readonly node: string;
  readonly cidr: string;
}

/**
 * The pools and block size must keep every recorded block a block of theirs. Why on the recorded blocks
 * and not the old object's status: they outlive the ClusterNetwork, so this holds also on an update that
 * finds no status yet and on the create that re-creates a deleted ClusterNetwork, where a different pool
 * or block size would hand addresses in use on one node to pods on another.
 */
export function validateRecordedBlocks(obj: unknown, recorded: readonly RecordedBlock[]): Diagnostic[] {
  if (!isObj(obj) || !isObj(obj["spec"]) || recorded.length === 0) return [];
  const spec = obj["spec"];
  const pools = (Array.isArray(spec["podCIDRs"]) ? spec["podCIDRs"] : []).map((c) => (typeof c === "string" ? parseCidr(c) : undefined)).filter((c): c is Cidr => c !== undefined);
  const blockSize = typeof spec["blockSize"] === "number" ? spec["blockSize"] : 26;
  const wrongSize: RecordedBlock[] = [];
  const outside: RecordedBlock[] = [];
  for (const r of [...recorded].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))) {
    const c = parseCidr(r.cidr);
    if (!c) continue;
    if (c.prefix !== blockSize) wrongSize.push(r);
    else if (!pools.some((p) => p.prefix <= c.prefix && cidrsOverlap(p, c))) outside.push(r);
  }
  const list = (rs: RecordedBlock[]): string => `${rs.slice(0, 5).map((r) => `${r.cidr} (node ${r.node})`).join(", ")}${rs.length > 5 ? `, and ${rs.length - 5} more` : ""}`;
  const out: Diagnostic[] = [];
  if (wrongSize.length > 0) {
    out.push({
      path: "spec.blockSize",
      message: `cannot be ${blockSize}: nodes hold blocks of another size, recorded in BlockAffinity objects that outlive this ClusterNetwork: ${list(wrongSize)}. Keep the block size they were allocated with; a block is released when its node is deleted.`,
    });
  }
  if (outside.length > 0) {
    out.push({
      path: "spec.podCIDRs",
      message: `must still contain every block nodes hold, recorded in BlockAffinity objects that outlive this ClusterNetwork: ${list(outside)} lie outside ${pools.map(formatCidr).join(", ") || "the pools"}. Keep the pools they came from (appending a CIDR is fine); a block is released when its node is deleted.`,
    });
  }
  return out;
}

const ACTIVE_MIGRATION = new Set<string>(MIGRATION_PHASES.filter((p) => !["Completed", "RolledBack", "Failed", "Blocked"].includes(p)));

/** Allocated blocks, as recorded in the old object's status by the controller. */
function allocatedBlocks(old: Obj): number {
  const st = old["status"];
  if (!isObj(st)) return 0;
  const ipam = st["ipam"];
  const n = isObj(ipam) ? ipam["allocatedBlocks"] : undefined;
  return typeof n === "number" ? n : 0;
}

/**
 * Validates an update: the new object on its own, plus the rules that depend on the old one.
 * `podCIDRs` and `blockSize` are fixed once blocks are allocated (as the old status counts them, and as
 * `recorded`, the BlockAffinities, say: see validateRecordedBlocks); a `mode` change is allowed and starts a migration.
 */
export function validateClusterNetworkUpdate(oldObj: unknown, newObj: unknown, recorded: readonly RecordedBlock[] = []): Diagnostic[] {
  const out = [...validateClusterNetwork(newObj), ...validateRecordedBlocks(newObj, recorded)];
  if (!isObj(oldObj) || !isObj(newObj)) return out;
  const oldSpec = isObj(oldObj["spec"]) ? oldObj["spec"] : {};
  const newSpec = isObj(newObj["spec"]) ? newObj["spec"] : {};
  const blocks = allocatedBlocks(oldObj);
  if (blocks > 0) {
    const oldC = Array.isArray(oldSpec["podCIDRs"]) ? oldSpec["podCIDRs"] : [];
    const newC = Array.isArray(newSpec["podCIDRs"]) ? newSpec["podCIDRs"] : [];
    oldC.forEach((c, i) => {
      if (i >= newC.length) {
        out.push({
          path: `spec.podCIDRs[${i}]`,
          message: `cannot remove ${String(c)}: ${blocks} node block(s) are allocated from the pools and running pods use those addresses. Keep it; to move pods to a new range, append the new CIDR and drain nodes so they get blocks from it.`,
        });
      } else if (newC[i] !== c) {
        out.push({
          path: `spec.podCIDRs[${i}]`,
          message: `cannot change from ${String(c)} to ${String(newC[i])}: ${blocks} node block(s) are allocated from the pools and running pods use those addresses. Keep the existing CIDRs in place; to add room, append a new CIDR after them.`,
        });
      }
    });
    const oldB = oldSpec["blockSize"] ?? 26;
    const newB = newSpec["blockSize"] ?? 26;
    if (oldB !== newB) {
      out.push({
        path: "spec.blockSize",
        message: `cannot change from ${String(oldB)} to ${String(newB)}: ${blocks} node block(s) of /${String(oldB)} are allocated and in use. To use another block size, create a new cluster: blocks are recorded in BlockAffinity objects that outlive this ClusterNetwork, and a block is released only when its node is deleted.`,
      });
    }
  }
  const st = oldObj["status"];
  const mig = isObj(st) && isObj(st["migration"]) ? st["migration"] : undefined;
  const newMode = newSpec["mode"] ?? "vxlan";
  if (mig && typeof mig["phase"] === "string" && ACTIVE_MIGRATION.has(mig["phase"])) {
    if (newMode !== mig["from"] && newMode !== mig["to"]) {
      out.push({
        path: "spec.mode",
        message: `a migration from ${String(mig["from"])} to ${String(mig["to"])} is in progress (phase ${mig["phase"]}): set mode back to ${String(mig["from"])} to roll back, or wait until it completes before choosing ${String(newMode)}`,
      });
    }
  }
  return out;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; diagnostics: Diagnostic[] };

/** Validates and returns the defaulted ClusterNetwork, or every diagnostic. */
export function parseClusterNetwork(obj: unknown): ParseResult<ClusterNetwork> {
  const diagnostics = validateClusterNetwork(obj);
  if (diagnostics.length > 0) return { ok: false, diagnostics };
  const parsed = ClusterNetworkSchema.safeParse(obj);
  if (!parsed.success) return { ok: false, diagnostics: diagnosticsFromZod(parsed.error) };
  return { ok: true, value: parsed.data };
}

