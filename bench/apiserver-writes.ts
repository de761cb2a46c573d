// bench/apiserver-writes: write throughput of the lab's API server emulator on one large NodeNetwork
// (~400 KB of per-peer routing in .spec, like a node of a few hundred peers), over HTTP as the clients
// talk to it. Each write kind runs N times and prints ops/s and ms per op:
//   status-merge   PATCH .../status (merge patch) changing a few status fields (the agents' writes)
//   ssa-apply      server-side apply of the whole object with a changed planHash and one changed route
//   ssa-noop       server-side apply of the same configuration again (no change, no new resourceVersion)
//   spec-merge     merge patch of one spec field
//   json-patch     JSON patch replacing one route's gateway
// Run: `npx tsx bench/apiserver-writes.ts [--n 200] [--peers 1500]`.
import { parseArgs } from "node:util";
import { startApiServer } from "../lab/apiserver";
import { opaquePlanNodeNetworkCrd } from "../test/support/node-plan";

const { values: args } = parseArgs({ options: { n: { type: "string", default: "200" }, peers: { type: "string", default: "1500" } } });
const N = Number(args.n);
const PEERS = Number(args.peers);
const NAME = "bench-node";

function routing(peers: number, variant: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < peers; i++) {
    const a = Math.floor(i / 250);
    const b = (i % 250) + 1;
    out[`n${String(i).padStart(4, "0")}`] = {
      transport: "vxlan",
      nodeIP: `172.16.${a}.${b}`,
      routes: [{ dst: `10.${a}.${b}.0/24`, via: `10.${a}.${b}.0`, dev: "switchyard.1", onlink: true }],
      fdb: { mac: `02:00:ac:10:${a.toString(16).padStart(2, "0")}:${b.toString(16).padStart(2, "0")}`, dst: `172.16.${a}.${b}` },
      neighbour: { ip: `10.${a}.${b}.0`, mac: "02:00:00:00:00:01" },
      mtu: variant === i ? 1400 : 1450,
    };
  }
  return { backend: "vxlan", vni: 1, peers: out };
}

function nodeNetwork(variant: number): Record<string, unknown> {
  return {
    apiVersion: "switchyard.dev/v1alpha1",
    kind: "NodeNetwork",
    metadata: { name: NAME, labels: { "switchyard.dev/node": NAME } },
    spec: {
      nodeName: NAME,
      clusterNetwork: "default",
      generation: 1,
      planHash: `plan-${variant}`,
      nodeIP: "172.16.0.1",
      block: "10.0.1.0/24",
      mode: "vxlan",
      mtu: 1450,
      routing: routing(PEERS, variant),
      policy: { groups: {}, rules: [] },
    },
  };
}

async function request(url: string, method: string, contentType: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method, headers: { "Content-Type": contentType }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
}

async function main(): Promise<void> {
  // Opaque plan sections: the bench measures how writes share an object's unchanged parts, whatever its shape.
  const api = await startApiServer({ historySize: 1000, crdDir: false, crds: [opaquePlanNodeNetworkCrd()] });
  const base = `${api.url}/apis/switchyard.dev/v1alpha1/nodenetworks`;
  try {
    const first = JSON.stringify(nodeNetwork(-1));
    await request(`${base}/${NAME}?fieldManager=bench&force=true`, "PATCH", "application/apply-patch+yaml", first);
    const size = Buffer.byteLength(JSON.stringify(api.store.get("switchyard.dev/v1alpha1", "NodeNetwork", NAME)));
    console.log(`# bench/apiserver-writes (${new Date().toISOString()}, ${process.version}): N=${N}, ${PEERS} peers, stored object ${(size / 1024).toFixed(0)} KiB`);

    // Bodies are built before timing so the figures are the server's (and the HTTP round trip's) cost.
    const kinds: { name: string; bodies: () => { url: string; type: string; body: string }[] }[] = [
      {
        name: "status-merge",
        bodies: () => Array.from({ length: N }, (_, i) => ({
          url: `${base}/${NAME}/status`,
          type: "application/merge-patch+json",
          body: JSON.stringify({ status: { appliedHash: `h${i}`, observedGeneration: i, capabilities: { vxlan: true, ipip: i % 2 === 0 } } }),
        })),
      },
      {
        name: "ssa-apply",
        bodies: () => Array.from({ length: N }, (_, i) => ({
          url: `${base}/${NAME}?fieldManager=bench&force=true`,
          type: "application/apply-patch+yaml",
          body: JSON.stringify(nodeNetwork(i % PEERS)),
        })),
      },
      {
        name: "ssa-noop",
        bodies: () => {
          const same = JSON.stringify(nodeNetwork((N - 1) % PEERS));
          return Array.from({ length: N }, () => ({ url: `${base}/${NAME}?fieldManager=bench&force=true`, type: "application/apply-patch+yaml", body: same }));
        },
      },
      {
        name: "spec-merge",
        bodies: () => Array.from({ length: N }, (_, i) => ({
          url: `${base}/${NAME}?fieldManager=bench-merge`,
          type: "application/merge-patch+json",
          body: JSON.stringify({ spec: { mtu: 1300 + (i % 100) } }),
        })),
      },
      {
        name: "json-patch",
        bodies: () => Array.from({ length: N }, (_, i) => ({
          url: `${base}/${NAME}?fieldManager=bench-json`,
          type: "application/json-patch+json",
          body: JSON.stringify([{ op: "replace", path: "/spec/routing/peers/n0007/routes/0/via", value: `10.0.8.${i % 250}` }]),
        })),
      },
    ];

    for (const kind of kinds) {
      const bodies = kind.bodies();
      // Warm up (JIT, caches) with a few writes of the same kind, then time N.
      for (const b of bodies.slice(0, 5)) await request(b.url, "PATCH", b.type, b.body);
      const start = process.hrtime.bigint();
      for (const b of bodies) await request(b.url, "PATCH", b.type, b.body);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      console.log(`${kind.name.padEnd(13)} ${(N / (ms / 1000)).toFixed(1).padStart(8)} ops/s ${(ms / N).toFixed(2).padStart(8)} ms/op`);
    }
  } finally {
    await api.close();
  }
}

await main();
