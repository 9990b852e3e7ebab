/**
 * Upkeep of a vector index while it lives (core/db/staged_nearest.ts,
 * vectors.ts): a graph whose vectors are replaced and deleted keeps them as
 * dead waypoints until a compaction rebuilds it from its live vectors in the
 * background (the old graph answering meanwhile, every write during it
 * kept), and a graph is saved in the background — after its build, and once
 * enough changed — so that an open after a crash restores it instead of
 * rebuilding. Data come from the printed seed (`LATTICE_SEED` replays a run).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Database, type IndexInfo, systemWorld, type World } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import { prng, SEED } from "./_seed.ts";
import { eventually } from "./_eventually.ts";

console.log(`vectors_compaction.test.ts seed ${SEED}`);
const kernels = await selectKernels({ kernels: "auto" });
const DIM = 8;
const SPEC = { field: "v", dim: DIM, metric: "l2" as const, m: 8, efConstruction: 32 };

/** A memory store that outlives its Database (a crash leaves it as it was), with auxiliary data. */
class AuxStore extends MemoryStore {
  readonly aux = new Map<string, Uint8Array[]>();
  scans = 0;
  override close(): Promise<void> {
    return Promise.resolve();
  }
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

/** The true top k of `items` for `query` by L2 distance, ties by soul. */
function bruteForce(items: ReadonlyMap<string, Float32Array>, query: Float32Array, k: number): string[] {
  return [...items].map(([soul, v]) => ({ soul, d: kernels.l2(v, query) }))
    .sort((a, b) => a.d - b.d || (a.soul < b.soul ? -1 : a.soul > b.soul ? 1 : 0))
    .slice(0, k).map((s) => s.soul);
}

async function putAll(db: Database, items: ReadonlyMap<string, Float32Array>): Promise<void> {
  const all = [...items];
  for (let at = 0; at < all.length; at += 500) {
    await Promise.all(all.slice(at, at + 500).map(([soul, v]) => db.put(soul, { v })));
  }
}

/** Exact searches equal brute force, and each vector's own approximate search finds it. */
async function assertAnswers(db: Database, items: ReadonlyMap<string, Float32Array>, what: string) {
  const rand = prng(SEED + 7);
  for (let i = 0; i < 10; i++) {
    const q = Float32Array.from({ length: DIM }, () => rand() * 2 - 1);
    assert.deepEqual(
      (await db.search({ vector: q, k: 10, exact: true })).map((r) => r.soul),
      bruteForce(items, q, 10),
      what,
    );
  }
  let found = 0;
  const souls = [...items.keys()].filter((_, i) => i % 17 === 0);
  for (const soul of souls) {
    const [best] = await db.search({ vector: items.get(soul)!, k: 1 });
    if (best?.soul === soul || best?.score === 0) found++;
  }
  assert.ok(found >= 0.95 * souls.length, `${what}: ${found} of ${souls.length} found by their own vector`);
}

const info = (db: Database): IndexInfo => db.indexes()[0];

describe(`vector index upkeep: compaction and background saves (seed ${SEED})`, () => {
  const rand = prng(SEED);
  const vector = (): Float32Array => Float32Array.from({ length: DIM }, () => Math.fround(rand() * 2 - 1));

  for (const quantize of [undefined, "int8" as const]) {
    it(`rebuilds a graph full of replaced vectors in the background, keeping every write made meanwhile (${quantize ?? "f32"})`, async () => {
      const db = await Database.create({ store: new MemoryStore(), kernels });
      try {
        await db.createIndex({ ...SPEC, quantize });
        const items = new Map<string, Float32Array>(
          Array.from({ length: 1200 }, (_, i) => [`doc/${i}`, vector()]),
        );
        await putAll(db, items);
        assert.equal(info(db).dead, 0);
        // Replace vectors until the dead waypoints pass half the live ones: a compaction starts.
        const replaced = new Map<string, Float32Array>();
        for (let i = 0; i < 599; i++) replaced.set(`doc/${i}`, vector());
        await putAll(db, replaced);
        for (const [soul, v] of replaced) items.set(soul, v);
        assert.deepEqual([info(db).state, info(db).dead], ["ready", 599], "599 dead: not yet");
        await db.put("doc/599", { v: items.get("doc/599")!.map((x) => -x) });
        items.set("doc/599", items.get("doc/599")!.map((x) => -x));
        assert.equal(info(db).state, "building", "600 dead (half of 1200): compacting");
        assert.equal(info(db).dead, 600, "the old graph answers meanwhile");
        // Writes during the compaction: new souls, replaced ones, deleted ones.
        for (let i = 0; i < 50; i++) {
          const soul = i % 2 === 0 ? `new/${i}` : `doc/${1000 + i}`;
          const v = vector();
          await db.put(soul, { v });
          items.set(soul, v);
        }
        const gone = new Map<string, Float32Array>();
        for (const soul of ["doc/3", "doc/700", "new/0"]) {
          await db.delete(soul);
          gone.set(soul, items.get(soul)!);
          items.delete(soul);
        }
        await assertAnswers(db, items, "during the compaction");
        await eventually("the compaction ends", () => info(db).state === "ready");
        assert.equal(info(db).count, items.size);
        // Writes during the compaction to souls the rebuild had passed leave dead nodes in the new graph
        // too (at most one each); the 1200 + 600 of the old graph are gone.
        assert.ok(info(db).dead <= 53, `dead after the compaction: ${info(db).dead}`);
        await assertAnswers(db, items, "after the compaction");
        for (const [soul, v] of gone) {
          for (const exact of [true, false]) {
            const hits = await db.search({ vector: v, k: 5, exact });
            assert.ok(hits.every((r) => r.soul !== soul), `${soul} stays deleted`);
          }
        }
      } finally {
        await db.close();
      }
    });
  }

  it("saves the graph in the background after its build: an open after a crash restores it", async () => {
    const store = new AuxStore();
    const seed = await Database.create({ store, kernels });
    const items = new Map<string, Float32Array>(
      Array.from({ length: 1500 }, (_, i) => [`doc/${i}`, vector()]),
    );
    // No index yet: the vectors go in as their stored bytes (little-endian f32).
    await Promise.all([...items].map(([soul, v]) => seed.put(soul, { v: new Uint8Array(v.slice().buffer) })));
    await seed.close();
    const first = await Database.create({ store, kernels });
    await first.createIndex(SPEC); // over stored data: the graph is built in the background
    assert.equal(info(first).state, "building");
    await eventually("a save after the build", () => store.aux.has("vector-index-0"));
    // A crash: the first database never closes. The next open restores what was saved.
    store.scans = 0;
    const second = await Database.create({ store, kernels });
    try {
      assert.equal(store.scans, 0, "restored, not rebuilt");
      assert.deepEqual([info(second).state, info(second).count], ["ready", 1500]);
      await assertAnswers(second, items, "restored");
    } finally {
      await second.close();
      await first.close();
    }
  });

  it("saves again once a quarter of the vectors changed and a minute passed", async () => {
    let ahead = 0;
    const world: World = { ...systemWorld, monotonic: () => systemWorld.monotonic() + ahead };
    const store = new AuxStore();
    const db = await Database.create({ store, kernels, world });
    try {
      await db.createIndex(SPEC);
      const items = new Map<string, Float32Array>(
        Array.from({ length: 4000 }, (_, i) => [`doc/${i}`, vector()]),
      );
      await putAll(db, items);
      assert.equal(store.aux.size, 0, "4000 changes, but within a minute of the open: no save");
      ahead = 61_000;
      await db.put("one/more", { v: vector() });
      await eventually("a save after a minute", () => store.aux.has("vector-index-0"));
      const saved = store.aux.get("vector-index-0")!;
      await db.put("and/another", { v: vector() });
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(store.aux.get("vector-index-0")![1].length, saved[1].length, "two changes: no new save");
    } finally {
      await db.close();
    }
  });
});
