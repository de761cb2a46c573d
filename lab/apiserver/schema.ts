// What a real apiserver does with a CRD's structural schema on every write, minus CEL: apply `default`s,
// prune fields the schema does not declare (or reject them: fieldValidation=Strict, which kfc Apply and
// kubectl send), and validate types, enums, bounds, lengths, patterns, item counts and required fields.
// Errors read like the real server's, e.g. `spec.mode: Unsupported value: "x": supported values: ...`.
// x-kubernetes-validations (CEL) rules are not evaluated.
//
// Every walk takes an optional `prev`: the same position in a stored object that already went through all
// three steps against the same schema. A subtree identical to it (the same reference, so frozen and
// unchanged) is skipped: it has its defaults, holds no undeclared field and is valid, which is what makes a
// write that shares most of its object with the stored one cost only what it changes. The writer passes
// `prev` only when that guarantee holds, and never hands in a frozen node at any other position.

import { type StatusCause } from "./errors";
import { clone, deepEqual, isObject } from "./json";
import { type Obj } from "./types";

type Schema = Obj;

function schemaAt(value: unknown): Schema | undefined {
  return isObject(value) ? value : undefined;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** `prev`'s member at `key` (or index), when `prev` is a container of the same kind. */
function child(prev: unknown, key: string | number): unknown {
  if (typeof key === "number") return Array.isArray(prev) ? (prev[key] as unknown) : undefined;
  return isObject(prev) ? prev[key] : undefined;
}

/** Whether `value` is a subtree already conformed at this position (see the header). */
function settled(value: unknown, prev: unknown): boolean {
  return prev !== undefined && value === prev;
}

/**
 * The root schema a status-subresource write is checked against: the root's `status` property and the
 * root rules that can involve `.status` (its own `required` entry, additionalProperties and
 * x-kubernetes-preserve-unknown-fields, which decide what happens to an undeclared status). Rules about
 * the whole object (`enum`) and the other required fields concern the unchanged main resource and are
 * left out, like the real server's status-strategy validator, which validates only .status.
 */
const statusSchemas = new WeakMap<Schema, Schema>();
export function statusRootSchema(schema: Schema): Schema {
  let out = statusSchemas.get(schema);
  if (!out) {
    const { enum: _enum, required, properties, ...rest } = schema;
    const status = isObject(properties) ? properties.status : undefined;
    out = { ...rest, properties: status !== undefined ? { status } : {} };
    if (Array.isArray(required)) out.required = required.filter((r) => r === "status");
    statusSchemas.set(schema, out);
  }
  return out;
}

/** Fill in `default` values for absent properties, top-down (a defaulted object gets its own defaults). */
export function applyDefaults(value: unknown, schema: Schema, prev?: unknown): void {
  if (settled(value, prev)) return;
  if (isObject(value)) {
    const props = schemaAt(schema.properties);
    if (props) {
      for (const [key, sub] of Object.entries(props)) {
        const s = schemaAt(sub);
        if (!s) continue;
        if (value[key] === undefined && s.default !== undefined) value[key] = clone(s.default);
        if (value[key] !== undefined) applyDefaults(value[key], s, child(prev, key));
      }
    }
    const additional = schemaAt(schema.additionalProperties);
    if (additional) for (const [key, v] of Object.entries(value)) applyDefaults(v, additional, child(prev, key));
  } else if (Array.isArray(value)) {
    const items = schemaAt(schema.items);
    if (items) value.forEach((v: unknown, i) => applyDefaults(v, items, child(prev, i)));
  }
}

/** Remove undeclared fields; returns their paths. The root's apiVersion/kind/metadata are never pruned. */
export function pruneUnknown(value: unknown, schema: Schema, path = "", prev?: unknown): string[] {
  const unknown: string[] = [];
  if (settled(value, prev)) return unknown;
  const preserve = schema["x-kubernetes-preserve-unknown-fields"] === true;
  if (isObject(value)) {
    const props = schemaAt(schema.properties) ?? {};
    const additional = schema.additionalProperties;
    for (const key of Object.keys(value)) {
      if (path === "" && (key === "apiVersion" || key === "kind" || key === "metadata")) continue;
      const declared = schemaAt(props[key]);
      const sub = declared ?? schemaAt(additional);
      if (sub) unknown.push(...pruneUnknown(value[key], sub, join(path, key), child(prev, key)));
      else if (!preserve && additional !== true) {
        unknown.push(join(path, key));
        delete value[key];
      }
    }
  } else if (Array.isArray(value)) {
    const items = schemaAt(schema.items);
    if (items) value.forEach((v: unknown, i) => unknown.push(...pruneUnknown(v, items, `${path}[${i}]`, child(prev, i))));
  }
  return unknown;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeMatches(value: unknown, schema: Schema): boolean {
  if (schema["x-kubernetes-int-or-string"] === true) return Number.isInteger(value) || typeof value === "string";
  const type = schema.type;
  if (typeof type !== "string") return true;
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
}

/** Compiled patterns (null: one JS cannot compile): a plan checks the same few patterns on thousands of values. */
const patterns = new Map<string, RegExp | null>();

/** Go RE2 patterns are (for what CRDs use) valid JS patterns; one JS cannot compile is not enforced. */
function matchesPattern(pattern: string, value: string): boolean {
  let re = patterns.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern);
    } catch {
      re = null;
    }
    patterns.set(pattern, re);
  }
  return re === null || re.test(value);
}

/** Every way `value` breaks `schema`, as Status causes with the real server's wording. */
export function validateSchema(value: unknown, schema: Schema, path = "", prev?: unknown): StatusCause[] {
  const causes: StatusCause[] = [];
  if (settled(value, prev)) return causes;
  const invalid = (message: string) => causes.push({ reason: "FieldValueInvalid", field: path, message: `Invalid value: ${show(value)}: ${message}` });
  if (value === null) {
    if (schema.nullable !== true) invalid(`${path} in body must be of type ${String(schema.type ?? "object")}: "null"`);
    return causes;
  }
  if (!typeMatches(value, schema)) {
    invalid(`${path} in body must be of type ${String(schema.type)}: "${typeOf(value)}"`);
    return causes;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => deepEqual(e, value))) {
    causes.push({ reason: "FieldValueNotSupported", field: path, message: `Unsupported value: ${show(value)}: supported values: ${schema.enum.map(show).join(", ")}` });
  }
  if (typeof value === "number") {
    const { minimum, maximum, multipleOf } = schema;
    if (typeof minimum === "number" && (schema.exclusiveMinimum === true ? value <= minimum : value < minimum)) {
      invalid(`${path} in body should be greater than ${schema.exclusiveMinimum === true ? "" : "or equal to "}${minimum}`);
    }
    if (typeof maximum === "number" && (schema.exclusiveMaximum === true ? value >= maximum : value > maximum)) {
      invalid(`${path} in body should be less than ${schema.exclusiveMaximum === true ? "" : "or equal to "}${maximum}`);
    }
    if (typeof multipleOf === "number" && multipleOf > 0 && !Number.isInteger(value / multipleOf)) invalid(`${path} in body should be a multiple of ${multipleOf}`);
  }
  if (typeof value === "string") {
    const length = [...value].length;
    if (typeof schema.minLength === "number" && length < schema.minLength) invalid(`${path} in body should be at least ${schema.minLength} chars long`);
    if (typeof schema.maxLength === "number" && length > schema.maxLength) {
      causes.push({ reason: "FieldValueTooLong", field: path, message: `Too long: may not be more than ${schema.maxLength} bytes` });
    }
    if (typeof schema.pattern === "string" && !matchesPattern(schema.pattern, value)) invalid(`${path} in body should match '${schema.pattern}'`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) invalid(`${path} in body should have at least ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) {
      causes.push({ reason: "FieldValueTooMany", field: path, message: `Too many: ${value.length}: must have at most ${schema.maxItems} items` });
    }
    const items = schemaAt(schema.items);
    if (items) value.forEach((v: unknown, i) => causes.push(...validateSchema(v, items, `${path}[${i}]`, child(prev, i))));
  }
  if (isObject(value)) {
    const props = schemaAt(schema.properties) ?? {};
    for (const req of Array.isArray(schema.required) ? schema.required : []) {
      if (typeof req === "string" && value[req] === undefined) causes.push({ reason: "FieldValueRequired", field: join(path, req), message: "Required value" });
    }
    const additional = schemaAt(schema.additionalProperties);
    for (const [key, v] of Object.entries(value)) {
      if (path === "" && key === "metadata") continue;
      const sub = schemaAt(props[key]) ?? additional;
      if (sub && v !== undefined) causes.push(...validateSchema(v, sub, join(path, key), child(prev, key)));
    }
  }
  return causes;
}
