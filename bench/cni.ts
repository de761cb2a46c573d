// bench/cni: ADD and DEL latency of the switchyard-cni plugin (dist/cni, policyWaitSeconds 0) next to
// Debian's ptp + host-local (/usr/lib/cni; same MTU, a /24 range), interleaved in one run: pod i is
// added with both plugins, each into its own throwaway network namespace, the two in turn (which one
// goes first alternates per pod), so a busy neighbour slows both alike; then the pods are deleted the same
// way. Prints p50 and p99 per plugin and the ratios switchyard/ptp.
//
// How the plugins run: exec'd directly, exactly as a runtime execs them (libcni's invoke does the same):
// CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH in the environment, the network
// configuration on stdin (DEL with the ADD's result as prevResult, as libcni passes it). The time is from
// spawn to exit, so the plugin's process start counts (and for ptp, its exec of host-local). The plugins
// run in a throwaway "node" namespace (sycnib-node): this script re-runs itself there, so no namespace
// is ever linked to the root one; the namespaces are made beforehand, and their creation is not timed.
// Run: `npx tsx bench/cni.ts [--pods 200] [--warmup 5]` (root; namespaces sycnib-*; the goal: switchyard's
// p99 ADD under 100 ms, excluding the policy wait).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runCommand, runOk } from "../src/base/exec";

const { values: args } = parseArgs({
  options: { pods: { type: "string", default: "200" }, warmup: { type: "string", default: "5" }, inner: { type: "string" } },
});
const PODS = Number(args.pods);
const WARMUP = Number(args.warmup);
const ROOT = join(import.meta.dirname, "..");
const PREFIX = "sycnib-";
const NODE = `${PREFIX}node`;
const SWITCHYARD_DIR = join(ROOT, "dist", "cni");
const DEBIAN_DIR = "/usr/lib/cni";
const MTU = 1450;

interface Plugin {
  readonly name: string;
  readonly binary: string;
  readonly cniPath: string;
  readonly config: Record<string, unknown>;
  readonly netnsPrefix: string;
}

function plugins(tmp: string): Plugin[] {
  return [
    {
      name: "switchyard-cni",
      binary: join(SWITCHYARD_DIR, "switchyard-cni"),
      cniPath: SWITCHYARD_DIR,
      netnsPrefix: `${PREFIX}s`,
      config: { cniVersion: "1.1.0", name: "sycnib-switchyard", type: "switchyard-cni", mtu: MTU, blocks: ["10.245.0.0/24"], dataDir: join(tmp, "switchyard"), agentStateDir: join(tmp, "agent"), policyWaitSeconds: 0 },
    },
    {
      name: "ptp + host-local",
      binary: join(DEBIAN_DIR, "ptp"),
      cniPath: DEBIAN_DIR,
      netnsPrefix: `${PREFIX}p`,
      config: { cniVersion: "1.0.0", name: "sycnib-ptp", type: "ptp", mtu: MTU, ipam: { type: "host-local", ranges: [[{ subnet: "10.246.0.0/24" }]], dataDir: join(tmp, "host-local") } },
    },
  ];
}

interface Exec {
  readonly ms: number;
  readonly stdout: string;
}

/** Execs a plugin as a runtime does and times it from spawn to exit. */
function execPlugin(p: Plugin, command: "ADD" | "DEL", pod: number, stdin: string): Promise<Exec> {
  const env = {
    PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: `bench-${pod}`,
    CNI_NETNS: `/run/netns/${p.netnsPrefix}${pod}`,
    CNI_IFNAME: "eth0",
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-${pod}`,
    CNI_PATH: p.cniPath,
  };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(p.binary, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      if (code !== 0) reject(new Error(`${p.name} ${command} pod ${pod} exited ${code}: ${stdout}${Buffer.concat(err).toString()}`));
      else resolve({ ms, stdout });
    });
    child.stdin.end(stdin);
  });
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function addNetns(names: readonly string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 100) {
    await runOk("ip", ["-batch", "-"], { stdin: names.slice(i, i + 100).map((n) => `netns add ${n}\n`).join(""), timeoutMs: 60_000 });
  }
}

/** Runs inside the node namespace. */
async function inner(tmp: string): Promise<void> {
  const ps = plugins(tmp);
  const total = WARMUP + PODS;
  const addMs = ps.map(() => [] as number[]);
  const delMs = ps.map(() => [] as number[]);
  const results = ps.map(() => [] as string[]);
  // Pod i: both plugins in turn, the first alternating; the warm-up pods are not counted.
  const order = (i: number): number[] => (i % 2 === 0 ? [0, 1] : [1, 0]);
  for (let i = 0; i < total; i++) {
    for (const k of order(i)) {
      const r = await execPlugin(ps[k]!, "ADD", i, JSON.stringify(ps[k]!.config));
      results[k]![i] = r.stdout;
      if (i >= WARMUP) addMs[k]!.push(r.ms);
    }
  }
  for (let i = 0; i < total; i++) {
    for (const k of order(i)) {
      const conf = { ...ps[k]!.config, prevResult: JSON.parse(results[k]![i]!) as unknown };
      const r = await execPlugin(ps[k]!, "DEL", i, JSON.stringify(conf));
      if (i >= WARMUP) delMs[k]!.push(r.ms);
    }
  }
  const row = (label: string, xs: number[][]): void => {
    const cells = xs.map((v) => `${percentile(v, 50).toFixed(1).padStart(7)} ${percentile(v, 99).toFixed(1).padStart(7)}`);
    const r50 = percentile(xs[0]!, 50) / percentile(xs[1]!, 50);
    const r99 = percentile(xs[0]!, 99) / percentile(xs[1]!, 99);
    console.log(`${label.padEnd(5)} ${cells.join("   ")}   ${r50.toFixed(2).padStart(6)} ${r99.toFixed(2).padStart(6)}`);
  };
  console.log(`CNI plugin latency, ${PODS} pods each (${WARMUP} warm-up pods not counted), interleaved; ms from exec to exit`);
  console.log(`${"".padEnd(5)} ${"switchyard-cni".padEnd(15)}   ${"ptp + host-local".padEnd(15)}   switchyard/ptp`);
  console.log(`${"".padEnd(5)} ${"p50".padStart(7)} ${"p99".padStart(7)}   ${"p50".padStart(7)} ${"p99".padStart(7)}   ${"p50".padStart(6)} ${"p99".padStart(6)}`);
  row("ADD", addMs);
  row("DEL", delMs);
}

async function removeNamespaces(): Promise<void> {
  const out = await runOk("ip", ["netns", "list"], { timeoutMs: 10_000 });
  const ours = out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(PREFIX));
  // The pods first: deleting a pod's namespace takes its veth (and the node's end) with it.
  for (let i = 0; i < ours.length; i += 100) {
    await runCommand("ip", ["-batch", "-"], { stdin: ours.slice(i, i + 100).map((n) => `netns del ${n}\n`).join(""), timeoutMs: 60_000 });
  }
}

async function outer(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/cni.ts creates network namespaces: run it as root");
  for (const bin of [join(SWITCHYARD_DIR, "switchyard-cni"), join(DEBIAN_DIR, "ptp"), join(DEBIAN_DIR, "host-local")]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing (bash hack/ensure-deps.sh builds dist/cni and installs containernetworking-plugins)`);
  }
  await removeNamespaces(); // leftovers of a crashed run
  const tmp = await mkdtemp(join(tmpdir(), "sycnib-"));
  try {
    await runOk("ip", ["netns", "add", NODE], { timeoutMs: 10_000 });
    await runOk("ip", ["-n", NODE, "link", "set", "lo", "up"], { timeoutMs: 10_000 });
    // The pods' namespaces are made here, in the root mount namespace: `ip netns exec` gives the inner run
    // a mount namespace of its own, and a namespace it made would not be seen (or removed) from here.
    await addNetns(plugins(tmp).flatMap((p) => Array.from({ length: WARMUP + PODS }, (_, i) => `${p.netnsPrefix}${i}`)));
    const tsx = join(ROOT, "node_modules", ".bin", "tsx");
    const timeoutMs = 600_000;
    const r = await runCommand(tsx, [import.meta.filename, "--pods", String(PODS), "--warmup", String(WARMUP), "--inner", tmp], { netns: NODE, timeoutMs });
    process.stdout.write(r.stdout);
    if (r.code !== 0) throw new Error(`the bench inside ${NODE} failed (exit ${r.code}): ${r.stderr}`);
  } finally {
    await removeNamespaces();
    await rm(tmp, { recursive: true, force: true });
  }
}

if (args.inner !== undefined) await inner(args.inner);
else await outer();
