/** Anti-entropy sync: the item index, the message codec and range-based reconciliation sessions. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createIdentity, type Database, loadKernels, open } from "../mod.ts";
import { signRecords } from "../core/trust/signing.ts";
import { encode } from "../core/msgpack.ts";
import { encodeOps, hex64ToBytes, type Op, opToRecord, recordToOp } from "../core/op.ts";
import {
  channelPair,
  decodeMessage,
  decodeSyncFrame,
  encodeMessage,
  encodeSyncFrame,
  ID_BYTES,
  type IndexSnapshot,
  SyncIndex,
  syncSession,
  type SyncStats,
} from "../core/sync/mod.ts";
import { MIN_MAX_FRAME_BYTES } from "../core/sync/protocol.ts";
import { systemWorld, type World } from "../core/world.ts";
import { prng, SEED } from "./_seed.ts";
import { ACTOR_A, ACTOR_B, BASE_MS, differingSets, stateOf, userOp } from "./_sync_fixture.ts";

const SLOW = { timeout: 120_000 };

async function load(db: Database, ops: readonly Op[]): Promise<void> {
  for (let i = 0; i < ops.length; i += 10_000) await db.applyOps(ops.slice(i, i + 10_000));
}

async function replica(ops: readonly Op[] = []): Promise<{ db: Database; index: SyncIndex }> {
  const db = await open({ storage: "memory" });
  await load(db, ops);
  return { db, index: await SyncIndex.build(db) };
}

async function sync(
  a: { db: Database; index: SyncIndex },
  b: { db: Database; index: SyncIndex },
): Promise<[SyncStats, SyncStats]> {
  const [ca, cb] = channelPair();
  return await Promise.all([
    syncSession(a.db, a.index, ca, { role: "initiator" }),
    syncSession(b.db, b.index, cb, { role: "responder" }),
  ]);
}

const total = (s: SyncStats[], k: keyof SyncStats): number => s.reduce((n, x) => n + x[k], 0);

async function close(...rs: { db: Database; index: SyncIndex }[]): Promise<void> {
  for (const r of rs) {
    r.index.close();
    await r.db.close();
  }
}

describe("sync index", () => {
  it("follows commits: overwrites replace the old id, and matches an index built from scratch", async () => {
    const r = await replica([userOp(1, 0, 1, ACTOR_A), userOp(1, 1, 1, ACTOR_A)]);
    assert.equal(r.index.size, 2);
    const before = r.index.snapshot();
    await r.db.put("user/000001", { name: "changed", extra: true });
    await r.db.applyOps([userOp(2, 0, 1, ACTOR_B), userOp(2, 0, 2, ACTOR_B)]);
    assert.equal(r.index.size, 4);
    const live = r.index.snapshot();
    assert.equal(before.size, 2, "a snapshot is immutable");
    const fresh = (await SyncIndex.build(r.db)).snapshot();
    const ids = (s: IndexSnapshot) => {
      const out = new Uint8Array(ID_BYTES * s.size);
      s.copyIds(0, s.size, out, 0);
      return out;
    };
    const keys = (s: IndexSnapshot) =>
      Array.from({ length: s.size }, (_, i) => JSON.stringify(s.key(i))).sort();
    assert.deepEqual(ids(live), ids(fresh));
    assert.deepEqual(keys(live), keys(fresh));
    const all = live.fingerprints([0], [live.size]), same = fresh.fingerprints([0], [fresh.size]);
    assert.deepEqual(all, same);
    await close(r);
  });
});

describe("sync codec", () => {
  it("round-trips messages and rejects bad shapes", async () => {
    const msg = {
      type: "reconcile" as const,
      ranges: [{ upper: new Uint8Array([5]), mode: 1 as const, payload: new Uint8Array(20).fill(7) }, {
        upper: null,
        mode: 2 as const,
        payload: new Uint8Array(16).fill(9),
      }],
      need: new Uint8Array(32),
    };
    const back = decodeMessage(encodeMessage(msg));
    assert.deepEqual(back, msg);
    const bad = [
      encode([2, 1, [], new Uint8Array(0)]), // version
      encode([1, 9, [], new Uint8Array(0)]), // type
      encode([1, 1, [null, 0], new Uint8Array(0)]), // not triples
      encode([1, 1, [new Uint8Array([5]), 0, null, new Uint8Array([5]), 0, null], new Uint8Array(0)]), // not ascending
      encode([1, 1, [null, 1, new Uint8Array(16)], new Uint8Array(0)]), // fingerprint length
      encode([1, 1, [new Uint8Array([5]), 3, new Uint8Array(16).fill(6)], new Uint8Array(0)]), // peel beyond bound
      encode([1, 1, [null, 3, new Uint8Array(15)], new Uint8Array(0)]), // peel length
      encode([1, 1, [null, 4, null], new Uint8Array(0)]), // unknown mode
      encode([1, 1, [new Uint8Array([5]), 2, new Uint8Array(16).fill(6)], new Uint8Array(0)]), // id beyond bound
      encode([1, 1, [], new Uint8Array(3)]), // need length
      encode([1, 2, new Uint8Array([1, 2])]), // bad ops
    ];
    for (const b of bad) assert.throws(() => decodeMessage(b), SyntaxError);
    assert.throws(() => decodeMessage(new Uint8Array(100), 50), RangeError);
    const big = encodeMessage({ type: "reconcile", ranges: [], need: new Uint8Array(16 * 1000) });
    const frame = await encodeSyncFrame(big);
    assert.equal(frame[0], 1, "a large compressible payload is deflated");
    assert.ok(frame.length < big.length / 10);
  });
});

describe("sync sessions", () => {
  it("identical replicas finish in one round with tiny frames", async () => {
    const ops = Array.from({ length: 5000 }, (_, i) => userOp(i, i % 5, 1, ACTOR_A));
    const a = await replica(ops), b = await replica(ops);
    const stats = await sync(a, b);
    const bytes = total(stats, "bytesSent");
    console.log(`identical 5000 records: ${bytes} bytes, ${stats[0].rounds} round`);
    assert.equal(stats[0].rounds, 1);
    assert.equal(stats[1].rounds, 1);
    assert.ok(bytes < 100, `${bytes} bytes`);
    assert.equal(total(stats, "recordsSent"), 0);
    await close(a, b);
  });

  it(
    "100,000 records with 1% differing in both directions converge; bytes ≤ 4× the differing ops",
    SLOW,
    async () => {
      const N = 100_000, D = 1000;
      const { common, onlyA, onlyB, confA, confB } = differingSets(N, D);
      const t0 = performance.now();
      const a = await replica([...common, ...onlyA, ...confA]),
        b = await replica([...common, ...onlyB, ...confB]);
      const tLoad = performance.now() - t0;
      const diffBytes = encodeOps([...onlyA, ...onlyB, ...confA, ...confB]).length;
      const t1 = performance.now();
      a.index.snapshot(), b.index.snapshot();
      const tIndex = performance.now() - t1;
      const stats = await sync(a, b);
      const bytes = total(stats, "bytesSent"), raw = total(stats, "rawBytesSent");
      console.log(
        `100k/1%: ${onlyA.length}+${onlyB.length}+2×${confA.length} differing ops (${diffBytes} B encoded); ` +
          `sync ${bytes} B on the wire (${raw} B raw, compression saves ${
            (100 * (1 - bytes / raw)).toFixed(1)
          }%), ` +
          `${(bytes / diffBytes).toFixed(2)}× the diff, ${stats[0].rounds} rounds, ` +
          `${stats[0].durationMs.toFixed(0)} ms session, records ${stats[0].recordsSent}→ ←${
            stats[1].recordsSent
          } ` +
          `(load ${tLoad.toFixed(0)} ms, snapshot ${tIndex.toFixed(0)} ms)`,
      );
      assert.equal(await a.db.stateHash(), await b.db.stateHash());
      assert.ok(bytes <= 4 * diffBytes, `${bytes} > 4 × ${diffBytes}`);
      const again = await sync(b, a);
      assert.equal(again[0].rounds, 1, "a second session finds nothing");
      assert.equal(total(again, "recordsSent"), 0);
      await close(a, b);
    },
  );

  it("empty vs full, both ways, and the compression saving on a full transfer", SLOW, async () => {
    const ops = Array.from({ length: 20_000 }, (_, i) => userOp(i >> 2, i & 3, 1, ACTOR_A));
    for (const emptyFirst of [true, false]) {
      const full = await replica(ops), empty = await replica();
      const stats = emptyFirst ? await sync(empty, full) : await sync(full, empty);
      assert.equal(await empty.db.stateHash(), await full.db.stateHash());
      assert.equal(total(stats, "recordsSent"), ops.length);
      if (emptyFirst) {
        const bytes = total(stats, "bytesSent"), raw = total(stats, "rawBytesSent");
        console.log(
          `empty vs 20,000 records: ${raw} B raw, ${bytes} B compressed: saving ${
            (100 * (1 - bytes / raw)).toFixed(1)
          }%, ${stats[0].rounds} round(s), ${stats[0].durationMs.toFixed(0)} ms`,
        );
        assert.ok(bytes < raw);
      }
      await close(full, empty);
    }
  });

  it(`random replicas converge after one session (seed ${SEED})`, SLOW, async () => {
    const rand = prng(SEED);
    const pick = (n: number): number => Math.floor(rand() * n);
    for (let c = 0; c < 60; c++) {
      const keys = 1 + pick(c < 30 ? 20 : 300);
      const opsA: Op[] = [], opsB: Op[] = [];
      for (let k = 0; k < keys; k++) {
        const i = pick(keys), f = pick(5);
        const where = pick(4); // 0 both same, 1 only A, 2 only B, 3 both different
        const va = 1 + pick(3), vb = 1 + pick(3);
        if (where === 0) opsA.push(userOp(i, f, va, ACTOR_A)), opsB.push(userOp(i, f, va, ACTOR_A));
        if (where === 1) opsA.push(userOp(i, f, va, ACTOR_A));
        if (where === 2) opsB.push(userOp(i, f, vb, ACTOR_B));
        if (where === 3) opsA.push(userOp(i, f, va, ACTOR_A)), opsB.push(userOp(i, f, vb, ACTOR_B));
      }
      const a = await replica(opsA), b = await replica(opsB);
      if (pick(2) === 0) await a.db.put(`local/${c}`, { n: c }); // a live write after the index was built
      await (pick(2) === 0 ? sync(a, b) : sync(b, a));
      assert.equal(await a.db.stateHash(), await b.db.stateHash(), `case ${c} (seed ${SEED})`);
      const again = await sync(a, b);
      assert.equal(total(again, "recordsSent"), 0, `case ${c}: nothing left (seed ${SEED})`);
      await close(a, b);
    }
  });

  it("rejects garbage frames, closes, and leaves the database unchanged and usable", async () => {
    const max = MIN_MAX_FRAME_BYTES;
    const zeros = new Uint8Array(8 * 1024 * 1024);
    const bomb = await encodeSyncFrame(encode([1, 1, [], zeros.subarray(0, 8 * 1024 * 1024 - 16)]));
    assert.equal(bomb[0], 1);
    assert.ok(bomb.length < max, "the bomb itself is small");
    const valid = await encodeSyncFrame(
      encodeMessage({
        type: "reconcile",
        ranges: [{ upper: null, mode: 1, payload: new Uint8Array(16) }],
        need: zeros.subarray(0, 0),
      }),
    );
    const random = prng(SEED ^ 0x5eed);
    const noise = Uint8Array.from({ length: 300 }, () => Math.floor(random() * 256));
    const tuple = (
      field: string,
      state: Uint8Array,
    ) => ["user/000001", field, 1, state, hex64ToBytes(ACTOR_B)];
    const goodState = hex64ToBytes(stateOf(BASE_MS + 99));
    const badOps = encode([1, 2, encode([1, tuple("name", goodState), tuple("age", goodState.subarray(1))])]);
    const cases: [string, Uint8Array, ErrorConstructor][] = [
      ["truncated", valid.subarray(0, valid.length - 3), SyntaxError],
      ["oversize", new Uint8Array(max + 2), RangeError],
      ["wrong version", Uint8Array.of(0, ...encode([7, 1, [], new Uint8Array(0)])), SyntaxError],
      ["unknown flag", Uint8Array.of(9, 1, 2, 3), SyntaxError],
      ["random bytes", Uint8Array.of(0, ...noise), SyntaxError],
      ["corrupt deflate", Uint8Array.of(1, ...noise), SyntaxError],
      ["decompression bomb", bomb, RangeError],
      // an ops batch with one invalid op: nothing of it may be applied
      ["invalid op", Uint8Array.of(0, ...badOps), SyntaxError],
    ];
    for (const [name, frame, type] of cases) {
      const r = await replica([userOp(1, 0, 1, ACTOR_A), userOp(2, 1, 1, ACTOR_A)]);
      const hash = await r.db.stateHash();
      const [mine, theirs] = channelPair();
      const session = syncSession(r.db, r.index, mine, { role: "responder", maxFrameBytes: max });
      await theirs.send(frame);
      await assert.rejects(session, type, name);
      const next = await theirs.frames[Symbol.asyncIterator]().next();
      assert.equal(next.done, true, `${name}: the channel is closed`);
      assert.equal(await r.db.stateHash(), hash, `${name}: nothing applied`);
      await r.db.put("still", { works: true });
      assert.deepEqual(await r.db.get("still"), { works: true });
      await close(r);
    }
  });

  it("sends batches encoded from records, as encodeOps wrote them, and merges received ones as bytes", async () => {
    // Signed and unsigned records, tombstones, unicode souls and fields, a value of every kind.
    const signer = await createIdentity();
    const state = (k: number) => stateOf(BASE_MS + 50 + k);
    const [gone, link] =
      (await signRecords(signer, await loadKernels(), new TextEncoder().encode("default"), [
        opToRecord({ soul: "ノード/é", field: "gone", value: null, state: state(1), actor: signer.actor }),
        opToRecord({
          soul: "🌍",
          field: "ŝtato",
          value: { "#": "ノード/é" },
          state: state(2),
          actor: signer.actor,
        }),
      ])).map(recordToOp);
    const ops: Op[] = [
      { soul: "ノード/é", field: "名前", value: "Grüße 👋", state: state(0), actor: ACTOR_A },
      gone,
      link,
      { soul: "🌍", field: "n", value: -0.5, state: state(3), actor: ACTOR_B },
      { soul: "🌍", field: "tomb", value: null, state: state(4), actor: ACTOR_B },
      { soul: "🌍", field: "bin", value: new Uint8Array(40).fill(9), state: state(5), actor: ACTOR_A },
      userOp(3, 4, 1, ACTOR_A),
    ];
    const a = await replica(ops), b = await replica();
    const sent: Uint8Array[] = [];
    const merged: unknown[] = [];
    const apply = b.db.applyOps.bind(b.db);
    b.db.applyOps = (...args: Parameters<typeof apply>) => (merged.push(args[0]), apply(...args));
    const [ca, cb] = channelPair();
    const send = ca.send.bind(ca);
    ca.send = (frame) => (sent.push(frame), send(frame));
    await Promise.all([
      syncSession(a.db, a.index, ca, { role: "initiator" }),
      syncSession(b.db, b.index, cb, { role: "responder" }),
    ]);
    assert.equal(await b.db.stateHash(), await a.db.stateHash());
    let batches = 0;
    for (const frame of sent) {
      const payload = await decodeSyncFrame(frame);
      const msg = decodeMessage(payload);
      if (msg.type !== "ops") continue;
      batches++;
      // The bytes the sender wrote before (records → ops → encodeOps) for the same records.
      assert.deepStrictEqual(payload, encodeMessage({ type: "ops", ops: msg.ops }));
      assert.equal(msg.ops.filter((op) => op.sig !== undefined).length, 2);
    }
    assert.equal(batches, 1);
    assert.equal(merged.length, 1);
    assert.ok(merged[0] instanceof Uint8Array, "the received batch is merged as it came, not as op objects");
    await close(a, b);
  });

  it("reports an invalid op in a received batch as a malformed sync message", async () => {
    const r = await replica();
    const [mine, theirs] = channelPair();
    const session = syncSession(r.db, r.index, mine, { role: "responder" });
    const bad = encodeOps([userOp(1, 0, 1, ACTOR_A)]);
    bad[bad.length - 9] = 0xc5; // the actor's bin8 length becomes 197: past the end of the batch
    await theirs.send(await encodeSyncFrame(encode([1, 2, bad])));
    await assert.rejects(
      session,
      (e: Error) => e.name === "SyntaxError" && /^Cannot decode sync message: /.test(e.message),
    );
    assert.equal(r.index.size, 0);
    await close(r);
  });

  it("times itself on the World it is given", async () => {
    const a = await replica([userOp(1, 0, 1, ACTOR_A)]), b = await replica();
    let t = 1_000;
    const world: World = { ...systemWorld, monotonic: () => t };
    const [ca, cb] = channelPair();
    const sessions = Promise.all([
      syncSession(a.db, a.index, ca, { role: "initiator", world }),
      syncSession(b.db, b.index, cb, { role: "responder", world }),
    ]);
    t = 1_042;
    const stats = await sessions;
    assert.deepEqual(stats.map((s) => s.durationMs), [42, 42]);
    assert.deepEqual(await b.db.get("user/000001"), await a.db.get("user/000001"));
    await close(a, b);
  });

  it("stops on abort", async () => {
    const r = await replica([userOp(1, 0, 1, ACTOR_A)]);
    const [mine] = channelPair();
    const ctl = new AbortController();
    const session = syncSession(r.db, r.index, mine, { role: "responder", signal: ctl.signal });
    ctl.abort(new Error("stop"));
    await assert.rejects(session, /stop/);
    await close(r);
  });
});
