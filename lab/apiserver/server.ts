// The lab's Kubernetes API server: plain HTTP on 127.0.0.1 (see kubeconfig.ts for why not HTTPS), the
// resource routes, discovery and OpenAPI stubs for kubectl, fault injection and a request log. One
// request = classify, count, apply injected faults, dispatch; every failure leaves as a Status.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AdmissionHook } from "./admission";
import { type ApiContext } from "./context";
import { readCrdDir } from "./crds";
import { apiGroup, apiGroupList, apiResourceList, apiVersions, SERVER_VERSION } from "./discovery";
import { ApiError, errors } from "./errors";
import { type ExpireMode, Faults } from "./faults";
import { readBody, sendError, sendJson } from "./http-io";
import { writeKubeconfig } from "./kubeconfig";
import { serveOpenApi } from "./openapi";
import { handlePatch } from "./patch-handler";
import { handleGet, handleList, handleWatch } from "./read-handlers";
import { RequestLog, type RequestRecord } from "./request-log";
import { resolveRequest } from "./request-info";
import { BUILTIN_RESOURCES, ResourceRegistry } from "./resources";
import { StoreAccess } from "./store-access";
import { ObjectStore } from "./store";
import { type Obj } from "./types";
import { parsePath, type Route } from "./url";
import { WatchHub } from "./watch";
import { handleCreate, handleDelete, handleDeleteCollection, handleUpdate } from "./write-handlers";
import { Writer } from "./writer";
import { packagePath } from "../../src/base/package-root";

export interface ApiServerOptions {
  /** TCP port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Directory of CRD YAML to load at start; false for none. Default: the repository's crds/. */
  crdDir?: string | false;
  /** Extra CustomResourceDefinition objects to register at start. */
  crds?: Obj[];
  /** Namespaces that exist at start. Default: default, kube-system, kube-public, kube-node-lease. */
  namespaces?: string[];
  /** Change events kept for watch replay; older resourceVersions get 410 Expired. Default 10000. */
  historySize?: number;
  /**
   * How a watch from a resourceVersion older than the history is refused: "error-event" (the real
   * server's way: 200 and one ERROR 410 Status line, then close) or "http-410". Default "error-event".
   */
  tooOldWatch?: ExpireMode;
  /** Interval of BOOKMARK events on watches that allow them. Default 10 s. */
  bookmarkIntervalMs?: number;
  /** Validating admission hook, called on CREATE and UPDATE of main resources. */
  validate?: AdmissionHook;
  /**
   * Apply CRD schemas like a real server: defaults, pruning of undeclared fields (400 with
   * fieldValidation=Strict, as kfc Apply and kubectl send), and OpenAPI validation (422) before the
   * admission hook runs. CEL rules (x-kubernetes-validations) are not evaluated. Default true.
   */
  crdValidation?: boolean;
  /** Name used in denial messages. Default: Pepr's webhook name for this module. */
  webhookName?: string;
  /** Largest object the store accepts (etcd's request limit). Default 1.5 MiB. */
  maxObjectBytes?: number;
  /** Strip kind/apiVersion from built-in list items like a real server. Default false. */
  realisticLists?: boolean;
  /** Where to write the kubeconfig. Default: a fresh temporary directory, removed on close(). */
  kubeconfigPath?: string;
  /** Bearer token written to the kubeconfig (any token is accepted). */
  token?: string;
  /** Log one line per request to stderr, or to the given function. */
  logRequests?: boolean | ((line: string) => void);
}

export interface ApiServer {
  url: string;
  port: number;
  kubeconfigPath: string;
  faults: Faults;
  requests: RequestLog;
  store: StoreAccess;
  registry: ResourceRegistry;
  /** Watch streams open right now. */
  openWatches(): number;
  close(): Promise<void>;
}

const DEFAULT_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** The package's crds/ when there is one (a checkout or the image); false otherwise (a bundle elsewhere). */
function defaultCrdDir(): string | false {
  try {
    const dir = packagePath("crds");
    return existsSync(dir) ? dir : false;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServer> {
  const store = new ObjectStore(opts.historySize ?? 10_000);
  const registry = new ResourceRegistry(BUILTIN_RESOURCES);
  const writer = new Writer(store, registry, {
    ...(opts.validate ? { admission: opts.validate } : {}),
    webhookName: opts.webhookName ?? "pepr-switchyard.pepr.dev",
    maxObjectBytes: opts.maxObjectBytes ?? 1.5 * 1024 * 1024,
    crdValidation: opts.crdValidation ?? true,
  });
  const watches = new WatchHub(store, opts.bookmarkIntervalMs ?? 10_000, opts.tooOldWatch ?? "error-event");
  const faults = new Faults((abrupt) => watches.dropAll(abrupt));
  const requests = new RequestLog();
  const ctx: ApiContext = { store, registry, writer, watches, faults, realisticLists: !!opts.realisticLists };
  const storeAccess = new StoreAccess(store, registry, writer);

  // Seed: namespaces and CRDs go through the normal write path, so they have RVs, uids and events.
  const nsType = registry.byPath("", "v1", "namespaces");
  const crdType = registry.byPath("apiextensions.k8s.io", "v1", "customresourcedefinitions");
  if (!nsType || !crdType) throw new Error("built-in resource table is missing namespaces or CRDs");
  for (const name of opts.namespaces ?? DEFAULT_NAMESPACES) {
    await writer.create(nsType, { metadata: { name } }, { manager: "kube-apiserver" });
  }
  const crdDir = opts.crdDir === undefined ? defaultCrdDir() : opts.crdDir;
  for (const crd of [...(crdDir ? readCrdDir(crdDir) : []), ...(opts.crds ?? [])]) {
    await writer.create(crdType, crd, { manager: "switchyard-lab" });
  }

  const log = opts.logRequests === true ? (line: string) => process.stderr.write(`[apiserver] ${line}\n`) : opts.logRequests || undefined;
  let port = 0;

  async function dispatch(route: Route, req: IncomingMessage, res: ServerResponse, record: RequestRecord, query: URLSearchParams): Promise<void> {
    const method = req.method ?? "GET";
    if (route.type !== "resource") {
      record.verb = route.type === "unknown" ? "other" : "discovery";
      await readBody(req);
      if (method !== "GET") throw errors.methodNotAllowed(method);
      switch (route.type) {
        case "version": return sendJson(res, 200, SERVER_VERSION);
        case "api": return sendJson(res, 200, apiVersions(`127.0.0.1:${port}`));
        case "apis": return sendJson(res, 200, apiGroupList(registry));
        case "group": return sendJson(res, 200, apiGroup(registry, route.group));
        case "groupVersion": return sendJson(res, 200, apiResourceList(registry, route.group, route.version));
        case "openapi": return serveOpenApi(registry, route.segments, req, res);
        default: throw errors.noSuchResource();
      }
    }
    const info = resolveRequest(method, route, query, registry);
    Object.assign(record, {
      verb: info.verb,
      resource: info.rt.plural,
      ...(info.subresource ? { subresource: info.subresource } : {}),
      ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
      ...(info.name !== undefined ? { name: info.name } : {}),
      ...(query.get("fieldManager") ? { fieldManager: query.get("fieldManager") } : {}),
    });
    const body = await readBody(req);
    const target = { verb: info.verb, resource: info.rt.plural, ...(info.subresource ? { subresource: info.subresource } : {}) };
    const delay = faults.takeDelay(target);
    if (delay > 0) await sleep(delay);
    const failure = faults.takeFailure(target);
    if (failure) throw failure;
    switch (info.verb) {
      case "get": return handleGet(ctx, info, req, res);
      case "list": return handleList(ctx, info, req, res);
      case "watch": return handleWatch(ctx, info, req, res, faults.takeExpiry());
      case "create": return handleCreate(ctx, info, req, res, body);
      case "update": return handleUpdate(ctx, info, req, res, body);
      case "patch": return handlePatch(ctx, info, req, res, body);
      case "delete": return handleDelete(ctx, info, res, body);
      case "deletecollection": return handleDeleteCollection(ctx, info, res, body);
    }
  }

  const server = createServer((req, res) => {
    const started = Date.now();
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const record = requests.add({
      method: req.method ?? "GET",
      path: url.pathname + url.search,
      verb: "other",
      status: 0,
      at: started,
      ...(req.headers["content-type"] ? { contentType: req.headers["content-type"] } : {}),
      ...(req.headers["user-agent"] ? { userAgent: req.headers["user-agent"] } : {}),
    });
    res.on("close", () => {
      record.status = res.statusCode;
      log?.(`${record.method} ${record.path} -> ${res.statusCode} (${Date.now() - started} ms)${record.verb === "watch" ? " [watch closed]" : ""}`);
    });
    dispatch(parsePath(url.pathname), req, res, record, url.searchParams)
      .then(() => {
        record.status = res.statusCode;
      })
      .catch((err: unknown) => {
        const apiErr = err instanceof ApiError ? err : errors.internal(err instanceof Error ? err.message : String(err));
        if (!(err instanceof ApiError)) log?.(`internal error: ${err instanceof Error ? err.stack : String(err)}`);
        record.status = apiErr.code;
        if (res.headersSent) res.end();
        else sendError(res, apiErr);
      });
  });
  // kfc opens a new undici Agent (so a new connection) per request and never reuses it; a long idle timeout
  // would keep every one of them open (a 1,000-node migration ran out of file descriptors at 600 s).
  // 30 s closes them soon after while leaving reused keep-alive connections (client-node, kubectl) alone.
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const ownDir = opts.kubeconfigPath ? undefined : mkdtempSync(join(tmpdir(), "switchyard-apiserver-"));
  const kubeconfigPath = opts.kubeconfigPath ?? join(ownDir as string, "kubeconfig.yaml");
  writeKubeconfig(kubeconfigPath, url, opts.token ?? "switchyard-lab-token");

  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    kubeconfigPath,
    faults,
    requests,
    store: storeAccess,
    registry,
    openWatches: () => watches.openCount,
    close() {
      closed ??= new Promise<void>((resolve) => {
        watches.dropAll();
        server.close(() => resolve());
        server.closeAllConnections();
        if (ownDir) rmSync(ownDir, { recursive: true, force: true });
      });
      return closed;
    },
  };
}
