// Watch streams over raw HTTP (reference §5): line framing, synthetic ADDED for rv 0 / no rv, replay from a
// resourceVersion, selector filtering with ADDED/DELETED on transitions, DELETED with a new RV, 410 in both
// forms, bookmarks only when asked, timeoutSeconds, and faults.dropWatches.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { openWatch, rawClient } from "../../support/apiserver";
import { waitFor } from "../../../src/base/wait";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;
const CM = "/api/v1/namespaces/w/configmaps";

beforeAll(async () => {
  server = await startApiServer({ historySize: 50, bookmarkIntervalMs: 100 });
  call = rawClient(server.url);
  await call("POST", "/api/v1/namespaces", { metadata: { name: "w" } });
});
afterAll(() => server.close());

const cm = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels }, data: { k: "v" } });
const summary = (events: { type: string; object: { metadata?: { name?: string } } }[]) => events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}`);

describe("watch", () => {
  it("streams chunked JSON lines: ADDED for current objects without an RV, then live events", async () => {
    await call("POST", CM, cm("pre-1"));
    const w = await openWatch(`${server.url}${CM}?watch=true`);
    expect(w.status).toBe(200);
    await w.waitForCount(1);
    await call("POST", CM, cm("live-1"));
    await call("PATCH", `${CM}/live-1`, { data: { k: "v2" } }, "application/merge-patch+json");
    await call("DELETE", `${CM}/live-1`);
    const events = await w.waitForCount(4);
    expect(summary(events)).toEqual(["ADDED pre-1", "ADDED live-1", "MODIFIED live-1", "DELETED live-1"]);
    w.close();
  });

  it("gives DELETED the object's last state with a new resourceVersion", async () => {
    const created = await call("POST", CM, cm("del-rv"));
    const w = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${created.body.metadata?.resourceVersion}`);
    await call("DELETE", `${CM}/del-rv`);
    const [deleted] = await w.waitForCount(1);
    expect(deleted?.type).toBe("DELETED");
    expect(deleted?.object.data).toEqual({ k: "v" });
    expect(Number(deleted?.object.metadata?.resourceVersion)).toBeGreaterThan(Number(created.body.metadata?.resourceVersion));
    w.close();
  });

  it("replays the history after resourceVersion=N, then goes live", async () => {
    const start = Number((await call("GET", CM)).body.metadata?.resourceVersion);
    await call("POST", CM, cm("replay-1"));
    await call("POST", CM, cm("replay-2"));
    const w = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${start}`);
    await call("POST", CM, cm("replay-3"));
    expect(summary(await w.waitForCount(3))).toEqual(["ADDED replay-1", "ADDED replay-2", "ADDED replay-3"]);
    w.close();
  });

  it("filters by label selector and turns selector transitions into ADDED/DELETED", async () => {
    const w = await openWatch(`${server.url}${CM}?watch=true&labelSelector=${encodeURIComponent("role=web")}&resourceVersion=${server.store.resourceVersion}`);
    await call("POST", CM, cm("sel-out"));
    await call("POST", CM, cm("sel-in", { role: "web" }));
    await call("PATCH", `${CM}/sel-out`, { metadata: { labels: { role: "web" } } }, "application/merge-patch+json");
    await call("PATCH", `${CM}/sel-in`, { metadata: { labels: { role: "db" } } }, "application/merge-patch+json");
    await call("PATCH", `${CM}/sel-out`, { data: { k: "v3" } }, "application/merge-patch+json");
    expect(summary(await w.waitForCount(4))).toEqual(["ADDED sel-in", "ADDED sel-out", "DELETED sel-in", "MODIFIED sel-out"]);
    w.close();
  });

  it("filters by field selector and namespace, as the Pepr store watch asks", async () => {
    await call("POST", "/api/v1/namespaces", { metadata: { name: "w2" } });
    const w = await openWatch(`${server.url}/api/v1/configmaps?watch=true&fieldSelector=metadata.name%3Dpicked&labelSelector=&resourceVersion=${server.store.resourceVersion}`);
    await call("POST", CM, cm("ignored"));
    await call("POST", "/api/v1/namespaces/w2/configmaps", cm("picked"));
    await call("POST", CM, cm("picked"));
    const events = await w.waitForCount(2);
    expect(events.map((e) => `${e.type} ${e.object.metadata?.namespace}/${e.object.metadata?.name}`)).toEqual(["ADDED w2/picked", "ADDED w/picked"]);
    w.close();
  });

  it("sends BOOKMARKs only when allowWatchBookmarks=true", async () => {
    const plain = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${server.store.resourceVersion}&timeoutSeconds=1`);
    const marked = await openWatch(`${server.url}${CM}?watch=true&allowWatchBookmarks=true&resourceVersion=${server.store.resourceVersion}&timeoutSeconds=1`);
    await Promise.all([plain.ended, marked.ended]);
    expect(plain.events).toEqual([]);
    expect(marked.events.length).toBeGreaterThan(0);
    expect(marked.events.every((e) => e.type === "BOOKMARK")).toBe(true);
    expect(marked.events[0]?.object).toEqual({ kind: "ConfigMap", apiVersion: "v1", metadata: { resourceVersion: String(server.store.resourceVersion) } });
  });

  it("honours timeoutSeconds by ending the stream", async () => {
    const started = Date.now();
    const w = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${server.store.resourceVersion}&timeoutSeconds=1`);
    await w.ended;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("answers 200 + one ERROR 410 Expired line for an RV older than the history, then closes", async () => {
    const old = server.store.resourceVersion;
    for (let i = 0; i < 60; i++) await call("PATCH", `${CM}/pre-1`, { data: { i: String(i) } }, "application/merge-patch+json");
    const w = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${old}`);
    await w.ended;
    expect(w.status).toBe(200);
    expect(w.events).toEqual([{ type: "ERROR", object: expect.objectContaining({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410 }) }]);
    expect(w.events[0]?.object.message).toMatch(new RegExp(`^too old resource version: ${old} \\(\\d+\\)$`));
  });

  it("answers HTTP 410 for an RV older than the history when started with tooOldWatch: http-410", async () => {
    const strict = await startApiServer({ historySize: 5, tooOldWatch: "http-410" });
    try {
      const strictCall = rawClient(strict.url);
      const old = strict.store.resourceVersion;
      for (let i = 0; i < 10; i++) await strictCall("POST", "/api/v1/namespaces/default/configmaps", cm(`c${i}`));
      const r = await strictCall("GET", `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${old}`);
      expect(r.status).toBe(410);
      expect(r.body).toMatchObject({ kind: "Status", reason: "Expired", code: 410 });
      const recent = await openWatch(`${strict.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${strict.store.resourceVersion - 2}`);
      expect(summary(await recent.waitForCount(2))).toEqual(["ADDED c8", "ADDED c9"]);
      recent.close();
    } finally {
      await strict.close();
    }
  });

  it("sends MODIFIED for a /status write, with generation unchanged", async () => {
    const path = "/apis/switchyard.dev/v1alpha1/clusternetworks";
    const created = await call("POST", path, { apiVersion: "switchyard.dev/v1alpha1", kind: "ClusterNetwork", metadata: { name: "watched" }, spec: { podCIDRs: ["10.244.0.0/16"] } });
    const w = await openWatch(`${server.url}${path}?watch=true&resourceVersion=${created.body.metadata?.resourceVersion}`);
    await call("PATCH", `${path}/watched/status`, { status: { phase: "Ready" } }, "application/merge-patch+json");
    const [event] = await w.waitForCount(1);
    expect(event?.type).toBe("MODIFIED");
    expect(event?.object.status).toEqual({ phase: "Ready" });
    expect(event?.object.metadata?.generation).toBe(1);
    w.close();
  });

  it("drops every open stream on faults.dropWatches()", async () => {
    const a = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${server.store.resourceVersion}`);
    const b = await openWatch(`${server.url}/api/v1/namespaces?watch=true&resourceVersion=${server.store.resourceVersion}`);
    await waitFor("two open watches", () => server.openWatches() >= 2, 10_000, 20);
    expect(server.faults.dropWatches()).toBeGreaterThanOrEqual(2);
    await Promise.all([a.ended, b.ended]);
    expect(server.openWatches()).toBe(0);
  });

  it("notices a client that went away (res close) and stops tracking its stream", async () => {
    const w = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${server.store.resourceVersion}`);
    await waitFor("the watch to open", () => server.openWatches() === 1, 10_000, 20);
    w.close();
    await waitFor("the server to notice the client left", () => server.openWatches() === 0, 10_000, 20);
  });
});

describe("injected watch expiry", () => {
  it.each([
    ["error-event", 200],
    ["http-410", 410],
  ] as const)("mode %s answers %i", async (mode, status) => {
    server.faults.expireWatches({ mode, times: 1 });
    const rv = server.store.resourceVersion;
    const first = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${rv}`);
    await first.ended;
    expect(first.status).toBe(status);
    if (mode === "error-event") expect(first.events.map((e) => [e.type, e.object.code])).toEqual([["ERROR", 410]]);
    const second = await openWatch(`${server.url}${CM}?watch=true&resourceVersion=${rv}`);
    expect(second.status).toBe(200);
    second.close();
  });

  it("answers HTTP 410 with an Expired Status body in http-410 mode", async () => {
    server.faults.expireWatches({ mode: "http-410" });
    const r = await call("GET", `${CM}?watch=true&resourceVersion=${server.store.resourceVersion}`);
    expect(r.status).toBe(410);
    expect(r.body).toMatchObject({ kind: "Status", reason: "Expired", code: 410 });
  });
});
