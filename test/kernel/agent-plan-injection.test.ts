// Kernel test: a crafted NodeNetwork plan handed to the real agent (NodeAgent, the lab's API server emulator
// with CRD validation off, as a server that does not enforce the schema would be) leaves the kernel as it
// was. The plan's pod interface name closes its nft string and opens a base chain on the input hook, and a
// BGP peer's name opens a BIRD protocol: the agent refuses the plan whole, reports Applied=False
// (InvalidPlan) with both field paths, and the previous plan's rules stay in force, byte for byte. The
// "node" is a network namespace: prefix syh6-.
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../lab/apiserver";
import { detectBird } from "../../src/agent/bird";
import { NodeAgent } from "../../src/agent/node-agent";
import { runCommand, runOk } from "../../src/base/exec";
import { createLogger } from "../../src/base/log";
import { waitFor } from "../../src/base/wait";
import { BIRD_PROTOCOL } from "../fixtures/plan-injections";
import { minimalPlan } from "../support/node-plan";

const NETNS = "syh6-n1";
const NODE = "n1";
const NODE_IP = "192.168.77.11";
const V = "switchyard.dev/v1alpha1";
const POD_A = "sy000000000001";
const POD_B = "sy000000000002";

/**
 * What a pod interface name must carry to add a base chain to the table it is rendered into: close the
 * element's string, the element block and the set, declare the chain, and open a set that takes the rest
 * of the original element list.
 */
const INJECTED_INTERFACE = ['sy0"', "}", "}", "chain evil {", "type filter hook input priority -300; policy drop;", "}", "set evil_pad {", "type ifname", "elements = {", '"sy1'].join("\n");

function planSpec(planHash: string, podBInterface: string, bgp?: Record<string, unknown>): Record<string, unknown> {
  const { routing, policy } = minimalPlan(NODE, NODE_IP);
  return {
    nodeName: NODE,
    clusterNetwork: "default",
    generation: 1,
    planHash,
    nodeIP: NODE_IP,
    mode: "host-gw",
    mtu: 1500,
    routing: { ...routing, underlayCIDR: "192.168.77.0/24", ...(bgp ? { bgp } : {}) },
    policy: {
      ...policy,
      pods: [
        { namespace: "x", name: "a", ip: "10.244.1.2", interface: POD_A, ingress: "c1" },
        { namespace: "x", name: "b", ip: "10.244.1.3", interface: podBInterface },
      ],
      chains: [{ id: "c1", direction: "ingress", policies: ["x/deny-all"], rules: [] }],
    },
  };
}

const CRAFTED_BGP = {
  asNumber: 64512,
  routerId: NODE_IP,
  originate: ["10.244.1.0/24"],
  kernelMetric: 100,
  peers: [{ name: BIRD_PROTOCOL, address: "192.168.77.1", asNumber: 65000, description: "top-of-rack" }],
  underlayInterface: "eth*",
};

/** The whole ruleset of the namespace, without handles (which nft renumbers on every listing). */
async function ruleset(): Promise<string> {
  return JSON.stringify(JSON.parse(await runOk("nft", ["-j", "list", "ruleset"], { netns: NETNS })), (k, v: unknown) => (k === "handle" || k === "metainfo" ? undefined : v));
}

async function baseChainHooks(): Promise<string[]> {
  const list = JSON.parse(await runOk("nft", ["-j", "list", "chains"], { netns: NETNS })) as { nftables: { chain?: { table: string; name: string; hook?: string } }[] };
  return list.nftables.flatMap((o) => (o.chain?.hook ? [`${o.chain.table}/${o.chain.name}:${o.chain.hook}`] : [])).sort();
}

type NN = { spec?: { planHash?: string }; status?: { appliedHash?: string; conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[] } };

describe("a crafted plan handed to the agent", () => {
  let api: ApiServer;
  let agent: NodeAgent | undefined;
  let runDir: string;
  const previousKubeconfig = process.env["KUBECONFIG"];
  const nn = (): NN => (api.store.get(V, "NodeNetwork", NODE) ?? {}) as NN;
  const applied = (c: NN) => c.status?.conditions?.find((x) => x.type === "Applied");

  beforeAll(async () => {
    await runCommand("ip", ["netns", "del", NETNS]);
    await runOk("ip", ["netns", "add", NETNS]);
    await runOk("ip", ["link", "set", "lo", "up"], { netns: NETNS });
    // veth pairs inside the namespace (this kernel may lack the dummy module); nothing links to the root namespace.
    await runOk("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"], { netns: NETNS });
    await runOk("ip", ["addr", "add", `${NODE_IP}/24`, "dev", "eth0"], { netns: NETNS });
    await runOk("ip", ["link", "set", "eth0", "up"], { netns: NETNS });
    for (const [i, pod] of [POD_A, POD_B].entries()) await runOk("ip", ["link", "add", pod, "type", "veth", "peer", "name", `pod${i}-peer`], { netns: NETNS });
    runDir = mkdtempSync(join(tmpdir(), "syh6-"));
    // No CRD validation: the agent must not rely on the API server to refuse a plan.
    api = await startApiServer({ crdValidation: false });
    process.env["KUBECONFIG"] = api.kubeconfigPath;
    await api.store.create({ apiVersion: "v1", kind: "Node", metadata: { name: NODE } });
    await api.store.patchStatus("v1", "Node", NODE, undefined, { addresses: [{ type: "InternalIP", address: NODE_IP }] });
    await api.store.create({ apiVersion: V, kind: "NodeNetwork", metadata: { name: NODE }, spec: planSpec("good1", POD_B) });
    // No repair round during the test: what the kernel holds afterwards is what the apply of the crafted plan left.
    agent = new NodeAgent({ node: NODE, netns: NETNS, runDir, repairIntervalMs: 600_000, log: createLogger("agent/syh6", "silent") });
    await agent.start();
  });

  afterAll(async () => {
    // teardown stops a BIRD by its pid file, should one have been started, and removes the agent's tables.
    await agent?.teardown();
    await api?.close();
    if (previousKubeconfig === undefined) delete process.env["KUBECONFIG"];
    else process.env["KUBECONFIG"] = previousKubeconfig;
    await runCommand("ip", ["netns", "del", NETNS]);
    if (runDir) rmSync(runDir, { recursive: true, force: true });
  });

  it("is refused whole: no new table, chain or base hook; BIRD not configured; the previous rules stay in force", async () => {
    await waitFor("the valid plan to be applied", () => (nn().status?.appliedHash === "good1" && applied(nn())?.status === "True" ? true : undefined), 20_000);
    const before = await ruleset();
    expect(await baseChainHooks()).toEqual(["switchyard/forward:forward", "switchyard_nat/postrouting:postrouting"]);

    const crafted = await api.store.apply({ apiVersion: V, kind: "NodeNetwork", metadata: { name: NODE }, spec: planSpec("evil1", INJECTED_INTERFACE, CRAFTED_BGP) }, { force: true });
    const generation = (crafted.metadata as { generation?: number }).generation;
    // The agent has handled the crafted plan once it reports on its generation (whatever it concluded).
    const handled = await waitFor("the agent to report on the crafted plan", () => {
      const c = applied(nn());
      return c?.observedGeneration === generation ? c : undefined;
    }, 20_000);

    // Nothing of it reached the kernel or BIRD: the ruleset is the one the valid plan put there.
    expect(await baseChainHooks()).toEqual(["switchyard/forward:forward", "switchyard_nat/postrouting:postrouting"]);
    expect(await ruleset()).toBe(before);
    const set = await runOk("nft", ["list", "set", "inet", "switchyard", "pod_interfaces"], { netns: NETNS });
    expect(set).toContain(`"${POD_A}"`);
    expect(set).toContain(`"${POD_B}"`);
    expect(existsSync(join(runDir, "bird", "bird.conf"))).toBe(false);
    expect(await detectBird({ netns: NETNS, runDir: join(runDir, "bird") })).toBeUndefined();

    // And the node says why, with both paths; the previous plan is still the applied one.
    expect(handled).toMatchObject({ status: "False", reason: "InvalidPlan" });
    expect(handled.message).toContain("plan evil1 refused, the previous plan stays in force");
    expect(handled.message).toContain("spec.policy.pods[1].interface: must be an interface name");
    expect(handled.message).toContain("spec.routing.bgp.peers[0].name: must be a BIRD symbol");
    expect(nn().status?.appliedHash).toBe("good1");
    expect(agent!.readiness()).toEqual({ ok: false, reason: "plan evil1 not applied yet" });
  }, 60_000);
});
