/**
 * {@link SqlDriver} over `bun:sqlite`. Bun returns `null` where the driver
 * interface says `undefined` (no row), and reads BLOBs as `Uint8Array` and
 * integers as numbers (without `safeIntegers`).
 *
 * @module
 */
import { importRuntimeModule } from "../runtime/detect.ts";
import type { SqlDriver, SqlStatement, SqlValue } from "./sqlite_driver.ts";

type Row = Record<string, SqlValue>;

interface BunStatement {
  run(...params: SqlValue[]): unknown;
  get(...params: SqlValue[]): Row | null;
  all(...params: SqlValue[]): Row[];
  finalize(): void;
}

interface BunDatabase {
  exec(sql: string): void;
  prepare(sql: string): BunStatement;
  close(throwOnError?: boolean): void;
}

interface BunSqliteModule {
  Database: new (
    path: string,
    options?: { create?: boolean; readwrite?: boolean; safeIntegers?: boolean; strict?: boolean },
  ) => BunDatabase;
}

/** Opens (creating if missing) the SQLite database `file` with `bun:sqlite`. */
export async function openBunSqlite(file: string): Promise<SqlDriver> {
  const { Database } = await importRuntimeModule<BunSqliteModule>("bun:sqlite");
  return new BunSqliteDriver(new Database(file, { create: true, readwrite: true, safeIntegers: false }));
}

class BunSqliteDriver implements SqlDriver {
  readonly name = "bun:sqlite";
  #db: BunDatabase;
  /**
   * Statements to finalize at close: Bun closes with `sqlite3_close_v2`, which
   * keeps the connection (and its file lock) alive while any statement is.
   */
  #statements = new Set<BunStatement>();

  constructor(db: BunDatabase) {
    this.#db = db;
  }

  exec(sql: string): void {
    this.#db.exec(sql);
  }

  prepare(sql: string): SqlStatement {
    const statement = this.#db.prepare(sql);
    this.#statements.add(statement);
    return new BunSqliteStatement(statement);
  }

  close(): void {
    for (const s of this.#statements) s.finalize();
    this.#statements.clear();
    this.#db.close(false);
  }
}

class BunSqliteStatement implements SqlStatement {
  #s: BunStatement;

  constructor(statement: BunStatement) {
    this.#s = statement;
  }

  run(...params: SqlValue[]): void {
    this.#s.run(...params);
  }

  get(...params: SqlValue[]): Row | undefined {
    return this.#s.get(...params) ?? undefined;
  }

  all(...params: SqlValue[]): Row[] {
    return this.#s.all(...params);
  }
}
