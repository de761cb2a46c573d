// `switchyard validate -f FILE [--old OLDFILE]`: the same checks as the admission webhook, offline.
// Prints one line per error, `<path>: <message>`; exit 0 valid, 1 invalid, 2 unreadable input.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { formatDiagnostic, validateClusterNetwork, validateClusterNetworkUpdate, type Diagnostic } from "../api";

export class InputError extends Error {}

type Doc = { index: number; value: unknown };

/** Reads every YAML document of a file; throws InputError with a one-line reason when it cannot. */
export function readYamlDocuments(file: string): Doc[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : String((e as Error).message);
    throw new InputError(`cannot read ${file}: ${why}`);
  }
  const docs = parseAllDocuments(text, { prettyErrors: false });
  if (!Array.isArray(docs)) throw new InputError(`cannot parse ${file}: not a YAML stream`);
  const out: Doc[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length > 0) {
      const err = d.errors[0]!;
      const line = err.linePos?.[0]?.line;
      throw new InputError(`cannot parse ${file}${line ? ` (line ${line})` : ""}: ${err.message.split("\n")[0]}`);
    }
    const value: unknown = d.toJS();
    if (value !== null && value !== undefined) out.push({ index: i + 1, value });
  });
  if (out.length === 0) throw new InputError(`${file} holds no YAML document`);
  return out;
}

function describe(value: unknown): { kind: string; name: string } {
  const o = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const md = (typeof o["metadata"] === "object" && o["metadata"] !== null ? o["metadata"] : {}) as Record<string, unknown>;
  return { kind: typeof o["kind"] === "string" ? o["kind"] : "?", name: typeof md["name"] === "string" ? md["name"] : "?" };
}

export type ValidateOptions = { file: string; old?: string };
export type Output = { out: (line: string) => void; err: (line: string) => void };

/** Runs the validate command; returns the exit code. */
export function runValidate(opts: ValidateOptions, io: Output): number {
  let docs: Doc[];
  let olds: Doc[] = [];
  try {
    docs = readYamlDocuments(opts.file);
    if (opts.old) olds = readYamlDocuments(opts.old);
  } catch (e) {
    if (e instanceof InputError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const oldByName = new Map<string, unknown>();
  for (const o of olds) {
    const d = describe(o.value);
    if (d.kind === "ClusterNetwork") oldByName.set(d.name, o.value);
  }
  let invalid = 0;
  for (const doc of docs) {
    const { kind, name } = describe(doc.value);
    let diags: Diagnostic[];
    if (kind === "ClusterNetwork") {
      const old = oldByName.get(name) ?? (olds.length === 1 && docs.length === 1 ? olds[0]!.value : undefined);
      diags = old !== undefined ? validateClusterNetworkUpdate(old, doc.value) : validateClusterNetwork(doc.value);
    } else {
      diags = [{ path: "kind", message: `${JSON.stringify(kind)} is not a kind switchyard validates (ClusterNetwork)` }];
    }
    if (diags.length === 0) {
      io.err(`${opts.file}: ${kind}/${name} is valid`);
      continue;
    }
    invalid++;
    if (docs.length > 1) io.err(`# ${opts.file} document ${doc.index}: ${kind}/${name}: ${diags.length} error(s)`);
    for (const d of diags) io.out(formatDiagnostic(d));
  }
  return invalid > 0 ? 1 : 0;
}
