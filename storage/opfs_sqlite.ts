/**
 * The SQLite engine as it runs inside the browser's OPFS worker
 * (storage/opfs_worker.ts): the server's tables, statements, reads and
 * writes (storage/sqlite_nodes.ts, sqlite_reads.ts, sqlite_direct.ts,
 * sqlite_deferred.ts) over a connection the worker opened, so the schema and
 * the semantics are the server's — without what needs a file system beside
 * the database:
 *
 * - no journal: every commit is one SQLite transaction, durable when it
 *   resolves (the server journals ahead of SQLite to save fsyncs; OPFS's
 *   `flush()` of a sync access handle is what a commit pays here). The reads
 *   still go through `Journaled`, whose memtable simply stays empty, over an
 *   in-memory file table for the journal file it creates and never writes.
 * - no directory LOCK: the `opfs-sahpool` VFS holds an exclusive handle on
 *   every file of its pool, so a second opener of the same database fails
 *   to install the pool (storage/opfs_worker.ts says so).
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
import { Journaled, type JournaledFs } from "./sqlite_journaled.ts";
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
  ListOptions,
  StoredRecord,
} from "../core/store.ts";
import type { NodeData } from "../core/value.ts";

/** The Store calls the worker answers (all of `Store` but `engine`, `durable` and the aux data). */
export class OpfsSqlite {
  #db: SqlDriver;
  #nodes: NodeTable;
  #reads: NodeReads;
  #direct: DirectWriter;
  #deferred: DeferredTable;
  #cache = new NodeCache(DEFAULT_CACHE_BYTES);
  #seq: number;
  #closed = false;

  /** Over `db`, set up and migrated (storage/sqlite_connect.ts `configure`); `name` names it in errors. */
  constructor(db: SqlDriver, name: string) {
    this.#db = db;
    const nodes = this.#nodes = new NodeTable(db, name);
    const journaled = new Journaled(nodes, memoryFs(), "", "/", false, systemWorld);
    this.#seq = journaled.recover(); // no journal files: the seq SQLite holds, and an empty memtable
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

  /** One SQLite transaction: all of `batch` or none of it. */
  commit(batch: CommitBatch): number {
    this.#open();
    checkBatch(batch);
    const records = batch.records?.length ?? 0;
    this.#direct.commit(batch, this.#seq + 1);
    return this.#seq += records;
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
    const row = this.#nodes.s.getMeta.get(key);
    return row === undefined ? undefined : text(row, "value", "value_raw");
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
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

/**
 * Files kept in memory, for the journal file `Journaled` creates and, with
 * every commit going straight to SQLite, never writes to.
 */
function memoryFs(): JournaledFs {
  const files = new Map<string, Uint8Array>();
  const fds = new Map<number, string>();
  let next = 3;
  const path = (fd: number): string => {
    const p = fds.get(fd);
    if (p === undefined) throw new Error(`EBADF: bad file descriptor ${fd}`);
    return p;
  };
  return {
    openSync(p, flags) {
      if (flags === "r" ? !files.has(p) : files.has(p)) {
        throw Object.assign(new Error(`${flags === "r" ? "ENOENT" : "EEXIST"}: ${p}`), {
          code: flags === "r" ? "ENOENT" : "EEXIST",
        });
      }
      if (flags !== "r") files.set(p, new Uint8Array(0));
      fds.set(next, p);
      return next++;
    },
    writeSync(fd, buffer, offset, length) {
      const p = path(fd), old = files.get(p) ?? new Uint8Array(0);
      const grown = new Uint8Array(old.length + length);
      grown.set(old);
      grown.set(buffer.subarray(offset, offset + length), old.length);
      files.set(p, grown);
      return length;
    },
    readSync: () => 0,
    ftruncateSync(fd, length) {
      const p = path(fd);
      files.set(p, (files.get(p) ?? new Uint8Array(0)).slice(0, length));
    },
    fdatasyncSync: () => {},
    fsyncSync: () => {},
    closeSync(fd) {
      fds.delete(fd);
    },
    readFileSync(p) {
      const f = files.get(p);
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
      return f;
    },
    readdirSync: () => [...files.keys()].map((p) => p.slice(p.lastIndexOf("/") + 1)),
    unlinkSync(p) {
      files.delete(p);
    },
    renameSync(from, to) {
      const f = files.get(from);
      if (f !== undefined) files.set(to, f);
      files.delete(from);
    },
  };
}
