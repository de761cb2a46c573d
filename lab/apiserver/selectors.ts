// Label and field selectors, parsed once per request and applied to lists and to every watch event.
// An empty selector matches everything (Pepr sends `labelSelector=` on every list and watch). Field
// selectors are strict like the real server: only metadata.name, metadata.namespace and the fields a kind
// declares selectable, so code that would fail against a real cluster fails here too.

import { errors } from "./errors";
import { getPath, isObject } from "./json";
import { type KubeObject, type ResourceType } from "./types";

type LabelRequirement =
  | { op: "exists" | "notexists"; key: string }
  | { op: "eq" | "neq"; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: Set<string> }
  | { op: "gt" | "lt"; key: string; value: number };

export type Selector = (obj: KubeObject) => boolean;

/** Split on commas that are not inside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

const KEY = String.raw`[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?`;
const VALUE = String.raw`([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;

function parseLabelRequirement(text: string): LabelRequirement {
  const bad = () => errors.badRequest(`unable to parse requirement: ${JSON.stringify(text)}`);
  let m = new RegExp(`^!\\s*(${KEY})$`).exec(text);
  if (m) return { op: "notexists", key: m[1] as string };
  m = new RegExp(`^(${KEY})$`).exec(text);
  if (m) return { op: "exists", key: m[1] as string };
  m = new RegExp(`^(${KEY})\\s*(==|!=|=)\\s*(${VALUE})$`).exec(text);
  if (m) return { op: m[3] === "!=" ? "neq" : "eq", key: m[1] as string, value: m[4] ?? "" };
  m = new RegExp(`^(${KEY})\\s*(>|<)\\s*(-?\\d+)$`).exec(text);
  if (m) return { op: m[3] === ">" ? "gt" : "lt", key: m[1] as string, value: Number(m[4]) };
  m = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(text);
  if (m) {
    const values = (m[4] ?? "").split(",").map((v) => v.trim()).filter((v) => v !== "");
    if (!values.every((v) => new RegExp(`^${VALUE}$`).test(v))) throw bad();
    return { op: m[3] === "in" ? "in" : "notin", key: m[1] as string, values: new Set(values) };
  }
  throw bad();
}

function matchesLabel(req: LabelRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, req.key);
  const value = labels[req.key];
  switch (req.op) {
    case "exists": return has;
    case "notexists": return !has;
    case "eq": return has && value === req.value;
    case "neq": return !has || value !== req.value;
    case "in": return has && req.values.has(value ?? "");
    case "notin": return !has || !req.values.has(value ?? "");
    case "gt": return has && /^-?\d+$/.test(value ?? "") && Number(value) > req.value;
    case "lt": return has && /^-?\d+$/.test(value ?? "") && Number(value) < req.value;
  }
}

export function parseLabelSelector(text: string | null): Selector {
  const reqs = splitTopLevel(text ?? "").map(parseLabelRequirement);
  if (reqs.length === 0) return () => true;
  return (obj) => {
    const labels = obj.metadata.labels ?? {};
    return reqs.every((r) => matchesLabel(r, labels));
  };
}

/** Field values as the real server renders them for selection: missing = "", booleans as "true"/"false". */
function fieldValue(obj: KubeObject, field: string): string {
  const value = getPath(obj, field.split("."));
  if (value === undefined || value === null || isObject(value) || Array.isArray(value)) return "";
  return String(value);
}

/** Split on a separator that is not escaped with a backslash. */
function splitUnescaped(text: string, sep: string): string[] {
  const out: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === "\\" && i + 1 < text.length) {
      current += ch + (text[i + 1] as string);
      i++;
    } else if (ch === sep) {
      out.push(current);
      current = "";
    } else current += ch;
  }
  out.push(current);
  return out;
}

const unescape = (s: string) => s.replace(/\\(.)/g, "$1");

export function parseFieldSelector(text: string | null, rt: ResourceType): Selector {
  const allowed = new Set(["metadata.name", "metadata.namespace", ...rt.selectableFields]);
  const terms = splitUnescaped(text ?? "", ",").map((t) => t.trim()).filter((t) => t !== "").map((term) => {
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/.exec(term);
    if (!m) throw errors.badRequest(`invalid selector: '${term}'; can't understand '${term}'`);
    const field = (m[1] as string).trim();
    if (!allowed.has(field)) throw errors.badRequest(`field label not supported: ${field}`);
    return { field, negate: m[2] === "!=", value: unescape(m[3] ?? "") };
  });
  if (terms.length === 0) return () => true;
  return (obj) => terms.every((t) => (fieldValue(obj, t.field) === t.value) !== t.negate);
}
