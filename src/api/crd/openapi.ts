// Turns the zod API schemas into structural OpenAPI v3 schemas for CustomResourceDefinitions.
// Kubernetes requires "structural" schemas: a type on every node, no $ref, no additionalProperties next to
// properties, int-or-string marked with x-kubernetes-int-or-string. zod's JSON Schema output is close; this
// pass rewrites the rest and adds CEL rules for the cross-field checks kubectl users benefit from.
import { z } from "zod";

export type JsonSchema = { [key: string]: unknown };

const SAFE_INT = 9007199254740991;

function isObj(v: unknown): v is JsonSchema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Rewrites one zod-generated node (recursively) into its structural form. */
export function toStructural(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  // int-or-string: zod emits anyOf [{type: integer}, {type: string}].
  const anyOf = node["anyOf"];
  if (Array.isArray(anyOf) && node["x-kubernetes-preserve-unknown-fields"] === true) {
    // A value whose JSON type depends on another field (marked so in the zod schema): any value in the
    // CRD, without a type (structural schemas allow that only here); the zod schema checks it.
    const out: JsonSchema = { "x-kubernetes-preserve-unknown-fields": true };
    if (node["description"] !== undefined) out["description"] = node["description"];
    return out;
  }
  if (Array.isArray(anyOf) && anyOf.length > 0 && anyOf.every((s) => JSON.stringify(s) === JSON.stringify(anyOf[0]))) {
    // A tuple of one item type (a port range [first, last]): zod lists the type once per position.
    const rest: JsonSchema = { ...node };
    delete rest["anyOf"];
    return toStructural({ ...(anyOf[0] as JsonSchema), ...rest });
  }
  if (Array.isArray(anyOf)) {
    const types = anyOf.map((s) => (isObj(s) ? s["type"] : undefined)).sort();
    if (types.length === 2 && types[0] === "integer" && types[1] === "string") {
      out["x-kubernetes-int-or-string"] = true;
      for (const k of ["description", "default"]) if (node[k] !== undefined) out[k] = node[k];
      return out;
    }
    throw new Error(`unsupported anyOf in CRD schema: ${JSON.stringify(node).slice(0, 200)}`);
  }
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "$schema":
      case "$ref":
      case "id":
        if (key === "$ref") throw new Error("$ref is not allowed in a structural schema");
        break;
      case "const":
        out["enum"] = [value];
        break;
      case "properties": {
        const props: JsonSchema = {};
        for (const [name, sub] of Object.entries(value as JsonSchema)) props[name] = toStructural(sub as JsonSchema);
        out["properties"] = props;
        break;
      }
      case "items":
        out["items"] = toStructural(value as JsonSchema);
        break;
      case "additionalProperties":
        // Structural schemas forbid additionalProperties next to properties; unknown fields are rejected
        // by the API server's strict field validation (and by our webhook) instead.
        if (node["properties"] === undefined && isObj(value) && Object.keys(value).length > 0) {
          out["additionalProperties"] = toStructural(value);
        }
        break;
      case "minimum":
        if (value !== -SAFE_INT && value !== Number.MIN_SAFE_INTEGER) out[key] = value;
        break;
      case "maximum":
        if (value !== SAFE_INT && value !== Number.MAX_SAFE_INTEGER) out[key] = value;
        break;
      default:
        out[key] = value;
    }
  }
  if (out["x-kubernetes-preserve-unknown-fields"] === true) {
    delete out["additionalProperties"];
    out["type"] = "object";
  }
  if (out["type"] === "integer" && typeof out["maximum"] === "number" && out["maximum"] > 2147483647) {
    out["format"] = "int64";
  }
  return out;
}

/** The zod schema as a structural OpenAPI v3 schema (input view: defaulted fields are optional). */
export function openApiFromZod(schema: z.ZodType): JsonSchema {
  const raw = z.toJSONSchema(schema, { io: "input", target: "openapi-3.0", unrepresentable: "throw" }) as JsonSchema;
  return toStructural(raw);
}

/** A problem that makes a schema non-structural or undocumented, with its JSON path. */
export type SchemaProblem = { path: string; problem: string };

/**
 * Walks a CRD schema and reports what would make the API server reject it as non-structural, plus
 * properties without a description (what `kubectl explain` shows).
 */
export function checkStructural(schema: JsonSchema, path = "openAPIV3Schema", isProperty = false): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const typed = schema["type"] !== undefined || schema["x-kubernetes-int-or-string"] === true || schema["x-kubernetes-preserve-unknown-fields"] === true;
  if (!typed) problems.push({ path, problem: "has no type" });
  for (const banned of ["$ref", "anyOf", "oneOf", "allOf", "not", "definitions", "$defs"]) {
    if (schema[banned] !== undefined) problems.push({ path, problem: `uses ${banned}` });
  }
  if (schema["properties"] !== undefined && schema["additionalProperties"] !== undefined) {
    problems.push({ path, problem: "has both properties and additionalProperties" });
  }
  // The object's own metadata is the API server's: it refuses anything there but its type (a real
  // kube-apiserver rejected our CRDs for a description on it; the emulator had accepted them).
  const rootMetadata = path === "openAPIV3Schema.properties.metadata";
  if (rootMetadata) {
    const extra = Object.keys(schema).filter((k) => k !== "type");
    if (extra.length > 0) problems.push({ path, problem: `may hold only type (the API server owns metadata), has ${extra.join(", ")}` });
  } else if (isProperty && (typeof schema["description"] !== "string" || (schema["description"] as string).length === 0)) {
    problems.push({ path, problem: "has no description" });
  }
  const props = schema["properties"];
  if (isObj(props)) {
    for (const [name, sub] of Object.entries(props)) problems.push(...checkStructural(sub as JsonSchema, `${path}.properties.${name}`, true));
  }
  if (isObj(schema["items"])) problems.push(...checkStructural(schema["items"], `${path}.items`));
  if (isObj(schema["additionalProperties"])) problems.push(...checkStructural(schema["additionalProperties"], `${path}.additionalProperties`));
  return problems;
}
