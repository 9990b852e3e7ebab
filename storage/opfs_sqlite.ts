/**
 * The SQLite engine as it runs inside the browser's OPFS worker
 * (storage/opfs_worker.ts): the server's tables, statements, reads and
 * writes (storage/sqlite_nodes.ts, sqlite_reads.ts, sqlite_direct.ts,
 * sqlite_deferred.ts) over a connection the worker opened, so the schema and
 * the semantics are the server's, and the server's journal ahead of SQLite
 * (storage/sqlite_journaled.ts) over OPFS files (storage/opfs_journal.ts):
 *
 * - a commit is one frame appended to the journal (with durability `power`
 *   also flushed: the sync access handle's `flush()`) before it resolves,
 *   then held in memory; SQLite receives the journaled records in the
 *   background, many commits per transaction, and on close, `list`,
 *   `changes` and a direct commit. Batches of 16k records or more and
 *   batches that defer ops go straight into SQLite, as on a server. On open,
 *   what a crash left in the journal is replayed first; a torn last frame
 *   (a commit that never resolved) is ignored.
 * - no directory LOCK: the `opfs-sahpool` VFS and the journal hold exclusive
 *   handles on every file they use, so a second opener of the same database
 *   fails to get them (storage/opfs_worker.ts says so).
 * - no auxiliary data (`readAux`/`writeAux` are optional in the Store).
 *
 * Synchronous, like SqliteStore: the worker answers one call at a time.
 *
 * @module
 */
import { checkBatch, checkChanges, closedError } from "./_check.ts";
import type { SqlDriver } from "./sqlite_driver.ts";
import { DEFAULT_CACHE_BYTES, NodeCache } from "./node_cache.ts";
import { DeferredTable } from "./sqlite_deferred.ts";
import { DirectWriter } from "./sqlite_direct.ts";
import { FOLD_RECORDS, Journaled, type JournaledFs } from "./sqlite_journaled.ts";
import { NodeTable } from "./sqlite_nodes.ts";
import { NodeReads } from "./sqlite_reads.ts";
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
  StoredRecord,
} from "../core/store.ts";
import type { NodeData } from "../core/value.ts";

/** Batches of this many records or more skip the journal (as `SqliteStore`'s do). */
const DIRECT_RECORDS = FOLD_RECORDS;

const NO_RECORDS: readonly FieldRecord[] = Object.freeze([]);
const NO_META: readonly [string, string][] = Object.freeze([]) as readonly never[];

/** The Store calls the worker answers (all of `Store` but `engine`, `durable` and the aux data). */
export class OpfsSqlite {
  #db: SqlDriver;
  #nodes: NodeTable;
  #reads: NodeReads;
  #direct: DirectWriter;
  #deferred: DeferredTable;
  #journaled: Journaled;
  #cache = new NodeCache(DEFAULT_CACHE_BYTES);
  #seq: number;
  #closed = false;

  /**
   * Over `db`, set up and migrated (storage/sqlite_connect.ts `configure`),
   * with its journal files in `fs` (directory `dir`); `name` names it in
   * errors. Replays what a crash left in the journal into SQLite first.
   */
  constructor(db: SqlDriver, name: string, fs: JournaledFs, dir: string, power: boolean) {
    this.#db = db;
    const nodes = this.#nodes = new NodeTable(db, name);
    // As on a server: with `power` every frame is flushed before its commit resolves; with `process` the
    // write alone (a sync access handle writes to the file through the operating system, so a crashed
    // tab or worker loses nothing written; a power cut may lose what no flush reached).
    const journaled = this.#journaled = new Journaled(nodes, fs, dir, "/", power, systemWorld);
    this.#seq = journaled.recover();
    this.#deferred = new DeferredTable(nodes);
    this.#reads = new NodeReads(nodes, journaled, this.#cache);
    this.#direct = new DirectWriter(nodes, this.#deferred, this.#cache);
  }

  readNode(soul: string): StoredRecord[] {
    this.#open();
    return this.#reads.node(soul);
  }

  readNodeData(soul: string): NodeData | undefined {
    this.#open();
    return this.#reads.nodeData(soul);
  }

  readFields(keys: readonly FieldKey[]): (StoredRecord | undefined)[] {
    this.#open();
    return this.#reads.fields(keys);
  }

  /**
   * Commits `batch` atomically: one journal frame, flushed before this
   * returns; or, for {@link DIRECT_RECORDS} records or more and batches that
   * defer or undefer ops, one SQLite transaction after everything journaled.
   */
  commit(batch: CommitBatch): number {
    this.#open();
    checkBatch(batch);
    const records = batch.records ?? NO_RECORDS;
    const first = this.#seq + 1;
    const j = this.#journaled;
    if (
      records.length >= DIRECT_RECORDS || (batch.defer?.length ?? 0) > 0 ||
      (batch.undefer?.length ?? 0) > 0 || j.foldError !== undefined
    ) {
      if (!j.foldWhenRoom()) throw j.heldError();
      this.#direct.commit(batch, first);
      return this.#seq = first - 1 + records.length;
    }
    const meta = batch.meta === undefined ? NO_META : Object.entries(batch.meta);
    if (records.length === 0 && meta.length === 0) return this.#seq;
    j.append(first, records, meta, this.#cache);
    return this.#seq = first - 1 + records.length;
  }

  /** Records journaled but not yet folded into SQLite. */
  get pending(): number {
    return this.#journaled.pending;
  }

  list(options: ListOptions): string[] {
    this.#open();
    return this.#reads.list(options);
  }

  changes(after: number, options: ChangesOptions): ChangesPage {
    this.#open();
    checkChanges(after, options);
    return this.#reads.changes(after, options, this.#seq);
  }

  lastSeq(): number {
    return this.#seq;
  }

  countLive(): number {
    this.#open();
    return this.#reads.countLive(this.#seq);
  }

  deferred(): DeferredOp[] {
    this.#open();
    return this.#deferred.all();
  }

  deferredDue(until: number, limit: number): DeferredOp[] {
    this.#open();
    return this.#deferred.due(until, limit);
  }

  deferredCount(source?: string): number {
    this.#open();
    return this.#deferred.count(source);
  }

  dropDeferredAfter(due: number): number {
    this.#open();
    return this.#deferred.dropAfter(due);
  }

  getMeta(key: string): string | undefined {
    this.#open();
    const j = this.#journaled;
    const held = j.active.meta.get(key) ?? j.frozen?.mem.meta.get(key);
    if (held !== undefined) return held;
    const row = this.#nodes.s.getMeta.get(key);
    return row === undefined ? undefined : text(row, "value", "value_raw");
  }

  /**
   * Folds the journal into SQLite and deletes its file (what cannot be folded
   * stays in the journal, replayed on the next open), then closes the
   * connection. Idempotent. The journal's files are the worker's to close.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const j = this.#journaled;
    j.closed = true;
    j.closeJournal();
    try {
      this.#db.exec("PRAGMA optimize");
    } catch {
      // only advice to the query planner
    }
    this.#db.close();
  }

  #open(): void {
    if (this.#closed) throw closedError();
  }
}
