// Kernel test: the switchyard-cni plugin (cni/, built into dist/cni by vitest's global setup) driven through
// libcni by dist/cni/cni-driver exactly as a container runtime drives it, inside a throwaway "node"
// namespace (sycni-node: a dummy underlay and a veth to a client namespace, nothing linked to the root
// namespace). Every verb; the result; the wiring in both namespaces (`ip -j`); idempotent DEL; GC; STATUS
// against the agent's ready marker; the policy wait; chaining with Debian's portmap (a real TCP connection
// to a hostPort), bandwidth and tuning; 50 concurrent ADDs; an exhausted block; static addresses; failed
// ADDs that leave nothing behind. Namespaces: prefix sycni-. Run under
// `flock /tmp/switchyard-kernel-tests.lock`.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand, runOk, type ExecResult } from "../../src/base/exec";
import { waitFor } from "../../src/base/wait";
import { podInterfaceName } from "../../src/model/names";

const ROOT = join(import.meta.dirname, "..", "..");
const DRIVER = join(ROOT, "dist", "cni", "cni-driver");
const CNI_PATH = `${join(ROOT, "dist", "cni")}:/usr/lib/cni`;
const PREFIX = "sycni-";
const NODE = `${PREFIX}node`;
const CLIENT = `${PREFIX}client`;
const NODE_IP = "192.168.77.1";
const CLIENT_IP = "192.168.77.2";
/** The node's end of its veth to the client namespace. */
const UNDERLAY = "sycni-under";
const MTU = 1450;

interface IpLink {
  ifname: string;
  mtu: number;
  address?: string;
  operstate?: string;
  flags?: string[];
  ifalias?: string;
  link_type?: string;
}
interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  scope?: string;
}
interface CniResult {
  cniVersion: string;
  interfaces: { name: string; mac?: string; mtu?: number; sandbox?: string }[];
  ips: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes?: { dst: string; gw?: string; scope?: number }[];
}
interface CniError {
  code: number;
  msg: string;
  details?: string;
}
interface DriverRun extends ExecResult {
  readonly json: unknown;
}

async function ipJson<T>(netns: string, args: string[]): Promise<T> {
  const out = await runOk("ip", ["-j", "-n", netns, ...args], { timeoutMs: 10_000 });
  return JSON.parse(out.trim() === "" ? "[]" : out) as T;
}

async function nodeLinks(): Promise<IpLink[]> {
  return ipJson<IpLink[]>(NODE, ["link", "show"]);
}

async function podLinkNames(netns: string): Promise<string[]> {
  return (await ipJson<IpLink[]>(netns, ["link", "show"])).map((l) => l.ifname).sort();
}

async function readSysctl(netns: string, key: string): Promise<string> {
  return (await runOk("sysctl", ["-n", key], { netns, timeoutMs: 10_000 })).trim();
}

async function addNetns(...names: string[]): Promise<void> {
  await runOk("ip", ["-batch", "-"], { stdin: names.map((n) => `netns add ${n}\n`).join(""), timeoutMs: 30_000 });
}

async function delNetns(name: string): Promise<void> {
  await runCommand("ip", ["netns", "del", name], { timeoutMs: 10_000 });
}

async function listOurNetns(): Promise<string[]> {
  const out = await runOk("ip", ["netns", "list"], { timeoutMs: 10_000 });
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(PREFIX));
}

async function removeAllOurNetns(): Promise<void> {
  for (const n of await listOurNetns()) await delNetns(n);
}

describe("switchyard-cni through libcni", () => {
  let tmp = "";
  const conflists: Record<string, string> = {};
  const started: ChildProcess[] = [];
  let podSeq = 0;

  /** A fresh pod namespace (removed with the others in afterAll). */
  async function newPodNetns(): Promise<string> {
    const name = `${PREFIX}p${++podSeq}`;
    await addNetns(name);
    return name;
  }

  interface DriverOptions {
    readonly netns?: string;
    readonly containerId?: string;
    readonly pod?: { readonly namespace: string; readonly name: string };
    readonly extraArgs?: string;
    readonly capabilityArgs?: unknown;
    readonly validAttachments?: unknown;
    readonly cacheDir?: string;
  }

  /** Runs the driver inside the node namespace, as the runtime runs plugins there. */
  async function driver(verb: string, conflist: string, o: DriverOptions = {}): Promise<DriverRun> {
    const args = [verb, "--conflist", conflists[conflist]!, "--cni-path", CNI_PATH, "--cache-dir", o.cacheDir ?? join(tmp, "cache"), "--timeout", "60s"];
    if (o.netns !== undefined) args.push("--netns", `/run/netns/${o.netns}`);
    if (o.containerId !== undefined) args.push("--container-id", o.containerId);
    // As containerd passes them: IgnoreUnknown=1 first (Debian's plugins refuse keys they do not know without it).
    const cniArgs = [o.pod ? `IgnoreUnknown=1;K8S_POD_NAMESPACE=${o.pod.namespace};K8S_POD_NAME=${o.pod.name}` : "", o.extraArgs ?? ""].filter((s) => s !== "").join(";");
    if (cniArgs !== "") args.push("--args", cniArgs);
    if (o.capabilityArgs !== undefined) args.push("--capability-args", JSON.stringify(o.capabilityArgs));
    if (o.validAttachments !== undefined) args.push("--valid-attachments", JSON.stringify(o.validAttachments));
    const r = await runCommand(DRIVER, args, { netns: NODE, timeoutMs: 90_000 });
    let json: unknown;
    try {
      json = r.stdout.trim() === "" ? undefined : JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
    return { ...r, json };
  }

  async function add(conflist: string, o: DriverOptions): Promise<CniResult> {
    const r = await driver("add", conflist, o);
    if (r.code !== 0) throw new Error(`ADD failed (${r.code}): ${r.stdout}${r.stderr}`);
    return r.json as CniResult;
  }

  function cniError(r: DriverRun): CniError {
    expect(r.code, `expected a failure, got ${r.stdout}`).not.toBe(0);
    return r.json as CniError;
  }

  async function allocations(dataDir: string): Promise<string[]> {
    if (!existsSync(join(tmp, dataDir))) return [];
    return (await readdir(join(tmp, dataDir))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
  }

  /** Writes <tmp>/<file>.conflist for the network sycni-<network> (default: the file's name). */
  async function writeConflist(file: string, cniVersion: string, plugins: readonly Record<string, unknown>[], network = file): Promise<void> {
    conflists[file] = join(tmp, `${file}.conflist`);
    await writeFile(conflists[file]!, JSON.stringify({ cniVersion, name: `sycni-${network}`, plugins }, null, 1));
  }

  function switchyard(dataDir: string, blocks: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { type: "switchyard-cni", mtu: MTU, blocks, dataDir: join(tmp, dataDir), agentStateDir: join(tmp, "agent"), policyWaitSeconds: 0, capabilities: { ips: true }, ...extra };
  }

  beforeAll(async () => {
    expect(process.getuid?.(), "this test creates network namespaces: run it as root").toBe(0);
    expect(existsSync(DRIVER), `${DRIVER} is built by vitest's global setup (hack/build-cni.sh)`).toBe(true);
    await removeAllOurNetns(); // leftovers of a crashed earlier run
    tmp = await mkdtemp(join(tmpdir(), "sycni-"));
    await mkdir(join(tmp, "agent"), { recursive: true });

    // The node: its underlay is a veth to a client namespace, which also carries the node's default route
    // (proxy ARP answers for 169.254.1.1 only when the node routes it elsewhere than the asking veth).
    await addNetns(NODE, CLIENT);
    await runOk("ip", ["-n", NODE, "-batch", "-"], {
      stdin: [
        "link set lo up",
        `link add ${UNDERLAY} type veth peer name eth0 netns ${CLIENT}`,
        `addr add ${NODE_IP}/24 dev ${UNDERLAY}`,
        `link set ${UNDERLAY} up`,
        `route add default via ${CLIENT_IP} dev ${UNDERLAY}`,
      ].join("\n"),
      timeoutMs: 10_000,
    });
    await runOk("ip", ["-n", CLIENT, "-batch", "-"], { stdin: ["link set lo up", `addr add ${CLIENT_IP}/24 dev eth0`, "link set eth0 up"].join("\n"), timeoutMs: 10_000 });
    await runOk("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"], { netns: NODE, timeoutMs: 10_000 });

    await writeConflist("alone", "1.1.0", [switchyard("data", ["10.244.1.0/26"])]);
    await writeConflist("v031", "0.3.1", [switchyard("data-old", ["10.244.5.0/26"])]);
    await writeConflist("v040", "0.4.0", [switchyard("data-old", ["10.244.5.0/26"])]);
    await writeConflist("wait", "1.1.0", [switchyard("data-wait", ["10.244.6.0/26"], { policyWaitSeconds: 10 })]);
    await writeConflist("wait-short", "1.1.0", [switchyard("data-wait", ["10.244.6.0/26"], { policyWaitSeconds: 1 })]);
    await writeConflist("conc", "1.1.0", [switchyard("data-conc", ["10.244.3.0/26"])]);
    await writeConflist("small", "1.1.0", [switchyard("data-small", ["10.244.9.0/29"])]);
    await writeConflist("undo", "1.1.0", [switchyard("data-undo", ["10.244.4.0/26"])]);
    // Debian's plugins speak spec 1.0.0 at most: the chained list is a 1.0.0 one.
    const chain = [
      switchyard("data-chain", ["10.244.2.0/26"]),
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "bandwidth", capabilities: { bandwidth: true } },
      { type: "tuning", sysctl: { "net.core.somaxconn": "1234" } },
    ];
    await writeConflist("chain", "1.0.0", chain);
    await writeConflist("chain-no-portmap", "1.0.0", chain.filter((p) => p["type"] !== "portmap"), "chain");
  }, 60_000);

  afterAll(async () => {
    for (const child of started) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    await removeAllOurNetns();
    if (tmp !== "") await rm(tmp, { recursive: true, force: true });
  }, 60_000);

  it("reports its versions, and STATUS follows the agent's ready marker (50 before, OK after)", async () => {
    const v = await driver("version", "alone");
    expect(v.code, v.stderr).toBe(0);
    expect(v.json).toEqual({ "switchyard-cni": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });

    const before = await driver("status", "alone");
    const e = cniError(before);
    expect(e.code).toBe(50);
    expect(e.msg).toContain("has not applied its first plan yet");
    expect(e.msg).toContain(join(tmp, "agent", "ready"));

    await writeFile(join(tmp, "agent", "ready"), "");
    const after = await driver("status", "alone");
    expect(after.code, after.stdout + after.stderr).toBe(0);
  });

  it("ADD wires the pod as the lab does, CHECK verifies it and names a mismatch, a second ADD is refused", async () => {
    const pod = await newPodNetns();
    const ref = { namespace: "default", name: "web-0" };
    const veth = podInterfaceName(ref.namespace, ref.name);
    const result = await add("alone", { netns: pod, containerId: "c-web", pod: ref });

    // The result.
    expect(result.cniVersion).toBe("1.1.0");
    expect(result.interfaces).toHaveLength(2);
    expect(result.interfaces[0]).toMatchObject({ name: veth, mtu: MTU });
    expect(result.interfaces[0]!.sandbox).toBeUndefined();
    expect(result.interfaces[1]).toMatchObject({ name: "eth0", mtu: MTU, sandbox: `/run/netns/${pod}` });
    expect(result.ips).toEqual([{ address: "10.244.1.1/32", gateway: "169.254.1.1", interface: 1 }]);
    expect(result.routes).toEqual([{ dst: "169.254.1.1/32", scope: 253 }, { dst: "0.0.0.0/0", gw: "169.254.1.1" }]);

    // The pod's side.
    const podLinks = await ipJson<IpLink[]>(pod, ["link", "show"]);
    const eth0 = podLinks.find((l) => l.ifname === "eth0")!;
    expect(eth0.mtu).toBe(MTU);
    expect(eth0.address).toBe(result.interfaces[1]!.mac);
    expect(eth0.flags).toContain("UP");
    expect(podLinks.find((l) => l.ifname === "lo")!.flags).toContain("UP");
    const addrs = await ipJson<IpAddr[]>(pod, ["-4", "addr", "show", "dev", "eth0"]);
    expect(addrs[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(["10.244.1.1/32"]);
    const podRoutes = await ipJson<IpRoute[]>(pod, ["-4", "route", "show"]);
    expect(podRoutes.map((r) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, scope: r.scope }))).toEqual([
      { dst: "default", gateway: "169.254.1.1", dev: "eth0", scope: undefined },
      { dst: "169.254.1.1", gateway: undefined, dev: "eth0", scope: "link" },
    ]);

    // The node's side: the veth named for the pod, its route, proxy ARP without delay.
    const host = (await nodeLinks()).find((l) => l.ifname === veth);
    expect(host, `no ${veth} in ${NODE}`).toBeDefined();
    expect(host!.mtu).toBe(MTU);
    expect(host!.address).toBe(result.interfaces[0]!.mac);
    expect(host!.flags).toContain("UP");
    expect(host!.ifalias).toBe("switchyard-cni c-web eth0");
    const hostRoutes = await ipJson<IpRoute[]>(NODE, ["-4", "route", "show", "10.244.1.1/32"]);
    expect(hostRoutes).toMatchObject([{ dst: "10.244.1.1", dev: veth, scope: "link" }]);
    expect(await readSysctl(NODE, `net.ipv4.conf.${veth}.proxy_arp`)).toBe("1");
    expect(await readSysctl(NODE, `net.ipv4.neigh.${veth}.proxy_delay`)).toBe("0");
    expect(await readFile(join(tmp, "data", "10.244.1.1"), "utf8")).toBe("c-web\neth0\ndefault/web-0\n");

    // A real packet both ways: the pod answers through its default route (proxy ARP for 169.254.1.1).
    await runOk("ping", ["-c", "1", "-W", "2", "10.244.1.1"], { netns: NODE, timeoutMs: 10_000 });

    const ok = await driver("check", "alone", { netns: pod, containerId: "c-web", pod: ref });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    await runOk("ip", ["-n", pod, "route", "del", "default"], { timeoutMs: 10_000 });
    const broken = cniError(await driver("check", "alone", { netns: pod, containerId: "c-web", pod: ref }));
    expect(broken.code).toBe(103);
    expect(broken.msg).toContain("the pod lacks the route default via 169.254.1.1 dev eth0");
    await runOk("ip", ["-n", pod, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"], { timeoutMs: 10_000 });
    expect((await driver("check", "alone", { netns: pod, containerId: "c-web", pod: ref })).code).toBe(0);

    const again = cniError(await driver("add", "alone", { netns: pod, containerId: "c-web", pod: ref }));
    expect(again.code).toBe(102);
    expect(again.msg).toContain(`interface eth0 already exists in /run/netns/${pod}`);
    expect(await allocations("data")).toEqual(["10.244.1.1"]);

    // DEL, twice; the veth, its route and the allocation are gone, the pod's end with them.
    for (let i = 0; i < 2; i++) {
      const del = await driver("del", "alone", { netns: pod, containerId: "c-web", pod: ref });
      expect(del.code, del.stdout + del.stderr).toBe(0);
    }
    expect((await nodeLinks()).map((l) => l.ifname)).not.toContain(veth);
    expect(await ipJson<IpRoute[]>(NODE, ["-4", "route", "show", "10.244.1.1/32"])).toEqual([]);
    expect(await allocations("data")).toEqual([]);
    expect(await podLinkNames(pod)).toEqual(["lo"]);
  });

  it("prints results of older spec versions (0.3.1, 0.4.0) through the library's conversion", async () => {
    for (const [conflist, version] of [
      ["v031", "0.3.1"],
      ["v040", "0.4.0"],
    ] as const) {
      const pod = await newPodNetns();
      const ref = { namespace: "old", name: `v${version}` };
      const result = await add(conflist, { netns: pod, containerId: `c-${conflist}`, pod: ref });
      expect(result.cniVersion).toBe(version);
      expect(result.ips[0]).toMatchObject({ version: "4", address: "10.244.5.1/32", interface: 1 });
      expect(result.interfaces[0]!.name).toBe(podInterfaceName(ref.namespace, ref.name));
      const del = await driver("del", conflist, { netns: pod, containerId: `c-${conflist}`, pod: ref });
      expect(del.code, del.stdout + del.stderr).toBe(0);
    }
    expect(await allocations("data-old")).toEqual([]);
  });

  it("DEL after the pod's namespace is gone succeeds and frees everything", async () => {
    const pod = await newPodNetns();
    const ref = { namespace: "default", name: "gone" };
    const veth = podInterfaceName(ref.namespace, ref.name);
    await add("alone", { netns: pod, containerId: "c-gone", pod: ref });
    expect(await allocations("data")).toEqual(["10.244.1.1"]);
    await delNetns(pod);
    // The namespace's teardown takes the veth pair with it, asynchronously; DEL must not care either way.
    for (let i = 0; i < 2; i++) {
      const del = await driver("del", "alone", { netns: pod, containerId: "c-gone", pod: ref });
      expect(del.code, del.stdout + del.stderr).toBe(0);
    }
    expect(await allocations("data")).toEqual([]);
    await waitFor(`${veth} gone from ${NODE}`, async () => !(await nodeLinks()).some((l) => l.ifname === veth), 10_000, 20);
  });

  it("GC frees every allocation not listed and deletes its veth; the listed one stays", async () => {
    const refs = ["g1", "g2", "g3"].map((name) => ({ namespace: "gc", name }));
    for (const ref of refs) await add("alone", { netns: await newPodNetns(), containerId: `c-${ref.name}`, pod: ref });
    expect(await allocations("data")).toEqual(["10.244.1.1", "10.244.1.2", "10.244.1.3"]);

    // An empty libcni cache: libcni has no attachment of its own to DEL first, so only the plugin's GC acts.
    const gc = await driver("gc", "alone", { cacheDir: join(tmp, "cache-empty"), validAttachments: [{ containerID: "c-g1", ifname: "eth0" }] });
    expect(gc.code, gc.stdout + gc.stderr).toBe(0);
    expect(await allocations("data")).toEqual(["10.244.1.1"]);
    const names = (await nodeLinks()).map((l) => l.ifname);
    expect(names).toContain(podInterfaceName("gc", "g1"));
    expect(names).not.toContain(podInterfaceName("gc", "g2"));
    expect(names).not.toContain(podInterfaceName("gc", "g3"));

    // Through libcni's cache as a runtime does: nothing valid, so g1 goes too (DEL of the cached attachment, then GC).
    const all = await driver("gc", "alone", { validAttachments: [] });
    expect(all.code, all.stdout + all.stderr).toBe(0);
    expect(await allocations("data")).toEqual([]);
    expect((await nodeLinks()).map((l) => l.ifname)).not.toContain(podInterfaceName("gc", "g1"));
  });

  it("ADD waits for the agent's endpoint marker before creating anything; without it, code 11 and nothing created", async () => {
    const pod = await newPodNetns();
    const ref = { namespace: "wait", name: "w1" };
    const veth = podInterfaceName(ref.namespace, ref.name);
    const t0 = Date.now();
    const running = driver("add", "wait", { netns: pod, containerId: "c-w1", pod: ref });
    let finished = false;
    void running.then(() => (finished = true));
    await new Promise((r) => setTimeout(r, 700)); // the agent takes its time: ADD must still be waiting
    expect(finished).toBe(false);
    expect((await nodeLinks()).map((l) => l.ifname)).not.toContain(veth);
    expect(await allocations("data-wait")).toEqual([]);
    await mkdir(join(tmp, "agent", "endpoints"), { recursive: true });
    await writeFile(join(tmp, "agent", "endpoints", veth), "");
    const r = await running;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    expect((r.json as CniResult).interfaces[0]!.name).toBe(veth);
    expect((await driver("del", "wait", { netns: pod, containerId: "c-w1", pod: ref })).code).toBe(0);

    const pod2 = await newPodNetns();
    const ref2 = { namespace: "wait", name: "w2" };
    const t1 = Date.now();
    const e = cniError(await driver("add", "wait-short", { netns: pod2, containerId: "c-w2", pod: ref2 }));
    expect(Date.now() - t1).toBeGreaterThanOrEqual(1_000);
    expect(e.code).toBe(11);
    expect(e.msg).toContain(`has not programmed pod wait/w2 (interface ${podInterfaceName("wait", "w2")}) within 1s`);
    expect(e.msg).toContain(join(tmp, "agent", "endpoints", podInterfaceName("wait", "w2")));
    expect((await nodeLinks()).map((l) => l.ifname)).not.toContain(podInterfaceName("wait", "w2"));
    expect(await allocations("data-wait")).toEqual([]);
    expect(await podLinkNames(pod2)).toEqual(["lo"]);
  });

  it("chains first before Debian's portmap, bandwidth and tuning (spec 1.0.0): a real TCP connection reaches the hostPort", async () => {
    const pod = await newPodNetns();
    const ref = { namespace: "chain", name: "server" };
    const veth = podInterfaceName(ref.namespace, ref.name);
    const capabilityArgs = {
      portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: "tcp" }],
      bandwidth: { ingressRate: 100_000_000, ingressBurst: 10_000_000, egressRate: 100_000_000, egressBurst: 10_000_000 },
    };
    const opts = { netns: pod, containerId: "c-chain", pod: ref, capabilityArgs };
    const result = await add("chain", opts);
    expect(result.cniVersion).toBe("1.0.0");
    expect(result.interfaces[0]!.name).toBe(veth);
    expect(result.ips[0]!.address).toBe("10.244.2.1/32");

    // tuning set the pod's sysctl; bandwidth put a tbf qdisc on the host veth and an ifb for egress.
    expect(await readSysctl(pod, "net.core.somaxconn")).toBe("1234");
    const qdiscs = JSON.parse(await runOk("tc", ["-n", NODE, "-j", "qdisc", "show", "dev", veth], { timeoutMs: 10_000 })) as { kind: string }[];
    expect(qdiscs.map((q) => q.kind)).toContain("tbf");
    expect((await nodeLinks()).some((l) => l.ifname.startsWith("bwp"))).toBe(true);

    // A tiny server in the pod: one connection, bounded by its own timeout.
    const server = spawn(
      "ip",
      [
        "netns", "exec", pod, "python3", "-c",
        [
          "import socket, sys",
          "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
          "s.bind(('0.0.0.0', 8080)); s.listen(1); s.settimeout(20)",
          "print('listening', flush=True)",
          "c, peer = s.accept(); c.sendall(('hello ' + peer[0] + '\\n').encode()); c.close()",
        ].join("\n"),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    started.push(server);
    let serverOut = "";
    server.stdout!.on("data", (b: Buffer) => (serverOut += b.toString()));
    try {
      await waitFor("the pod's server to listen", () => serverOut.includes("listening"), 10_000, 20);
      const client = [
        "import socket",
        `c = socket.create_connection(('${NODE_IP}', 18080), timeout=5)`,
        "print(c.recv(100).decode().strip())",
      ].join("\n");
      const reply = await runOk("python3", ["-c", client], { netns: CLIENT, timeoutMs: 15_000 });
      expect(reply.trim()).toBe(`hello ${CLIENT_IP}`);
    } finally {
      if (server.exitCode === null && server.pid !== undefined) {
        try {
          process.kill(server.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }

    // CHECK in chain order. Debian's portmap (1.1.1) fails CHECK for an IPv4-only pod by looking for an
    // IPv6 chain it never made (containernetworking/plugins#819, fixed in 1.2.0); its failure comes after
    // switchyard-cni's CHECK passed. The same chain without portmap (same network name, so libcni finds
    // the cached ADD result) must pass whole.
    const check = await driver("check", "chain", opts);
    if (check.code !== 0) expect((check.json as CniError).msg).toMatch(/^could not check ipv6 dnat: chain CNI-DN-\w+ not found/);
    const checkRest = await driver("check", "chain-no-portmap", opts);
    expect(checkRest.code, checkRest.stdout + checkRest.stderr).toBe(0);
    const del = await driver("del", "chain", opts);
    expect(del.code, del.stdout + del.stderr).toBe(0);
    const after = (await nodeLinks()).map((l) => l.ifname);
    expect(after).not.toContain(veth);
    expect(after.some((n) => n.startsWith("bwp"))).toBe(false);
    const nat = await runOk("iptables", ["-t", "nat", "-S"], { netns: NODE, timeoutMs: 10_000 });
    expect(nat).not.toContain("18080");
    expect(await allocations("data-chain")).toEqual([]);
  });

  it("50 concurrent ADDs get 50 distinct addresses; 50 concurrent DELs free them all", async () => {
    const n = 50;
    const pods = Array.from({ length: n }, (_, i) => ({ netns: `${PREFIX}c${i}`, ref: { namespace: "conc", name: `p${i}` }, containerId: `c-conc-${i}` }));
    await addNetns(...pods.map((p) => p.netns));
    const results = await Promise.all(pods.map((p) => add("conc", { netns: p.netns, containerId: p.containerId, pod: p.ref })));
    const addresses = results.map((r) => r.ips[0]!.address);
    expect(new Set(addresses).size).toBe(n);
    expect(await allocations("data-conc")).toHaveLength(n);
    const links = new Set((await nodeLinks()).map((l) => l.ifname));
    for (const [i, p] of pods.entries()) {
      expect(results[i]!.interfaces[0]!.name).toBe(podInterfaceName(p.ref.namespace, p.ref.name));
      expect(links.has(podInterfaceName(p.ref.namespace, p.ref.name))).toBe(true);
    }
    const dels = await Promise.all(pods.map((p) => driver("del", "conc", { netns: p.netns, containerId: p.containerId, pod: p.ref })));
    expect(dels.filter((d) => d.code !== 0).map((d) => d.stdout + d.stderr)).toEqual([]);
    expect(await allocations("data-conc")).toEqual([]);
    for (const p of pods) await delNetns(p.netns);
  }, 120_000);

  it("refuses an exhausted block with a clear error and leaves nothing of the refused pod", async () => {
    const pods: { netns: string; ref: { namespace: string; name: string }; containerId: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const p = { netns: await newPodNetns(), ref: { namespace: "small", name: `s${i}` }, containerId: `c-small-${i}` };
      await add("small", { netns: p.netns, containerId: p.containerId, pod: p.ref });
      pods.push(p);
    }
    expect(await allocations("data-small")).toEqual(["10.244.9.1", "10.244.9.2", "10.244.9.3", "10.244.9.4", "10.244.9.5", "10.244.9.6"]);
    const extra = await newPodNetns();
    const e = cniError(await driver("add", "small", { netns: extra, containerId: "c-small-x", pod: { namespace: "small", name: "x" } }));
    expect(e.code).toBe(101);
    expect(e.msg).toContain("no free address in 10.244.9.0/29 (6 in use)");
    expect((await nodeLinks()).map((l) => l.ifname)).not.toContain(podInterfaceName("small", "x"));
    expect(await podLinkNames(extra)).toEqual(["lo"]);
    for (const p of pods) expect((await driver("del", "small", { netns: p.netns, containerId: p.containerId, pod: p.ref })).code).toBe(0);
    expect(await allocations("data-small")).toEqual([]);
  });

  it("honours a static address, refuses a taken one and a foreign one, and a refused ADD leaves nothing", async () => {
    const p1 = await newPodNetns();
    const r1 = await add("alone", { netns: p1, containerId: "c-s1", pod: { namespace: "static", name: "s1" }, capabilityArgs: { ips: ["10.244.1.7/32"] } });
    expect(r1.ips[0]!.address).toBe("10.244.1.7/32");
    const addrs = await ipJson<IpAddr[]>(p1, ["-4", "addr", "show", "dev", "eth0"]);
    expect(addrs[0]!.addr_info[0]!.local).toBe("10.244.1.7");

    // Taken (CNI_ARGS IP=, the other way to ask).
    const p2 = await newPodNetns();
    const taken = cniError(await driver("add", "alone", { netns: p2, containerId: "c-s2", pod: { namespace: "static", name: "s2" }, extraArgs: "IP=10.244.1.7" }));
    expect(taken.code).toBe(100);
    expect(taken.msg).toContain("requested address 10.244.1.7 is in use (container c-s1, interface eth0, pod static/s1)");
    // Outside the blocks.
    const foreign = cniError(await driver("add", "alone", { netns: p2, containerId: "c-s2", pod: { namespace: "static", name: "s2" }, capabilityArgs: { ips: ["10.99.0.5"] } }));
    expect(foreign.code).toBe(7);
    expect(foreign.msg).toContain("requested address 10.99.0.5 is not in this node's blocks (10.244.1.0/26)");
    expect((await nodeLinks()).map((l) => l.ifname)).not.toContain(podInterfaceName("static", "s2"));
    expect(await podLinkNames(p2)).toEqual(["lo"]);
    expect(await allocations("data")).toEqual(["10.244.1.7"]);
    expect((await driver("del", "alone", { netns: p1, containerId: "c-s1", pod: { namespace: "static", name: "s1" } })).code).toBe(0);
    expect(await allocations("data")).toEqual([]);
  });

  it("a failure after the veth exists undoes the ADD: veth, host route and allocation gone", async () => {
    // The host route 10.244.4.1/32 is taken by hand, so the plugin's route add fails late in ADD.
    await runOk("ip", ["-n", NODE, "route", "add", "10.244.4.1/32", "dev", UNDERLAY], { timeoutMs: 10_000 });
    const pod = await newPodNetns();
    const ref = { namespace: "undo", name: "u1" };
    const veth = podInterfaceName(ref.namespace, ref.name);
    const e = cniError(await driver("add", "undo", { netns: pod, containerId: "c-u1", pod: ref }));
    expect(e.msg).toContain(`cannot add the host route 10.244.4.1/32 dev ${veth}`);
    expect((await nodeLinks()).map((l) => l.ifname)).not.toContain(veth);
    expect(await podLinkNames(pod)).toEqual(["lo"]);
    expect(await allocations("data-undo")).toEqual([]);
    expect(await ipJson<IpRoute[]>(NODE, ["-4", "route", "show", "10.244.4.1/32"])).toMatchObject([{ dev: UNDERLAY }]);

    await runOk("ip", ["-n", NODE, "route", "del", "10.244.4.1/32", "dev", UNDERLAY], { timeoutMs: 10_000 });
    const ok = await add("undo", { netns: pod, containerId: "c-u1", pod: ref });
    expect(ok.ips[0]!.address).toBe("10.244.4.1/32");
    expect((await driver("del", "undo", { netns: pod, containerId: "c-u1", pod: ref })).code).toBe(0);
  });
});
