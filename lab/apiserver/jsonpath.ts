// The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a['x.y']`, `.a[*].b` and equality
// filters such as `.status.conditions[?(@.type=="Ready")].status`. Returns every match, in order.

import { isObject } from "./json";

type Step =
  | { kind: "field"; name: string }
  | { kind: "index"; index: number }
  | { kind: "all" }
  | { kind: "filter"; path: string[]; op: "==" | "!="; value: string };

function parseFilter(body: string): Step {
  const m = /^\?\(@((?:\.[A-Za-z0-9_-]+)+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|([^\s)]+))\)$/.exec(body);
  if (!m) throw new Error(`unsupported JSONPath filter [${body}]`);
  return { kind: "filter", path: (m[1] as string).split(".").slice(1), op: m[2] as "==" | "!=", value: m[3] ?? m[4] ?? m[5] ?? "" };
}

export function parseJsonPath(expr: string): Step[] {
  let text = expr.trim();
  if (text.startsWith("{") && text.endsWith("}")) text = text.slice(1, -1);
  if (text.startsWith("$")) text = text.slice(1);
  const steps: Step[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === ".") {
      const m = /^\.([A-Za-z0-9_-]+)/.exec(text.slice(i));
      if (!m) throw new Error(`bad JSONPath ${expr}`);
      steps.push({ kind: "field", name: m[1] as string });
      i += m[0].length;
    } else if (ch === "[") {
      const end = text.indexOf("]", text.startsWith("[?(", i) ? text.indexOf(")", i) : i);
      if (end < 0) throw new Error(`bad JSONPath ${expr}`);
      const body = text.slice(i + 1, end).trim();
      if (body === "*") steps.push({ kind: "all" });
      else if (/^\d+$/.test(body)) steps.push({ kind: "index", index: Number(body) });
      else if (/^'.*'$|^".*"$/.test(body)) steps.push({ kind: "field", name: body.slice(1, -1) });
      else steps.push(parseFilter(body));
      i = end + 1;
    } else throw new Error(`bad JSONPath ${expr}`);
  }
  return steps;
}

function valueAt(node: unknown, path: string[]): unknown {
  let cur = node;
  for (const seg of path) cur = isObject(cur) ? cur[seg] : undefined;
  return cur;
}

export function evaluateJsonPath(root: unknown, expr: string): unknown[] {
  let current: unknown[] = [root];
  for (const step of parseJsonPath(expr)) {
    const next: unknown[] = [];
    for (const node of current) {
      if (step.kind === "field" && isObject(node) && node[step.name] !== undefined) next.push(node[step.name]);
      if (step.kind === "index" && Array.isArray(node) && step.index < node.length) next.push(node[step.index]);
      if (step.kind === "all") {
        if (Array.isArray(node)) next.push(...node);
        else if (isObject(node)) next.push(...Object.values(node));
      }
      if (step.kind === "filter" && Array.isArray(node)) {
        for (const el of node) {
          const v = valueAt(el, step.path);
          const equal = v !== undefined && String(v) === step.value;
          if (equal === (step.op === "==")) next.push(el);
        }
      }
    }
    current = next;
  }
  return current;
}
