// Why: in the qemu guest the control plane (API server emulator, controller and agents, all in the check's
// one process) competes for two emulated CPUs, and a migration step that takes seconds instead of
// milliseconds must be explained by measurement, not guessed. This samples the process's own JS with
// V8's profiler (node:inspector, no extra process, no file left behind) over a window and prints where the
// time went: by source module of the esbuild bundle (its `// path` comments mark where each module starts)
// and by function. Only self time is counted; "(idle)" and "(program)" are V8's own buckets.
import { readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
}

/** Module start lines of this bundle (0-based line -> "src/agent/routing.ts"), ascending. */
function bundleModules(): { line: number; path: string }[] {
  try {
    const text = readFileSync(fileURLToPath(import.meta.url), "utf8");
    const out: { line: number; path: string }[] = [];
    text.split("\n").forEach((l, i) => {
      const m = /^\/\/ ((?:src|test|node_modules)\/\S+)$/.exec(l);
      if (m) out.push({ line: i, path: m[1]! });
    });
    return out;
  } catch {
    return [];
  }
}

function moduleOf(modules: readonly { line: number; path: string }[], line: number): string {
  let lo = 0;
  let hi = modules.length - 1;
  let found = "";
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (modules[mid]!.line <= line) {
      found = modules[mid]!.path;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // node_modules/<pkg>/... is summarised by package; the project's own files stay whole.
  const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(found);
  return pkg ? `node_modules/${pkg[1]}` : found || "(bundle prelude)";
}

export class JsProfile {
  private readonly session = new Session();
  private started = false;

  async start(samplingIntervalUs: number): Promise<void> {
    this.session.connect();
    await this.session.post("Profiler.enable");
    await this.session.post("Profiler.setSamplingInterval", { interval: samplingIntervalUs });
    await this.session.post("Profiler.start");
    this.started = true;
  }

  /** Stops and summarises: the `top` heaviest modules and functions by self time. */
  async stop(top: number): Promise<string[]> {
    if (!this.started) return [];
    this.started = false;
    const { profile } = (await this.session.post("Profiler.stop")) as { profile: Profile };
    this.session.disconnect();
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const hits = new Map<number, number>();
    for (const id of profile.samples ?? []) hits.set(id, (hits.get(id) ?? 0) + 1);
    const total = [...hits.values()].reduce((a, b) => a + b, 0);
    if (total === 0) return ["the profile has no samples"];
    const self = bundleFileName();
    const modules = bundleModules();
    const byModule = new Map<string, number>();
    const byFunction = new Map<string, number>();
    for (const [id, n] of hits) {
      const f = byId.get(id)?.callFrame;
      if (!f) continue;
      const inBundle = f.url !== "" && self !== "" && f.url.endsWith(self);
      // Frames without a URL are V8's buckets ("(idle)", "(program)", "(garbage collector)") or natives.
      const mod = inBundle ? moduleOf(modules, f.lineNumber) : f.url === "" ? f.functionName || "(native)" : f.url;
      byModule.set(mod, (byModule.get(mod) ?? 0) + n);
      const fn = f.url === "" ? mod : `${f.functionName || "(anonymous)"} ${mod}${inBundle ? `:${f.lineNumber + 1}` : ""}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + n);
    }
    const pct = (n: number): string => `${((100 * n) / total).toFixed(1)}%`;
    const wall = (profile.endTime - profile.startTime) / 1e6;
    const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
    return [
      `JS profile of the control-plane process over ${wall.toFixed(1)} s (${total} samples; self time):`,
      `  by module: ${sorted(byModule).map(([k, n]) => `${k} ${pct(n)}`).join(", ")}`,
      `  by function: ${sorted(byFunction).map(([k, n]) => `${k} ${pct(n)}`).join(", ")}`,
    ];
  }
}

/** The bundle's file name as V8 reports it in call frames (a file: URL ending with it). */
function bundleFileName(): string {
  try {
    return fileURLToPath(import.meta.url).split("/").pop() ?? "";
  } catch {
    return "";
  }
}
