// @server-only: the saved index lives in a SQLite directory on disk.
/**
 * The compact sync index (core/sync/sync_index.ts) against a reference model, and
 * its saved form: a build after a save reads only what changed since, and a
 * saved index the store cannot vouch for is not used.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadKernels } from "../runtime/kernels.ts";
import { encodeValue } from "../core/value_encoding.ts";
import { ID_BYTES, type IndexSnapshot, itemIds, SyncIndex } from "../core/sync/mod.ts";
import { AUX_NAME } from "../core/sync/saved_index.ts";
import type { FieldRecord } from "../core/store.ts";
import { prng, SEED } from "./_seed.ts";
import { ACTOR_A, ACTOR_B, userOp } from "./_sync_fixture.ts";
import { counted, fullIndex, sameAs } from "./_index_fixture.ts";
import { storeOf } from "../core/database.ts";

const kernels = await loadKernels();

/** An id as a bigint (big-endian). */
function big(bytes: Uint8Array): bigint {
  let x = 0n;
  for (const b of bytes) x = (x << 8n) | BigInt(b);
  return x;
}

/** A bound of 1-16 bytes as the 128-bit number it stands for (zero-padded on the right). */
function boundValue(bound: Uint8Array): bigint {
  const padded = new Uint8Array(ID_BYTES);
  padded.set(bound);
  return big(padded);
}

interface ModelItem {
  readonly id: bigint;
  readonly idBytes: Uint8Array;
  readonly key: string;
}

/** What a snapshot must answer: the model's items sorted by id. */
function checkSnapshot(snap: IndexSnapshot, items: readonly ModelItem[], rand: () => number, what: string) {
  const n = items.length;
  assert.equal(snap.size, n, `${what}: size`);
  const ids = new Uint8Array(ID_BYTES * n);
  snap.copyIds(0, n, ids, 0);
  for (let i = 0; i < n; i++) {
    assert.equal(big(ids.subarray(ID_BYTES * i, ID_BYTES * (i + 1))), items[i].id, `${what}: id ${i}`);
    const k = snap.key(i);
    assert.equal(JSON.stringify([k.soul, k.field]), items[i].key, `${what}: key ${i}`);
    assert.equal(snap.find(items[i].idBytes), i, `${what}: find ${i}`);
  }
  // Random ranges: fingerprint = (sum mod 2^128, count).
  const starts: number[] = [], ends: number[] = [];
  for (let r = 0; r < 40; r++) {
    const a = Math.floor(rand() * (n + 1)), b = a + Math.floor(rand() * (n + 1 - a));
    starts.push(a), ends.push(b);
  }
  starts.push(0), ends.push(n);
  const fps = snap.fingerprints(starts, ends);
  for (let r = 0; r < starts.length; r++) {
    let sum = 0n;
    for (let i = starts[r]; i < ends[r]; i++) sum += items[i].id;
    const fp = fps.subarray(20 * r, 20 * r + 20);
    assert.equal(big(fp.subarray(0, 16)), sum % (1n << 128n), `${what}: sum of [${starts[r]}, ${ends[r]})`);
    assert.equal(big(fp.subarray(16)), BigInt(ends[r] - starts[r]), `${what}: count`);
  }
  // Random bounds of 1-16 bytes, absent ids.
  for (let r = 0; r < 40; r++) {
    const bound = new Uint8Array(1 + Math.floor(rand() * ID_BYTES));
    for (let i = 0; i < bound.length; i++) bound[i] = Math.floor(rand() * 256);
    if (r === 0) bound.fill(0);
    const v = boundValue(bound);
    assert.equal(snap.lowerBound(bound), items.filter((x) => x.id < v).length, `${what}: lowerBound`);
    if (bound.length === ID_BYTES && !items.some((x) => x.id === v)) assert.equal(snap.find(bound), -1);
  }
  assert.equal(snap.lowerBound(null), n);
}

describe("compact sync index", () => {
  it(`agrees with a model over random inserts, replacements and deletes (seed ${SEED})`, () => {
    const rand = prng(SEED);
    const index = new SyncIndex(kernels);
    /** (soul, field) as JSON → the record the index should hold for it. */
    const model = new Map<string, FieldRecord>();
    const held: { snap: IndexSnapshot; items: ModelItem[] }[] = [];
    const itemsOf = (): ModelItem[] => {
      const records = [...model.values()];
      const ids = itemIds(kernels, records);
      return records.map((r, i) => {
        const idBytes = ids.slice(ID_BYTES * i, ID_BYTES * (i + 1));
        return { id: big(idBytes), idBytes, key: JSON.stringify([r.soul, r.field]) };
      }).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    };
    let clock = 1;
    for (let step = 0; step < 120; step++) {
      const batch: FieldRecord[] = [];
      for (let k = Math.floor(rand() * 60); k >= 0; k--) {
        // Few souls and fields, some non-ASCII: new keys, replacements, tombstones (deletes),
        // and records the index already holds (no change).
        const soul = `n${Math.floor(rand() * 50)}${rand() < 0.1 ? "é☃" : ""}`;
        const field = `f${Math.floor(rand() * 6)}`;
        const key = JSON.stringify([soul, field]);
        const old = model.get(key);
        const p = rand();
        const r: FieldRecord = old !== undefined && p < 0.15 ? old : {
          soul,
          field,
          value: encodeValue(p < 0.3 ? null : Math.floor(rand() * 1000)),
          stateHi: 0x190,
          stateLo: clock++,
          actorHi: 0,
          actorLo: rand() < 0.5 ? 0xaa : 0xbb,
        };
        batch.push(r);
        model.set(key, r);
      }
      index.update(batch);
      assert.equal(index.size, model.size);
      if (rand() < 0.3) {
        const items = itemsOf();
        const snap = index.snapshot();
        checkSnapshot(snap, items, rand, `step ${step}`);
        if (rand() < 0.5) held.push({ snap, items });
      }
    }
    // Snapshots taken along the way still answer as the set was then.
    for (const [i, h] of held.entries()) checkSnapshot(h.snap, h.items, rand, `held snapshot ${i}`);
    checkSnapshot(index.snapshot(), itemsOf(), rand, "final");
  });

  it("keeps a snapshot's ids when a key it holds changes, across id chunks and as the index grows", () => {
    const index = new SyncIndex(kernels);
    const current = new Map<string, FieldRecord>();
    const rec = (i: number, v: number): FieldRecord => {
      const r = {
        soul: `s${i}`,
        field: "f",
        value: encodeValue(v),
        stateHi: 1,
        stateLo: v,
        actorHi: 0,
        actorLo: 1,
      };
      current.set(r.soul, r);
      return r;
    };
    const sortedIds = () => {
      const records = [...current.values()], ids = itemIds(kernels, records);
      const all = Array.from({ length: records.length }, (_, i) => ids.subarray(16 * i, 16 * i + 16));
      all.sort((a, b) => {
        for (let i = 0; i < ID_BYTES; i++) if (a[i] !== b[i]) return a[i] - b[i];
        return 0;
      });
      const out = new Uint8Array(16 * all.length);
      all.forEach((id, i) => out.set(id, 16 * i));
      return out;
    };
    const idsOf = (snap: IndexSnapshot) => {
      const out = new Uint8Array(ID_BYTES * snap.size);
      snap.copyIds(0, snap.size, out, 0);
      return out;
    };
    // More than one chunk of 65,536 slots.
    index.update(Array.from({ length: 70_000 }, (_, i) => rec(i, i)));
    const before = index.snapshot(), want = sortedIds();
    assert.deepEqual(idsOf(before), want);
    index.update([rec(5, 1e6), rec(69_000, 1e6 + 1)]); // in place, in both chunks: copied first
    index.update(Array.from({ length: 70_000 }, (_, i) => rec(70_000 + i, i))); // a third chunk
    index.update([rec(7, 2e6), rec(65_536, 2e6 + 1), rec(139_000, 3e6)]);
    assert.deepEqual(idsOf(before), want, "the first snapshot is unchanged");
    const after = index.snapshot();
    assert.equal(after.size, 140_000);
    assert.deepEqual(idsOf(after), sortedIds());
    assert.deepEqual(after.key(after.find(itemIds(kernels, [current.get("s65536")!]))), {
      soul: "s65536",
      field: "f",
    });
  });
});

describe("saved sync index", () => {
  const N = 70_000; // the id column in two chunks
  const ops = Array.from({ length: N / 2 }, (_, i) => [userOp(i, 0, 1, ACTOR_A), userOp(i, 1, 1, ACTOR_A)])
    .flat();

  it("a build after a save reads only the records changed since, and answers as a full build", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lattice-syncidx-"));
    try {
      let { db, reads } = await counted(dir);
      for (let i = 0; i < ops.length; i += 5_000) await db.applyOps(ops.slice(i, i + 5_000));
      let index = await SyncIndex.build(db);
      assert.equal(reads(), N, "the first build reads every record");
      await index.save();
      index.close();
      await db.close();

      ({ db, reads } = await counted(dir));
      // Changed while the index was not running: 3 replaced, 2 new.
      await db.applyOps([userOp(1, 0, 2, ACTOR_B), userOp(2, 1, 2, ACTOR_B), userOp(3, 0, 2, ACTOR_B)]);
      await db.put("new/1", { a: 1, b: "two" });
      index = await SyncIndex.build(db);
      assert.equal(index.buildStats.loaded, true);
      assert.equal(reads(), 5, "the build read only what changed since the save");
      assert.equal(index.size, N + 2);
      const full = await fullIndex(db);
      sameAs(index.snapshot(), full.snapshot());
      // And it keeps following commits: replacements and new keys after the load.
      await db.applyOps([userOp(4, 0, 3, ACTOR_B), userOp(N, 0, 1, ACTOR_B)]);
      await db.put("new/2", { c: true });
      const live = index.snapshot();
      full.update((await storeOf(db).changes(0, { limit: Infinity })).records);
      sameAs(live, full.snapshot());
      index.close();
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is not used when the store cannot vouch for it (lost tag, short file): a full build", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lattice-syncidx-"));
    try {
      let { db, reads } = await counted(dir);
      await db.applyOps(ops.slice(0, 2_000));
      let index = await SyncIndex.build(db);
      await index.save();
      index.close();
      // As if the commit of the tag had been lost in a crash, with commits made after it.
      await storeOf(db).commit({ meta: { [`aux.${AUX_NAME}`]: "0000000000000000:1" } });
      await db.applyOps([userOp(1, 0, 5, ACTOR_B)]);
      await db.close();
      ({ db, reads } = await counted(dir));
      index = await SyncIndex.build(db);
      assert.equal(index.buildStats.loaded, false);
      assert.equal(reads(), 2_000);
      sameAs(index.snapshot(), (await fullIndex(db)).snapshot());
      await index.save();
      index.close();
      await db.close();
      truncateSync(join(dir, `${AUX_NAME}.aux`), 100);
      ({ db, reads } = await counted(dir));
      index = await SyncIndex.build(db);
      assert.equal(index.buildStats.loaded, false);
      assert.equal(index.size, 2_000);
      index.close();
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
