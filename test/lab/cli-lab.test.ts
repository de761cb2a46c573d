// The `switchyard lab` commands as a user runs them, each a separate process: `lab up` returns with a
// Ready cluster and its KUBECONFIG, `lab status --json` and `lab probe` read it from other processes,
// kubectl shows the CRD printer columns, and `lab down` removes everything, also after the supervisor was
// SIGKILLed. Also checks that every real-cluster manifest (deploy/, hack/kind/) parses and grants only
// what the code uses. Namespaces: prefix sylc2-.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { labCliDir, type LabProbeReply, type LabStatus } from "../../src/cli/lab";
import { readProcessStartTime } from "../../lab/processes";
import { labRunDir, listLabNamespaces } from "../../lab/topology";

const PREFIX = "sylc2-";
const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "switchyard.mjs");
const ENV = { ...process.env, PATH: `/usr/sbin:/sbin:${process.env["PATH"] ?? ""}` };

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { env: ENV, timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
const cli = (...args: string[]): Promise<Run> => run(process.execPath, [BIN, ...args]);

afterAll(async () => {
  await cli("lab", "down", "--prefix", PREFIX);
}, 60_000);

/** Every process the lab recorded (pod agents; node agents and the controller when they are child processes). */
async function recordedPids(): Promise<number[]> {
  const dir = join(labRunDir(PREFIX), "pids");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => (JSON.parse(readFileSync(join(dir, f), "utf8")) as { pid: number }).pid);
}

async function expectNothingLeft(pids: readonly number[]): Promise<void> {
  expect(await listLabNamespaces(PREFIX)).toEqual([]);
  expect(existsSync(labRunDir(PREFIX))).toBe(false);
  expect(existsSync(labCliDir(PREFIX))).toBe(false);
  for (const pid of pids) expect(await readProcessStartTime(pid), `pid ${pid}`).toBeUndefined();
}

describe("switchyard lab", () => {
  it("up -> status --json -> probe -> kubectl get clusternetworks -> down", async () => {
    const t0 = Date.now();
    const up = await cli("lab", "up", "--prefix", PREFIX);
    const upMs = Date.now() - t0;
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(up.stdout)?.[1];
    expect(kubeconfig).toBeDefined();
    expect(up.stdout).toMatch(/nodes realized 4\/4 \(Ready\)/);
    console.log(`lab up: ${upMs} ms`);

    const again = await cli("lab", "up", "--prefix", PREFIX);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already up/);

    const st = await cli("lab", "status", "--prefix", PREFIX, "--json");
    expect(st.code, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout) as LabStatus;
    expect(status.up).toBe(true);
    expect(status.clusterNetwork?.phase).toBe("Ready");
    expect(status.nodes.map((n) => [n.name, n.subnet, n.mode, n.applied])).toEqual([
      ["n1", "a", "vxlan", true],
      ["n2", "a", "vxlan", true],
      ["n3", "b", "vxlan", true],
      ["n4", "b", "vxlan", true],
    ]);
    expect(new Set(status.nodes.map((n) => n.block)).size).toBe(4);
    // Each node's network namespace and where its agent installed switchyard-cni and the conflist.
    for (const n of status.nodes) {
      expect(n.netns).toBe(`${PREFIX}${n.name}`);
      expect(existsSync(join(n.cniBinDir, "switchyard-cni")), `${n.name}: ${n.cniBinDir}`).toBe(true);
      expect(existsSync(join(n.cniConfDir, "10-switchyard.conflist")), `${n.name}: ${n.cniConfDir}`).toBe(true);
    }
    expect(status.pods).toHaveLength(8);
    for (const p of status.pods) {
      expect(p.netns).toBe(`${PREFIX}p-${p.namespace}-${p.name}`);
      expect(p.ip).toMatch(/^10\.244\./);
      expect(p.phase).toBe("Running");
    }
    const probe = await cli("lab", "probe", "--prefix", PREFIX, "--port", "80", "--protocol", "tcp");
    expect(probe.code, probe.stderr).toBe(0);
    expect(probe.stdout).toMatch(/x\/n1-p1\s+\.{8}\n/);
    expect(probe.stdout).toMatch(/64\/64 connected/);
    // A port nobody serves: refused everywhere (the matrix is real, not assumed).
    const closed = await cli("lab", "probe", "--prefix", PREFIX, "--port", "81", "--json", "--timeout", "300");
    expect((JSON.parse(closed.stdout) as LabProbeReply).matrix.flat().some((ok) => ok)).toBe(false);

    const kubectl = await run("kubectl", ["--kubeconfig", kubeconfig ?? "", "get", "clusternetworks"]);
    expect(kubectl.code, kubectl.stderr).toBe(0);
    expect(kubectl.stdout).toMatch(/NAME\s+MODE\s+ACTIVE\s+PHASE\s+REALIZED\s+DESIRED\s+AGE/);
    expect(kubectl.stdout).toMatch(/default\s+vxlan\s+vxlan\s+Ready\s+4\s+4/);
    const nns = await run("kubectl", ["--kubeconfig", kubeconfig ?? "", "get", "nodenetworks", "-o", "name"]);
    expect(nns.stdout.trim().split("\n")).toHaveLength(4);
    // kubectl writes go through the admission rules: a bad ClusterNetwork is denied with the rule's message.
    const bad = join(labCliDir(PREFIX), "bad.yaml");
    writeFileSync(bad, "apiVersion: switchyard.dev/v1alpha1\nkind: ClusterNetwork\nmetadata: {name: default}\nspec: {podCIDRs: [10.244.0.0/16], blockSize: 24, mode: vxlan, bgp: {asNumber: 64512}}\n");
    const denied = await run("kubectl", ["--kubeconfig", kubeconfig ?? "", "apply", "--server-side", "-f", bad]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/spec\.bgp: only valid when spec\.mode is bgp/);

    const pids = [...(await recordedPids()), status.supervisor?.pid ?? -1];
    const down = await cli("lab", "down", "--prefix", PREFIX);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/supervisor stopped/);
    await expectNothingLeft(pids);
  }, 180_000);

  it("down after the supervisor was SIGKILLed still removes every namespace and process (agents as child processes)", async () => {
    const up = await cli("lab", "up", "--prefix", PREFIX, "--nodes", "3", "--subnets", "2", "--pods-per-node", "1", "--processes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const status = JSON.parse((await cli("lab", "status", "--prefix", PREFIX, "--json")).stdout) as LabStatus;
    const supervisor = status.supervisor?.pid ?? -1;
    const pids = [...(await recordedPids()), supervisor];
    // 3 pod agents, 3 node agents and the controller have pid files; the supervisor has its own record.
    expect(pids.length).toBe(8);
    process.kill(supervisor, "SIGKILL");
    const after = JSON.parse((await cli("lab", "status", "--prefix", PREFIX, "--json")).stdout) as LabStatus;
    expect(after.up).toBe(false);
    expect(after.namespaces.length).toBeGreaterThan(0);

    const down = await cli("lab", "down", "--prefix", PREFIX);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/leftover namespaces/);
    await expectNothingLeft(pids);
  }, 180_000);
});

describe("real-cluster manifests", () => {
  type Doc = { kind?: string; metadata?: { name?: string; namespace?: string }; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[]; spec?: Record<string, unknown> };
  const load = (file: string): Doc[] =>
    parseAllDocuments(readFileSync(file, "utf8")).map((d) => {
      expect(d.errors, file).toEqual([]);
      return d.toJS() as Doc;
    });

  it("every YAML in deploy/ and hack/kind/ parses", () => {
    const files = [...readdirSync(join(ROOT, "deploy")).map((f) => join(ROOT, "deploy", f)), ...readdirSync(join(ROOT, "hack", "kind")).map((f) => join(ROOT, "hack", "kind", f))].filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) expect(load(f).length, f).toBeGreaterThan(0);
  });

  it("deploys the agent as a privileged host-network DaemonSet and the controller as a Deployment", () => {
    const [ds] = load(join(ROOT, "deploy", "agent.yaml"));
    expect(ds?.kind).toBe("DaemonSet");
    const podSpec = (ds?.spec?.["template"] as { spec: { hostNetwork: boolean; containers: { args: string[]; securityContext: { privileged: boolean; capabilities: { add: string[] } } }[] } }).spec;
    expect(podSpec.hostNetwork).toBe(true);
    expect(podSpec.containers[0]?.args.slice(0, 3)).toEqual(["agent", "--node", "$(NODE_NAME)"]);
    expect(podSpec.containers[0]?.securityContext.privileged).toBe(true);
    expect(podSpec.containers[0]?.securityContext.capabilities.add).toContain("NET_ADMIN");
    const [dep] = load(join(ROOT, "deploy", "controller.yaml"));
    expect(dep?.kind).toBe("Deployment");
    expect((dep?.spec?.["template"] as { spec: { containers: { args: string[] }[] } }).spec.containers[0]?.args[0]).toBe("controller");
  });

  it("grants least privilege: no wildcards, writes only where the code writes", () => {
    const docs = load(join(ROOT, "deploy", "rbac.yaml"));
    const rules = (name: string): string[] =>
      (docs.find((d) => (d.kind === "ClusterRole" || d.kind === "Role") && d.metadata?.name === name)?.rules ?? []).flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${r.apiGroups[0] ?? ""}/${res}:${v}`)));
    for (const d of docs) for (const r of d.rules ?? []) expect([...r.verbs, ...r.resources, ...r.apiGroups]).not.toContain("*");
    const controller = rules("switchyard-controller");
    expect(controller).toEqual(expect.arrayContaining(["/nodes:watch", "/pods:list", "networking.k8s.io/networkpolicies:watch", "switchyard.dev/clusternetworks:watch", "switchyard.dev/nodenetworks:create", "switchyard.dev/nodenetworks:patch", "switchyard.dev/nodenetworks:delete", "switchyard.dev/clusternetworks/status:patch", "/events:create"]));
    // Consuming a migration control removes its annotation (a guarded JSON patch); the real server refused
    // it without this verb (test/kube/control-plane.test.ts asks it with kubectl auth can-i).
    expect(controller).toContain("switchyard.dev/clusternetworks:patch");
    expect(controller).not.toContain("switchyard.dev/clusternetworks:update");
    expect(rules("switchyard-controller-leader-election")).toEqual(["coordination.k8s.io/leases:get", "coordination.k8s.io/leases:create", "coordination.k8s.io/leases:patch"]);
    expect(rules("switchyard-agent").sort()).toEqual(["/nodes:get", "/nodes:patch", "switchyard.dev/nodenetworks/status:patch", "switchyard.dev/nodenetworks:get", "switchyard.dev/nodenetworks:list", "switchyard.dev/nodenetworks:watch"]);
  });
});
