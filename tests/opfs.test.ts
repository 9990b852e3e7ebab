/**
 * `storage: "opfs"`: a durable database in a browser, in the Origin Private
 * File System through a dedicated worker (storage/opfs.ts). In Chromium the
 * data outlives close and open again in the same page; names are separate
 * databases; a second opener of an open database is refused; bad names are
 * refused; `navigator.storage.persist()` is asked at open and a refusal
 * logged. On a server runtime `opfs` is a RangeError that points to sqlite.
 *
 * Not tested here: surviving a page reload (the runner runs each file in one
 * page load; a reload would end the test).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { open, openShared } from "../mod.ts";
import { storeOf } from "../core/database.ts";
import { isServerRuntime } from "../runtime/detect.ts";
import { OpfsStore } from "../storage/opfs.ts";
import { createLogger } from "../net/log.ts";

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
    interface Dir {
      getDirectoryHandle(name: string, options: { create: boolean }): Promise<Dir>;
      removeEntry(name: string, options: { recursive: boolean }): Promise<void>;
    }
    const storage = (navigator as unknown as { storage: { getDirectory(): Promise<Dir> } }).storage;
    const dir = await (await storage.getDirectory()).getDirectoryHandle(".lattice", { create: true });
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
}
