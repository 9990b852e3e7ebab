// @server-only: files, locks and child processes
/**
 * What only the SQLite engine has: the directory lock (same process, child
 * processes, stale locks of dead, rebooted-away or foreign holders), the
 * schema marks and version checks, pragmas, and opening through
 * `openStore`/`open`. The engine's Store behaviour is in store.test.ts.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { open } from "../mod.ts";
import { runtimeName } from "../runtime/detect.ts";
import { DirectoryLock, LockedError, type LockHolder } from "../storage/lock.ts";
import { openStore } from "../storage/open.ts";
import { DB_FILE, PAGE_BYTES, SCHEMA_VERSION, SqliteStore } from "../storage/sqlite.ts";
import type { SqlDriver } from "../storage/sqlite_driver.ts";
import type { FieldRecord, StoredRecord } from "../core/store.ts";
import type { Value } from "../core/value.ts";
import { encodeValue, nodeData } from "../core/value_encoding.ts";
import { encodeBody } from "../storage/node_body.ts";
import { compareCodePoints } from "../core/order.ts";
import { childCommand } from "./_crash_child.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-sqlite-test-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `d${++dirs}`);
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Runs the child script; resolves with its stdout lines once it printed `until` (then kills it) or exited. */
function runChild(
  args: string[],
  until?: string,
): Promise<{ lines: string[]; kill: () => Promise<void>; pid: number }> {
  const [cmd, argv] = childCommand(args);
  const child = spawn(cmd, argv, { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  let out = "", err = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => err += d);
  const kill = async () => {
    child.kill("SIGKILL");
    await closed;
  };
  return new Promise((resolve, reject) => {
    const done = () => resolve({ lines: out.split("\n").filter((l) => l !== ""), kill, pid: child.pid! });
    child.stdout!.on("data", (d: string) => {
      out += d;
      if (until !== undefined && out.split("\n").includes(until)) done();
    });
    child.on("error", reject);
    closed.then(() =>
      until === undefined ? done() : reject(new Error(`child ended before "${until}": ${err}`))
    );
  });
}

function writeLock(dir: string, holder: Partial<LockHolder>): void {
  fs.mkdirSync(dir, { recursive: true });
  const full = {
    pid: process.pid,
    host: os.hostname(),
    command: "test",
    since: new Date().toISOString(),
    ...holder,
  };
  fs.writeFileSync(path.join(dir, "LOCK"), JSON.stringify(full));
}

const readLock = (dir: string): LockHolder => JSON.parse(fs.readFileSync(path.join(dir, "LOCK"), "utf8"));

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["--version"], { stdio: "ignore" });
  await new Promise((resolve) => child.on("close", resolve));
  return child.pid!;
}

/**
 * A zombie: a child of `stateHi` that has exited while its parent (which became `sleep 5` by exec) does
 * not reap it. Resolves once /proc shows it in state Z; `stop` kills the parent (init then reaps it).
 */
async function zombie(): Promise<{ pid: number; stop: () => Promise<void> }> {
  const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 5"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const closed = new Promise((resolve) => parent.on("close", resolve));
  const stop = async () => {
    parent.kill("SIGKILL");
    await closed;
  };
  const pid = await new Promise<number>((resolve, reject) => {
    let out = "";
    parent.stdout!.setEncoding("utf8");
    parent.stdout!.on("data", (d: string) => {
      out += d;
      if (out.includes("\n")) resolve(Number(out.trim()));
    });
    parent.on("error", reject);
  });
  const state = () => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.charAt(stat.lastIndexOf(")") + 2);
  };
  for (let i = 0; i < 200 && state() !== "Z"; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(state(), "Z", `process ${pid} became a zombie`);
  return { pid, stop };
}

async function rawDriver(file: string): Promise<SqlDriver> {
  if (runtimeName() === "bun") return await (await import("../storage/sqlite_bun.ts")).openBunSqlite(file);
  return await (await import("../storage/sqlite_node.ts")).openNodeSqlite(file);
}

describe("directory lock", () => {
  it("a second open in the same process gets LockedError naming the holder", async () => {
    const dir = freshDir();
    const store = await SqliteStore.open(dir, { lockCommand: "lattice serve" });
    const lock = readLock(dir);
    assert.equal(lock.pid, process.pid);
    assert.equal(lock.host, os.hostname());
    assert.equal(lock.command, "lattice serve");
    assert.match(lock.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    for (
      const attempt of [
        () => SqliteStore.open(dir),
        () => open({ path: dir }),
        () => DirectoryLock.acquire(dir),
      ]
    ) {
      const e = await attempt().then(() => assert.fail("opened twice"), (e: unknown) => e as LockedError);
      assert.ok(e instanceof LockedError);
      assert.equal(e.name, "LockedError");
      assert.equal(
        e.message,
        `Database directory ${dir} is in use by process ${process.pid} (lattice serve, since ${lock.since})`,
      );
      assert.deepEqual(e.holder, lock);
      assert.equal(e.dir, dir);
    }
    await store.close();
    assert.equal(fs.existsSync(path.join(dir, "LOCK")), false, "close removes the LOCK file");
    const again = await SqliteStore.open(dir);
    await again.close();
  });

  it("a child process gets LockedError naming this process", async () => {
    const dir = freshDir();
    const db = await open({ path: dir });
    try {
      const { lines } = await runChild(["probe", dir]);
      const got = JSON.parse(lines[lines.length - 1]);
      assert.equal(got.name, "LockedError");
      assert.equal(got.holder.pid, process.pid);
      assert.match(
        got.message,
        new RegExp(`^Database directory .* is in use by process ${process.pid} \\(.*, since `),
      );
    } finally {
      await db.close();
    }
    const { lines } = await runChild(["probe", dir]);
    assert.deepEqual(JSON.parse(lines[lines.length - 1]), { ok: true });
  });

  it("a live child's lock is refused; once the child is killed it is taken over", async () => {
    const dir = freshDir();
    const child = await runChild(["hold", dir], "ready");
    try {
      const e = await SqliteStore.open(dir).then(
        () => assert.fail("opened a held directory"),
        (e) => e as LockedError,
      );
      assert.equal(e.name, "LockedError");
      assert.equal(e.holder.pid, child.pid);
      assert.match(e.holder.command, /_crash_child\.ts hold /);
      assert.match(e.message, new RegExp(`in use by process ${child.pid} \\(_crash_child\\.ts hold `));
    } finally {
      await child.kill();
    }
    const db = await open({ path: dir }); // SIGKILL left the LOCK behind: stale now
    assert.equal(readLock(dir).pid, process.pid);
    await db.close();
  });

  it("takes over stale locks: dead pid, before boot, our own pid from a previous process, unreadable", async () => {
    const cases: [string, Partial<LockHolder> | string][] = [
      ["dead pid", { pid: await deadPid() }],
      ["taken before this host booted", { pid: 1, since: "2000-01-01T00:00:00Z" }],
      ["this pid, not held by this process", { pid: process.pid }],
      ["empty file", ""],
      ["not JSON", "{garbage"],
    ];
    for (const [what, content] of cases) {
      const dir = freshDir();
      if (typeof content === "string") {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, "LOCK"), content);
      } else {
        writeLock(dir, content);
      }
      const store = await SqliteStore.open(dir).catch((e) => assert.fail(`${what}: ${e}`));
      assert.equal(readLock(dir).pid, process.pid, what);
      assert.deepEqual(
        fs.readdirSync(dir).filter((f) => f.startsWith("LOCK")),
        ["LOCK"],
        `${what}: no leftovers`,
      );
      await store.close();
    }
  });

  it("takes over a lock whose holder is a zombie (exited, not yet reaped), as right after a SIGKILL", async () => {
    const z = await zombie();
    try {
      process.kill(z.pid, 0); // kill(pid, 0) still finds it: it must not count as running
      const dir = freshDir();
      writeLock(dir, { pid: z.pid, command: "lattice serve" });
      const store = await SqliteStore.open(dir).catch((e) => assert.fail(`zombie holder: ${e}`));
      assert.equal(readLock(dir).pid, process.pid);
      await store.close();
    } finally {
      await z.stop();
    }
  });

  it("never takes over a live process's lock or one from another host", async () => {
    const since = "2099-01-01T00:00:00Z";
    const dir = freshDir();
    writeLock(dir, { pid: process.ppid > 1 ? process.ppid : 1, command: "lattice serve", since });
    await assert.rejects(SqliteStore.open(dir), { name: "LockedError" });
    const other = freshDir();
    writeLock(other, { pid: await deadPid(), host: "elsewhere.example", command: "lattice serve", since });
    await assert.rejects(SqliteStore.open(other), (e: LockedError) => {
      assert.equal(e.name, "LockedError");
      assert.match(e.message, /in use by process \d+ on host elsewhere\.example \(lattice serve, since 2099/);
      return true;
    });
    assert.equal(readLock(other).host, "elsewhere.example", "left in place");
  });

  it("only one of many concurrent opens wins", async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    writeLock(dir, { pid: await deadPid() });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => DirectoryLock.acquire(dir)));
    const won = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<DirectoryLock>[];
    assert.equal(won.length, 1);
    for (const r of results) if (r.status === "rejected") assert.equal(r.reason.name, "LockedError");
    won[0].value.release();
    won[0].value.release(); // idempotent
    assert.equal(fs.existsSync(path.join(dir, "LOCK")), false);
  });
});

describe("sqlite engine", () => {
  it("creates missing directories and marks the file as Lattice's, at the current schema version", async () => {
    const dir = path.join(freshDir(), "a", "b");
    const store = await SqliteStore.open(dir);
    const info = await store.info();
    assert.equal(info.schemaVersion, SCHEMA_VERSION);
    assert.equal(info.journalMode, "wal");
    assert.equal(info.synchronous, "normal");
    assert.equal(info.lockingMode, "exclusive");
    assert.equal(info.pageSize, PAGE_BYTES, "a new file takes Lattice's page size");
    assert.equal(store.durability, "process");
    assert.deepEqual(await store.integrityCheck(), ["ok"]);
    await store.close();
    const raw = await rawDriver(path.join(dir, DB_FILE));
    try {
      assert.equal(raw.prepare("PRAGMA user_version").get()?.user_version, SCHEMA_VERSION);
      assert.equal(raw.prepare("PRAGMA application_id").get()?.application_id, 0x4c746331);
      // (PRAGMA optimize on close may add SQLite's own statistics tables, sqlite_stat*.)
      const tables = raw.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%' ORDER BY name",
      ).all();
      assert.deepEqual(tables.map((t) => t.name), ["deferred", "meta", "nodes", "sqlite_sequence"]);
      // A new file keeps its count of live nodes from the start.
      assert.equal(raw.prepare("SELECT value FROM meta WHERE key = 'nodes.live'").get()?.value, "0 0");
    } finally {
      raw.close();
    }
  });

  it("a file made with another page size keeps it, and takes writes large and small", async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { recursive: true });
    const raw = await rawDriver(path.join(dir, DB_FILE));
    raw.exec("PRAGMA page_size = 4096; VACUUM");
    raw.close();
    const rec = (soul: string, field: string, v: number): FieldRecord => ({
      soul,
      field,
      value: encodeValue(v),
      stateHi: 1,
      stateLo: v,
      actorHi: 0,
      actorLo: 7,
    });
    const store = await SqliteStore.open(dir);
    try {
      assert.equal((await store.info()).pageSize, 4096);
      const big = Array.from({ length: 20_000 }, (_, i) => rec(`p${i >> 3}`, `f${i & 7}`, i));
      assert.equal(await store.commit({ records: big }), big.length);
      await store.commit({ records: [rec("p0", "f0", 7)] });
      await store.flush();
      assert.deepEqual(
        (await store.readNode("p2499")).map((r) => r.field),
        Array.from({ length: 8 }, (_, k) => `f${k}`),
      );
      assert.equal((await store.readNode("p0"))[0].seq, big.length + 1);
      assert.deepEqual(await store.integrityCheck(), ["ok"]);
    } finally {
      await store.close();
    }
  });

  it("durability power runs synchronous=FULL", async () => {
    const dir = freshDir();
    const store = await SqliteStore.open(dir, { durability: "power" });
    assert.equal((await store.info()).synchronous, "full");
    await store.commit({ meta: { a: "b" } });
    await store.close();
    await assert.rejects(SqliteStore.open(dir, { durability: "disk" as "power" }), RangeError);
    await assert.rejects(SqliteStore.open(dir, { driver: "fast" as "native" }), RangeError);
    await assert.rejects(SqliteStore.open(""), TypeError);
  });

  it("refuses files that are not Lattice databases, or are newer, and leaves them unlocked", async () => {
    const foreign = freshDir();
    fs.mkdirSync(foreign);
    let raw = await rawDriver(path.join(foreign, DB_FILE));
    raw.exec("CREATE TABLE photos (id INTEGER PRIMARY KEY)");
    raw.close();
    for (let i = 0; i < 2; i++) {
      await assert.rejects(SqliteStore.open(foreign), /is not a Lattice database/);
    }
    assert.equal(fs.existsSync(path.join(foreign, "LOCK")), false);

    const newer = freshDir();
    await (await SqliteStore.open(newer)).close();
    raw = await rawDriver(path.join(newer, DB_FILE));
    raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    await assert.rejects(
      SqliteStore.open(newer),
      new RegExp(`schema version ${SCHEMA_VERSION + 1}, written by a newer Lattice`),
    );
    assert.equal(fs.existsSync(path.join(newer, "LOCK")), false);
  });

  it("converts a version 1 file (one row per field) to the current version, keeping every record", async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    // Version 1 as Lattice 0.1 wrote it: its schema, verbatim.
    const raw = await rawDriver(path.join(dir, DB_FILE));
    raw.exec(`CREATE TABLE fields (
        soul TEXT NOT NULL, field TEXT NOT NULL, value BLOB NOT NULL,
        stateHi INTEGER NOT NULL, stateLo INTEGER NOT NULL, actorHi INTEGER NOT NULL, actorLo INTEGER NOT NULL,
        sig BLOB, seq INTEGER NOT NULL, PRIMARY KEY (soul, field)
      ) WITHOUT ROWID;
      CREATE UNIQUE INDEX fields_seq ON fields (seq);
      CREATE TABLE deferred (id INTEGER PRIMARY KEY AUTOINCREMENT, due INTEGER NOT NULL, op BLOB NOT NULL);
      CREATE INDEX deferred_due ON deferred (due, id);
      CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
      PRAGMA application_id = ${0x4c746331}; PRAGMA user_version = 1;`);
    const insert = raw.prepare("INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const want: StoredRecord[] = [];
    let seq = 0;
    raw.exec("BEGIN");
    // 12,345 rows (past the converter's page of 10,000 rows, a node split across pages),
    // unicode and U+0000 in keys, signatures, tombstones.
    for (let n = 0; n < 4115; n++) {
      const soul = n === 7 ? "nul\u0000soul" : n === 8 ? "ünï/😀" : `node/${n}`;
      for (const field of n === 9 ? ["a\u0000b", "ß"] : ["a", "b", "c"]) {
        const r: StoredRecord = {
          soul,
          field,
          value: new Uint8Array(n % 5 === 0 ? [0xc0] : [1, n & 255, 2]),
          stateHi: n,
          stateLo: 7,
          actorHi: 1,
          actorLo: 2,
          ...(n % 3 === 0 ? { sig: new Uint8Array([9, n & 255]) } : {}),
          seq: ++seq,
        };
        insert.run(
          r.soul,
          r.field,
          r.value,
          r.stateHi,
          r.stateLo,
          r.actorHi,
          r.actorLo,
          r.sig ?? null,
          r.seq,
        );
        want.push(r);
      }
    }
    raw.exec("COMMIT");
    raw.prepare("INSERT INTO meta VALUES ('actor', '00000000000000ab')").run();
    raw.prepare("INSERT INTO deferred (due, op) VALUES (5, x'01')").run();
    raw.close();

    const store = await SqliteStore.open(dir);
    try {
      assert.equal((await store.info()).schemaVersion, SCHEMA_VERSION); // through 2 to the current one
      assert.equal(await store.lastSeq(), seq);
      assert.equal(await store.getMeta("actor"), "00000000000000ab");
      assert.equal((await store.deferred()).length, 1);
      const nodes = Map.groupBy(want, (r) => r.soul);
      // Listed: the nodes with a live field (every fifth node has only tombstones).
      const listed = (rs: StoredRecord[]) => rs.some((r) => r.value[0] !== 0xc0);
      assert.deepEqual(
        await store.list({ limit: Infinity }),
        [...nodes.keys()].filter((soul) => listed(nodes.get(soul)!)).sort(compareCodePoints),
      );
      const plainRecords = (rs: StoredRecord[]) =>
        rs.map((r) => ({ ...r, value: [...r.value], sig: r.sig && [...r.sig] }));
      for (const [soul, records] of nodes) {
        assert.deepEqual(
          plainRecords(await store.readNode(soul)),
          plainRecords(records.sort((a, b) => (a.field < b.field ? -1 : 1))),
          soul,
        );
      }
      assert.deepEqual(await store.integrityCheck(), ["ok"]);
      // The count of live nodes is not in a version 1 file: counted once (every node whose fields are
      // all tombstones left out), then kept.
      assert.equal(await store.getMeta("nodes.live"), undefined);
      const liveNodes = [...nodes.values()].filter((rs) => rs.some((r) => r.value[0] !== 0xc0)).length;
      assert.equal(liveNodes, 4115 - 823);
      assert.equal(await store.countLive(), liveNodes);
      assert.equal(
        await store.getMeta("nodes.live"),
        `${liveNodes} ${seq}`,
        "the count, and the seq it counted to",
      );
      const tombstone = (r: StoredRecord) => ({
        ...r,
        value: new Uint8Array([0xc0]),
        sig: undefined,
        seq: undefined,
      });
      await store.commit({ records: nodes.get("node/1")!.map(tombstone) as never });
      assert.equal(await store.countLive(), liveNodes - 1);
      // Writing on goes on from the old seqs.
      assert.equal(await store.commit({ records: [{ ...want[0], seq: undefined } as never] }), seq + 4);
    } finally {
      await store.close();
    }
    const check = await rawDriver(path.join(dir, DB_FILE));
    try {
      const tables = check.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%' ORDER BY name",
      ).all();
      assert.deepEqual(tables.map((t) => t.name), ["deferred", "meta", "nodes", "sqlite_sequence"]);
      // A kept count that is not a count (a file edited by hand, say) is counted again.
      check.prepare("UPDATE meta SET value = 'many' WHERE key = 'nodes.live'").run();
    } finally {
      check.close();
    }
    const again = await SqliteStore.open(dir);
    try {
      assert.equal(await again.countLive(), 4115 - 823 - 1);
      assert.equal(await again.getMeta("nodes.live"), `${4115 - 823 - 1} ${seq + 4}`);
    } finally {
      await again.close();
    }
    // A node written by a version that keeps no count (a seq past the one the count is good to):
    // counted again.
    const older = await rawDriver(path.join(dir, DB_FILE));
    try {
      const body = encodeBody([
        {
          soul: "older",
          field: "a",
          value: new Uint8Array([1]),
          stateHi: 1,
          stateLo: 1,
          actorHi: 1,
          actorLo: 1,
          seq: seq + 10,
        },
      ]);
      older.prepare("INSERT INTO nodes (soul, body, seq) VALUES (?1, ?2, ?3)").run("older", body, seq + 10);
    } finally {
      older.close();
    }
    const third = await SqliteStore.open(dir);
    try {
      assert.equal(await third.countLive(), 4115 - 823);
    } finally {
      await third.close();
    }
  });

  it("converts a version 2 file: deferred ops get a source ('' for those there) and an index on it", async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    // Version 2 as Lattice wrote it before deferred ops had a source: its schema, verbatim.
    const raw = await rawDriver(path.join(dir, DB_FILE));
    raw.exec(
      `CREATE TABLE nodes (soul TEXT PRIMARY KEY NOT NULL, body BLOB NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE UNIQUE INDEX nodes_seq ON nodes (seq);
      CREATE TABLE deferred (id INTEGER PRIMARY KEY AUTOINCREMENT, due INTEGER NOT NULL, op BLOB NOT NULL);
      CREATE INDEX deferred_due ON deferred (due, id);
      CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO meta (key, value) VALUES ('nodes.live', '0 0');
      PRAGMA application_id = ${0x4c746331}; PRAGMA user_version = 2;`,
    );
    const node: StoredRecord = {
      soul: "n",
      field: "a",
      value: encodeValue(1),
      stateHi: 3,
      stateLo: 0,
      actorHi: 1,
      actorLo: 2,
      seq: 1,
    };
    raw.prepare("INSERT INTO nodes VALUES (?, ?, ?)").run("n", encodeBody([node]), 1);
    for (let i = 0; i < 3; i++) {
      raw.prepare("INSERT INTO deferred (due, op) VALUES (?, ?)").run(100 - i, new Uint8Array([i]));
    }
    raw.close();

    const store = await SqliteStore.open(dir);
    try {
      assert.equal((await store.info()).schemaVersion, SCHEMA_VERSION);
      assert.equal(SCHEMA_VERSION, 3);
      assert.deepEqual(nodeData(await store.readNode("n")), { a: 1 });
      const all = await store.deferred();
      assert.deepEqual(all.map((d) => [d.due, d.op[0], d.source]), [[98, 2, ""], [99, 1, ""], [100, 0, ""]]);
      assert.equal(await store.deferredCount(""), 3);
      await store.commit({ defer: [{ due: 5, op: new Uint8Array([7]), source: "peer" }] });
      assert.deepEqual((await store.deferredDue(99, 10)).map((d) => d.source), ["peer", "", ""]);
    } finally {
      await store.close();
    }
    const check = await rawDriver(path.join(dir, DB_FILE));
    try {
      const indexes = check.prepare("PRAGMA index_list(deferred)").all().map((r) => r.name).sort();
      assert.deepEqual(indexes, ["deferred_due", "deferred_source"]);
    } finally {
      check.close();
    }
  });

  it("converts a version 2 file (no live column) to the current version: list skips deleted nodes", async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    // Version 2 as Lattice wrote it before the index of live souls: its schema, verbatim.
    const raw = await rawDriver(path.join(dir, DB_FILE));
    raw.exec(
      `CREATE TABLE nodes (soul TEXT PRIMARY KEY NOT NULL, body BLOB NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE UNIQUE INDEX nodes_seq ON nodes (seq);
      CREATE TABLE deferred (id INTEGER PRIMARY KEY AUTOINCREMENT, due INTEGER NOT NULL, op BLOB NOT NULL);
      CREATE INDEX deferred_due ON deferred (due, id);
      CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
      PRAGMA application_id = ${0x4c746331}; PRAGMA user_version = 2;`,
    );
    const insert = raw.prepare("INSERT INTO nodes (soul, body, seq) VALUES (?1, ?2, ?3)");
    const value = (live: boolean) => new Uint8Array(live ? [1] : [0xc0]);
    let seq = 0;
    const live: string[] = [];
    raw.exec("BEGIN");
    // 2,600 nodes (past the converter's page of 1,024), every third one live; U+0000 and unicode in souls.
    for (let n = 0; n < 2600; n++) {
      const soul = n === 7 ? "nul\u0000dead" : n === 9 ? "nul\u0000live" : n === 12 ? "ünï/😀" : `node/${n}`;
      const isLive = n === 9 || (n !== 7 && n % 3 === 0);
      const fields = ["a", "b"].map((field, k) => ({
        soul,
        field,
        value: value(isLive && k === 1),
        stateHi: 1,
        stateLo: n,
        actorHi: 0,
        actorLo: 1,
        seq: ++seq,
      }));
      insert.run(soul, encodeBody(fields), seq);
      if (isLive) live.push(soul);
    }
    raw.exec("COMMIT");
    raw.prepare("INSERT INTO meta VALUES ('nodes.live', ?1)").run(`${live.length} ${seq}`);
    raw.close();
    live.sort(compareCodePoints);

    const store = await SqliteStore.open(dir);
    try {
      assert.equal((await store.info()).schemaVersion, SCHEMA_VERSION);
      assert.deepEqual(await store.list({ limit: Infinity }), live);
      assert.deepEqual(await store.list({ prefix: "nul", limit: 5 }), ["nul\u0000live"]);
      assert.equal(await store.countLive(), live.length);
      assert.equal((await store.readNode("nul\u0000dead")).length, 2, "a deleted node keeps its tombstones");
      assert.deepEqual(await store.integrityCheck(), ["ok"]);
      // Writes keep the index: the last live field of a node deleted, a deleted node revived.
      const write = (soul: string, field: string, isLive: boolean): FieldRecord => ({
        soul,
        field,
        value: value(isLive),
        stateHi: 2,
        stateLo: 0,
        actorHi: 0,
        actorLo: 1,
      });
      await store.commit({ records: [write("node/0", "b", false), write("nul\u0000dead", "c", true)] });
      await store.flush();
      const now = live.filter((s) => s !== "node/0").concat("nul\u0000dead").sort(compareCodePoints);
      assert.deepEqual(await store.list({ limit: Infinity }), now);
      assert.equal(await store.countLive(), now.length);
    } finally {
      await store.close();
    }
    const check = await rawDriver(path.join(dir, DB_FILE));
    try {
      const indexes = check.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'nodes'",
      )
        .all().map((r) => r.name).sort();
      assert.deepEqual(indexes, ["nodes_live", "nodes_seq"]);
      assert.equal(check.prepare("SELECT count(*) AS n FROM nodes WHERE live = 1").get()?.n, live.length);
    } finally {
      check.close();
    }
  });

  it("caches a node from its second read and never serves it stale, before or after a fold", async () => {
    const rec = (soul: string, field: string, v: number, sig?: Uint8Array) => ({
      soul,
      field,
      value: new Uint8Array([v, 0, 255]),
      stateHi: 1,
      stateLo: v,
      actorHi: 0,
      actorLo: 7,
      ...(sig === undefined ? {} : { sig }),
    });
    const store = await SqliteStore.open(freshDir());
    try {
      await store.commit({
        records: [rec("n", "b", 2, new Uint8Array([9, 8])), rec("n", "a", 1), rec("m", "a", 3)],
      });
      await store.flush(); // out of the journal: reads come from SQLite or the cache
      const first = await store.readNode("n");
      const second = await store.readNode("n"); // read twice: admitted now
      const third = await store.readNode("n");
      assert.deepEqual(second, first);
      assert.deepEqual(third, first);
      assert.notEqual(second[0], first[0], "the first read is not cached");
      assert.equal(third[0], second[0], "the third read comes from the cache");
      assert.deepEqual(first.map((r) => r.field), ["a", "b"]);
      assert.deepEqual(first[1].sig, new Uint8Array([9, 8]));
      third.pop(); // callers get their own array
      assert.equal((await store.readNode("n")).length, 2);
      const [a, b, none] = await store.readFields([{ soul: "n", field: "a" }, { soul: "n", field: "b" }, {
        soul: "n",
        field: "c",
      }]);
      assert.equal(a, second[0]);
      assert.equal(b, second[1]);
      assert.equal(none, undefined);
      const seq = await store.commit({ records: [rec("n", "a", 5)] });
      for (const folded of [false, true]) {
        if (folded) await store.flush(); // SQLite changes now: the fold drops the cached node
        const after = await store.readNode("n");
        assert.deepEqual(after.map((r) => [r.field, r.stateLo, r.seq]), [["a", 5, seq], ["b", 2, 1]]);
        assert.deepEqual(
          (await store.readFields([{ soul: "n", field: "a" }]))[0]?.value,
          new Uint8Array([5, 0, 255]),
        );
      }
      // A node read once (as by a scan) is not cached; with the cache off, nothing is.
      const once = await store.readNode("m");
      assert.notEqual((await store.readNode("m"))[0], once[0]);
    } finally {
      await store.close();
    }
    const off = await SqliteStore.open(freshDir(), { cacheBytes: 0 });
    try {
      await off.commit({ records: [rec("n", "a", 1)] });
      await off.flush();
      const reads = [await off.readNode("n"), await off.readNode("n"), await off.readNode("n")];
      assert.notEqual(reads[2][0], reads[1][0]);
      assert.deepEqual(reads[2], reads[0]);
    } finally {
      await off.close();
    }
  });

  it("reads node data straight from bodies as readNode would give it: journal, cache, folds, deletes", async () => {
    const rec = (soul: string, field: string, v: Value, stateLo: number): FieldRecord => ({
      soul,
      field,
      value: encodeValue(v),
      stateHi: 1,
      stateLo,
      actorHi: 0,
      actorLo: 7,
    });
    const node = (soul: string, stateLo: number) => [
      rec(soul, "a", "x", stateLo),
      rec(soul, "gone", null, stateLo),
      rec(soul, "\uFEFFé", { "#": "m" }, stateLo),
      rec(soul, "__proto__", 5, stateLo),
    ];
    for (const cacheBytes of [undefined, 0]) {
      const dir = freshDir();
      let store = await SqliteStore.open(dir, { cacheBytes });
      // readNodeData first (a read through readNode marks the node as seen), then the expectation
      const same = async (soul: string, note: string) => {
        const got = await store.readNodeData(soul);
        const expected = nodeData(await store.readNode(soul));
        assert.deepStrictEqual(got, expected, `${soul}: ${note} (cacheBytes ${cacheBytes})`);
        return got;
      };
      try {
        await store.commit({ records: [...node("j", 1), rec("dead", "a", null, 1)] });
        await same("j", "journaled");
        await store.commit({ records: [...node("n", 1), ...node("o", 1)] });
        await store.flush();
        const n = await same("n", "from SQLite");
        assert.deepStrictEqual(Object.keys(n!), ["__proto__", "a", "\uFEFFé"]);
        assert.equal(
          Object.getPrototypeOf(n),
          Object.prototype,
          "__proto__ is an own field, not the prototype",
        );
        assert.equal(await store.readNodeData("dead"), undefined, "only tombstones: no data");
        assert.equal(await store.readNodeData("none"), undefined);
        for (let i = 0; i < 3; i++) await same("n", `read ${i + 2} (cached from the second)`);
        // o is in SQLite and was never read: its newer fields are in the journal only
        await store.commit({ records: [rec("o", "a", 42, 2), rec("o", "b", true, 2)] });
        assert.equal((await same("o", "overwritten, journaled"))?.a, 42);
        await store.flush();
        await same("o", "overwritten, folded");
        await store.close();
        store = await SqliteStore.open(dir, { cacheBytes });
        assert.equal((await same("o", "reopened"))?.b, true);
      } finally {
        await store.close();
      }
    }
  });

  it("is what openStore and open() pick for a path", async () => {
    const dir = freshDir();
    const store = await openStore({ path: dir });
    assert.equal(store.engine, runtimeName() === "bun" ? "sqlite (bun:sqlite)" : "sqlite (node:sqlite)");
    assert.equal(store.durable, true);
    await store.close();
    const db = await open({ path: dir });
    await db.put("alice", { name: "Alice", pet: { name: "Rex" } });
    await db.close();
    const again = await open({ path: dir });
    assert.deepEqual(await again.get("alice"), { name: "Alice", pet: { "#": "alice/pet" } });
    assert.deepEqual(await again.get("alice/pet"), { name: "Rex" });
    await again.close();
  });
});
