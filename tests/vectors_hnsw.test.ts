/**
 * `db.search` on the HNSW index (core/db/hnsw_nearest.ts): recall@10 of the
 * default search against `exact: true` on 10k × 384 clustered data, filtered
 * search at 0.1%, 1% and 50% selectivity (exact answers equal to brute
 * force, approximate ones with recall ≥ 0.95, only matching nodes), deleted
 * and overwritten vectors through the graph path, and close/reopen (the
 * index rebuilt from the store). Data come from the printed seed
 * (`LATTICE_SEED` replays a run).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Database, type Metric, open, type SearchResult } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import { SEED } from "./_seed.ts";
import { clustered } from "./_vectors.ts";

console.log(`vectors_hnsw.test.ts seed ${SEED}`);
const kernels = await selectKernels({ kernels: "auto" });

interface Item {
  readonly soul: string;
  readonly v: Float32Array;
  readonly tag: number;
}

/** The true top k of `items` for `query`, best first, ties by soul. */
function bruteForce(items: readonly Item[], query: Float32Array, k: number, metric: Metric): string[] {
  const scored = items.map(({ soul, v }) => ({ soul, score: kernels[metric](v, query) }));
  const sign = metric === "l2" ? 1 : -1;
  scored.sort((a, b) => sign * (a.score - b.score) || (a.soul < b.soul ? -1 : a.soul > b.soul ? 1 : 0));
  return scored.slice(0, k).map((s) => s.soul);
}

/** Share of `truth` found in `got`. */
function recall(got: readonly SearchResult[], truth: readonly string[]): number {
  const want = new Set(truth);
  return got.filter((r) => want.has(r.soul)).length / truth.length;
}

async function putAll(db: Database, items: readonly Item[]): Promise<void> {
  for (let at = 0; at < items.length; at += 500) {
    await Promise.all(items.slice(at, at + 500).map(({ soul, v, tag }) => db.put(soul, { v, tag })));
  }
}

/** A memory store that outlives the Database closing it, so that a second one can open it. */
class KeptStore extends MemoryStore {
  override close(): Promise<void> {
    return Promise.resolve();
  }
}

const COUNT = 10_000;
const DIM = 384;
const set = clustered(SEED >>> 0, COUNT + 40, DIM);
/** `tag` is `i % 1000`: `tag < 1` matches 0.1%, `tag < 10` 1%, `tag < 500` 50%. */
const items: Item[] = set.rows.slice(0, COUNT).map((v, i) => ({ soul: `doc/${i}`, v, tag: i % 1000 }));
const queries = set.rows.slice(COUNT);

describe(`vector search on the HNSW index (seed ${SEED})`, () => {
  let db: Database;

  it(`recall@10 ≥ 0.95 at the default ef against exact search, 10k × 384 clustered (seed ${SEED})`, async () => {
    db = await open({ storage: "memory" });
    await db.createIndex({ field: "v", dim: DIM, metric: "cosine" });
    await putAll(db, items);
    assert.equal(db.indexes()[0].count, COUNT);
    let found = 0, narrow = 0;
    for (const vector of queries) {
      const exact = await db.search({ vector, k: 10, exact: true });
      assert.deepEqual(
        exact.map((r) => r.soul),
        bruteForce(items, vector, 10, "cosine"),
        "exact is brute force",
      );
      found += recall(await db.search({ vector, k: 10 }), exact.map((r) => r.soul));
      narrow += recall(await db.search({ vector, k: 10, ef: 1 }), exact.map((r) => r.soul));
    }
    const r = found / queries.length;
    assert.ok(r >= 0.95, `recall@10 ${r} at the default ef`);
    // The approximate path is taken, and ef reaches it: a one-candidate list misses some of the best.
    assert.ok(
      narrow / queries.length < r,
      `recall@10 ${narrow / queries.length} at ef 1, ${r} at the default`,
    );
  });

  for (const [limit, share] of [[1, "0.1%"], [10, "1%"], [500, "50%"]] as const) {
    it(`filtered at ${share}: only matching nodes, exact = brute force, approximate recall ≥ 0.95`, async () => {
      const matching = items.filter((it) => it.tag < limit);
      let found = 0;
      for (const vector of queries.slice(0, 10)) {
        const where = { tag: { lt: limit } };
        const truth = bruteForce(matching, vector, 10, "cosine");
        const exact = await db.search({ vector, k: 10, where, exact: true });
        assert.deepEqual(exact.map((r) => r.soul), truth);
        const approx = await db.search({ vector, k: 10, where });
        assert.equal(approx.length, 10);
        for (const r of approx) assert.ok((r.node.tag as number) < limit, `${r.soul} does not match`);
        for (let i = 1; i < approx.length; i++) {
          assert.ok(approx[i - 1].score >= approx[i].score, "best first");
        }
        found += recall(approx, truth);
      }
      assert.ok(found / 10 >= 0.95, `recall@10 ${found / 10}`);
    });
  }

  it("never returns deleted or overwritten vectors through the graph", async () => {
    const far = new Float32Array(DIM).fill(0);
    far[0] = -1;
    const gone = new Set<string>(), moved = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const soul = items[i * 7].soul;
      if (i % 2 === 0) {
        await db.delete(soul);
        gone.add(soul);
      } else {
        await db.put(soul, { v: far });
        moved.add(soul);
      }
    }
    assert.equal(db.indexes()[0].count, COUNT - gone.size);
    for (let i = 0; i < 400; i += 5) {
      const vector = items[i * 7].v; // the old vector: its soul would rank first
      for (const r of await db.search({ vector, k: 10, ef: 200 })) {
        assert.ok(!gone.has(r.soul), `${r.soul} was deleted`);
        if (moved.has(r.soul)) assert.ok(r.score < 0.5, `${r.soul} comes back with its old vector`);
      }
    }
    const [best] = await db.search({ vector: far, k: 1 });
    assert.ok(moved.has(best.soul), "an overwritten vector is found at its new place");
    await db.close();
  });

  it("gives the same exact answers after close and reopen (the graph rebuilt from the store)", async () => {
    const store = new KeptStore();
    const first = await Database.create({ store, kernels });
    await first.createIndex({ field: "v", dim: DIM, metric: "l2", m: 8, efConstruction: 64 });
    const some = items.slice(0, 3000);
    await putAll(first, some);
    await first.delete(some[0].soul);
    await first.put(some[1].soul, { v: some[2].v });
    const asked = queries.slice(0, 8).map((vector) => ({ vector, k: 20, exact: true }));
    const before = await Promise.all(asked.map((q) => first.search(q)));
    await first.close();
    const second = await Database.create({ store, kernels });
    assert.deepStrictEqual(second.indexes()[0].count, 2999);
    assert.deepStrictEqual(await Promise.all(asked.map((q) => second.search(q))), before);
    const approx = await second.search({ vector: some[2].v, k: 2 });
    assert.deepEqual(approx.map((r) => [r.soul, r.score]).sort(), [[some[1].soul, 0], [some[2].soul, 0]]);
    await second.close();
  });
});
