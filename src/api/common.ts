// Schemas shared by the Switchyard API types: label selectors, conditions, durations.
import { z } from "zod";

export const API_GROUP = "switchyard.dev";
export const API_VERSION = "v1alpha1";
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

export const LabelSelectorRequirementSchema = z
  .strictObject({
    key: z.string().min(1).max(317).describe("The label key the requirement applies to."),
    operator: z
      .enum(["In", "NotIn", "Exists", "DoesNotExist"])
      .describe("How the key relates to the values: In, NotIn, Exists or DoesNotExist."),
    values: z
      .array(z.string().max(63))
      .optional()
      .describe("The values to compare against. Required (non-empty) for In and NotIn; must be absent for Exists and DoesNotExist."),
  })
  .describe("One requirement of a label selector, as in Kubernetes' metav1.LabelSelectorRequirement.");
export type LabelSelectorRequirement = z.infer<typeof LabelSelectorRequirementSchema>;

export const LabelSelectorSchema = z
  .strictObject({
    matchLabels: z
      .record(z.string(), z.string())
      .optional()
      .describe("Labels that must all be present with exactly these values."),
    matchExpressions: z
      .array(LabelSelectorRequirementSchema)
      .optional()
      .describe("Requirements that must all hold. ANDed with matchLabels."),
  })
  .describe("A Kubernetes label selector over Node labels. An empty selector selects every node.");
export type LabelSelector = z.infer<typeof LabelSelectorSchema>;

/** A Go-style duration such as `500ms`, `2s`, `1m30s`. */
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";
export const DurationSchema = z.string().regex(new RegExp(DURATION_PATTERN), { message: "must be a duration such as 500ms, 2s or 1m30s" });

export const ConditionSchema = z
  .strictObject({
    type: z.string().min(1).max(316).describe("The condition type, e.g. Ready, Progressing, Degraded, MigrationBlocked."),
    status: z.enum(["True", "False", "Unknown"]).describe("True, False or Unknown."),
    observedGeneration: z.int().min(0).optional().describe("The .metadata.generation the condition was computed from."),
    lastTransitionTime: z.string().describe("When the condition last changed status (RFC 3339)."),
    reason: z.string().min(1).max(1024).describe("A CamelCase machine-readable reason for the last transition."),
    message: z.string().max(32768).describe("A human-readable explanation."),
  })
  .describe("A standard Kubernetes status condition (metav1.Condition).");
export type Condition = z.infer<typeof ConditionSchema>;

/** Parses a Go-style duration into milliseconds; undefined when malformed. */
export function parseDurationMs(text: string): number | undefined {
  if (!new RegExp(DURATION_PATTERN).test(text)) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) total += Number(m[1]) * unit[m[2]!]!;
  return total;
}
