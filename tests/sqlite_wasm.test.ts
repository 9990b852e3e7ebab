// @server-only: node:fs VFS
/**
 * The SQLite-WASM driver (storage/sqlite_wasm.ts) on its `lattice-fs` VFS:
 * value round trips, transactions, a multi-megabyte database across close and
 * reopen, the journal mode it documents, in-process lock exclusion, and crash
 * durability (a child process SIGKILLed mid-stream loses no acknowledged
 * commit).
 *
 * The crash child is this very file, run as a script (`deno run -A` / `bun`)
 * with `LATTICE_SQLITE_WASM_CHILD` naming the database.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { openWasmSqlite } from "../storage/sqlite_wasm.ts";
import type { SqlDriver } from "../storage/sqlite_driver.ts";
import { prng, SEED } from "./_seed.ts";

const CHILD_ENV = "LATTICE_SQLITE_WASM_CHILD";
/** Optional journal mode the crash child switches to after opening (exercises hot-journal recovery). */
const JOURNAL_ENV = "LATTICE_SQLITE_WASM_JOURNAL";

/** The deterministic body of crash-test row `id`: 10 to 6009 bytes. */
function body(id: number): Uint8Array {
  const b = new Uint8Array(10 + ((id * 977) % 6000));
  for (let i = 0; i < b.length; i++) b[i] = (id * 31 + i * 7) & 0xff;
  return b;
}

/**
 * Child mode: commit rows forever, one autocommit insert or a 4-row
 * transaction at a time, and write each committed id to stdout (synchronously)
 * only after its commit returned.
 */
async function child(file: string, journal: string | undefined): Promise<void> {
  const db = await openWasmSqlite(file);
  if (journal) db.exec(`PRAGMA journal_mode=${journal}`);
  db.exec("CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  db.exec("PRAGMA wal_autocheckpoint=32"); // checkpoint often, so kills land inside checkpoints too
  const insert = db.prepare("INSERT INTO c (id, body) VALUES (?, ?)");
  let id = Number(db.prepare("SELECT coalesce(max(id), 0) AS m FROM c").get()?.m) + 1;
  for (;;) {
    const ids = id % 5 === 0 ? [id, id + 1, id + 2, id + 3] : [id];
    if (ids.length > 1) db.exec("BEGIN");
    for (const i of ids) insert.run(i, body(i));
    if (ids.length > 1) db.exec("COMMIT");
    fs.writeSync(1, ids.join("\n") + "\n");
    id += ids.length;
  }
}

/** Hash of a blob, to compare large payloads cheaply. */
function checksum(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

function bytes(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (next() * 256) | 0;
  return b;
}

/** Runs the crash child until it has reported at least `atLeast` ids, SIGKILLs it, returns every id it reported. */
function runAndKill(file: string, atLeast: number, journal = ""): Promise<number[]> {
  const self = fileURLToPath(import.meta.url);
  const root = path.resolve(path.dirname(self), "..");
  const args = "Deno" in globalThis ? ["run", "-A", self] : [self];
  const proc = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, [CHILD_ENV]: file, [JOURNAL_ENV]: journal },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let killed = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`crash child made no progress in 30 s; stderr: ${err}`));
    }, 30_000);
    proc.stdout.setEncoding("utf8");
    proc.stderr.setEncoding("utf8");
    proc.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (!killed && out.split("\n").length - 1 >= atLeast) {
        killed = true;
        proc.kill("SIGKILL");
      }
    });
    proc.stderr.on("data", (chunk: string) => (err += chunk));
    proc.on("error", reject);
    proc.on("close", (_code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") return reject(new Error(`crash child exited by itself; stderr: ${err}`));
      // Only complete lines are acknowledged ids.
      resolve(out.split("\n").slice(0, -1).map(Number));
    });
  });
}

if (process.env[CHILD_ENV]) {
  await child(process.env[CHILD_ENV], process.env[JOURNAL_ENV]);
} else {
  describe("sqlite-wasm driver (lattice-fs VFS)", () => {
    let dir = "";
    const file = (name: string) => path.join(dir, name);

    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-sqlite-wasm-"));
    });
    after(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("round-trips integers, floats, text, blobs and nulls", async () => {
      const db = await openWasmSqlite(file("values.db"));
      try {
        assert.equal(db.name, "sqlite-wasm");
        db.exec("CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB)");
        const ins = db.prepare("INSERT INTO v VALUES (?, ?, ?, ?, ?)");
        const big = bytes(100_000, 7); // spans overflow pages
        ins.run(1, Number.MAX_SAFE_INTEGER, 1.5, "héllo ✓ 😀", new Uint8Array([0, 1, 255]));
        ins.run(2, -Number.MAX_SAFE_INTEGER, -0.25, "", new Uint8Array(0));
        ins.run(3, 0, null, null, big);
        ins.run(4, 2 ** 31, 1e300, "x".repeat(10_000), null);
        ins.run(5, -(2 ** 31), 2 ** 60, "\u0000nul inside", new Uint8Array(1));
        const rows = db.prepare("SELECT * FROM v ORDER BY id").all();
        assert.equal(rows.length, 5);
        assert.deepEqual(rows[0], {
          id: 1,
          i: Number.MAX_SAFE_INTEGER,
          r: 1.5,
          s: "héllo ✓ 😀",
          b: new Uint8Array([0, 1, 255]),
        });
        assert.deepEqual(rows[1], {
          id: 2,
          i: -Number.MAX_SAFE_INTEGER,
          r: -0.25,
          s: "",
          b: new Uint8Array(0),
        });
        assert.ok(rows[2].b instanceof Uint8Array);
        assert.equal(checksum(rows[2].b), checksum(big));
        assert.equal((rows[2].b as Uint8Array).length, big.length);
        assert.deepEqual({ ...rows[3], s: (rows[3].s as string).length }, {
          id: 4,
          i: 2 ** 31,
          r: 1e300,
          s: 10_000,
          b: null,
        });
        assert.deepEqual(rows[4], {
          id: 5,
          i: -(2 ** 31),
          r: 2 ** 60,
          s: "\u0000nul inside",
          b: new Uint8Array(1),
        });
        assert.deepEqual(
          db.prepare("SELECT typeof(i) AS i, typeof(r) AS r, typeof(b) AS b FROM v WHERE id = 2").get(),
          { i: "integer", r: "real", b: "blob" },
        );
        assert.equal(db.prepare("SELECT typeof(r) AS r FROM v WHERE id = 5").get()?.r, "real");
        assert.equal(typeof db.prepare("SELECT count(*) AS n FROM v").get()?.n, "number");
        assert.equal(db.prepare("SELECT * FROM v WHERE id = ?").get(99), undefined);
        assert.deepEqual(db.prepare("SELECT * FROM v WHERE id > ?").all(99), []);
        assert.throws(() => db.prepare("SELECT 9007199254740993 AS x").get(), RangeError);
      } finally {
        db.close();
      }
    });

    it("binds left-out parameters as NULL and survives statement errors", async () => {
      const db = await openWasmSqlite(file("errors.db"));
      try {
        db.exec("CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT)");
        const ins = db.prepare("INSERT INTO u VALUES (?, ?)");
        ins.run("a", "1");
        ins.run("b"); // v is NULL, not the previous "1"
        assert.deepEqual(db.prepare("SELECT v FROM u WHERE k = ?").get("b"), { v: null });
        assert.throws(() => ins.run("a", "2"), (e: Error & { code?: string }) => {
          assert.equal(e.code, "SQLITE_CONSTRAINT_PRIMARYKEY");
          return true;
        });
        ins.run("c", "3"); // still usable
        assert.throws(() => db.prepare("SELECT nope FROM u"), /no such column/);
        assert.throws(() => db.exec("NOT SQL"), /syntax error/);
        const row = db.prepare("INSERT INTO u VALUES (?, ?) RETURNING k").get("d", "4");
        assert.deepEqual(row, { k: "d" });
        assert.equal(db.prepare("SELECT count(*) AS n FROM u").get()?.n, 4);
      } finally {
        db.close();
      }
    });

    it("commits and rolls back transactions", async () => {
      const f = file("tx.db");
      let db: SqlDriver = await openWasmSqlite(f);
      db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)");
      const ins = db.prepare("INSERT INTO t VALUES (?, ?)");
      db.exec("BEGIN");
      for (let i = 0; i < 100; i++) ins.run(i, `kept ${i}`);
      db.exec("COMMIT");
      db.exec("BEGIN");
      for (let i = 100; i < 200; i++) ins.run(i, `dropped ${i}`);
      db.exec("UPDATE t SET note = 'changed' WHERE id < 10");
      db.exec("ROLLBACK");
      db.exec("BEGIN; SAVEPOINT s; INSERT INTO t VALUES (500, 'inner'); ROLLBACK TO s; RELEASE s;");
      ins.run(501, "outer");
      db.exec("COMMIT");
      const check = (d: SqlDriver) => {
        assert.equal(d.prepare("SELECT count(*) AS n FROM t").get()?.n, 101);
        assert.equal(d.prepare("SELECT count(*) AS n FROM t WHERE note = 'changed'").get()?.n, 0);
        assert.equal(d.prepare("SELECT note FROM t WHERE id = 500").get(), undefined);
        assert.deepEqual(d.prepare("SELECT note FROM t WHERE id = 501").get(), { note: "outer" });
      };
      check(db);
      db.close();
      db = await openWasmSqlite(f);
      check(db);
      db.close();
    });

    it("keeps a multi-megabyte database across close and reopen", { timeout: 120_000 }, async () => {
      const f = file("big.db");
      const rows = 2500;
      const sizeOf = (i: number) => 1000 + ((i * 7919) % 6000);
      let db = await openWasmSqlite(f);
      db.exec("CREATE TABLE big (id INTEGER PRIMARY KEY, payload BLOB, sum INTEGER)");
      db.exec("CREATE INDEX big_sum ON big (sum)");
      const ins = db.prepare("INSERT INTO big VALUES (?, ?, ?)");
      for (let start = 0; start < rows; start += 500) {
        db.exec("BEGIN");
        for (let i = start; i < start + 500; i++) {
          const p = bytes(sizeOf(i), i);
          ins.run(i, p, checksum(p));
        }
        db.exec("COMMIT");
      }
      db.exec("DELETE FROM big WHERE id % 10 = 3"); // free pages, then VACUUM rebuilds through a temp file
      db.exec("VACUUM");
      db.close();
      assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith("big.db")), ["big.db"]);
      assert.ok(fs.statSync(f).size > 8 * 1024 * 1024, `size ${fs.statSync(f).size}`);

      db = await openWasmSqlite(f);
      try {
        const pages = Number(db.prepare("PRAGMA page_count").get()?.page_count);
        const pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size);
        assert.ok(pages > 1000 && pages * pageSize > 8 * 1024 * 1024, `${pages} pages of ${pageSize} bytes`);
        const all = db.prepare("SELECT id, payload, sum FROM big ORDER BY id").all();
        assert.equal(all.length, rows - rows / 10);
        for (const r of all) {
          const id = r.id as number;
          assert.notEqual(id % 10, 3);
          assert.equal((r.payload as Uint8Array).length, sizeOf(id));
          assert.equal(checksum(r.payload as Uint8Array), r.sum, `row ${id}`);
          assert.equal(r.sum, checksum(bytes(sizeOf(id), id)));
        }
        assert.deepEqual(db.prepare("PRAGMA integrity_check").all(), [{ integrity_check: "ok" }]);
      } finally {
        db.close();
      }
    });

    it("runs WAL in exclusive locking mode with synchronous=FULL", async () => {
      const f = file("mode.db");
      const db = await openWasmSqlite(f);
      try {
        assert.equal(db.journalMode, "wal");
        assert.deepEqual(db.prepare("PRAGMA journal_mode").get(), { journal_mode: "wal" });
        assert.deepEqual(db.prepare("PRAGMA locking_mode").get(), { locking_mode: "exclusive" });
        assert.deepEqual(db.prepare("PRAGMA synchronous").get(), { synchronous: 2 });
        db.exec("CREATE TABLE t (x)");
        db.prepare("INSERT INTO t VALUES (?)").run(1);
        assert.ok(fs.existsSync(`${f}-wal`), "a -wal file while open");
        assert.ok(!fs.existsSync(`${f}-shm`), "no -shm file: the WAL index is in heap memory");
      } finally {
        db.close();
      }
      assert.ok(!fs.existsSync(`${f}-wal`), "the WAL is checkpointed and removed at close");
    });

    it("refuses a second connection to an open database in the same process", async () => {
      const f = file("locked.db");
      const first = await openWasmSqlite(f);
      try {
        first.exec("CREATE TABLE t (x)");
        await assert.rejects(openWasmSqlite(f), /locked|BUSY/i);
        first.prepare("INSERT INTO t VALUES (?)").run(1); // the first one is unaffected
      } finally {
        first.close();
      }
      const second = await openWasmSqlite(f); // free again once closed
      assert.equal(second.prepare("SELECT count(*) AS n FROM t").get()?.n, 1);
      second.close();
    });

    it("finalizes statements at close and refuses use afterwards", async () => {
      const db = await openWasmSqlite(file("closed.db"));
      const stmt = db.prepare("SELECT 1 AS one");
      assert.deepEqual(stmt.get(), { one: 1 });
      db.close();
      db.close(); // idempotent
      assert.throws(() => stmt.get(), /finalized/);
      assert.throws(() => db.exec("SELECT 1"), /closed/);
      assert.throws(() => db.prepare("SELECT 1"), /closed/);
    });

    it("rejects an empty path", async () => {
      await assert.rejects(openWasmSqlite(""), TypeError);
    });

    /** SIGKILLs a writer `rounds` times; after each, every acknowledged row must be back intact. */
    async function crashRounds(f: string, rounds: number, journal?: string): Promise<void> {
      const next = prng(SEED ^ 0x5eed);
      const acknowledged: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const target = 20 + Math.floor(next() * 200);
        const ids = await runAndKill(f, target, journal);
        assert.ok(ids.length >= target, `round ${round}: ${ids.length} ids`);
        acknowledged.push(...ids);
        const db = await openWasmSqlite(f);
        try {
          assert.deepEqual(
            db.prepare("PRAGMA integrity_check").all(),
            [{ integrity_check: "ok" }],
            `round ${round}`,
          );
          const get = db.prepare("SELECT body FROM c WHERE id = ?");
          for (const id of acknowledged) {
            const row = get.get(id);
            assert.ok(row !== undefined, `round ${round} (seed ${SEED}): acknowledged row ${id} is missing`);
            assert.deepEqual(row.body, body(id), `row ${id}`);
          }
          // Ids are dense: whatever was committed but not yet reported is a suffix.
          const max = Number(db.prepare("SELECT max(id) AS m FROM c").get()?.m);
          assert.equal(db.prepare("SELECT count(*) AS n FROM c").get()?.n, max);
        } finally {
          db.close();
        }
      }
    }

    it(
      "loses no acknowledged commit when the writer is SIGKILLed (5 rounds)",
      { timeout: 120_000 },
      async () => {
        await crashRounds(file("crash.db"), 5);
      },
    );

    it("recovers hot rollback journals after SIGKILL (journal_mode=DELETE, 2 rounds)", {
      timeout: 120_000,
    }, async () => {
      await crashRounds(file("crash-journal.db"), 2, "DELETE");
    });
  });
}
