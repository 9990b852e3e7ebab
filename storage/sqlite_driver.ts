/**
 * The few SQLite calls the SQLite engine needs, so that one `SqliteStore`
 * runs over every driver: `node:sqlite` (Deno, Node ≥ 22.5), `bun:sqlite`
 * (Bun) and `@sqlite.org/sqlite-wasm` with a file-backed VFS (anywhere else).
 *
 * @module
 */

/** A value bound to or read from SQLite. Integers beyond 2^53 are never used. */
export type SqlValue = null | number | string | Uint8Array;

/** A prepared statement. Rows are plain objects keyed by column name. */
export interface SqlStatement {
  run(...params: SqlValue[]): void;
  get(...params: SqlValue[]): Record<string, SqlValue> | undefined;
  all(...params: SqlValue[]): Record<string, SqlValue>[];
}

/** An open SQLite connection. */
export interface SqlDriver {
  /** e.g. `node:sqlite`, `bun:sqlite`, `sqlite-wasm`. */
  readonly name: string;
  exec(sql: string): void;
  prepare(sql: string): SqlStatement;
  close(): void;
}
