// Every flag of the real command tree is parsed and checked while the command line is read: a good value
// reaches the action as a number or one of the listed names; a bad one is a usage error (exit 2) that
// names the flag and the value, and the action never runs (so nothing starts, nothing is contacted).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { parseBatch, parseCniChain, parseInteger } from "./flags";
import { buildProgram, givenBefore, main } from "./main";

const dir = mkdtempSync(join(tmpdir(), "sy-flags-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const kubeconfig = join(dir, "kubeconfig");
writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");

/** Parses a command line with the real tree; the action it names is replaced by one that records its options. */
async function parsed(argv: string[]): Promise<Record<string, unknown>> {
  const program = buildProgram(() => undefined, { writeOut: () => undefined, writeErr: () => undefined });
  let target: Command = program;
  for (const word of argv) {
    const sub = target.commands.find((c) => c.name() === word);
    if (sub === undefined) break;
    target = sub;
  }
  let got: Record<string, unknown> | undefined;
  target.action(() => {
    got = target.opts();
  });
  await program.parseAsync(argv, { from: "user" });
  return got!;
}

/** Runs main() on a command line; what it printed to stderr and the exit code. */
async function refused(argv: string[]): Promise<{ code: number; err: string }> {
  let err = "";
  const code = await main(argv, { writeOut: () => undefined, writeErr: (s) => (err += s) });
  return { code, err };
}

describe("parseInteger", () => {
  it.each([
    ["0", { min: 0, max: 10 }, 0],
    ["10", { min: 0, max: 10 }, 10],
    ["-1", { min: -5, max: 5 }, -1],
    ["4294967295", { min: 1, max: 4_294_967_295 }, 4_294_967_295],
  ])("%s in %j is %d", (text, range, n) => expect(parseInteger(text, range)).toBe(n));

  it.each([
    ["abc"], [""], [" 5"], ["5 "], ["1e3"], ["0x10"], ["1.5"], ["+5"], ["05"], ["Infinity"], ["NaN"], ["11"], ["-1"], ["99999999999999999999"],
  ])("refuses %j for 0..10", (text) => expect(() => parseInteger(text, { min: 0, max: 10 }, "seconds")).toThrow("Expected a whole number of seconds from 0 to 10."));
});

describe("parseBatch and parseCniChain", () => {
  it.each([["1", 1], ["40", 40], ["1%", "1%"], ["25%", "25%"], ["100%", "100%"]])("--batch %s", (t, v) => expect(parseBatch(t)).toBe(v));
  it.each([["0"], ["0%"], ["101%"], ["-3"], ["25 %"], ["abc"], [""], ["1.5"]])("--batch %j is refused", (t) => expect(() => parseBatch(t)).toThrow("percentage"));
  it.each([["none", []], ["portmap", ["portmap"]], ["portmap, bandwidth", ["portmap", "bandwidth"]]])("--cni-chain %s", (t, v) => expect(parseCniChain(t)).toEqual(v));
  it.each([["foo", "Unknown plugin \"foo\""], ["", "Unknown plugin \"\""], ["portmap,portmap", "listed twice"]])("--cni-chain %j is refused", (t, why) => expect(() => parseCniChain(t)).toThrow(why));
});

describe("the real command tree parses its flags", () => {
  it.each<[string, string[], Record<string, unknown>]>([
    ["controller defaults", ["controller"], { resync: 300, leaseDuration: 15, leaseNamespace: "switchyard-system", metricsAddress: "127.0.0.1" }],
    ["controller numbers", ["controller", "--resync", "30", "--lease-duration", "3", "--metrics-port", "9464", "--metrics-address", "::"], { resync: 30, leaseDuration: 3, metricsPort: 9464, metricsAddress: "::" }],
    ["agent defaults", ["agent", "--node", "n1"], { node: "n1", repair: 5, cniPolicyWait: 10, cniVersion: "1.1.0", cniChain: ["portmap"], healthAddress: "127.0.0.1" }],
    ["agent numbers", ["agent", "--node", "n1", "--repair", "1", "--cni-policy-wait", "0", "--health-port", "9465", "--cni-chain", "none", "--cni-version", "1.0.0"], { repair: 1, cniPolicyWait: 0, healthPort: 9465, cniChain: [], cniVersion: "1.0.0" }],
    ["migrate", ["migrate", "--to", "bgp", "--canary", "2", "--batch", "25%", "--bgp-as", "65001", "--bgp-topology", "tor", "--kubeconfig", kubeconfig], { to: "bgp", canary: 2, batch: "25%", bgpAs: 65001, bgpTopology: "tor", timeout: 600, name: "default", kubeconfig }],
    ["migrate status", ["migrate", "status", "--name", "prod.cluster", "--kubeconfig", kubeconfig], { name: "prod.cluster", kubeconfig }],
    ["lab up", ["lab", "up", "--nodes", "3", "--subnets", "1", "--pods-per-node", "0", "--mode", "host-gw", "--control-plane", "kubernetes", "--timeout", "300"], { nodes: 3, subnets: 1, podsPerNode: 0, mode: "host-gw", controlPlane: "kubernetes", timeout: 300 }],
    ["lab up defaults", ["lab", "up"], { nodes: 4, subnets: 2, podsPerNode: 2, mode: "vxlan", controlPlane: "embedded", timeout: 120 }],
    ["lab probe folds the protocol's case", ["lab", "probe", "--protocol", "udp", "--port", "53", "--timeout", "300"], { protocol: "UDP", port: 53, timeout: 300 }],
    ["conformance", ["conformance", "corpus.yaml", "--backend", "iptables", "--nodes", "4", "--timeout", "500", "--control-plane", "embedded"], { backend: "iptables", nodes: 4, timeout: 500, controlPlane: "embedded" }],
  ])("%s", async (_name, argv, want) => {
    expect(await parsed(argv)).toMatchObject(want);
  });

  it("migrate's --name and --kubeconfig reach its subcommands, before or after the subcommand's name", async () => {
    for (const argv of [
      ["migrate", "status", "--name", "prod", "--kubeconfig", kubeconfig],
      ["migrate", "--name", "prod", "--kubeconfig", kubeconfig, "status"],
      ["migrate", "--name", "prod", "pause", "--kubeconfig", kubeconfig],
    ]) {
      let got: unknown;
      const program = buildProgram(() => undefined, { writeOut: () => undefined, writeErr: () => undefined });
      // What the real action passes on (it merges the options the same way, then imports ./migrate).
      const sub = program.commands.find((c) => c.name() === "migrate")!.commands.find((c) => c.name() === argv.find((a) => a === "status" || a === "pause"))!;
      sub.action((opts: Record<string, unknown>, cmd: Command) => {
        got = { ...opts, ...givenBefore(cmd) };
      });
      await program.parseAsync(argv, { from: "user" });
      expect(got, argv.join(" ")).toMatchObject({ name: "prod", kubeconfig });
    }
  });

  it.each<[string[], string]>([
    [["controller", "--resync", "abc"], "option '--resync <seconds>' argument 'abc' is invalid. Expected a whole number of seconds from 5 to 86400."],
    [["controller", "--resync", "0"], "'--resync <seconds>' argument '0' is invalid"],
    [["controller", "--resync", ""], "'--resync <seconds>' argument '' is invalid"],
    [["controller", "--lease-duration", "1.5"], "'--lease-duration <seconds>' argument '1.5' is invalid"],
    [["controller", "--metrics-port", "65536"], "'--metrics-port <port>' argument '65536' is invalid. Expected a whole number from 1 to 65535."],
    [["controller", "--metrics-address", "localhost"], "'--metrics-address <ip>' argument 'localhost' is invalid"],
    [["controller", "--lease-namespace", "Kube_System"], "'--lease-namespace <ns>' argument 'Kube_System' is invalid"],
    [["agent", "--node", "n1", "--repair", "0"], "'--repair <seconds>' argument '0' is invalid"],
    [["agent", "--node", "n1", "--cni-policy-wait", "601"], "'--cni-policy-wait <seconds>' argument '601' is invalid"],
    [["agent", "--node", "n1", "--health-port", "http"], "'--health-port <port>' argument 'http' is invalid"],
    [["agent", "--node", "n1", "--cni-version", "1.2.0"], "'--cni-version <version>' argument '1.2.0' is invalid. Allowed choices are 1.1.0, 1.0.0, 0.4.0, 0.3.1, 0.3.0."],
    [["agent", "--node", "N1 "], "'--node <name>' argument 'N1 ' is invalid"],
    [["migrate", "--to", "geneve"], "'--to <mode>' argument 'geneve' is invalid. Allowed choices are vxlan, ipip, host-gw, bgp."],
    [["migrate", "--to", "bgp", "--bgp-topology", "mesh"], "'--bgp-topology <t>' argument 'mesh' is invalid"],
    [["migrate", "--to", "bgp", "--bgp-as", "0"], "'--bgp-as <asn>' argument '0' is invalid"],
    [["migrate", "--to", "bgp", "--canary", "-1"], "'--canary <n>' argument '-1' is invalid"],
    [["migrate", "--to", "bgp", "--batch", "150%"], "'--batch <n|p%>' argument '150%' is invalid"],
    [["migrate", "--to", "bgp", "--timeout", "10m"], "'--timeout <seconds>' argument '10m' is invalid"],
    [["migrate", "--to", "bgp", "--kubeconfig", join(dir, "missing")], `'--kubeconfig <file>' argument '${join(dir, "missing")}' is invalid. Cannot read the kubeconfig: no such file.`],
    [["migrate", "status", "--kubeconfig", dir], "Cannot read the kubeconfig: it is not a file."],
    [["migrate", "abort", "--kubeconfig", join(dir, "missing")], "Cannot read the kubeconfig: no such file."],
    [["lab", "up", "--nodes", "0"], "'--nodes <n>' argument '0' is invalid"],
    [["lab", "up", "--mode", "VXLAN"], "'--mode <mode>' argument 'VXLAN' is invalid"],
    [["lab", "up", "--control-plane", "kind"], "'--control-plane <kind>' argument 'kind' is invalid"],
    [["lab", "probe", "--protocol", "icmp"], "'--protocol <protocol>' argument 'icmp' is invalid. Allowed choices are TCP, UDP, SCTP."],
    [["lab", "probe", "--timeout", "5"], "'--timeout <ms>' argument '5' is invalid"],
    [["conformance", "c.yaml", "--backend", "ebpf"], "'--backend <backend>' argument 'ebpf' is invalid"],
    [["conformance", "c.yaml", "--nodes", "2"], "'--nodes <n>' argument '2' is invalid"],
  ])("%j exits 2: %s", async (argv, message) => {
    const r = await refused(argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });

  it("every option that takes a value is parsed, except the free-text ones listed here", () => {
    // Names, paths and ids: any string is a value (a wrong path fails with its own message when read).
    const freeText = new Set(["--identity", "--netns", "--run-dir", "--state-dir", "--cni-bin-dir", "--cni-conf-dir", "--cni-state-dir", "--cni-data-dir", "--file", "--old", "--case", "--prefix", "--cluster-network"]);
    const unparsed: string[] = [];
    const walk = (c: Command, path: string): void => {
      for (const o of c.options) {
        const takesValue = o.required || o.optional;
        if (takesValue && o.parseArg === undefined && !freeText.has(o.long!)) unparsed.push(`${path} ${o.long}`);
      }
      for (const sub of c.commands) walk(sub, `${path} ${sub.name()}`);
    };
    walk(buildProgram(() => undefined), "switchyard");
    expect(unparsed).toEqual([]);
  });
});
