// API errors as values: every failure leaves the server as a metav1.Status body with the reason and code
// a real kube-apiserver uses, because clients branch on them (kfc swallows 404 on Delete, informers relist
// on 410, controllers retry on 409).

import { type Obj, type ResourceType } from "./types";

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status extends Obj {
  kind: "Status";
  apiVersion: "v1";
  metadata: Obj;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  code: number;
  details?: StatusDetails;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toStatus(): Status {
    return failureStatus(this.code, this.reason, this.message, this.details);
  }
}

export function failureStatus(code: number, reason: string, message: string, details?: StatusDetails): Status {
  const status: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
  if (details) status.details = details;
  return status;
}

export function successStatus(details?: StatusDetails): Status {
  const status: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 200 };
  if (details) status.details = details;
  return status;
}

/** `pods`, or `clusternetworks.switchyard.dev`, as the real server names a resource in messages. */
export function qualifiedResource(rt: ResourceType): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

function objectDetails(rt: ResourceType, name: string): StatusDetails {
  const details: StatusDetails = { name, kind: rt.plural };
  if (rt.group) details.group = rt.group;
  return details;
}

export const errors = {
  notFound(rt: ResourceType, name: string): ApiError {
    return new ApiError(404, "NotFound", `${qualifiedResource(rt)} "${name}" not found`, objectDetails(rt, name));
  },
  noSuchResource(): ApiError {
    return new ApiError(404, "NotFound", "the server could not find the requested resource", {});
  },
  alreadyExists(rt: ResourceType, name: string): ApiError {
    return new ApiError(409, "AlreadyExists", `${qualifiedResource(rt)} "${name}" already exists`, objectDetails(rt, name));
  },
  conflict(rt: ResourceType, name: string, why = "the object has been modified; please apply your changes to the latest version and try again"): ApiError {
    return new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${qualifiedResource(rt)} "${name}": ${why}`, objectDetails(rt, name));
  },
  badRequest(message: string): ApiError {
    return new ApiError(400, "BadRequest", message);
  },
  invalid(rt: ResourceType, name: string, causes: StatusCause[]): ApiError {
    const text = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(", ");
    const kind = rt.group ? `${rt.kind}.${rt.group}` : rt.kind;
    const details: StatusDetails = { name, kind: rt.kind, causes };
    if (rt.group) details.group = rt.group;
    return new ApiError(422, "Invalid", `${kind} "${name}" is invalid: ${text}`, details);
  },
  unsupportedMediaType(contentType: string): ApiError {
    return new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got ${contentType || "none"})`);
  },
  methodNotAllowed(method: string): ApiError {
    return new ApiError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (${method})`);
  },
  expired(requested: number, oldest: number): ApiError {
    return new ApiError(410, "Expired", `too old resource version: ${requested} (${oldest})`);
  },
  forbidden(rt: ResourceType, name: string, why: string): ApiError {
    return new ApiError(403, "Forbidden", `${qualifiedResource(rt)} "${name}" is forbidden: ${why}`, objectDetails(rt, name));
  },
  tooLarge(message: string): ApiError {
    return new ApiError(413, "RequestEntityTooLarge", message);
  },
  internal(message: string): ApiError {
    return new ApiError(500, "InternalError", `Internal error occurred: ${message}`, { causes: [{ reason: "", message }] });
  },
};
