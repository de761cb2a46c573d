// The NodeNetwork CRD on the real kube-apiserver and etcd (what the emulator never proves): the server takes
// the strict plan schema as a structural schema (including its untyped x-kubernetes-preserve-unknown-fields
// nodes and its patterns, which Go's RE2 compiles), accepts the controller's own plans unchanged, and
// refuses each crafted plan of the injection table that the CRD can type (422; 400 for an unknown field
// under fieldValidation=Strict, what kfc Apply sends).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubeControlPlane, type KubeControlPlane } from "../../lab/control-plane/kubernetes";
import { packagePath } from "../../src/base/package-root";
import { basePlanSpec, injected, PLAN_INJECTIONS, specPath } from "../fixtures/plan-injections";
import { apiRequest, kubeBinaryDir, kubeUnavailable } from "../support/kube";

const unavailable = await kubeUnavailable();
if (unavailable) console.warn(unavailable);

const NN = "/apis/switchyard.dev/v1alpha1/nodenetworks?fieldValidation=Strict";
const nn = (name: string, spec: unknown) => ({ apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name }, spec });

describe.skipIf(unavailable !== undefined)("NodeNetwork CRD on the real kube-apiserver", () => {
  let kube: KubeControlPlane;
  let runDir: string;
  const post = async (name: string, spec: unknown) => {
    const r = await apiRequest(kube.kubeconfigPath, "POST", NN, nn(name, spec), "application/json");
    return { status: r.status, body: JSON.parse(r.body) as { spec?: unknown; details?: { causes?: { field?: string }[] }; message?: string } };
  };

  beforeAll(async () => {
    const bin = await kubeBinaryDir();
    if (bin instanceof Error) throw bin;
    runDir = mkdtempSync(join(tmpdir(), "syh6-kube-"));
    kube = await startKubeControlPlane({ runDir, binDir: bin });
    const applied = await kube.kubectl(["apply", "-f", packagePath("crds", "nodenetworks.switchyard.dev.yaml")]);
    expect(applied.code, applied.stderr).toBe(0);
    const ready = await kube.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/nodenetworks.switchyard.dev"]);
    expect(ready.code, ready.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await kube?.stop();
    if (runDir) rmSync(runDir, { recursive: true, force: true });
  });

  it("accepts the controller's plans (every golden plan) unchanged", async () => {
    const dir = fileURLToPath(new URL("../golden/plans/", import.meta.url));
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
      const { plans } = JSON.parse(readFileSync(dir + file, "utf8")) as { plans: Record<string, unknown> };
      for (const [node, spec] of Object.entries(plans)) {
        const r = await post(`${file.replace(".json", "")}-${node}`, spec);
        expect(r.status, `${file} ${node}: ${JSON.stringify(r.body).slice(0, 600)}`).toBe(201);
        expect(r.body.spec).toEqual(spec);
      }
    }
  }, 60_000);

  it("refuses every crafted plan the CRD can type, naming the field", async () => {
    let i = 0;
    for (const c of PLAN_INJECTIONS) {
      const r = await post(`inj-${i++}`, injected(basePlanSpec(), c.at, c.value));
      const what = `${c.name}: ${JSON.stringify(r.body).slice(0, 600)}`;
      if (c.crd === "refused") {
        expect(r.status, what).toBe(422);
        expect(r.body.details?.causes?.some((x) => x.field?.startsWith(specPath(c.at))), what).toBe(true);
      } else if (c.crd === "pruned") {
        expect(r.status, what).toBe(400);
        expect(r.body.message, what).toContain(String(c.at[c.at.length - 1]));
      } else {
        expect(r.status, what).toBe(201);
      }
    }
  }, 60_000);
});
