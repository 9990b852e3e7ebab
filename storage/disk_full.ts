/**
 * A full disk, as one error every storage driver raises: `ENOSPC`/`EDQUOT`
 * from file calls (`node:fs`, Deno's namespace) and `SQLITE_FULL` from every
 * SQLite driver (`node:sqlite` reports it as `errcode` 13, `bun:sqlite` and
 * SQLite-WASM as `code` `SQLITE_FULL`) become a {@link DiskFullError} naming
 * the directory and what failed. Callers match it by `.name`; the HTTP API
 * answers it with 507 `insufficient_storage` and `connect()` turns that back
 * into this class.
 *
 * Nothing acknowledged is lost when it is raised: the write it answers was
 * not stored, everything before it is in the journal or the database file,
 * reads go on, and writes succeed again once space is freed (no restart).
 *
 * @module
 */

/**
 * A write failed because the disk (or the user's quota) is full; nothing of it was stored.
 *
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * // A node whose disk is full answers writes with 507; here a stand-in for its HTTP API.
 * const error = { code: "insufficient_storage", message: "Cannot write to the journal: the disk is full" };
 * const answer = () => Promise.resolve(Response.json({ error }, { status: 507 }));
 * const db = connect("http://127.0.0.1:7420", { fetch: answer });
 * await db.put("alice", { name: "Alice" }).catch((e) => console.log(e.name)); // DiskFullError
 * await db.close();
 * ```
 */
export class DiskFullError extends Error {
  override readonly name = "DiskFullError";
  /** The database directory, when known (not over HTTP). */
  readonly dir: string | undefined;

  /**
   * @example
   * ```ts
   * import { DiskFullError } from "./disk_full.ts";
   *
   * const e = new DiskFullError("Cannot write to the journal in /data: the disk is full (ENOSPC)", { dir: "/data" });
   * console.log(e.name, e.dir); // DiskFullError /data
   * ```
   */
  constructor(message: string, options: { dir?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.dir = options.dir;
  }
}

/** SQLite's primary result code for a full disk (or database at `max_page_count`). */
const SQLITE_FULL = 13;

/** Whether `e` says the disk or the quota is full, whichever driver raised it. */
export function isDiskFull(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  if ((e as Error).name === "DiskFullError") return true;
  const { code, errcode } = e as { code?: unknown; errcode?: unknown };
  if (code === "ENOSPC" || code === "EDQUOT") return true;
  if (typeof code === "string" && (code === "SQLITE_FULL" || code.startsWith("SQLITE_FULL_"))) return true;
  // node:sqlite: code ERR_SQLITE_ERROR, errcode the (extended) result code
  return typeof errcode === "number" && (errcode & 0xff) === SQLITE_FULL && code === "ERR_SQLITE_ERROR";
}

/**
 * `e` as a {@link DiskFullError} saying what could not be done where
 * (`Cannot <what> in <dir>: the disk is full (<cause>)<then>`), or `e`
 * itself when it is not about a full disk.
 */
export function asDiskFull(
  e: unknown,
  dir: string,
  what: string,
  then = "; writes resume once space is freed",
): unknown {
  if (!isDiskFull(e) || (e as Error).name === "DiskFullError") return e;
  const { code, message } = e as { code?: unknown; message?: unknown };
  const why = typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : String(message ?? code);
  return new DiskFullError(`Cannot ${what} in ${dir}: the disk is full (${why})${then}`, { dir, cause: e });
}
