// A TCP relay in front of the API server, for fault tests: the lab's agents reach kube-apiserver through
// it, and `stall()` freezes every connection open at that moment (no byte passes either way, nothing is
// closed), as a wedged proxy or load balancer would. Connections made afterwards pass normally. TLS goes
// through untouched (the serving certificate names 127.0.0.1, whatever the port).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface StallRelay {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** Freezes the connections open now; returns how many. */
  stall(): number;
  /** Connections frozen so far and still open. */
  stalled(): number;
  close(): Promise<void>;
}

export async function startStallRelay(target: string): Promise<StallRelay> {
  const t = new URL(target);
  const pairs = new Set<{ client: Socket; upstream: Socket; frozen: boolean }>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: t.hostname, port: Number(t.port) });
    const pair = { client, upstream, frozen: false };
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) =>
      from.on("data", (d: Buffer) => {
        if (!pair.frozen) to.write(d);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `${t.protocol}//127.0.0.1:${port}`,
    stall() {
      let n = 0;
      for (const p of pairs) {
        if (p.frozen) continue;
        // Frozen: reads stop (the kernel buffers fill, the peer's writes block), nothing is closed.
        p.frozen = true;
        p.client.pause();
        p.upstream.pause();
        n++;
      }
      return n;
    },
    stalled: () => [...pairs].filter((p) => p.frozen).length,
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
