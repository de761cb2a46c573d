// The NodeNetwork CRD (generated from src/api/node-plan.ts) on the emulator, which enforces CRD schemas as a
// real API server does: the controller's own plans are accepted as they are, and a plan carrying syntax in
// a value is refused before it is stored (422), or for an unknown field under fieldValidation=Strict (400,
// what kfc Apply sends). The few places the CRD cannot type (group members, a rule's peers and ports) are
// accepted here and refused by the agent's parse (src/api/node-plan.test.ts, test/kernel/agent-plan-injection.test.ts).
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { rawClient } from "../../support/apiserver";
import { basePlanSpec, injected, PLAN_INJECTIONS, specPath } from "../../fixtures/plan-injections";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;
const NN = "/apis/switchyard.dev/v1alpha1/nodenetworks?fieldValidation=Strict";
const nn = (name: string, spec: unknown) => ({ apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name }, spec });

beforeAll(async () => {
  server = await startApiServer();
  call = rawClient(server.url);
});
afterAll(() => server.close());

describe("NodeNetwork CRD: the controller's plans", () => {
  const dir = fileURLToPath(new URL("../../golden/plans/", import.meta.url));
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    it(`${file}: every node's plan is accepted unchanged`, async () => {
      const { plans } = JSON.parse(readFileSync(dir + file, "utf8")) as { plans: Record<string, unknown> };
      for (const [node, spec] of Object.entries(plans)) {
        const r = await call("POST", NN, nn(`${file.replace(".json", "")}-${node}`, spec));
        expect(r.status, JSON.stringify(r.body).slice(0, 600)).toBe(201);
        expect(r.body.spec).toEqual(spec);
      }
    });
  }
});

describe("NodeNetwork CRD: crafted plans", () => {
  PLAN_INJECTIONS.forEach((c, i) => {
    const verdict = c.crd === "refused" ? "422" : c.crd === "pruned" ? "400 (unknown field)" : "stored (the agent's parse refuses it)";
    it(`${c.name} (${specPath(c.at)}): ${verdict}`, async () => {
      const r = await call("POST", NN, nn(`inj-${i}`, injected(basePlanSpec(), c.at, c.value)));
      const body = JSON.stringify(r.body).slice(0, 600);
      if (c.crd === "refused") {
        expect(r.status, body).toBe(422);
        const want = specPath(c.at);
        expect(r.body.details?.causes?.map((x) => x.field), body).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${want.replace(/[.[\]]/g, "\\$&")}`))]));
      } else if (c.crd === "pruned") {
        expect(r.status, body).toBe(400);
        expect(body).toContain(c.at[c.at.length - 1]);
      } else {
        expect(r.status, body).toBe(201);
      }
    });
  });
});
