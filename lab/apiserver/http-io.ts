// Bodies in and out. Every response is application/json (kfc parses a body as JSON only when the content
// type says so), request bodies are capped like the real server's 3 MiB, and apply bodies may be YAML.

import { type IncomingMessage, type ServerResponse } from "node:http";
import { parse as parseYaml } from "yaml";
import { type ApiError, errors } from "./errors";

export const MAX_REQUEST_BYTES = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_REQUEST_BYTES) throw errors.tooLarge(`Request entity too large: limit is ${MAX_REQUEST_BYTES}`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw errors.badRequest(`the body of the request could not be decoded as JSON: ${(err as Error).message}`);
  }
}

export function parseJsonOrYaml(body: Buffer): unknown {
  const text = body.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    try {
      return parseYaml(text);
    } catch (err) {
      throw errors.badRequest(`error decoding YAML: ${(err as Error).message}`);
    }
  }
}

/** The media type of a Content-Type header, without parameters, lower-cased. */
export function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

export function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { ...headers, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.code, err.toStatus(), err.headers);
}

/** Warning headers (RFC 7234 code 299), as the real server sends for dropped unknown fields. */
export function warningHeaders(warnings: string[]): Record<string, string[]> {
  return warnings.length > 0 ? { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`) } : {};
}
