// Lint rules for Switchyard. The second block is the boundary that keeps the pure folders pure:
// compile/render/migration/api/model take time, node name and config as arguments and never do I/O,
// so the same input always gives byte-identical output (golden files stay stable, an unchanged plan is a no-op).
import tseslint from "typescript-eslint";

const PURE = ["src/api/**/*.ts", "src/model/**/*.ts", "src/compile/**/*.ts", "src/render/**/*.ts", "src/migration/**/*.ts"];
const IO_MODULES = [
  "fs", "fs/promises", "child_process", "net", "dgram", "http", "https", "http2", "os", "dns", "cluster", "worker_threads", "timers", "timers/promises", "readline", "tls", "vm",
];

export default tseslint.config(
  { ignores: ["node_modules/**", "dist/**", "run/**", "coverage/**", "crds/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
    },
  },
  {
    files: PURE,
    ignores: ["**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        paths: [
          ...IO_MODULES.flatMap(m => [
            { name: m, message: "pure folders do no I/O: pass data in as arguments (see ARCHITECTURE.md, Boundaries)" },
            { name: `node:${m}`, message: "pure folders do no I/O: pass data in as arguments (see ARCHITECTURE.md, Boundaries)" },
          ]),
          { name: "pepr", message: "pure folders import no runtime part of pepr", allowTypeImports: true },
          { name: "kubernetes-fluent-client", message: "pure folders import no runtime part of kfc", allowTypeImports: true },
          { name: "@kubernetes/client-node", message: "pure folders import no runtime part of client-node", allowTypeImports: true },
        ],
        patterns: [
          { group: ["**/controller/**", "**/agent/**", "**/lab/**", "**/cli/**"], message: "pure folders must not depend on I/O folders" },
        ],
      }],
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
    },
  },
);
