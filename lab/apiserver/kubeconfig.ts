// The kubeconfig the real clients load. Plain http needs `insecure-skip-tls-verify: true`, or client-node
// (and so kfc) refuses before sending anything; HTTPS with that flag would break kfc instead, whose undici
// agent copies only ca/cert/key from client-node's options.

import { writeFileSync } from "node:fs";
import { stringify } from "yaml";

export const LAB_CONTEXT = "switchyard-lab";

export function kubeconfigYaml(url: string, token: string, namespace = "default"): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: LAB_CONTEXT, cluster: { server: url, "insecure-skip-tls-verify": true } }],
    users: [{ name: `${LAB_CONTEXT}-admin`, user: { token } }],
    contexts: [{ name: LAB_CONTEXT, context: { cluster: LAB_CONTEXT, user: `${LAB_CONTEXT}-admin`, namespace } }],
    "current-context": LAB_CONTEXT,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, url: string, token: string): void {
  writeFileSync(path, kubeconfigYaml(url, token), { mode: 0o600 });
}
