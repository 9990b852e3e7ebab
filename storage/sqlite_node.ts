/**
 * {@link SqlDriver} over `node:sqlite` (`DatabaseSync`): Deno and Node ≥ 22.5.
 * Its statements already speak the driver interface (positional parameters,
 * rows as objects, BLOBs as `Uint8Array`, integers as numbers), so they are
 * handed out as they are: no wrapper on the hot path. One quirk is reported
 * rather than hidden: see {@link NodeSqliteDriver.textStopsAtNul}.
 *
 * @module
 */
import { importRuntimeModule } from "../runtime/detect.ts";
import type { SqlDriver, SqlStatement } from "./sqlite_driver.ts";

interface NodeStatement extends SqlStatement {
  setReadBigInts?(enabled: boolean): void;
}

interface NodeDatabase {
  exec(sql: string): void;
  prepare(sql: string): NodeStatement;
  close(): void;
}

interface NodeSqliteModule {
  DatabaseSync: new (path: string, options?: { open?: boolean; timeout?: number }) => NodeDatabase;
}

/** Opens (creating if missing) the SQLite database `file` with `node:sqlite`. */
export async function openNodeSqlite(file: string): Promise<SqlDriver> {
  const { DatabaseSync } = await importRuntimeModule<NodeSqliteModule>("node:sqlite");
  return new NodeSqliteDriver(new DatabaseSync(file));
}

class NodeSqliteDriver implements SqlDriver {
  readonly name = "node:sqlite";
  #db: NodeDatabase;
  #stopsAtNul: boolean | undefined;

  constructor(db: NodeDatabase) {
    this.#db = db;
  }

  /**
   * Whether TEXT read back ends at the first U+0000 (Deno 2.9's node:sqlite
   * does: it stores such strings whole but reads them as C strings). The
   * SQLite engine then reads those columns as BLOBs when they hold a NUL.
   * Asked on first use, not on open: any statement reads the file, and the
   * engine sets `locking_mode` first (an existing WAL file read without it
   * needs a `-shm` file, which a full disk refuses with a disk I/O error).
   */
  get textStopsAtNul(): boolean {
    return this.#stopsAtNul ??= this.#db.prepare("SELECT char(97, 0, 98) AS t").get()?.t !== "a\u0000b";
  }

  exec(sql: string): void {
    this.#db.exec(sql);
  }

  prepare(sql: string): SqlStatement {
    const statement = this.#db.prepare(sql);
    statement.setReadBigInts?.(false); // the default, made explicit: integers come back as numbers
    return statement;
  }

  close(): void {
    this.#db.close();
  }
}
