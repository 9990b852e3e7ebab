/**
 * The errors of `connect` (net/client.ts): a node that cannot be reached
 * ({@link ConnectionError}), and the node's error answers mapped back to the
 * library's error classes by their stable codes (net/http/errors.ts makes
 * them): `TypeError`, `RangeError`, `SyntaxError`, `QueryTooLargeError`,
 * `DiskFullError`, else a {@link RemoteError} with the status and code.
 *
 * @module
 */
import { QueryTooLargeError } from "../../core/query_budget.ts";
import { DiskFullError } from "../../storage/disk_full.ts";

/**
 * The node could not be reached (refused, reset, DNS, …).
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * const db = connect("http://127.0.0.1:1"); // no node listens there
 * await db.get("alice").catch((e) => console.log(e.name, e.url)); // ConnectionError http://127.0.0.1:1
 * await db.close();
 * ```
 */
export class ConnectionError extends Error {
  override readonly name = "ConnectionError";
  /** The node's base URL. */
  readonly url: string;
  constructor(url: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`Cannot reach the Lattice node at ${url}: ${why}`, { cause });
    this.url = url;
  }
}

/**
 * An error answer of the node that has no error class of its own (5xx, 413, 501, …).
 *
 * @example
 * ```ts
 * import { connect, RemoteError } from "../../mod.ts";
 * // A stand-in for a node's HTTP API that refuses a request without the token.
 * const error = { code: "unauthorized", message: "This request needs the node's token" };
 * const answer = () => Promise.resolve(Response.json({ error }, { status: 401 }));
 * const db = connect("http://127.0.0.1:7420", { fetch: answer });
 * try {
 *   await db.put("alice", { name: "Alice" });
 * } catch (e) {
 *   if (e instanceof RemoteError) console.log(e.name, e.status, e.code); // RemoteError 401 unauthorized
 * }
 * await db.close();
 * ```
 */
export class RemoteError extends Error {
  override readonly name = "RemoteError";
  /** HTTP status. */
  readonly status: number;
  /** The `code` of the answer, e.g. `not_implemented`, `payload_too_large`, `internal`. */
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const ERROR_CLASSES: Readonly<Record<string, new (message: string) => Error>> = {
  invalid_argument: TypeError,
  invalid_path: TypeError,
  out_of_range: RangeError,
  invalid_syntax: SyntaxError,
  invalid_json: SyntaxError,
};

/** The error for an error answer of the node (`status`, and `code` and `message` of its body). */
export function answerError(status: number, code: string, message: string): Error {
  if (status === 422 && code === "query_too_large") return new QueryTooLargeError(message);
  const Class = status === 400 ? ERROR_CLASSES[code] : undefined;
  if (Class) return new Class(message);
  if (status === 507 && code === "insufficient_storage") return new DiskFullError(message);
  return new RemoteError(status, code, message);
}

/** The JSON of a 2xx answer; a body that is not JSON is a {@link RemoteError} `invalid_answer`. */
export function parseAnswer(text: string, status: number): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new RemoteError(
      status,
      "invalid_answer",
      `The node answered ${status} with a body that is not JSON`,
    );
  }
}

/** `code` and `message` of an error answer; `http_<status>` when the body is not of that shape. */
export function parseError(text: string, status: number): { code: string; message: string } {
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof e?.code === "string" && typeof e.message === "string") {
      return { code: e.code, message: e.message };
    }
  } catch {
    // not our error shape
  }
  return { code: "http_" + status, message: `The node answered HTTP ${status}` };
}

/** Errors that reconnecting cannot fix: the node refused the watch itself. */
export function isRefusal(e: Error): boolean {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return true;
  return e instanceof RemoteError && e.status >= 400 && e.status < 500 && e.status !== 408 &&
    e.status !== 429;
}
