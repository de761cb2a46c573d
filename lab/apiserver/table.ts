// `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io`; the server computes the columns.
// Custom resources use their CRD's additionalPrinterColumns (dates rendered as ages, like the real
// server's humanised durations), built-in kinds a few columns of their own; rows carry the object's
// metadata as PartialObjectMetadata, which kubectl uses for the NAMESPACE column.

import { evaluateJsonPath } from "./jsonpath";
import { isObject } from "./json";
import { type KubeObject, type Obj, type PrinterColumn, type ResourceType } from "./types";

/** Whether the Accept header asks for a meta.k8s.io Table. */
export function wantsTable(accept: string | undefined): boolean {
  return (accept ?? "").split(",").some((part) => /;\s*as=Table/.test(part) && /g=meta\.k8s\.io/.test(part));
}

/** Go's duration.HumanDuration, which the real server uses for date columns. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.floor(hours / 24);
    return days % 365 === 0 ? `${Math.floor(days / 365)}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function cell(column: PrinterColumn, obj: KubeObject, now: number): unknown {
  let value: unknown;
  try {
    value = evaluateJsonPath(obj, column.jsonPath)[0];
  } catch {
    return null;
  }
  if (value === undefined || value === null) return null;
  switch (column.type) {
    case "date": {
      const t = Date.parse(String(value));
      return Number.isNaN(t) ? "<invalid>" : humanDuration(now - t);
    }
    case "integer":
    case "number":
      return typeof value === "number" ? value : Number.isNaN(Number(value)) ? null : Number(value);
    case "boolean":
      return typeof value === "boolean" ? value : String(value) === "true";
    default:
      return isObject(value) || Array.isArray(value) ? JSON.stringify(value) : String(value);
  }
}

export function toTable(rt: ResourceType, objects: KubeObject[], listMeta: Obj, now = Date.now()): Obj {
  const columns = rt.printerColumns;
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: listMeta,
    columnDefinitions: [
      { name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 },
      ...columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? "", description: c.description ?? "", priority: c.priority ?? 0 })),
    ],
    rows: objects.map((obj) => ({
      cells: [obj.metadata.name, ...columns.map((c) => cell(c, obj, now))],
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: obj.metadata },
    })),
  };
}
