// @server-only: a database directory on disk (SQLite close and reopen)
/**
 * `db.search` on a quantized index (`createIndex({ quantize: "int8" })`,
 * core/db/rescore.ts): recall@10 ≥ 0.95 at the default ef on 10k × 384
 * clustered data once the candidates are re-scored in f32, exact searches
 * (also filtered) equal to f32 brute force with f32 scores, deleted and
 * overwritten vectors never coming back, close and reopen on SQLite (the
 * quantized graph saved and restored), and bad declarations refused. Data
 * come from the printed seed (`LATTICE_SEED` replays a run).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Database, open, type SearchResult } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { HnswNearest } from "../core/db/hnsw_nearest.ts";
import { parseSpecs, sameSpec } from "../core/db/vector_spec.ts";
import { SEED } from "./_seed.ts";
import { clustered } from "./_vectors.ts";
import { deleteAndMove } from "./_vector_churn.ts";

console.log(`vectors_int8.test.ts seed ${SEED}`);
const kernels = await selectKernels({ kernels: "auto" });

interface Item {
  readonly soul: string;
  readonly v: Float32Array;
  readonly tag: number;
}

/** The f32 top k of `items` for `query`, best first, ties by soul: souls and scores. */
function bruteForce(items: readonly Item[], query: Float32Array, k: number): [string, number][] {
  const scored = items.map(({ soul, v }) => ({ soul, score: kernels.cosine(query, v) }));
  scored.sort((a, b) => b.score - a.score || (a.soul < b.soul ? -1 : a.soul > b.soul ? 1 : 0));
  return scored.slice(0, k).map((s) => [s.soul, Math.fround(s.score)]);
}

function recall(got: readonly SearchResult[], truth: readonly [string, number][]): number {
  const want = new Set(truth.map(([soul]) => soul));
  return got.filter((r) => want.has(r.soul)).length / truth.length;
}

async function putAll(db: Database, items: readonly Item[]): Promise<void> {
  for (let at = 0; at < items.length; at += 500) {
    await Promise.all(items.slice(at, at + 500).map(({ soul, v, tag }) => db.put(soul, { v, tag })));
  }
}

const COUNT = 10_000;
const DIM = 384;
const set = clustered(SEED >>> 0, COUNT + 30, DIM);
/** `tag` is `i % 1000`: `tag < 1` matches 0.1%. */
const items: Item[] = set.rows.slice(0, COUNT).map((v, i) => ({ soul: `doc/${i}`, v, tag: i % 1000 }));
const queries = set.rows.slice(COUNT);

describe(`vector search on an int8 index (seed ${SEED})`, () => {
  let db: Database;

  it(`recall@10 ≥ 0.95 at the default ef, 10k × 384 clustered; exact = f32 brute force (seed ${SEED})`, async () => {
    db = await open({ storage: "memory" });
    const info = await db.createIndex({ field: "v", dim: DIM, quantize: "int8" });
    assert.equal(info.quantize, "int8");
    await putAll(db, items);
    assert.deepEqual([db.indexes()[0].quantize, db.indexes()[0].state], ["int8", "ready"]);
    let found = 0;
    for (const vector of queries) {
      const truth = bruteForce(items, vector, 10);
      const exact = await db.search({ vector, k: 10, exact: true });
      assert.deepStrictEqual(exact.map((r) => [r.soul, r.score]), truth, "exact is f32 brute force");
      const approx = await db.search({ vector, k: 10 });
      for (const r of approx) {
        assert.equal(
          r.score,
          Math.fround(kernels.cosine(vector, items[Number(r.soul.slice(4))].v)),
          "f32 scores",
        );
      }
      found += recall(approx, truth);
    }
    const r = found / queries.length;
    assert.ok(r >= 0.95, `recall@10 ${r} at the default ef`);
  });

  it("filtered at 0.1%: exact = f32 brute force of the matching set", async () => {
    const matching = items.filter((it) => it.tag < 1);
    for (const vector of queries.slice(0, 5)) {
      const exact = await db.search({ vector, k: 10, where: { tag: { lt: 1 } }, exact: true });
      assert.deepStrictEqual(exact.map((r) => [r.soul, r.score]), bruteForce(matching, vector, 10));
    }
  });

  it("exact search re-scores every vector the quantization error could lift into the top k", async () => {
    // Near-duplicates: differences below the codes' resolution, so the quantized order is mostly noise.
    const mem = await open({ storage: "memory" });
    try {
      await mem.createIndex({ field: "w", dim: 64, quantize: "int8" });
      const near = clustered((SEED >>> 0) + 1, 2_010, 64, 1, 0.002);
      const some = near.rows.slice(0, 2_000).map((v, i) => ({ soul: `n/${i}`, v, tag: 0 }));
      for (let at = 0; at < some.length; at += 500) {
        await Promise.all(some.slice(at, at + 500).map(({ soul, v }) => mem.put(soul, { w: v })));
      }
      for (const vector of near.rows.slice(2_000)) {
        const got = await mem.search({ vector, k: 10, exact: true });
        assert.deepStrictEqual(got.map((r) => [r.soul, r.score]), bruteForce(some, vector, 10));
      }
    } finally {
      await mem.close();
    }
  });

  it("never returns deleted or overwritten vectors", async () => {
    await deleteAndMove(db, items, 300, 6, [{ exact: false }, { exact: true }]);
    await db.close();
  });

  it("keeps the quantized index across close and reopen (SQLite, the saved graph restored)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-int8-"));
    try {
      const some = items.slice(0, 2_000);
      const first = await open({ path: dir });
      await first.createIndex({
        field: "v",
        dim: DIM,
        metric: "l2",
        m: 8,
        efConstruction: 64,
        quantize: "int8",
      });
      await putAll(first, some);
      await first.delete(some[0].soul);
      const asked = queries.slice(0, 6).flatMap((
        vector,
      ) => [{ vector, k: 10, exact: true }, { vector, k: 10 }]);
      const before = await Promise.all(asked.map((q) => first.search(q)));
      await first.close();
      assert.ok(
        fs.readdirSync(dir, { recursive: true }).some((f) => String(f).includes("vector-index")),
        "saved",
      );

      const second = await open({ path: dir });
      const [info] = second.indexes();
      assert.deepEqual([info.quantize, info.state, info.count], ["int8", "ready", 1_999]);
      assert.deepStrictEqual(
        await Promise.all(asked.map((q) => second.search(q))),
        before,
        "the same answers",
      );
      const l2 = (a: Float32Array, b: Float32Array) => Math.fround(kernels.l2(a, b));
      for (const [i, vector] of queries.slice(0, 6).entries()) {
        const truth = some.slice(1).map(({ soul, v }) => ({ soul, score: l2(vector, v) }));
        truth.sort((a, b) => a.score - b.score || (a.soul < b.soul ? -1 : 1));
        assert.deepStrictEqual(
          before[2 * i].map((r) => [r.soul, r.score]),
          truth.slice(0, 10).map((t) => [t.soul, t.score]),
        );
      }
      await second.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses bad declarations; declarations kept without quantize still read", async () => {
    const mem = await open({ storage: "memory" });
    try {
      for (const quantize of ["int4", "INT8", true, 8, null]) {
        await assert.rejects(
          mem.createIndex({ field: "v", dim: 4, quantize } as never),
          RangeError,
          String(quantize),
        );
      }
      await mem.createIndex({ field: "v", dim: 4 });
      await assert.rejects(
        mem.createIndex({ field: "v", dim: 4, quantize: "int8" }),
        RangeError,
        "other settings",
      );
      assert.equal(mem.indexes()[0].quantize, undefined);
      assert.equal("quantize" in mem.indexes()[0], false, "f32 declarations keep their JSON");
    } finally {
      await mem.close();
    }
    const old = '[{"field":"v","dim":4,"metric":"cosine","m":16,"efConstruction":200,"ef":50}]';
    const [spec] = parseSpecs(old);
    assert.equal(spec.quantize, undefined);
    assert.equal(sameSpec(spec, { ...spec, quantize: "int8" }), false);
    const [q] = parseSpecs(JSON.stringify([{ ...spec, quantize: "int8" }]));
    assert.equal(q.quantize, "int8");
    // A saved f32 graph does not restore under an int8 declaration.
    const f32 = new HnswNearest(kernels, spec);
    f32.set("a", new Float32Array([1, 2, 3, 4]));
    assert.throws(() => new HnswNearest(kernels, q, f32.saved()), RangeError);
    f32.dispose();
  });
});
