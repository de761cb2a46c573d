#!/usr/bin/env node
// A byte relay between two stream endpoints, each `unix:PATH` or `tcp:HOST:PORT`: how a lab node's kubelet
// and its host-network pods reach the lab's kube-apiserver, which listens on the root namespace's loopback
// only (the lab's namespaces have no network link to the root namespace). One relay in the root namespace
// listens on a unix socket and connects to the apiserver; one in each node's namespace listens on the
// `kubernetes` Service's ClusterIP, port 443, and connects to that socket. TLS passes through untouched.
// Prints "listening" once bound; exits on SIGTERM, closing every connection.
//
// Usage: node lab/nodes/api-relay.mjs LISTEN CONNECT
import { createServer, connect } from "node:net";
import { rmSync } from "node:fs";

function endpoint(spec) {
  if (spec.startsWith("unix:")) return { path: spec.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(spec);
  if (!m) {
    console.error(`api-relay: bad endpoint ${spec} (unix:PATH or tcp:HOST:PORT)`);
    process.exit(2);
  }
  return { host: m[1], port: Number(m[2]) };
}

const [listenSpec, connectSpec] = process.argv.slice(2);
if (!listenSpec || !connectSpec) {
  console.error("usage: api-relay LISTEN CONNECT");
  process.exit(2);
}
const listen = endpoint(listenSpec);
const target = endpoint(connectSpec);
const sockets = new Set();
const server = createServer((client) => {
  const upstream = connect(target);
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {
      client.destroy();
      upstream.destroy();
    });
  }
  client.pipe(upstream);
  upstream.pipe(client);
});
if (listen.path) rmSync(listen.path, { force: true });
server.on("error", (e) => {
  console.error(`api-relay: ${e.message}`);
  process.exit(1);
});
server.listen(listen, () => console.log(`listening on ${listenSpec}, relaying to ${connectSpec}`));
process.on("SIGTERM", () => {
  server.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
});
