// CustomResourceDefinitions turn into resource table entries: one per served version, carrying the scope,
// the status subresource, short names and printer columns that discovery and `kubectl get` tables need.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ApiError } from "./errors";
import { isObject } from "./json";
import { type Obj, type PrinterColumn, type ResourceType } from "./types";

const COLUMN_TYPES = new Set(["string", "integer", "number", "boolean", "date"]);

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function printerColumns(version: Obj): PrinterColumn[] {
  const raw = version.additionalPrinterColumns;
  if (!Array.isArray(raw) || raw.length === 0) {
    return [{ name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" }];
  }
  return raw.filter(isObject).map((c) => {
    const column: PrinterColumn = {
      name: String(c.name ?? ""),
      type: COLUMN_TYPES.has(String(c.type)) ? (c.type as PrinterColumn["type"]) : "string",
      jsonPath: String(c.jsonPath ?? ""),
    };
    if (typeof c.description === "string") column.description = c.description;
    if (typeof c.priority === "number") column.priority = c.priority;
    if (typeof c.format === "string") column.format = c.format;
    return column;
  });
}

/** The resource types a CRD serves, storage version first; throws 422-style errors for unusable CRDs. */
export function resourceTypesOfCrd(crd: Obj): ResourceType[] {
  const spec = isObject(crd.spec) ? crd.spec : undefined;
  const names = spec && isObject(spec.names) ? spec.names : undefined;
  const group = spec?.group;
  const kind = names?.kind;
  const plural = names?.plural;
  if (!spec || !names || typeof group !== "string" || typeof kind !== "string" || typeof plural !== "string") {
    throw new ApiError(422, "Invalid", "CustomResourceDefinition needs spec.group, spec.names.kind and spec.names.plural");
  }
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObject) : [];
  const served = versions.filter((v) => v.served !== false && typeof v.name === "string");
  if (served.length === 0) throw new ApiError(422, "Invalid", "CustomResourceDefinition serves no version");
  served.sort((a, b) => Number(b.storage === true) - Number(a.storage === true));
  return served.map((v) => ({
    group,
    version: String(v.name),
    kind,
    listKind: typeof names.listKind === "string" ? names.listKind : `${kind}List`,
    plural,
    singular: typeof names.singular === "string" ? names.singular : kind.toLowerCase(),
    namespaced: spec.scope === "Namespaced",
    hasStatus: isObject(v.subresources) && isObject(v.subresources.status),
    shortNames: strings(names.shortNames),
    categories: strings(names.categories),
    printerColumns: printerColumns(v),
    selectableFields: Array.isArray(v.selectableFields)
      ? v.selectableFields.filter(isObject).map((f) => String(f.jsonPath ?? "").replace(/^\./, ""))
      : [],
    returnDeletedObject: true,
    builtin: false,
    ...(isObject(v.schema) && isObject(v.schema.openAPIV3Schema) ? { schema: v.schema.openAPIV3Schema } : {}),
  }));
}

/** Every CustomResourceDefinition document in the *.yaml / *.yml / *.json files of a directory. */
export function readCrdDir(dir: string): Obj[] {
  const out: Obj[] = [];
  for (const file of readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const value: unknown = doc.toJS();
      if (isObject(value) && value.kind === "CustomResourceDefinition") out.push(value);
    }
  }
  return out;
}
