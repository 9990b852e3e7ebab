// @server-only: SQLite files in a temporary directory and a local HTTP port
/**
 * The deferred-op flood (issue 11): ops stamped far ahead wait in the
 * deferred table. Ops beyond the horizon are refused (by `applyOps` given a
 * list, its encoding or a large batch, by gossip and by sync), deferred ops
 * are bounded per source and in total, read by due time (deferring more, or
 * opening a store full of them, reads none of those waiting), visible in
 * `deferredStatus` and `/v1/status`, and still come due in order.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Database, open } from "../mod.ts";
import { encodeOps, type Op } from "../core/op.ts";
import { createJsKernels } from "../core/kernels/mod.ts";
import {
  channelPair,
  encodeMessage,
  encodeSyncFrame,
  MAX_FRAME_OPS,
  MAX_REFUSED_OPS,
  SyncIndex,
  syncSession,
} from "../core/sync/mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import { SqliteStore } from "../storage/sqlite.ts";
import type { Store } from "../core/store.ts";
import { startReplication } from "../net/replicate.ts";
import type { NetNode } from "../net/node.ts";
import { startHttpApi } from "../net/http.ts";
import { eventually } from "./_eventually.ts";
import { storeOf } from "../core/database.ts";

const kernels = createJsKernels();
const MIN = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const NOW = 1_700_000_000_000;
const A = "00000000000000aa", B = "00000000000000bb", C = "00000000000000cc";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-deferred-test-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `d${++dirs}`);

/** An op on `soul`.v stamped at `ms`, by `actor`. */
function op(soul: string, ms: number, actor = A, value: Op["value"] = soul): Op {
  return { soul, field: "v", value, state: ms.toString(16).padStart(12, "0") + "0000", actor };
}

/**
 * `store` with a count of the deferred ops its reads hand out (`deferred`,
 * `deferredDue`), whichever the Database calls: the rows it read.
 */
function counted<S extends Store>(store: S): { store: S; rows: () => number } {
  let rows = 0;
  const proxy = new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      if (prop === "deferred" || prop === "deferredDue") {
        return async (...args: unknown[]) => {
          const out = await v.apply(target, args);
          rows += out.length;
          return out;
        };
      }
      return v.bind(target);
    },
  });
  return { store: proxy, rows: () => rows };
}

/** A database over `store` whose wall clock reads `clock.now`. */
function dbAt(store: Store, clock: { now: number }, options: Record<string, number> = {}): Promise<Database> {
  return Database.create({ store, kernels, now: () => clock.now, ...options });
}

describe("deferred ops: the horizon", () => {
  it("applyOps refuses a batch with an op beyond the horizon (list, encoding, large batch): nothing stored", async () => {
    const db = await dbAt(new MemoryStore(), { now: NOW });
    const good = op("good", NOW - 1000), soon = op("soon", NOW + HOUR);
    for (const far of [op("far", NOW + 2 * DAY), op("year10889", 2 ** 48 - 1)]) {
      const refused = {
        name: "RangeError",
        message: /^Op 2 is refused: its state is \d+ ms ahead .* horizon of 86400000 ms$/,
      };
      await assert.rejects(db.applyOps([good, soon, far]), refused);
      await assert.rejects(db.applyOps(encodeOps([good, soon, far])), refused);
    }
    assert.equal(await db.get("good"), undefined, "the batch is refused whole");
    assert.deepEqual(await storeOf(db).deferred(), []);
    assert.equal(db.deferredStatus().count, 0);
    // Within the horizon, as before: deferred.
    assert.deepEqual(await db.applyOps([good, soon]), { applied: 1, ignored: 0, deferred: 1 });
    await db.close();

    // A large batch (committed in parts on SQLite) is refused whole too.
    const disk = await dbAt(await SqliteStore.open(freshDir()), { now: NOW });
    const many = Array.from({ length: 40_000 }, (_, i) => op(`n${i}`, NOW - 1000));
    many.push(op("soon", NOW + HOUR), op("far", NOW + 2 * DAY));
    await assert.rejects(disk.applyOps(many), { name: "RangeError", message: /^Op 40001 is refused/ });
    assert.equal(await disk.lastSeq(), 0);
    assert.deepEqual(await storeOf(disk).deferred(), []);
    many.pop();
    assert.deepEqual(await disk.applyOps(many), { applied: 40_000, ignored: 0, deferred: 1 });
    await disk.close();
  });

  it("opening a store that holds ops beyond the horizon (deferred before there was one) drops them", async () => {
    const dir = freshDir();
    const store = await SqliteStore.open(dir);
    const far = op("far", 2 ** 48 - 1), soon = op("soon", NOW + HOUR);
    await store.commit({
      defer: [{ due: 2 ** 48 - 1 - 10 * MIN, op: encodeOps([far]) }, {
        due: NOW + 50 * MIN,
        op: encodeOps([soon]),
      }],
    });
    const db = await dbAt(store, { now: NOW });
    assert.deepEqual(db.deferredStatus(), { count: 1, next: NOW + 50 * MIN, refused: 1 });
    assert.deepEqual((await storeOf(db).deferred()).map((d) => d.due), [NOW + 50 * MIN]);
    await db.close();
  });

  it("the horizon is an option (of open too), at least maxDrift", async () => {
    const clock = { now: NOW };
    const wide = await dbAt(new MemoryStore(), clock, { horizon: 3 * DAY });
    assert.deepEqual(await wide.applyOps([op("far", NOW + 2 * DAY)]), {
      applied: 0,
      ignored: 0,
      deferred: 1,
    });
    await wide.close();
    const narrow = await open({ storage: "memory", maxDrift: MIN, horizon: 10 * MIN });
    await assert.rejects(narrow.applyOps([op("x", Date.now() + 20 * MIN)]), RangeError);
    assert.equal((await narrow.applyOps([op("x", Date.now() + 5 * MIN)])).deferred, 1);
    await narrow.close();
    await assert.rejects(
      dbAt(new MemoryStore(), clock, { maxDrift: HOUR, horizon: MIN }),
      /at least maxDrift/,
    );
    await assert.rejects(dbAt(new MemoryStore(), clock, { maxDeferred: -1 }), RangeError);
  });

  it("from a peer (a source), ops beyond the horizon are dropped and counted, the rest applied", async () => {
    const db = await dbAt(new MemoryStore(), { now: NOW });
    const batch = [op("good", NOW - 1000), op("soon", NOW + HOUR), op("far", NOW + 2 * DAY)];
    const peer = { source: "12D3KooWpeer" };
    assert.deepEqual(await db.applyOps(batch, peer), { applied: 1, ignored: 0, deferred: 1, refused: 1 });
    assert.deepEqual(await db.applyOps(encodeOps(batch), peer), {
      applied: 0,
      ignored: 1,
      deferred: 1,
      refused: 1,
    });
    assert.equal(await db.get("far"), undefined);
    assert.equal((await storeOf(db).deferred()).length, 2, "only the ops within the horizon wait");
    assert.equal(db.deferredStatus().refused, 2);
    await assert.rejects(db.applyOps(batch, { source: "" }), TypeError);
    await db.close();
  });

  it("gossip refuses, counts and logs ops beyond the horizon; the rest of the message is applied", async () => {
    const db = await open({ storage: "memory" });
    const listeners = new Set<(bytes: Uint8Array, from: string) => void>();
    const node = {
      space: "s",
      peers: () => [],
      publish: async () => {},
      onMessage(cb: (bytes: Uint8Array, from: string) => void) {
        listeners.add(cb);
        return () => listeners.delete(cb);
      },
      onPeer: () => () => {},
      validate: () => () => {}, // the topic validator (net/node.ts) is not what this test is about
    } as unknown as NetNode;
    const logs: string[] = [];
    const rep = startReplication(db, node, { space: "s", log: (m) => logs.push(m) });
    const now = Date.now();
    for (const cb of listeners) {
      cb(encodeOps([op("good", now - 1000), op("far", now + 2 * DAY)]), "12D3KooWbad");
    }
    await eventually("the gossip message to be applied", async () => (await db.get("good")) !== undefined);
    await eventually(
      "the refusal to be logged",
      () => logs.some((l) => /refused 1 ops .*12D3KooWbad/.test(l)),
    );
    assert.equal(await db.get("far"), undefined);
    assert.deepEqual(await storeOf(db).deferred(), []);
    assert.equal(db.deferredStatus().refused, 1);
    rep.stop();
    await db.close();
  });

  it("sync refuses and counts a peer's records beyond the horizon, and applies the rest", async () => {
    const fast = await Database.create({
      store: new MemoryStore(),
      kernels,
      now: () => Date.now() + 2 * DAY,
    });
    await fast.put("ahead", { v: 1 }); // stamped two days ahead of everyone else
    await fast.applyOps([op("normal", Date.now() - 1000, B)]);
    const me = await open({ storage: "memory" });
    const [ia, ib] = [await SyncIndex.build(fast), await SyncIndex.build(me)];
    const [ca, cb] = channelPair();
    const [, stats] = await Promise.all([
      syncSession(fast, ia, ca, { role: "initiator" }),
      syncSession(me, ib, cb, { role: "responder", peer: "12D3KooWfast" }),
    ]);
    assert.equal(stats.recordsReceived, 2);
    assert.equal(stats.recordsApplied, 1);
    assert.equal(stats.recordsRefused, 1);
    assert.deepEqual(await me.get("normal"), { v: "normal" });
    assert.equal(await me.get("ahead"), undefined);
    assert.deepEqual(await storeOf(me).deferred(), []);
    assert.equal(me.deferredStatus().refused, 1);
    ia.close(), ib.close();
    await fast.close(), await me.close();
  });
});

describe("deferred ops: a peer that floods sync with ops it must not send", () => {
  const FAR = 2 ** 48 - 1; // year 10889
  /** Sends OPS frames of `perFrame` ops each, `frames` times, then the empty RECONCILE, as a raw peer would. */
  async function flood(
    frames: number,
    perFrame: number,
    stamp: number,
  ): Promise<ReturnType<typeof channelPair>[1]> {
    const [attacker, victimSide] = channelPair();
    for (let f = 0; f < frames; f++) {
      const ops: Op[] = [];
      for (let i = 0; i < perFrame; i++) ops.push(op(`future/${f}/${i}`, stamp, C, i));
      await attacker.send(await encodeSyncFrame(encodeMessage({ type: "ops", ops })));
    }
    await attacker.send(
      await encodeSyncFrame(encodeMessage({ type: "reconcile", ranges: [], need: new Uint8Array(0) })),
    );
    return victimSide;
  }

  it("the session ends (SyncRefusedError) after the first frame: 20 × 1,000 ops beyond the horizon cost one frame", async () => {
    const me = await open({ storage: "memory" });
    const index = await SyncIndex.build(me);
    const channel = await flood(20, 1000, FAR);
    await assert.rejects(
      syncSession(me, index, channel, { role: "responder", peer: "12D3KooWflood" }),
      {
        name: "SyncRefusedError",
        message: /^Sync refused: the peer sent 1000 ops .* more than the 64 a session allows$/,
      },
    );
    // Counted as the victim refused them: the ops it decoded and checked, not 20,000.
    assert.equal(me.deferredStatus().refused, 1000);
    assert.deepEqual(await storeOf(me).deferred(), []);
    index.close();
    await me.close();
  });

  it("ops deferred over the peer's quota count too: the session ends a few ops past maxRefused", async () => {
    const clock = { now: NOW };
    const me = await dbAt(new MemoryStore(), clock, { maxDeferredPerSource: 10 });
    const index = await SyncIndex.build(me);
    const channel = await flood(30, 10, NOW + HOUR); // within the horizon, deferred: 10 kept, the rest refused
    await assert.rejects(
      syncSession(me, index, channel, { role: "responder", peer: "12D3KooWquota", maxRefused: 25 }),
      { name: "SyncRefusedError" },
    );
    assert.equal(me.deferredStatus().count, 10);
    assert.equal(me.deferredStatus().refused, 30, "three frames of ten refused, then the end");
    index.close();
    await me.close();
  });

  it(`an OPS message announcing more than ${MAX_FRAME_OPS} ops is refused before any op is decoded`, async () => {
    const me = await open({ storage: "memory" });
    let merges = 0;
    const apply = me.applyOps.bind(me);
    me.applyOps = (...args: Parameters<typeof me.applyOps>) => (merges++, apply(...args));
    const index = await SyncIndex.build(me);
    const channel = await flood(1, MAX_FRAME_OPS + 1, Date.now() - 1000);
    await assert.rejects(
      syncSession(me, index, channel, { role: "responder", peer: "12D3KooWbig" }),
      {
        name: "RangeError",
        message: `Cannot decode sync message: ${
          MAX_FRAME_OPS + 1
        } ops exceed the limit of ${MAX_FRAME_OPS} in one message`,
      },
    );
    assert.equal(merges, 0);
    assert.equal(await me.get("future/0/0"), undefined);
    index.close();
    await me.close();
  });

  it("honest sync is unaffected: 6,000 records in several frames, a few refused ops below the limit", async () => {
    const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
    const ops: Op[] = [];
    for (let i = 0; i < 6000; i++) ops.push(op(`honest/${i}`, Date.now() - 60_000, A, i));
    await a.applyOps(ops);
    const fast = await Database.create({
      store: new MemoryStore(),
      kernels,
      now: () => Date.now() + 2 * DAY,
    });
    for (let i = 0; i < MAX_REFUSED_OPS; i++) await fast.put(`ahead/${i}`, { v: i });
    const [ia, ib, ifast] = [await SyncIndex.build(a), await SyncIndex.build(b), await SyncIndex.build(fast)];
    const [ca, cb] = channelPair();
    const [sa, sb] = await Promise.all([
      syncSession(a, ia, ca, { role: "initiator", peer: "b" }),
      syncSession(b, ib, cb, { role: "responder", peer: "a" }),
    ]);
    assert.equal(sa.recordsSent, 6000);
    assert.equal(sb.recordsApplied, 6000);
    assert.equal(b.deferredStatus().refused, 0);
    assert.deepEqual(await b.get("honest/5999"), { v: 5999 });
    const [cf, cme] = channelPair();
    const [, sme] = await Promise.all([
      syncSession(fast, ifast, cf, { role: "initiator" }),
      syncSession(b, ib, cme, { role: "responder", peer: "12D3KooWfast" }),
    ]);
    assert.equal(
      sme.recordsRefused,
      MAX_REFUSED_OPS,
      "as many as the limit, not more: the session ends normally",
    );
    ia.close(), ib.close(), ifast.close();
    await a.close(), await b.close(), await fast.close();
  });
});

describe("deferred ops: quotas", () => {
  it("a local call over a quota is refused whole (RangeError), per source and in total; room comes back", async () => {
    const clock = { now: NOW };
    const db = await dbAt(new MemoryStore(), clock, { maxDeferred: 5, maxDeferredPerSource: 3 });
    const at = NOW + HOUR;
    assert.equal((await db.applyOps([op("a1", at), op("a2", at), op("a3", at)])).deferred, 3);
    await assert.rejects(db.applyOps([op("a4", at)]), {
      name: "RangeError",
      message: `Cannot defer op ${A}/${
        at - 10 * MIN
      }: 3 ops from ${A} are deferred already, the most one source may have`,
    });
    await assert.rejects(db.applyOps([op("now", NOW), op("b1", at, B), op("a4", at)]), RangeError);
    assert.equal(await db.get("now"), undefined, "nothing of a refused batch is stored");
    assert.equal(db.deferredStatus().count, 3);
    assert.equal((await storeOf(db).deferred()).length, 3);
    assert.equal((await db.applyOps([op("b1", at, B), op("b2", at, B)])).deferred, 2);
    await assert.rejects(
      db.applyOps([op("c1", at, C)]),
      /5 ops are deferred already, the most this replica keeps/,
    );
    clock.now += HOUR;
    await db.processDeferred();
    assert.deepEqual(db.deferredStatus(), { count: 0, next: null, refused: 0 });
    assert.deepEqual(await db.get("a3"), { v: "a3" });
    assert.equal(
      (await db.applyOps([op("c1", at + HOUR, C), op("a4", at + HOUR)])).deferred,
      2,
      "room again",
    );
    await db.close();
  });

  it("a peer over its quota has the excess dropped and counted; the total bounds all peers", async () => {
    const db = await dbAt(new MemoryStore(), { now: NOW }, { maxDeferred: 5, maxDeferredPerSource: 3 });
    const at = NOW + HOUR;
    const four = (p: string) => [1, 2, 3, 4].map((i) => op(`${p}${i}`, at, A));
    assert.deepEqual(await db.applyOps(four("p"), { source: "P" }), {
      applied: 0,
      ignored: 0,
      deferred: 3,
      refused: 1,
    });
    assert.deepEqual(await db.applyOps(four("q"), { source: "Q" }), {
      applied: 0,
      ignored: 0,
      deferred: 2,
      refused: 2,
    });
    assert.equal((await storeOf(db).deferred()).length, 5);
    assert.deepEqual(db.deferredStatus(), { count: 5, next: at - 10 * MIN, refused: 3 });
    await db.close();
  });

  it("quotas hold across a restart: a source's count is read from the store", async () => {
    const dir = freshDir(), clock = { now: NOW }, at = NOW + HOUR;
    const first = await dbAt(await SqliteStore.open(dir), clock, { maxDeferredPerSource: 2 });
    await first.applyOps([op("a1", at), op("a2", at), op("b1", at, B)]);
    await first.close();
    const again = await dbAt(await SqliteStore.open(dir), clock, { maxDeferredPerSource: 2 });
    assert.equal(again.deferredStatus().count, 3);
    await assert.rejects(again.applyOps([op("a3", at)]), /2 ops from 00000000000000aa are deferred already/);
    assert.equal((await again.applyOps([op("b2", at, B)])).deferred, 1);
    await assert.rejects(again.applyOps([op("b3", at, B)]), /2 ops from 00000000000000bb/);
    await again.close();
  });
});

describe("deferred ops: read by due time, never the whole table", () => {
  const N = 3000;
  for (const engine of ["memory", "sqlite"] as const) {
    it(`${engine}: deferring with ${N} ops waiting reads none of them; a due round reads what is due`, async () => {
      const clock = { now: NOW };
      const raw = engine === "memory" ? new MemoryStore() : await SqliteStore.open(freshDir());
      const { store, rows } = counted(raw);
      const db = await dbAt(store, clock);
      const waiting = Array.from({ length: N }, (_, i) => op(`w${i}`, NOW + 12 * HOUR, A));
      assert.equal((await db.applyOps(waiting)).deferred, N);
      const before = rows(), readByStore = raw.deferredRowsRead;
      assert.equal((await db.applyOps([op("one-more", NOW + 13 * HOUR, B)])).deferred, 1);
      assert.equal((await db.applyOps(encodeOps([op("and-one", NOW + 13 * HOUR, B)]))).deferred, 1);
      assert.equal(rows() - before, 0, "deferring read no deferred op");
      assert.equal(raw.deferredRowsRead - readByStore, 0);
      // Five come due: the round reads those five and the next one waiting, not the table.
      await db.applyOps([1, 2, 3, 4, 5].map((i) => op(`due${i}`, NOW + HOUR, C)));
      clock.now += HOUR;
      const mark = rows();
      await db.processDeferred();
      assert.ok(rows() - mark <= 6, `a due round read ${rows() - mark} deferred ops`);
      assert.deepEqual(await db.get("due5"), { v: "due5" });
      assert.deepEqual(db.deferredStatus(), { count: N + 2, next: NOW + 12 * HOUR - 10 * MIN, refused: 0 });
      await db.close();
    });
  }

  it(`opening a store with ${N} deferred ops reads only the next one (counted, not loaded)`, async () => {
    const dir = freshDir(), clock = { now: NOW };
    const first = await dbAt(await SqliteStore.open(dir), clock);
    await first.applyOps(Array.from({ length: N }, (_, i) => op(`w${i}`, NOW + 2 * HOUR + i, A)));
    await first.close();
    const raw = await SqliteStore.open(dir);
    const { store, rows } = counted(raw);
    const db = await dbAt(store, clock);
    assert.ok(rows() <= 1, `open read ${rows()} deferred ops`);
    assert.ok(raw.deferredRowsRead <= 1);
    assert.deepEqual(db.deferredStatus(), { count: N, next: NOW + 2 * HOUR - 10 * MIN, refused: 0 });
    clock.now += 3 * HOUR;
    await db.processDeferred(); // all due now: read in rounds, all applied
    assert.equal(db.deferredStatus().count, 0);
    assert.deepEqual(await db.get(`w${N - 1}`), { v: `w${N - 1}` });
    await db.close();
  });
});

describe("deferred ops still come due", () => {
  it("on the timer, in order: the later state of a field wins", async () => {
    const db = await open({ storage: "memory", maxDrift: 50 });
    const now = Date.now();
    const r = await db.applyOps([
      op("t", now + 400, A, "second"),
      op("t", now + 300, A, "first"),
      { ...op("t", now + 350, B, "y"), field: "y" },
    ]);
    assert.equal(r.deferred, 3);
    assert.equal(db.deferredStatus().next, now + 250);
    await eventually("the deferred ops to come due", async () => db.deferredStatus().count === 0);
    assert.deepEqual(await db.get("t"), { v: "second", y: "y" });
    assert.deepEqual(db.deferredStatus(), { count: 0, next: null, refused: 0 });
    await db.close();
  });

  it("many due at once are applied in rounds, all of them", async () => {
    const clock = { now: NOW };
    const db = await dbAt(new MemoryStore(), clock);
    await db.applyOps(Array.from({ length: 9000 }, (_, i) => op(`m${i}`, NOW + HOUR + i, A)));
    clock.now += 2 * HOUR;
    await db.processDeferred();
    assert.equal(db.deferredStatus().count, 0);
    assert.equal(await db.countNodes(), 9000);
    await db.close();
  });
});

describe("deferred ops: status", () => {
  it("deferredStatus and GET /v1/status report the count, the next due and the refused", async () => {
    const db = await open({ storage: "memory", maxDrift: MIN });
    assert.deepEqual(db.deferredStatus(), { count: 0, next: null, refused: 0 });
    const now = Date.now();
    await db.applyOps([op("a", now + HOUR), op("b", now + 2 * HOUR)]);
    await db.applyOps([op("c", now + 2 * DAY)], { source: "12D3KooWpeer" });
    assert.deepEqual(db.deferredStatus(), { count: 2, next: now + HOUR - MIN, refused: 1 });
    const api = await startHttpApi(db, {
      host: "127.0.0.1",
      port: 0,
      info: () => ({ peerId: null, addrs: [], space: "default", peers: [] }),
    });
    try {
      const body = await (await fetch(`${api.url}/v1/status`)).json();
      assert.deepEqual(body.deferred, { count: 2, next: now + HOUR - MIN, refused: 1 });
      for (const k of ["peerId", "addrs", "peers", "space", "storage", "kernels", "nodes", "version"]) {
        assert.ok(k in body, `status keeps ${k}`);
      }
    } finally {
      await api.close();
      await db.close();
    }
  });
});
