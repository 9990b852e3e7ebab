/**
 * The SQLite engine: a database directory holding `lattice.db` (with its WAL)
 * and a `LOCK` file, through the runtime's native driver (`bun:sqlite` on
 * Bun, `node:sqlite` on Deno and Node ≥ 22.5) or SQLite-WASM on a file VFS.
 *
 * Schema (version 1, in `PRAGMA user_version`; `PRAGMA application_id` marks
 * the file as Lattice's):
 * - `fields(soul, field, value, sh, sl, ah, al, sig, seq)`, primary key
 *   `(soul, field)` `WITHOUT ROWID`, so a node's fields sit together in field
 *   order and `list` walks souls in BINARY (= UTF-8 byte) order; a unique
 *   index on `seq` serves `since`.
 * - `deferred(id, due, op)`: ops waiting for their time (`AUTOINCREMENT`, so
 *   an id is never reused).
 * - `meta(key, value)`.
 *
 * Durability: the database runs in WAL mode. With `durability: "process"`
 * (the default, `synchronous=NORMAL`) a commit is in the WAL file when it
 * resolves, so it survives the process being killed (SIGKILL, crash); after
 * an OS crash or power loss the last commits before it may be lost, never
 * corrupted. `durability: "power"` (`synchronous=FULL`) syncs the WAL on
 * every commit, so a resolved commit survives power loss too, at the cost
 * of one fsync per commit (group commit in the Database shares it between
 * concurrent writers).
 *
 * All calls are synchronous on one connection, so no other JavaScript runs
 * between the statements of one method: reads see a consistent state
 * without explicit read transactions.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { SqliteStore } from "./sqlite.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "lattice-"));
 * const store = await SqliteStore.open(dir);
 * await store.commit({ meta: { hello: "world" } });
 * console.log(await store.getMeta("hello")); // "world"
 * await store.close();
 * rmSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { checkDeferred, checkMeta, checkRecord } from "./_check.ts";
import { compareCodePoints } from "./_order.ts";
import { importRuntimeModule, runtimeName } from "./_runtime.ts";
import { DirectoryLock } from "./lock.ts";
import type { SqlDriver, SqlStatement, SqlValue } from "./sqlite_driver.ts";
import type { CommitBatch, DeferredOp, FieldRecord, ListOptions, Store, StoredRecord } from "./store.ts";

/** Which SQLite driver to use: the runtime's native one, or SQLite-WASM. */
export type SqliteDriverChoice = "native" | "wasm";

/**
 * What a resolved commit survives: `process` — the process being killed
 * (`synchronous=NORMAL`); `power` — power loss too (`synchronous=FULL`).
 */
export type Durability = "process" | "power";

/** Options of {@link SqliteStore.open}. */
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
   * that repeated reads skip SQLite (a node read only once, as by a scan,
   * stays out). It is never stale: this process is the only user of the
   * file, and each commit drops the nodes it writes. SQLite's own page
   * cache (8 MiB) comes on top.
   */
  readonly cacheBytes?: number;
}

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

const SYNCHRONOUS = ["off", "normal", "full", "extra"];

/** The schema version this code writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 1;
/** `PRAGMA application_id` of Lattice databases: "Ltc1". */
const APPLICATION_ID = 0x4c746331;
/** The database file inside the directory. */
export const DB_FILE = "lattice.db";

/** Migration `i` takes the schema from version `i` to `i + 1`; each runs in the open transaction. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE fields (
     soul TEXT NOT NULL,
     field TEXT NOT NULL,
     value BLOB NOT NULL,
     sh INTEGER NOT NULL,
     sl INTEGER NOT NULL,
     ah INTEGER NOT NULL,
     al INTEGER NOT NULL,
     sig BLOB,
     seq INTEGER NOT NULL,
     PRIMARY KEY (soul, field)
   ) WITHOUT ROWID;
   CREATE UNIQUE INDEX fields_seq ON fields (seq);
   CREATE TABLE deferred (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     due INTEGER NOT NULL,
     op BLOB NOT NULL
   );
   CREATE INDEX deferred_due ON deferred (due, id);
   CREATE TABLE meta (
     key TEXT PRIMARY KEY NOT NULL,
     value TEXT NOT NULL
   ) WITHOUT ROWID;`,
];

const COLUMNS = "soul, field, value, sh, sl, ah, al, sig, seq";

/**
 * Records written per INSERT statement, at most. Binding and stepping one
 * multi-row statement costs less per row than one statement per row (per
 * record, 16 rows: −40% CPU on Deno's node:sqlite, −25% on bun:sqlite).
 * Rows are inserted in order, so a later record for the same key still
 * replaces an earlier one of the same statement.
 */
const UPSERT_ROWS = 16;

function upsertSql(rows: number): string {
  const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
  return `INSERT INTO fields (${COLUMNS}) VALUES ${new Array(rows).fill(row).join(", ")}
    ON CONFLICT (soul, field) DO UPDATE SET
      value = excluded.value, sh = excluded.sh, sl = excluded.sl, ah = excluded.ah,
      al = excluded.al, sig = excluded.sig, seq = excluded.seq`;
}

type Row = Record<string, SqlValue>;

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

/** A statement whose rows are arrays of column values. */
interface ValuesStatement {
  all(...params: SqlValue[]): SqlValue[][];
}

interface Statements {
  /**
   * `readNode` with rows as arrays, where the driver offers them: `field`,
   * (where text stops at NUL) `field_raw`, then `value, sh, sl, ah, al, sig, seq`.
   */
  readNodeValues: ValuesStatement | undefined;
  begin: SqlStatement;
  commit: SqlStatement;
  rollback: SqlStatement;
  /** `upsert[k - 1]` writes k records in one statement, prepared on first use. */
  upsert: (SqlStatement | undefined)[];
  readField: SqlStatement;
  readNode: SqlStatement;
  since: SqlStatement;
  /** list: [lower bound inclusive?][has upper bound?] */
  listFrom: SqlStatement;
  listFromTo: SqlStatement;
  listAfter: SqlStatement;
  listAfterTo: SqlStatement;
  defer: SqlStatement;
  undefer: SqlStatement;
  deferred: SqlStatement;
  setMeta: SqlStatement;
  getMeta: SqlStatement;
}

function prepareAll(db: SqlDriver): Statements {
  // Where the driver cuts TEXT at U+0000, a text column holding one is also read as a BLOB
  // (`<column>_raw`, NULL otherwise) and decoded here; see `text` below.
  const stopsAtNul = (db as { textStopsAtNul?: boolean }).textStopsAtNul === true;
  const t = (c: string): string =>
    stopsAtNul ? `${c}, CASE WHEN instr(${c}, char(0)) THEN CAST(${c} AS BLOB) END AS ${c}_raw` : c;
  const list = (lower: string, upper: boolean): SqlStatement =>
    db.prepare(
      `SELECT DISTINCT ${t("soul")} FROM fields WHERE soul ${lower} ?1${
        upper ? " AND soul < ?2" : ""
      } ORDER BY soul LIMIT ?3`,
    );
  const prepareValues = (db as { prepareValues?(sql: string): ValuesStatement | undefined }).prepareValues;
  const readNodeSql = `SELECT ${
    t("field")
  }, value, sh, sl, ah, al, sig, seq FROM fields WHERE soul = ?1 ORDER BY field`;
  return {
    readNodeValues: prepareValues?.call(db, readNodeSql),
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    upsert: new Array(UPSERT_ROWS),
    readField: db.prepare(
      "SELECT value, sh, sl, ah, al, sig, seq FROM fields WHERE soul = ?1 AND field = ?2",
    ),
    readNode: db.prepare(readNodeSql),
    since: db.prepare(
      `SELECT ${t("soul")}, ${
        t("field")
      }, value, sh, sl, ah, al, sig, seq FROM fields WHERE seq > ?1 ORDER BY seq LIMIT ?2`,
    ),
    listFrom: list(">=", false),
    listFromTo: list(">=", true),
    listAfter: list(">", false),
    listAfterTo: list(">", true),
    defer: db.prepare("INSERT INTO deferred (due, op) VALUES (?1, ?2)"),
    undefer: db.prepare("DELETE FROM deferred WHERE id = ?1"),
    deferred: db.prepare("SELECT id, due, op FROM deferred ORDER BY due, id"),
    setMeta: db.prepare(
      "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    getMeta: db.prepare(`SELECT ${t("value")} FROM meta WHERE key = ?1`),
  };
}

/** Brings the schema to {@link SCHEMA_VERSION}; throws for files that are not Lattice's or are newer. */
function migrate(db: SqlDriver, file: string): void {
  const pragma = (name: string): number => Number(db.prepare(`PRAGMA ${name}`).get()?.[name] ?? 0);
  db.exec("BEGIN IMMEDIATE");
  try {
    const app = pragma("application_id");
    const version = pragma("user_version");
    if (app !== APPLICATION_ID) {
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema").get()?.n;
      if (app !== 0 || version !== 0 || tables !== 0) {
        throw new Error(`Cannot open ${file}: it is not a Lattice database`);
      }
    }
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `Cannot open ${file}: it has schema version ${version}, written by a newer Lattice (this one reads up to ${SCHEMA_VERSION})`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
    if (version < SCHEMA_VERSION) {
      db.exec(`PRAGMA application_id = ${APPLICATION_ID}; PRAGMA user_version = ${SCHEMA_VERSION}`);
    }
    db.exec("COMMIT");
  } catch (e) {
    try {
      db.exec("ROLLBACK");
    } catch {
      // the failure already ended the transaction
    }
    throw e;
  }
}

/**
 * The least string above every string that starts with `prefix`, in code
 * point (UTF-8 byte) order, or `undefined` when there is none (a prefix of
 * U+10FFFF only).
 */
function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      // Surrogate code points are not characters: U+D7FF is followed by U+E000.
      return cps.join("") + String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1);
    }
  }
  return undefined;
}

const closedError = (): Error => new Error("The store is closed");

/** A {@link Store} in a SQLite database file inside a locked directory. */
export class SqliteStore implements Store {
  readonly engine: string;
  readonly durable = true;
  /** The database directory, as given. */
  readonly dir: string;
  /** What a resolved commit survives. */
  readonly durability: Durability;
  #db: SqlDriver;
  #lock: DirectoryLock;
  #s: Statements;
  #seq: number;
  #closed = false;
  /** Whether the driver cuts TEXT at U+0000 (see `prepareAll`). */
  #stopsAtNul: boolean;
  #cache: NodeCache | undefined;
  /** Parameters of the multi-row upsert, reused. */
  #args: SqlValue[] = [];

  private constructor(
    dir: string,
    db: SqlDriver,
    lock: DirectoryLock,
    durability: Durability,
    cacheBytes: number,
  ) {
    this.dir = dir;
    this.#cache = cacheBytes > 0 ? new NodeCache(cacheBytes) : undefined;
    this.engine = db.name === "sqlite-wasm" ? "sqlite-wasm" : `sqlite (${db.name})`;
    this.durability = durability;
    this.#db = db;
    this.#lock = lock;
    this.#s = prepareAll(db);
    this.#stopsAtNul = (db as { textStopsAtNul?: boolean }).textStopsAtNul === true;
    this.#seq = Number(db.prepare("SELECT max(seq) AS m FROM fields").get()?.m ?? 0);
  }

  /**
   * Opens the database in directory `dir`, creating both when missing. The
   * directory is locked until {@link close}: a second opener, here or in
   * another process, gets a `LockedError` naming this process.
   */
  static async open(dir: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    if (typeof dir !== "string" || dir === "") {
      throw new TypeError("The database directory must be a non-empty string");
    }
    const durability = options.durability ?? "process";
    if (durability !== "process" && durability !== "power") {
      throw new RangeError(`Unknown durability ${JSON.stringify(durability)}: use "process" or "power"`);
    }
    if (options.driver !== undefined && options.driver !== "native" && options.driver !== "wasm") {
      throw new RangeError(`Unknown SQLite driver ${JSON.stringify(options.driver)}: use "native" or "wasm"`);
    }
    const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (!(cacheBytes >= 0)) throw new RangeError("cacheBytes must be a non-negative number");
    const busy = options.busyTimeout ?? 5000;
    if (!Number.isSafeInteger(busy) || busy < 0) {
      throw new RangeError("busyTimeout must be a non-negative integer");
    }
    const fs = await importRuntimeModule<{ mkdirSync(p: string, o: { recursive: boolean }): unknown }>(
      "node:fs",
    );
    const path = await importRuntimeModule<{ join(...p: string[]): string }>("node:path");
    fs.mkdirSync(dir, { recursive: true });
    const lock = await DirectoryLock.acquire(dir, { command: options.lockCommand });
    let db: SqlDriver | undefined;
    try {
      const file = path.join(dir, DB_FILE);
      db = await openDriver(file, options.driver);
      db.exec(`PRAGMA busy_timeout = ${busy}`);
      // The directory LOCK already makes this process the only user, so SQLite may hold its file
      // lock for the whole connection: no lock/unlock system calls per statement and (set before
      // WAL is entered) a WAL index in process memory instead of a shared-memory file. Reads
      // get 3–6× faster. Other processes cannot even read the file while it is open.
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      // WAL: a commit appends to one file and readers never block. (The WASM driver's VFS may
      // refuse it and stay in TRUNCATE mode, a rollback journal: slower, equally safe.)
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${durability === "power" ? "FULL" : "NORMAL"}`);
      // 8 MiB of page cache; temporary b-trees in memory; after a checkpoint the WAL file
      // (which a large group commit can grow) is cut back to 64 MiB.
      db.exec(
        `PRAGMA cache_size = -${PAGE_CACHE_KIB}; PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864`,
      );
      migrate(db, file);
      return new SqliteStore(dir, db, lock, durability, cacheBytes);
    } catch (e) {
      try {
        db?.close();
      } finally {
        lock.release();
      }
      throw e;
    }
  }

  /** Every stored field of `soul`, in field order (BINARY collation = UTF-8 byte order). */
  readNode(soul: string): Promise<StoredRecord[]> {
    if (this.#closed) return Promise.reject(closedError());
    const cached = this.#cache?.get(soul);
    if (cached !== undefined) return Promise.resolve(cached.slice());
    try {
      const values = this.#s.readNodeValues;
      let out: StoredRecord[];
      if (values !== undefined) {
        const rows = values.all(soul);
        out = new Array(rows.length);
        const raw = this.#stopsAtNul ? 1 : 0;
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i];
          const bytes = raw === 1 ? row[1] : null;
          const field = bytes === null ? row[0] as string : utf8.decode(bytes as Uint8Array);
          out[i] = fromValues(soul, field, row, raw);
        }
      } else {
        const rows = this.#s.readNode.all(soul);
        out = new Array(rows.length);
        for (let i = 0; i < rows.length; i++) {
          out[i] = toRecord(soul, text(rows[i], "field", "field_raw"), rows[i]);
        }
      }
      if (this.#cache?.admit(soul, out)) return Promise.resolve(out.slice());
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  readFields(keys: readonly (readonly [string, string])[]): Promise<(StoredRecord | undefined)[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const read = this.#s.readField;
      const out: (StoredRecord | undefined)[] = new Array(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const [soul, field] = keys[i];
        const cached = this.#cache?.getField(soul, field);
        if (cached !== undefined) {
          out[i] = cached === null ? undefined : cached;
          continue;
        }
        const row = read.get(soul, field);
        out[i] = row === undefined ? undefined : toRecord(soul, field, row);
      }
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Applies `batch` in one `BEGIN IMMEDIATE … COMMIT`; on any error rolls back and rejects. */
  commit(batch: CommitBatch): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    const s = this.#s;
    let seq = this.#seq;
    try {
      s.begin.run();
    } catch (e) {
      return Promise.reject(e);
    }
    try {
      const records = batch.records;
      if (records !== undefined && records.length > 0) seq = this.#upsert(records, seq);
      if (batch.defer !== undefined) {
        for (const d of batch.defer) {
          checkDeferred(d);
          s.defer.run(d.due, d.op);
        }
      }
      if (batch.undefer !== undefined) { for (const id of batch.undefer) s.undefer.run(id); }
      if (batch.meta !== undefined) {
        for (const key of Object.keys(batch.meta)) {
          const value = batch.meta[key];
          checkMeta(key, value);
          s.setMeta.run(key, value);
        }
      }
      s.commit.run();
    } catch (e) {
      try {
        s.rollback.run();
      } catch {
        // a failed COMMIT may already have ended the transaction
      }
      return Promise.reject(e);
    }
    this.#seq = seq;
    return Promise.resolve(seq);
  }

  /** Writes `records` with seqs from `seq + 1`, up to {@link UPSERT_ROWS} per statement; returns the last seq. */
  #upsert(records: readonly FieldRecord[], seq: number): number {
    const args = this.#args;
    const cache = this.#cache;
    for (let start = 0; start < records.length; start += UPSERT_ROWS) {
      const rows = Math.min(UPSERT_ROWS, records.length - start);
      if (args.length !== rows * 9) args.length = rows * 9;
      for (let k = 0, o = 0; k < rows; k++, o += 9) {
        const r = records[start + k];
        checkRecord(r, start + k);
        args[o] = r.soul;
        args[o + 1] = r.field;
        args[o + 2] = r.value;
        args[o + 3] = r.sh;
        args[o + 4] = r.sl;
        args[o + 5] = r.ah;
        args[o + 6] = r.al;
        args[o + 7] = r.sig ?? null;
        args[o + 8] = ++seq;
        // Dropped even if the transaction then fails: forgetting is always safe.
        cache?.delete(r.soul);
      }
      const statement = this.#s.upsert[rows - 1] ??= this.#db.prepare(upsertSql(rows));
      statement.run(...args);
    }
    args.fill(null); // hold no values past the commit
    return seq;
  }

  /** Souls in BINARY order, by a range on the primary key (`prefix ≤ soul < prefixEnd(prefix)`). */
  list(options: ListOptions): Promise<string[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const { prefix = "", after, limit } = options;
      if (!(limit > 0)) return Promise.resolve([]);
      const n = limit === Infinity ? -1 : Math.floor(limit);
      const end = prefix === "" ? undefined : prefixEnd(prefix);
      const useAfter = after !== undefined && compareCodePoints(after, prefix) >= 0;
      const s = this.#s;
      const stmt = useAfter
        ? (end === undefined ? s.listAfter : s.listAfterTo)
        : (end === undefined ? s.listFrom : s.listFromTo);
      const rows = stmt.all(useAfter ? after : prefix, end ?? null, n);
      const out: string[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) out[i] = text(rows[i], "soul", "soul_raw");
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  since(after: number, limit: number): Promise<StoredRecord[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      if (!(limit > 0)) return Promise.resolve([]);
      const rows = this.#s.since.all(after, limit === Infinity ? -1 : Math.floor(limit));
      const out: StoredRecord[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        out[i] = toRecord(text(rows[i], "soul", "soul_raw"), text(rows[i], "field", "field_raw"), rows[i]);
      }
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  lastSeq(): Promise<number> {
    return Promise.resolve(this.#seq);
  }

  deferred(): Promise<DeferredOp[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(
        this.#s.deferred.all().map((r) => ({
          id: r.id as number,
          due: r.due as number,
          op: r.op as Uint8Array,
        })),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  getMeta(key: string): Promise<string | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const row = this.#s.getMeta.get(key);
      return Promise.resolve(row === undefined ? undefined : text(row, "value", "value_raw"));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** How the database is set up, for status pages and tests. */
  info(): Promise<SqliteInfo> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const one = (pragma: string): SqlValue => {
        const row = this.#db.prepare(`PRAGMA ${pragma}`).get();
        return row === undefined ? null : Object.values(row)[0];
      };
      return Promise.resolve({
        driver: this.#db.name,
        schemaVersion: Number(one("user_version")),
        journalMode: String(one("journal_mode")).toLowerCase(),
        synchronous: SYNCHRONOUS[Number(one("synchronous"))] ?? String(one("synchronous")),
        lockingMode: String(one("locking_mode")).toLowerCase(),
        pages: Number(one("page_count")),
        pageSize: Number(one("page_size")),
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Runs `PRAGMA integrity_check` (or `quick_check`): `["ok"]` when the file
   * is sound, else SQLite's list of problems.
   */
  integrityCheck(options: { quick?: boolean } = {}): Promise<string[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const pragma = options.quick ? "quick_check" : "integrity_check";
      return Promise.resolve(
        this.#db.prepare(`PRAGMA ${pragma}`).all().map((r) => String(Object.values(r)[0])),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Closes the database (SQLite checkpoints the WAL into the file) and releases the directory. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      try {
        this.#db.exec("PRAGMA optimize");
      } catch {
        // only advice to the query planner
      }
      this.#db.close();
    } catch (e) {
      return Promise.reject(e);
    } finally {
      this.#lock.release();
    }
    return Promise.resolve();
  }
}

const DEFAULT_CACHE_BYTES = 8 << 20;
/** SQLite's page cache, in KiB (`PRAGMA cache_size` takes negative numbers as KiB). */
const PAGE_CACHE_KIB = 8192;
/**
 * Bytes a cached record costs beyond its field name and bytes, as measured
 * on V8 (64-bit): the record object (~100 B), its value's `Uint8Array`
 * (~100 B with its buffer), the field string's header, its array slot.
 */
const RECORD_OVERHEAD = 280;
/** Bytes a cached node costs beyond its records: map entry, entry object, records array. */
const NODE_OVERHEAD = 200;
/** Values up to this many bytes are copied into the cache on the JS heap (V8 allocates them there). */
const SMALL_VALUE = 64;

/**
 * Recently read nodes within a byte budget, evicted by CLOCK (second
 * chance): a hit only sets a flag, so reads never reorder the map. It is
 * exact, not a guess that may go stale: this process is the database's only
 * user (directory LOCK, `locking_mode=EXCLUSIVE`) and every commit drops the
 * souls it writes.
 *
 * Records handed out are shared with the cache (as the memory engine shares
 * its own): callers treat them as read-only. Sizes are counted as they are
 * on V8 (a record costs ~300 B, not the ~120 B once assumed, so a 32 MiB
 * budget held 2–3× that), and small values are copied onto the JS heap so
 * that a cached node holds no buffer of its own outside it (one per field
 * left Deno's malloc fragmented). Nodes enter on their second read (see
 * {@link NodeCache.seen}).
 */
class NodeCache {
  #map = new Map<string, CacheEntry>();
  #bytes = 0;
  #budget: number;
  /** The doorkeeper's bits (see {@link seen}): 2^16 bytes, whatever the budget. */
  #filter = new Uint8Array(1 << 16);
  #marked = 0;

  constructor(budget: number) {
    this.#budget = budget;
  }

  /** The node's records (shared: read-only), or `undefined` when not cached. */
  get(soul: string): StoredRecord[] | undefined {
    const entry = this.#map.get(soul);
    if (entry === undefined) return undefined;
    entry.used = true;
    return entry.records;
  }

  /** The record of `field` of a cached node, `null` when the node has no such field, `undefined` when not cached. */
  getField(soul: string, field: string): StoredRecord | null | undefined {
    const records = this.get(soul);
    if (records === undefined) return undefined;
    let lo = 0, hi = records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareCodePoints(records[mid].field, field);
      if (c === 0) return records[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return null;
  }

  /**
   * Caches `records`, the node `soul` just read from SQLite, if it was read
   * recently already (see {@link seen}); returns whether it did.
   */
  admit(soul: string, records: StoredRecord[]): boolean {
    if (!this.seen(soul)) return false;
    this.set(soul, records);
    return true;
  }

  /**
   * The doorkeeper: whether `soul` was missed since the filter was last
   * cleared (marking it if not). A node enters the cache on its second miss,
   * so that a scan reading every node once (a `list` of the whole database,
   * a sync) caches nothing: it neither flushes the working set nor churns
   * the cache, whose evicted entries, long-lived by then, left the JS heap
   * and malloc grown (a 100,000-node scan: RSS 176 MB with a 1 MiB cache,
   * 104 MB without). Two bits per soul, cleared after 2^15 souls marked (an
   * eighth of the bits); a collision only admits a node early.
   */
  seen(soul: string): boolean {
    let h = 0x811c9dc5;
    for (let i = 0; i < soul.length; i++) h = Math.imul(h ^ soul.charCodeAt(i), 0x01000193);
    const bits = this.#filter, mask = bits.length * 8 - 1;
    // Two bits per soul (a Bloom filter): a stranger passes for seen far more rarely than with one.
    const b1 = h & mask, b2 = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 13 & mask;
    const m1 = 1 << (b1 & 7), m2 = 1 << (b2 & 7);
    if ((bits[b1 >>> 3] & m1) !== 0 && (bits[b2 >>> 3] & m2) !== 0) return true;
    bits[b1 >>> 3] |= m1;
    bits[b2 >>> 3] |= m2;
    if (++this.#marked >= bits.length / 2) {
      bits.fill(0);
      this.#marked = 0;
    }
    return false;
  }

  set(soul: string, records: StoredRecord[]): void {
    let bytes = NODE_OVERHEAD + soul.length * 2;
    for (const r of records) {
      bytes += RECORD_OVERHEAD + r.field.length * 2 + r.value.length + (r.sig?.length ?? 0);
    }
    if (bytes > this.#budget / 8) return; // one huge node must not flush everything else
    for (let i = 0; i < records.length; i++) {
      // The driver's value has a buffer of its own outside the JS heap; a small copy lives in the heap.
      const r = records[i];
      if (r.value.length <= SMALL_VALUE) records[i] = { ...r, value: r.value.slice() };
    }
    this.delete(soul);
    this.#map.set(soul, { records, size: bytes, used: false });
    this.#bytes += bytes;
    if (this.#bytes > this.#budget) this.#evict();
  }

  delete(soul: string): void {
    const entry = this.#map.get(soul);
    if (entry === undefined) return;
    this.#map.delete(soul);
    this.#bytes -= entry.size;
  }

  /** Frees a tenth of the budget, oldest first; entries read since their last pass get another round. */
  #evict(): void {
    const target = this.#budget * 0.9;
    for (const [soul, entry] of this.#map) {
      this.#map.delete(soul);
      if (entry.used) {
        entry.used = false;
        this.#map.set(soul, entry); // to the back: visited again only after all others
        continue;
      }
      this.#bytes -= entry.size;
      if (this.#bytes <= target) return;
    }
  }
}

interface CacheEntry {
  /** The node's records, in field order. */
  readonly records: StoredRecord[];
  /** What the entry is counted as, in bytes. */
  readonly size: number;
  used: boolean;
}

const utf8 = new TextDecoder();

/** A text column, from its `_raw` BLOB twin when there is one (see `prepareAll`). */
function text(row: Row, column: string, raw: string): string {
  const bytes = row[raw];
  return bytes == null ? row[column] as string : utf8.decode(bytes as Uint8Array);
}

/** A record from a `readNodeValues` row; its `value` column is at `1 + raw`. */
function fromValues(soul: string, field: string, row: SqlValue[], raw: number): StoredRecord {
  const sig = row[6 + raw];
  return sig === null
    ? {
      soul,
      field,
      value: row[1 + raw] as Uint8Array,
      sh: row[2 + raw] as number,
      sl: row[3 + raw] as number,
      ah: row[4 + raw] as number,
      al: row[5 + raw] as number,
      seq: row[7 + raw] as number,
    }
    : {
      soul,
      field,
      value: row[1 + raw] as Uint8Array,
      sh: row[2 + raw] as number,
      sl: row[3 + raw] as number,
      ah: row[4 + raw] as number,
      al: row[5 + raw] as number,
      sig: sig as Uint8Array,
      seq: row[7 + raw] as number,
    };
}

function toRecord(soul: string, field: string, row: Row): StoredRecord {
  const sig = row.sig;
  return sig === null
    ? {
      soul,
      field,
      value: row.value as Uint8Array,
      sh: row.sh as number,
      sl: row.sl as number,
      ah: row.ah as number,
      al: row.al as number,
      seq: row.seq as number,
    }
    : {
      soul,
      field,
      value: row.value as Uint8Array,
      sh: row.sh as number,
      sl: row.sl as number,
      ah: row.ah as number,
      al: row.al as number,
      sig: sig as Uint8Array,
      seq: row.seq as number,
    };
}
