// Diagnostics: bad input as values, each with the field path a user can find in their YAML.
import type { z } from "zod";

export type Diagnostic = { readonly path: string; readonly message: string };

export function formatPath(segments: readonly PropertyKey[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else out += out === "" ? String(s) : `.${String(s)}`;
  }
  return out;
}

export function joinPath(base: string, ...segments: PropertyKey[]): string {
  const rest = formatPath(segments);
  if (base === "") return rest;
  if (rest === "" ) return base;
  return rest.startsWith("[") ? base + rest : `${base}.${rest}`;
}

export function formatDiagnostic(d: Diagnostic): string {
  return d.path === "" ? d.message : `${d.path}: ${d.message}`;
}

function describeReceived(input: unknown): string {
  if (input === null) return "null";
  if (Array.isArray(input)) return "a list";
  switch (typeof input) {
    case "string": return `the string ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + "..." : input)}`;
    case "number": return Number.isInteger(input) ? `the number ${input}` : `the fraction ${input}`;
    case "boolean": return `${input}`;
    case "object": return "an object";
    default: return typeof input;
  }
}

const article = (t: string): string => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);
const typeName = (t: string): string => (t === "int" ? "whole number" : t === "array" ? "list" : t === "record" ? "map" : t);

/** Turns zod issues into diagnostics with user sentences, prefixing every path with `base`. */
export function diagnosticsFromZod(error: z.ZodError, base: readonly PropertyKey[] = []): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of error.issues) {
    const segs = [...base, ...issue.path];
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys) {
          out.push({ path: formatPath([...segs, key]), message: `unknown field "${key}" (check its spelling and indentation; unknown fields are rejected, not ignored)` });
        }
        break;
      case "invalid_type": {
        const received = (issue as { input?: unknown }).input;
        out.push({
          path: formatPath(segs),
          message: received === undefined ? "is required" : `must be ${article(typeName(issue.expected))}, not ${describeReceived(received)}`,
        });
        break;
      }
      case "too_small": {
        const min = Number(issue.minimum);
        const what = issue.origin === "array" ? `must have at least ${min} item${min === 1 ? "" : "s"}`
          : issue.origin === "string" ? `must be at least ${min} character${min === 1 ? "" : "s"} long`
          : `must be at least ${min}${issue.inclusive === false ? " (exclusive)" : ""}`;
        out.push({ path: formatPath(segs), message: `${what}, got ${describeReceived((issue as { input?: unknown }).input)}` });
        break;
      }
      case "too_big": {
        const max = Number(issue.maximum);
        const what = issue.origin === "array" ? `must have at most ${max} items`
          : issue.origin === "string" ? `must be at most ${max} characters long`
          : `must be at most ${max}`;
        out.push({ path: formatPath(segs), message: `${what}, got ${describeReceived((issue as { input?: unknown }).input)}` });
        break;
      }
      case "invalid_value":
        out.push({
          path: formatPath(segs),
          message: `must be ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : "one of " + issue.values.map((v) => JSON.stringify(v)).join(", ")}, not ${describeReceived((issue as { input?: unknown }).input)}`,
        });
        break;
      case "invalid_format":
        out.push({ path: formatPath(segs), message: `${issue.message}, got ${describeReceived((issue as { input?: unknown }).input)}` });
        break;
      case "invalid_union": {
        const input = (issue as { input?: unknown }).input;
        out.push({ path: formatPath(segs), message: `${issue.message === "Invalid input" ? "has an invalid value" : issue.message}, got ${describeReceived(input)}` });
        break;
      }
      default:
        out.push({ path: formatPath(segs), message: issue.message });
    }
  }
  return out;
}
