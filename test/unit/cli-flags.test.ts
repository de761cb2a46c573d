// Bad flags stop the real `switchyard` process before it starts anything: `controller --resync abc` once
// started a controller that LISTed the API server in a tight loop (a NaN period), and `--kubeconfig`
// naming a missing file was ignored, so the client fell back to another configuration. Each case runs
// the built CLI with $KUBECONFIG pointing at a local HTTP server that counts requests: a refused command
// exits 2 and sends none; the same command with good flags does reach it (so the count can fail).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeconfigYaml } from "../../lab/apiserver/kubeconfig";
import { waitFor } from "../../src/base/wait";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "switchyard.mjs");
const dir = mkdtempSync(join(tmpdir(), "sy-cli-flags-"));
const kubeconfig = join(dir, "kubeconfig");
let server: Server;
let requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(503, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message: "test server", code: 503 }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  writeFileSync(kubeconfig, kubeconfigYaml(`http://127.0.0.1:${port}`, "token"));
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

interface Running {
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  readonly out: () => string;
  readonly err: () => string;
  readonly kill: () => void;
}

/** Starts the CLI (asynchronously: the counting server lives in this process and must answer meanwhile). */
function start(args: string[]): Running {
  let out = "";
  let err = "";
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  // Bounded: a command that ignores a bad flag and keeps running is killed after 30 s (the test fails).
  const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal });
    }),
  );
  return { exited, out: () => out, err: () => err, kill: () => child.kill("SIGKILL") };
}

describe("a bad flag value exits 2 before anything starts", () => {
  it.each([
    [["controller", "--resync", "abc"], "error: option '--resync <seconds>' argument 'abc' is invalid. Expected a whole number of seconds from 5 to 86400."],
    [["controller", "--resync", "0"], "error: option '--resync <seconds>' argument '0' is invalid."],
    [["controller", "--lease-duration", "fifteen"], "error: option '--lease-duration <seconds>' argument 'fifteen' is invalid."],
    [["agent", "--node", "n1", "--repair", "0.5", "--no-cni"], "error: option '--repair <seconds>' argument '0.5' is invalid."],
    [["migrate", "--to", "bgp", "--canary", "one"], "error: option '--canary <n>' argument 'one' is invalid."],
  ])("%j", async (args, message) => {
    requests = [];
    const r = start(args);
    expect(await r.exited).toEqual({ code: 2, signal: null });
    expect(r.err()).toContain(message);
    expect(requests).toEqual([]);
  });

  it("with a good --resync the same command does reach the API server (the count above can fail)", async () => {
    requests = [];
    const r = start(["controller", "--resync", "30"]);
    try {
      await waitFor("the controller's first request", () => requests.length > 0, 20_000);
      expect(requests.length).toBeGreaterThan(0);
    } finally {
      r.kill();
      await r.exited;
    }
  });
});

describe("--kubeconfig naming a file that is not there", () => {
  it.each([[["migrate", "status"]], [["migrate", "--to", "bgp"]], [["migrate", "pause"]]])("%j exits 2 naming the file, and asks no server", async (args) => {
    requests = [];
    const missing = join(dir, "no-such-kubeconfig");
    const r = start([...args, "--kubeconfig", missing]);
    expect(await r.exited).toEqual({ code: 2, signal: null });
    expect(r.err()).toContain(`error: option '--kubeconfig <file>' argument '${missing}' is invalid. Cannot read the kubeconfig: no such file.`);
    expect(requests).toEqual([]);
  });

  it("a readable one is used (migrate status asks the server it names)", async () => {
    requests = [];
    const r = start(["migrate", "status", "--kubeconfig", kubeconfig]);
    expect((await r.exited).code).toBe(1);
    expect(requests.some((q) => q.includes("/clusternetworks/default"))).toBe(true);
  });
});
