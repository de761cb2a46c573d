// Why: a real kube-apiserver cannot run without TLS (the insecure port is gone since 1.24), and a webhook it
// calls must present a certificate whose SAN matches the URL's host. So the lab makes a CA of its own
// (as envtest's TinyCA does), the apiserver's serving certificate, the webhook's serving certificate and
// the service-account signing key pair, all with the real openssl, into the lab's run dir. Short-lived
// (2 days): a lab lives minutes.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { runOk } from "../../src/base/exec";

export interface LabCa {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  /** PEM of the CA certificate (a kubeconfig's certificate-authority-data, a webhook's caBundle). */
  readonly caPem: string;
}

export interface ServingCert {
  readonly cert: string;
  readonly key: string;
}

const DAYS = "2";

/** A random serial per certificate: a shared serial file (-CAcreateserial) races when nodes sign at once. */
function serial(): string {
  return `0x${randomBytes(16).toString("hex")}`;
}

export async function makeCa(dir: string, name: string): Promise<LabCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caKey = join(dir, "ca.key");
  const caCert = join(dir, "ca.crt");
  await runOk("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", caKey], { timeoutMs: 20_000 });
  await runOk(
    "openssl",
    ["req", "-x509", "-new", "-key", caKey, "-out", caCert, "-days", DAYS, "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"],
    { timeoutMs: 20_000 },
  );
  return { dir, caCert, caKey, caPem: await readFile(caCert, "utf8") };
}

/** A serving certificate signed by the CA, for the given IP and DNS names (Go ignores the CN since 1.15). */
export async function makeServingCert(ca: LabCa, name: string, sans: { readonly ips?: readonly string[]; readonly dns?: readonly string[] }): Promise<ServingCert> {
  const key = join(ca.dir, `${name}.key`);
  const csr = join(ca.dir, `${name}.csr`);
  const cert = join(ca.dir, `${name}.crt`);
  const ext = join(ca.dir, `${name}.ext`);
  const alt = [...(sans.ips ?? []).map((ip) => `IP:${ip}`), ...(sans.dns ?? []).map((d) => `DNS:${d}`)].join(",");
  await writeFile(ext, `subjectAltName=${alt}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n`);
  await runOk("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], { timeoutMs: 20_000 });
  await runOk("openssl", ["req", "-new", "-key", key, "-out", csr, "-subj", `/CN=${name}`], { timeoutMs: 20_000 });
  await runOk("openssl", ["x509", "-req", "-in", csr, "-CA", ca.caCert, "-CAkey", ca.caKey, "-set_serial", serial(), "-out", cert, "-days", DAYS, "-extfile", ext], { timeoutMs: 20_000 });
  return { cert, key };
}

/** The RSA pair the apiserver signs service-account tokens with (private) and verifies them with (public). */
export async function makeServiceAccountKeys(dir: string): Promise<{ readonly privateKey: string; readonly publicKey: string }> {
  const privateKey = join(dir, "sa.key");
  const publicKey = join(dir, "sa.pub");
  await runOk("openssl", ["genrsa", "-out", privateKey, "2048"], { timeoutMs: 30_000 });
  await runOk("openssl", ["rsa", "-in", privateKey, "-pubout", "-out", publicKey], { timeoutMs: 20_000 });
  return { privateKey, publicKey };
}

/** A client certificate signed by the CA: the API server takes the CN as the user and each O as a group. */
export async function makeClientCert(ca: LabCa, file: string, user: string, groups: readonly string[] = []): Promise<ServingCert> {
  const key = join(ca.dir, `${file}.key`);
  const csr = join(ca.dir, `${file}.csr`);
  const cert = join(ca.dir, `${file}.crt`);
  const ext = join(ca.dir, `${file}.ext`);
  await writeFile(ext, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n");
  await runOk("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], { timeoutMs: 20_000 });
  await runOk("openssl", ["req", "-new", "-key", key, "-out", csr, "-subj", `${groups.map((g) => `/O=${g}`).join("")}/CN=${user}`], { timeoutMs: 20_000 });
  await runOk("openssl", ["x509", "-req", "-in", csr, "-CA", ca.caCert, "-CAkey", ca.caKey, "-set_serial", serial(), "-out", cert, "-days", DAYS, "-extfile", ext], { timeoutMs: 20_000 });
  return { cert, key };
}
