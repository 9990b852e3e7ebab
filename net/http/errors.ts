/**
 * Error answers of the HTTP API: {@link HttpError} (a status, a stable code
 * and a message), the mapping of the library's errors to them (the table in
 * net/http.ts; the client maps the codes back to error classes), and the
 * JSON answer every route and error uses.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "./context.ts";

/** An error answered with `status` and `{"error": {code, message}}`. */
export class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Sends `body` as a JSON answer that no cache keeps. */
export function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(bytes.length),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(bytes);
}

/** Maps an error to its status and code (see the table in the module doc). */
function classify(e: unknown): HttpError | undefined {
  if (e instanceof HttpError) return e;
  if (e instanceof Error && e.name === "QueryTooLargeError") {
    return new HttpError(422, "query_too_large", e.message);
  }
  if (e instanceof TypeError) return new HttpError(400, "invalid_argument", e.message);
  if (e instanceof RangeError) return new HttpError(400, "out_of_range", e.message);
  if (e instanceof SyntaxError) return new HttpError(400, "invalid_syntax", e.message);
  if (e instanceof Error && e.name === "DiskFullError") {
    return new HttpError(507, "insufficient_storage", e.message);
  }
  if (e instanceof Error && e.message === "The database is closed") {
    return new HttpError(503, "unavailable", "The database is closed");
  }
  return undefined;
}

/** Answers `e` as its status and code (500 `internal` for a bug, logged); a started answer is cut off. */
export function sendError(ctx: Context, req: IncomingMessage, res: ServerResponse, e: unknown): void {
  let err = classify(e);
  if (!err) {
    ctx.log.error("http", "internal error", {
      request: `${req.method} ${req.url}`,
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
    err = new HttpError(500, "internal", "Internal error; the node's log has the details");
  }
  if (res.headersSent) return destroy(res);
  send(res, err.status, { error: { code: err.code, message: err.message } }, { ...err.headers });
  if (err.headers.connection === "close") {
    // The rest of the body is not read; close once the answer is out instead of draining it.
    res.on("finish", () => ctx.world.setTimer(() => req.destroy(), 100));
  }
}

/** Destroys an answer, whatever state it is in. */
export function destroy(res: ServerResponse): void {
  try {
    res.destroy();
  } catch {
    // already gone
  }
}
