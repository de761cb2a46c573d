// The lab's container runtime, as far as networking goes: it runs the node's conflist through the CNI exec
// protocol exactly as containerd's CRI plugin (through libcni) does, so every lab pod gets its interface
// from switchyard-cni. For each plugin of the list, in order for ADD (each given the previous one's
// result as prevResult) and in reverse for DEL: exec `<binDir>/<type>` in the node's network namespace
// with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS (the pod's namespace as a path), CNI_IFNAME, CNI_ARGS
// (K8S_POD_NAMESPACE, K8S_POD_NAME, and IP= for a static request) and CNI_PATH, the plugin's config on
// stdin with cniVersion and name inserted, runtimeConfig for the capabilities it declares; the result
// (or a CNI error object) on stdout. ADD's result is cached (as libcni caches it) and handed to DEL.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../src/base/exec";

/** Where one lab node keeps its CNI files (a real node: /opt/cni/bin, /etc/cni/net.d, /run/switchyard, /var/lib/switchyard/cni). */
export interface LabCniDirs {
  readonly binDir: string;
  readonly confDir: string;
  readonly stateDir: string;
  readonly dataDir: string;
  /** ADD results, for DEL (libcni: /var/lib/cni/results). */
  readonly cacheDir: string;
}

export function labCniDirs(runDir: string, node: string): LabCniDirs {
  const base = join(runDir, "cni", node);
  return { binDir: join(base, "bin"), confDir: join(base, "net.d"), stateDir: join(base, "run"), dataDir: join(base, "ipam"), cacheDir: join(base, "results") };
}

/** Where Debian's containernetworking-plugins live (portmap, bandwidth, tuning, ...). */
export const SYSTEM_CNI_DIR = "/usr/lib/cni";

export interface CniInvocation {
  /** The node's network namespace (where the plugin runs: the node's "host"). */
  readonly nodeNetns: string;
  readonly dirs: LabCniDirs;
  readonly containerId: string;
  /** The pod's network namespace name (passed as /var/run/netns/<name>). */
  readonly podNetns: string;
  readonly ifname?: string;
  readonly namespace: string;
  readonly name: string;
  /** A static address request (IP= in CNI_ARGS, as kubelet passes a pod's annotation-less request). */
  readonly ip?: string;
  readonly timeoutMs?: number;
}

/** A CNI error object, as a thrown Error whose message is what a kubelet would log. */
export class CniError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number,
    readonly msg: string,
    readonly details: string,
  ) {
    super(`CNI ${command} by ${plugin} failed (code ${code}): ${msg}${details ? ` (${details})` : ""}`);
  }
}

type Conflist = { cniVersion: string; name: string; plugins: Record<string, unknown>[] };

function readConflist(dirs: LabCniDirs): Conflist {
  const path = join(dirs.confDir, "10-switchyard.conflist");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new Error(`no CNI configuration at ${path}: the node has no block yet, or its agent has not installed the plugin`);
  }
  return JSON.parse(text) as Conflist;
}

export interface CniAddResult {
  readonly ip: string;
  readonly result: Record<string, unknown>;
}

async function execPlugin(inv: CniInvocation, command: string, conf: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
  const type = String(conf["type"]);
  const args = [`K8S_POD_NAMESPACE=${inv.namespace}`, `K8S_POD_NAME=${inv.name}`, ...(inv.ip !== undefined ? [`IP=${inv.ip}`] : [])].join(";");
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: `/var/run/netns/${inv.podNetns}`,
    CNI_IFNAME: inv.ifname ?? "eth0",
    CNI_ARGS: args,
    CNI_PATH: `${inv.dirs.binDir}:${SYSTEM_CNI_DIR}`,
  };
  const binary = type === "switchyard-cni" ? join(inv.dirs.binDir, type) : join(SYSTEM_CNI_DIR, type);
  const r = await runCommand(binary, [], { netns: inv.nodeNetns, env, stdin: JSON.stringify(conf), timeoutMs: inv.timeoutMs ?? 60_000 });
  if (r.code !== 0) {
    let err: { code?: number; msg?: string; details?: string } = {};
    try {
      err = JSON.parse(r.stdout) as typeof err;
    } catch {
      err = { msg: (r.stdout + r.stderr).trim() || `exit ${r.code}` };
    }
    throw new CniError(type, command, err.code ?? 999, err.msg ?? "", err.details ?? "");
  }
  return r.stdout.trim() === "" ? undefined : (JSON.parse(r.stdout) as Record<string, unknown>);
}

/** The config one plugin of the list receives. */
function pluginConf(list: Conflist, plugin: Record<string, unknown>, prevResult: Record<string, unknown> | undefined): Record<string, unknown> {
  return { ...plugin, cniVersion: list.cniVersion, name: list.name, ...(prevResult ? { prevResult } : {}) };
}

/** ADD through the whole list; returns the pod's address and the final result (cached for DEL). */
export async function cniAdd(inv: CniInvocation): Promise<CniAddResult> {
  const list = readConflist(inv.dirs);
  let prev: Record<string, unknown> | undefined;
  try {
    for (const plugin of list.plugins) {
      prev = await execPlugin(inv, "ADD", pluginConf(list, plugin, prev));
    }
  } catch (e) {
    // A runtime cleans up a failed ADD with a DEL of the whole list (best effort).
    await cniDelWith(inv, list, prev).catch(() => undefined);
    throw e;
  }
  const result = prev ?? {};
  mkdirSync(inv.dirs.cacheDir, { recursive: true });
  writeFileSync(join(inv.dirs.cacheDir, `${inv.containerId}-${inv.ifname ?? "eth0"}.json`), JSON.stringify({ conflist: list, result }));
  const ips = (result["ips"] ?? []) as { address?: string }[];
  const ip = ips[0]?.address?.split("/")[0];
  if (ip === undefined) throw new Error(`CNI ADD for ${inv.namespace}/${inv.name} returned no address: ${JSON.stringify(result)}`);
  return { ip, result };
}

async function cniDelWith(inv: CniInvocation, list: Conflist, prevResult: Record<string, unknown> | undefined): Promise<void> {
  let first: unknown;
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await execPlugin(inv, "DEL", pluginConf(list, plugin, prevResult));
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}

/** DEL through the list in reverse, with the cached ADD result; idempotent (a pod never added is fine). */
export async function cniDel(inv: CniInvocation): Promise<void> {
  const cache = join(inv.dirs.cacheDir, `${inv.containerId}-${inv.ifname ?? "eth0"}.json`);
  let cached: { conflist: Conflist; result: Record<string, unknown> } | undefined;
  try {
    cached = JSON.parse(readFileSync(cache, "utf8")) as typeof cached;
  } catch {
    cached = undefined;
  }
  const list = cached?.conflist ?? readConflist(inv.dirs);
  await cniDelWith(inv, list, cached?.result);
  rmSync(cache, { force: true });
}
