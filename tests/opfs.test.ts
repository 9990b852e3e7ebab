/**
 * `storage: "opfs"`: a durable database in a browser, in the Origin Private
 * File System through a dedicated worker (storage/opfs.ts). In Chromium the
 * data outlives close and open again in the same page; names are separate
 * databases; a second opener of an open database is refused; bad names are
 * refused; `navigator.storage.persist()` is asked at open and a refusal
 * logged. Commits go to the journal (storage/opfs_journal.ts): after the
 * worker is killed without `close`, the journal's slots hold every resolved
 * commit, a reopen replays them (a torn last frame ignored) and a clean
 * close leaves the journal empty; also with a background fold under way when
 * it is killed. On a server runtime `opfs` is a RangeError that points to sqlite.
 *
 * Not tested here: surviving a page reload (the runner runs each file in one
 * page load; a reload would end the test).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { open, openShared } from "../mod.ts";
import { storeOf } from "../core/database.ts";
import { isServerRuntime } from "../runtime/detect.ts";
import { OPFS_WORKER_FILE, OpfsStore } from "../storage/opfs.ts";
import type { OpfsAnswer, OpfsMethod } from "../storage/opfs_protocol.ts";
import { PREFIX_BYTES } from "../storage/opfs_journal.ts";
import { readJournal } from "../storage/journal.ts";
import type { FieldRecord } from "../core/store.ts";
import { createLogger } from "../runtime/log.ts";

if (isServerRuntime()) {
  describe("opfs on a server runtime", () => {
    it("is refused with a RangeError that says to use sqlite", async () => {
      await assert.rejects(open({ storage: "opfs" }), {
        name: "RangeError",
        message: /opfs is a browser storage.*use sqlite/,
      });
      await assert.rejects(open({ storage: "opfs", path: "x" }), /opfs is a browser storage/);
    });
  });
} else {
  // Fresh names each run: the browser profile may keep OPFS between runs.
  const run = Math.random().toString(36).slice(2, 10);
  const used: string[] = [];
  const fresh = (label: string): string => {
    const name = `t-${run}-${label}`;
    used.push(name);
    return name;
  };

  after(async () => {
    const dir = await latticeDir();
    for (const name of used) await dir.removeEntry(name, { recursive: true }).catch(() => {});
  });

  describe("opfs in a browser", () => {
    it("keeps a put across close and open in the same page", async () => {
      const path = fresh("one");
      let db = await open({ storage: "opfs", path });
      assert.equal(db.storage, "opfs");
      await db.put("alice", { name: "Alice", age: 42 });
      await db.close();
      db = await open({ storage: "opfs", path });
      assert.deepStrictEqual(await db.get("alice"), { name: "Alice", age: 42 });
      await db.close();
    });

    it("asks navigator.storage.persist() at open, and logs a refusal", async () => {
      const lines: string[] = [];
      const logger = createLogger({ level: "warn", write: (line) => lines.push(line) });
      const store = await OpfsStore.open(fresh("persist"), { logger });
      const answer = await (navigator as unknown as { storage: { persist(): Promise<boolean> } }).storage
        .persist(); // asked again: the same answer
      assert.equal(store.persisted, answer);
      if (answer) assert.deepEqual(lines, []);
      else assert.match(lines.join("\n"), /warn storage: the browser refused persistent storage/);
      await store.close();
    });

    it("keeps 1,000 puts across close and open (durability power: each commit flushed)", async () => {
      const path = fresh("many");
      let db = await open({ storage: "opfs", path, durability: "power" });
      assert.equal((storeOf(db) as OpfsStore).info.synchronous, "full");
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 1000; i++) writes.push(db.put(`n/${String(i).padStart(4, "0")}`, { i }));
      await Promise.all(writes);
      await db.close();
      db = await open({ storage: "opfs", path });
      assert.equal(await db.countNodes(), 1000);
      for (let i = 0; i < 1000; i++) {
        assert.deepStrictEqual(await db.get(`n/${String(i).padStart(4, "0")}`), { i });
      }
      await db.close();
    });

    it("stores bytes, links and deletions", async () => {
      const path = fresh("bytes");
      let db = await open({ storage: "opfs", path });
      const raw = new Uint8Array([0, 1, 2, 254, 255]);
      await db.put("a", { raw, to: { "#": "b" }, gone: "soon", empty: new Uint8Array(0) });
      await db.put("a", { gone: null });
      await db.put("b", { name: "B" });
      await db.close();
      db = await open({ storage: "opfs", path });
      assert.deepStrictEqual(await db.get("a"), { raw, to: { "#": "b" }, empty: new Uint8Array(0) });
      assert.deepStrictEqual(await db.query({ from: "a", path: ["to"] }), [{
        soul: "b",
        data: { name: "B" },
      }]);
      await db.close();
    });

    it("is what storage auto picks for a path in a browser", async () => {
      const path = fresh("auto");
      let db = await open({ path });
      assert.equal(db.storage, "opfs");
      await db.put("a", { n: 1 });
      await db.close();
      db = await open({ path, storage: "auto" });
      assert.deepStrictEqual(await db.get("a"), { n: 1 });
      await db.close();
      const memory = await open({});
      assert.equal(memory.storage, "memory", "without a path: memory, as on a server");
      await memory.close();
      // openShared shares what auto opens: two openers of one path, one owner.
      const shared = fresh("auto-shared");
      const first = await openShared({ path: shared });
      const second = await openShared({ path: shared });
      assert.deepEqual([first.owner, second.owner], [true, false]);
      await second.put("b", { from: "second" });
      assert.deepStrictEqual(await first.get("b"), { from: "second" });
      await second.close();
      await first.close();
    });

    it("auto falls back to memory where Workers are missing, and says so: the logger and status", async () => {
      const g = globalThis as { Worker?: unknown };
      const saved = g.Worker;
      const lines: string[] = [];
      const logger = createLogger({ level: "warn", write: (line) => lines.push(line) });
      g.Worker = undefined; // as in a browser without module workers
      try {
        const db = await openShared({ path: fresh("no-workers"), logger });
        const status = await db.status();
        assert.equal(status.storage, "memory");
        assert.match(status.fallback ?? "", /no OPFS or no Workers: the database is kept in memory only/);
        assert.equal(lines.length, 1, lines.join("\n"));
        assert.match(
          lines[0],
          /warn storage: this browser has no OPFS or no Workers.*database=t-\w+-no-workers/,
        );
        await db.close();
      } finally {
        g.Worker = saved;
      }
      const db = await openShared({ path: fresh("with-workers"), logger });
      const status = await db.status();
      assert.equal(status.storage, "opfs");
      assert.equal(status.fallback, undefined);
      await db.close();
    });

    it("keeps two names as two databases", async () => {
      const one = await open({ storage: "opfs", path: fresh("left") });
      const two = await open({ storage: "opfs", path: fresh("right") });
      await one.put("x", { side: "left" });
      await two.put("x", { side: "right" });
      await two.put("y", { only: "right" });
      assert.deepStrictEqual(await one.get("x"), { side: "left" });
      assert.deepStrictEqual(await two.get("x"), { side: "right" });
      assert.equal(await one.get("y"), undefined);
      await one.close();
      await two.close();
    });

    it("refuses a second opener of an open database, and opens it once closed", async () => {
      const path = fresh("twice");
      const first = await open({ storage: "opfs", path });
      await first.put("k", { v: 1 });
      await assert.rejects(open({ storage: "opfs", path }), /open elsewhere/);
      await first.close();
      const again = await open({ storage: "opfs", path });
      assert.deepStrictEqual(await again.get("k"), { v: 1 });
      await again.close();
    });

    it("refuses bad names", async () => {
      for (const path of ["", ".hidden", "a/b", "../up", "x".repeat(101), "sp ace"]) {
        await assert.rejects(open({ storage: "opfs", path }), RangeError, `path ${JSON.stringify(path)}`);
      }
      await assert.rejects(OpfsStore.open(7 as unknown as string), TypeError);
      await assert.rejects(
        open({ storage: "opfs", path: fresh("bad"), durability: "disk" as never }),
        RangeError,
      );
    });

    it("brings the worker's errors back by name, and goes on after a call that cannot be sent", async () => {
      const store = await OpfsStore.open(fresh("errors"));
      const bad = { soul: "s", field: "f", value: "text", stateHi: 1, stateLo: 1, actorHi: 1, actorLo: 1 };
      await assert.rejects(store.commit({ records: [bad as never] }), {
        name: "TypeError",
        message: /value must be a Uint8Array/,
      });
      await assert.rejects(store.commit({ meta: { f: (() => {}) as never } }), { name: "DataCloneError" });
      assert.equal(await store.commit({ meta: { ok: "yes" } }), 0);
      assert.equal(await store.getMeta("ok"), "yes");
      await store.close();
    });

    it("rejects calls after close, and closes idempotently", async () => {
      const store = await OpfsStore.open(fresh("closed"));
      assert.equal(store.engine, "opfs");
      assert.match(store.sqliteVersion, /^3\.\d+/);
      assert.deepStrictEqual(
        [store.durability, store.info.synchronous, store.info.journalMode, store.info.lockingMode],
        ["process", "normal", "wal", "exclusive"],
      );
      await store.close();
      await store.close();
      await assert.rejects(store.getMeta("x"), /closed/);
    });
  });

  describe("opfs journal", () => {
    it("replays the journal after its worker is killed without close; a torn last frame is ignored", async () => {
      const path = fresh("crash");
      const worker = rawWorker();
      await worker.call("open", path, "process");
      for (let i = 0; i < 50; i++) assert.equal(await worker.call("commit", { records: [record(i)] }), i + 1);
      await worker.call("commit", { meta: { mark: "before the crash" } });
      worker.kill(); // no close: what was committed is only in the journal

      // Every resolved commit is a frame in the journal, not yet folded into SQLite.
      const [slot] = (await journalSlots(path)).filter((s) => s.bytes.length > 0);
      assert.ok(slot !== undefined, "a journal slot holds the commits");
      const { frames, tornBytes } = readJournal(slot.bytes.subarray(PREFIX_BYTES));
      assert.equal(tornBytes, 0);
      assert.deepEqual(frames.map((f) => f.records.map((r) => r.soul)).flat(), souls(50));
      assert.deepEqual(frames[frames.length - 1].meta, [["mark", "before the crash"]]);
      // A frame the crash tore: its header promises more bytes than follow.
      const torn = new Uint8Array(20);
      new DataView(torn.buffer).setUint32(0, 4096, true);
      await appendTo(slot.file, torn);

      let store = await reopen(path);
      assert.equal(await store.lastSeq(), 50);
      assert.equal(await store.getMeta("mark"), "before the crash");
      for (let i = 0; i < 50; i += 7) {
        const [r] = await store.readNode(record(i).soul);
        assert.deepEqual([r.field, r.value, r.seq], ["f", record(i).value, i + 1]);
      }
      assert.equal(await store.commit({ records: [record(50)] }), 51, "writes go on after the torn frame");
      await store.close();
      assert.deepEqual((await journalSlots(path)).map((s) => s.bytes.length).filter((n) => n > 0), []);
      store = await OpfsStore.open(path);
      assert.equal(await store.lastSeq(), 51);
      assert.equal((await store.readNode(record(50).soul)).length, 1);
      await store.close();
    });

    it("keeps every resolved commit when killed while a fold runs", async () => {
      const path = fresh("crash-fold");
      const worker = rawWorker();
      await worker.call("open", path, "process");
      const batches = 20, size = 1_000; // past the 16k records that start a background fold
      for (let b = 0; b < batches; b++) {
        const records: FieldRecord[] = [];
        for (let i = b * size; i < (b + 1) * size; i++) records.push(record(i));
        assert.equal(await worker.call("commit", { records }), (b + 1) * size);
      }
      worker.kill();
      const store = await reopen(path);
      assert.equal(await store.lastSeq(), batches * size);
      assert.equal(await store.countLive(), batches * size);
      for (let i = 0; i < batches * size; i += 997) {
        const [r] = await store.readNode(record(i).soul);
        assert.deepEqual([r.value, r.seq], [record(i).value, i + 1]);
      }
      await store.close();
    });
  });
}

const utf8 = new TextEncoder();

/** Record `i` (the raw records the worker stores; the Database is not involved). */
function record(i: number): FieldRecord {
  return {
    soul: `s/${String(i).padStart(6, "0")}`,
    field: "f",
    value: utf8.encode(`value ${i}`),
    stateHi: 0,
    stateLo: i + 1,
    actorHi: 0,
    actorLo: 7,
  };
}

function souls(n: number): string[] {
  return Array.from({ length: n }, (_, i) => record(i).soul);
}

interface FileHandle {
  readonly kind: "file";
  readonly name: string;
  getFile(): Promise<Blob>;
  createWritable(o: { keepExistingData: boolean }): Promise<{
    seek(at: number): Promise<void>;
    write(b: Uint8Array): Promise<void>;
    close(): Promise<void>;
  }>;
}
interface Dir {
  readonly kind: "directory";
  getDirectoryHandle(name: string, options?: { create: boolean }): Promise<Dir>;
  removeEntry(name: string, options: { recursive: boolean }): Promise<void>;
  values(): AsyncIterable<FileHandle | Dir>;
}

async function latticeDir(): Promise<Dir> {
  const storage = (navigator as unknown as { storage: { getDirectory(): Promise<Dir> } }).storage;
  return await (await storage.getDirectory()).getDirectoryHandle(".lattice", { create: true });
}

/** The journal slots of database `path` and their bytes, read once no worker holds them. */
async function journalSlots(path: string): Promise<{ file: FileHandle; bytes: Uint8Array }[]> {
  const dir = await (await (await latticeDir()).getDirectoryHandle(path)).getDirectoryHandle("journal");
  const out: { file: FileHandle; bytes: Uint8Array }[] = [];
  for await (const entry of dir.values()) {
    if (entry.kind !== "file") continue;
    for (let tries = 0;; tries++) {
      try { // refused while a worker holds the file's sync access handle
        out.push({ file: entry, bytes: new Uint8Array(await (await entry.getFile()).arrayBuffer()) });
        break;
      } catch (e) {
        if (tries >= 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  return out;
}

async function appendTo(file: FileHandle, bytes: Uint8Array): Promise<void> {
  const size = (await file.getFile()).size;
  const w = await file.createWritable({ keepExistingData: true });
  await w.seek(size);
  await w.write(bytes);
  await w.close();
}

/** A worker of our own, spoken to in its protocol (storage/opfs_protocol.ts), that a test can kill. */
function rawWorker(): { call(method: OpfsMethod, ...args: unknown[]): Promise<unknown>; kill(): void } {
  const url = new URL(`${OPFS_WORKER_FILE}?opfs-disable&opfs-wl-disable`, import.meta.url);
  const worker = new Worker(url, { type: "module" });
  const pending = new Map<number, (a: OpfsAnswer) => void>();
  let next = 1;
  worker.onmessage = (e: MessageEvent<OpfsAnswer>) => pending.get(e.data.id)?.(e.data);
  return {
    call: (method, ...args) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(
          id,
          (a) => a.error === undefined ? resolve(a.value) : reject(new Error(a.error.message)),
        );
        worker.postMessage({ id, method, args });
      }),
    kill: () => worker.terminate(),
  };
}

/** Opens `path` once the killed worker's handles are let go of (the browser does it soon after). */
async function reopen(path: string): Promise<OpfsStore> {
  for (let tries = 0;; tries++) {
    try {
      return await OpfsStore.open(path);
    } catch (e) {
      if (tries >= 100 || !/open elsewhere/.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
