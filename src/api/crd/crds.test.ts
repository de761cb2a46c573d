import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CRDS, renderCrdFiles } from "./crds";
import { checkStructural, type JsonSchema } from "./openapi";
import { INVALID } from "../../../test/fixtures/cluster-networks";
import { validateClusterNetwork } from "../validate-cluster-network";

const ROOT = join(import.meta.dirname, "..", "..", "..");

function loadCrd(file: string): JsonSchema {
  return parse(readFileSync(join(ROOT, "crds", file), "utf8")) as JsonSchema;
}
function openApi(crd: JsonSchema): JsonSchema {
  const spec = crd["spec"] as { versions: { schema: { openAPIV3Schema: JsonSchema } }[] };
  return spec.versions[0]!.schema.openAPIV3Schema;
}

/** An OpenAPI v3 (Kubernetes flavour) validator: ajv with the x-kubernetes-* keywords known, CEL not evaluated. */
function compile(schema: JsonSchema) {
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const kw of ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-map-type", "x-kubernetes-validations", "x-kubernetes-int-or-string"]) ajv.addKeyword(kw);
  // int-or-string nodes carry no `type`, which ajv then accepts as anything; narrow them as the API server does.
  const narrowed = JSON.parse(JSON.stringify(schema), (_k, v: unknown) => {
    if (v && typeof v === "object" && (v as JsonSchema)["x-kubernetes-int-or-string"] === true) {
      return { ...(v as JsonSchema), anyOf: [{ type: "integer" }, { type: "string" }] };
    }
    return v;
  }) as JsonSchema;
  return ajv.compile(narrowed);
}

describe("generated CRDs", () => {
  it("match the committed files in crds/ (run `npm run gen:crds` when this fails)", () => {
    for (const [file, text] of renderCrdFiles()) {
      expect(readFileSync(join(ROOT, "crds", file), "utf8"), `crds/${file} is stale`).toBe(text);
    }
  });

  it.each(CRDS.map((c) => c.file))("%s is structural: a type everywhere, no $ref, a description on every field", (file) => {
    const schema = openApi(loadCrd(file));
    expect(checkStructural(schema)).toEqual([]);
    expect(JSON.stringify(schema)).not.toContain("$ref");
  });

  it("the structural check catches what the API server would reject", () => {
    const bad: JsonSchema = { type: "object", properties: { a: { description: "x" }, b: { type: "string" }, c: { type: "object", description: "y", properties: {}, additionalProperties: { type: "string" } } } };
    expect(checkStructural(bad).map((p) => `${p.path} ${p.problem}`)).toEqual([
      "openAPIV3Schema.properties.a has no type",
      "openAPIV3Schema.properties.b has no description",
      "openAPIV3Schema.properties.c has both properties and additionalProperties",
    ]);
  });

  it("ClusterNetwork has the status subresource and printer columns for mode, phase, nodes and age", () => {
    const crd = loadCrd("clusternetworks.switchyard.dev.yaml") as { spec: { scope: string; versions: { subresources: unknown; additionalPrinterColumns: { name: string }[] }[] } };
    expect(crd.spec.scope).toBe("Cluster");
    const v = crd.spec.versions[0]!;
    expect(v.subresources).toEqual({ status: {} });
    expect(v.additionalPrinterColumns.map((c) => c.name)).toEqual(expect.arrayContaining(["Mode", "Phase", "Realized", "Desired", "Age"]));
  });

  const validateOpenApi = compile(openApi(loadCrd("clusternetworks.switchyard.dev.yaml")));
  const samples = readdirSync(join(ROOT, "samples")).filter((f) => f.endsWith(".yaml"));

  it.each(samples)("the OpenAPI schema and zod both accept samples/%s", (f) => {
    const obj = parse(readFileSync(join(ROOT, "samples", f), "utf8"));
    expect(validateOpenApi(obj), JSON.stringify(validateOpenApi.errors)).toBe(true);
    expect(validateClusterNetwork(obj)).toEqual([]);
  });

  it("whatever the OpenAPI schema rejects in the invalid table, zod rejects too", () => {
    let rejectedByOpenApi = 0;
    for (const [name, obj] of INVALID) {
      if (!validateOpenApi(obj)) {
        rejectedByOpenApi++;
        expect(validateClusterNetwork(obj).length, `${name}: rejected by OpenAPI but accepted by zod`).toBeGreaterThan(0);
      }
    }
    // The schema carries real constraints (types, bounds, patterns, enums), not just `type: object`.
    expect(rejectedByOpenApi).toBeGreaterThanOrEqual(25);
  });
});
