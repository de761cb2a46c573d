// Why: the lab's reachability matrix is only evidence when it is compared with what NetworkPolicy says
// should happen. The reference evaluator (src/compile/policy/evaluate.ts) is that answer; this reads the
// same inputs the controller reads (Pods, Namespaces, NetworkPolicies from the API, through the
// controller's own converters) and asks the evaluator about every cell. A cell is expected to connect
// when policy allows it AND the destination serves the port (the evaluator does not check the latter),
// and a pod reaching itself is never filtered (the packet never leaves the pod).
import { K8s, kind } from "kubernetes-fluent-client";
import { evaluateConnection, type ConnectionVerdict } from "../../src/compile/policy";
import { namespaceFromObject, podFromObject } from "../../src/kube/objects";
import type { KObj } from "../../src/kube/store";
import type { PodInfo, PolicySnapshot, Protocol } from "../../src/model/cluster";

export interface CellExpectation {
  /** Should a probe connect? */
  readonly connects: boolean;
  /** Does policy allow it (the evaluator's answer)? */
  readonly allowed: boolean;
  /** Does the destination serve port/protocol? */
  readonly serves: boolean;
  readonly self: boolean;
  /** The policies that deny the cell (isolating the side that refuses), empty when allowed. */
  readonly deniedBy: readonly string[];
  /** One line for humans. */
  readonly reason: string;
  readonly verdict: ConnectionVerdict;
}

/** Pods, namespaces and NetworkPolicies as the API holds them now. */
export async function readPolicySnapshot(): Promise<PolicySnapshot> {
  const [pods, namespaces, policies] = await Promise.all([K8s(kind.Pod).Get(), K8s(kind.Namespace).Get(), K8s(kind.NetworkPolicy).Get()]);
  return {
    pods: (pods.items as unknown as KObj[]).map(podFromObject).filter((p): p is PodInfo => p !== undefined),
    namespaces: (namespaces.items as unknown as KObj[]).map(namespaceFromObject),
    policies: policies.items,
  };
}

function serves(pod: PodInfo | undefined, port: number, protocol: Protocol): boolean {
  return pod !== undefined && pod.ports.some((p) => p.containerPort === port && p.protocol === protocol);
}

/** What every (from, to) cell should show, with the policies behind each denial. */
export function expectedMatrix(snapshot: PolicySnapshot, from: readonly { namespace: string; name: string }[], to: readonly { namespace: string; name: string }[], port: number, protocol: Protocol): CellExpectation[][] {
  const byKey = new Map(snapshot.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  return from.map((a) =>
    to.map((b) => {
      const verdict = evaluateConnection(snapshot, { from: a, to: b, port, protocol });
      const self = a.namespace === b.namespace && a.name === b.name;
      const srv = serves(byKey.get(`${b.namespace}/${b.name}`), port, protocol);
      const deniedBy = [...new Set([...(verdict.egress.allowed ? [] : verdict.egress.isolatedBy), ...(verdict.ingress.allowed ? [] : verdict.ingress.isolatedBy)])].sort();
      const connects = srv && (self || verdict.allowed);
      const reason = !srv
        ? `${b.namespace}/${b.name} does not serve ${protocol}/${port}`
        : self
          ? "a pod's traffic to itself is never filtered"
          : verdict.allowed
            ? "allowed"
            : [verdict.egress, verdict.ingress]
                .filter((d) => !d.allowed)
                .map((d) => `${d.direction} of ${d.direction === "egress" ? `${a.namespace}/${a.name}` : `${b.namespace}/${b.name}`} isolated by ${d.isolatedBy.join(", ")}; no rule allows it`)
                .join("; ");
      return { connects, allowed: verdict.allowed, serves: srv, self, deniedBy, reason, verdict };
    }),
  );
}
