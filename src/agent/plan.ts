// The agent's door for a plan: spec.routing and spec.policy of its NodeNetwork are parsed with the strict
// schemas (src/api/node-plan.ts) before anything renders them. An API server validates the same schemas,
// but the agent does not rely on it (a CRD installed from an older release, a server without validation,
// a plan saved to disk): a plan that fails here is refused whole, the last applied plan stays in force,
// and the node reports InvalidPlan with the field paths. Pure.
import type { z } from "zod";
import { diagnosticsFromZod, formatDiagnostic, type Diagnostic } from "../api/diagnostics";
import { PolicySectionSchema, RoutingPlanSchema, type PolicySection, type RoutingPlanSection } from "../api/node-plan";
import type { NodePolicySlice } from "../compile/policy/slice";
import type { RoutingPlan } from "../model/routing-plan";
import type { PolicyBackendName } from "./policy/backend";

export type PlanPolicy = NodePolicySlice & { readonly backend?: PolicyBackendName };

export type ParsedPlan =
  | { readonly ok: true; readonly routing: RoutingPlan; readonly policy: PlanPolicy }
  | { readonly ok: false; readonly diagnostics: readonly Diagnostic[] };

/** The condition reason a refused plan is reported with. */
export const INVALID_PLAN_REASON = "InvalidPlan";

// What the schemas accept is what the agent's code reads: a change on either side that breaks this fails
// the type check here. (A group's members are the one exception: their shape follows `kind`, which the
// schema checks in a refinement, so the parsed group is narrowed by a cast below.)
const routingFits = (r: RoutingPlanSection): RoutingPlan => r;
const policyFits = (p: PolicySection): Omit<PlanPolicy, "groups"> => p;

/** Parses a NodeNetwork spec's routing and policy sections; every problem comes back with its path (spec.routing..., spec.policy...). */
export function parseNodePlan(spec: { readonly routing?: unknown; readonly policy?: unknown }): ParsedPlan {
  const routing = RoutingPlanSchema.safeParse(spec.routing);
  const policy = PolicySectionSchema.safeParse(spec.policy);
  const diagnostics = [...issuesOf(routing, "routing"), ...issuesOf(policy, "policy")];
  if (!routing.success || !policy.success) return { ok: false, diagnostics };
  return { ok: true, routing: routingFits(routing.data), policy: { ...policyFits(policy.data), groups: policy.data.groups as unknown as NodePolicySlice["groups"] } };
}

function issuesOf(r: z.ZodSafeParseResult<unknown>, section: string): Diagnostic[] {
  return r.success ? [] : firstPerPath(diagnosticsFromZod(r.error, ["spec", section]));
}

/** One problem per path, in the order of the paths: the shape (a pattern, a type) rather than a length when both fail. */
export function firstPerPath(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const byPath = new Map<string, Diagnostic>();
  const isLength = (d: Diagnostic): boolean => /^must be at (most|least) \d+ characters? long/.test(d.message);
  for (const d of diagnostics) {
    const had = byPath.get(d.path);
    if (had === undefined || (isLength(had) && !isLength(d))) byPath.set(d.path, d);
  }
  return [...byPath.values()];
}

/** The Applied=False message of a refused plan: the paths and what is wrong with each (bounded). */
export function invalidPlanMessage(planHash: string, diagnostics: readonly Diagnostic[]): string {
  const shown = diagnostics.slice(0, 10).map(formatDiagnostic);
  const more = diagnostics.length > shown.length ? `; and ${diagnostics.length - shown.length} more` : "";
  return `plan ${planHash} refused, the previous plan stays in force: ${shown.join("; ")}${more}`.slice(0, 2000);
}

const parsedRouting = new WeakMap<object, RoutingPlan | null>();

/**
 * The routing section alone (the prober reads the plan in force every round; the policy part is not needed
 * there), parsed once per object: the agent keeps the watched object until the next event replaces it.
 */
export function parseRoutingSection(routing: unknown): RoutingPlan | undefined {
  if (typeof routing !== "object" || routing === null) return undefined;
  let plan = parsedRouting.get(routing);
  if (plan === undefined) {
    const r = RoutingPlanSchema.safeParse(routing);
    plan = r.success ? routingFits(r.data) : null;
    parsedRouting.set(routing, plan);
  }
  return plan ?? undefined;
}

type ConditionLike = { readonly type: string; readonly status: string; readonly lastTransitionTime?: string };

/**
 * The status conditions after a refused plan: Applied=False with reason InvalidPlan (its transition time
 * kept when it already was), every other condition as it was (they describe the plan still in force).
 */
export function invalidPlanConditions(previous: unknown, generation: number, message: string, now: string): Record<string, unknown>[] {
  const prev = (Array.isArray(previous) ? previous : []) as ConditionLike[];
  const old = prev.find((c) => c.type === "Applied");
  const applied = { type: "Applied", status: "False", reason: INVALID_PLAN_REASON, message, observedGeneration: generation, lastTransitionTime: old && old.status === "False" && old.lastTransitionTime ? old.lastTransitionTime : now };
  return [applied, ...prev.filter((c) => c.type !== "Applied").map((c) => ({ ...c }))];
}
