/**
 * SQLite compiled to WebAssembly (`@sqlite.org/sqlite-wasm`) on a real file,
 * for server runtimes without a native SQLite driver (e.g. Node 20) or when
 * `driver: "wasm"` is forced.
 *
 * sqlite-wasm's own VFSes on server runtimes keep everything in memory, so
 * this module registers a durable VFS, `lattice-fs`, written over the
 * synchronous `node:fs` calls that Deno, Bun and Node all provide (loaded
 * with dynamic `import()`, so nothing here is pulled in by a browser bundle
 * unless this module itself is). This file loads sqlite-wasm and is the
 * driver (connection, statements); the VFS is storage/sqlite_wasm_vfs.ts, the
 * typed slice of the sqlite-wasm API storage/sqlite_wasm_abi.ts.
 *
 * How the database is opened:
 * - `PRAGMA locking_mode=EXCLUSIVE`, then `PRAGMA journal_mode=WAL`. The VFS
 *   has no shared memory (`xShm*`), which SQLite accepts for WAL only in
 *   exclusive locking mode: the WAL index then lives in the connection's heap
 *   and no `-shm` file exists. Should WAL still be refused, the database falls
 *   back to `journal_mode=TRUNCATE` (a rollback journal truncated at each
 *   commit). {@link WasmSqliteDriver.journalMode} says which one is in use.
 * - `PRAGMA synchronous=FULL`: every commit `fsync`s the WAL before it is
 *   acknowledged, so an acknowledged commit survives SIGKILL (writes are in
 *   the OS page cache) and power loss (they are on the device). Newly created
 *   journal/WAL/database files also get their directory `fsync`ed once.
 *
 * Locking: `xLock`/`xUnlock`/`xCheckReservedLock` keep SQLite's five lock
 * levels in process memory, per file path. They exclude connections inside
 * one process (a second connection to an open database gets `SQLITE_BUSY`);
 * they do not exclude other processes. Cross-process exclusion comes from
 * Lattice's own `LOCK` file, which `SqliteStore` holds for the database's
 * lifetime. (With `locking_mode=EXCLUSIVE` the connection keeps its lock until
 * it closes anyway.)
 *
 * Loading: the package is imported by its bare name. On Deno, Bun and Node it
 * resolves to its `node` build (`dist/node.mjs`), which reads `sqlite3.wasm`
 * from beside itself with `node:fs` (Deno needs `--allow-read`). A bundle made
 * with esbuild (`--platform=node`) works on Node 20 when `sqlite3.wasm` is
 * copied next to the bundle.
 *
 * @example
 * ```ts
 * import { openWasmSqlite } from "./sqlite_wasm.ts";
 * const db = await openWasmSqlite("/tmp/example.db");
 * db.exec("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)");
 * db.prepare("INSERT OR REPLACE INTO t VALUES (?, ?)").run("a", new Uint8Array([1, 2]));
 * console.log(db.prepare("SELECT v FROM t WHERE k = ?").get("a")); // { v: Uint8Array [1, 2] }
 * db.close();
 * ```
 *
 * @module
 */
import type { SqlDriver, SqlStatement, SqlValue } from "./sqlite_driver.ts";
import { importRuntimeModule } from "../runtime/detect.ts";
import {
  type Exports,
  type Ptr,
  type Sqlite3,
  SQLITE_BLOB,
  SQLITE_DONE,
  SQLITE_FLOAT,
  SQLITE_INTEGER,
  SQLITE_NOMEM,
  SQLITE_OK,
  SQLITE_OPEN_CREATE,
  SQLITE_OPEN_READWRITE,
  SQLITE_ROW,
  SQLITE_TEXT,
} from "./sqlite_wasm_abi.ts";
import { FsVfs } from "./sqlite_wasm_vfs.ts";

/** Name under which the file-backed VFS is registered with SQLite. */
export const WASM_VFS_NAME = "lattice-fs";

// ---------------------------------------------------------------------------
// Loading, once per process.

let loading: Promise<Sqlite3> | undefined;

function loadSqlite(): Promise<Sqlite3> {
  loading ??= (async () => {
    const [{ default: init }, fs, path, os] = await Promise.all([
      import("@sqlite.org/sqlite-wasm"),
      importRuntimeModule<typeof import("node:fs")>("node:fs"),
      importRuntimeModule<typeof import("node:path")>("node:path"),
      importRuntimeModule<typeof import("node:os")>("node:os"),
    ]);
    const sqlite3 = (await init()) as unknown as Sqlite3;
    if (!sqlite3.capi.sqlite3_vfs_find(WASM_VFS_NAME)) {
      const windows = (globalThis as { process?: { platform?: string } }).process?.platform === "win32";
      new FsVfs(sqlite3, fs, path, () => os.tmpdir(), windows).install(WASM_VFS_NAME);
    }
    return sqlite3;
  })();
  // A failed load (e.g. missing read permission) may be retried.
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

// ---------------------------------------------------------------------------
// The driver.

/** An error raised by SQLite, with its (extended) result code. */
export class WasmSqliteError extends Error {
  /** e.g. `SQLITE_CONSTRAINT_UNIQUE`. */
  readonly code: string;
  /** The extended result code, e.g. 2067. */
  readonly errcode: number;

  /** An error with SQLite's message and its extended result code (number and name). */
  constructor(message: string, errcode: number, code: string) {
    super(message);
    this.name = "WasmSqliteError";
    this.errcode = errcode;
    this.code = code;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true }); // a leading U+FEFF is part of the text

/** One open connection, shared by the driver and its statements. */
class Connection {
  readonly sqlite3: Sqlite3;
  readonly x: Exports;
  /** `sqlite3*`; 0 once closed. */
  db: Ptr = 0;
  /** Statements not finalized yet (`sqlite3_stmt*`). */
  readonly live = new Set<Ptr>();

  constructor(sqlite3: Sqlite3) {
    this.sqlite3 = sqlite3;
    this.x = sqlite3.wasm.exports;
  }

  /** Copies `s` NUL-terminated into memory from sqlite3_malloc: [pointer, byte length without the NUL]. */
  cstring(s: string, extra = 0): [Ptr, number] {
    // Short strings: encode straight into a worst-case (3 bytes per UTF-16 unit) buffer;
    // long ones: encode first, to allocate no more than needed.
    const bytes = s.length > 4096 ? encoder.encode(s) : undefined;
    const max = (bytes ? bytes.length : s.length * 3) + 1;
    const p = this.x.sqlite3_malloc(max + extra);
    if (!p) throw new WasmSqliteError("out of memory", SQLITE_NOMEM, "SQLITE_NOMEM");
    const heap = this.sqlite3.wasm.heap8u();
    let written: number;
    if (bytes) {
      heap.set(bytes, p);
      written = bytes.length;
    } else {
      written = encoder.encodeInto(s, heap.subarray(p, p + max - 1)).written;
    }
    heap[p + written] = 0;
    return [p, written];
  }

  /** A NUL-terminated UTF-8 string at `p`. */
  text(p: Ptr): string {
    if (!p) return "";
    const heap = this.sqlite3.wasm.heap8u();
    const end = heap.indexOf(0, p);
    return decoder.decode(heap.subarray(p, end));
  }

  /** Throws the connection's current error (for result code `rc`). */
  fail(rc: number): never {
    const errcode = (this.db && this.x.sqlite3_extended_errcode(this.db)) || rc;
    const message = this.db ? this.text(this.x.sqlite3_errmsg(this.db)) : `result code ${rc}`;
    throw new WasmSqliteError(
      message,
      errcode,
      this.sqlite3.capi.sqlite3_js_rc_str(errcode) ?? `SQLITE_${rc}`,
    );
  }

  exec(sql: string): void {
    const [p] = this.cstring(sql);
    try {
      const rc = this.x.sqlite3_exec(this.db, p, 0, 0, 0);
      if (rc !== SQLITE_OK) this.fail(rc);
    } finally {
      this.x.sqlite3_free(p);
    }
  }

  prepare(sql: string): Ptr {
    // The SQL, then 8 bytes (4-aligned) for the sqlite3_stmt* out-pointer.
    const [p, n] = this.cstring(sql, 8);
    const out = (p + n + 4) & ~3;
    try {
      const rc = this.x.sqlite3_prepare_v2(this.db, p, n, out, 0);
      if (rc !== SQLITE_OK) this.fail(rc);
      const heap = this.sqlite3.wasm.heap8u();
      const stmt = (heap[out] | (heap[out + 1] << 8) | (heap[out + 2] << 16) | (heap[out + 3] << 24)) >>> 0;
      if (!stmt) throw new RangeError("sqlite-wasm: no SQL statement to prepare");
      this.live.add(stmt);
      return stmt;
    } finally {
      this.x.sqlite3_free(p);
    }
  }

  finalize(stmt: Ptr): void {
    if (this.live.delete(stmt)) this.x.sqlite3_finalize(stmt);
  }

  close(): void {
    if (!this.db) return;
    for (const stmt of this.live) this.x.sqlite3_finalize(stmt);
    this.live.clear();
    const db = this.db;
    this.db = 0;
    this.x.sqlite3_close_v2(db);
  }
}

/** Finalizes statements dropped while their database stays open. */
const dropped = new FinalizationRegistry<{ conn: Connection; stmt: Ptr }>(({ conn, stmt }) => {
  if (conn.db) conn.finalize(stmt);
});

/** A statement of a {@link WasmSqliteDriver}. */
export interface WasmSqlStatement extends SqlStatement {
  /** Finalizes the statement now (idempotent); it cannot be used afterwards. */
  finalize(): void;
}

class WasmStatement implements WasmSqlStatement {
  readonly #conn: Connection;
  readonly #stmt: Ptr;
  readonly #params: number;
  #names: string[] = [];

  constructor(conn: Connection, stmt: Ptr) {
    this.#conn = conn;
    this.#stmt = stmt;
    this.#params = conn.x.sqlite3_bind_parameter_count(stmt);
  }

  run(...params: SqlValue[]): void {
    const p = this.#start(params);
    try {
      while (this.#step(p)) { /* drain rows, e.g. of INSERT ... RETURNING */ }
    } finally {
      this.#conn.x.sqlite3_reset(p);
    }
  }

  get(...params: SqlValue[]): Record<string, SqlValue> | undefined {
    const p = this.#start(params);
    try {
      return this.#step(p) ? this.#row(p) : undefined;
    } finally {
      this.#conn.x.sqlite3_reset(p);
    }
  }

  all(...params: SqlValue[]): Record<string, SqlValue>[] {
    const p = this.#start(params);
    const rows: Record<string, SqlValue>[] = [];
    try {
      while (this.#step(p)) rows.push(this.#row(p));
    } finally {
      this.#conn.x.sqlite3_reset(p);
    }
    return rows;
  }

  /** Finalizes the statement now (idempotent); it cannot be used afterwards. */
  finalize(): void {
    this.#conn.finalize(this.#stmt);
    dropped.unregister(this);
  }

  #start(params: SqlValue[]): Ptr {
    const conn = this.#conn;
    const p = this.#stmt;
    if (!conn.live.has(p)) {
      throw new Error("sqlite-wasm: the statement is finalized (or its database closed)");
    }
    const x = conn.x;
    if (params.length > this.#params) {
      throw new RangeError(
        `sqlite-wasm: ${params.length} parameters given, the statement takes ${this.#params}`,
      );
    }
    // Parameters left out are NULL, as in the native drivers, not the previous call's values.
    if (params.length < this.#params) x.sqlite3_clear_bindings(p);
    for (let i = 0; i < params.length; i++) {
      const v = params[i] as unknown;
      const at = i + 1;
      let rc: number;
      if (v === null || v === undefined) rc = x.sqlite3_bind_null(p, at);
      else if (typeof v === "number") {
        // Safe integers bind as INTEGER, everything else (fractions, ±1e300, NaN) as REAL.
        if ((v | 0) === v) rc = x.sqlite3_bind_int(p, at, v);
        else if (Number.isSafeInteger(v)) rc = x.sqlite3_bind_int64(p, at, BigInt(v));
        else rc = x.sqlite3_bind_double(p, at, v);
      } else if (typeof v === "string") {
        // Copied into WASM memory here; SQLite frees it (SQLITE_WASM_DEALLOC).
        const [ptr, n] = conn.cstring(v);
        rc = x.sqlite3_bind_text(p, at, ptr, n, conn.sqlite3.capi.SQLITE_WASM_DEALLOC);
      } else if (v instanceof Uint8Array) {
        // At least one byte: a NULL pointer would bind SQL NULL instead of an empty blob.
        const ptr = x.sqlite3_malloc(v.length || 1);
        if (!ptr) conn.fail(SQLITE_NOMEM);
        conn.sqlite3.wasm.heap8u().set(v, ptr);
        rc = x.sqlite3_bind_blob(p, at, ptr, v.length, conn.sqlite3.capi.SQLITE_WASM_DEALLOC);
      } else if (typeof v === "bigint") rc = x.sqlite3_bind_int64(p, at, v);
      else if (typeof v === "boolean") rc = x.sqlite3_bind_int(p, at, v ? 1 : 0);
      else throw new TypeError(`sqlite-wasm: cannot bind a value of type ${typeof v} (parameter ${at})`);
      if (rc !== SQLITE_OK) conn.fail(rc);
    }
    return p;
  }

  #step(p: Ptr): boolean {
    const rc = this.#conn.x.sqlite3_step(p);
    if (rc === SQLITE_ROW) return true;
    if (rc === SQLITE_DONE) return false;
    return this.#conn.fail(rc);
  }

  #row(p: Ptr): Record<string, SqlValue> {
    const conn = this.#conn;
    const x = conn.x;
    const n = x.sqlite3_column_count(p);
    // Names can change when SQLite re-prepares after a schema change (`SELECT *`).
    if (this.#names.length !== n) {
      this.#names = Array.from({ length: n }, (_, i) => conn.text(x.sqlite3_column_name(p, i)));
    }
    const row: Record<string, SqlValue> = {};
    for (let i = 0; i < n; i++) {
      let value: SqlValue;
      switch (x.sqlite3_column_type(p, i)) {
        case SQLITE_INTEGER: {
          value = x.sqlite3_column_double(p, i);
          if (!Number.isSafeInteger(value)) {
            const big = x.sqlite3_column_int64(p, i);
            value = Number(big);
            if (!Number.isSafeInteger(value)) {
              throw new RangeError(`sqlite-wasm: integer ${big} in column ${this.#names[i]} exceeds 2^53`);
            }
          }
          break;
        }
        case SQLITE_FLOAT:
          value = x.sqlite3_column_double(p, i);
          break;
        case SQLITE_TEXT: {
          const at = x.sqlite3_column_text(p, i);
          const size = x.sqlite3_column_bytes(p, i);
          value = size === 0 ? "" : decoder.decode(conn.sqlite3.wasm.heap8u().subarray(at, at + size));
          break;
        }
        case SQLITE_BLOB: {
          const at = x.sqlite3_column_blob(p, i);
          const size = x.sqlite3_column_bytes(p, i);
          value = size === 0 ? new Uint8Array(0) : conn.sqlite3.wasm.heap8u().slice(at, at + size);
          break;
        }
        default:
          value = null;
      }
      row[this.#names[i]] = value;
    }
    return row;
  }
}

/** An {@link SqlDriver} over sqlite-wasm and the `lattice-fs` VFS. */
export class WasmSqliteDriver implements SqlDriver {
  readonly name = "sqlite-wasm";
  /** `wal` (normally) or `truncate` (when SQLite refused WAL). */
  readonly journalMode: string;
  /** The SQLite library version, e.g. `3.54.1`. */
  readonly version: string;
  readonly #conn: Connection;

  /** @internal Use {@link openWasmSqlite}. */
  constructor(conn: Connection, journalMode: string) {
    this.#conn = conn;
    this.journalMode = journalMode;
    this.version = conn.sqlite3.version.libVersion;
  }

  /** Runs one or more SQL statements (no parameters, no results). */
  exec(sql: string): void {
    this.#open().exec(sql);
  }

  /**
   * Prepares one statement. Statements are finalized when the driver closes,
   * or earlier once garbage-collected, or by their `finalize()`.
   */
  prepare(sql: string): WasmSqlStatement {
    const conn = this.#open();
    const stmt = conn.prepare(sql);
    const statement = new WasmStatement(conn, stmt);
    dropped.register(statement, { conn, stmt }, statement);
    return statement;
  }

  /** Finalizes every statement and closes the database (a WAL checkpoint runs first). Idempotent. */
  close(): void {
    this.#conn.close();
  }

  #open(): Connection {
    if (!this.#conn.db) throw new Error("sqlite-wasm: the database is closed");
    return this.#conn;
  }
}

/** Runs a one-row statement (a PRAGMA) and returns its first column, lower-cased. */
function pragma(conn: Connection, sql: string): string {
  const statement = new WasmStatement(conn, conn.prepare(sql));
  try {
    const row = statement.get();
    return row === undefined ? "" : String(Object.values(row)[0]).toLowerCase();
  } finally {
    statement.finalize();
  }
}

/**
 * Opens (creating when missing) the SQLite database `file` with sqlite-wasm on
 * the durable `lattice-fs` VFS: exclusive locking, WAL (else TRUNCATE)
 * journal, `synchronous=FULL`. Rejects when the file cannot be opened or
 * another connection of this process has it open.
 */
export async function openWasmSqlite(file: string): Promise<WasmSqliteDriver> {
  if (typeof file !== "string" || file === "") throw new TypeError("file must be a non-empty path");
  return openWasmSqliteOn(await loadSqlite(), file, WASM_VFS_NAME);
}

/**
 * Opens `file` as {@link openWasmSqlite} does, on an already loaded sqlite-wasm
 * and the VFS registered as `vfs` (the browser's OPFS worker uses it with
 * `opfs-sahpool`, storage/opfs_worker.ts).
 */
export function openWasmSqliteOn(sqlite3: Sqlite3, file: string, vfs: string): WasmSqliteDriver {
  const conn = new Connection(sqlite3);
  const x = conn.x;
  // File name, VFS name and the sqlite3** out-pointer in one allocation.
  const vfsName = encoder.encode(vfs + "\0");
  const [pName, nName] = conn.cstring(file, vfsName.length + 8);
  const pVfs = pName + nName + 1;
  sqlite3.wasm.heap8u().set(vfsName, pVfs);
  const out = (pVfs + vfsName.length + 3) & ~3;
  let rc: number;
  try {
    rc = x.sqlite3_open_v2(pName, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, pVfs);
    const heap = sqlite3.wasm.heap8u();
    // Even a failed open usually returns a handle, holding the error message.
    conn.db = (heap[out] | (heap[out + 1] << 8) | (heap[out + 2] << 16) | (heap[out + 3] << 24)) >>> 0;
  } finally {
    x.sqlite3_free(pName);
  }
  try {
    if (rc !== SQLITE_OK) conn.fail(rc);
    x.sqlite3_extended_result_codes(conn.db, 1);
    // Exclusive locking first: it is what lets WAL run without shared memory, and an
    // existing WAL database can only be read once it is set.
    pragma(conn, "PRAGMA locking_mode=EXCLUSIVE");
    let mode = pragma(conn, "PRAGMA journal_mode=WAL");
    if (mode !== "wal") mode = pragma(conn, "PRAGMA journal_mode=TRUNCATE");
    conn.exec("PRAGMA synchronous=FULL");
    return new WasmSqliteDriver(conn, mode);
  } catch (e) {
    conn.close();
    throw e;
  }
}
