// The Pepr module: wires the capabilities and nothing else. Config errors fail fast at start-up.
// SWITCHYARD_WEBHOOK_PORT serves admission on another port than Pepr's 3000 (the lab runs the module on
// the machine itself, beside other listeners); in a cluster it is unset and Pepr starts as it always does.
import { PeprModule } from "pepr";
import cfg from "./package.json";
import { ClusterNetworkCapability } from "./capabilities/cluster-network";

const port = process.env["SWITCHYARD_WEBHOOK_PORT"];
const mod = new PeprModule(cfg, [ClusterNetworkCapability], { deferStart: port !== undefined });
if (port !== undefined) mod.start(Number(port));
