/**
 * The schema of a Lattice SQLite file and the migrations that bring an older
 * file up to it, in one place: what a file holds (the tables, version 3, in
 * `PRAGMA user_version`; `PRAGMA application_id` marks it as Lattice's) and
 * how each earlier version is converted, inside the open transaction.
 *
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
 *   source's ops). (Version 2 had no `live` column and no deferred `source`:
 *   opening such a file adds both, `''` as the source of the ops already
 *   deferred.)
 * - `meta(key, value)`, which also keeps `nodes.live`: how many nodes have a
 *   live field and the highest node seq it counted to (storage/sqlite_nodes.ts).
 *
 * @module
 */
import { LIVE_NODES_KEY } from "./_check.ts";
import type { SqlDriver } from "./sqlite_driver.ts";
import { bodyLive, encodeBody, nodeSeq } from "./node_body.ts";
import { COUNT_PAGE_ROWS, type Row, utf8 } from "./sqlite_statements.ts";
import { type StoredRecord, storedRecord } from "../core/store.ts";

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

/** Brings the schema to {@link SCHEMA_VERSION}; throws for files that are not Lattice's or are newer. */
export function migrate(db: SqlDriver, file: string): void {
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
