// The HTTP endpoints a kubelet and Prometheus call on a daemon: /healthz (liveness: the process answers),
// /readyz (readiness: a check of the daemon's own, 503 with its reason when not ready) and, when given,
// /metrics. One small server per daemon, on the address and port its command line names.
import { createServer, type Server } from "node:http";

export interface ProbeAnswer {
  readonly ok: boolean;
  readonly reason: string;
}

export interface ProbeHandlers {
  readonly live?: () => ProbeAnswer;
  readonly ready: () => ProbeAnswer;
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly text: string }>;
}

/** Serves the probes on host:port (port 0: an ephemeral one); resolves once listening. */
export function serveProbes(port: number, host: string, h: ProbeHandlers): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    const answer = (a: ProbeAnswer): void => {
      res.writeHead(a.ok ? 200 : 503, { "Content-Type": "text/plain; charset=utf-8" }).end(`${a.reason}\n`);
    };
    if (path === "/healthz" || path === "/livez") return answer(h.live?.() ?? { ok: true, reason: "ok" });
    if (path === "/readyz") return answer(h.ready());
    if (path === "/metrics" && h.metrics) {
      h.metrics().then(
        (m) => res.writeHead(200, { "Content-Type": m.contentType }).end(m.text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
