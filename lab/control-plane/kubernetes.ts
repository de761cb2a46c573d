// Why: what the project proves must hold on a real API server, which authorizes every request, compiles
// the CRDs' CEL rules and calls admission webhooks over TLS; the emulator does none of that. This starts
// the real etcd and kube-apiserver (built from Go modules by hack/build-kube.sh, or taken from
// KUBEBUILDER_ASSETS) the way envtest does: loopback only, a CA of the lab's own, a service-account
// signing key pair so the TokenRequest API works, `--authorization-mode=Node,RBAC`, and an admin who
// logs in with a static token in group system:masters. There is no controller-manager and no scheduler:
// nothing garbage-collects, finalizes namespaces or schedules (lab pods carry spec.nodeName).
//
// Both processes are recorded in the lab's pid files before anything else, so destroyLab stops them
// after a crash too; their logs go to <runDir>/logs.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { stringify } from "yaml";
import { runCommand, type ExecResult } from "../../src/base/exec";
import { packagePath } from "../../src/base/package-root";
import { waitFor } from "../../src/base/wait";
import { forgetProcess, recordProcess, stopPid, type PidRecord } from "../processes";
import { makeCa, makeClientCert, makeServiceAccountKeys, makeServingCert, type LabCa } from "./certs";

export const KUBE_BINARIES = ["kube-apiserver", "etcd", "kubectl"] as const;
/** What real nodes add (`hack/build-kube.sh --nodes`). */
export const NODE_BINARIES = ["kubelet", "kube-controller-manager", "kube-scheduler"] as const;
/** The `kubernetes` Service's ClusterIP (the first address of --service-cluster-ip-range): where in-cluster clients go. */
export const KUBERNETES_SERVICE_IP = "10.96.0.1";
/** The admin's user name (group system:masters): what the lab itself and `kubectl` in the lab act as. */
export const LAB_ADMIN_USER = "switchyard-lab-admin";

/**
 * The directory with kube-apiserver, etcd and kubectl: KUBEBUILDER_ASSETS when set, else what
 * hack/build-kube.sh built (building them the first time, which takes minutes). Throws with what is needed.
 */
export async function kubeBinaries(progress: (line: string) => void = () => undefined, opts: { readonly nodes?: boolean } = {}): Promise<string> {
  progress(process.env["KUBEBUILDER_ASSETS"] ? `control plane binaries from KUBEBUILDER_ASSETS=${process.env["KUBEBUILDER_ASSETS"]}` : "control plane binaries: hack/build-kube.sh (a cold build takes several minutes, then cached)");
  const r = await runCommand("bash", [packagePath("hack", "build-kube.sh"), "--quiet", ...(opts.nodes ? ["--nodes"] : [])], { timeoutMs: 40 * 60_000 });
  const dir = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.code !== 0 || dir === "") {
    throw new Error(`no kube-apiserver/etcd/kubectl: ${r.stderr.trim().split("\n").slice(-3).join(" ")} (a real control plane needs Go >= 1.24 at /usr/local/go, or KUBEBUILDER_ASSETS)`);
  }
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a !== null ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

export interface KubeconfigUser {
  readonly name: string;
  readonly token: string;
}

/** A kubeconfig for the lab's real apiserver: its CA inline, a bearer token or a client certificate (PEM). */
export function realKubeconfigYaml(url: string, caPem: string, user: KubeconfigUser | { readonly name: string; readonly certPem: string; readonly keyPem: string }, namespace = "default"): string {
  const cluster = "switchyard-lab";
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server: url, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user.name, user: "token" in user ? { token: user.token } : { "client-certificate-data": b64(user.certPem), "client-key-data": b64(user.keyPem) } }],
    contexts: [{ name: `${user.name}@${cluster}`, context: { cluster, user: user.name, namespace } }],
    "current-context": `${user.name}@${cluster}`,
    preferences: {},
  });
}

export interface Child {
  readonly key: string;
  readonly pid: number;
  readonly record: PidRecord;
  exit: string | undefined;
  readonly exited: Promise<void>;
}

/** Starts `bin` with its output in <runDir>/logs/<key>.log and its pid recorded under `key` (destroyLab stops it). */
export async function spawnRecorded(runDir: string, key: string, what: string, bin: string, args: readonly string[]): Promise<Child> {
  const logs = join(runDir, "logs");
  mkdirSync(logs, { recursive: true });
  const log = join(logs, `${key}.log`);
  const fd = openSync(log, "a");
  let child;
  try {
    child = spawn(bin, args, { stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<string>((resolve) => child.once("error", (e) => resolve(e.message)));
    throw new Error(`could not start ${what}: ${err}`);
  }
  const record = await recordProcess(runDir, key, { pid, what });
  const c: Child = { key, pid, record, exit: undefined, exited: Promise.resolve() };
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      c.exit = `${what} exited (${signal ?? `code ${code}`}); see ${log}`;
      resolve();
    }),
  );
  return Object.assign(c, { exited });
}

/** GET over http(s) on loopback; resolves with the status code and body, or status 0 when nothing answered. */
function get(url: string, opts: { readonly ca?: string; readonly token?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const req = (u.protocol === "https:" ? request : httpRequest)(
      u,
      { method: "GET", timeout: 5_000, ...(opts.ca ? { ca: opts.ca } : {}), headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, body: "" }));
    req.end();
  });
}

export interface KubeControlPlane {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly binDir: string;
  readonly ca: LabCa;
  /** The admin's kubeconfig (system:masters). */
  readonly kubeconfigPath: string;
  /** Serving certificates signed by the lab's CA (for an admission webhook on 127.0.0.1). */
  servingCert(name: string): Promise<{ cert: string; key: string }>;
  /** `kubectl` of the same release against this server, as the admin unless `kubeconfig` says otherwise. */
  kubectl(args: readonly string[], opts?: { readonly stdin?: string; readonly kubeconfig?: string; readonly timeoutMs?: number }): Promise<ExecResult>;
  /**
   * A kubeconfig for a service account, with a token from the TokenRequest API; `node` binds the token
   * to that Node object (the apiserver then puts the node's name into the caller's user info).
   */
  serviceAccountKubeconfig(namespace: string, name: string, path: string, opts?: { readonly node?: string; readonly durationSec?: number }): Promise<string>;
  /** Stops kube-apiserver (every watch and connection drops) and starts it again on the same port; resolves with ms to ready. */
  restartApiServer(): Promise<number>;
  /** Stops kube-apiserver only (etcd keeps the data): the API is away until startApiServer. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port after stopApiServer; resolves with ms to ready. */
  startApiServer(): Promise<number>;
  /** Why etcd or the apiserver ended, when one did. */
  exitReason(): string | undefined;
  /**
   * With `nodes`: a kubeconfig for the kubelet of `node` (a client certificate for system:node:<node> in
   * system:nodes, which the Node authorizer and NodeRestriction hold to its own node), pointing at `server`.
   */
  nodeKubeconfig(node: string, path: string, server: string): Promise<string>;
  stop(): Promise<void>;
}

export interface KubeControlPlaneOptions {
  /** The lab's run dir: pid files, logs, certificates and etcd's data go below it. */
  readonly runDir: string;
  readonly binDir: string;
  /** Where the admin's kubeconfig goes; default <runDir>/control-plane/admin.kubeconfig. */
  readonly kubeconfigPath?: string;
  readonly progress?: (line: string) => void;
  /**
   * The control plane of real nodes (kubelets): also kube-controller-manager and kube-scheduler (as the
   * admin), the ServiceAccount and NodeRestriction admission plugins on, and the serving certificate valid
   * for the `kubernetes` Service's ClusterIP, where in-cluster clients connect.
   */
  readonly nodes?: boolean;
}

export async function startKubeControlPlane(o: KubeControlPlaneOptions): Promise<KubeControlPlane> {
  const dir = join(o.runDir, "control-plane");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const progress = o.progress ?? (() => undefined);
  const children: Child[] = [];
  const stop = async (): Promise<void> => {
    for (const c of children.reverse()) {
      if (c.exit === undefined) {
        await stopPid(c.pid, c.record.startTime, 10_000);
        await c.exited;
      }
      await forgetProcess(o.runDir, c.key);
    }
  };
  try {
    const ca = await makeCa(join(dir, "pki"), "switchyard-lab-ca");
    const serving = await makeServingCert(ca, "kube-apiserver", { ips: ["127.0.0.1", ...(o.nodes ? [KUBERNETES_SERVICE_IP] : [])], dns: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"] });
    const sa = await makeServiceAccountKeys(ca.dir);
    const adminToken = randomBytes(24).toString("hex");
    const tokens = join(ca.dir, "tokens.csv");
    await writeFile(tokens, `${adminToken},${LAB_ADMIN_USER},${LAB_ADMIN_USER},"system:masters"\n`, { mode: 0o600 });

    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = await spawnRecorded(o.runDir, "etcd", "etcd", join(o.binDir, "etcd"), [
      "--name=lab",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=lab=${peerUrl}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ]);
    children.push(etcd);
    await waitFor("etcd to be healthy", async () => (etcd.exit ? Promise.reject(new Error(etcd.exit)) : (await get(`${etcdUrl}/health`)).body.includes('"health":"true"') || undefined), 30_000, 50);

    const url = `https://127.0.0.1:${apiPort}`;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "apiserver-certs")}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--client-ca-file=${ca.caCert}`,
      `--token-auth-file=${tokens}`,
      "--authorization-mode=Node,RBAC",
      // kubeadm's default range: clear of the pools the lab and the conformance corpus (10.0.0.0/16) use.
      "--service-cluster-ip-range=10.96.0.0/16",
      "--allow-privileged=true",
      // Without a controller-manager nothing makes the default ServiceAccount of each namespace: envtest turns
      // the plugin off too. Real nodes have one, and their pods need the plugin's token volume.
      ...(o.nodes ? ["--enable-admission-plugins=NodeRestriction"] : ["--disable-admission-plugins=ServiceAccount"]),
      `--service-account-issuer=${url}`,
      `--service-account-key-file=${sa.publicKey}`,
      `--service-account-signing-key-file=${sa.privateKey}`,
      "--endpoint-reconciler-type=none",
      "--profiling=false",
      "--v=1",
    ];
    const startApi = async (): Promise<number> => {
      const api = await spawnRecorded(o.runDir, "kube-apiserver", "kube-apiserver", join(o.binDir, "kube-apiserver"), apiArgs);
      children.push(api);
      const t0 = Date.now();
      await waitFor(
        "kube-apiserver to be ready",
        async () => {
          if (api.exit) throw new Error(api.exit);
          return (await get(`${url}/readyz`, { ca: ca.caPem, token: adminToken })).status === 200 || undefined;
        },
        90_000,
        100,
      );
      return Date.now() - t0;
    };
    const stopApi = async (): Promise<void> => {
      const i = children.findIndex((c) => c.key === "kube-apiserver");
      const old = children[i];
      if (!old) return;
      children.splice(i, 1);
      if (old.exit === undefined) {
        await stopPid(old.pid, old.record.startTime, 10_000);
        await old.exited;
      }
      await forgetProcess(o.runDir, old.key);
    };
    progress(`kube-apiserver ready ${await startApi()} ms after start (${url})`);

    const kubeconfigPath = o.kubeconfigPath ?? join(dir, "admin.kubeconfig");
    await writeFile(kubeconfigPath, realKubeconfigYaml(url, ca.caPem, { name: LAB_ADMIN_USER, token: adminToken }), { mode: 0o600 });
    if (o.nodes) {
      const [kcmPort, schedPort] = [await freePort(), await freePort()];
      const common = [`--kubeconfig=${kubeconfigPath}`, `--authentication-kubeconfig=${kubeconfigPath}`, `--authorization-kubeconfig=${kubeconfigPath}`, "--leader-elect=false", "--bind-address=127.0.0.1", "--v=1"];
      children.push(
        await spawnRecorded(o.runDir, "kube-controller-manager", "kube-controller-manager", join(o.binDir, "kube-controller-manager"), [
          ...common,
          `--secure-port=${kcmPort}`,
          `--root-ca-file=${ca.caCert}`,
          `--service-account-private-key-file=${sa.privateKey}`,
          `--cluster-signing-cert-file=${ca.caCert}`,
          `--cluster-signing-key-file=${ca.caKey}`,
          // Switchyard gives each node its block (NodeNetwork): no spec.podCIDR from the controller-manager.
          "--allocate-node-cidrs=false",
          "--use-service-account-credentials=false",
        ]),
      );
      children.push(await spawnRecorded(o.runDir, "kube-scheduler", "kube-scheduler", join(o.binDir, "kube-scheduler"), [...common, `--secure-port=${schedPort}`]));
      progress("kube-controller-manager and kube-scheduler started");
    }
    const kubectl = (args: readonly string[], opts: { readonly stdin?: string; readonly kubeconfig?: string; readonly timeoutMs?: number } = {}): Promise<ExecResult> =>
      runCommand(join(o.binDir, "kubectl"), [`--kubeconfig=${opts.kubeconfig ?? kubeconfigPath}`, ...args], { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
    return {
      url,
      binDir: o.binDir,
      ca,
      kubeconfigPath,
      servingCert: (name) => makeServingCert(ca, name, { ips: ["127.0.0.1"], dns: ["localhost"] }),
      kubectl,
      async serviceAccountKubeconfig(namespace, name, path, opts = {}) {
        const args = ["create", "token", name, "-n", namespace, `--duration=${opts.durationSec ?? 24 * 3600}s`, ...(opts.node ? ["--bound-object-kind=Node", `--bound-object-name=${opts.node}`] : [])];
        const r = await kubectl(args);
        if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim()}`);
        await writeFile(path, realKubeconfigYaml(url, ca.caPem, { name: `${namespace}:${name}${opts.node ? `@${opts.node}` : ""}`, token: r.stdout.trim() }, namespace), { mode: 0o600 });
        return path;
      },
      exitReason: () => children.map((c) => c.exit).find((e) => e !== undefined),
      async nodeKubeconfig(node, path, server) {
        const c = await makeClientCert(ca, `node-${node}`, `system:node:${node}`, ["system:nodes"]);
        const [certPem, keyPem] = [await readFile(c.cert, "utf8"), await readFile(c.key, "utf8")];
        await writeFile(path, realKubeconfigYaml(server, ca.caPem, { name: `system:node:${node}`, certPem, keyPem }), { mode: 0o600 });
        return path;
      },
      async restartApiServer() {
        await stopApi();
        return startApi();
      },
      stopApiServer: stopApi,
      startApiServer: () => startApi(),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The admin token of a lab's kubeconfig (tests that call the API by hand). */
export async function kubeconfigToken(path: string): Promise<string> {
  const m = /token: (\S+)/.exec(await readFile(path, "utf8"));
  if (!m?.[1]) throw new Error(`${path} has no token`);
  return m[1];
}
