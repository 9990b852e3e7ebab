/**
 * Vector indexes and `db.search` (core/db/vectors.ts, vector_search.ts) on
 * the memory engine: exact top-k against a brute-force scan for each metric,
 * filtered search at 0.1%, 1% and 50% selectivity, deletes and overwrites,
 * replicas fed the same ops in other orders, deferred ops, bad vectors, and
 * the checks of createIndex and search. Random data comes from the printed
 * seed (LATTICE_SEED replays a run).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Database, decodeVector, type Metric, open, type SearchResult } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import type { Op } from "../core/op.ts";
import { prng, SEED } from "./_seed.ts";

console.log(`vectors.test.ts seed ${SEED}`);
const kernels = await selectKernels({ kernels: "auto" });
const METRICS: Metric[] = ["cosine", "dot", "l2"];

function randomVector(rand: () => number, dim: number): number[] {
  return Array.from({ length: dim }, () => Math.fround(rand() * 2 - 1));
}

/** The true top k of `items` for `query`: every score computed, sorted best first, ties by soul. */
function bruteForce(
  items: readonly { soul: string; v: readonly number[] }[],
  query: readonly number[],
  k: number,
  metric: Metric,
): { soul: string; score: number }[] {
  const q = new Float32Array(query);
  const scored = items.map(({ soul, v }) => ({ soul, score: kernels[metric](new Float32Array(v), q) }));
  const sign = metric === "l2" ? 1 : -1;
  scored.sort((a, b) => sign * (a.score - b.score) || (a.soul < b.soul ? -1 : a.soul > b.soul ? 1 : 0));
  return scored.slice(0, k);
}

const brief = (rs: readonly SearchResult[]) => rs.map(({ soul, score }) => ({ soul, score }));

async function putAll(
  db: Database,
  items: readonly { soul: string; v: readonly number[] }[],
  extra = (_i: number) => ({}),
) {
  await Promise.all(items.map(({ soul, v }, i) => db.put(soul, { v: [...v], ...extra(i) })));
}

describe("vector search", () => {
  for (const metric of METRICS) {
    it(`returns exactly the brute-force top k (${metric}), ties ordered by soul`, async () => {
      const rand = prng(SEED ^ metric.length);
      const db = await open({ storage: "memory" });
      await db.createIndex({ field: "v", dim: 16, metric });
      const items = Array.from({ length: 600 }, (_, i) => ({ soul: `n${i}`, v: randomVector(rand, 16) }));
      for (let i = 0; i < 40; i++) items.push({ soul: `dup${i}`, v: items[i % 4].v }); // equal scores
      await putAll(db, items);
      assert.equal(db.indexes()[0].count, items.length);
      for (let q = 0; q < 12; q++) {
        const query = q < 4 ? items[q].v : randomVector(rand, 16);
        for (const k of [1, 10, 37]) {
          const got = await db.search({ vector: query, k });
          assert.deepStrictEqual(brief(got), bruteForce(items, query, k, metric), `query ${q}, k ${k}`);
          for (const r of got) assert.ok(r.node.v instanceof Uint8Array);
        }
      }
      const all = await db.search({ vector: new Float32Array(items[0].v), k: 1000 });
      assert.equal(all.length, items.length, "k over the count returns every vector");
      await db.close();
    });
  }

  it("returns exactly the top k of the matching set at 0.1%, 1% and 50% selectivity", async () => {
    const rand = prng(SEED + 7);
    const db = await open({ storage: "memory" });
    await db.createIndex({ field: "v", dim: 8, metric: "cosine" });
    const items = Array.from({ length: 10_000 }, (_, i) => ({ soul: `doc/${i}`, v: randomVector(rand, 8) }));
    await putAll(db, items, (i) => ({ tag: i % 1000, group: i % 2 === 0 ? "even" : "odd" }));
    for (
      const [where, share] of [[{ tag: { lt: 1 } }, 0.001], [{ tag: { lt: 10 } }, 0.01], [
        { group: "even" },
        0.5,
      ]] as const
    ) {
      const matches = (i: number) => "group" in where ? i % 2 === 0 : i % 1000 < where.tag.lt;
      const matching = items.filter((_, i) => matches(i));
      assert.equal(matching.length, items.length * share);
      for (let q = 0; q < 3; q++) {
        const query = randomVector(rand, 8);
        const got = await db.search({ vector: query, k: 10, where });
        assert.deepStrictEqual(brief(got), bruteForce(matching, query, 10, "cosine"), JSON.stringify(where));
        for (const r of got) assert.ok(matches(Number(r.soul.slice(4))), `${r.soul} does not match`);
      }
    }
    assert.deepStrictEqual(await db.search({ vector: items[0].v, k: 5, where: { tag: 5000 } }), []);
    await db.close();
  });

  it("never returns deleted or overwritten vectors, and updates them in place", async () => {
    const db = await open({ storage: "memory" });
    await db.createIndex({ field: "v", dim: 2, metric: "l2" });
    await db.put("a", { v: [0, 0], name: "A" });
    await db.put("b", { v: [5, 5] });
    await db.put("c", { v: [9, 9] });
    const souls = async (vector: number[], k = 3) => (await db.search({ vector, k })).map((r) => r.soul);
    assert.deepEqual(await souls([0, 0]), ["a", "b", "c"]);
    await db.put("a", { v: [10, 10] }); // overwritten: now the farthest
    assert.deepEqual(await souls([0, 0]), ["b", "c", "a"]);
    assert.deepEqual((await db.search({ vector: [10, 10], k: 1 }))[0].score, 0);
    await db.put("a", { name: "still A" }); // another field: the vector stays
    assert.deepEqual(await souls([0, 0]), ["b", "c", "a"]);
    await db.delete("b", "v");
    assert.deepEqual(await souls([0, 0]), ["c", "a"]);
    assert.deepStrictEqual(await db.get("b"), undefined);
    await db.delete("c");
    assert.deepEqual(await souls([0, 0]), ["a"]);
    await db.put("a", { v: null });
    assert.deepEqual(await souls([0, 0]), []);
    assert.equal(db.indexes()[0].count, 0);
    await db.put("c", { v: [1, 1] }); // back after a delete
    assert.deepEqual(await souls([0, 0]), ["c"]);
    await db.close();
  });

  it("answers the same on replicas that received the same ops in different orders", async () => {
    const rand = prng(SEED + 11);
    const a = await open({ storage: "memory" });
    await a.createIndex({ field: "v", dim: 4, metric: "dot" });
    const items = Array.from({ length: 300 }, (_, i) => ({ soul: `n${i}`, v: randomVector(rand, 4) }));
    await putAll(a, items);
    for (let i = 0; i < 60; i++) await a.put(`n${i}`, { v: items[(i * 7) % 300].v }); // overwrites, ties
    for (let i = 60; i < 90; i++) await a.delete(`n${i}`);
    const ops: Op[] = [];
    for (let cursor: number | undefined, page;; cursor = page.cursor) {
      page = await a.exportOps({ cursor });
      ops.push(...page.ops);
      if (page.cursor === undefined) break;
    }
    const shuffled = [...ops];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const b = await open({ storage: "memory" });
    await b.createIndex({ field: "v", dim: 4, metric: "dot" }); // declared before the ops come
    for (let i = 0; i < shuffled.length; i += 37) await b.applyOps(shuffled.slice(i, i + 37));
    const c = await open({ storage: "memory" });
    await c.applyOps([...ops].reverse());
    await c.createIndex({ field: "v", dim: 4, metric: "dot" }); // declared after: built from the store
    for (let q = 0; q < 5; q++) {
      const query = { vector: randomVector(rand, 4), k: 25 };
      const want = brief(await a.search(query));
      assert.deepStrictEqual(brief(await b.search(query)), want);
      assert.deepStrictEqual(brief(await c.search(query)), want);
      assert.ok(want.every((r) => !/^n(6\d|7\d|8\d)$/.test(r.soul)), "deleted nodes never come back");
    }
    for (const db of [a, b, c]) await db.close();
  });

  it("indexes deferred ops when they come due, and foreign bad vectors are stored but not indexed", async () => {
    let now = 1_700_000_000_000;
    const db = await Database.create({ store: new MemoryStore(), kernels, now: () => now, maxDrift: 60_000 });
    await db.createIndex({ field: "v", dim: 2, metric: "l2" });
    const state = (ms: number) => ms.toString(16).padStart(12, "0") + "0000";
    const bytes = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);
    const actor = "00000000000000aa";
    const result = await db.applyOps([
      { soul: "late", field: "v", value: bytes([1, 1]), state: state(now + 3_600_000), actor },
      { soul: "short", field: "v", value: bytes([1]), state: state(now), actor }, // wrong dimension
      { soul: "nan", field: "v", value: bytes([NaN, 0]), state: state(now), actor },
      { soul: "text", field: "v", value: "not a vector", state: state(now), actor },
      { soul: "ok", field: "v", value: bytes([2, 2]), state: state(now), actor },
    ]);
    assert.deepEqual(result, { applied: 4, ignored: 0, deferred: 1 });
    assert.deepStrictEqual(await db.get("short"), { v: bytes([1]) }, "stored as it came");
    assert.equal((await db.get("text"))?.v, "not a vector");
    const souls = async () => (await db.search({ vector: [0, 0], k: 10 })).map((r) => r.soul);
    assert.deepEqual(await souls(), ["ok"]);
    now += 3_600_000;
    await db.processDeferred();
    assert.deepEqual(await souls(), ["late", "ok"]);
    // A bad foreign value over a good one drops the soul from the index.
    await db.applyOps([{ soul: "ok", field: "v", value: "gone", state: state(now + 1), actor }]);
    assert.deepEqual(await souls(), ["late"]);
    await db.close();
  });

  it("refuses bad vectors in a put, naming soul and field, and stores nothing of that put", async () => {
    const db = await open({ storage: "memory" });
    await db.createIndex({ field: "v", dim: 3 });
    const bad: [unknown, RegExp, string][] = [
      [[1, 2], /"v" of "x".*3 components, got 2/, "RangeError"],
      [[1, 2, 3, 4], /3 components, got 4/, "RangeError"],
      [new Float32Array(2), /got 2/, "RangeError"],
      [[1, NaN, 3], /component 1 is NaN/, "RangeError"],
      [[1, 2, Infinity], /component 2 is Infinity/, "RangeError"],
      [[1e39, 0, 0], /component 0 is 1e\+39/, "RangeError"],
      [new Float32Array([0, -Infinity, 0]), /component 1/, "RangeError"],
      [new Uint8Array(8), /8 bytes/, "RangeError"],
      [[1, "2", 3], /component 1 is not a number/, "TypeError"],
      ["1,2,3", /holds text: indexing text needs the database's embed function/, "TypeError"],
      [{ "#": "y" }, /must be a Float32Array/, "TypeError"],
      [{ nested: 1 }, /must be a Float32Array/, "TypeError"],
    ];
    for (const [v, message, name] of bad) {
      await assert.rejects(db.put("x", { name: "X", v, child: { w: 1 } }), (e: Error) => {
        assert.equal(e.name, name, String(v));
        assert.match(e.message, message);
        return true;
      });
      // In a nested object too: soul x/child.
      await assert.rejects(db.put("x", { name: "X", child: { v } }), /"v" of "x\/child"/);
    }
    assert.equal(await db.get("x"), undefined);
    assert.equal(await db.get("x/child"), undefined);
    assert.equal(await db.countNodes(), 0);
    // The three accepted forms store the same bytes.
    await db.put("p", { v: [0.5, -1, 2] });
    await db.put("q", { v: new Float32Array([0.5, -1, 2]) });
    await db.put("r", { v: (await db.get("p"))!.v });
    for (const soul of ["p", "q", "r"]) {
      assert.deepStrictEqual(
        decodeVector((await db.get(soul))!.v as Uint8Array),
        new Float32Array([0.5, -1, 2]),
      );
    }
    // Arrays stay refused in fields that are not indexed.
    await assert.rejects(db.put("s", { w: [1, 2, 3] }), TypeError);
    await db.close();
  });

  it("checks createIndex and search, and keeps one set of settings per field", async () => {
    const db = await open({ storage: "memory" });
    await assert.rejects(db.search({ vector: [1], k: 1 }), /no vector index is declared/);
    for (
      const [options, error] of [
        [{ field: "v" }, TypeError],
        [{ field: "v", dim: 0 }, RangeError],
        [{ field: "v", dim: 1.5 }, RangeError],
        [{ field: "v", dim: 70_000 }, RangeError],
        [{ field: "v", dim: "3" }, TypeError],
        [{ field: "v", dim: 3, metric: "manhattan" }, RangeError],
        [{ field: "v", dim: 3, m: 1 }, RangeError],
        [{ field: "v", dim: 3, ef: 0 }, RangeError],
        [{ field: "v", dim: 3, efConstruction: 10_001 }, RangeError],
        [{ field: "v", dim: 3, quantize: "int4" }, RangeError],
        [{ field: "", dim: 3 }, RangeError],
        [{ field: "v", dim: 3, colour: 1 }, TypeError],
        [null, TypeError],
      ] as const
    ) {
      await assert.rejects(db.createIndex(options as never), error, JSON.stringify(options));
    }
    assert.deepEqual(db.indexes(), []);
    const info = await db.createIndex({ field: "v", dim: 3, metric: "dot", m: 8 });
    assert.deepEqual(info, {
      field: "v",
      dim: 3,
      metric: "dot",
      m: 8,
      efConstruction: 200,
      ef: 50,
      count: 0,
      dead: 0,
      state: "ready",
    });
    assert.deepEqual(await db.createIndex({ field: "v", dim: 3, metric: "dot", m: 8 }), info, "same again");
    await assert.rejects(db.createIndex({ field: "v", dim: 4, metric: "dot", m: 8 }), /other settings/);
    await assert.rejects(db.createIndex({ field: "v", dim: 3 }), /other settings/); // cosine by default
    await db.put("a", { v: [1, 0, 0] });
    for (
      const [s, error] of [
        [{ vector: [1, 0], k: 1 }, /3 components, got 2/],
        [{ vector: [1, 0, NaN], k: 1 }, /component 2 is NaN/],
        [{ vector: [1, 0, 0], k: 0 }, /k must be an integer from 1 to 1000/],
        [{ vector: [1, 0, 0], k: 1001 }, /k must be/],
        [{ vector: [1, 0, 0], k: 1, ef: 0 }, /ef must be/],
        [{ vector: [1, 0, 0], k: 1, exact: "yes" }, /exact must be a boolean/],
        [{ vector: [1, 0, 0], k: 1, field: "w" }, /no vector index on field "w"/],
        [{ vector: [1, 0, 0], k: 1, where: { v: { near: 1 } } }, /Unknown condition/],
        [{ vector: "1,0,0", k: 1 }, /must be a Float32Array/],
        [{ vector: [1, 0, 0], k: 1, limit: 3 }, /unknown option "limit"/],
      ] as const
    ) {
      await assert.rejects(db.search(s as never), error, JSON.stringify(s));
    }
    // ef and exact are taken; every search is exact.
    assert.equal((await db.search({ vector: [1, 0, 0], k: 1, ef: 10, exact: false }))[0].soul, "a");
    await db.createIndex({ field: "w", dim: 2 });
    await assert.rejects(db.search({ vector: [1, 0, 0], k: 1 }), /several fields are indexed/);
    assert.equal((await db.search({ vector: [1, 0, 0], k: 1, field: "v" }))[0].soul, "a");
    assert.deepEqual(db.indexes().map((i) => [i.field, i.count]), [["v", 1], ["w", 0]]);
    await db.close();
    assert.throws(() => db.indexes(), /closed/);
    await assert.rejects(db.search({ vector: [1, 0, 0], k: 1 }), /closed/);
  });

  it("never lets the build scan undo a write committed while it waits for a page", async () => {
    let release!: () => void, scanning!: () => void;
    const gate = new Promise<void>((r) => release = r), started = new Promise<void>((r) => scanning = r);
    class SlowScan extends MemoryStore {
      override async changes(after: number, options: Parameters<MemoryStore["changes"]>[1]) {
        const page = await super.changes(after, options); // read now, handed over after the gate
        scanning();
        await gate;
        return page;
      }
    }
    const db = await Database.create({ store: new SlowScan(), kernels });
    const bytes = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);
    for (let i = 0; i < 20; i++) await db.put(`n${i}`, { v: bytes([i, 0]) });
    const declared = db.createIndex({ field: "v", dim: 2, metric: "l2" });
    await started;
    await db.put("n0", { v: [500, 0] }); // after the page was read, before the scan applies it
    await db.put("n1", { v: null });
    release();
    assert.equal((await declared).count, 19);
    assert.deepStrictEqual(brief(await db.search({ vector: [500, 0], k: 1 })), [{ soul: "n0", score: 0 }]);
    assert.ok((await db.search({ vector: [1, 0], k: 20 })).every((r) => r.soul !== "n1"));
    await db.close();
  });

  it("indexes what is already stored when an index is declared, and writes racing the build", async () => {
    const db = await open({ storage: "memory" });
    for (let i = 0; i < 50; i++) {
      await db.put(`n${i}`, { v: new Uint8Array(new Float32Array([i, 0]).buffer) });
    }
    await db.put("odd", { v: "text before the index" });
    const bytes = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);
    let done = false, last = 0;
    const declared = db.createIndex({ field: "v", dim: 2, metric: "l2" }).finally(() => done = true);
    const writer = (async () => { // writes n0 while the index is declared and built
      for (let i = 1; !done; i++) await db.put("n0", { v: bytes([100 + i, 0]) }), last = 100 + i;
    })();
    const info = await declared;
    await writer;
    assert.ok(last > 100);
    assert.equal(info.count, 50);
    const best = await db.search({ vector: [last, 0], k: 2 });
    assert.deepStrictEqual(brief(best), [{ soul: "n0", score: 0 }, { soul: "n49", score: last - 49 }]);
    await db.close();
  });
});
