// The in-process stand-in for a validating admission webhook (Pepr's Validate bindings in a real cluster).
// The hook sees an AdmissionRequest-shaped object on CREATE and UPDATE of the main resource (apply and
// patches included, status writes excluded, as with a webhook registered for the main resource only), and a
// denial comes back the way the real server words it, so `kubectl apply` prints the hook's message.

import { randomUUID } from "node:crypto";
import { ApiError } from "./errors";
import { type KubeObject, type Obj, type ResourceType } from "./types";

export interface AdmissionRequestLike {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name: string;
  namespace?: string;
  operation: "CREATE" | "UPDATE";
  userInfo: { username: string; groups: string[] };
  object: KubeObject;
  oldObject: KubeObject | null;
  dryRun: boolean;
  options: Obj;
}

export interface AdmissionVerdict {
  allowed: boolean;
  message?: string;
  /** HTTP code of the denial; Pepr's default is 400. */
  code?: number;
}

export type AdmissionHook = (request: AdmissionRequestLike) => AdmissionVerdict | Promise<AdmissionVerdict>;

export const LAB_USER = { username: "switchyard-lab-admin", groups: ["system:masters", "system:authenticated"] };

const REASONS: Record<number, string> = { 400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid", 500: "InternalError" };

export interface AdmissionCall {
  rt: ResourceType;
  operation: "CREATE" | "UPDATE";
  object: KubeObject;
  oldObject?: KubeObject;
  dryRun: boolean;
  options: Obj;
}

/** Run the hook; resolves when allowed, throws the Status error a real webhook denial produces otherwise. */
export async function admit(hook: AdmissionHook | undefined, webhookName: string, call: AdmissionCall): Promise<void> {
  if (!hook) return;
  const { rt, object } = call;
  const request: AdmissionRequestLike = {
    uid: randomUUID(),
    kind: { group: rt.group, version: rt.version, kind: rt.kind },
    resource: { group: rt.group, version: rt.version, resource: rt.plural },
    name: object.metadata.name,
    operation: call.operation,
    userInfo: LAB_USER,
    object: structuredClone(object),
    oldObject: call.oldObject ? structuredClone(call.oldObject) : null,
    dryRun: call.dryRun,
    options: call.options,
  };
  if (object.metadata.namespace) request.namespace = object.metadata.namespace;
  let verdict: AdmissionVerdict;
  try {
    verdict = await hook(request);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ApiError(500, "InternalError", `Internal error occurred: failed calling webhook "${webhookName}": ${why}`);
  }
  if (verdict.allowed) return;
  const code = verdict.code !== undefined && verdict.code >= 400 ? verdict.code : 400;
  const deniedBy = `admission webhook "${webhookName}" denied the request`;
  const message = verdict.message ? `${deniedBy}: ${verdict.message}` : `${deniedBy} without explanation`;
  throw new ApiError(code, REASONS[code] ?? "", message);
}
