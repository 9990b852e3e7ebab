/**
 * Reading a request: its target (path and strict query parameters, strict
 * percent-decoding) and its body, within the limits that keep a client from
 * holding the node: at most `maxBodyBytes` (checked on `Content-Length` and
 * while reading), within `bodyTimeoutMs`, and JSON of at most
 * {@link MAX_BODY_ITEMS} objects, arrays and keys, counted before parsing.
 *
 * @module
 */
import type { IncomingMessage } from "node:http";
import { countJsonItems } from "../../core/json.ts";
import { MAX_PUT_FIELDS } from "../../core/value.ts";
import type { Context } from "./context.ts";
import { HttpError } from "./errors.ts";

/**
 * Default body limit: 2 MiB. The largest value (1 MiB of UTF-8 text, or
 * 1 MiB of bytes as 1.34 MiB of base64) fits with room for other fields.
 */
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;
/**
 * Most objects, arrays and keys a JSON body may hold, counted before it is
 * parsed (`countJsonItems`): 2 MiB of them took up to 1.5 s to parse and
 * convert. A put at its limit ({@link MAX_PUT_FIELDS}) holds at most three per field.
 */
export const MAX_BODY_ITEMS = 4 * MAX_PUT_FIELDS;

/** Splits a request target into its path and query; an absolute-form target keeps only those. */
export function splitTarget(target: string): { path: string; query: string } {
  let t = target;
  if (!t.startsWith("/")) {
    try {
      const u = new URL(t);
      t = u.pathname + u.search;
    } catch {
      throw new HttpError(400, "invalid_path", "The request target is not a path");
    }
  }
  const q = t.indexOf("?");
  return q < 0 ? { path: t, query: "" } : { path: t.slice(0, q), query: t.slice(q + 1) };
}

const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** Decodes a percent-encoded component strictly: a stray `%` or bytes that are not UTF-8 are a 400. */
export function decodeComponent(text: string, what: string): string {
  if (!BAD_PERCENT.test(text)) {
    try {
      return decodeURIComponent(text);
    } catch {
      // not UTF-8: fall through
    }
  }
  throw new HttpError(400, "invalid_path", `${what} is not valid percent-encoded UTF-8`);
}

/** Parses `a=1&b=2` strictly: known names only, each at most once, `+` as space. */
export function parseQuery(query: string, allowed: readonly string[], where: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === "") return out;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    const name = decodeComponent(rawName.replaceAll("+", " "), "A query parameter name");
    const value = decodeComponent(rawValue.replaceAll("+", " "), `The query parameter ${name}`);
    if (!allowed.includes(name)) {
      const known = allowed.length ? `; it takes ${allowed.join(", ")}` : "; it takes none";
      throw new HttpError(
        400,
        "invalid_path",
        `Unknown query parameter ${JSON.stringify(name)} for ${where}${known}`,
      );
    }
    if (out.has(name)) throw new HttpError(400, "invalid_path", `The query parameter ${name} is given twice`);
    out.set(name, value);
  }
  return out;
}

/** Reads the body, at most `ctx.maxBody` bytes, within `ctx.bodyTimeoutMs`. */
function readBody(ctx: Context, req: IncomingMessage): Promise<Uint8Array> {
  const tooLarge = () =>
    new HttpError(413, "payload_too_large", `The request body exceeds the limit of ${ctx.maxBody} bytes`, {
      connection: "close",
    });
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > ctx.maxBody) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const timer = ctx.world.setTimer(() => {
      finish(
        new HttpError(408, "timeout", `The request body did not arrive within ${ctx.bodyTimeoutMs} ms`, {
          connection: "close",
        }),
      );
    }, ctx.bodyTimeoutMs);
    const onData = (chunk: Uint8Array | string) => {
      const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
      total += bytes.length;
      if (total > ctx.maxBody) return finish(tooLarge());
      chunks.push(bytes);
    };
    const onEnd = () => finish();
    const onAbort = () =>
      finish(new HttpError(400, "bad_request", "The client went away before the body arrived"));
    const finish = (e?: Error) => {
      ctx.world.clearTimer(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("aborted", onAbort);
      req.off("error", onAbort);
      req.off("close", onClose);
      if (e) {
        req.pause();
        return reject(e);
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      resolve(out);
    };
    const onClose = () => {
      if (!req.complete) onAbort();
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("aborted", onAbort);
    req.on("error", onAbort);
    req.on("close", onClose);
  });
}

/** Reads and parses a JSON body. */
export async function readJson(ctx: Context, req: IncomingMessage): Promise<unknown> {
  const bytes = await readBody(ctx, req);
  if (countJsonItems(bytes, MAX_BODY_ITEMS) > MAX_BODY_ITEMS) {
    throw new HttpError(
      413,
      "payload_too_large",
      `The request body holds more than ${MAX_BODY_ITEMS} JSON objects, arrays and keys, the most one request may; split it (a put writes at most ${MAX_PUT_FIELDS} fields)`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_json", "The request body is not valid UTF-8");
  }
  if (text.trim() === "") throw new HttpError(400, "invalid_json", "The request body is empty; send JSON");
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = e instanceof SyntaxError ? e.message : "it nests too deep";
    throw new HttpError(400, "invalid_json", `The request body is not valid JSON: ${why}`);
  }
}

export function describeJson(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}
