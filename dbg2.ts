import { LabCluster } from "./lab/cluster/lab-cluster";
import { startTraffic } from "./lab/traffic";
import { readdirSync, readFileSync } from "node:fs";
const cp = (process.env.CP ?? "embedded") as "embedded" | "kubernetes";
const c = new LabCluster({ prefix: "sy13-", nodes: 4, subnets: 2, mode: "vxlan", controlPlane: cp, agentsInProcess: process.env.INPROC === "1", logLevel: "info" });
try {
  await c.start();
  const pods = c.podsSorted();
  const np = (ns: string, name: string, spec: Record<string, unknown>) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace: ns, name }, spec });
  if (process.env.POL === "1") {
    await c.applyPolicy(np("y", "only-frontend", { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "frontend" } } }] }] }));
    await c.waitForReady(30_000);
    await c.labelPod("x", "n1-p1", { role: "frontend" });
    await c.deletePolicy("y", "only-frontend");
    await c.waitForReady(30_000);
  }
  const x = pods.filter((p) => p.namespace === "x");
  const onN2 = x.find((p) => p.node === "n2")!;
  const traffic = await startTraffic(c.lab, { pingPairs: x.filter((p) => p !== onN2).map((p) => [p, onN2] as const), maxDurationSec: 60 });
  const t0 = Date.now();
  await c.killAgent("n2");
  await new Promise((r) => setTimeout(r, 2000));
  console.log("restart at", Date.now() - t0);
  await c.startAgent("n2");
  console.log("started at", Date.now() - t0);
  await c.waitForReady(30_000);
  console.log("ready at", Date.now() - t0);
  await new Promise((r) => setTimeout(r, 1000));
  const t = await traffic.stop();
  for (const p of t.pings) console.log(JSON.stringify(p).slice(0, 300));
} catch (e) { console.log("ERR", (e as Error).message.slice(0, 500)); }
const dir = c.lab.runDir + "/logs";
for (const f of readdirSync(dir).filter((f) => f.startsWith("agent-n2"))) { console.log("=== " + f); console.log(readFileSync(dir + "/" + f, "utf8").split("\n").slice(-40).map((l) => l.slice(0, 250)).join("\n")); }
await c.close();
