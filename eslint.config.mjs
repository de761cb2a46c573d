// Lint rules for Switchyard. Beside the usual TypeScript rules, two kinds of boundaries, both enforced
// here rather than promised (docs/design.md, "The rooms"):
// - The rooms of src/ stand on floors and imports only point down: base (process, timers, logs) at the
//   bottom, the pure rooms (api, model, modes, compile, render, migration) above it, then kube
//   (Kubernetes plumbing), then the daemons (controller, agent), which never import each other, and the
//   CLI on top. Nothing in the product imports the lab (top-level lab/) or the CLI.
// - The pure rooms take time, node name and config as arguments and never do I/O, so the same input
//   always gives byte-identical output (golden files stay stable, an unchanged plan is a no-op).
// Imports are matched by their relative path ("../controller/x"), so every room is named by its folder.
import tseslint from "typescript-eslint";

const IO_MODULES = [
  "fs", "fs/promises", "child_process", "net", "dgram", "http", "https", "http2", "os", "dns", "cluster", "worker_threads", "timers", "timers/promises", "readline", "tls", "vm",
];
const ROOM_NAMES = ["base", "api", "model", "modes", "compile", "render", "migration", "kube", "controller", "agent", "cni", "cli", "lab"];

/**
 * Each room: its files, whether it is pure, and the rooms it may import (itself always). Every other
 * room is forbidden. Files outside every room (tests, bench, hack, capabilities) may import anything.
 */
const ROOMS = [
  { name: "base", files: ["src/base/**/*.ts"], pure: false, may: [] },
  { name: "api", files: ["src/api/**/*.ts"], pure: true, may: ["model"] },
  { name: "model", files: ["src/model/**/*.ts"], pure: true, may: ["api"] },
  { name: "modes", files: ["src/modes/**/*.ts"], pure: true, may: ["api", "model"] },
  { name: "compile", files: ["src/compile/**/*.ts"], pure: true, may: ["api", "model", "modes"] },
  { name: "render", files: ["src/render/**/*.ts"], pure: true, may: ["api", "model", "modes", "compile"] },
  { name: "migration", files: ["src/migration/**/*.ts"], pure: true, may: ["api", "model", "modes", "compile"] },
  { name: "kube", files: ["src/kube/**/*.ts"], pure: false, may: ["base", "api", "model"] },
  { name: "controller", files: ["src/controller/**/*.ts"], pure: false, may: ["base", "api", "model", "modes", "compile", "migration", "kube"] },
  {
    name: "agent",
    files: ["src/agent/**/*.ts"],
    pure: false,
    may: ["base", "api", "model", "modes", "compile", "render", "kube"],
    // The agent's text and diff work, apart from its I/O: kernel state in, commands out.
    pureFiles: ["src/agent/routing/diff.ts", "src/agent/policy/iptables-scripts.ts", "src/agent/policy/nft-scope.ts"],
  },
  { name: "cni", files: ["src/cni/**/*.ts"], pure: false, may: ["base", "api", "model", "modes", "compile"] },
  { name: "cli", files: ["src/cli/**/*.ts"], pure: false, may: ROOM_NAMES.filter((r) => r !== "cli") },
  { name: "lab", files: ["lab/**/*.ts"], pure: false, may: ROOM_NAMES.filter((r) => r !== "cli" && r !== "lab") },
];

const PURE_MESSAGE = "pure folders do no I/O: pass data in as arguments (docs/design.md, The rooms)";

function roomRules(room, { tests, pureFile = false }) {
  const forbidden = ROOM_NAMES.filter((r) => r !== room.name && !room.may.includes(r));
  const patterns = forbidden.map((r) => ({
    group: [`**/${r}/**`, `**/${r}`],
    message: `${room.name} must not import ${r}: imports point down the floors (docs/design.md, The rooms)`,
  }));
  const paths = (room.pure || pureFile) && !tests
    ? [
        ...IO_MODULES.flatMap((m) => [{ name: m, message: PURE_MESSAGE }, { name: `node:${m}`, message: PURE_MESSAGE }]),
        { name: "pepr", message: "pure folders import no runtime part of pepr", allowTypeImports: true },
        { name: "kubernetes-fluent-client", message: "pure folders import no runtime part of kfc", allowTypeImports: true },
        { name: "@kubernetes/client-node", message: "pure folders import no runtime part of client-node", allowTypeImports: true },
      ]
    : [];
  return { "@typescript-eslint/no-restricted-imports": ["error", { paths, patterns }] };
}

const PURE_CODE_RULES = {
  "no-restricted-globals": ["error",
    { name: "process", message: "pure code takes config and environment as arguments" },
    { name: "setTimeout", message: "pure code has no timers" },
    { name: "setInterval", message: "pure code has no timers" },
    { name: "setImmediate", message: "pure code has no timers" },
    { name: "fetch", message: "pure code does no I/O" },
    { name: "require", message: "pure code does no dynamic loading" },
  ],
  "no-restricted-properties": ["error",
    { object: "Date", property: "now", message: "pure code takes the time as an argument" },
    { object: "Math", property: "random", message: "pure code is deterministic: derive from content hashes" },
    { object: "performance", property: "now", message: "pure code takes the time as an argument" },
  ],
  "no-restricted-syntax": ["error",
    { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: "pure code takes the time as an argument" },
    { selector: "ImportExpression", message: "pure code does no dynamic loading" },
  ],
};

export default tseslint.config(
  { ignores: ["node_modules/**", "dist/**", "run/**", "coverage/**", "crds/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
    },
  },
  // A room's boundaries hold for its tests too (a unit test beside its source imports what the room may),
  // though a test of pure code may read its golden files.
  ...ROOMS.map((room) => ({ files: room.files, ignores: ["**/*.test.ts", ...(room.pureFiles ?? [])], rules: roomRules(room, { tests: false }) })),
  ...ROOMS.filter((r) => r.pureFiles).map((room) => ({ files: room.pureFiles, rules: { ...roomRules(room, { tests: false, pureFile: true }), ...PURE_CODE_RULES } })),
  ...ROOMS.map((room) => ({ files: room.files.map((f) => f.replace(/\*\.ts$/, "*.test.ts")), rules: roomRules(room, { tests: true }) })),
  // Pure code outside tests: no clocks, randomness, environment or dynamic loading.
  ...ROOMS.filter((r) => r.pure).map((room) => ({ files: room.files, ignores: ["**/*.test.ts"], rules: PURE_CODE_RULES })),
);
