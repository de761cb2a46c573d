// Durable IPAM on the real kube-apiserver and etcd, and the same scenario on the lab's emulator (which must
// know the new kind and refuse the same ClusterNetworks, through its admission hook): the controller (on
// the real server as its own service account, so deploy/rbac.yaml is proven sufficient) records every
// node's block in a BlockAffinity, and the blocks
// survive what used to move them: a deleted NodeNetwork comes back at once with its block; a ClusterNetwork
// deleted and re-created (also with the controller restarted in between) gives every node its block back;
// the ValidatingAdmissionPolicy switchyard-block-affinities refuses pools or a block size that would orphan
// a held block, on a create and on an update whose old object has no status. A deleted BlockAffinity of a
// live node waits on its finalizer; a deleted node's block is released.
//
// What neither runs: kube-controller-manager, so no garbage collector. Deleting a ClusterNetwork here
// leaves its NodeNetworks (their ownerReferences name it); the test deletes them itself, which is what the
// garbage collector would do. The Pepr webhook is not installed on the real server: every rule checked there
// is the server's own (CRD and ValidatingAdmissionPolicy).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/base/log";
import { waitFor } from "../../src/base/wait";
import { Controller } from "../../src/controller/controller";
import { KfcClient } from "../../src/kube/kfc-client";
import { installSwitchyard } from "../../lab/control-plane/install";
import { startKubeControlPlane } from "../../lab/control-plane/kubernetes";
import { startApiServer, type ApiServer } from "../../lab/apiserver";
import { clusterNetworkAdmission, recordedBlocksIn } from "../../lab/cluster/lab-cluster";
import { UNDERLAY_CIDR_ANNOTATION } from "../../src/api/annotations";
import { runCommand, type ExecResult } from "../../src/base/exec";
import { apiRequest, kubeBinaryDir, kubeUnavailable } from "../support/kube";

const unavailable = await kubeUnavailable();
if (unavailable) console.warn(unavailable);

/** What the scenario needs of a control plane: kubectl as its admin, the controller's kubeconfig, and an end. */
interface Plane {
  kubectl(args: readonly string[], opts?: { readonly stdin?: string }): Promise<ExecResult>;
  controllerKubeconfig(): Promise<string>;
  close(): Promise<void>;
}

async function realPlane(): Promise<Plane> {
  const bin = await kubeBinaryDir();
  if (bin instanceof Error) throw bin;
  const runDir = mkdtempSync(join(tmpdir(), "switchyard-ipam-"));
  const kube = await startKubeControlPlane({ runDir, binDir: bin });
  const installation = await installSwitchyard(kube, { namespaces: ["ipam"], webhook: false }).catch(async (e: unknown) => {
    await kube.stop();
    throw e;
  });
  return {
    kubectl: (args, opts) => kube.kubectl(args, opts),
    async controllerKubeconfig() {
      const kubeconfig = await installation.controllerKubeconfig();
      // A CRD just Established may still answer 429 "storage is (re)initializing" for a moment.
      for (const plural of ["clusternetworks", "nodenetworks", "blockaffinities"]) {
        await waitFor(`${plural} served`, async () => (await apiRequest(kubeconfig, "GET", `/apis/switchyard.dev/v1alpha1/${plural}`)).status === 200, 30_000, 200);
      }
      return kubeconfig;
    },
    async close() {
      await installation.close().catch(() => undefined);
      await kube.stop();
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** The lab's emulator with the lab's admission hook, which reads the BlockAffinities in its store. */
async function emulatorPlane(): Promise<Plane> {
  const bin = await kubeBinaryDir();
  if (bin instanceof Error) throw bin;
  // The hook runs only on requests, once the server (and so `server`) exists.
  const server: ApiServer = await startApiServer({ validate: clusterNetworkAdmission(() => recordedBlocksIn(server)) });
  const kubeconfig = server.kubeconfigPath;
  return {
    kubectl: (args, opts) => runCommand(join(bin, "kubectl"), ["--kubeconfig", kubeconfig, ...args], { timeoutMs: 30_000, ...(opts?.stdin !== undefined ? { stdin: opts.stdin } : {}) }),
    controllerKubeconfig: async () => kubeconfig,
    close: async () => server.close(),
  };
}

let plane: Plane;
let controller: Controller | undefined;
const previousKubeconfig = process.env["KUBECONFIG"];

async function kubectlOk(args: readonly string[], stdin?: string): Promise<string> {
  const r = await plane.kubectl(args, stdin !== undefined ? { stdin } : {});
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** A ready Node as its agent leaves it: an InternalIP and the underlay annotation. */
async function addNode(name: string, ip: string): Promise<void> {
  await kubectlOk(["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name, annotations: { [UNDERLAY_CIDR_ANNOTATION]: "192.168.10.0/24" } } }));
  await kubectlOk(["patch", "node", name, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { addresses: [{ type: "InternalIP", address: ip }] } })]);
}

const clusterNetwork = (spec: Record<string, unknown> = {}, name = "default") =>
  JSON.stringify({ apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name }, spec: { podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "vxlan", ...spec } });

type Item = { metadata: { name: string; uid: string; deletionTimestamp?: string; finalizers?: string[]; ownerReferences?: { uid: string }[] }; spec: { block?: string; cidr?: string } };

async function items(resource: string): Promise<Item[]> {
  return (JSON.parse(await kubectlOk(["get", resource, "-o", "json"])) as { items: Item[] }).items;
}
async function planBlocks(): Promise<Record<string, string | undefined>> {
  return Object.fromEntries((await items("nodenetworks")).map((o) => [o.metadata.name, o.spec.block]));
}
async function heldBlocks(): Promise<Record<string, string | undefined>> {
  return Object.fromEntries((await items("blockaffinities")).map((o) => [o.metadata.name, o.spec.cidr]));
}

/** Polls (every 200 ms, up to `ms`) until `check` passes; rethrows its last failure on timeout. */
async function eventually(what: string, check: () => Promise<void>, ms = 20_000): Promise<void> {
  let last: unknown;
  await waitFor(
    what,
    async () => {
      try {
        await check();
        return true;
      } catch (e) {
        last = e;
        return false;
      }
    },
    ms,
    200,
  ).catch((e: unknown) => {
    throw last ?? e;
  });
}

/** The controller as its service account, watching (no periodic relist within the test: what it does comes from watch events). */
async function startController(): Promise<void> {
  process.env["KUBECONFIG"] = await plane.controllerKubeconfig();
  controller = new Controller({ client: new KfcClient(), leaderElection: false, minIntervalMs: 50, resyncIntervalMs: 600_000, log: createLogger("controller", "silent") });
  await controller.start();
}
async function stopController(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}

describe.skipIf(unavailable !== undefined).each([
  { name: "the real kube-apiserver", start: realPlane },
  { name: "the lab's emulator", start: emulatorPlane },
])("durable IPAM on $name", ({ start }) => {
  beforeAll(async () => {
    plane = await start();
    await addNode("n1", "192.168.10.11");
    await addNode("n2", "192.168.10.12");
    await kubectlOk(["create", "-f", "-"], clusterNetwork());
    await startController();
    await eventually("the first plans and their blocks", async () => {
      expect(await planBlocks()).toEqual({ n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
      expect(await heldBlocks()).toEqual({ n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
    });
  }, 180_000);

  afterAll(async () => {
    await stopController();
    await plane?.close();
    if (previousKubeconfig === undefined) delete process.env["KUBECONFIG"];
    else process.env["KUBECONFIG"] = previousKubeconfig;
  }, 60_000);

  it("records each block in a BlockAffinity with the finalizer and no owner", async () => {
    for (const a of await items("blockaffinities")) {
      expect(a.metadata.finalizers).toEqual(["switchyard.dev/block-in-use"]);
      expect(a.metadata.ownerReferences).toBeUndefined();
    }
  });

  it("republishes a deleted NodeNetwork at once (from its DELETED event; no relist runs in this test)", async () => {
    await kubectlOk(["delete", "nodenetwork", "n2"]);
    await eventually("n2's plan back", async () => {
      expect(await planBlocks()).toEqual({ n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
    });
  }, 60_000);

  it("republishes a deleted NodeNetwork with its block although a new node sorts before it (both seen by a controller starting)", async () => {
    // With the controller down both changes meet in its first pass: the BlockAffinities are all it has.
    await stopController();
    await kubectlOk(["delete", "nodenetwork", "n1"]);
    await addNode("n0", "192.168.10.10");
    await startController();
    await eventually("n1's plan back, n0 on a new block", async () => {
      expect(await planBlocks()).toEqual({ n0: "10.244.2.0/24", n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
    });
  }, 60_000);

  it("gives every node its block back after the ClusterNetwork is deleted and re-created, with the controller restarted in between", async () => {
    await stopController();
    const oldUid = JSON.parse(await kubectlOk(["get", "clusternetwork", "default", "-o", "json"])) as { metadata: { uid: string } };
    await kubectlOk(["delete", "clusternetwork", "default"]);
    // The garbage collector's part (no kube-controller-manager here): the NodeNetworks go with their owner.
    await kubectlOk(["delete", "nodenetworks", "--all"]);
    expect(await heldBlocks()).toEqual({ n0: "10.244.2.0/24", n1: "10.244.0.0/24", n2: "10.244.1.0/24" });

    // Pools or a block size that would orphan a held block are refused on create (a re-creation)...
    const otherPools = await plane.kubectl(["create", "-f", "-"], { stdin: clusterNetwork({ podCIDRs: ["10.250.0.0/16"] }) });
    expect(otherPools.code).not.toBe(0);
    expect(otherPools.stderr).toContain("spec.podCIDRs: must still contain");
    expect(otherPools.stderr).toContain("10.244.");
    // ...and on an update whose old object has no status (no controller has written one).
    await kubectlOk(["create", "-f", "-"], clusterNetwork());
    const status = JSON.parse(await kubectlOk(["get", "clusternetwork", "default", "-o", "json"])) as { metadata: { uid: string }; status?: unknown };
    expect(status.status).toBeUndefined();
    expect(status.metadata.uid).not.toBe(oldUid.metadata.uid);
    const resize = await plane.kubectl(["patch", "clusternetwork", "default", "--type=merge", "-p", JSON.stringify({ spec: { blockSize: 26 } })]);
    expect(resize.code).not.toBe(0);
    expect(resize.stderr).toContain("spec.blockSize: cannot be 26");
    // Appending a pool keeps every block: allowed.
    await kubectlOk(["patch", "clusternetwork", "default", "--type=merge", "-p", JSON.stringify({ spec: { podCIDRs: ["10.244.0.0/16", "10.245.0.0/16"] } })]);

    // A node that joins while the ClusterNetwork was away sorts first: it must not take n0's block.
    await addNode("m1", "192.168.10.21");
    await startController();
    await eventually("every node on its old block, m1 on a new one, owned by the new ClusterNetwork", async () => {
      expect(await planBlocks()).toEqual({ m1: "10.244.3.0/24", n0: "10.244.2.0/24", n1: "10.244.0.0/24", n2: "10.244.1.0/24" });
      expect((await items("nodenetworks")).every((o) => o.metadata.ownerReferences?.[0]?.uid === status.metadata.uid)).toBe(true);
    });
  }, 90_000);

  it("keeps a live node's BlockAffinity while its deletion waits on the finalizer, and releases a deleted node's block", async () => {
    await kubectlOk(["delete", "blockaffinity", "n1", "--wait=false"]);
    await kubectlOk(["delete", "nodenetwork", "n1"]);
    await eventually("n1 republished on its block, its record terminating", async () => {
      expect((await planBlocks())["n1"]).toBe("10.244.0.0/24");
      const a = (await items("blockaffinities")).find((o) => o.metadata.name === "n1");
      expect(a?.metadata.deletionTimestamp).toBeDefined();
    });
    await kubectlOk(["delete", "node", "n2"]);
    await eventually("n2's plan and block released", async () => {
      expect(Object.keys(await planBlocks()).sort()).toEqual(["m1", "n0", "n1"]);
      expect(await heldBlocks()).toEqual({ m1: "10.244.3.0/24", n0: "10.244.2.0/24", n1: "10.244.0.0/24" });
    });
    await addNode("n5", "192.168.10.15");
    await eventually("the released block goes to the next node", async () => {
      expect((await planBlocks())["n5"]).toBe("10.244.1.0/24");
    });
  }, 60_000);
});
