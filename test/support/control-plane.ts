// Which control plane the lab tests run on. CI (npm test) proves them on the real kube-apiserver and etcd;
// SWITCHYARD_CONTROL_PLANE=embedded runs them on the in-process emulator for a quick inner loop. Without
// the binaries (no Go >= 1.24, no KUBEBUILDER_ASSETS) the lab tests fall back to the emulator and say so.
import type { ControlPlaneKind } from "../../lab/cluster/lab-cluster";
import { kubeUnavailable } from "./kube";

async function choose(): Promise<ControlPlaneKind> {
  const asked = process.env["SWITCHYARD_CONTROL_PLANE"];
  if (asked === "embedded" || asked === "kubernetes") return asked;
  if (asked !== undefined && asked !== "") throw new Error(`SWITCHYARD_CONTROL_PLANE must be embedded or kubernetes, got ${JSON.stringify(asked)}`);
  const why = await kubeUnavailable();
  if (why === undefined) return "kubernetes";
  console.warn(`${why}; the lab tests run on the embedded emulator instead`);
  return "embedded";
}

/** The control plane of this test run. */
export const LAB_CONTROL_PLANE: ControlPlaneKind = await choose();
