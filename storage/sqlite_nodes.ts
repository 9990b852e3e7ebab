/**
 * The `nodes` table as the SQLite engine reads and writes it: one row per
 * node, its fields in one body (storage/node_body.ts). Reads remember where
 * SQLite holds no node (a set of absent souls and the last scan position),
 * so that writing new nodes field by field, or a batch of new nodes in soul
 * order, costs one query, not one per field or node. Writes merge journaled
 * or direct records into the stored bodies, many rows per statement, and
 * keep the count of live nodes (`meta` key `nodes.live`) in step. The
 * connection's transactions live here too, since a rollback must forget
 * what reads learnt inside it.
 *
 * @module
 */
import { LIVE_NODES_KEY } from "./_check.ts";
import { compareCodePoints } from "../core/order.ts";
import { asDiskFull, isDiskFull } from "./disk_full.ts";
import { addRecord } from "./memtable.ts";
import type { SqlDriver, SqlValue } from "./sqlite_driver.ts";
import {
  bodyLive,
  decodeBody,
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
import { type FieldRecord, type StoredRecord, storedRecord } from "../core/store.ts";
import { DB_FILE } from "./sqlite_schema.ts";
import {
  COLS,
  COUNT_PAGE_ROWS,
  insertNewSql,
  prepareAll,
  type Statements,
  text,
  UPSERT_ROWS,
  upsertSql,
} from "./sqlite_statements.ts";

/** Most souls remembered as absent from SQLite (or as live there); the set is cleared when it is full. */
const ABSENT_MAX = 65_536;
/** A buffer grown past this (by a huge node) is dropped after its write, not kept for the next. */
const SHRINK_BYTES = 4 << 20;

/** The `nodes` table of one connection, with the connection's transactions. */
export class NodeTable {
  readonly db: SqlDriver;
  /** The connection's prepared statements. */
  readonly s: Statements;
  readonly #dir: string;
  /** Souls SQLite does not hold (see {@link node}). */
  #absent = new Set<string>();
  /** Where reads last looked in SQLite (see {@link nodeIn}); forgotten when nodes are written. */
  #scan: Scan = { from: undefined, next: null };
  /** Whether SQLite's node of a soul has a live field (see {@link live}); forgotten when nodes are written. */
  #storedLive = new Map<string, boolean>();
  /** Parameters of the multi-row upsert, reused. */
  #args: SqlValue[] = [];
  /** Node bodies being written by one statement (see {@link write}). */
  #arena = new ByteWriter(64 * 1024);

  /** `dir`: the database directory, named by a full disk's error. */
  constructor(db: SqlDriver, dir: string) {
    this.db = db;
    this.s = prepareAll(db);
    this.#dir = dir;
  }

  /** The highest seq SQLite holds. */
  seq(): number {
    return Number(this.s.maxSeq.get()?.m ?? 0);
  }

  /**
   * Runs `fn` in `BEGIN IMMEDIATE … COMMIT`; on any error rolls back and
   * rethrows (a full disk as a `DiskFullError`, after giving back the space
   * the WAL took).
   */
  transaction(fn: () => void): void {
    const s = this.s;
    s.begin.run();
    try {
      fn();
      s.commit.run();
    } catch (e) {
      this.rollback();
      throw this.failed(e);
    }
  }

  /** `e` as the error to throw after a rolled back write: a full disk also gives the WAL's space back. */
  failed(e: unknown): unknown {
    if (!isDiskFull(e)) return e;
    try {
      // The WAL grew with the frames of the failed transaction until the disk was full; a
      // checkpoint that truncates it frees that space for the journal (when nothing committed
      // waits in it for room in the database file).
      this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // the space stays with the WAL until a later checkpoint
    }
    return asDiskFull(e, this.#dir, `write to ${DB_FILE}`);
  }

  /** Ends the open transaction, taking back what it wrote. */
  rollback(): void {
    this.#scan.from = undefined; // it may have seen rows the rollback takes back
    try {
      this.s.rollback.run();
    } catch {
      // a failed statement (a COMMIT, say) may already have ended the transaction
    }
  }

  /** Copies what the WAL holds into the database file and truncates the WAL. */
  checkpoint(): void {
    this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /** Whether `soul` is known to be absent from SQLite. */
  isAbsent(soul: string): boolean {
    return this.#absent.has(soul);
  }

  /**
   * The fields of `soul` in SQLite (without the journaled ones), in field
   * order. A soul SQLite was found not to hold is remembered (up to
   * {@link ABSENT_MAX} of them) until a write into SQLite adds it, so that
   * writing a new node field by field reads SQLite once, not per field.
   */
  node(soul: string): StoredRecord[] {
    if (this.#absent.has(soul)) return [];
    const row = this.s.readBody.get(soul);
    if (row !== undefined) return decodeBody(soul, row.body as Uint8Array);
    this.#rememberAbsent(soul);
    return [];
  }

  #rememberAbsent(soul: string): void {
    const absent = this.#absent;
    if (absent.size >= ABSENT_MAX) absent.clear();
    absent.add(soul);
  }

  /**
   * {@link node} for souls met in ascending order, as the nodes of a
   * large batch and new nodes written one after another mostly are: SQLite
   * is asked for the first node at or after the soul, and the souls before
   * that node need no query of their own until nodes are written into
   * SQLite (a fold). New nodes cost one query, not one each; stored nodes
   * cost a query each, as before.
   */
  nodeIn(soul: string): StoredRecord[] {
    if (this.#absent.has(soul)) return [];
    const scan = this.#scan;
    if (scan.from !== undefined && compareCodePoints(soul, scan.from) > 0) {
      const next = scan.next;
      const c = next === null ? -1 : compareCodePoints(soul, next.soul);
      if (c < 0) return []; // between two stored nodes (or past the last): absent
      if (c === 0) return decodeBody(soul, next!.body);
    }
    const row = this.s.nextBody.get(soul);
    scan.from = soul;
    scan.next = row === undefined
      ? null
      : { soul: text(row, "soul", "soul_raw"), body: row.body as Uint8Array };
    if (scan.next?.soul === soul) return decodeBody(soul, scan.next.body);
    this.#rememberAbsent(soul);
    return [];
  }

  /**
   * Merges `nodes[start, end)` (soul → its newer records) into the stored
   * nodes, inside the caller's transaction; a record replaces a stored field
   * only when its seq is higher. Each node is first inserted as it is, up to
   * {@link UPSERT_ROWS} per statement, unless it exists (`ON CONFLICT DO
   * NOTHING RETURNING`): a new node costs one write and no read. The nodes
   * that exist are then read, merged and written back.
   */
  write(
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
    let live = 0, recount = false;
    const pendingLive: boolean[] = [];
    const liveBefore = this.keptLive();
    const insert = () => {
      if (rows === 0) return;
      if (args.length !== rows * COLS) args.length = rows * COLS;
      const statement = this.s.insertNew[rows - 1] ??= this.db.prepare(insertNewSql(rows));
      statement.run(...args);
      const inserted = Number(this.s.changed.get()?.n ?? -1);
      if (inserted !== rows) {
        let found = 0;
        for (let k = 0; k < rows; k++) {
          const soul = args[k * COLS] as string;
          const row = this.s.readSeqBody.get(soul);
          if (row !== undefined && row.seq !== args[k * COLS + 2]) {
            (existing ??= []).push([pending[k], decodeBody(soul, row.body as Uint8Array)]);
            if (pendingLive[k]) live--; // counted below, by what the merge makes of it
            found++;
          }
        }
        // A row there already with the very seq written: the same records written again (a journal
        // replayed after a crash that came between a replay's commit and the deletion of its files).
        // Which rows those are is not known here, so the count is dropped and counted again on demand.
        if (inserted < 0 || found !== rows - inserted) recount = true;
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
      const statement = this.s.upsert[rows - 1] ??= this.db.prepare(upsertSql(rows));
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
    if (recount) this.s.setMeta.run(LIVE_NODES_KEY, "unknown"); // keptLive: none, counted on demand
    else if (liveBefore !== undefined) this.keepLive(liveBefore + live);
    args.fill(null); // hold no values past the commit
    if (arena.buf.length > SHRINK_BYTES) this.#arena = new ByteWriter(64 * 1024); // a huge node grew it
  }

  /**
   * The count of live nodes the file keeps, if it keeps one that is right:
   * counted up to the highest node seq there is. `undefined` when it keeps
   * none, one that is not a count, or one that writes since have passed (a
   * version that kept no count wrote nodes).
   */
  keptLive(): number | undefined {
    const row = this.s.getMeta.get(LIVE_NODES_KEY);
    if (row === undefined) return undefined;
    const [count, seq] = text(row, "value", "value_raw").split(" ").map(Number);
    if (!(Number.isSafeInteger(count) && count >= 0 && seq === this.seq())) return undefined;
    return count;
  }

  /** Keeps `count` as the number of live nodes, counted up to the highest node seq now (in the caller's transaction). */
  keepLive(count: number): void {
    this.s.setMeta.run(LIVE_NODES_KEY, `${count} ${this.seq()}`);
  }

  /** Whether SQLite's node `soul` has a live field (remembered, see `heldLiveDelta` in storage/sqlite_held.ts). */
  live(soul: string): boolean {
    const known = this.#storedLive.get(soul);
    if (known !== undefined) return known;
    let live = false;
    if (!this.#absent.has(soul)) {
      const row = this.s.readBody.get(soul);
      if (row === undefined) this.#rememberAbsent(soul);
      else live = bodyLive(soul, row.body as Uint8Array);
    }
    if (this.#storedLive.size >= ABSENT_MAX) this.#storedLive.clear();
    this.#storedLive.set(soul, live);
    return live;
  }

  /** Counts the live nodes body by body (for a file that keeps no right count). */
  countLiveBodies(): number {
    let n = 0;
    for (let after = "";;) {
      const rows = this.s.bodiesAfter.all(after);
      for (const r of rows) {
        after = text(r, "soul", "soul_raw");
        if (bodyLive(after, r.body as Uint8Array)) n++;
      }
      if (rows.length < COUNT_PAGE_ROWS) return n;
    }
  }
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

/**
 * `records` with consecutive seqs from `first`, grouped by soul, each node's
 * records in field order, one per field (a later record of a key replaces an
 * earlier one). A batch mostly lists a node's records together (a put, an
 * export): such runs become arrays with no map per node; a soul that comes
 * back after another makes the whole batch go through maps.
 */
export function groupBySoul(
  records: readonly FieldRecord[],
  first: number,
): (readonly [string, NodeRecords])[] {
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
