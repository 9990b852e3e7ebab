/**
 * Opening the SQLite connection of a database directory: which driver
 * (the runtime's native one, else SQLite-WASM), the pragmas the engine runs
 * with, and what it reports of them (`info`). Kept apart from the store so
 * that each choice, and the measurement behind it, sits next to the pragma.
 *
 * @module
 */
import type { World } from "../core/world.ts";
import { runtimeName } from "../runtime/detect.ts";
import type { SqlDriver, SqlValue } from "./sqlite_driver.ts";
import { migrate } from "./sqlite_schema.ts";

/** Which SQLite driver to use: the runtime's native one, or SQLite-WASM. */
export type SqliteDriverChoice = "native" | "wasm";

/**
 * What a resolved commit survives: `process` — the process being killed
 * (`synchronous=NORMAL`); `power` — power loss too (`synchronous=FULL`).
 */
export type Durability = "process" | "power";

/** What {@link SqliteStore.info} reports. */
export interface SqliteInfo {
  /** The driver, e.g. `node:sqlite`, `bun:sqlite`, `sqlite-wasm`. */
  readonly driver: string;
  /** `PRAGMA user_version`. */
  readonly schemaVersion: number;
  /** `wal` normally. */
  readonly journalMode: string;
  /** `normal` (durability `process`) or `full` (durability `power`). */
  readonly synchronous: string;
  /** `exclusive`. */
  readonly lockingMode: string;
  readonly pages: number;
  readonly pageSize: number;
}

/**
 * Page size of a new database file (an existing file keeps its own). Node
 * bodies are a few hundred bytes: with 16 KiB pages instead of the default 4
 * KiB, inserting and committing 100k new nodes took 2.2–2.3 µs per node
 * instead of 3.2–3.6 (fewer pages to split and to append to the WAL), and a
 * random point read cost the same (8–10 µs from the OS cache, either way).
 */
export const PAGE_BYTES = 16_384;
/**
 * SQLite's page cache, in KiB (`PRAGMA cache_size` takes negative numbers as
 * KiB). Hot nodes are served by the node cache above it, and the operating
 * system caches the file: 4 MiB instead of 8 left applying 1M ops as fast
 * (1.56–1.74 µs per op either way) and a process that had read 100,000
 * nodes 4–5 MB smaller (Deno 2.9).
 */
const PAGE_CACHE_KIB = 4096;

/**
 * Opens `file` with the chosen driver, sets the connection up (`busy` ms
 * of waiting for SQLite's file locks; `durability`) and brings its schema up
 * to date. Closes the connection again when any of it fails.
 */
export async function connect(
  file: string,
  driver: SqliteDriverChoice | undefined,
  durability: Durability,
  busy: number,
): Promise<SqlDriver> {
  return configure(await openDriver(file, driver), file, durability, busy);
}

/**
 * Sets an open connection up as {@link connect} does (pragmas, schema) and
 * returns it; closes it when any of it fails. The browser's OPFS worker
 * (storage/opfs_worker.ts) brings its own connection.
 */
export function configure(db: SqlDriver, file: string, durability: Durability, busy: number): SqlDriver {
  try {
    db.exec(`PRAGMA busy_timeout = ${busy}`);
    db.exec(`PRAGMA page_size = ${PAGE_BYTES}`); // before anything is written: only a new file takes it
    // The directory LOCK already makes this process the only user, so SQLite may hold its file
    // lock for the whole connection: no lock/unlock system calls per statement and (set before
    // WAL is entered) a WAL index in process memory instead of a shared-memory file. Reads
    // get 3–6× faster. Other processes cannot even read the file while it is open.
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    // WAL: a commit appends to one file and readers never block. (The WASM driver's VFS may
    // refuse it and stay in TRUNCATE mode, a rollback journal: slower, equally safe.)
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${durability === "power" ? "FULL" : "NORMAL"}`);
    // 4 MiB of page cache; temporary b-trees in memory; after a checkpoint the WAL file
    // (which a large group commit can grow) is cut back to 64 MiB.
    db.exec(
      `PRAGMA cache_size = -${PAGE_CACHE_KIB}; PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864`,
    );
    migrate(db, file);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Opens a driver for `file`: the runtime's native SQLite, else (or when asked) SQLite-WASM. */
async function openDriver(file: string, choice: SqliteDriverChoice | undefined): Promise<SqlDriver> {
  if (choice !== "wasm") {
    const runtime = runtimeName();
    if (runtime === "bun") {
      const { openBunSqlite } = await import("./sqlite_bun.ts");
      return await openBunSqlite(file);
    }
    if (runtime === "deno" || runtime === "node") {
      try {
        const { openNodeSqlite } = await import("./sqlite_node.ts");
        return await openNodeSqlite(file);
      } catch (e) {
        // Node < 22.5 has no node:sqlite: fall back to WASM unless native was demanded.
        if (choice === "native" || !isMissingModule(e)) throw e;
      }
    } else if (choice === "native") {
      throw new RangeError(`No native SQLite driver on this runtime (${runtime}); use driver "wasm"`);
    }
  }
  // A variable specifier: the WASM engine (and the sqlite-wasm package) stay out of bundles
  // that never ask for it.
  const wasmModule = "./sqlite_wasm.ts";
  const { openWasmSqlite } = await import(wasmModule) as {
    openWasmSqlite(file: string): Promise<SqlDriver>;
  };
  return await openWasmSqlite(file);
}

function isMissingModule(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === "ERR_UNKNOWN_BUILTIN_MODULE" || code === "ERR_MODULE_NOT_FOUND" ||
    /node:sqlite/.test(String((e as Error)?.message));
}

const SYNCHRONOUS = ["off", "normal", "full", "extra"];

/** How the connection is set up (see {@link SqliteInfo}). */
export function readInfo(db: SqlDriver): SqliteInfo {
  const one = (pragma: string): SqlValue => {
    const row = db.prepare(`PRAGMA ${pragma}`).get();
    return row === undefined ? null : Object.values(row)[0];
  };
  return {
    driver: db.name,
    schemaVersion: Number(one("user_version")),
    journalMode: String(one("journal_mode")).toLowerCase(),
    synchronous: SYNCHRONOUS[Number(one("synchronous"))] ?? String(one("synchronous")),
    lockingMode: String(one("locking_mode")).toLowerCase(),
    pages: Number(one("page_count")),
    pageSize: Number(one("page_size")),
  };
}

/**
 * Runs `PRAGMA integrity_check` (or `quick_check`): `["ok"]` when the file
 * is sound, else SQLite's list of problems.
 */
export function integrityCheck(db: SqlDriver, quick: boolean): string[] {
  const pragma = quick ? "quick_check" : "integrity_check";
  return db.prepare(`PRAGMA ${pragma}`).all().map((r) => String(Object.values(r)[0]));
}

/** Options of `SqliteStore.open` (storage/sqlite.ts). */
export interface SqliteStoreOptions {
  /** Driver (default: native where the runtime has one, else wasm). */
  readonly driver?: SqliteDriverChoice;
  /** Default `process`. */
  readonly durability?: Durability;
  /** What to call this process in the directory's LOCK file (default: its command line). */
  readonly lockCommand?: string;
  /** How long to wait for SQLite's own file locks, in ms (default 5000). */
  readonly busyTimeout?: number;
  /**
   * Budget of the node cache in bytes (default 8 MiB; 0 turns it off). It
   * keeps nodes read more than once lately, as `readNode` returns them, so
   * that repeated reads skip SQLite and the journal (a node read only once,
   * as by a scan, stays out). It is never stale: this process is the only
   * user of the file, and each commit drops the nodes it writes (folding
   * journaled records into SQLite changes no node, so it leaves the cache
   * alone). SQLite's own page cache (4 MiB) comes on top.
   */
  readonly cacheBytes?: number;
  /** Clock, timers and randomness (default: `systemWorld`). */
  readonly world?: World;
}
