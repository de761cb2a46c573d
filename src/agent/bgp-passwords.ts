// BGP session passwords: the plan names a Secret (in Switchyard's own namespace) and a key per peer; the
// agent reads the Secret through the API and hands the passwords to the BIRD renderer. Why not in the
// plan: a NodeNetwork is readable by every agent (RBAC cannot say "only your node's"), and it is copied
// into status views and logs; a Secret is read only by the agents' service account, in one namespace.
// Every problem is a value naming the Secret, the key and the session, so the node's condition says what
// to fix; a node whose password cannot be read keeps its running BIRD configuration (fail closed: a
// session is never opened without its password).
import type { BgpPasswordSecretRef } from "../api/cluster-network";
import type { BgpPlan } from "../model/routing-plan";
import { birdPasswordProblem } from "../render/bird";

/** One Secret's data (base64 values, as the API returns them); undefined when the Secret does not exist. */
export type SecretReader = (name: string) => Promise<{ readonly data?: Readonly<Record<string, string>> } | undefined>;

export type BgpPasswords =
  | { readonly ok: true; readonly passwords: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly problems: readonly string[] };

/** The password of every session of `plan` that names one, by BIRD protocol name. */
export async function resolveBgpPasswords(plan: BgpPlan, namespace: string, read: SecretReader): Promise<BgpPasswords> {
  const secrets = new Map<string, Promise<{ data?: Readonly<Record<string, string>> } | undefined | Error>>();
  const fetchOnce = (name: string) => {
    let p = secrets.get(name);
    if (!p) {
      p = read(name).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      secrets.set(name, p);
    }
    return p;
  };
  const passwords: Record<string, string> = {};
  const problems: string[] = [];
  for (const peer of plan.peers) {
    const ref: BgpPasswordSecretRef | undefined = peer.passwordSecretRef;
    if (!ref) continue;
    const where = `Secret ${namespace}/${ref.name}`;
    const secret = await fetchOnce(ref.name);
    if (secret instanceof Error) {
      problems.push(`BgpPasswordUnavailable: cannot read ${where} for session ${peer.name}: ${secret.message}`);
      continue;
    }
    if (secret === undefined) {
      problems.push(`BgpPasswordUnavailable: ${where} (the password of session ${peer.name}) does not exist`);
      continue;
    }
    const encoded = secret.data?.[ref.key];
    if (encoded === undefined) {
      problems.push(`BgpPasswordUnavailable: ${where} has no key ${ref.key} (the password of session ${peer.name})`);
      continue;
    }
    const password = Buffer.from(encoded, "base64").toString("utf8");
    const problem = birdPasswordProblem(password);
    if (problem) {
      problems.push(`BgpPasswordInvalid: the password in ${where}, key ${ref.key} (session ${peer.name}) ${problem}`);
      continue;
    }
    passwords[peer.name] = password;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, passwords };
}
