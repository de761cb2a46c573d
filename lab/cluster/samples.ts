// Why: a lab cluster should start from what users are given, not from a private fixture: the default
// ClusterNetwork of each mode IS the shipped sample (samples/*.yaml). Only what depends on the lab's
// shape is adapted: the BGP top-of-rack peers become the router's address on each of the lab's subnets,
// selected by the subnet label the lab puts on its nodes.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { Mode } from "../../src/api/cluster-network";
import type { Lab } from "../topology";
import { subnetLetter } from "./nodes";
import { packagePath } from "../../src/base/package-root";

export const SUBNET_LABEL = "topology.switchyard.dev/subnet";

export type ClusterNetworkObject = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; [k: string]: unknown };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
};

/** A mode's sample is samples/<mode>.yaml, except where the lab needs another variant. */
const SAMPLE_OVERRIDES: Readonly<Partial<Record<Mode, string>>> = {
  // The lab has several subnets: a BGP mesh cannot cross its router, top-of-rack peers can.
  bgp: "bgp-tor.yaml",
};

export function sampleFileFor(mode: Mode): string {
  return packagePath("samples", SAMPLE_OVERRIDES[mode] ?? `${mode}.yaml`);
}

/** The first ClusterNetwork document of a YAML file. */
export function readClusterNetworkFile(file: string): ClusterNetworkObject {
  const doc = parse(readFileSync(file, "utf8")) as unknown;
  if (typeof doc !== "object" || doc === null || (doc as ClusterNetworkObject).kind !== "ClusterNetwork") {
    throw new Error(`${file}: not a ClusterNetwork document`);
  }
  return doc as ClusterNetworkObject;
}

/** The BGP peers of a tor ClusterNetwork for this lab: the router (AS routerAs) on every subnet. */
export function torPeersFor(lab: Lab, routerAs: number): { address: string; asNumber: number; nodeSelector: { matchLabels: Record<string, string> } }[] {
  return lab.subnets.map((s) => ({ address: s.gateway, asNumber: routerAs, nodeSelector: { matchLabels: { [SUBNET_LABEL]: subnetLetter(s.index) } } }));
}

/** The shipped sample for `mode`, adapted to the lab (tor peers per subnet). */
export function defaultClusterNetwork(mode: Mode, lab: Lab, routerAs: number): ClusterNetworkObject {
  const cn = readClusterNetworkFile(sampleFileFor(mode));
  const bgp = cn.spec?.["bgp"] as { topology?: string } | undefined;
  if (mode === "bgp" && bgp?.topology === "tor") {
    return { ...cn, spec: { ...cn.spec, bgp: { ...bgp, peers: torPeersFor(lab, routerAs) } } };
  }
  return cn;
}
