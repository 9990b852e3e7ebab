/**
 * The SQL the SQLite engine runs, prepared once per connection: every
 * statement of the store's reads and writes, and the multi-row upserts
 * prepared on first use for each row count. Also how a text column is read
 * where the driver cuts TEXT at U+0000 (`text`).
 *
 * @module
 */
import type { SqlDriver, SqlStatement, SqlValue } from "./sqlite_driver.ts";

/** A result row. */
export type Row = Record<string, SqlValue>;

/** Nodes read per query when nodes are walked body by body (counting live ones, upgrading a file). */
export const COUNT_PAGE_ROWS = 1024;

/**
 * Nodes written per INSERT statement, at most. Binding and stepping one
 * multi-row statement costs less per row than one statement per row: 100k
 * new nodes of 290-byte bodies took 1.4–1.6 µs per row to insert in
 * statements of 64 rows, 1.9–2.7 in statements of 16 (Deno, node:sqlite,
 * 16 KiB pages).
 */
export const UPSERT_ROWS = 64;
/** Parameters per row of those statements: soul, body, seq, live. */
export const COLS = 4;

/** Inserts nodes that do not exist yet (leaving those that do alone). */
export function insertNewSql(rows: number): string {
  return `INSERT INTO nodes (soul, body, seq, live) VALUES ${new Array(rows).fill("(?, ?, ?, ?)").join(", ")}
    ON CONFLICT (soul) DO NOTHING`;
}

/**
 * A row replaces a stored one only when its seq is higher (bodies are
 * merged before they are written, so this only skips rewriting a node
 * unchanged by a replayed journal).
 */
export function upsertSql(rows: number): string {
  return `INSERT INTO nodes (soul, body, seq, live) VALUES ${new Array(rows).fill("(?, ?, ?, ?)").join(", ")}
    ON CONFLICT (soul) DO UPDATE SET body = excluded.body, seq = excluded.seq, live = excluded.live
    WHERE excluded.seq > nodes.seq`;
}

/** The prepared statements of one connection (see {@link prepareAll}). */
export interface Statements {
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

/** Prepares the statements of a connection (the multi-row upserts wait for their first use). */
export function prepareAll(db: SqlDriver): Statements {
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

export const utf8 = new TextDecoder("utf-8", { ignoreBOM: true }); // a leading U+FEFF is part of the text

/** A text column, from its `_raw` BLOB twin when there is one (see `prepareAll`). */
export function text(row: Row, column: string, raw: string): string {
  const bytes = row[raw];
  return bytes == null ? row[column] as string : utf8.decode(bytes as Uint8Array);
}
