// Why: on the real control plane Switchyard is installed the way a user installs it, in that order, with
// the real kubectl: the CRDs (and wait until they are Established), the namespace, deploy/rbac.yaml and
// deploy/admission-policies.yaml, then the admission module that `pepr build` produced, served on this
// machine with a certificate of the lab's CA and registered through the module's own
// ValidatingWebhookConfiguration with its service rewritten into a url and a caBundle (as envtest does).
// The daemons then log in as their own service accounts, with tokens from the TokenRequest API; an
// agent's token is bound to its Node, so the API server knows which node it speaks for.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { packagePath } from "../../src/base/package-root";
import { waitFor } from "../../src/base/wait";
import { forgetProcess, recordProcess, stopPid } from "../processes";
import { freePort, type KubeControlPlane } from "./kubernetes";

export const SYSTEM_NAMESPACE = "switchyard-system";
export const CONTROLLER_SA = "switchyard-controller";
export const AGENT_SA = "switchyard-agent";
/** The Pepr module's own namespace and service account (from its manifest). */
export const WEBHOOK_NAMESPACE = "pepr-system";
export const WEBHOOK_SA = "pepr-switchyard";
export const PEPR_MANIFEST = "dist/pepr-module-switchyard.yaml";
export const PEPR_MODULE = "dist/pepr-switchyard.cjs";

export interface Installation {
  /** Each call for a node returns the same kubeconfig (one token per node). */
  agentKubeconfig(node: string): Promise<string>;
  controllerKubeconfig(): Promise<string>;
  /** The admission webhook's address, when it is served. */
  readonly webhookUrl: string | undefined;
  /** Stops serving the webhook (the lab's pod network is not involved: this is the only way to make it unreachable). */
  stopWebhook(): Promise<void>;
  /** Serves it again after stopWebhook. */
  startWebhook(): Promise<void>;
  close(): Promise<void>;
}

export interface InstallOptions {
  /** Namespaces the lab's pods and tests use. */
  readonly namespaces: readonly string[];
  /** Serve and register the Pepr admission module (default true; needs `pepr build`'s output in dist/). */
  readonly webhook?: boolean;
  readonly progress?: (line: string) => void;
}

async function kubectlOk(kube: KubeControlPlane, args: readonly string[], stdin?: string): Promise<string> {
  const r = await kube.kubectl(args, stdin !== undefined ? { stdin } : {});
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Objects as one JSON List for `kubectl apply -f -` (JSON, not YAML: a namespace named "y" is a boolean in YAML 1.1). */
function asList(items: readonly object[]): string {
  return JSON.stringify({ apiVersion: "v1", kind: "List", items });
}

type Doc = { kind?: string; metadata?: { name?: string; namespace?: string }; [k: string]: unknown };

/** The documents of the manifest `pepr build` wrote. */
async function peprManifest(): Promise<Doc[]> {
  const path = packagePath(PEPR_MANIFEST);
  if (!existsSync(path) || !existsSync(packagePath(PEPR_MODULE))) throw new Error(`no ${PEPR_MANIFEST}: run \`bash hack/pepr-build.sh\` first (npm test does)`);
  return parseAllDocuments(await readFile(path, "utf8")).map((d) => d.toJSON() as Doc).filter((d) => d !== null);
}

export async function installSwitchyard(kube: KubeControlPlane, o: InstallOptions): Promise<Installation> {
  const progress = o.progress ?? (() => undefined);
  const runDir = join(kube.ca.dir, "..", "..");
  const identities = join(kube.ca.dir, "..", "identities");
  mkdirSync(identities, { recursive: true, mode: 0o700 });
  const t0 = Date.now();

  await kubectlOk(kube, ["apply", "--server-side", "--field-manager=switchyard-install", "-f", packagePath("crds")]);
  await kubectlOk(kube, ["wait", "--for=condition=Established", "--timeout=60s", "crd/clusternetworks.switchyard.dev", "crd/nodenetworks.switchyard.dev", "crd/blockaffinities.switchyard.dev"]);
  await kubectlOk(kube, ["apply", "--server-side", "--field-manager=switchyard-install", "-f", packagePath("deploy", "namespace.yaml"), "-f", packagePath("deploy", "rbac.yaml"), "-f", packagePath("deploy", "admission-policies.yaml")]);
  const namespaces = [...new Set(o.namespaces)].filter((n) => n !== "default" && n !== "kube-system");
  await kubectlOk(kube, ["apply", "--server-side", "--field-manager=switchyard-install", "-f", "-"], asList(namespaces.map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } }))));
  progress(`installed: CRDs, deploy/rbac.yaml, deploy/admission-policies.yaml, ${namespaces.length} namespaces (${Date.now() - t0} ms)`);

  // --- the admission webhook: the Pepr module, as `pepr build` made it ---
  let webhookUrl: string | undefined;
  let serve: (() => Promise<void>) | undefined;
  let stopServing: () => Promise<void> = async () => undefined;
  if (o.webhook ?? true) {
    const docs = await peprManifest();
    const vwc = docs.find((d) => d.kind === "ValidatingWebhookConfiguration");
    const apiPathSecret = docs.find((d) => d.kind === "Secret" && d.metadata?.name?.endsWith("-api-path")) as { data?: { value?: string } } | undefined;
    if (!vwc || !apiPathSecret?.data?.value) throw new Error(`${PEPR_MANIFEST} has no ValidatingWebhookConfiguration or api-path Secret`);
    const apiPath = Buffer.from(apiPathSecret.data.value, "base64").toString("utf8").trim();
    // The module's namespace, service account and role exactly as its manifest declares them.
    const rbacKinds = new Set(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"]);
    const rbac = docs.filter((d) => rbacKinds.has(d.kind ?? "") && (d.kind !== "Namespace" || d.metadata?.name === WEBHOOK_NAMESPACE));
    await kubectlOk(kube, ["apply", "--server-side", "--field-manager=switchyard-install", "-f", "-"], asList(rbac));
    const kubeconfig = await kube.serviceAccountKubeconfig(WEBHOOK_NAMESPACE, WEBHOOK_SA, join(identities, "webhook.kubeconfig"));
    // What Pepr's container entry point does before it runs the module, done as the module's own service
    // account (so its role is proven sufficient): the PeprStore CRD, then the module from the manifest's
    // Secret, checked against the hash the Deployment names.
    await kubectlOk(kube, ["apply", "--server-side", "--field-manager=pepr-switchyard", `--kubeconfig=${kubeconfig}`, "-f", "-"], asList([PEPR_STORE_CRD]));
    const modulePath = await extractModule(docs, join(identities, "..", "webhook"));
    const cert = await kube.servingCert("webhook");
    const port = await freePort();
    webhookUrl = `https://127.0.0.1:${port}/validate/${apiPath}`;
    const key = "pepr-webhook";
    let current: { pid: number; startTime: string | undefined; exited: Promise<void>; exit?: string } | undefined;
    serve = async () => {
      const logs = join(runDir, "logs");
      mkdirSync(logs, { recursive: true });
      const fd = openSync(join(logs, `${key}.log`), "a");
      let child;
      try {
        child = spawn(process.execPath, [modulePath], {
          cwd: packagePath(),
          env: {
            ...process.env,
            // The module requires "pepr" (the image has it beside the module; here, this package's).
            NODE_PATH: packagePath("node_modules"),
            KUBECONFIG: kubeconfig,
            PEPR_WATCH_MODE: "false",
            PEPR_API_PATH: apiPath,
            SSL_KEY_PATH: cert.key,
            SSL_CERT_PATH: cert.cert,
            SWITCHYARD_WEBHOOK_PORT: String(port),
            LOG_LEVEL: "warn",
          },
          stdio: ["ignore", fd, fd],
        });
      } finally {
        closeSync(fd);
      }
      const pid = child.pid;
      if (pid === undefined) throw new Error("could not start the Pepr admission module");
      const rec = await recordProcess(runDir, key, { pid, what: "Pepr admission module" });
      const entry: { pid: number; startTime: string | undefined; exited: Promise<void>; exit?: string } = { pid, startTime: rec.startTime, exited: Promise.resolve() };
      entry.exited = new Promise<void>((resolve) =>
        child.once("exit", (code, signal) => {
          entry.exit = `the Pepr admission module exited (${signal ?? `code ${code}`}); see ${join(logs, `${key}.log`)}`;
          resolve();
        }),
      );
      current = entry;
      await waitFor(
        "the admission module to serve /healthz",
        async () => {
          if (entry.exit) throw new Error(entry.exit);
          const r = await fetchHealth(port, kube.ca.caPem);
          return r || undefined;
        },
        60_000,
        100,
      );
    };
    stopServing = async () => {
      const c = current;
      current = undefined;
      if (!c) return;
      if (c.exit === undefined) {
        await stopPid(c.pid, c.startTime, 5_000);
        await c.exited;
      }
      await forgetProcess(runDir, key);
    };
    await serve();
    const webhooks = (vwc["webhooks"] as { clientConfig?: Record<string, unknown> }[]).map((w) => ({
      ...w,
      clientConfig: { url: webhookUrl, caBundle: Buffer.from(kube.ca.caPem).toString("base64") },
    }));
    await kubectlOk(kube, ["apply", "--server-side", "--field-manager=switchyard-install", "-f", "-"], asList([{ ...vwc, webhooks }]));
    progress(`admission webhook: the Pepr module served at ${webhookUrl.replace(apiPath, "<api-path>")}, registered (${Date.now() - t0} ms since install began)`);
  }

  const agentTokens = new Map<string, Promise<string>>();
  let controller: Promise<string> | undefined;
  return {
    agentKubeconfig(node) {
      let p = agentTokens.get(node);
      if (!p) {
        p = kube.serviceAccountKubeconfig(SYSTEM_NAMESPACE, AGENT_SA, join(identities, `agent-${node}.kubeconfig`), { node });
        agentTokens.set(node, p);
      }
      return p;
    },
    controllerKubeconfig() {
      controller ??= kube.serviceAccountKubeconfig(SYSTEM_NAMESPACE, CONTROLLER_SA, join(identities, "controller.kubeconfig"));
      return controller;
    },
    webhookUrl,
    stopWebhook: () => stopServing(),
    startWebhook: async () => {
      if (serve) await serve();
    },
    close: () => stopServing(),
  };
}

/** Pepr's store kind: the module keeps its state in one PeprStore object and waits for it before serving. */
const PEPR_STORE_CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "peprstores.pepr.dev" },
  spec: {
    group: "pepr.dev",
    scope: "Namespaced",
    names: { plural: "peprstores", singular: "peprstore", kind: "PeprStore" },
    versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", properties: { data: { type: "object", additionalProperties: { type: "string" } } } } } }],
  },
};

/** The module the manifest's Deployment runs: the gzip in its module Secret, whose sha256 is the Deployment's argument. */
async function extractModule(docs: readonly Doc[], dir: string): Promise<string> {
  const deployment = docs.find((d) => d.kind === "Deployment" && d.metadata?.name === WEBHOOK_SA) as { spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } } } | undefined;
  const hash = deployment?.spec?.template?.spec?.containers?.[0]?.args?.[1];
  const secret = docs.find((d) => d.kind === "Secret" && d.metadata?.name?.endsWith("-module")) as { data?: Record<string, string> } | undefined;
  const gz = hash ? secret?.data?.[`module-${hash}.js.gz`] : undefined;
  if (!hash || !gz) throw new Error(`${PEPR_MANIFEST}: no module Secret matching the Deployment's hash`);
  const code = gunzipSync(Buffer.from(gz, "base64"));
  const actual = createHash("sha256").update(code).digest("hex");
  if (actual !== hash) throw new Error(`${PEPR_MANIFEST}: the module's sha256 is ${actual}, the Deployment expects ${hash}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `module-${hash}.js`);
  await writeFile(path, code);
  return path;
}

async function fetchHealth(port: number, ca: string): Promise<boolean> {
  const { request } = await import("node:https");
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/healthz", method: "GET", ca, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}
