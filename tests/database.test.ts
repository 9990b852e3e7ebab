/** The Database on the memory engine: graph API, watch, query, replication ops, deferral, bad input. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Change, Database, open } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import type { CommitBatch, Store } from "../core/store.ts";
import type { Op } from "../core/op.ts";
import { encodeOps } from "../core/op.ts";
import { storeOf } from "../core/database.ts";
import type { Timer, World } from "../core/world.ts";

const kernels = await selectKernels({ kernels: "auto" });

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("database", () => {
  it("puts and gets nodes, nested objects as linked children, bytes and links", async () => {
    const db = await open({ storage: "memory" });
    const res = await db.put("alice", {
      name: "Alice",
      age: 30,
      admin: false,
      photo: new Uint8Array([1, 2, 3]),
      friend: { "#": "bob" },
      pet: { name: "Rex", toy: { kind: "ball" } },
      skip: undefined,
    });
    assert.equal(res.soul, "alice");
    assert.match(res.state, /^[0-9a-f]{16}$/);
    assert.deepStrictEqual(await db.get("alice"), {
      admin: false,
      age: 30,
      friend: { "#": "bob" },
      name: "Alice",
      pet: { "#": "alice/pet" },
      photo: new Uint8Array([1, 2, 3]),
    });
    assert.deepStrictEqual(await db.get("alice/pet"), { name: "Rex", toy: { "#": "alice/pet/toy" } });
    assert.deepStrictEqual(await db.get("alice/pet/toy"), { kind: "ball" });
    assert.equal(await db.get("nobody"), undefined);
    await db.put("alice", { age: 31 });
    assert.equal((await db.get("alice"))?.age, 31, "put merges fields");
    assert.equal((await db.get("alice"))?.name, "Alice");
    await db.close();
    await assert.rejects(db.get("alice"), /closed/);
  });

  it("merges two paths to one child soul, the later value of a field winning, as flatten does", async () => {
    const db = await open({ storage: "memory" });
    await db.put("x", { "p/q": { a: 1, c: "first" }, p: { q: { b: 2, c: "second" } } });
    assert.deepStrictEqual(await db.get("x/p/q"), { a: 1, b: 2, c: "second" });
    assert.deepStrictEqual(await db.get("x"), { "p/q": { "#": "x/p/q" }, p: { "#": "x/p" } });
    assert.deepStrictEqual(await db.get("x/p"), { q: { "#": "x/p/q" } });
    await db.close();
  });

  it("deletes a field or a whole node with tombstones", async () => {
    const db = await open({ storage: "memory" });
    await db.put("n", { a: 1, b: 2 });
    await db.delete("n", "a");
    assert.deepStrictEqual(await db.get("n"), { b: 2 });
    await db.delete("n");
    assert.equal(await db.get("n"), undefined);
    const { ops } = await db.exportOps();
    assert.deepEqual(ops.filter((o) => o.soul === "n").map((o) => [o.field, o.value]), [["a", null], [
      "b",
      null,
    ]]);
    await db.put("n", { a: 3 });
    assert.deepStrictEqual(await db.get("n"), { a: 3 }, "a node can come back after delete");
    await db.close();
  });

  it("lists in soul order with prefix, limit and cursor, skipping deleted nodes", async () => {
    const db = await open({ storage: "memory" });
    for (const s of ["b/2", "a", "b/1", "c", "b/3", "ü", "😀", "\uffff"]) await db.put(s, { v: s });
    await db.delete("b/2");
    assert.deepEqual((await collect(db.list())).map((e) => e.soul), [
      "a",
      "b/1",
      "b/3",
      "c",
      "ü",
      "\uffff",
      "😀",
    ]);
    assert.deepEqual((await collect(db.list({ prefix: "b/" }))).map((e) => e.soul), ["b/1", "b/3"]);
    assert.deepEqual((await collect(db.list({ limit: 2 }))).map((e) => e.soul), ["a", "b/1"]);
    assert.deepEqual((await collect(db.list({ cursor: "b/1", limit: 2 }))).map((e) => e.soul), ["b/3", "c"]);
    assert.deepStrictEqual((await collect(db.list({ prefix: "c" })))[0], { soul: "c", data: { v: "c" } });
    assert.throws(() => db.list({ limit: -1 }), RangeError);
    await db.close();
  });

  it("watches a soul or a prefix for local and merged changes", async () => {
    const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
    const seen: Change[] = [], prefixed: Change[] = [];
    const off = b.watch("x", (c) => seen.push(c));
    b.watch({ prefix: "p/" }, (c) => prefixed.push(c));
    await b.put("x", { n: 1 });
    await a.put("x", { n: 2 });
    await a.put("p/1", { m: true });
    await b.applyOps((await a.exportOps()).ops);
    assert.deepStrictEqual(seen, [
      { soul: "x", changes: { n: 1 }, source: "local" },
      { soul: "x", changes: { n: 2 }, source: "remote" },
    ]);
    assert.deepStrictEqual(prefixed, [{ soul: "p/1", changes: { m: true }, source: "remote" }]);
    off();
    await b.put("x", { n: 3 });
    assert.equal(seen.length, 2, "unsubscribed");
    b.watch("x", () => {
      throw new Error("a broken watcher must not break writes");
    });
    await b.put("x", { n: 4 });
    assert.equal((await b.get("x"))?.n, 4);
    await a.close();
    await b.close();
  });

  it("queries by walking links with where and limit", async () => {
    const db = await open({ storage: "memory" });
    await db.put("alice", { name: "Alice", friend: { "#": "bob" }, likes: { "#": "carol" } });
    await db.put("bob", { name: "Bob", age: 25, friend: { "#": "carol" }, posts: { "#": "bob/posts" } });
    await db.put("carol", { name: "Carol", age: 35, friend: { "#": "alice" } });
    await db.put("bob/posts", { p1: { "#": "post1" }, p2: { "#": "post2" } });
    await db.put("post1", { title: "Hello", stars: 3 });
    await db.put("post2", { title: "World", stars: 9 });
    const souls = (r: { soul: string }[]) => r.map((e) => e.soul);
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["friend"] })), ["bob"]);
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["friend", "posts", "*"] })), [
      "post1",
      "post2",
    ]);
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["*"] })), ["bob", "carol"]);
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["*"], where: { age: { gt: 30 } } })), [
      "carol",
    ]);
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["*"], where: { age: { lt: 30 } } })), [
      "bob",
    ]);
    assert.deepEqual(
      souls(await db.query({ from: "alice", path: ["*"], where: { name: { prefix: "C" } } })),
      ["carol"],
    );
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["*"], where: { name: "Bob" } })), ["bob"]);
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["*"], where: { name: { eq: "Bob" } } })), [
      "bob",
    ]);
    assert.deepEqual(souls(await db.query({ from: ["bob", "carol"], path: ["friend"] })), ["carol", "alice"]);
    assert.deepEqual(souls(await db.query({ from: "alice", path: ["friend", "posts", "*"], limit: 1 })), [
      "post1",
    ]);
    assert.deepEqual(
      souls(await db.query({ from: "alice", path: ["friend", "friend", "friend", "friend"] })),
      ["bob"],
    );
    assert.deepEqual(await db.query({ from: "nobody", path: ["x"] }), []);
    await assert.rejects(db.query({ from: "" }), RangeError);
    await assert.rejects(
      db.query({ from: "a", where: { age: { near: 3 } as never } }),
      /Unknown condition "near"/,
    );
    await assert.rejects(db.query({ from: "a", limit: -2 }), RangeError);
    await assert.rejects(db.query({ from: "a", path: "friend" as never }), TypeError);
    await db.close();
  });

  it("exports ops in commit order and applies them on another replica", async () => {
    const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
    await a.put("s", { x: 1, y: 2 });
    const first = await a.exportOps();
    await a.put("s", { x: 3 });
    const next = await a.exportOps({ after: first.seq });
    assert.deepEqual(next.ops.map((o) => [o.field, o.value]), [["x", 3]]);
    assert.equal(next.ops[0].actor, a.actor);
    assert.deepEqual(await b.applyOps(first.ops), { applied: 2, ignored: 0, deferred: 0 });
    assert.deepEqual(await b.applyOps(encodeOps(next.ops)), { applied: 1, ignored: 0, deferred: 0 });
    assert.deepEqual(await b.applyOps(first.ops), { applied: 0, ignored: 2, deferred: 0 }, "stale ops lose");
    assert.deepStrictEqual(await b.get("s"), { x: 3, y: 2 });
    assert.equal(await b.stateHash(), await a.stateHash());
    await b.put("s", { x: 4 });
    await a.applyOps((await b.exportOps()).ops);
    assert.equal((await a.get("s"))?.x, 4, "a write made after seeing another wins everywhere");
    await a.close();
    await b.close();
  });

  it("reports committed records to onCommit listeners, local and remote", async () => {
    const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
    const seen: [string, string, boolean][] = [];
    const off = b.onCommit((records, local) => records.forEach((r) => seen.push([r.soul, r.field, local])));
    await b.put("mine", { x: 1 });
    await a.put("theirs", { y: 2 });
    await b.applyOps((await a.exportOps()).ops);
    await b.applyOps((await a.exportOps()).ops); // nothing new: no records
    assert.deepEqual(seen, [["mine", "x", true], ["theirs", "y", false]]);
    off();
    await b.put("mine", { x: 2 });
    assert.equal(seen.length, 2);
    await a.close();
    await b.close();
  });

  it("group-commits concurrent writers into few transactions", async () => {
    const store = new MemoryStore();
    const sizes: number[] = [];
    // The Database commits through the store's synchronous twin (see SyncStore).
    const commit = store.commitSync.bind(store);
    store.commitSync = (batch: CommitBatch) => {
      sizes.push(batch.records?.length ?? 0);
      return commit(batch);
    };
    const db = await Database.create({ store, kernels });
    sizes.length = 0;
    await Promise.all(Array.from({ length: 500 }, (_, i) => db.put(`k${i}`, { i })));
    // The first write of the turn is committed at once; the 499 after it wait and go together.
    assert.deepEqual(sizes, [1, 499]);
    assert.equal((await collect(db.list())).length, 500);
    // Each write of a writer that awaits each one is alone in its turn: committed at once.
    sizes.length = 0;
    for (let i = 0; i < 3; i++) await db.put(`s${i}`, { i });
    assert.deepEqual(sizes, [1, 1, 1]);
    // With someone watching, writes go through the queue (the watcher hears of them after the commit).
    const seen: string[] = [];
    const off = db.watch({ prefix: "w" }, (c) => seen.push(c.soul));
    sizes.length = 0;
    await Promise.all([db.put("w1", { a: 1 }), db.put("w2", { a: 2 })]);
    assert.deepEqual(sizes, [2]);
    assert.deepEqual(seen, ["w1", "w2"]);
    off();
    await db.close();
  });

  it("a write committed at once and the writes queued after it in its turn each get their own result", async () => {
    const store = new MemoryStore();
    const db = await Database.create({ store, kernels });
    const actor = "00000000000000aa";
    const op = (soul: string, field: string, value: number, ms: number): Op => ({
      soul,
      field,
      value,
      state: ms.toString(16).padStart(12, "0") + "0000",
      actor,
    });
    const ms = Date.now() - 1000;
    await db.applyOps([op("a", "v", 0, ms + 5)]);
    // In one turn: the first is committed at once (one op, lost to the stored later state), the
    // rest queued (two ops, both applied; then a local write).
    const first = db.applyOps([op("a", "v", 1, ms)]);
    const second = db.applyOps([op("b", "v", 2, ms), op("c", "v", 3, ms)]);
    const third = db.put("d", { v: 4 });
    assert.deepEqual(await first, { applied: 0, ignored: 1, deferred: 0 });
    assert.deepEqual(await second, { applied: 2, ignored: 0, deferred: 0 });
    const local = await third;
    assert.equal(typeof local.state, "string");
    assert.deepEqual(await db.get("d"), { v: 4 });
    // A write committed at once that fails rejects alone; the queued write after it commits.
    const commit = store.commitSync.bind(store);
    let fail = true;
    store.commitSync = (batch: CommitBatch) => {
      if (fail) {
        fail = false;
        throw new Error("disk full");
      }
      return commit(batch);
    };
    const failed = db.applyOps([op("e", "v", 5, ms)]);
    const after = db.applyOps([op("f", "v", 6, ms)]);
    await assert.rejects(failed, /disk full/);
    assert.deepEqual(await after, { applied: 1, ignored: 0, deferred: 0 });
    assert.equal(await db.get("e"), undefined);
    assert.deepEqual(await db.get("f"), { v: 6 });
    // The next turn's first write is committed at once again, with its own result.
    assert.deepEqual(await db.applyOps([op("g", "v", 7, ms)]), { applied: 1, ignored: 0, deferred: 0 });
    await db.close();
  });

  it("a failed commit rejects the writes and stores nothing", async () => {
    const store = new MemoryStore();
    const db = await Database.create({ store, kernels });
    // The Database commits through the store's synchronous twin (see SyncStore).
    const commit = store.commitSync.bind(store);
    store.commitSync = () => {
      throw new Error("disk full");
    };
    await assert.rejects(db.put("x", { a: 1 }), /disk full/);
    store.commitSync = commit;
    assert.equal(await db.get("x"), undefined);
    await db.put("x", { a: 2 });
    assert.deepStrictEqual(await db.get("x"), { a: 2 });
    await db.close();
  });

  it("a foreign batch with a field twice in one node is merged whole: the later state wins, once", async () => {
    const at = (ms: number) => ms.toString(16).padStart(12, "0") + "0000";
    const ms = Date.now() - 10_000;
    const op = (field: string, value: number, t: number): Op => ({
      soul: "n",
      field,
      value,
      state: at(t),
      actor: "00000000000000aa",
    });
    // The twice-written field next to itself in ascending order, apart, and out of order.
    const batches: Op[][] = [
      [op("a", 1, ms), op("b", 2, ms + 2), op("b", 3, ms + 1), op("c", 4, ms)],
      [op("a", 1, ms), op("b", 3, ms + 1), op("c", 4, ms), op("b", 2, ms + 2)],
      [op("c", 4, ms), op("b", 2, ms + 2), op("a", 1, ms), op("b", 3, ms + 1)],
    ];
    for (const batch of batches) {
      const db = await open({ storage: "memory" });
      try {
        assert.deepEqual(await db.applyOps(batch), { applied: 3, ignored: 1, deferred: 0 });
        assert.deepEqual(await db.get("n"), { a: 1, b: 2, c: 4 });
      } finally {
        await db.close();
      }
    }
  });

  it("countNodes counts what list yields: deleted nodes left out, with or without the store's count", async () => {
    // (The SQLite engine's kept count: tests/store.test.ts and the crash test.)
    const noCount = new MemoryStore();
    (noCount as { countLive?: unknown }).countLive = undefined; // an engine that offers no count
    const dbs = [await open({ storage: "memory" }), await Database.create({ store: noCount, kernels })];
    try {
      for (const db of dbs) {
        const listed = async () => {
          let n = 0;
          for await (const _ of db.list()) n++;
          return n;
        };
        assert.equal(await db.countNodes(), 0);
        await Promise.all(Array.from({ length: 30 }, (_, i) => db.put(`n${i}`, { a: i, b: "x" })));
        await db.put("nested", { child: { x: 1 } }); // two nodes: nested and nested/child
        assert.equal(await db.countNodes(), 32, db.storage);
        await db.delete("n3"); // every field: the node is gone
        await db.delete("n4", "a"); // one field of two: the node stays
        await db.put("n3", {}); // nothing live written: still gone
        await db.applyOps([
          {
            soul: "foreign",
            field: "f",
            value: 1,
            state: "000000000001" + "0000",
            actor: "00000000000000aa",
          },
        ]);
        assert.equal(await db.countNodes(), await listed(), db.storage);
        assert.equal(await db.countNodes(), 32, db.storage);
      }
    } finally {
      for (const db of dbs) await db.close();
    }
  });

  it("idle() resolves once every queued write has committed", async () => {
    const db = await open({ storage: "memory" });
    const before = await db.lastSeq();
    const writes = Array.from({ length: 50 }, (_, i) => db.put(`n${i}`, { i }));
    await db.idle();
    assert.equal(await db.lastSeq(), before + 50, "all 50 committed when idle() resolves");
    await Promise.all(writes);
    await db.idle(); // nothing queued: resolves at once
    await db.close();
  });

  it("works the same over a store without synchronous twins (every call awaited)", async () => {
    const inner = new MemoryStore();
    let failing = false;
    // Only the asynchronous Store methods: the Database takes its awaiting path.
    const store: Store = {
      engine: "async memory",
      durable: false,
      readNode: (soul) => inner.readNode(soul),
      readFields: (keys) => inner.readFields(keys),
      commit: (batch) => failing ? Promise.reject(new Error("disk full")) : inner.commit(batch),
      list: (o) => inner.list(o),
      changes: (after, o) => inner.changes(after, o),
      lastSeq: () => inner.lastSeq(),
      deferred: () => inner.deferred(),
      getMeta: (key) => inner.getMeta(key),
      close: () => inner.close(),
    };
    const db = await Database.create({ store, kernels });
    const other = await open({ storage: "memory" });
    await Promise.all([db.put("a", { x: 1 }), db.put("a", { y: 2 }), db.put("b", { z: 3 })]);
    await other.applyOps((await db.exportOps()).ops); // other's clock passes db's
    await other.put("a", { x: 9 });
    const ops = (await other.exportOps()).ops.filter((op) => op.soul === "a" && op.field === "x");
    assert.deepEqual(await db.applyOps(ops), { applied: 1, ignored: 0, deferred: 0 });
    assert.deepEqual(await db.applyOps(ops), { applied: 0, ignored: 1, deferred: 0 });
    assert.deepStrictEqual(await db.get("a"), { x: 9, y: 2 });
    failing = true;
    await assert.rejects(db.put("c", { w: 1 }), /disk full/);
    failing = false;
    assert.equal(await db.get("c"), undefined);
    await db.close();
    await other.close();
  });

  it("after a restart never issues a state at or before one issued or observed before", async () => {
    const store = new MemoryStore();
    let metaWrites = 0;
    let fail = false;
    const commit = store.commitSync.bind(store);
    store.commitSync = (batch: CommitBatch) => {
      if (fail) throw new Error("disk full");
      if (batch.meta?.clock !== undefined) metaWrites++;
      return commit(batch);
    };
    let now = 1_700_000_000_000;
    const a = await Database.create({ store, kernels, now: () => now });
    const states: string[] = [];
    for (let i = 0; i < 100; i++) states.push((await a.put(`s${i % 7}`, { i })).state);
    assert.ok(metaWrites <= 1, `100 puts in one ms wrote the clock ${metaWrites} times`);
    const observed = (now + 5_000).toString(16).padStart(12, "0") + "0007";
    await a.applyOps([{ soul: "o", field: "v", value: 1, state: observed, actor: "00000000000000aa" }]);
    states.push(observed);
    // The process "restarts" (a new Database over the same store; wall clock unchanged or behind).
    now -= 2_000;
    const b = await Database.create({ store, kernels, now: () => now });
    const first = (await b.put("x", { v: 1 })).state;
    assert.ok(states.every((s) => first > s), `${first} is not after every earlier state`);
    // A commit that would have raised the bound fails: the bound must still be raised later.
    now += 60_000;
    fail = true;
    await assert.rejects(b.put("y", { v: 1 }), /disk full/);
    fail = false;
    const later = (await b.put("y", { v: 2 })).state;
    const c = await Database.create({ store, kernels, now: () => now - 60_000 });
    assert.ok((await c.put("z", { v: 1 })).state > later);
    // Mixed drains: a foreign op merges against a local write of the same drain.
    const lowState = (now - 60_000).toString(16).padStart(12, "0") + "0000";
    const [, r] = await Promise.all([
      c.put("m", { v: "local" }),
      c.applyOps([{ soul: "m", field: "v", value: "old", state: lowState, actor: "00000000000000aa" }]),
    ]);
    assert.deepEqual(r, { applied: 0, ignored: 1, deferred: 0 });
    assert.deepStrictEqual(await c.get("m"), { v: "local" });
    await c.close();
  });

  it("defers ops from the future until their time, never applying them early", async () => {
    let now = 1_700_000_000_000;
    const db = await Database.create({ store: new MemoryStore(), kernels, now: () => now, maxDrift: 60_000 });
    const future = (now + 3_600_000).toString(16).padStart(12, "0") + "0000";
    const op: Op = {
      soul: "f",
      field: "v",
      value: "from the future",
      state: future,
      actor: "00000000000000aa",
    };
    assert.deepEqual(await db.applyOps([op]), { applied: 0, ignored: 0, deferred: 1 });
    assert.equal(await db.get("f"), undefined);
    now += 3_600_000 - 61_000;
    await db.processDeferred();
    assert.equal(await db.get("f"), undefined, "still more than maxDrift ahead");
    now += 2_000;
    await db.processDeferred();
    assert.deepStrictEqual(await db.get("f"), { v: "from the future" });
    assert.deepEqual(await storeOf(db).deferred(), []);
    const mine = await db.put("f", { v: "later" });
    assert.ok(mine.state > future, "a local write after the deferred op is stamped later");
    // Given as their encoding, with the future op between two current ones: only it waits.
    const past = (now - 1_000).toString(16).padStart(12, "0") + "0000";
    const wire = encodeOps([
      { ...op, soul: "e1", state: past },
      { ...op, soul: "e2", state: (now + 3_600_000).toString(16).padStart(12, "0") + "0000" },
      { ...op, soul: "e3", state: past },
    ]);
    assert.deepEqual(await db.applyOps(wire), { applied: 2, ignored: 0, deferred: 1 });
    assert.deepEqual([await db.get("e1"), await db.get("e2"), await db.get("e3")], [
      { v: "from the future" },
      undefined,
      { v: "from the future" },
    ]);
    assert.equal((await storeOf(db).deferred()).length, 1);
    await db.close();
  });

  it("takes time, timers and randomness from its world: actor id, states, the deferral timer", async () => {
    let now = 1_700_000_000_000;
    const timers: { fn: () => void; at: number }[] = [];
    const world: World = {
      now: () => now,
      monotonic: () => now,
      setTimer(fn, ms) {
        timers.push({ fn, at: now + ms });
        return timers.length as unknown as Timer;
      },
      clearTimer(t) {
        if (t !== undefined) timers[(t as unknown as number) - 1].fn = () => {};
      },
      randomBytes: (bytes) => bytes.fill(0xab),
    };
    const db = await Database.create({ store: new MemoryStore(), kernels, world, maxDrift: 60_000 });
    assert.equal(db.actor, "2bababababababab"); // 0xab bytes, the top bit cleared (a keyless actor)
    const { state } = await db.put("a", { v: 1 });
    assert.equal(state, now.toString(16).padStart(12, "0") + "0000");
    const due = now + 3_600_000;
    const op: Op = {
      soul: "f",
      field: "v",
      value: 2,
      state: due.toString(16).padStart(12, "0") + "0000",
      actor: db.actor,
    };
    assert.deepEqual(await db.applyOps([op]), { applied: 0, ignored: 0, deferred: 1 });
    const timer = timers.at(-1)!;
    assert.equal(timer.at, due - 60_000, "the timer is the world's, set for when the op comes due");
    now = timer.at;
    timer.fn();
    await db.idle();
    for (let i = 0; i < 10 && (await db.get("f")) === undefined; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.deepStrictEqual(await db.get("f"), { v: 2 });
    // `now` wins over the world's clock when both are given.
    const other = await Database.create({ store: new MemoryStore(), kernels, world, now: () => 1_000 });
    assert.equal((await other.put("b", { v: 1 })).state, (1_000).toString(16).padStart(12, "0") + "0000");
    await other.close();
    await db.close();
  });

  it("gives the layers above what they read of its store, and keeps the store itself private", async () => {
    const db = await open({ storage: "memory" });
    assert.equal("store" in db, false);
    assert.equal(db.storage, storeOf(db).engine);
    assert.equal(await db.lastSeq(), 0);
    await db.put("a", { x: 1, y: 2 });
    assert.equal(await db.lastSeq(), await storeOf(db).lastSeq());
    assert.ok((await db.lastSeq()) > 0);
    const page = await db.changes(0, { limit: 10 });
    assert.deepEqual(page.records.map((r) => r.field), ["x", "y"]);
    const found = await db.readFields([{ soul: "a", field: "y" }, { soul: "a", field: "z" }]);
    assert.equal(found[0]?.field, "y");
    assert.equal(found[1], undefined);
    assert.equal(db.canSaveAux, storeOf(db).writeAux !== undefined);
    if (!db.canSaveAux) {
      assert.equal(await db.readAux("x"), undefined);
      await assert.rejects(db.writeAux("x", [new Uint8Array(1)]), TypeError);
    }
    await db.close();
  });
});

describe("bad input", () => {
  it("rejects invalid souls, fields and values with clear errors, storing nothing", async () => {
    const db = await open({ storage: "memory" });
    await db.put("ok", { v: 1 });
    const before = await db.stateHash();
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 100; i++) deep = { child: deep };
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => db.put("", { a: 1 }), /soul must not be empty/],
      [() => db.put("x".repeat(513), { a: 1 }), /at most 512 bytes/],
      [() => db.put("é".repeat(257), { a: 1 }), /at most 512 bytes of UTF-8, got 514/],
      [() => db.put("\ud800", { a: 1 }), /lone surrogate/],
      [() => db.put(42 as unknown as string, { a: 1 }), /soul must be a string/],
      [
        () => db.put("s", JSON.parse('{"ok": 1, "__proto__": {"polluted": true}}')),
        /"__proto__" is reserved/,
      ],
      [() => db.put("s", { ok: 1, constructor: "x" }), /"constructor" is reserved/],
      [() => db.put("s", { ok: 1, big: "x".repeat(1024 * 1024 + 1) }), /longer than 1048576 bytes/],
      [() => db.put("s", { ok: 1, big: new Uint8Array(1024 * 1024 + 1) }), /longer than 1048576/],
      [() => db.put("s", { ok: 1, n: NaN }), /finite/],
      [() => db.put("s", { ok: 1, n: Infinity }), /finite/],
      [() => db.put("s", { ok: 1, list: [1, 2] }), /cannot store an array/],
      [() => db.put("s", { ok: 1, d: new Date() }), /plain object, got Date/],
      [() => db.put("s", { ok: 1, f: () => 1 }), /cannot store function/],
      [() => db.put("s", deep), /nest at most 32 levels/],
      [() => db.put("s", { ok: 1, "": 2 }), /field must not be empty/],
      [() => db.put("s", null as never), /plain object, got null/],
      [() => db.put("s", { link: { "#": "" } }), /soul must not be empty/],
      [() => db.delete("s", "__proto__"), /reserved/],
      [() => db.get(""), /soul must not be empty/],
    ];
    for (const [fn, re] of cases) await assert.rejects(fn(), re);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, "no prototype pollution");
    assert.equal(await db.stateHash(), before, "nothing stored");
    assert.deepStrictEqual(await db.get("ok"), { v: 1 }, "still usable");
    await db.put("ok", { v: 2 });
    assert.deepStrictEqual(await db.get("ok"), { v: 2 });
    await db.close();
  });

  it("rejects a foreign batch with any invalid op whole", async () => {
    const db = await open({ storage: "memory" });
    const good: Op = {
      soul: "g",
      field: "f",
      value: 1,
      state: "018bcfe568000000",
      actor: "0000000000000001",
    };
    const before = await db.stateHash();
    const bad: unknown[] = [
      { ...good, soul: "" },
      { ...good, soul: "g\ud800" },
      { ...good, field: "__proto__" },
      { ...good, field: "prototype" },
      { ...good, field: "\udc00x" },
      { ...good, field: "x".repeat(70) + "\ud800" }, // long keys go to isWellFormed
      { ...good, state: "xyz" },
      { ...good, state: "018bcfe56800000g" },
      { ...good, state: "018BCFE568000000" },
      { ...good, state: "018bcfe56800000\u0130" },
      { ...good, actor: "000000000000000/" },
      { ...good, actor: "0000000000000001ff" },
      { ...good, value: [1] },
      { ...good, value: NaN },
      { ...good, sig: "nope" },
      null,
    ];
    for (const b of bad) await assert.rejects(db.applyOps([good, b as Op]), /Op 1 is invalid/);
    await assert.rejects(db.applyOps(new Uint8Array([0x91, 0x01, 0xff])), SyntaxError);
    await assert.rejects(db.applyOps(encodeOps([good]).subarray(0, 10)), SyntaxError);
    await assert.rejects(db.applyOps("ops" as never), TypeError);
    assert.equal(await db.stateHash(), before);
    assert.deepEqual(await db.applyOps([good]), { applied: 1, ignored: 0, deferred: 0 });
    // Surrogate pairs are fine, in short keys and long ones.
    const pairs = [{ ...good, soul: "g😀", field: "😀" }, {
      ...good,
      soul: "g😀",
      field: "y".repeat(70) + "😀",
    }];
    assert.deepEqual(await db.applyOps(pairs), { applied: 2, ignored: 0, deferred: 0 });
    await db.close();
  });
});
