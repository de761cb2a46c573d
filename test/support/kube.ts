// The real control plane for tests: kube-apiserver and etcd from hack/build-kube.sh (or KUBEBUILDER_ASSETS),
// with Switchyard installed as a user installs it. When the binaries cannot be had (no Go, no
// KUBEBUILDER_ASSETS), `kubeUnavailable` says why and the tests that need them skip, saying so.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { installSwitchyard, type Installation } from "../../lab/control-plane/install";
import { kubeBinaries, startKubeControlPlane, type KubeControlPlane } from "../../lab/control-plane/kubernetes";
import type { ExecResult } from "../../src/base/exec";

let binaries: Promise<string | Error> | undefined;

/** The binaries' directory, or an Error saying what is missing (built once per test process). */
export function kubeBinaryDir(): Promise<string | Error> {
  binaries ??= kubeBinaries().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  return binaries;
}

/** Why the real control plane tests cannot run here, or undefined when they can. */
export async function kubeUnavailable(): Promise<string | undefined> {
  const d = await kubeBinaryDir();
  return d instanceof Error ? `SKIPPED: these tests need kube-apiserver, etcd and kubectl: ${d.message}` : undefined;
}

/**
 * Why real nodes (lab/nodes) cannot run here, or undefined when they can: the node binaries
 * (hack/build-kube.sh --nodes), containerd, runc and ctr, and Debian's loopback and portmap CNI plugins.
 */
export async function realNodesUnavailable(): Promise<string | undefined> {
  const d = await kubeBinaries(undefined, { nodes: true }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  if (d instanceof Error) return `SKIPPED: real nodes need kubelet, kube-controller-manager and kube-scheduler: ${d.message}`;
  const missing = ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/loopback", "/usr/lib/cni/portmap"].filter((p) => !existsSync(p));
  return missing.length > 0 ? `SKIPPED: real nodes need ${missing.join(", ")} (Debian: containerd, runc, containernetworking-plugins; hack/ensure-deps.sh installs them)` : undefined;
}

export interface TestControlPlane {
  readonly kube: KubeControlPlane;
  readonly installation: Installation;
  readonly runDir: string;
  /** kubectl as the admin; rejects on a non-zero exit with kubectl's stderr. */
  kubectlOk(args: readonly string[], stdin?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startTestControlPlane(name: string, namespaces: readonly string[] = []): Promise<TestControlPlane> {
  const bin = await kubeBinaryDir();
  if (bin instanceof Error) throw bin;
  const runDir = mkdtempSync(join(tmpdir(), `switchyard-${name}-`));
  const kube = await startKubeControlPlane({ runDir, binDir: bin });
  let installation: Installation;
  try {
    installation = await installSwitchyard(kube, { namespaces });
  } catch (e) {
    await kube.stop();
    throw e;
  }
  return {
    kube,
    installation,
    runDir,
    async kubectlOk(args, stdin) {
      const r: ExecResult = await kube.kubectl(args, stdin !== undefined ? { stdin } : {});
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
      return r.stdout;
    },
    async close() {
      await installation.close().catch(() => undefined);
      await kube.stop();
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** One request with a kubeconfig's identity (what a daemon sends, without kubectl's extra reads). */
export async function apiRequest(kubeconfigPath: string, method: string, path: string, body?: unknown, contentType = "application/merge-patch+json"): Promise<{ status: number; body: string }> {
  const cfg = parse(readFileSync(kubeconfigPath, "utf8")) as { clusters: { cluster: { server: string; "certificate-authority-data": string } }[]; users: { user: { token: string } }[] };
  const cluster = cfg.clusters[0]?.cluster;
  const token = cfg.users[0]?.user.token;
  if (!cluster || !token) throw new Error(`${kubeconfigPath}: no cluster or token`);
  const url = new URL(path, cluster.server);
  const ca = Buffer.from(cluster["certificate-authority-data"], "base64").toString("utf8");
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca, timeout: 10_000, headers: { authorization: `Bearer ${token}`, "content-type": contentType, accept: "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
