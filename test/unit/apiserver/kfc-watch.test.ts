// kfc's Watch (what Pepr's controller runs on) against the emulator: ADDED/MODIFIED/DELETED delivery, and no
// lost update across a dropped stream, a 410 ERROR event (kfc relists at once) and an HTTP 410 (kfc waits
// for its resync timer). Each recovery test changes objects while the watch is down and asserts the
// callback still sees those changes.
import { K8s, kind, WatchEvent } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../../lab/apiserver";
import { rawClient } from "../../support/apiserver";
import { waitFor } from "../../../src/base/wait";

let server: ApiServer;
let call: ReturnType<typeof rawClient>;
const NS = "kfc-watch";
const seen: string[] = [];
const kfcEvents: string[] = [];
let watcher: ReturnType<ReturnType<typeof K8s<typeof kind.ConfigMap>>["Watch"]>;

const cm = (name: string, data: Record<string, string> = { v: "1" }) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });
const CM = `/api/v1/namespaces/${NS}/configmaps`;
const sees = (entry: string) => waitFor(`the kfc callback to see "${entry}" (saw ${JSON.stringify(seen)})`, () => seen.includes(entry), 15_000, 20);

beforeAll(async () => {
  server = await startApiServer();
  call = rawClient(server.url);
  process.env.KUBECONFIG = server.kubeconfigPath;
  await call("POST", "/api/v1/namespaces", { metadata: { name: NS } });
  await call("POST", CM, cm("existing"));
  watcher = K8s(kind.ConfigMap).InNamespace(NS).Watch((obj, phase) => {
    seen.push(`${phase} ${obj.metadata?.name} ${obj.data?.v ?? ""}`.trim());
  }, { resyncDelaySec: 1 });
  for (const e of [WatchEvent.CONNECT, WatchEvent.LIST, WatchEvent.OLD_RESOURCE_VERSION, WatchEvent.WATCH_ERROR]) {
    watcher.events.on(e, () => kfcEvents.push(e));
  }
  await watcher.start();
  await waitFor("kfc's watch to connect", () => server.openWatches() === 1, 10_000, 20);
});
afterAll(async () => {
  watcher.close();
  await server.close();
});

describe("kfc Watch", () => {
  it("delivers the initial list as ADDED, then ADDED, MODIFIED and DELETED from the stream", async () => {
    await sees("ADDED existing 1");
    await call("POST", CM, cm("live"));
    await call("PATCH", `${CM}/live`, { data: { v: "2" } }, "application/merge-patch+json");
    await call("DELETE", `${CM}/live`);
    await sees("DELETED live 2");
    expect(seen.filter((s) => s.includes(" live "))).toEqual(["ADDED live 1", "MODIFIED live 2", "DELETED live 2"]);
  });

  it("survives dropWatches(): relists, rewatches and replays what changed between list and watch", async () => {
    const lists = server.requests.count({ verb: "list", resource: "configmaps" });
    const watches = server.requests.count({ verb: "watch", resource: "configmaps" });
    // Hold the rewatch so a change lands after kfc's relist but before its watch starts.
    server.faults.delay({ verb: "watch", resource: "configmaps", ms: 400, times: 1 });
    server.faults.dropWatches();
    await waitFor("kfc to rewatch", () => server.requests.count({ verb: "watch", resource: "configmaps" }) > watches, 10_000, 20);
    expect(server.requests.count({ verb: "list", resource: "configmaps" })).toBe(lists + 1);
    await call("POST", CM, cm("between"));
    await call("PATCH", `${CM}/existing`, { data: { v: "3" } }, "application/merge-patch+json");
    await sees("ADDED between 1");
    await sees("MODIFIED existing 3");
  });

  it("recovers from a 410 ERROR event without losing changes made while it was down", async () => {
    await waitFor("a live watch", () => server.openWatches() === 1, 10_000, 20);
    server.faults.expireWatches({ mode: "error-event", times: 1 });
    const oldRv = kfcEvents.filter((e) => e === WatchEvent.OLD_RESOURCE_VERSION).length;
    server.faults.dropWatches();
    await waitFor("kfc's old_resource_version event", () => kfcEvents.filter((e) => e === WatchEvent.OLD_RESOURCE_VERSION).length > oldRv, 10_000, 20);
    await call("POST", CM, cm("after-410-event"));
    await call("PATCH", `${CM}/between`, { data: { v: "4" } }, "application/merge-patch+json");
    await sees("ADDED after-410-event 1");
    await sees("MODIFIED between 4");
  });

  it("recovers from an HTTP 410 on its resync timer without losing changes made while it was down", async () => {
    await waitFor("a live watch", () => server.openWatches() === 1, 10_000, 20);
    server.faults.expireWatches({ mode: "http-410", times: 1 });
    const errors = kfcEvents.filter((e) => e === WatchEvent.WATCH_ERROR).length;
    server.faults.dropWatches();
    await waitFor("kfc's watch_error event", () => kfcEvents.filter((e) => e === WatchEvent.WATCH_ERROR).length > errors, 10_000, 20);
    await call("POST", CM, cm("after-410-http"));
    await call("DELETE", `${CM}/after-410-event`);
    await sees("ADDED after-410-http 1");
    await sees("DELETED after-410-event 1");

    // And the rewatched stream is live again.
    await waitFor("kfc to rewatch", () => server.openWatches() === 1, 15_000, 20);
    await call("POST", CM, cm("live-again"));
    await sees("ADDED live-again 1");
  });

  it("survives an abrupt connection reset", async () => {
    await waitFor("a live watch", () => server.openWatches() === 1, 10_000, 20);
    server.faults.dropWatches({ abrupt: true });
    await call("POST", CM, cm("after-reset"));
    await sees("ADDED after-reset 1");
    await waitFor("kfc to rewatch", () => server.openWatches() === 1, 15_000, 20);
    await call("PATCH", `${CM}/after-reset`, { data: { v: "2" } }, "application/merge-patch+json");
    await sees("MODIFIED after-reset 2");
  });

  it("never receives a BOOKMARK it did not ask for", () => {
    expect(seen.some((s) => s.startsWith("BOOKMARK"))).toBe(false);
    expect(server.requests.find({ verb: "watch" }).every((r) => !r.path.includes("allowWatchBookmarks"))).toBe(true);
  });
});
