// The real kubectl (v1.32, /usr/bin/kubectl) against the emulator, with default validation (no
// --validate=false): discovery, get -o json, the printer-column table for clusternetworks, apply
// --server-side (create, update, conflict), CRD schema errors, delete (which waits for the object to go),
// and an apply the admission hook denies, whose message kubectl must print while exiting non-zero.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { waitFor } from "../../../src/base/wait";

const KUBECTL = "/usr/bin/kubectl";
let server: ApiServer;
/** A second server without CRD schema checks, so an enum-violating spec.mode reaches the admission hook. */
let hooked: ApiServer;
let dir: string;

interface Run {
  code: number;
  out: string;
  err: string;
}

// Asynchronous on purpose: the emulator runs in this process, so a synchronous spawn would deadlock.
function kubectlOn(target: ApiServer, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(KUBECTL, ["--kubeconfig", target.kubeconfigPath, "--cache-dir", join(dir, "cache"), ...args],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, out: stdout, err: stderr }));
  });
}

const kubectl = (...args: string[]) => kubectlOn(server, ...args);

function manifest(name: string, doc: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, stringify(doc));
  return path;
}

const network = (mode: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "default" },
  spec: { podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode, ...extra },
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sy-kubectl-"));
  server = await startApiServer();
  hooked = await startApiServer({
    crdValidation: false,
    validate: (req) => {
      const mode = (req.object.spec as { mode?: string } | undefined)?.mode;
      return mode === "bogus" ? { allowed: false, message: `spec.mode: "bogus" is not a mode (want vxlan, ipip, host-gw or bgp)` } : { allowed: true };
    },
  });
});
afterAll(async () => {
  await Promise.all([server.close(), hooked.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe("kubectl", () => {
  it("gets namespaces as JSON", async () => {
    const r = await kubectl("get", "namespaces", "-o", "json");
    expect(r.code, r.err).toBe(0);
    const list = JSON.parse(r.out) as { items: { metadata: { name: string } }[] };
    expect(list.items.map((i) => i.metadata.name)).toEqual(expect.arrayContaining(["default", "kube-system"]));
  });

  it("creates a ClusterNetwork with apply --server-side (default validation)", async () => {
    const r = await kubectl("apply", "--server-side", "-f", manifest("vxlan.yaml", network("vxlan")));
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toBe("clusternetwork.switchyard.dev/default serverside-applied");
    expect(server.requests.count({ verb: "patch", resource: "clusternetworks", fieldManager: "kubectl", status: 201 })).toBe(1);
    expect(server.requests.find({ verb: "patch", resource: "clusternetworks" })[0]?.path).toContain("fieldValidation=Strict");
  });

  it("shows the CRD's printer columns in `kubectl get clusternetworks`", async () => {
    await server.store.patchStatus("switchyard.dev/v1alpha1", "ClusterNetwork", "default", undefined, { phase: "Ready", activeMode: "vxlan", nodes: { desired: 3, realized: 3 } });
    const r = await kubectl("get", "clusternetworks");
    expect(r.code, r.err).toBe(0);
    const [header, row] = r.out.trim().split("\n").map((line) => line.trim().split(/\s+/));
    expect(header).toEqual(["NAME", "MODE", "ACTIVE", "PHASE", "REALIZED", "DESIRED", "AGE"]);
    expect(row?.slice(0, 6)).toEqual(["default", "vxlan", "vxlan", "Ready", "3", "3"]);
    expect(row?.[6]).toMatch(/^\d+s$/);
    const wide = await kubectl("get", "cn", "-o", "wide");
    expect(wide.out.split("\n")[0]).toMatch(/MIGRATION\s+AGE$/);
  });

  it("watches with `get -w`: table rows with the printer columns as the object changes", async () => {
    const child = spawn(KUBECTL, ["--kubeconfig", server.kubeconfigPath, "--cache-dir", join(dir, "cache"), "get", "clusternetworks", "-w"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    try {
      await waitFor("the first row of kubectl get -w", () => out.includes("default"), 10_000, 20);
      await server.store.patchStatus("switchyard.dev/v1alpha1", "ClusterNetwork", "default", undefined, { phase: "Migrating" });
      await waitFor(`the updated row (got ${JSON.stringify(out)})`, () => out.includes("Migrating"), 10_000, 20);
      const lines = out.trim().split("\n");
      expect(lines[0]?.trim().split(/\s+/)).toEqual(["NAME", "MODE", "ACTIVE", "PHASE", "REALIZED", "DESIRED", "AGE"]);
      expect(lines.at(-1)?.trim().split(/\s+/).slice(0, 4)).toEqual(["default", "vxlan", "vxlan", "Migrating"]);
    } finally {
      child.kill();
      await server.store.patchStatus("switchyard.dev/v1alpha1", "ClusterNetwork", "default", undefined, { phase: "Ready" });
    }
  });

  it("gets one object as JSON through its short name", async () => {
    const r = await kubectl("get", "cn", "default", "-o", "json");
    expect(r.code, r.err).toBe(0);
    const obj = JSON.parse(r.out) as { spec: { mode: string }; status: { phase: string } };
    expect(obj.spec.mode).toBe("vxlan");
    expect(obj.status.phase).toBe("Ready");
  });

  it("updates with apply --server-side and reports a conflict with another manager", async () => {
    const updated = await kubectl("apply", "--server-side", "-f", manifest("ipip.yaml", network("ipip")));
    expect(updated.code, updated.err).toBe(0);
    await server.store.apply(network("bgp"), { manager: "switchyard-controller", force: true });
    const conflict = await kubectl("apply", "--server-side", "-f", manifest("host-gw.yaml", network("host-gw")));
    expect(conflict.code).not.toBe(0);
    expect(conflict.err).toContain('conflict with "switchyard-controller"');
    expect(conflict.err).toContain(".spec.mode");
  });

  it("prints the CRD schema's verdict for an invalid object and an unknown field (nothing written)", async () => {
    const invalid = await kubectl("apply", "--server-side", "--force-conflicts", "-f", manifest("bad-mode.yaml", network("bogus", { blockSize: 40 })));
    expect(invalid.code).not.toBe(0);
    expect(invalid.err).toContain('The ClusterNetwork "default" is invalid');
    expect(invalid.err).toContain('spec.mode: Unsupported value: "bogus"');
    expect(invalid.err).toContain("spec.blockSize: Invalid value: 40");
    const unknown = await kubectl("apply", "--server-side", "--force-conflicts", "-f", manifest("unknown.yaml", network("vxlan", { colour: "blue" })));
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toContain('unknown field "spec.colour"');
    expect(server.store.get("switchyard.dev/v1alpha1", "ClusterNetwork", "default")?.spec).toMatchObject({ mode: "bgp" });
  });

  it("prints the admission hook's message and exits non-zero for a denied apply", async () => {
    const ok = await kubectlOn(hooked, "apply", "--server-side", "-f", manifest("vxlan.yaml", network("vxlan")));
    expect(ok.code, ok.err).toBe(0);
    const r = await kubectlOn(hooked, "apply", "--server-side", "-f", manifest("bogus.yaml", network("bogus")));
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('admission webhook "pepr-switchyard.pepr.dev" denied the request: spec.mode: "bogus" is not a mode');
    expect(hooked.store.get("switchyard.dev/v1alpha1", "ClusterNetwork", "default")?.spec).toMatchObject({ mode: "vxlan" });
  });

  it("applies client-side too (kubectl reads /openapi/v2 for that, then patches)", async () => {
    const cm = (value: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "csa", namespace: "default" }, data: { a: value } });
    const created = await kubectl("apply", "-f", manifest("csa.yaml", cm("1")));
    expect(created.code, created.err).toBe(0);
    expect(created.out.trim()).toBe("configmap/csa created");
    const configured = await kubectl("apply", "-f", manifest("csa.yaml", cm("2")));
    expect(configured.code, configured.err).toBe(0);
    expect(configured.out.trim()).toBe("configmap/csa configured");
    expect(server.store.get("v1", "ConfigMap", "csa", "default")?.data).toEqual({ a: "2" });
    expect(server.requests.find({ verb: "discovery" }).some((r) => r.path.startsWith("/openapi/v2"))).toBe(true);
  });

  it("deletes the object and waits for it to be gone", async () => {
    const r = await kubectl("delete", "clusternetwork", "default");
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toBe('clusternetwork.switchyard.dev "default" deleted');
    expect(server.store.get("switchyard.dev/v1alpha1", "ClusterNetwork", "default")).toBeUndefined();
    const gone = await kubectl("get", "cn", "default");
    expect(gone.code).not.toBe(0);
    expect(gone.err).toContain('clusternetworks.switchyard.dev "default" not found');
  });
});
