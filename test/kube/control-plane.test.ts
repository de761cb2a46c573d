// Switchyard installed on the real kube-apiserver and etcd, as a user installs it: what the emulator never
// checked. RBAC answers exactly as deploy/rbac.yaml says; every CEL rule of the CRDs and of
// deploy/admission-policies.yaml refuses its case on the real server, with the field path; the Pepr
// webhook is called over TLS; validation does not depend on the webhook being reachable (a fresh cluster
// has no pod network for it), and neither does `migrate abort`; an agent writes only its own node's objects.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { runCommand } from "../../src/base/exec";
import { packagePath } from "../../src/base/package-root";
import { switchyardBin } from "../../lab/cluster/daemons";
import { AGENT_SA, CONTROLLER_SA, SYSTEM_NAMESPACE, WEBHOOK_NAMESPACE, WEBHOOK_SA } from "../../lab/control-plane/install";
import { apiRequest, kubeUnavailable, startTestControlPlane, type TestControlPlane } from "../support/kube";
import { waitFor } from "../../src/base/wait";
import { MIGRATION_CONTROL_ANNOTATION } from "../../src/api/annotations";
import { clearControlPatch } from "../../src/controller/decide";
import { editObject, type ObjectIO } from "../../src/kube/guarded-edit";
import type { KObj } from "../../src/kube/store";
import { controlOp, type ClusterNetworkView } from "../../src/migration/controls";

const unavailable = await kubeUnavailable();
if (unavailable) console.warn(unavailable);

let cp: TestControlPlane;

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
type Doc = { kind?: string; metadata?: { name?: string; namespace?: string }; rules?: Rule[]; roleRef?: { kind: string; name: string }; subjects?: { kind: string; name: string; namespace?: string }[] };

/** Every (verb, resource, namespace) deploy/rbac.yaml grants each service account. */
function grantsFromRbacYaml(): Map<string, { verb: string; resource: string; namespace?: string }[]> {
  const docs = parseAllDocuments(readFileSync(packagePath("deploy", "rbac.yaml"), "utf8")).map((d) => d.toJSON() as Doc);
  const roles = new Map(docs.filter((d) => d.kind === "ClusterRole" || d.kind === "Role").map((d) => [`${d.kind}/${d.metadata?.namespace ?? ""}/${d.metadata?.name}`, d]));
  const out = new Map<string, { verb: string; resource: string; namespace?: string }[]>();
  for (const b of docs.filter((d) => d.kind === "ClusterRoleBinding" || d.kind === "RoleBinding")) {
    const ns = b.kind === "RoleBinding" ? b.metadata?.namespace : undefined;
    const role = roles.get(`${b.roleRef?.kind}/${b.roleRef?.kind === "Role" ? (ns ?? "") : ""}/${b.roleRef?.name}`);
    for (const s of b.subjects ?? []) {
      const key = `system:serviceaccount:${s.namespace}:${s.name}`;
      const list = out.get(key) ?? [];
      for (const r of role?.rules ?? []) {
        for (const g of r.apiGroups) {
          for (const res of r.resources) {
            const [base, sub] = res.split("/");
            const resource = `${base}${g ? `.${g}` : ""}${sub ? `/${sub}` : ""}`;
            for (const verb of r.verbs) list.push({ verb, resource, ...(ns ? { namespace: ns } : {}) });
          }
        }
      }
      out.set(key, list);
    }
  }
  return out;
}

async function canI(user: string, verb: string, resource: string, namespace?: string): Promise<boolean> {
  const [base, sub] = resource.split("/");
  const r = await cp.kube.kubectl(["auth", "can-i", verb, base ?? resource, ...(sub ? [`--subresource=${sub}`] : []), `--as=${user}`, ...(namespace ? ["-n", namespace] : ["--all-namespaces"])]);
  if (r.code !== 0 && r.stdout.trim() !== "no") throw new Error(`kubectl auth can-i: ${r.stderr}`);
  return r.stdout.trim() === "yes";
}

const VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

function clusterNetwork(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name }, spec: { podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "vxlan", ...spec } };
}

/** Creates objects as the admin; resolves with kubectl's exit code and message. */
async function create(obj: unknown, opts: { readonly dryRun?: boolean } = {}): Promise<{ ok: boolean; message: string }> {
  const r = await cp.kube.kubectl(["create", "-f", "-", ...(opts.dryRun === false ? [] : ["--dry-run=server"])], { stdin: JSON.stringify(obj) });
  return { ok: r.code === 0, message: (r.stderr || r.stdout).trim() };
}

describe.skipIf(unavailable !== undefined)("Switchyard on the real kube-apiserver", () => {
  beforeAll(async () => {
    cp = await startTestControlPlane("kube-cp", ["x"]);
  }, 120_000);
  afterAll(async () => {
    await cp?.close();
  }, 60_000);

  it("kubectl talks to the real server of the pinned release", async () => {
    const v = JSON.parse(await cp.kubectlOk(["version", "-o", "json"])) as { serverVersion?: { gitVersion?: string } };
    expect(v.serverVersion?.gitVersion).toMatch(/^v1\.34\.\d+$/);
  });

  it("answers `kubectl auth can-i` exactly as deploy/rbac.yaml grants, for the controller and the agent", async () => {
    const grants = grantsFromRbacYaml();
    for (const sa of [CONTROLLER_SA, AGENT_SA]) {
      const user = `system:serviceaccount:${SYSTEM_NAMESPACE}:${sa}`;
      const granted = grants.get(user) ?? [];
      expect(granted.length, `${sa} has rules in deploy/rbac.yaml`).toBeGreaterThan(0);
      // Every verb of every resource the role names: yes exactly when the file grants it.
      const resources = [...new Set(granted.map((g) => `${g.resource}@${g.namespace ?? ""}`))];
      for (const key of resources) {
        const [resource = "", namespace] = key.split("@");
        for (const verb of VERBS) {
          const want = granted.some((g) => g.resource === resource && (g.namespace ?? "") === (namespace ?? "") && g.verb === verb);
          expect(await canI(user, verb, resource, namespace || undefined), `${sa}: ${verb} ${resource}${namespace ? ` in ${namespace}` : ""}`).toBe(want);
        }
      }
      // And nothing it was never given.
      for (const [verb, resource] of [["get", "secrets"], ["list", "secrets"], ["create", "pods"], ["delete", "nodes"], ["update", "clusternetworks.switchyard.dev"], ["create", "clusterroles.rbac.authorization.k8s.io"]] as const) {
        expect(await canI(user, verb, resource), `${sa}: ${verb} ${resource}`).toBe(false);
      }
    }
    // The controller clears a consumed migration control with a patch of the ClusterNetwork itself.
    expect(await canI(`system:serviceaccount:${SYSTEM_NAMESPACE}:${CONTROLLER_SA}`, "patch", "clusternetworks.switchyard.dev")).toBe(true);
  }, 120_000);

  it("scopes the admission module's role to its own store, not every verb on every resource", async () => {
    const user = `system:serviceaccount:${WEBHOOK_NAMESPACE}:${WEBHOOK_SA}`;
    for (const [verb, resource] of [["get", "secrets"], ["list", "pods"], ["patch", "clusternetworks.switchyard.dev"], ["delete", "nodes"], ["create", "clusterrolebindings.rbac.authorization.k8s.io"]] as const) {
      expect(await canI(user, verb, resource), `${WEBHOOK_SA}: ${verb} ${resource}`).toBe(false);
    }
    expect(await canI(user, "get", "peprstores.pepr.dev", WEBHOOK_NAMESPACE)).toBe(true);
  }, 60_000);

  describe("every CEL rule of the ClusterNetwork CRD refuses its case, with the webhook out of the way", () => {
    beforeAll(async () => {
      await cp.installation.stopWebhook();
    }, 30_000);
    afterAll(async () => {
      await cp.installation.startWebhook();
    }, 60_000);

    const crdRules = readFileSync(packagePath("crds", "clusternetworks.switchyard.dev.yaml"), "utf8").match(/^\s*- rule: /gm)?.length ?? 0;
    const bgp = { asNumber: 64512, topology: "full-mesh" };
    const cases: { rule: string; spec: Record<string, unknown>; path: string; message: string }[] = [
      { rule: "route-reflectors needs routeReflectors", spec: { mode: "bgp", bgp: { ...bgp, topology: "route-reflectors" } }, path: "spec.bgp.routeReflectors", message: "routeReflectors is required when topology is route-reflectors" },
      { rule: "routeReflectors only with route-reflectors", spec: { mode: "bgp", bgp: { ...bgp, routeReflectors: { nodeSelector: { matchLabels: { rr: "true" } } } } }, path: "spec.bgp.routeReflectors", message: "routeReflectors is only valid when topology is route-reflectors" },
      { rule: "tor needs peers", spec: { mode: "bgp", bgp: { ...bgp, topology: "tor" } }, path: "spec.bgp.peers", message: "peers must list at least one top-of-rack router when topology is tor" },
      { rule: "peers only with tor", spec: { mode: "bgp", bgp: { ...bgp, peers: [{ address: "192.168.10.1", asNumber: 65000 }] } }, path: "spec.bgp.peers", message: "peers is only valid when topology is tor" },
      { rule: "canary: exactly one of nodes or nodeSelector", spec: { migration: { canary: { nodes: 1, nodeSelector: { matchLabels: { a: "b" } } } } }, path: "spec.migration.canary", message: "set exactly one of nodes or nodeSelector" },
      { rule: "batchSize: a count or a percentage", spec: { migration: { batchSize: "0%" } }, path: "spec.migration.batchSize", message: "must be a whole number of nodes" },
      { rule: "mtu 0 or >= 576", spec: { mtu: 100 }, path: "spec.mtu", message: "mtu must be 0 (auto) or between 576 and 9000" },
      { rule: "bgp mode needs the bgp block", spec: { mode: "bgp" }, path: "spec.bgp", message: "bgp is required when mode is bgp" },
      { rule: "the bgp block only in bgp mode", spec: { bgp }, path: "spec.bgp", message: "bgp is only valid when mode is bgp" },
      { rule: "the vxlan block only in vxlan mode", spec: { mode: "host-gw", vxlan: { vni: 1 } }, path: "spec.vxlan", message: "vxlan is only valid when mode is vxlan" },
      { rule: "crossSubnet only for vxlan and ipip", spec: { mode: "host-gw", crossSubnet: true }, path: "spec.crossSubnet", message: "crossSubnet only applies to the vxlan and ipip modes" },
    ];

    it("has a case here for every rule in the CRD (11 on create, 2 on update)", () => {
      expect(cases.length + 2).toBe(crdRules);
    });

    it.each(cases)("$rule", async (c) => {
      const r = await create(clusterNetwork(`cel-${cases.indexOf(c)}`, c.spec));
      expect(r.ok, r.message).toBe(false);
      expect(r.message).toContain(`${c.path}: Invalid value`);
      expect(r.message).toContain(c.message);
    });

    it("podCIDRs and blockSize stay fixed once blocks are allocated (the two update rules)", async () => {
      expect((await create(clusterNetwork("cel-fixed", {}), { dryRun: false })).ok).toBe(true);
      await cp.kubectlOk(["patch", "clusternetwork", "cel-fixed", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { ipam: { allocatedBlocks: 2, freeBlocks: 254 } } })]);
      const block = await cp.kube.kubectl(["patch", "clusternetwork", "cel-fixed", "--type=merge", "-p", JSON.stringify({ spec: { blockSize: 25 } })]);
      expect(block.code).not.toBe(0);
      expect(block.stderr).toContain("spec.blockSize cannot change once node blocks are allocated");
      const pools = await cp.kube.kubectl(["patch", "clusternetwork", "cel-fixed", "--type=merge", "-p", JSON.stringify({ spec: { podCIDRs: ["10.245.0.0/16"] } })]);
      expect(pools.code).not.toBe(0);
      expect(pools.stderr).toContain("podCIDRs");
      // Appending a pool is allowed.
      await cp.kubectlOk(["patch", "clusternetwork", "cel-fixed", "--type=merge", "-p", JSON.stringify({ spec: { podCIDRs: ["10.244.0.0/16", "10.245.0.0/16"] } })]);
      await cp.kubectlOk(["delete", "clusternetwork", "cel-fixed"]);
    });

    it.each([
      { rule: "no host bits", cidrs: ["10.244.1.0/16"], message: "spec.podCIDRs: 10.244.1.0/16 has host bits set (did you mean 10.244.0.0/16?)" },
      { rule: "a prefix of /8 or longer", cidrs: ["10.0.0.0/7"], message: "spec.podCIDRs: a pool must have a prefix of /8 or longer" },
      { rule: "disjoint pools", cidrs: ["10.244.0.0/16", "10.244.128.0/17"], message: "spec.podCIDRs: pools must be disjoint" },
      { rule: "blocks fit in the pools", cidrs: ["10.244.0.0/26"], message: "spec.blockSize: /24 blocks do not fit in 10.244.0.0/26" },
    ])("the ValidatingAdmissionPolicy refuses pools: $rule", async (c) => {
      const r = await create(clusterNetwork("vap-pool", { podCIDRs: c.cidrs }));
      expect(r.ok, r.message).toBe(false);
      expect(r.message).toContain("switchyard-clusternetwork");
      expect(r.message).toContain(c.message);
    });

    it("the ValidatingAdmissionPolicy refuses a third mode while a migration runs", async () => {
      expect((await create(clusterNetwork("vap-mig", { mode: "bgp", bgp: { asNumber: 64512, topology: "full-mesh" } }), { dryRun: false })).ok).toBe(true);
      await cp.kubectlOk(["patch", "clusternetwork", "vap-mig", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { migration: { phase: "Rolling", from: "vxlan", to: "bgp" } } })]);
      const r = await cp.kube.kubectl(["patch", "clusternetwork", "vap-mig", "--type=merge", "-p", JSON.stringify({ spec: { mode: "host-gw", bgp: null } })]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("spec.mode: a migration from vxlan to bgp is in progress (phase Rolling)");
      // Back to the source mode (a rollback) is allowed.
      await cp.kubectlOk(["patch", "clusternetwork", "vap-mig", "--type=merge", "-p", JSON.stringify({ spec: { mode: "vxlan", bgp: null } })]);
      await cp.kubectlOk(["delete", "clusternetwork", "vap-mig"]);
    });
  });

  describe("install order: validation and `migrate abort` do not need the webhook", () => {
    it("calls the Pepr webhook over TLS for the rules only it knows, with the field path", async () => {
      const r = await create(clusterNetwork("webhook-only", { migration: { canary: { nodeSelector: { matchLabels: { "bad key!": "x" } } } } }));
      expect(r.ok, r.message).toBe(false);
      expect(r.message).toContain("admission webhook");
      expect(r.message).toContain("spec.migration.canary.nodeSelector.matchLabels.bad key!");
    });

    it("creates the first ClusterNetwork with no webhook reachable (a cluster with no pod network yet), still refusing a bad pool", async () => {
      await cp.installation.stopWebhook();
      try {
        // What only the webhook checks gets through (failurePolicy Ignore): the controller re-validates it.
        expect((await create(clusterNetwork("default", { migration: { canary: { nodeSelector: { matchLabels: { "bad key!": "x" } } } } }), { dryRun: false })).ok).toBe(true);
        // What the server checks itself does not.
        const bad = await create(clusterNetwork("bad-pool", { podCIDRs: ["10.244.1.0/16"] }));
        expect(bad.ok).toBe(false);
        expect(bad.message).toContain("has host bits set");
        // `migrate abort` is an annotation patch: the CLI gets it through as the admin.
        const abort = await runCommand(process.execPath, [switchyardBin(), "migrate", "abort"], { env: { KUBECONFIG: cp.kube.kubeconfigPath }, timeoutMs: 30_000 });
        expect(abort.code, abort.stderr).toBe(0);
        const cn = JSON.parse(await cp.kubectlOk(["get", "clusternetwork", "default", "-o", "json"])) as { metadata: { annotations?: Record<string, string> } };
        expect(cn.metadata.annotations?.["switchyard.dev/migration-control"]).toMatch(/abort/);
      } finally {
        await cp.installation.startWebhook();
      }
      // With the webhook back, an annotation change to that object (which it would refuse as a whole) passes.
      await cp.kubectlOk(["annotate", "clusternetwork", "default", "example.com/note=reviewed"]);
      const spec = await cp.kube.kubectl(["patch", "clusternetwork", "default", "--type=merge", "-p", JSON.stringify({ spec: { mtu: 1400 } })]);
      expect(spec.code).not.toBe(0);
      expect(spec.stderr).toContain("spec.migration.canary.nodeSelector");
      await cp.kubectlOk(["delete", "clusternetwork", "default"]);
    }, 90_000);
  });

  it("a migration control sent while the controller clears the last one lands (resourceVersion precondition, fresh read)", async () => {
    const path = "/apis/switchyard.dev/v1alpha1/clusternetworks/race";
    const admin = cp.kube.kubeconfigPath;
    await create({ ...clusterNetwork("race", {}), metadata: { name: "race", annotations: { [MIGRATION_CONTROL_ANNOTATION]: "resume" } } }, { dryRun: false });
    const read = async () => {
      const r = await apiRequest(admin, "GET", path);
      expect(r.status, r.body).toBe(200);
      return JSON.parse(r.body) as KObj;
    };
    const stale = await read();
    // The controller consumes the control it read: the map, now empty, is gone from the object.
    const cleared = await apiRequest(admin, "PATCH", path, clearControlPatch("resume"), "application/json-patch+json");
    expect(cleared.status, cleared.body).toBe(200);
    expect((await read()).metadata?.annotations).toBeUndefined();
    // What the CLI used to send, built from the read before the clear: refused, the pause lost.
    const unguarded = await apiRequest(admin, "PATCH", path, [controlOp(stale, "pause")], "application/json-patch+json");
    expect(unguarded.status).toBeGreaterThanOrEqual(400);
    // The guarded edit: refused on the stale read's resourceVersion, read again, sent again.
    let reads = 0;
    let patches = 0;
    const io: ObjectIO = {
      get: async () => (reads++ === 0 ? stale : read()),
      patch: async (ops) => {
        patches++;
        const r = await apiRequest(admin, "PATCH", path, ops, "application/json-patch+json");
        if (r.status !== 200) throw { status: r.status, data: JSON.parse(r.body) as unknown };
      },
    };
    await editObject<ClusterNetworkView>(io, (cn) => [controlOp(cn, "pause")]);
    expect(patches).toBe(2);
    expect((await read()).metadata?.annotations?.[MIGRATION_CONTROL_ANNOTATION]).toBe("pause");
    // A refusal that is not a race is not retried: the same object, refused the same way.
    patches = 0;
    await expect(editObject(io, () => [{ op: "remove", path: "/spec/no-such-field" }])).rejects.toMatchObject({ status: expect.any(Number) });
    expect(patches).toBe(1);
    await cp.kubectlOk(["delete", "clusternetwork", "race"]);
  }, 60_000);

  describe("an agent writes only its own node's objects", () => {
    // A real plan (the golden of the ipip cross-subnet case), renamed.
    const plan = (JSON.parse(readFileSync(packagePath("test", "golden", "plans", "ipip-cross-subnet.json"), "utf8")) as { plans: Record<string, Record<string, unknown>> }).plans["n1"];
    const nn = (name: string) => ({ apiVersion: "switchyard.dev/v1alpha1", kind: "NodeNetwork", metadata: { name }, spec: { ...plan, nodeName: name } });
    let own: string;
    let unbound: string;
    const kubectlAs = (kubeconfig: string, args: readonly string[]) => cp.kube.kubectl(args, { kubeconfig });
    /** What the agent sends: a merge patch of the status subresource, nothing read first. */
    const patchStatus = (kubeconfig: string, node: string) => apiRequest(kubeconfig, "PATCH", `/apis/switchyard.dev/v1alpha1/nodenetworks/${node}/status`, { status: { appliedHash: "h" } });

    beforeAll(async () => {
      for (const n of ["kn1", "kn2"]) {
        await cp.kubectlOk(["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: n, labels: { "kubernetes.io/hostname": n } } }));
        await cp.kubectlOk(["create", "-f", "-"], JSON.stringify(nn(n)));
      }
      own = await cp.kube.serviceAccountKubeconfig(SYSTEM_NAMESPACE, AGENT_SA, join(cp.runDir, "agent-kn1.kubeconfig"), { node: "kn1" });
      unbound = await cp.kube.serviceAccountKubeconfig(SYSTEM_NAMESPACE, AGENT_SA, join(cp.runDir, "agent-unbound.kubeconfig"));
    }, 60_000);

    it("may report its own NodeNetwork's status and its Node's underlay annotations", async () => {
      const r = await patchStatus(own, "kn1");
      expect(r.status, r.body).toBe(200);
      const a = await kubectlAs(own, ["annotate", "--overwrite", "node", "kn1", "switchyard.dev/underlay-cidr=192.168.10.0/24"]);
      expect(a.code, a.stderr).toBe(0);
    });

    it("may not write another node's NodeNetwork status", async () => {
      const r = await patchStatus(own, "kn2");
      expect(r.status).toBe(403);
      expect(r.body).toContain("may write only its own node's objects, not nodenetworks/status kn2");
    });

    it.each([
      { what: "another node's Node", args: ["annotate", "--overwrite", "node", "kn2", "switchyard.dev/underlay-cidr=192.168.10.0/24"], message: "may write only its own node's objects, not nodes kn2" },
      { what: "a label of its own Node", args: ["label", "node", "kn1", "evil=true"], message: "may change only the switchyard.dev/underlay-* annotations" },
      { what: "another annotation of its own Node", args: ["annotate", "node", "kn1", "example.com/x=y"], message: "may change only the switchyard.dev/underlay-* annotations" },
      { what: "its own NodeNetwork's spec (RBAC)", args: ["patch", "nodenetwork", "kn1", "--type=merge", "-p", JSON.stringify({ spec: { mtu: 1 } })], message: "forbidden" },
    ])("may not write $what", async (c) => {
      const r = await kubectlAs(own, c.args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(c.message);
    });

    it("may write nothing with a token bound to no node", async () => {
      const r = await patchStatus(unbound, "kn1");
      expect(r.status).toBe(403);
      expect(r.body).toContain("not bound to a node");
    });

    it("is stopped by the ValidatingAdmissionPolicy, not by RBAC: without its binding the same write passes", async () => {
      const binding = JSON.parse(await cp.kubectlOk(["get", "validatingadmissionpolicybinding", "switchyard-agent-own-node", "-o", "json"])) as { metadata: Record<string, unknown> };
      await cp.kubectlOk(["delete", "validatingadmissionpolicybinding", "switchyard-agent-own-node"]);
      try {
        // The removal takes effect once the server's policy informer has seen it.
        const r = await waitFor("the other node's status write to pass without the policy", async () => {
          const x = await patchStatus(own, "kn2");
          return x.status === 200 ? x : undefined;
        }, 10_000, 100);
        expect(r.status).toBe(200);
      } finally {
        binding.metadata = { name: "switchyard-agent-own-node" };
        await cp.kubectlOk(["create", "-f", "-"], JSON.stringify(binding));
      }
      await waitFor("the policy to be back", async () => ((await patchStatus(own, "kn2")).status === 403 ? true : undefined), 10_000, 100);
    }, 30_000);
  });
});
