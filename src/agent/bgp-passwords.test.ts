import { describe, expect, it } from "vitest";
import type { BgpPlan } from "../model/routing-plan";
import { resolveBgpPasswords, type SecretReader } from "./bgp-passwords";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const plan = (refs: Record<string, { name: string; key: string } | undefined>): BgpPlan => ({
  asNumber: 64512,
  routerId: "192.168.10.11",
  podCIDRs: ["10.244.0.0/16"],
  blockSize: 24,
  originate: [],
  kernelMetric: 100,
  peers: Object.entries(refs).map(([name, ref]) => ({ name, address: "192.168.10.12", asNumber: 64512, description: name, ...(ref ? { passwordSecretRef: ref } : {}) })),
  underlayInterface: "eth*",
});

describe("resolveBgpPasswords", () => {
  const store: Record<string, Record<string, string>> = { bgp: { password: b64("s3cret #1"), quote: b64('a"b') }, tor: { a: b64("rack-a") } };
  const reads: string[] = [];
  const read: SecretReader = async (name) => {
    reads.push(name);
    if (name === "forbidden") throw new Error("secrets \"forbidden\" is forbidden");
    return store[name] ? { data: store[name] } : undefined;
  };

  it("gives each session its password, reads each Secret once, and skips sessions without one", async () => {
    reads.length = 0;
    const r = await resolveBgpPasswords(plan({ node_n2: { name: "bgp", key: "password" }, node_n3: { name: "bgp", key: "password" }, tor_x: { name: "tor", key: "a" }, node_n4: undefined }), "switchyard-system", read);
    expect(r).toEqual({ ok: true, passwords: { node_n2: "s3cret #1", node_n3: "s3cret #1", tor_x: "rack-a" } });
    expect(reads).toEqual(["bgp", "tor"]);
  });

  it("names the Secret, the key and the session of every problem", async () => {
    const r = await resolveBgpPasswords(
      plan({ a: { name: "missing", key: "password" }, b: { name: "bgp", key: "nokey" }, c: { name: "bgp", key: "quote" }, d: { name: "forbidden", key: "x" } }),
      "switchyard-system",
      read,
    );
    expect(r).toEqual({
      ok: false,
      problems: [
        "BgpPasswordUnavailable: Secret switchyard-system/missing (the password of session a) does not exist",
        "BgpPasswordUnavailable: Secret switchyard-system/bgp has no key nokey (the password of session b)",
        "BgpPasswordInvalid: the password in Secret switchyard-system/bgp, key quote (session c) contains a double quote or a backslash, which bird.conf cannot carry",
        'BgpPasswordUnavailable: cannot read Secret switchyard-system/forbidden for session d: secrets "forbidden" is forbidden',
      ],
    });
  });
});
