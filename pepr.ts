// The Pepr module: wires the capabilities and nothing else. Config errors fail fast at start-up.
import { PeprModule } from "pepr";
import cfg from "./package.json";
import { ClusterNetworkCapability } from "./capabilities/cluster-network";

new PeprModule(cfg, [ClusterNetworkCapability]);
