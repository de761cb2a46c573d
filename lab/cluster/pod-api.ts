// Pod objects on the API server, as both lab clusters (lab kubelet and real nodes) wait for them.
import { K8s, kind } from "kubernetes-fluent-client";
import { waitFor } from "../../src/base/wait";

/**
 * Resolves once the Pod has left the API. On a real API server the object outlives its sandbox until the
 * kubelet's final delete: a pod of the same name created before that would land on the terminating object.
 */
export async function waitForPodToLeaveApi(namespace: string, name: string, timeoutMs: number, intervalMs: number): Promise<void> {
  await waitFor(
    `pod ${namespace}/${name} to leave the API`,
    async () => {
      try {
        await K8s(kind.Pod).InNamespace(namespace).Get(name);
        return undefined;
      } catch (e) {
        if ((e as { status?: number }).status === 404) return true;
        throw e;
      }
    },
    timeoutMs,
    intervalMs,
  );
}
