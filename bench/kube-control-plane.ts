// bench/kube-control-plane: what the real control plane costs next to the emulator, side by side. Each
// round starts, in turn (A B A B ...), so a busy neighbour slows both alike:
//   embedded     the in-process API server emulator, until it answers
//   kubernetes   etcd + kube-apiserver until /readyz is 200 ("start"), then Switchyard installed as a
//                user installs it: CRDs Established, RBAC, ValidatingAdmissionPolicies, the Pepr module
//                served and registered ("install")
// plus hack/build-kube.sh with its cache warm (what every `npm test` pays after the first). The cold build
// is minutes of `go build`; measure it with empty caches:
//   SWITCHYARD_CACHE=$(mktemp -d) GOCACHE=$(mktemp -d) GOMODCACHE=$(mktemp -d) time bash hack/build-kube.sh
// Run: `npx tsx bench/kube-control-plane.ts [--rounds 5]`
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startApiServer } from "../lab/apiserver";
import { installSwitchyard } from "../lab/control-plane/install";
import { kubeBinaries, startKubeControlPlane } from "../lab/control-plane/kubernetes";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
const ROUNDS = Number(args.rounds);
const ROOT = join(import.meta.dirname, "..");

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

const binDir = await kubeBinaries();
const cached: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const t0 = performance.now();
  const r = spawnSync("bash", [join(ROOT, "hack", "build-kube.sh"), "--quiet"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  cached.push(performance.now() - t0);
}

const embedded: number[] = [];
const start: number[] = [];
const install: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  let t0 = performance.now();
  const api = await startApiServer({ namespaces: ["default", "switchyard-system"] });
  embedded.push(performance.now() - t0);
  await api.close();

  const runDir = mkdtempSync(join(tmpdir(), "switchyard-bench-kube-"));
  t0 = performance.now();
  const kube = await startKubeControlPlane({ runDir, binDir });
  start.push(performance.now() - t0);
  t0 = performance.now();
  const inst = await installSwitchyard(kube, { namespaces: ["x", "y"] });
  install.push(performance.now() - t0);
  await inst.close();
  await kube.stop();
  rmSync(runDir, { recursive: true, force: true });
}

const fmt = (xs: readonly number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)})`;
console.log(`rounds: ${ROUNDS}`);
console.log(`hack/build-kube.sh, cache warm:            ${fmt(cached)}`);
console.log(`embedded emulator, start:                  ${fmt(embedded)}`);
console.log(`kube-apiserver + etcd, start to /readyz:   ${fmt(start)}  (${(median(start) / median(embedded)).toFixed(0)}x the emulator)`);
console.log(`install (CRDs, RBAC, policies, webhook):   ${fmt(install)}`);
console.log(`kubernetes total:                          median ${(median(start) + median(install)).toFixed(0)} ms`);
