// The agent's side of the CNI plugin, as calico-node's install step does for Calico's: it puts the
// `switchyard-cni` binary and the node's conflist where the container runtime looks (cniBinDir,
// cniConfDir), and keeps the markers the plugin reads in agentStateDir:
// - `ready`: the node's first complete plan is in force. The plugin's STATUS answers error 50 until it
//   exists, so a runtime that asks starts no pod on a node whose policy is not in force yet.
// - `endpoints/<host veth>`: this pod's policy is programmed (the pod is in the node's plan, and so in the
//   policy table's pod_interfaces, as soon as it is scheduled). ADD waits for it (policyWaitSeconds).
//   Its first line names the pod; its second, when the plan has one, the address the controller planned
//   for it (a `switchyard.dev/ip-addrs` request, or the address it keeps): the plugin takes that address
//   when it is free, which is how an annotation-requested address reaches a pod that a real kubelet
//   creates (a kubelet passes no IP= of its own).
// Every file is written to a temporary name and renamed into place, so a runtime never reads half a
// conflist or execs half a binary; nothing is rewritten when it is already right. Installed once the node
// has a block, updated when the block or the MTU changes, removed by `uninstall`.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const CNI_PLUGIN_NAME = "switchyard-cni";
export const CNI_CONFLIST_NAME = "10-switchyard.conflist";
export const CNI_NETWORK_NAME = "switchyard";

export interface CniInstallOptions {
  /** Where the runtime finds plugin binaries (containerd: /opt/cni/bin). */
  readonly binDir: string;
  /** Where the runtime finds network configurations (/etc/cni/net.d). */
  readonly confDir: string;
  /** The markers the plugin reads (tmpfs: gone after a reboot, like the policy table they vouch for). */
  readonly stateDir: string;
  /** The plugin's durable IPAM state. */
  readonly dataDir: string;
  /** The plugin binary to install (the image's dist/cni/switchyard-cni). */
  readonly pluginBinary: string;
  /** How long ADD waits for the pod's policy to be programmed; 0: not at all. */
  readonly policyWaitSeconds: number;
  /** The conflist's cniVersion: 1.1.0 (STATUS, GC) unless the node's chained plugins are older. */
  readonly cniVersion?: string;
  /** Plugins chained after switchyard-cni (default: portmap, for hostPorts). */
  readonly chain?: readonly Readonly<Record<string, unknown>>[];
}

export const DEFAULT_CNI_CHAIN: readonly Readonly<Record<string, unknown>>[] = [{ type: "portmap", snat: true, capabilities: { portMappings: true } }];

/** The node's conflist for its block and pod MTU. Pure. */
export function cniConflist(opts: CniInstallOptions, node: { readonly block: string; readonly mtu: number }): Record<string, unknown> {
  return {
    cniVersion: opts.cniVersion ?? "1.1.0",
    name: CNI_NETWORK_NAME,
    plugins: [
      {
        type: CNI_PLUGIN_NAME,
        mtu: node.mtu,
        blocks: [node.block],
        dataDir: opts.dataDir,
        agentStateDir: opts.stateDir,
        policyWaitSeconds: opts.policyWaitSeconds,
        capabilities: { ips: true },
      },
      ...(opts.chain ?? DEFAULT_CNI_CHAIN),
    ],
  };
}

function writeAtomic(path: string, content: string | Buffer, mode = 0o644): boolean {
  try {
    const current = readFileSync(path);
    if (Buffer.compare(current, Buffer.isBuffer(content) ? content : Buffer.from(content)) === 0) return false;
  } catch {
    // absent: write it
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
  return true;
}

export interface CniInstallReport {
  readonly binaryWritten: boolean;
  readonly conflistWritten: boolean;
}

/** Installs (or updates) the plugin binary and the node's conflist; a no-op when both are current. */
export function installCni(opts: CniInstallOptions, node: { readonly block: string; readonly mtu: number }): CniInstallReport {
  for (const dir of [opts.binDir, opts.confDir, opts.stateDir, opts.dataDir]) mkdirSync(dir, { recursive: true });
  if (!existsSync(opts.pluginBinary)) throw new Error(`the CNI plugin binary ${opts.pluginBinary} is missing (build it: bash hack/build-cni.sh)`);
  const binary = readFileSync(opts.pluginBinary);
  const target = join(opts.binDir, CNI_PLUGIN_NAME);
  const binaryWritten = writeAtomic(target, binary, 0o755);
  const conflistWritten = writeAtomic(join(opts.confDir, CNI_CONFLIST_NAME), `${JSON.stringify(cniConflist(opts, node), null, 2)}\n`);
  return { binaryWritten, conflistWritten };
}

/** Says the node's first complete plan is in force (STATUS then answers ready). */
export function markNodeReady(opts: Pick<CniInstallOptions, "stateDir">, planHash: string): void {
  mkdirSync(opts.stateDir, { recursive: true });
  writeAtomic(join(opts.stateDir, "ready"), `${planHash}\n`);
}

/**
 * Makes `endpoints/` hold exactly the given pods' interfaces (each file names its pod), after their policy
 * is in force; returns how many markers were added and removed.
 */
export function syncEndpointMarkers(opts: Pick<CniInstallOptions, "stateDir">, pods: readonly { readonly interface: string; readonly namespace: string; readonly name: string; readonly ip?: string }[]): { added: number; removed: number } {
  const dir = join(opts.stateDir, "endpoints");
  mkdirSync(dir, { recursive: true });
  const want = new Map(pods.map((p) => [p.interface, `${p.namespace}/${p.name}\n${p.ip ? `${p.ip}\n` : ""}`]));
  let added = 0;
  let removed = 0;
  for (const name of readdirSync(dir)) {
    if (!want.has(name)) {
      rmSync(join(dir, name), { force: true });
      removed++;
    }
  }
  for (const [name, content] of want) if (writeAtomic(join(dir, name), content)) added++;
  return { added, removed };
}

/** Removes the conflist, the binary and the markers (the plugin's IPAM state stays: pods may still hold addresses). */
export function uninstallCni(opts: CniInstallOptions): void {
  rmSync(join(opts.confDir, CNI_CONFLIST_NAME), { force: true });
  rmSync(join(opts.binDir, CNI_PLUGIN_NAME), { force: true });
  rmSync(join(opts.stateDir, "ready"), { force: true });
  rmSync(join(opts.stateDir, "endpoints"), { recursive: true, force: true });
}
