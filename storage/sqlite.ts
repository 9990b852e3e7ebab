/**
 * The SQLite engine: a database directory holding `lattice.db` (with its WAL)
 * and a `LOCK` file, through the runtime's native driver (`bun:sqlite` on
 * Bun, `node:sqlite` on Deno and Node ≥ 22.5) or SQLite-WASM on a file VFS.
 *
 * Schema (version 3, in `PRAGMA user_version`; `PRAGMA application_id` marks
 * the file as Lattice's):
 * - `nodes(soul, body, seq, live)`: one row per node, primary key `soul`
 *   `WITHOUT ROWID`, in BINARY (= UTF-8 byte) order; `body` holds all the
 *   node's fields (storage/node_body.ts), `seq` is the seq of its last
 *   change, uniquely indexed for `changes`, and `live` is 1 when a field is
 *   not a tombstone, else 0. `list` walks the partial index `nodes_live` of
 *   the live souls, so nodes whose fields are all tombstones cost it nothing:
 *   after 200k of them, each `list` had read and skipped every one (1.9–2.4
 *   s for `GET /v1/nodes?limit=1`). (Version 1 had one row per field;
 *   opening such a file converts it.)
 * - `deferred(id, due, op, source)`: ops waiting for their time
 *   (`AUTOINCREMENT`, so an id is never reused), indexed by due time (what
 *   comes due is read, never the table) and by source (quotas count one
 *   source's ops).
 *   (Version 2 had no `live` column and no deferred `source`: opening such a
 *   file adds both, `''` as the source of the ops already deferred.)
 * - `meta(key, value)`. Auxiliary data (`readAux`/`writeAux`; the sync index
 *   saves its columns so) lives in files `<name>.aux` beside the database,
 *   each vouched for by a tag and length in `meta` under `aux.<name>`.
 *   The store keeps `nodes.live` there: how many nodes
 *   have a live field and the highest node seq it counted to, changed in the
 *   same transaction as the nodes. (A file from before it has none until the
 *   first `countLive`, which counts; so does one written since by a version
 *   that kept no count, which the seq tells.)
 *
 * Commits go to a journal first (storage/journal.ts, `journal-<n>.log`): a
 * commit resolves once its frame is written there, and its records are kept
 * in memory (storage/memtable.ts) until they are folded into SQLite, in the
 * background once enough have gathered (16k records or 16 MiB), and on
 * close, `list` and `changes`. On open, journal files left by a crash are
 * replayed first. Batches of 16k records or more, and batches that defer ops,
 * skip the journal.
 *
 * Durability: with `durability: "process"` (the default) a resolved commit
 * is in the journal file (in the OS page cache), so it survives the process
 * being killed (SIGKILL, crash); after an OS crash or power loss the last
 * commits before it may be lost, never corrupted (frames carry a CRC-32;
 * SQLite runs in WAL mode with `synchronous=NORMAL`). `durability: "power"`
 * syncs the journal on every commit (`fdatasync`) and runs SQLite with
 * `synchronous=FULL`, so a resolved commit survives power loss too, at the
 * cost of one sync per commit (group commit in the Database shares it
 * between concurrent writers).
 *
 * A full disk (storage/disk_full.ts) fails the write that meets it with a
 * `DiskFullError` and nothing else: reads, `list`, `changes` and the live
 * count go on over what stays journaled, no fold is
 * tried until the disk has room for it (a failed one would take the space
 * new journal appends need; the WAL it grew is truncated), a restart that
 * cannot replay the journal holds it in memory instead, and writes resume
 * once space is freed, in the same process.
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
import { checkBatch, checkChanges, LIVE_NODES_KEY } from "./_check.ts";
import { compareCodePoints } from "../core/order.ts";
import { type FreeBytes, type HostFs, loadFreeBytes, loadHost } from "./_host.ts";
import { asDiskFull, DiskFullError, isDiskFull } from "./disk_full.ts";
import { runtimeName } from "../runtime/detect.ts";
import { DirectoryLock } from "./lock.ts";
import {
  encodeFrame,
  FrameWriter,
  JournalFile,
  journalFiles,
  type JournalFs,
  readJournal,
  syncDir,
} from "./journal.ts";
import { addRecord, Memtable, overlay } from "./memtable.ts";
import type { SqlDriver, SqlStatement, SqlValue } from "./sqlite_driver.ts";
import type { NodeData } from "../core/value.ts";
import { isTombstone, nodeData } from "../core/value_encoding.ts";
import {
  bodyData,
  bodyLive,
  decodeBody,
  encodeBody,
  mergeNode,
  type NodeRecords,
  nodeSeq,
  RecordRun,
  recordsLive,
  sortFields,
  writeBody,
  writeRunBody,
} from "./node_body.ts";
import { ByteWriter } from "../core/byte_writer.ts";
import {
  type ChangesOptions,
  type ChangesPage,
  type CommitBatch,
  type DeferOp,
  type DeferredOp,
  type FieldKey,
  type FieldRecord,
  type ListOptions,
  type PartsCommit,
  type Store,
  type StoredRecord,
  storedRecord,
} from "../core/store.ts";

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
   * that repeated reads skip SQLite and the journal (a node read only once,
   * as by a scan, stays out). It is never stale: this process is the only
   * user of the file, and each commit drops the nodes it writes (folding
   * journaled records into SQLite changes no node, so it leaves the cache
   * alone). SQLite's own page cache (4 MiB) comes on top.
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
export const SCHEMA_VERSION = 3;
/** `PRAGMA application_id` of Lattice databases: "Ltc1". */
const APPLICATION_ID = 0x4c746331;
/** The database file inside the directory. */
export const DB_FILE = "lattice.db";

/** The live souls, in soul order: what `list` walks. */
const LIVE_INDEX = "CREATE INDEX nodes_live ON nodes (soul) WHERE live = 1";

/** The current schema, created whole in a new file. */
const SCHEMA = `
  CREATE TABLE nodes (
    soul TEXT PRIMARY KEY NOT NULL,
    body BLOB NOT NULL,
    seq INTEGER NOT NULL,
    live INTEGER NOT NULL DEFAULT 1
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX nodes_seq ON nodes (seq);
  ${LIVE_INDEX};
  CREATE TABLE deferred (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    due INTEGER NOT NULL,
    op BLOB NOT NULL,
    source TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX deferred_due ON deferred (due, id);
  CREATE INDEX deferred_source ON deferred (source);
  CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO meta (key, value) VALUES ('${LIVE_NODES_KEY}', '0 0');`;

/** `UPGRADES[v]` takes an existing file from version `v` to `v + 1`, in the open transaction. */
const UPGRADES: Record<number, (db: SqlDriver) => void> = {
  1: upgradeFieldRowsToNodeRows,
  2: (db) => {
    upgradeLiveColumn(db);
    upgradeDeferredSource(db);
  },
};

/**
 * Part of version 2 → 3: deferred ops get their source (`''` for those already
 * deferred, which count as one source) and an index on it, for quotas.
 */
function upgradeDeferredSource(db: SqlDriver): void {
  db.exec(`ALTER TABLE deferred ADD COLUMN source TEXT NOT NULL DEFAULT '';
    CREATE INDEX deferred_source ON deferred (source);`);
}

/**
 * Part of version 2 → 3: `nodes` gains `live` (1 unless every field of the
 * node is a tombstone, found body by body) and the partial index `nodes_live`.
 */
function upgradeLiveColumn(db: SqlDriver): void {
  db.exec("ALTER TABLE nodes ADD COLUMN live INTEGER NOT NULL DEFAULT 1");
  // Souls come out as BLOBs (some drivers cut TEXT at U+0000) and go back in as the same bytes.
  const page = db.prepare(
    `SELECT CAST(soul AS BLOB) AS soul, body FROM nodes WHERE soul > CAST(?1 AS TEXT) ORDER BY soul
     LIMIT ${COUNT_PAGE_ROWS}`,
  );
  const dead = db.prepare("UPDATE nodes SET live = 0 WHERE soul = CAST(?1 AS TEXT)");
  for (let after: Uint8Array = new Uint8Array(0);;) {
    const rows = page.all(after);
    for (const r of rows) {
      after = r.soul as Uint8Array;
      if (!bodyLive(utf8.decode(after), r.body as Uint8Array)) dead.run(after);
    }
    if (rows.length < COUNT_PAGE_ROWS) break;
  }
  db.exec(LIVE_INDEX);
}

/**
 * Version 1 → 2: the rows of `fields(soul, field, value, stateHi, stateLo, actorHi, actorLo, sig,
 * seq)` become one `nodes` row per soul; `deferred` and `meta` stay.
 */
function upgradeFieldRowsToNodeRows(db: SqlDriver): void {
  db.exec(`CREATE TABLE nodes (
      soul TEXT PRIMARY KEY NOT NULL,
      body BLOB NOT NULL,
      seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX nodes_seq ON nodes (seq);`);
  // Keys come out as BLOBs: some drivers cut TEXT at U+0000.
  const page = db.prepare(
    `SELECT CAST(soul AS BLOB) AS soul, CAST(field AS BLOB) AS field, value, stateHi, stateLo, actorHi, actorLo, sig, seq
     FROM fields WHERE (soul, field) > (?1, ?2) ORDER BY soul, field LIMIT 10000`,
  );
  const insert = db.prepare("INSERT INTO nodes (soul, body, seq) VALUES (?1, ?2, ?3)");
  let soul = "", field = "";
  let node: StoredRecord[] = [];
  const flush = () => {
    if (node.length > 0) insert.run(node[0].soul, encodeBody(node), nodeSeq(node));
    node = [];
  };
  for (;;) {
    const rows = page.all(soul, field);
    for (const row of rows) {
      const s = utf8.decode(row.soul as Uint8Array), f = utf8.decode(row.field as Uint8Array);
      if (s !== soul) flush();
      soul = s;
      field = f;
      node.push(toRecord(s, f, row));
    }
    if (rows.length < 10_000) break;
  }
  flush();
  db.exec("DROP TABLE fields");
}

/**
 * Nodes written per INSERT statement, at most. Binding and stepping one
 * multi-row statement costs less per row than one statement per row: 100k
 * new nodes of 290-byte bodies took 1.4–1.6 µs per row to insert in
 * statements of 64 rows, 1.9–2.7 in statements of 16 (Deno, node:sqlite,
 * 16 KiB pages).
 */
const UPSERT_ROWS = 64;
/** Parameters per row of those statements: soul, body, seq, live. */
const COLS = 4;

/**
 * Page size of a new database file (an existing file keeps its own). Node
 * bodies are a few hundred bytes: with 16 KiB pages instead of the default 4
 * KiB, inserting and committing 100k new nodes took 2.2–2.3 µs per node
 * instead of 3.2–3.6 (fewer pages to split and to append to the WAL), and a
 * random point read cost the same (8–10 µs from the OS cache, either way).
 */
export const PAGE_BYTES = 16_384;

/** Inserts nodes that do not exist yet (leaving those that do alone). */
function insertNewSql(rows: number): string {
  return `INSERT INTO nodes (soul, body, seq, live) VALUES ${new Array(rows).fill("(?, ?, ?, ?)").join(", ")}
    ON CONFLICT (soul) DO NOTHING`;
}

/**
 * A row replaces a stored one only when its seq is higher (bodies are
 * merged before they are written, so this only skips rewriting a node
 * unchanged by a replayed journal).
 */
function upsertSql(rows: number): string {
  return `INSERT INTO nodes (soul, body, seq, live) VALUES ${new Array(rows).fill("(?, ?, ?, ?)").join(", ")}
    ON CONFLICT (soul) DO UPDATE SET body = excluded.body, seq = excluded.seq, live = excluded.live
    WHERE excluded.seq > nodes.seq`;
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

interface Statements {
  begin: SqlStatement;
  commit: SqlStatement;
  rollback: SqlStatement;
  /** `upsert[k - 1]` writes k nodes in one statement, prepared on first use. */
  upsert: (SqlStatement | undefined)[];
  /** `insertNew[k - 1]` inserts k nodes unless they exist (`changes()` then tells how many it did). */
  insertNew: (SqlStatement | undefined)[];
  /** Rows changed by the last statement. */
  changed: SqlStatement;
  /** A node's seq and body. */
  readSeqBody: SqlStatement;
  readBody: SqlStatement;
  /** The first node at or after a soul, with its body. */
  nextBody: SqlStatement;
  changes: SqlStatement;
  /** list: [lower bound inclusive?][has upper bound?] */
  listFrom: SqlStatement;
  listFromTo: SqlStatement;
  listAfter: SqlStatement;
  listAfterTo: SqlStatement;
  defer: SqlStatement;
  undefer: SqlStatement;
  deferred: SqlStatement;
  /** Deferred ops due by a time, earliest first, a page at a time (through `deferred_due`). */
  deferredDue: SqlStatement;
  deferredCount: SqlStatement;
  deferredCountFrom: SqlStatement;
  dropDeferredAfter: SqlStatement;
  setMeta: SqlStatement;
  getMeta: SqlStatement;
  /** Souls and bodies after a soul, a page at a time (counting live nodes the first time). */
  bodiesAfter: SqlStatement;
  maxSeq: SqlStatement;
}

function prepareAll(db: SqlDriver): Statements {
  // Where the driver cuts TEXT at U+0000, a text column holding one is also read as a BLOB
  // (`<column>_raw`, NULL otherwise) and decoded here; see `text` below.
  const stopsAtNul = (db as { textStopsAtNul?: boolean }).textStopsAtNul === true;
  const t = (c: string): string =>
    stopsAtNul ? `${c}, CASE WHEN instr(${c}, char(0)) THEN CAST(${c} AS BLOB) END AS ${c}_raw` : c;
  // Live souls only, from the partial index (named, so that no plan can walk the table instead).
  const list = (lower: string, upper: boolean): SqlStatement =>
    db.prepare(
      `SELECT ${t("soul")} FROM nodes INDEXED BY nodes_live WHERE live = 1 AND soul ${lower} ?1${
        upper ? " AND soul < ?2" : ""
      } ORDER BY soul LIMIT ?3`,
    );
  return {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    upsert: new Array(UPSERT_ROWS),
    insertNew: new Array(UPSERT_ROWS),
    changed: db.prepare("SELECT changes() AS n"),
    readSeqBody: db.prepare("SELECT seq, body FROM nodes WHERE soul = ?1"),
    readBody: db.prepare("SELECT body FROM nodes WHERE soul = ?1"),
    nextBody: db.prepare(`SELECT ${t("soul")}, body FROM nodes WHERE soul >= ?1 ORDER BY soul LIMIT 1`),
    changes: db.prepare(`SELECT ${t("soul")}, body, seq FROM nodes WHERE seq > ?1 ORDER BY seq LIMIT ?2`),
    listFrom: list(">=", false),
    listFromTo: list(">=", true),
    listAfter: list(">", false),
    listAfterTo: list(">", true),
    defer: db.prepare("INSERT INTO deferred (due, op, source) VALUES (?1, ?2, ?3)"),
    undefer: db.prepare("DELETE FROM deferred WHERE id = ?1"),
    deferred: db.prepare("SELECT id, due, op, source FROM deferred ORDER BY due, id"),
    deferredDue: db.prepare(
      "SELECT id, due, op, source FROM deferred WHERE due <= ?1 ORDER BY due, id LIMIT ?2",
    ),
    deferredCount: db.prepare("SELECT count(*) AS n FROM deferred"),
    deferredCountFrom: db.prepare("SELECT count(*) AS n FROM deferred WHERE source = ?1"),
    dropDeferredAfter: db.prepare("DELETE FROM deferred WHERE due > ?1"),
    setMeta: db.prepare(
      "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    getMeta: db.prepare(`SELECT ${t("value")} FROM meta WHERE key = ?1`),
    bodiesAfter: db.prepare(
      `SELECT ${t("soul")}, body FROM nodes WHERE soul > ?1 ORDER BY soul LIMIT ${COUNT_PAGE_ROWS}`,
    ),
    maxSeq: db.prepare("SELECT max(seq) AS m FROM nodes"),
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
    if (version === 0) db.exec(SCHEMA);
    else for (let v = version; v < SCHEMA_VERSION; v++) UPGRADES[v](db);
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
  /** Souls SQLite does not hold (see `#sqliteNode`). */
  #absent = new Set<string>();
  /** Parameters of the multi-row upsert, reused. */
  #args: SqlValue[] = [];
  /** Node bodies being written by one statement (see `#writeNodes`). */
  #arena = new ByteWriter(64 * 1024);
  #fs: JournalFs & Pick<HostFs, "renameSync" | "readSync">;
  #sep: string;
  /** Commits journaled since the last fold began, in memory for reads. */
  #active!: Memtable;
  /** Commits being folded into SQLite in the background, with how far the fold has come (in nodes). */
  #frozen:
    | { mem: Memtable; nodes: [string, Map<string, StoredRecord>][]; next: number; left: number }
    | undefined;
  #writer = new FrameWriter();
  #foldQueued = false;
  /** Why the background fold stopped; commits fold synchronously (and fail with it) from then on. */
  #foldError: unknown;
  /**
   * Set while the disk is too full to fold (see {@link #foldWhenRoom}):
   * journaled records stay in memory and in their journal files, and a fold
   * is tried again only from `retryAt` on, and when the disk has room.
   */
  #full: { retryAt: number; delay: number } | undefined;
  /** Free space on the directory's disk, loaded when the disk first fills. */
  #freeBytes: FreeBytes | undefined;
  /** The live count last answered, and the seq it was counted at. */
  #counted: { seq: number; n: number } | undefined;
  /** Whether SQLite's node of a journaled soul has a live field, for the count; forgotten when nodes are written. */
  #storedLive = new Map<string, boolean>();
  /** Whether a commit in parts is open (see {@link beginParts}). */
  #parts = false;
  /** Names of the auxiliary data being written (see writeAux). */
  #auxWriting = new Set<string>();
  /** Where reads last looked in SQLite (see {@link #sqliteNodeIn}); forgotten when nodes are written. */
  #scan: Scan = { from: undefined, next: null };
  /** Deferred ops read out of SQLite so far (by `deferred` and `deferredDue`): what a test counts. */
  deferredRowsRead = 0;

  private constructor(
    dir: string,
    db: SqlDriver,
    lock: DirectoryLock,
    durability: Durability,
    cacheBytes: number,
    fs: JournalFs & Pick<HostFs, "renameSync" | "readSync">,
    sep: string,
  ) {
    this.dir = dir;
    this.#cache = cacheBytes > 0 ? new NodeCache(cacheBytes) : undefined;
    this.engine = db.name === "sqlite-wasm" ? "sqlite-wasm" : `sqlite (${db.name})`;
    this.durability = durability;
    this.#db = db;
    this.#lock = lock;
    this.#s = prepareAll(db);
    this.#stopsAtNul = (db as { textStopsAtNul?: boolean }).textStopsAtNul === true;
    this.#fs = fs;
    this.#sep = sep;
    this.#seq = this.#sqliteSeq();
  }

  #sqliteSeq(): number {
    return Number(this.#s.maxSeq.get()?.m ?? 0);
  }

  /**
   * Opens the database in directory `dir`, creating both when missing. The
   * directory is locked until {@link close}: a second opener, here or in
   * another process, gets a `LockedError` naming this process. Commits a
   * crash left in the journal are replayed into SQLite first.
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
    const host = await loadHost();
    const fs = host.fs;
    fs.mkdirSync(dir, { recursive: true });
    const lock = await DirectoryLock.acquire(dir, { command: options.lockCommand });
    let db: SqlDriver | undefined;
    try {
      const file = host.join(dir, DB_FILE);
      db = await openDriver(file, options.driver);
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
      const store = new SqliteStore(dir, db, lock, durability, cacheBytes, fs, host.sep);
      store.#recover();
      return store;
    } catch (e) {
      try {
        db?.close();
      } finally {
        lock.release();
      }
      throw asDiskFull(e, dir, `open ${DB_FILE}`, "; free some space to open it"); // a schema upgrade, say
    }
  }

  /**
   * Replays the journal files a crash left (oldest first) into SQLite in one
   * transaction, deletes them, and starts a new journal file.
   */
  #recover(): void {
    const files = journalFiles(this.#fs, this.dir);
    let nodes: Map<string, Map<string, StoredRecord>> | undefined = new Map();
    const meta: [string, string][] = [];
    let last = 0;
    for (const f of files) {
      const path = this.dir + this.#sep + f.name;
      const { frames } = readJournal(this.#fs.readFileSync(path), path);
      for (const frame of frames) {
        for (const r of frame.records) addRecord(nodes, r); // later frames have higher seqs
        for (const m of frame.meta) meta.push(m);
        if (frame.records.length > 0) last = frame.records[frame.records.length - 1].seq;
      }
    }
    const gen = files.length > 0 ? files[files.length - 1].gen + 1 : 1;
    if (nodes.size > 0 || meta.length > 0) {
      const all = [...nodes];
      nodes = undefined;
      try {
        this.#transaction(() => {
          this.#writeNodes(all, 0, all.length);
          for (const [k, v] of meta) this.#s.setMeta.run(k, v);
        });
      } catch (e) {
        if (!isDiskFull(e)) throw e;
        // No room to replay: the records stay in their files and in memory, as if just journaled,
        // and are folded once the disk has room. Reads see them; writes journal after them.
        const paths = files.map((f) => this.dir + this.#sep + f.name);
        const mem = this.#active = new Memtable(
          JournalFile.createWhenPossible(
            this.#fs,
            this.dir,
            this.#sep,
            gen,
            this.durability === "power",
            paths,
          ),
        );
        for (const [, fields] of all) for (const r of fields.values()) mem.put(r);
        for (const [k, v] of meta) mem.meta.set(k, v);
        mem.bytes += 64 * meta.length;
        this.#seq = Math.max(this.#sqliteSeq(), last); // journaled records are newer than SQLite's
        this.#diskFull();
        return;
      }
      this.#seq = this.#sqliteSeq();
    }
    for (const f of files) this.#fs.unlinkSync(this.dir + this.#sep + f.name);
    if (files.length > 0 && this.durability === "power") syncDir(this.#fs, this.dir);
    this.#active = this.#newMemtable(gen);
  }

  /**
   * An empty memtable over a new journal file of generation `gen` (created
   * by its first write when the disk is full now).
   */
  #newMemtable(gen: number): Memtable {
    return new Memtable(
      JournalFile.createWhenPossible(this.#fs, this.dir, this.#sep, gen, this.durability === "power"),
    );
  }

  /**
   * Runs `fn` in `BEGIN IMMEDIATE … COMMIT`; on any error rolls back and
   * rethrows (a full disk as a `DiskFullError`, after giving back the space
   * the WAL took).
   */
  #transaction(fn: () => void): void {
    const s = this.#s;
    s.begin.run();
    try {
      fn();
      s.commit.run();
    } catch (e) {
      this.#rollback();
      throw this.#failed(e);
    }
  }

  /** `e` as the error to throw after a rolled back write: a full disk also gives the WAL's space back. */
  #failed(e: unknown): unknown {
    if (!isDiskFull(e)) return e;
    try {
      // The WAL grew with the frames of the failed transaction until the disk was full; a
      // checkpoint that truncates it frees that space for the journal (when nothing committed
      // waits in it for room in the database file).
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // the space stays with the WAL until a later checkpoint
    }
    return asDiskFull(e, this.dir, `write to ${DB_FILE}`);
  }

  /**
   * Notes that the disk is full: folds wait for room (see {@link
   * #foldWhenRoom}), and after a failed fold (`backOff`) for a while too,
   * longer after each.
   */
  #diskFull(backOff = true): void {
    const full = this.#full ??= { retryAt: 0, delay: RETRY_MIN_MS };
    if (backOff) {
      full.retryAt = Date.now() + full.delay;
      full.delay = Math.min(2 * full.delay, RETRY_MAX_MS);
    }
    this.#loadFreeBytes();
  }

  #loadFreeBytes(): void {
    if (this.#freeBytes === undefined) void loadFreeBytes().then((f) => this.#freeBytes = f);
  }

  /**
   * Bytes of free space a fold of what is journaled may take, about: the
   * records once in the database file and, in parts of {@link FOLD_CHUNK}
   * records, twice a part's in the WAL (see {@link #foldInParts}), plus
   * {@link FOLD_SLACK}. Counted in the memtables' measure, which is more than
   * the records take on disk.
   */
  #foldNeed(): number {
    const f = this.#frozen;
    // What is left of the frozen memtable (its folded parts are in the database file already).
    const bytes = this.#active.bytes + (f === undefined ? 0 : f.mem.bytes * f.left / f.mem.count);
    const records = this.#active.count + (f?.left ?? 0);
    return bytes + 2 * partBytes(bytes, records) + FOLD_SLACK;
  }

  /** Whether the disk has room for the next part of the background fold, as far as is known. */
  #roomForPart(): boolean {
    const f = this.#frozen;
    const free = f === undefined ? undefined : this.#freeBytes?.(this.dir);
    return free === undefined || free >= 2 * partBytes(f!.mem.bytes, f!.mem.count) + FOLD_SLACK;
  }

  /**
   * Folds everything journaled into SQLite and says whether it did. After a
   * fold failed for want of space, it tries again only once the back-off
   * has passed and the disk has {@link #foldNeed} bytes free: a fold that
   * could not finish would take the space the journal needs for new writes
   * (the journaled records are safe where they are meanwhile).
   */
  #foldWhenRoom(): boolean {
    const full = this.#full;
    if (this.#frozen === undefined && this.#active.empty) { // nothing to fold
      this.#full = undefined; // (an append that fails again says so again)
      return true;
    }
    if (full !== undefined) {
      if (Date.now() < full.retryAt || this.#freeBytes === undefined) return false;
      const free = this.#freeBytes(this.dir);
      if (free !== undefined && free < this.#foldNeed()) return false;
    }
    try {
      if (full === undefined) this.#foldAll();
      else this.#foldInParts();
    } catch (e) {
      if (!isDiskFull(e)) throw e;
      this.#diskFull();
      return false;
    }
    this.#full = undefined;
    return true;
  }

  /**
   * {@link #foldAll} on a disk that was full: a part ({@link FOLD_CHUNK}
   * records) per transaction, the WAL checkpointed and truncated before the
   * first and after each, so that the fold takes the records' size in the
   * database file and one part's in the WAL, and a part that fails gives
   * back all the WAL took (committed frames left in it would need room in the
   * database file first). Journal files go as their memtable is folded.
   */
  #foldInParts(): void {
    const checkpoint = (): void => this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    checkpoint();
    for (;;) {
      while (this.#frozen !== undefined) {
        this.#foldFrozen(FOLD_CHUNK);
        checkpoint();
      }
      const mem = this.#active;
      if (mem.empty) break;
      this.#active = this.#newMemtable(mem.journal.gen + 1);
      this.#frozen = { mem, nodes: [...mem.nodes], next: 0, left: mem.count };
    }
    this.#foldError = undefined;
  }

  /** The error of a write that needs what is journaled folded first, and cannot (see {@link #foldWhenRoom}). */
  #heldError(): DiskFullError {
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    const free = this.#freeBytes?.(this.dir);
    return new DiskFullError(
      `Cannot fold the journal into ${DB_FILE} in ${this.dir}: the disk is full (about ${
        mib(this.#foldNeed())
      } must be free${free === undefined ? "" : `, ${mib(free)} is`}); writes resume once space is freed`,
      { dir: this.dir },
    );
  }

  /** Ends the open transaction, taking back what it wrote. */
  #rollback(): void {
    this.#scan.from = undefined; // it may have seen rows the rollback takes back
    try {
      this.#s.rollback.run();
    } catch {
      // a failed statement (a COMMIT, say) may already have ended the transaction
    }
  }

  /** Every stored field of `soul`, in field order (BINARY collation = UTF-8 byte order). */
  readNode(soul: string): Promise<StoredRecord[]> {
    if (this.#closed) return Promise.reject(closedError());
    const cache = this.#cache;
    const cached = cache?.get(soul);
    if (cached !== undefined) return Promise.resolve(cached.slice()); // callers get their own array
    try {
      let out = this.#sqliteNode(soul);
      const frozen = this.#frozen?.mem.nodes.get(soul), active = this.#active.nodes.get(soul);
      if (frozen !== undefined || active !== undefined) out = overlay(out, [frozen, active]);
      if (cache?.admit(soul, out)) return Promise.resolve(out.slice());
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The live fields of `soul` as data. A node held nowhere but in SQLite,
   * and not due to enter the cache, is decoded from its body straight to
   * data (`bodyData`): a scan of many nodes makes a tenth of the objects.
   * Anything else goes through {@link readNode}, cache admission included.
   */
  readNodeData(soul: string): Promise<NodeData | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const cache = this.#cache;
      if (
        cache?.get(soul) === undefined && !this.#absent.has(soul) &&
        this.#frozen?.mem.nodes.get(soul) === undefined && this.#active.nodes.get(soul) === undefined
      ) {
        const row = this.#s.readBody.get(soul);
        // The doorkeeper marks the node as readNode's admission would; seen before, it is admitted there.
        if (row !== undefined && !cache?.seen(soul)) {
          return Promise.resolve(bodyData(soul, row.body as Uint8Array));
        }
      }
      return this.readNode(soul).then(nodeData);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The fields of `soul` in SQLite (without the journaled ones), in field
   * order. A soul SQLite was found not to hold is remembered (up to
   * {@link ABSENT_MAX} of them) until a write into SQLite adds it, so that
   * writing a new node field by field reads SQLite once, not per field.
   */
  #sqliteNode(soul: string): StoredRecord[] {
    if (this.#absent.has(soul)) return [];
    const row = this.#s.readBody.get(soul);
    if (row !== undefined) return decodeBody(soul, row.body as Uint8Array);
    this.#rememberAbsent(soul);
    return [];
  }

  #rememberAbsent(soul: string): void {
    const absent = this.#absent;
    if (absent.size >= ABSENT_MAX) absent.clear();
    absent.add(soul);
  }

  readFields(keys: readonly FieldKey[]): Promise<(StoredRecord | undefined)[]> {
    try {
      return Promise.resolve(this.readFieldsSync(keys));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Keys are taken a run of one soul at a time (a batch lists each node's
   * fields together): the journaled, cached or SQLite node is looked up once
   * per run, and a node found nowhere answers its whole run at once.
   */
  readFieldsSync(keys: readonly FieldKey[]): (StoredRecord | undefined)[] {
    if (this.#closed) throw closedError();
    const held = this.#active.count > 0 ? this.#active.nodes : undefined;
    const folding = this.#frozen?.mem.nodes;
    const cache = this.#cache;
    const out: (StoredRecord | undefined)[] = new Array(keys.length);
    // Nodes found in SQLite in this call, for a soul that comes back after another.
    let read: Map<string, StoredRecord[]> | undefined;
    for (let i = 0; i < keys.length;) {
      const soul = keys[i].soul;
      let end = i + 1;
      while (end < keys.length && keys[end].soul === soul) end++;
      const journaled = held?.get(soul), frozen = folding?.get(soul);
      let node = cache?.get(soul);
      for (let k = i; k < end; k++) {
        const field = keys[k].field;
        const r = journaled?.get(field) ?? frozen?.get(field);
        if (r !== undefined) {
          out[k] = r;
          continue;
        }
        if (node === undefined) {
          node = read?.get(soul);
          if (node === undefined) {
            node = this.#sqliteNodeIn(soul); // a miss is remembered there (#absent)
            if (node.length > 0 && end - i < keys.length) (read ??= new Map()).set(soul, node);
          }
        }
        out[k] = node.length === 0 ? undefined : findField(node, field);
      }
      i = end;
    }
    return out;
  }

  /**
   * {@link #sqliteNode} for souls met in ascending order, as the nodes of a
   * large batch and new nodes written one after another mostly are: SQLite
   * is asked for the first node at or after the soul, and the souls before
   * that node need no query of their own until nodes are written into
   * SQLite (a fold). New nodes cost one query, not one each; stored nodes
   * cost a query each, as before.
   */
  #sqliteNodeIn(soul: string): StoredRecord[] {
    if (this.#absent.has(soul)) return [];
    const scan = this.#scan;
    if (scan.from !== undefined && compareCodePoints(soul, scan.from) > 0) {
      const next = scan.next;
      const c = next === null ? -1 : compareCodePoints(soul, next.soul);
      if (c < 0) return []; // between two stored nodes (or past the last): absent
      if (c === 0) return decodeBody(soul, next!.body);
    }
    const row = this.#s.nextBody.get(soul);
    scan.from = soul;
    scan.next = row === undefined
      ? null
      : { soul: text(row, "soul", "soul_raw"), body: row.body as Uint8Array };
    if (scan.next?.soul === soul) return decodeBody(soul, scan.next.body);
    this.#rememberAbsent(soul);
    return [];
  }

  /**
   * Commits `batch` atomically. Records and metadata are appended to the
   * journal as one frame and the promise resolves once it is written (synced
   * with durability `power`); SQLite receives them in a later fold. Batches
   * of {@link DIRECT_RECORDS} records or more, and batches that defer or
   * undefer ops, go to SQLite directly, in one transaction, after everything
   * journaled before them. On any error nothing of the batch is stored.
   */
  commit(batch: CommitBatch): Promise<number> {
    try {
      return Promise.resolve(this.commitSync(batch));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  commitSync(batch: CommitBatch): number {
    if (this.#closed) throw closedError();
    if (this.#parts) throw new Error("A commit in parts is open: it must end before another commit");
    checkBatch(batch);
    const records = batch.records ?? NO_RECORDS;
    const first = this.#seq + 1;
    if (
      records.length >= DIRECT_RECORDS || (batch.defer?.length ?? 0) > 0 ||
      (batch.undefer?.length ?? 0) > 0 ||
      this.#foldError !== undefined
    ) {
      return this.#commitDirect(batch, first);
    }
    const meta = batch.meta === undefined ? NO_META : Object.entries(batch.meta);
    if (records.length === 0 && meta.length === 0) return this.#seq;
    if (
      this.#full !== undefined && (this.#active.count >= HOLD_RECORDS || this.#active.bytes >= HOLD_BYTES) &&
      !this.#foldWhenRoom()
    ) throw this.#heldError(); // memory holds all it may of what waits for room
    const active = this.#active;
    const length = encodeFrame(this.#writer, first, records, meta);
    try {
      active.journal.write(this.#writer.buf, length);
    } catch (e) {
      if (isDiskFull(e)) this.#diskFull(false); // no fold either until the disk has room for it
      throw e;
    }
    // Committed from here on: nothing below may fail the commit.
    if (length > SHRINK_WRITER_BYTES) this.#writer = new FrameWriter(); // do not hold a huge buffer
    const cache = this.#cache;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      active.put(storedRecord(r, first + i));
      cache?.delete(r.soul); // it holds what readNode returned, which this changes
    }
    for (let i = 0; i < meta.length; i++) active.meta.set(meta[i][0], meta[i][1]);
    active.bytes += 64 * meta.length;
    this.#seq = first - 1 + records.length;
    if (active.count >= FOLD_RECORDS || active.bytes >= FOLD_BYTES) {
      if (this.#full !== undefined) this.#foldWhenRoom();
      else {
        try {
          this.#rotate();
        } catch (e) {
          if (isDiskFull(e)) this.#diskFull();
          else this.#foldError = e; // the next commit folds synchronously, and fails with it if it persists
        }
      }
    }
    return this.#seq;
  }

  /**
   * Commits `batch` (checked) straight into SQLite, after everything
   * journaled: large batches (the journal would only hold them until the
   * fold), and the rare ones that defer ops. (Apart from `commitSync`, whose
   * every call would otherwise allocate the context of this closure.)
   */
  #commitDirect(batch: CommitBatch, first: number): number {
    if (!this.#foldWhenRoom()) throw this.#heldError();
    this.#transaction(() => this.#writeDirect(batch, first));
    return this.#seq = first - 1 + (batch.records?.length ?? 0);
  }

  /**
   * Writes `batch` (checked) into SQLite inside the caller's transaction,
   * its records with seqs from `first` on.
   */
  #writeDirect(batch: CommitBatch, first: number): void {
    const records = batch.records ?? NO_RECORDS;
    if (records.length > 0) {
      const nodes = groupBySoul(records, first);
      for (const [soul] of nodes) this.#cache?.delete(soul);
      this.#writeNodes(nodes, 0, nodes.length);
    }
    for (const d of batch.defer ?? NO_DEFER) this.#s.defer.run(d.due, d.op, d.source ?? "");
    for (const id of batch.undefer ?? NO_IDS) this.#s.undefer.run(id);
    if (batch.meta !== undefined) {
      for (const [k, v] of Object.entries(batch.meta)) {
        this.#s.setMeta.run(k, v);
      }
    }
  }

  /**
   * A commit in parts: everything journaled is folded first, then one
   * SQLite transaction takes each part as a direct batch would, and ends
   * with `commit` (or `abort`, which rolls it back).
   */
  beginParts(): PartsCommit {
    if (this.#closed) throw closedError();
    if (this.#parts) throw new Error("A commit in parts is already open");
    if (!this.#foldWhenRoom()) throw this.#heldError();
    this.#s.begin.run();
    this.#parts = true;
    let next = this.#seq + 1, open = true;
    const live = () => {
      if (!open) throw new Error("This commit in parts has ended");
      if (this.#closed) throw closedError();
    };
    // A full disk ends the commit here (rolled back, the WAL's space given back): abort is then a no-op.
    const failed = (e: unknown): unknown => {
      if (!isDiskFull(e)) return e;
      open = this.#parts = false;
      this.#rollback();
      return this.#failed(e);
    };
    return {
      write: (records) => {
        live();
        checkBatch({ records });
        try {
          this.#writeDirect({ records }, next);
        } catch (e) {
          throw failed(e);
        }
        next += records.length;
      },
      commit: (rest) => {
        live();
        checkBatch(rest);
        try {
          this.#writeDirect(rest, next);
          this.#s.commit.run();
        } catch (e) {
          throw failed(e);
        }
        next += rest.records?.length ?? 0;
        open = this.#parts = false;
        return this.#seq = next - 1;
      },
      abort: () => {
        if (!open) return;
        open = this.#parts = false;
        if (!this.#closed) this.#rollback();
      },
    };
  }

  /**
   * Starts folding the active memtable in the background under a new
   * journal file. If the previous fold is still running, it lets the active
   * one grow, up to {@link HOLD_RECORDS}, and past that finishes the previous
   * fold first, synchronously (backpressure).
   */
  #rotate(): void {
    if (this.#frozen !== undefined) {
      if (this.#active.count < HOLD_RECORDS && this.#active.bytes < HOLD_BYTES) return;
      this.#foldFrozen(Infinity);
    }
    const mem = this.#active;
    this.#active = this.#newMemtable(mem.journal.gen + 1);
    this.#frozen = { mem, nodes: [...mem.nodes], next: 0, left: mem.count };
    this.#loadFreeBytes(); // a fold is under way: see #roomForPart
    this.#queueFold();
  }

  #queueFold(): void {
    if (this.#foldQueued) return;
    this.#foldQueued = true;
    setTimeout(() => {
      this.#foldQueued = false;
      if (this.#closed || this.#frozen === undefined || this.#full !== undefined) return;
      if (!this.#roomForPart()) { // no room: the records wait in the journal (see #foldWhenRoom)
        this.#diskFull(false);
        return;
      }
      try {
        this.#foldFrozen(FOLD_CHUNK);
      } catch (e) {
        if (isDiskFull(e)) this.#diskFull(); // folded once there is room (see #foldWhenRoom)
        else this.#foldError = e;
        return;
      }
      if (this.#frozen !== undefined) this.#queueFold();
      else if (this.#active.count >= FOLD_RECORDS || this.#active.bytes >= FOLD_BYTES) this.#rotate();
    }, 0);
  }

  /**
   * Writes the next nodes of the frozen memtable into SQLite, about `max`
   * records' worth, in one transaction; with the last of them its metadata
   * too, after which its journal file is deleted.
   */
  #foldFrozen(max: number): void {
    const f = this.#frozen;
    if (f === undefined) return;
    let end = f.next, records = 0;
    while (end < f.nodes.length && records < max) records += f.nodes[end++][1].size;
    const last = end === f.nodes.length;
    this.#transaction(() => {
      this.#writeNodes(f.nodes, f.next, end);
      if (last) { for (const [k, v] of f.mem.meta) this.#s.setMeta.run(k, v); }
    });
    f.next = end;
    f.left -= records;
    if (!last) return;
    this.#frozen = undefined;
    f.mem.journal.remove();
  }

  /** Folds everything journaled into SQLite now and starts a new journal file. */
  #foldAll(): void {
    this.#foldFrozen(Infinity);
    const mem = this.#active;
    if (mem.empty) return;
    const nodes = [...mem.nodes];
    this.#transaction(() => {
      this.#writeNodes(nodes, 0, nodes.length);
      for (const [k, v] of mem.meta) this.#s.setMeta.run(k, v);
    });
    this.#active = this.#newMemtable(mem.journal.gen + 1);
    mem.journal.remove();
    this.#foldError = undefined;
  }

  /**
   * Merges `nodes[start, end)` (soul → its newer records) into the stored
   * nodes, inside the caller's transaction; a record replaces a stored field
   * only when its seq is higher. Each node is first inserted as it is, up to
   * {@link UPSERT_ROWS} per statement, unless it exists (`ON CONFLICT DO
   * NOTHING RETURNING`): a new node costs one write and no read. The nodes
   * that exist are then read, merged and written back.
   */
  #writeNodes(
    nodes: readonly (readonly [string, NodeRecords])[],
    start: number,
    end: number,
  ): void {
    const absent = this.#absent;
    this.#scan.from = undefined; // the rows written may fall between the scan's two souls
    if (this.#storedLive.size > 0) this.#storedLive.clear();
    const args = this.#args;
    // The bodies of one statement's rows, side by side: no ArrayBuffer per body.
    const arena = this.#arena;
    arena.pos = 0;
    // Nodes found in SQLite: their index in `nodes` and their stored records.
    let existing: [number, StoredRecord[]][] | undefined;
    // 1. Insert the nodes that may be new. When `changes()` falls short of the rows, some were
    //    there: a row whose seq is not the one just written is such a node, read once, for step 2.
    //    (Counting beats `RETURNING`, which costs about 1 µs a row, and new nodes are the rule.)
    let rows = 0;
    const pending: number[] = [];
    // Nodes with a live field, as this write changes their number: each new node that has one,
    // and for each node that existed, what the merge makes of it (see countLive).
    let live = 0;
    const pendingLive: boolean[] = [];
    const liveBefore = this.#keptLive();
    const insert = () => {
      if (rows === 0) return;
      if (args.length !== rows * COLS) args.length = rows * COLS;
      const statement = this.#s.insertNew[rows - 1] ??= this.#db.prepare(insertNewSql(rows));
      statement.run(...args);
      if (this.#s.changed.get()?.n !== rows) {
        for (let k = 0; k < rows; k++) {
          const soul = args[k * COLS] as string;
          const row = this.#s.readSeqBody.get(soul);
          if (row !== undefined && row.seq !== args[k * COLS + 2]) {
            (existing ??= []).push([pending[k], decodeBody(soul, row.body as Uint8Array)]);
            if (pendingLive[k]) live--; // counted below, by what the merge makes of it
          }
        }
      }
      rows = 0;
      pending.length = 0;
      pendingLive.length = 0;
      arena.pos = 0; // the statement has copied the bodies
    };
    for (let i = start; i < end; i++) {
      const [soul, incoming] = nodes[i];
      absent.delete(soul); // in SQLite from here on
      if (args.length < (rows + 1) * COLS) args.length = (rows + 1) * COLS;
      args[rows * COLS] = soul;
      let isLive: boolean;
      if (incoming instanceof RecordRun) {
        args[rows * COLS + 1] = writeRunBody(arena, incoming);
        args[rows * COLS + 2] = incoming.seq;
        isLive = recordsLive(incoming.records, incoming.start, incoming.end);
        args[rows * COLS + 3] = isLive ? 1 : 0;
      } else {
        const records = mergeNode([], incoming)!;
        args[rows * COLS + 1] = writeBody(arena, records);
        args[rows * COLS + 2] = nodeSeq(records);
        isLive = recordsLive(records);
        args[rows * COLS + 3] = isLive ? 1 : 0;
      }
      pending.push(i);
      pendingLive.push(isLive);
      if (isLive) live++;
      if (++rows === UPSERT_ROWS) insert();
    }
    insert();
    // 2. Merge into the nodes that exist.
    const upsert = () => {
      if (rows === 0) return;
      if (args.length !== rows * COLS) args.length = rows * COLS;
      const statement = this.#s.upsert[rows - 1] ??= this.#db.prepare(upsertSql(rows));
      statement.run(...args);
      rows = 0;
      arena.pos = 0;
    };
    for (const [i, stored] of existing ?? []) {
      const [soul, incoming] = nodes[i];
      const merged = mergeNode(stored, incoming);
      if (merged === undefined) continue;
      const mergedLive = recordsLive(merged);
      live += Number(mergedLive) - Number(recordsLive(stored));
      if (args.length < (rows + 1) * COLS) args.length = (rows + 1) * COLS;
      args[rows * COLS] = soul;
      args[rows * COLS + 1] = writeBody(arena, merged);
      args[rows * COLS + 2] = nodeSeq(merged);
      args[rows * COLS + 3] = mergedLive ? 1 : 0;
      if (++rows === UPSERT_ROWS) upsert();
    }
    upsert();
    if (liveBefore !== undefined) this.#keepLive(liveBefore + live);
    args.fill(null); // hold no values past the commit
    if (arena.buf.length > SHRINK_WRITER_BYTES) this.#arena = new ByteWriter(64 * 1024); // a huge node grew it
  }

  /**
   * The count of live nodes the file keeps, if it keeps one that is right:
   * counted up to the highest node seq there is. `undefined` when it keeps
   * none, one that is not a count, or one that writes since have passed (a
   * version that kept no count wrote nodes).
   */
  #keptLive(): number | undefined {
    const row = this.#s.getMeta.get(LIVE_NODES_KEY);
    if (row === undefined) return undefined;
    const [count, seq] = text(row, "value", "value_raw").split(" ").map(Number);
    if (!(Number.isSafeInteger(count) && count >= 0 && seq === this.#sqliteSeq())) return undefined;
    return count;
  }

  /** Keeps `count` as the number of live nodes, counted up to the highest node seq now (in the caller's transaction). */
  #keepLive(count: number): void {
    this.#s.setMeta.run(LIVE_NODES_KEY, `${count} ${this.#sqliteSeq()}`);
  }

  /**
   * How many nodes have a live field: the count kept in `meta` (for what
   * SQLite holds, after folding what is journaled, as `list` does) plus what
   * the journaled records change of it, node by node, when the disk is too
   * full to fold them (see {@link #foldWhenRoom}): on a full disk it folds
   * and writes nothing, and answers all the same. The answer is remembered
   * until the next commit. Where the kept count is missing or not right (see
   * {@link #keptLive}), the nodes are counted once, body by body, and the
   * count is kept from then on (when the disk has room for it).
   *
   * Folding first is what keeps the count cheap while writes come in: the
   * journal may hold 100k records, and adding up what they change took
   * 17–100 ms per count (Deno, 60k journaled nodes), where a fold of what
   * came since the last count takes 0.2 ms.
   */
  countLive(): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const seq = this.#seq;
      if (this.#counted?.seq === seq) return Promise.resolve(this.#counted.n);
      this.#foldWhenRoom(); // what stays journaled (a full disk) is added below
      let n = this.#keptLive();
      if (n === undefined) {
        n = 0;
        for (let after = "";;) {
          const rows = this.#s.bodiesAfter.all(after);
          for (const r of rows) {
            after = text(r, "soul", "soul_raw");
            if (bodyLive(after, r.body as Uint8Array)) n++;
          }
          if (rows.length < COUNT_PAGE_ROWS) break;
        }
        const counted = n;
        try {
          this.#transaction(() => this.#keepLive(counted));
        } catch (e) {
          if (!isDiskFull(e)) throw e; // counted again next time
        }
      }
      n += this.#heldLiveDelta();
      this.#counted = { seq, n };
      return Promise.resolve(n);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * What the journaled records change of the number of live nodes SQLite
   * holds. Whether a journaled node's SQLite body has a live field is
   * remembered until nodes are written (`#storedLive`), so a count asked
   * again and again while writes come in costs map lookups per journaled
   * node, not SQLite reads.
   */
  #heldLiveDelta(): number {
    const frozen = this.#frozen?.mem.nodes, active = this.#active.nodes;
    let d = 0;
    for (const map of [frozen, active]) {
      if (map === undefined) continue;
      for (const soul of map.keys()) {
        if (map === active && frozen?.has(soul)) continue; // done with the frozen ones
        const stored = this.#sqliteLive(soul);
        d += Number(this.#heldSoulLive(soul, stored)) - Number(stored);
      }
    }
    return d;
  }

  /**
   * Whether journaled node `soul` has a live field once its journaled records
   * are laid over SQLite's (`stored`: whether SQLite's body has one).
   */
  #heldSoulLive(soul: string, stored: boolean = this.#sqliteLive(soul)): boolean {
    const fz = this.#frozen?.mem.nodes.get(soul), ac = this.#active.nodes.get(soul);
    if (heldLive(fz, ac)) return true;
    if (!stored) return false;
    // Every journaled field is a tombstone: is any other stored field live?
    return this.#sqliteNode(soul).some((r) =>
      !isTombstone(r.value) && ac?.has(r.field) !== true && fz?.has(r.field) !== true
    );
  }

  /** Whether SQLite's node `soul` has a live field (remembered, see {@link #heldLiveDelta}). */
  #sqliteLive(soul: string): boolean {
    const known = this.#storedLive.get(soul);
    if (known !== undefined) return known;
    let live = false;
    if (!this.#absent.has(soul)) {
      const row = this.#s.readBody.get(soul);
      if (row === undefined) this.#rememberAbsent(soul);
      else live = bodyLive(soul, row.body as Uint8Array);
    }
    if (this.#storedLive.size >= ABSENT_MAX) this.#storedLive.clear();
    this.#storedLive.set(soul, live);
    return live;
  }

  /** Souls journaled and not folded yet (the disk being full), with the seq of their last change. */
  #heldSeqs(): Map<string, number> {
    const out = new Map<string, number>();
    for (const map of [this.#frozen?.mem.nodes, this.#active.nodes]) {
      if (map === undefined) continue;
      for (const [soul, fields] of map) {
        let seq = out.get(soul) ?? 0;
        for (const r of fields.values()) if (r.seq > seq) seq = r.seq;
        out.set(soul, seq);
      }
    }
    return out;
  }

  /**
   * `souls` (a page of SQLite's, in order) with the journaled souls in the
   * same range (after or from `from`, before `end`) merged in, the live ones
   * only: the first `n` (all when `n` < 0). For `list` while the disk is too
   * full to fold; the page it is given must hold `n` plus the number of held
   * souls, as held ones that died may drop out of it.
   */
  #withHeld(souls: string[], from: string, inclusive: boolean, end: string | undefined, n: number): string[] {
    const all = new Set(souls);
    const held = new Set<string>();
    for (const map of [this.#frozen?.mem.nodes, this.#active.nodes]) {
      if (map === undefined) continue;
      for (const soul of map.keys()) {
        const c = compareCodePoints(soul, from);
        if ((inclusive ? c >= 0 : c > 0) && (end === undefined || compareCodePoints(soul, end) < 0)) {
          held.add(soul);
        }
      }
    }
    // `list` gives live souls only: a journaled node is listed by what its journaled records leave live.
    for (const soul of held) {
      if (this.#heldSoulLive(soul)) all.add(soul);
      else all.delete(soul);
    }
    const out = [...all].sort(compareCodePoints);
    return n < 0 ? out : out.slice(0, n);
  }

  /** How many journaled souls are held in memory (the disk being too full to fold them). */
  #heldCount(): number {
    return (this.#frozen?.mem.nodes.size ?? 0) + this.#active.nodes.size;
  }

  /**
   * {@link changes} while the disk is too full to fold: SQLite's nodes in
   * seq order, less those with journaled records, then those, in the order
   * of their last journaled change (every journaled record is newer than
   * anything SQLite holds of a node with none).
   */
  #changesHeld(after: number, from: number, limit: number): ChangesPage {
    const held = this.#heldSeqs();
    const records: StoredRecord[] = [];
    const chunk = Math.max(16, Math.min(1024, limit === Infinity ? 1024 : Math.ceil(limit / 4)));
    for (let scan = from;;) {
      const rows = this.#s.changes.all(scan, chunk);
      for (const row of rows) {
        const soul = text(row, "soul", "soul_raw");
        scan = row.seq as number;
        if (held.has(soul)) continue;
        for (const r of decodeBody(soul, row.body as Uint8Array)) if (r.seq > after) records.push(r);
        from = scan;
        if (records.length >= limit) return { records, cursor: from, seq: this.#seq };
      }
      if (rows.length < chunk) break;
    }
    const frozen = this.#frozen?.mem.nodes, active = this.#active.nodes;
    const order = [...held].filter(([, seq]) => seq > from).sort((a, b) => a[1] - b[1]);
    for (const [soul, seq] of order) {
      const node = overlay(this.#sqliteNode(soul), [frozen?.get(soul), active.get(soul)]);
      for (const r of node) if (r.seq > after) records.push(r);
      if (records.length >= limit) return { records, cursor: seq, seq: this.#seq };
    }
    return { records, seq: this.#seq };
  }

  /**
   * Live souls in BINARY order, by a range on the index of live souls
   * (`prefix ≤ soul < prefixEnd(prefix)`): nodes whose fields are all
   * tombstones are not read at all.
   */
  list(options: ListOptions): Promise<string[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const { prefix = "", after, limit } = options;
      if (!(limit > 0)) return Promise.resolve([]);
      const held = !this.#foldWhenRoom(); // a full disk: journaled souls are merged in below
      const n = limit === Infinity ? -1 : Math.floor(limit);
      const end = prefix === "" ? undefined : prefixEnd(prefix);
      const useAfter = after !== undefined && compareCodePoints(after, prefix) >= 0;
      const s = this.#s;
      const stmt = useAfter
        ? (end === undefined ? s.listAfter : s.listAfterTo)
        : (end === undefined ? s.listFrom : s.listFromTo);
      const rows = stmt.all(
        useAfter ? after : prefix,
        end ?? null,
        held && n >= 0 ? n + this.#heldCount() : n,
      );
      const out: string[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) out[i] = text(rows[i], "soul", "soul_raw");
      return Promise.resolve(held ? this.#withHeld(out, useAfter ? after : prefix, !useAfter, end, n) : out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  changes(after: number, options: ChangesOptions): Promise<ChangesPage> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      checkChanges(after, options);
      const limit = options.limit;
      let from = options.cursor ?? after;
      const records: StoredRecord[] = [];
      if (from >= this.#seq) return Promise.resolve({ records, seq: this.#seq });
      if (!this.#foldWhenRoom()) return Promise.resolve(this.#changesHeld(after, from, limit));
      const chunk = Math.max(16, Math.min(1024, limit === Infinity ? 1024 : Math.ceil(limit / 4)));
      for (;;) {
        const rows = this.#s.changes.all(from, chunk);
        for (const row of rows) {
          const soul = text(row, "soul", "soul_raw");
          for (const r of decodeBody(soul, row.body as Uint8Array)) if (r.seq > after) records.push(r);
          from = row.seq as number;
          if (records.length >= limit) return Promise.resolve({ records, cursor: from, seq: this.#seq });
        }
        if (rows.length < chunk) return Promise.resolve({ records, seq: this.#seq });
      }
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
      // Deferred ops never pass through the journal (see commit).
      return Promise.resolve(this.#deferredRows(this.#s.deferred.all()));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  deferredDue(until: number, limit: number): Promise<DeferredOp[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const max = Number.MAX_SAFE_INTEGER; // SQLite takes no Infinity as an integer
      return Promise.resolve(
        this.#deferredRows(this.#s.deferredDue.all(Math.min(until, max), Math.min(limit, max))),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  deferredCount(source?: string): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const row = source === undefined ? this.#s.deferredCount.get() : this.#s.deferredCountFrom.get(source);
      return Promise.resolve(Number(row?.n ?? 0));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  dropDeferredAfter(due: number): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      let n = 0;
      // Its own transaction: deferred ops never pass through the journal (see commit).
      this.#transaction(() => {
        this.#s.dropDeferredAfter.run(Math.min(due, Number.MAX_SAFE_INTEGER));
        n = Number(this.#s.changed.get()?.n ?? 0);
      });
      return Promise.resolve(n);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #deferredRows(rows: Row[]): DeferredOp[] {
    this.deferredRowsRead += rows.length;
    return rows.map((r) => ({
      id: Number(r.id),
      due: Number(r.due),
      op: r.op as Uint8Array,
      source: r.source as string,
    }));
  }

  getMeta(key: string): Promise<string | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const held = this.#active.meta.get(key) ?? this.#frozen?.mem.meta.get(key);
      if (held !== undefined) return Promise.resolve(held);
      const row = this.#s.getMeta.get(key);
      return Promise.resolve(row === undefined ? undefined : text(row, "value", "value_raw"));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Auxiliary data (see `Store.readAux`): the file `<name>.aux` beside the
   * database: a random tag (8 bytes), the number of parts and their lengths
   * (u32 each), then the parts. It counts only if the metadata `aux.<name>`
   * holds its tag and length: {@link writeAux} commits them after the file
   * is synced, as an ordinary commit, so if they survived a crash, so did
   * every commit before them. Each part is read into a buffer of its own,
   * an eighth longer (reading the file whole at once held twice its size for
   * a moment on Deno, and one buffer would be kept whole for as long as any
   * part of it is in use; the room lets a loaded column grow without a copy).
   */
  async readAux(name: string): Promise<Uint8Array[] | undefined> {
    if (this.#closed) throw closedError();
    checkAuxName(name);
    const [tag, length] = (await this.getMeta(AUX_META + name) ?? "").split(":");
    const size = Number(length);
    if (tag === undefined || !Number.isSafeInteger(size) || size < AUX_TAG_BYTES + 4) return undefined;
    const fs = this.#fs;
    let fd: number;
    try {
      fd = fs.openSync(this.dir + this.#sep + name + AUX_SUFFIX, "r");
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return undefined;
      throw e;
    }
    let total = 0;
    const read = (n: number): Uint8Array | undefined => {
      if (total + n > size) return undefined;
      // An eighth more, as room to grow: pages never written are not resident.
      const bytes = new Uint8Array(n + (n >>> 3)).subarray(0, n);
      let at = 0;
      for (let got; at < n && (got = fs.readSync(fd, bytes, at, Math.min(n - at, 8 << 20))) > 0;) at += got;
      total += at;
      return at === n ? bytes : undefined;
    };
    try {
      const head = read(AUX_TAG_BYTES + 4);
      if (head === undefined || hexOf(head.subarray(0, AUX_TAG_BYTES)) !== tag) return undefined;
      const count = new DataView(head.buffer).getUint32(AUX_TAG_BYTES, true);
      const lengths = count <= AUX_MAX_PARTS ? read(4 * count) : undefined;
      if (lengths === undefined) return undefined;
      const parts: Uint8Array[] = [];
      const view = new DataView(lengths.buffer);
      for (let i = 0; i < count; i++) {
        const part = read(view.getUint32(4 * i, true));
        if (part === undefined) return undefined;
        parts.push(part);
      }
      return total === size ? parts : undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Writes `<name>.aux` (a new file, synced, renamed over the old one), then
   * commits its tag and length. The file is written {@link AUX_SLICE} bytes
   * at a time, each slice synced, with a turn of the event loop between
   * slices: a 100 MB sync index written at once held the loop for 0.1-0.4 s
   * (one 4 MiB slice and its sync: ~10 ms). One write per name at a time.
   */
  async writeAux(name: string, parts: readonly Uint8Array[]): Promise<void> {
    if (this.#closed) throw closedError();
    checkAuxName(name);
    if (parts.length > AUX_MAX_PARTS) {
      throw new RangeError(`Auxiliary data has more than ${AUX_MAX_PARTS} parts`);
    }
    if (this.#auxWriting.has(name)) {
      throw new Error(`Auxiliary data ${name} is being written: one write at a time`);
    }
    this.#auxWriting.add(name);
    try {
      const fs = this.#fs, file = this.dir + this.#sep + name + AUX_SUFFIX, tmp = file + ".tmp";
      const tag = crypto.getRandomValues(new Uint8Array(AUX_TAG_BYTES));
      try {
        fs.unlinkSync(tmp); // left by a crash or a failed write
      } catch { /* none */ }
      const head = new Uint8Array(4 + 4 * parts.length), view = new DataView(head.buffer);
      view.setUint32(0, parts.length, true);
      parts.forEach((p, i) => view.setUint32(4 + 4 * i, p.length, true));
      const fd = fs.openSync(tmp, "wx", 0o600);
      let size = 0, unsynced = 0;
      try {
        for (const part of [tag, head, ...parts]) {
          for (let at = 0; at < part.length;) {
            const n = fs.writeSync(fd, part, at, Math.min(part.length - at, AUX_SLICE - unsynced));
            at += n;
            if ((unsynced += n) < AUX_SLICE) continue;
            fs.fsyncSync(fd);
            unsynced = 0;
            await new Promise((resolve) => setTimeout(resolve, 0));
            if (this.#closed) throw closedError();
          }
          size += part.length;
        }
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      if (this.#parts) throw new Error("A commit in parts is open: it must end before another commit");
      fs.renameSync(tmp, file);
      syncDir(fs, this.dir);
      this.commitSync({ meta: { [AUX_META + name]: `${hexOf(tag)}:${size}` } });
    } finally {
      this.#auxWriting.delete(name);
    }
  }

  /** Records journaled but not yet folded into SQLite (for status pages and tests). */
  get pending(): number {
    return this.#active.count + (this.#frozen?.left ?? 0);
  }

  /**
   * Folds everything journaled into SQLite now (close does it too); on a
   * full disk it rejects with a `DiskFullError` (what is journaled stays safe
   * in the journal).
   */
  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      try {
        this.#foldAll();
      } catch (e) {
        if (isDiskFull(e)) this.#diskFull();
        throw e;
      }
      this.#full = undefined;
      return Promise.resolve();
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

  /**
   * Folds the journal into SQLite, closes the database (SQLite checkpoints
   * the WAL into the file) and releases the directory. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      if (this.#parts) { // an unfinished commit in parts is dropped, as a crash would drop it
        this.#parts = false;
        this.#rollback();
      }
      try {
        // Everything journaled goes into SQLite, so the next open replays nothing.
        if (!this.#foldWhenRoom()) throw this.#heldError();
        this.#active.journal.remove();
      } catch {
        // Whatever is left in the journal is safe there and replayed on the next open.
        this.#active.journal.close();
        this.#frozen?.mem.journal.close();
      }
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

/** Auxiliary data (`readAux`/`writeAux`): file suffix, tag bytes at its start, metadata key prefix. */
const AUX_SUFFIX = ".aux";
const AUX_TAG_BYTES = 8;
const AUX_META = "aux.";
const AUX_MAX_PARTS = 1024;
/** Bytes of auxiliary data written and synced between turns of the event loop (see writeAux). */
const AUX_SLICE = 4 << 20;

function checkAuxName(name: string): void {
  if (typeof name !== "string" || !/^[a-z0-9-]{1,64}$/.test(name)) {
    throw new TypeError(
      `Auxiliary data name ${JSON.stringify(name)} is not 1-64 lowercase letters, digits or -`,
    );
  }
}

function hexOf(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

const DEFAULT_CACHE_BYTES = 8 << 20;
/** Nodes read per query when the live ones are counted body by body (see `countLive`). */
const COUNT_PAGE_ROWS = 1024;
/** Most souls remembered as absent from SQLite; the set is cleared when it is full. */
const ABSENT_MAX = 65_536;
/**
 * The active memtable is frozen and folded into SQLite in the background once
 * it holds this many records or bytes. It bounds the replay work after a
 * crash and the memory of journaled records.
 */
const FOLD_RECORDS = 16_384;
const FOLD_BYTES = 16 << 20;
/**
 * After a fold failed for want of space, the next is tried this long after
 * it at the earliest, doubling after each failure up to the maximum.
 */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;
/** Free space a fold waits for beyond what its records take (see `#foldNeed`). */
const FOLD_SLACK = 1 << 20;
/** Records written to SQLite per background fold step (one transaction, ~20–40 ms). */
const FOLD_CHUNK = 8192;
/** While a fold runs, the active memtable may grow to this before commits wait for the fold. */
const HOLD_RECORDS = 4 * FOLD_RECORDS;
const HOLD_BYTES = 4 * FOLD_BYTES;
/**
 * Batches of this many records or more skip the journal and go straight into
 * SQLite in their own transaction: journaling them would only hold them in
 * memory until they are folded, and one SQLite transaction writes them in
 * less time than the journal and the fold together.
 */
const DIRECT_RECORDS = FOLD_RECORDS;
/** A frame buffer grown past this is dropped after its commit, not kept for the next. */
const SHRINK_WRITER_BYTES = 4 << 20;

/**
 * `records` with consecutive seqs from `first`, grouped by soul, each node's
 * records in field order, one per field (a later record of a key replaces an
 * earlier one). A batch mostly lists a node's records together (a put, an
 * export): such runs become arrays with no map per node; a soul that comes
 * back after another makes the whole batch go through maps.
 */
function groupBySoul(records: readonly FieldRecord[], first: number): (readonly [string, NodeRecords])[] {
  const out: [string, NodeRecords][] = [];
  const seen = new Set<string>();
  for (let i = 0; i < records.length;) {
    const soul = records[i].soul;
    if (seen.has(soul)) return [...groupInMaps(records, first)]; // the soul comes back: maps
    seen.add(soul);
    let end = i + 1, ordered = true;
    for (; end < records.length && records[end].soul === soul; end++) {
      if (ordered && compareCodePoints(records[end - 1].field, records[end].field) >= 0) ordered = false;
    }
    if (ordered) out.push([soul, new RecordRun(records, i, end, first)]);
    else out.push([soul, sortFields(new RecordRun(records, i, end, first).stored())]);
    i = end;
  }
  return out;
}

/** The records of a batch grouped by soul in maps (soul → field → its last record), seqs from `first` on. */
function groupInMaps(records: readonly FieldRecord[], first: number): Map<string, Map<string, StoredRecord>> {
  const nodes = new Map<string, Map<string, StoredRecord>>();
  for (let i = 0; i < records.length; i++) {
    addRecord(nodes, storedRecord(records[i], first + i));
  }
  return nodes;
}

/**
 * Where reads last looked in SQLite: the last soul asked (`from`) and the
 * first stored node at or after it (`null`: none), so that souls between
 * the two are known to be absent. Forgotten (`from` undefined) whenever
 * nodes are written or a transaction is rolled back.
 */
interface Scan {
  from: string | undefined;
  next: { soul: string; body: Uint8Array } | null;
}

const NO_RECORDS: readonly FieldRecord[] = Object.freeze([]);
const NO_DEFER: readonly DeferOp[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);
const NO_META: readonly [string, string][] = Object.freeze([]) as readonly never[];

/** What a part of {@link FOLD_CHUNK} records of `records` taking `bytes` takes. */
function partBytes(bytes: number, records: number): number {
  return records <= FOLD_CHUNK ? bytes : bytes * FOLD_CHUNK / records;
}

/**
 * Whether a journaled node's latest fields (`active` over `frozen`) hold a
 * live value.
 */
function heldLive(
  frozen: ReadonlyMap<string, StoredRecord> | undefined,
  active: ReadonlyMap<string, StoredRecord> | undefined,
): boolean {
  if (active !== undefined) { for (const r of active.values()) if (!isTombstone(r.value)) return true; }
  if (frozen !== undefined) {
    for (const [field, r] of frozen) if (!isTombstone(r.value) && active?.has(field) !== true) return true;
  }
  return false;
}

/** The record of `field` among a node's records in field order. */
function findField(records: readonly StoredRecord[], field: string): StoredRecord | undefined {
  let lo = 0, hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareCodePoints(records[mid].field, field);
    if (c === 0) return records[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return undefined;
}

/**
 * SQLite's page cache, in KiB (`PRAGMA cache_size` takes negative numbers as
 * KiB). Hot nodes are served by the node cache above it, and the operating
 * system caches the file: 4 MiB instead of 8 left applying 1M ops as fast
 * (1.56–1.74 µs per op either way) and a process that had read 100,000
 * nodes 4–5 MB smaller (Deno 2.9).
 */
const PAGE_CACHE_KIB = 4096;
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
 * souls it writes. It holds nodes as `readNode` returns them (SQLite's
 * records with the journaled ones laid over them), so a fold, which only
 * moves records from the journal into SQLite, leaves it alone.
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

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true }); // a leading U+FEFF is part of the text

/** A text column, from its `_raw` BLOB twin when there is one (see `prepareAll`). */
function text(row: Row, column: string, raw: string): string {
  const bytes = row[raw];
  return bytes == null ? row[column] as string : utf8.decode(bytes as Uint8Array);
}

/** A record from a version 1 `fields` row. */
function toRecord(soul: string, field: string, row: Row): StoredRecord {
  const { value, stateHi, stateLo, actorHi, actorLo, sig } = row as {
    value: Uint8Array;
    stateHi: number;
    stateLo: number;
    actorHi: number;
    actorLo: number;
    sig: Uint8Array | null;
  };
  return storedRecord(
    { soul, field, value, stateHi, stateLo, actorHi, actorLo, sig: sig ?? undefined },
    row.seq as number,
  );
}
