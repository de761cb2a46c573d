// bird.conf for one node, from its BGP plan. Why this shape (kernel-lab.md §4 and pitfalls 1-7):
// `protocol device` is mandatory; `protocol direct` on the underlay lets iBGP next hops resolve; the
// kernel protocol exports only BGP-learned routes (import none: BIRD never re-advertises routes the agent
// owns) at a fixed metric that sits between the agent's preferred and standby static routes, so modes can
// be stacked during a migration; the node originates its block as a blackhole static; eBGP to a
// top-of-rack router needs explicit filters (RFC 8212) and `allow local as` because every node shares the
// cluster AS. Fast timers keep cold start at ~1-3 s and dead-peer detection at 9 s.
//
// A plan is data: every value that reaches bird.conf (addresses, prefixes, AS numbers, metrics, protocol
// names, the interface pattern, the peers' descriptions) is checked first, and the renderer throws rather
// than emit a name like `x { ... } protocol static y` that would open a protocol of its own.
//
// Hardening (issue 15):
// - Import: from every peer only what a pod block can be (blockSize-long prefixes inside podCIDRs, and
//   /32s there: borrowed pod addresses), from a top-of-rack router also its acceptPrefixes. A peer that
//   announces a default route, someone else's network or a slice of a block gets nothing installed.
// - Export: this node's own originated prefixes only (a reflector also reflects what it learned).
// - Graceful restart (RFC 4724) on every session: when a node's BIRD dies or is restarted without a
//   NOTIFICATION (killed, a container restart, `birdc graceful restart`), its peers keep its routes as
//   stale until it is back and has sent End-of-RIB; the agent starts a BIRD that replaces a previous one
//   with -R, and the kernel protocol then keeps the old routes until recovery ends. Not long-lived GR:
//   that also keeps a peer's routes when its hold timer expires, i.e. for a node that really died, whose
//   block must go away after the 9 s hold time so other paths (a standby transport) take over.
// - Passwords (TCP-MD5) come in resolved by the agent; the plan only names their Secret.
import { safeInt, safeKernelValue } from "../api/kernel-names";
import type { BgpAcceptPrefix, BgpPlan } from "../model/routing-plan";

export type BirdPaths = { readonly log: string };

const UINT32_MAX = 4294967295;

export interface BirdSecrets {
  /** Each peer's session password, by BIRD protocol name (resolved from its passwordSecretRef). */
  readonly passwords?: Readonly<Record<string, string>>;
}

/** How long a peer keeps a restarting node's routes as stale (seconds; BIRD's default, written out). */
export const BGP_GRACEFUL_RESTART_TIME = 120;
/** How long a BIRD started with -R waits for its peers before it syncs the kernel anyway (seconds). */
export const BGP_GRACEFUL_RESTART_WAIT = 20;

/**
 * Why a password cannot go into bird.conf, or undefined. BIRD 2's lexer reads a string up to the next
 * double quote, with no escapes and no line breaks; the kernel takes TCP-MD5 keys of at most 80 bytes.
 * A backslash is refused too, so no BIRD version that does read escapes could see another password.
 */
export function birdPasswordProblem(password: string): string | undefined {
  if (password.length === 0) return "is empty";
  if (password.length > 80) return `is ${password.length} characters long; TCP-MD5 keys are at most 80`;
  if (!/^[\x20-\x7e]*$/.test(password)) return "has a character outside printable ASCII (a line break, a control character or non-ASCII)";
  if (/["\\]/.test(password)) return "contains a double quote or a backslash, which bird.conf cannot carry";
  return undefined;
}

/** BIRD prefix-set elements: `cidr{from,to}`. */
function prefixPattern(cidr: string, from: number, to: number): string {
  return `${cidr}{${from},${to}}`;
}

function acceptPattern(a: BgpAcceptPrefix, at: string): string {
  const cidr = safeKernelValue("IPv4 CIDR", a.cidr, `${at}.cidr`);
  const len = Number(cidr.split("/")[1]);
  return prefixPattern(cidr, len, Math.max(len, Number(safeInt(a.maxLength, 0, 32, "unsigned 32-bit integer", `${at}.maxLength`))));
}



/**
 * Renders bird.conf. Throws (a programming error: the agent resolves and checks passwords first) when a
 * peer names a password that `secrets` does not carry, or one birdPasswordProblem refuses.
 */
export function renderBirdConfig(plan: BgpPlan, paths: BirdPaths, secrets: BirdSecrets = {}): string {
  const lines: string[] = [];
  // Only the log path is quoted text (the agent's own run dir, not the plan's): no quote, backslash or line break.
  const q = (s: string) => `"${s.replace(/["\\\u0000-\u001f\u007f]/g, "")}"`;
  const routerId = safeKernelValue("IPv4 address", plan.routerId, "bgp.routerId");
  const asNumber = safeInt(plan.asNumber, 1, UINT32_MAX, "AS number", "bgp.asNumber");
  const kernelMetric = safeInt(plan.kernelMetric, 0, UINT32_MAX, "unsigned 32-bit integer", "bgp.kernelMetric");
  const underlay = safeKernelValue("interface pattern", plan.underlayInterface, "bgp.underlayInterface");
  const originate = plan.originate.map((p, i) => safeKernelValue("IPv4 CIDR", p, `bgp.originate[${i}]`));
  const clusterId = plan.routeReflectorClusterId !== undefined ? safeKernelValue("IPv4 address", plan.routeReflectorClusterId, "bgp.routeReflectorClusterId") : undefined;
  lines.push(`# Generated by Switchyard for router ${routerId}. Do not edit: the agent rewrites it.`);
  lines.push(`log ${q(paths.log)} all;`);
  lines.push(`router id ${routerId};`);
  lines.push(`graceful restart wait ${BGP_GRACEFUL_RESTART_WAIT};`);
  lines.push("");
  lines.push("protocol device { scan time 10; }");
  lines.push(`protocol direct { ipv4; interface "${underlay}"; }`);
  lines.push("protocol kernel {");
  lines.push("  ipv4 { import none; export where source = RTS_BGP; };");
  lines.push(`  metric ${kernelMetric};`);
  lines.push("  merge paths on;");
  lines.push("  scan time 10;");
  lines.push("  graceful restart on;");
  lines.push("}");
  lines.push("");
  if (originate.length > 0) {
    lines.push("protocol static pods {");
    lines.push("  ipv4;");
    for (const p of originate) lines.push(`  route ${p} blackhole;`);
    lines.push("}");
  } else {
    lines.push("protocol static pods { ipv4; }");
  }
  lines.push('filter pods_out { if proto = "pods" then accept; reject; }');
  // What a pod block can be: blockSize-long prefixes and /32s (borrowed addresses) inside the pools.
  const blockSize = Number(safeInt(plan.blockSize, 0, 32, "unsigned 32-bit integer", "bgp.blockSize"));
  const pods = plan.podCIDRs.map((c, i) => safeKernelValue("IPv4 CIDR", c, `bgp.podCIDRs[${i}]`)).flatMap((c) => [prefixPattern(c, blockSize, blockSize), ...(blockSize < 32 ? [prefixPattern(c, 32, 32)] : [])]);
  lines.push(`define POD_PREFIXES = [ ${pods.join(", ")} ];`);
  lines.push("");
  plan.peers.forEach((p, i) => {
    const at = `bgp.peers[${i}]`;
    const name = safeKernelValue("BIRD symbol", p.name, `${at}.name`);
    const address = safeKernelValue("IPv4 address", p.address, `${at}.address`);
    const peerAs = safeInt(p.asNumber, 1, UINT32_MAX, "AS number", `${at}.asNumber`);
    const description = safeKernelValue("comment text", p.description, `${at}.description`);
    const ebgp = p.asNumber !== plan.asNumber;
    const accept = p.acceptPrefixes?.length ? ` || net ~ [ ${p.acceptPrefixes.map((x, j) => acceptPattern(x, `${at}.acceptPrefixes[${j}]`)).join(", ")} ]` : "";
    const importRule = `import where net ~ POD_PREFIXES${accept};`;
    lines.push(`# ${description}`);
    lines.push(`protocol bgp ${name} {`);
    lines.push(`  local ${routerId} as ${asNumber};`);
    lines.push(`  neighbor ${address} as ${peerAs};`);
    if (p.routeReflectorClient) {
      lines.push("  rr client;");
      if (clusterId) lines.push(`  rr cluster id ${clusterId};`);
    }
    if (clusterId && !p.routeReflectorClient) {
      // Reflector to reflector: re-advertise clients' routes too.
      lines.push(`  ipv4 { ${importRule} export where source = RTS_BGP || proto = "pods"; };`);
    } else if (p.routeReflectorClient) {
      lines.push(`  ipv4 { ${importRule} export where source = RTS_BGP || proto = "pods"; };`);
    } else {
      lines.push(`  ipv4 { ${importRule} export filter pods_out; };`);
    }
    if (p.allowLocalAs && ebgp) lines.push("  allow local as;");
    lines.push("  connect delay time 1; connect retry time 2; error wait time 1, 5;");
    lines.push("  hold time 9; keepalive time 3; startup hold time 5;");
    lines.push(`  graceful restart on; graceful restart time ${BGP_GRACEFUL_RESTART_TIME};`);
    if (p.passwordSecretRef) {
      const pw = secrets.passwords?.[name];
      if (pw === undefined) throw new Error(`renderBirdConfig: no password resolved for ${name} (Secret ${p.passwordSecretRef.name}, key ${p.passwordSecretRef.key})`);
      const problem = birdPasswordProblem(pw);
      if (problem) throw new Error(`renderBirdConfig: the password of ${name} ${problem}`);
      // Checked above: printable ASCII without '"' or '\\', so it needs no escaping.
      lines.push(`  password "${pw}";`);
    }
    lines.push("}");
  });
  return lines.join("\n") + "\n";
}
