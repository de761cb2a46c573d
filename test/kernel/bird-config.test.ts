// Every rendered bird.conf must parse with the real BIRD 2 (`bird -p`), for each topology and role.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ClusterNetworkSpecSchema } from "../../src/api/cluster-network";
import { compileRoutingPlan } from "../../src/compile/routing/compile-routing";
import type { RoutingNode } from "../../src/model/routing-plan";
import { renderBirdConfig } from "../../src/render/bird";

const dir = mkdtempSync(join(tmpdir(), "sy-bird-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const birdPath = ["/usr/sbin/bird", "/sbin/bird"].find((p) => spawnSync(p, ["--version"]).status === 0);

const nodes: RoutingNode[] = [1, 2, 3].map((i) => ({
  name: `n${i}`,
  labels: (i === 1 ? { rr: "true", rack: "a" } : { rack: "a" }) as Record<string, string>,
  ip: `192.168.10.1${i}`,
  underlayCIDR: "192.168.10.0/24",
  block: `10.244.${i}.0/24`,
  mode: "bgp",
}));

const SPECS: [string, Record<string, unknown>][] = [
  ["full-mesh", { asNumber: 64512 }],
  ["route-reflectors", { topology: "route-reflectors", routeReflectors: { nodeSelector: { matchLabels: { rr: "true" } } } }],
  ["tor", { topology: "tor", peers: [{ address: "192.168.10.1", asNumber: 64500 }] }],
  ["full-mesh with a password", { asNumber: 64512, passwordSecretRef: { name: "bgp", key: "password" } }],
  [
    "tor with a password and accepted prefixes",
    { topology: "tor", peers: [{ address: "192.168.10.1", asNumber: 64500, passwordSecretRef: { name: "tor", key: "a" }, acceptPrefixes: [{ cidr: "0.0.0.0/0" }, { cidr: "172.16.0.0/12", maxLength: 24 }] }] },
  ],
];
// Printable ASCII that birdPasswordProblem lets through (space, # ; { } ' among them), as one 80-character password.
const ALLOWED = Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i)).filter((c) => c !== '"' && c !== "\\").join("");
const PASSWORD = ALLOWED.slice(0, 40) + ALLOWED.slice(-40);

describe.skipIf(!birdPath)("rendered bird.conf parses with bird -p", () => {
  for (const [name, bgp] of SPECS) {
    for (const node of ["n1", "n2"]) {
      it(`${name}, ${node}`, () => {
        const spec = ClusterNetworkSpecSchema.parse({ podCIDRs: ["10.244.0.0/16"], blockSize: 24, mode: "bgp", bgp });
        const plan = compileRoutingPlan({ spec, nodes, modesInUse: ["bgp"] }, node);
        const file = join(dir, `${name}-${node}.conf`);
        const passwords = Object.fromEntries(plan.bgp!.peers.filter((p) => p.passwordSecretRef).map((p) => [p.name, PASSWORD]));
        const text = renderBirdConfig(plan.bgp!, { log: join(dir, `${name}-${node}.log`) }, { passwords });
        writeFileSync(file, text);
        const r = spawnSync(birdPath!, ["-p", "-c", file], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        if (Object.keys(passwords).length > 0) expect(text).toContain(`password "${PASSWORD}";`);
      });
    }
  }
});
if (!birdPath) console.warn("bird-config.test: skipped, BIRD 2 is not installed (hack/ensure-deps.sh installs bird2)");
