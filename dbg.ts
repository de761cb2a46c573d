import { LabCluster } from "./lab/cluster/lab-cluster";
import { migrateLab } from "./lab/migration";
import { readdirSync, readFileSync } from "node:fs";
const c = new LabCluster({ prefix: "sy13-", nodes: 4, subnets: 2, mode: "vxlan", torRouter: true, controlPlane: "kubernetes" });
try {
  await c.start(); console.log("UP");
  const ROLLOUT = { canary: { nodes: 1 }, batchSize: 2, healthGate: { successfulRounds: 2, probeInterval: "500ms", timeout: "20s" } };
  let r = await migrateLab(c, "ipip", { rollout: ROLLOUT, timeoutMs: 30_000 });
  console.log(r.timeline.join("\n"));
  r = await migrateLab(c, "bgp", { rollout: ROLLOUT, timeoutMs: 40_000 });
  console.log(r.timeline.join("\n"));
} catch (e) { console.log("ERR", (e as Error).message.slice(0, 500)); }
const dir = c.lab.runDir + "/logs";
for (const f of readdirSync(dir).filter((f) => f.startsWith("controller") || f.startsWith("agent-n1"))) { console.log("=== " + f); console.log(readFileSync(dir + "/" + f, "utf8").split("\n").slice(-15).join("\n").slice(0, 4000)); }
await c.close();
