// `switchyard validate -f FILE [--old OLDFILE]`: the same checks as the admission webhook, offline.
// Prints one line per error, `FILE:LINE:COL: <path>: <message>`, where LINE:COL is the field in the YAML
// (or, for a missing field, the nearest thing above it that is there); `-f -` reads standard input.
// Exit codes (README): 0 every object valid; 1 some object invalid; 2 input that is not a set of
// Kubernetes objects at all: unreadable, not UTF-8 text, not YAML, an alias bomb, a document that is not a
// mapping. A `kind: List` (what `kubectl get -o yaml` prints) is expanded; its items' paths say items[i].
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from "yaml";
import { formatDiagnostic, validateClusterNetwork, validateClusterNetworkUpdate, type Diagnostic } from "../api";

/** Input that is not a set of Kubernetes objects; the message names the file and the line. */
export class InputError extends Error {}

/**
 * How many alias references one document may expand. The `yaml` package counts them while it builds the
 * value and throws past the limit: a "billion laughs" document (aliases of aliases, each level multiplying
 * the one below) is refused in microseconds instead of filling memory. Real manifests use a handful.
 */
const MAX_ALIAS_COUNT = 100;

/** One YAML document of a source, parsed. */
interface SourceDoc {
  /** 1-based, counting empty documents too (what an editor's `---` count says). */
  readonly index: number;
  readonly doc: Document.Parsed;
  readonly value: Record<string, unknown>;
}

/** A file (or stdin) read and parsed: its name as printed, and where each offset is in lines. */
export interface Source {
  readonly name: string;
  readonly lines: LineCounter;
  readonly docs: readonly SourceDoc[];
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (isPlainObject(v)) return "a mapping";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return v === null ? "null" : `${typeof v === "number" ? "the number" : typeof v === "boolean" ? "the boolean" : "a"} ${String(v)}`;
}

function readBytes(file: string, stdin: () => Buffer): { name: string; bytes: Buffer } {
  if (file === "-") {
    try {
      return { name: "<stdin>", bytes: stdin() };
    } catch (e) {
      throw new InputError(`cannot read standard input: ${(e as Error).message}`);
    }
  }
  try {
    return { name: file, bytes: readFileSync(file) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : String((e as Error).message);
    throw new InputError(`cannot read ${file}: ${why}`);
  }
}

/**
 * Reads and parses every YAML document of `file` (`-`: standard input). Throws InputError naming the file,
 * line and column of every problem that makes it something other than Kubernetes objects.
 */
export function readSource(file: string, stdin: () => Buffer = () => readFileSync(0)): Source {
  const { name, bytes } = readBytes(file, stdin);
  let text: string;
  try {
    // fatal: a byte sequence that is not UTF-8 is refused, not turned into U+FFFD and parsed as a string.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InputError(`${name}: not UTF-8 text (a binary file?); expected YAML`);
  }
  const lines = new LineCounter();
  const at = (offset: number): string => {
    const p = lines.linePos(offset);
    return `${name}:${p.line}:${p.col}`;
  };
  const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  // A stream that is empty or all comments parses to an empty list; anything else to Document.Parsed[].
  const all = Array.isArray(parsed) ? parsed : [];
  const problems: string[] = [];
  for (const d of all) for (const err of d.errors) problems.push(`${at(err.pos[0])}: YAML syntax error: ${err.message.split("\n")[0]}`);
  if (problems.length > 0) throw new InputError(problems.join("\n"));
  const docs: SourceDoc[] = [];
  all.forEach((doc, i) => {
    const start = at(doc.contents?.range[0] ?? doc.range[0]);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      if (e instanceof ReferenceError) {
        throw new InputError(`${start}: document ${i + 1}: its aliases expand to more than ${MAX_ALIAS_COUNT} references (an alias bomb?); refused: ${e.message}`);
      }
      throw new InputError(`${start}: document ${i + 1}: ${(e as Error).message}`);
    }
    if (value === null || value === undefined) return; // an empty document (a trailing `---`, comments)
    if (!isPlainObject(value)) {
      problems.push(`${start}: document ${i + 1} is not a Kubernetes object: expected a mapping with apiVersion and kind, got ${describeValue(value)}`);
      return;
    }
    docs.push({ index: i + 1, doc, value });
  });
  if (problems.length > 0) throw new InputError(problems.join("\n"));
  if (docs.length === 0) throw new InputError(`${name} holds no YAML document`);
  return { name, lines, docs };
}

/** One object to check: a document, or an item of a document's `kind: List`. */
export interface SourceObject {
  readonly source: Source;
  readonly doc: SourceDoc;
  /** "" for a document itself, `items[3]` for an item of a List. */
  readonly prefix: string;
  readonly value: unknown;
}

/** The objects of a source: each document, a `kind: List` replaced by its items. */
export function sourceObjects(source: Source): { objects: SourceObject[]; diagnostics: { doc: SourceDoc; diagnostic: Diagnostic }[] } {
  const objects: SourceObject[] = [];
  const diagnostics: { doc: SourceDoc; diagnostic: Diagnostic }[] = [];
  for (const doc of source.docs) {
    if (doc.value["kind"] !== "List") {
      objects.push({ source, doc, prefix: "", value: doc.value });
      continue;
    }
    const items = doc.value["items"];
    if (!Array.isArray(items)) {
      diagnostics.push({ doc, diagnostic: { path: "items", message: items === undefined ? "is required in a List" : `must be a list of objects, not ${describeValue(items)}` } });
      continue;
    }
    items.forEach((value: unknown, i) => objects.push({ source, doc, prefix: `items[${i}]`, value }));
  }
  return { objects, diagnostics };
}

/** A diagnostic path (`spec.podCIDRs[1]`) as segments; a label key with dots is rejoined while walking. */
function pathSegments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

/**
 * Where `path` is in the document: the offset of the key (a field), or of the item (a list entry); for a
 * path that is not there (a required field), the nearest ancestor that is.
 */
export function locatePath(doc: Document.Parsed, path: string): number {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range[0] ?? doc.range[0];
  const segs = pathSegments(path);
  let i = 0;
  while (i < segs.length) {
    const s = segs[i]!;
    if (typeof s === "number" && isSeq(node)) {
      const item = node.items[s] as { range?: [number, number, number] } | undefined;
      if (item?.range === undefined) break;
      offset = item.range[0];
      node = item;
      i++;
      continue;
    }
    if (typeof s === "string" && isMap(node)) {
      const map = node;
      // Longest match first: `matchLabels.app.kubernetes.io/name` is one key after matchLabels.
      let found = false;
      for (let j = segs.length; j > i && !found; j--) {
        const words = segs.slice(i, j);
        if (words.some((w) => typeof w !== "string")) continue;
        const key = words.join(".");
        const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
        if (pair === undefined) continue;
        if (isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
        node = pair.value;
        i = j;
        found = true;
      }
      if (!found) break;
      continue;
    }
    break;
  }
  return offset;
}

function describeObject(value: unknown): { kind: string; name: string } {
  const o = isPlainObject(value) ? value : {};
  const md = isPlainObject(o["metadata"]) ? o["metadata"] : {};
  return { kind: typeof o["kind"] === "string" ? o["kind"] : "?", name: typeof md["name"] === "string" ? md["name"] : "?" };
}

/** `FILE:LINE:COL: <path>: <message>`, the path counted from the document (items[i] included). */
export function formatLocated(source: Source, doc: SourceDoc, prefix: string, d: Diagnostic): string {
  const path = prefix === "" ? d.path : d.path === "" ? prefix : `${prefix}.${d.path}`;
  const p = source.lines.linePos(locatePath(doc.doc, path));
  return `${source.name}:${p.line}:${p.col}: ${formatDiagnostic({ path, message: d.message })}`;
}

export type ValidateOptions = { file: string; old?: string };
export type Output = { out: (line: string) => void; err: (line: string) => void; stdin?: () => Buffer };

/** Runs the validate command; returns the exit code. */
export function runValidate(opts: ValidateOptions, io: Output): number {
  let source: Source;
  let olds: SourceObject[] = [];
  try {
    if (opts.file === "-" && opts.old === "-") throw new InputError("-f and --old cannot both read standard input");
    source = readSource(opts.file, io.stdin);
    if (opts.old !== undefined) olds = sourceObjects(readSource(opts.old, io.stdin)).objects;
  } catch (e) {
    if (e instanceof InputError) {
      for (const line of e.message.split("\n")) io.err(`error: ${line}`);
      return 2;
    }
    throw e;
  }
  const oldByName = new Map<string, unknown>();
  for (const o of olds) {
    const d = describeObject(o.value);
    if (d.kind === "ClusterNetwork") oldByName.set(d.name, o.value);
  }
  const { objects, diagnostics: listProblems } = sourceObjects(source);
  for (const { doc, diagnostic } of listProblems) io.out(formatLocated(source, doc, "", diagnostic));
  let invalid = listProblems.length;
  const several = objects.length + listProblems.length > 1;
  for (const obj of objects) {
    const { kind, name } = describeObject(obj.value);
    const where = `${source.name} document ${obj.doc.index}${obj.prefix === "" ? "" : ` ${obj.prefix}`}`;
    let diags: Diagnostic[];
    if (!isPlainObject(obj.value)) {
      diags = [{ path: "", message: `must be a Kubernetes object (a mapping with apiVersion and kind), not ${describeValue(obj.value)}` }];
    } else if (kind === "ClusterNetwork") {
      const old = oldByName.get(name) ?? (olds.length === 1 && objects.length === 1 ? olds[0]!.value : undefined);
      diags = old !== undefined ? validateClusterNetworkUpdate(old, obj.value) : validateClusterNetwork(obj.value);
    } else if (obj.value["kind"] === undefined) {
      diags = [{ path: "kind", message: "is required (ClusterNetwork, or a List of them)" }];
    } else {
      diags = [{ path: "kind", message: `${JSON.stringify(obj.value["kind"])} is not a kind switchyard validates (ClusterNetwork, or a List of them)` }];
    }
    if (diags.length === 0) {
      io.err(`${where}: ${kind}/${name} is valid`);
      continue;
    }
    invalid++;
    if (several) io.err(`# ${where}: ${kind}/${name}: ${diags.length} error(s)`);
    for (const d of diags) io.out(formatLocated(source, obj.doc, obj.prefix, d));
  }
  return invalid > 0 ? 1 : 0;
}

/**
 * One ClusterNetwork from `file` (`lab up --cluster-network`), checked as `validate` checks it: the object,
 * or every refusal as `validate` prints it (file, line and column, field path).
 */
export function readValidClusterNetwork(file: string): { ok: true; value: Record<string, unknown> } | { ok: false; problems: string[] } {
  let source: Source;
  try {
    source = readSource(file);
  } catch (e) {
    if (e instanceof InputError) return { ok: false, problems: e.message.split("\n") };
    throw e;
  }
  const { objects, diagnostics } = sourceObjects(source);
  const problems = diagnostics.map(({ doc, diagnostic }) => formatLocated(source, doc, "", diagnostic));
  const cns = objects.filter((o) => describeObject(o.value).kind === "ClusterNetwork");
  if (cns.length !== 1 || objects.length !== 1) {
    return { ok: false, problems: [...problems, `${source.name}: expected exactly one ClusterNetwork, found ${cns.length} among ${objects.length} object(s)`] };
  }
  const cn = cns[0]!;
  problems.push(...validateClusterNetwork(cn.value).map((d) => formatLocated(source, cn.doc, cn.prefix, d)));
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: cn.value as Record<string, unknown> };
}
