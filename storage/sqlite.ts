/**
 * The SQLite engine: a database directory holding `lattice.db` (with its WAL)
 * and a `LOCK` file, through the runtime's native driver (`bun:sqlite` on
 * Bun, `node:sqlite` on Deno and Node ≥ 22.5) or SQLite-WASM on a file VFS.
 * This file is the {@link SqliteStore} itself: it opens the directory and
 * answers the Store calls from its parts —
 * - storage/sqlite_connect.ts: the driver and the pragmas of the connection;
 * - storage/sqlite_schema.ts: what the file holds, and its migrations;
 * - storage/sqlite_statements.ts: the SQL, prepared once;
 * - storage/sqlite_nodes.ts: the `nodes` table, read and written;
 * - storage/sqlite_journaled.ts: commits journaled ahead of SQLite, and
 *   their folding; storage/sqlite_full.ts: the same on a full disk;
 * - storage/sqlite_reads.ts: get, fields, `list`, `changes`, the live count;
 *   storage/sqlite_held.ts: the same over what a full disk keeps journaled;
 * - storage/sqlite_direct.ts: batches that go straight into SQLite, and
 *   commits in parts;
 * - storage/sqlite_deferred.ts, storage/sqlite_aux.ts: deferred ops, and
 *   auxiliary data files; storage/node_cache.ts: the node cache.
 *
 * Commits go to a journal first: a commit resolves once its frame is written
 * there, and its records are kept in memory until they are folded into
 * SQLite, in the background once enough have gathered, and on close, `list`
 * and `changes`. Batches of 16k records or more, and batches that defer ops,
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
 * count go on over what stays journaled, no fold is tried until the disk has
 * room for it (a failed one would take the space new journal appends need;
 * the WAL it grew is truncated), a restart that cannot replay the journal
 * holds it in memory instead, and writes resume once space is freed, in the
 * same process.
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
import { checkBatch, checkChanges, closedError } from "./_check.ts";
import { loadHost } from "./_host.ts";
import { asDiskFull, isDiskFull } from "./disk_full.ts";
import { DirectoryLock } from "./lock.ts";
import type { SqlDriver } from "./sqlite_driver.ts";
import type { NodeData } from "../core/value.ts";
import { DEFAULT_CACHE_BYTES, NodeCache } from "./node_cache.ts";
import { AuxFiles, type AuxStore } from "./sqlite_aux.ts";
import {
  connect,
  type Durability,
  integrityCheck,
  readInfo,
  type SqliteInfo,
  type SqliteStoreOptions,
} from "./sqlite_connect.ts";
import { DeferredTable } from "./sqlite_deferred.ts";
import { DirectWriter, type PartsOwner } from "./sqlite_direct.ts";
import { NodeReads } from "./sqlite_reads.ts";
import { FOLD_RECORDS, Journaled } from "./sqlite_journaled.ts";
import { NodeTable } from "./sqlite_nodes.ts";
import { DB_FILE } from "./sqlite_schema.ts";
import { text } from "./sqlite_statements.ts";
import { systemWorld } from "../core/world.ts";
import type {
  ChangesOptions,
  ChangesPage,
  CommitBatch,
  DeferredOp,
  FieldKey,
  FieldRecord,
  ListOptions,
  PartsCommit,
  Store,
  StoredRecord,
} from "../core/store.ts";

export type { Durability, SqliteDriverChoice, SqliteInfo, SqliteStoreOptions } from "./sqlite_connect.ts";
export { PAGE_BYTES } from "./sqlite_connect.ts";
export { DB_FILE, SCHEMA_VERSION } from "./sqlite_schema.ts";

/**
 * Batches of this many records or more skip the journal and go straight into
 * SQLite in their own transaction: journaling them would only hold them in
 * memory until they are folded, and one SQLite transaction writes them in
 * less time than the journal and the fold together.
 */
const DIRECT_RECORDS = FOLD_RECORDS;

const NO_RECORDS: readonly FieldRecord[] = Object.freeze([]);
const NO_META: readonly [string, string][] = Object.freeze([]) as readonly never[];

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
  #nodes: NodeTable;
  #journaled: Journaled;
  #reads: NodeReads;
  #direct: DirectWriter;
  #deferred: DeferredTable;
  #aux: AuxFiles;
  #seq: number;
  #closed = false;
  #cache: NodeCache | undefined;
  /** Whether a commit in parts is open (see {@link beginParts}). */
  #parts = false;
  /** What the aux files and a commit in parts ask of this store (one object, made once). */
  #hooks: AuxStore & PartsOwner = {
    checkOpen: () => {
      if (this.#closed) throw closedError();
    },
    isClosed: () => this.#closed,
    checkCommit: () => {
      if (this.#parts) throw new Error("A commit in parts is open: it must end before another commit");
    },
    commitMeta: (key, value) => {
      this.commitSync({ meta: { [key]: value } });
    },
    getMeta: (key) => this.getMeta(key),
    endParts: (seq) => {
      this.#parts = false;
      if (seq !== undefined) this.#seq = seq;
    },
  };

  private constructor(
    dir: string,
    db: SqlDriver,
    lock: DirectoryLock,
    durability: Durability,
    cacheBytes: number,
    journaled: Journaled,
    nodes: NodeTable,
    aux: AuxFiles,
  ) {
    this.dir = dir;
    this.#cache = cacheBytes > 0 ? new NodeCache(cacheBytes) : undefined;
    this.engine = db.name === "sqlite-wasm" ? "sqlite-wasm" : `sqlite (${db.name})`;
    this.durability = durability;
    this.#db = db;
    this.#lock = lock;
    this.#nodes = nodes;
    this.#journaled = journaled;
    this.#reads = new NodeReads(nodes, journaled, this.#cache);
    this.#deferred = new DeferredTable(nodes);
    this.#aux = aux;
    this.#direct = new DirectWriter(nodes, this.#deferred, this.#cache);
    this.#seq = journaled.recover(); // commits a crash left in the journal go into SQLite first
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
    const world = options.world ?? systemWorld;
    const host = await loadHost();
    const fs = host.fs;
    fs.mkdirSync(dir, { recursive: true });
    const lock = await DirectoryLock.acquire(dir, { command: options.lockCommand, world });
    let db: SqlDriver | undefined;
    try {
      db = await connect(host.join(dir, DB_FILE), options.driver, durability, busy);
      const nodes = new NodeTable(db, dir);
      const journaled = new Journaled(nodes, fs, dir, host.sep, durability === "power", world);
      const aux = new AuxFiles(fs, dir, host.sep, world);
      return new SqliteStore(dir, db, lock, durability, cacheBytes, journaled, nodes, aux);
    } catch (e) {
      try {
        db?.close();
      } finally {
        lock.release();
      }
      throw asDiskFull(e, dir, `open ${DB_FILE}`, "; free some space to open it"); // a schema upgrade, say
    }
  }

  /** Every stored field of `soul`, in field order (BINARY collation = UTF-8 byte order). */
  readNode(soul: string): Promise<StoredRecord[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(this.#reads.node(soul));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The live fields of `soul` as data (see `NodeReads.nodeData`). */
  readNodeData(soul: string): Promise<NodeData | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(this.#reads.nodeData(soul));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  readFields(keys: readonly FieldKey[]): Promise<(StoredRecord | undefined)[]> {
    try {
      return Promise.resolve(this.readFieldsSync(keys));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The records of `keys` (see `NodeReads.fields`). */
  readFieldsSync(keys: readonly FieldKey[]): (StoredRecord | undefined)[] {
    if (this.#closed) throw closedError();
    return this.#reads.fields(keys);
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
    const j = this.#journaled;
    if (
      records.length >= DIRECT_RECORDS || (batch.defer?.length ?? 0) > 0 ||
      (batch.undefer?.length ?? 0) > 0 ||
      j.foldError !== undefined
    ) {
      return this.#commitDirect(batch, first);
    }
    const meta = batch.meta === undefined ? NO_META : Object.entries(batch.meta);
    if (records.length === 0 && meta.length === 0) return this.#seq;
    j.append(first, records, meta, this.#cache);
    return this.#seq = first - 1 + records.length;
  }

  /**
   * Commits `batch` (checked) straight into SQLite, after everything
   * journaled (storage/sqlite_direct.ts).
   */
  #commitDirect(batch: CommitBatch, first: number): number {
    if (!this.#journaled.foldWhenRoom()) throw this.#journaled.heldError();
    this.#direct.commit(batch, first);
    return this.#seq = first - 1 + (batch.records?.length ?? 0);
  }

  /**
   * A commit in parts: everything journaled is folded first, then one
   * SQLite transaction takes each part as a direct batch would, and ends
   * with `commit` (or `abort`, which rolls it back).
   */
  beginParts(): PartsCommit {
    if (this.#closed) throw closedError();
    if (this.#parts) throw new Error("A commit in parts is already open");
    if (!this.#journaled.foldWhenRoom()) throw this.#journaled.heldError();
    const parts = this.#direct.beginParts(this.#seq + 1, this.#hooks);
    this.#parts = true;
    return parts;
  }

  /** How many nodes have a live field (see `NodeReads.countLive`). */
  countLive(): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(this.#reads.countLive(this.#seq));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Live souls in BINARY order (see `NodeReads.list`). */
  list(options: ListOptions): Promise<string[]> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(this.#reads.list(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  changes(after: number, options: ChangesOptions): Promise<ChangesPage> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      checkChanges(after, options);
      return Promise.resolve(this.#reads.changes(after, options, this.#seq));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  lastSeq(): Promise<number> {
    return Promise.resolve(this.#seq);
  }

  /** Deferred ops read out of SQLite so far (by `deferred` and `deferredDue`): what a test counts. */
  get deferredRowsRead(): number {
    return this.#deferred.rowsRead;
  }

  async deferred(): Promise<DeferredOp[]> {
    if (this.#closed) throw closedError();
    return this.#deferred.all(); // deferred ops never pass through the journal
  }

  async deferredDue(until: number, limit: number): Promise<DeferredOp[]> {
    if (this.#closed) throw closedError();
    return this.#deferred.due(until, limit);
  }

  async deferredCount(source?: string): Promise<number> {
    if (this.#closed) throw closedError();
    return this.#deferred.count(source);
  }

  async dropDeferredAfter(due: number): Promise<number> {
    if (this.#closed) throw closedError();
    return this.#deferred.dropAfter(due);
  }

  getMeta(key: string): Promise<string | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      const j = this.#journaled;
      const held = j.active.meta.get(key) ?? j.frozen?.mem.meta.get(key);
      if (held !== undefined) return Promise.resolve(held);
      const row = this.#nodes.s.getMeta.get(key);
      return Promise.resolve(row === undefined ? undefined : text(row, "value", "value_raw"));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Auxiliary data (see `Store.readAux` and storage/sqlite_aux.ts): the file `<name>.aux` beside the database. */
  async readAux(name: string): Promise<Uint8Array[] | undefined> {
    if (this.#closed) throw closedError();
    return await this.#aux.read(this.#hooks, name);
  }

  /** Writes `<name>.aux` and commits its tag and length (see storage/sqlite_aux.ts). */
  async writeAux(name: string, parts: readonly Uint8Array[]): Promise<void> {
    if (this.#closed) throw closedError();
    await this.#aux.write(this.#hooks, name, parts);
  }

  /** Records journaled but not yet folded into SQLite (for status pages and tests). */
  get pending(): number {
    return this.#journaled.pending;
  }

  /**
   * Folds everything journaled into SQLite now (close does it too); on a
   * full disk it rejects with a `DiskFullError` (what is journaled stays safe
   * in the journal).
   */
  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    const j = this.#journaled;
    try {
      try {
        j.foldAll();
      } catch (e) {
        if (isDiskFull(e)) j.diskFull();
        throw e;
      }
      j.full = undefined;
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** How the database is set up, for status pages and tests. */
  async info(): Promise<SqliteInfo> {
    if (this.#closed) throw closedError();
    return readInfo(this.#db);
  }

  /**
   * Runs `PRAGMA integrity_check` (or `quick_check`): `["ok"]` when the file
   * is sound, else SQLite's list of problems.
   */
  async integrityCheck(options: { quick?: boolean } = {}): Promise<string[]> {
    if (this.#closed) throw closedError();
    return integrityCheck(this.#db, options.quick === true);
  }

  /**
   * Folds the journal into SQLite, closes the database (SQLite checkpoints
   * the WAL into the file) and releases the directory. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const j = this.#journaled;
    j.closed = true;
    try {
      if (this.#parts) { // an unfinished commit in parts is dropped, as a crash would drop it
        this.#parts = false;
        this.#nodes.rollback();
      }
      j.closeJournal();
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
