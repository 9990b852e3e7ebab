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
import { HnswNearest } from "../core/db/hnsw_nearest.ts";
import { SEED } from "./_seed.ts";
import { clustered } from "./_vectors.ts";
import { deleteAndMove } from "./_vector_churn.ts";

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

/** A kept memory store with auxiliary data, as the durable engines have, that counts its scans. */
class AuxStore extends KeptStore {
  readonly aux = new Map<string, Uint8Array[]>();
  scans = 0;
  override changes(after: number, options: Parameters<MemoryStore["changes"]>[1]) {
    this.scans++;
    return super.changes(after, options);
  }
  readAux(name: string): Promise<Uint8Array[] | undefined> {
    return Promise.resolve(this.aux.get(name)?.map((p) => p.slice()));
  }
  writeAux(name: string, parts: readonly Uint8Array[]): Promise<void> {
    this.aux.set(name, parts.map((p) => p.slice()));
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
    const { gone } = await deleteAndMove(db, items, 400, 5, [{ ef: 200 }]);
    assert.equal(db.indexes()[0].count, COUNT - gone.size);
    await db.close();
  });

  it("HnswNearest: removed and replaced souls never come back from the graph itself", () => {
    const spec = { field: "v", dim: DIM, metric: "cosine" as const, m: 8, efConstruction: 64, ef: 50 };
    const index = new HnswNearest(kernels, spec);
    const some = items.slice(0, 2000);
    for (const it of some) index.set(it.soul, it.v);
    const far = new Float32Array(DIM).fill(1);
    for (let i = 0; i < 600; i++) i % 2 === 0 ? index.remove(some[i].soul) : index.set(some[i].soul, far);
    assert.equal(index.size, 1700);
    for (let i = 0; i < 600; i += 7) {
      for (const exact of [false, true]) {
        const { souls, scores } = index.ranked(some[i].v, 30, "cosine", { exact });
        // Removed nodes stay in the graph as waypoints and take room in the candidate list, so an
        // approximate ranking may come back short (the search then asks for more).
        if (exact) assert.equal(souls.length, 30);
        else assert.ok(souls.length > 0);
        for (let j = 0; j < souls.length; j++) {
          assert.equal(typeof souls[j], "string");
          const at = Number(souls[j]?.slice(4));
          assert.ok(!(at < 600 && at % 2 === 0), `${souls[j]} was removed`);
          if (at < 600) assert.ok(scores[j] < 0.5, `${souls[j]} comes back with its old vector`);
        }
      }
    }
    index.dispose();
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

  it("restores a saved graph on open, and never one older than the store (a crash after a write)", async () => {
    const store = new AuxStore();
    const first = await Database.create({ store, kernels });
    await first.createIndex({ field: "v", dim: DIM, metric: "cosine", m: 8, efConstruction: 64 });
    const some = items.slice(0, 3000);
    await putAll(first, some);
    const asked = queries.slice(0, 8).flatMap((
      vector,
    ) => [{ vector, k: 10, exact: true }, { vector, k: 10 }]);
    const before = await Promise.all(asked.map((q) => first.search(q)));
    await first.close();
    assert.deepEqual([...store.aux.keys()], ["vector-index-0"], "saved at close");

    store.scans = 0;
    const second = await Database.create({ store, kernels });
    assert.equal(store.scans, 0, "restored, not rebuilt");
    assert.deepStrictEqual(await Promise.all(asked.map((q) => second.search(q))), before, "the same graph");
    // Written after the save, then a crash: the save is stale and must not be used.
    await second.put("new", { v: queries[0], tag: 1 });
    await second.delete(some[5].soul);
    await second.put(some[6].soul, { v: queries[1] });
    store.scans = 0;
    const third = await Database.create({ store, kernels });
    assert.ok(store.scans > 0, "rebuilt");
    assert.equal(third.indexes()[0].count, 3000);
    assert.deepEqual((await third.search({ vector: queries[0], k: 1 })).map((r) => r.soul), ["new"]);
    assert.deepEqual((await third.search({ vector: queries[1], k: 1 })).map((r) => r.soul), [some[6].soul]);
    const all = await third.search({ vector: some[5].v, k: 1000, exact: true });
    assert.ok(all.every((r) => r.soul !== some[5].soul), "a deleted vector stays deleted");
    await third.close();

    // A save that does not restore (damaged graph bytes) means a rebuild, not an error.
    const [header, graph] = store.aux.get("vector-index-0")!;
    store.aux.set("vector-index-0", [header, graph.subarray(0, graph.length >> 1)]);
    store.scans = 0;
    const fourth = await Database.create({ store, kernels });
    assert.ok(store.scans > 0, "rebuilt");
    assert.deepEqual((await fourth.search({ vector: queries[0], k: 1 })).map((r) => r.soul), ["new"]);
    await fourth.close();
  });
});
