/**
 * The HNSW graph built in the background (core/db/staged_nearest.ts,
 * vectors.ts): open without a usable save and `createIndex` over stored data
 * resolve before the graph is complete, answer searches exactly meanwhile
 * (equal to brute force), keep every write and delete made during the build,
 * stop cleanly when the database closes mid-build (nothing half-built is
 * saved) and hand over to the graph once it is complete. The build's slices
 * run when the test says so: a World that holds them (the build's timers are
 * the only unref'd zero-delay ones). Data come from the printed seed
 * (`LATTICE_SEED` replays a run).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Database, type Metric, systemWorld, type Timer, type World } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import { SEED } from "./_seed.ts";
import { clustered } from "./_vectors.ts";

console.log(`vectors_background.test.ts seed ${SEED}`);
const kernels = await selectKernels({ kernels: "auto" });

const DIM = 64;
const COUNT = 3000;
const METRIC: Metric = "l2";
const SPEC = { field: "v", dim: DIM, metric: METRIC, m: 8, efConstruction: 64 };
/** Rows from `COUNT`: 100 new souls, 400 vectors that replace stored ones, 200 queries. */
const set = clustered(SEED >>> 0, COUNT + 700, DIM);
const queries = set.rows.slice(COUNT + 500);

/** The true top k of `items` (soul → vector) for `query`, ties by soul. */
function bruteForce(items: ReadonlyMap<string, Float32Array>, query: Float32Array, k: number): string[] {
  const scored = [...items].map(([soul, v]) => ({ soul, score: kernels.l2(v, query) }));
  scored.sort((a, b) => a.score - b.score || (a.soul < b.soul ? -1 : a.soul > b.soul ? 1 : 0));
  return scored.slice(0, k).map((s) => s.soul);
}

/** A memory store that outlives the Database closing it, with auxiliary data as the durable engines have. */
class AuxStore extends MemoryStore {
  readonly aux = new Map<string, Uint8Array[]>();
  override close(): Promise<void> {
    return Promise.resolve();
  }
  readAux(name: string): Promise<Uint8Array[] | undefined> {
    return Promise.resolve(this.aux.get(name)?.map((p) => p.slice()));
  }
  writeAux(name: string, parts: readonly Uint8Array[]): Promise<void> {
    this.aux.set(name, parts.map((p) => p.slice()));
    return Promise.resolve();
  }
}

/** The system world, except that the graph build's slices wait until {@link Gate.slice} runs one. */
class Gate {
  readonly #held: (() => void)[] = [];
  #next = 0;
  readonly world: World = {
    ...systemWorld,
    setTimer: (fn: () => void, ms: number, unref?: boolean): Timer => {
      if (ms !== 0 || unref !== true) return systemWorld.setTimer(fn, ms, unref);
      this.#held.push(fn);
      return -++this.#next as Timer;
    },
    clearTimer: (t: Timer | undefined): void => {
      if (typeof t === "number" && t < 0) this.#held.length = 0;
      else systemWorld.clearTimer(t);
    },
  };
  /** Runs the held slice; false when none is held (the build is over or stopped). */
  slice(): boolean {
    const fn = this.#held.shift();
    fn?.();
    return fn !== undefined;
  }
}

/** Puts `items`, as stored bytes (what an index keeps; a field with no index takes them as they are). */
async function putAll(db: Database, items: ReadonlyMap<string, Float32Array>): Promise<void> {
  const all = [...items];
  for (let at = 0; at < all.length; at += 500) {
    const part = all.slice(at, at + 500);
    await Promise.all(part.map(([soul, v]) => db.put(soul, { v: new Uint8Array(v.slice().buffer) })));
  }
}

/** A store holding `COUNT` vectors of an index whose save is missing (as after a crash). */
async function storeWithoutSave(): Promise<{ store: AuxStore; items: Map<string, Float32Array> }> {
  const store = new AuxStore();
  const items = new Map(set.rows.slice(0, COUNT).map((v, i) => [`doc/${i}`, v]));
  const db = await Database.create({ store, kernels });
  await db.createIndex(SPEC);
  await putAll(db, items);
  await db.close();
  store.aux.clear();
  return { store, items };
}

/** Asserts that exact and default searches of `db` are the brute-force answers over `items`. */
async function assertExact(
  db: Database,
  items: ReadonlyMap<string, Float32Array>,
  what: string,
): Promise<void> {
  for (const vector of queries.slice(0, 12)) {
    const truth = bruteForce(items, vector, 10);
    assert.deepEqual((await db.search({ vector, k: 10, exact: true })).map((r) => r.soul), truth, what);
    assert.deepEqual((await db.search({ vector, k: 10, ef: 1 })).map((r) => r.soul), truth, `${what} (ef 1)`);
  }
}

/** Whether `ef: 1` searches of `db` miss some of the exact answers (the graph answers them). */
async function graphAnswers(db: Database): Promise<boolean> {
  for (const vector of queries) {
    const exact = (await db.search({ vector, k: 10, exact: true })).map((r) => r.soul);
    const approx = (await db.search({ vector, k: 10, ef: 1 })).map((r) => r.soul);
    if (exact.join() !== approx.join()) return true;
  }
  return false;
}

describe(`vector indexes built in the background (seed ${SEED})`, () => {
  it("open without a save resolves before the graph, answers exactly, keeps writes made during the build", async () => {
    const { store, items } = await storeWithoutSave();
    const gate = new Gate();
    const db = await Database.create({ store, kernels, world: gate.world });
    const [info] = db.indexes();
    assert.equal(info.state, "building", "open did not wait for the graph");
    assert.deepEqual(info.building, { done: 0, total: COUNT });
    assert.equal(info.count, COUNT);
    await assertExact(db, items, "exact while building");

    // One slice is bounded: the graph grows, and is not complete.
    assert.ok(gate.slice());
    const { done } = db.indexes()[0].building!;
    assert.ok(done > 0 && done < COUNT, `one slice inserted ${done} of ${COUNT}`);

    // Writes on souls the builder has passed and on souls it has not reached, and new souls.
    const moved = (i: number) => set.rows[COUNT + 100 + i];
    // `salt` makes each pass's vectors its own, and moves which souls it deletes.
    const writes = async (from: number, salt: number) => {
      for (let i = from; i < from + 40; i++) {
        const low = `doc/${i}`, high = `doc/${COUNT - 1 - i}`;
        for (const soul of [low, high]) {
          if ((i + salt / 160) % 3 === 0) {
            await db.delete(soul);
            items.delete(soul);
          } else {
            const v = moved(i + salt + (soul === high ? 80 : 0));
            await db.put(soul, { v });
            items.set(soul, v);
          }
        }
        const v = set.rows[COUNT + i];
        await db.put(`new/${i}`, { v });
        items.set(`new/${i}`, v);
      }
    };
    await writes(0, 0);
    await assertExact(db, items, "exact after writes while building");
    for (let i = 0; i < 3; i++) gate.slice();
    await writes(40, 0);
    await writes(0, 160); // again: later vectors replace earlier ones, deleted souls come back
    await assertExact(db, items, "exact after more writes while building");
    let slices = 4;
    while (gate.slice()) slices++;
    assert.ok(slices > 4, `the build took ${slices} slices`);
    const after = db.indexes()[0];
    assert.equal(after.state, "ready");
    assert.equal(after.building, undefined);
    assert.equal(after.count, items.size);

    // The graph holds exactly the latest vectors: its exact scan is brute force, and the
    // approximate search finds moved vectors at their new place and never a deleted soul.
    for (const vector of queries.slice(0, 12)) {
      const truth = bruteForce(items, vector, 10);
      assert.deepEqual(
        (await db.search({ vector, k: 10, exact: true })).map((r) => r.soul),
        truth,
        "graph exact",
      );
    }
    let asked = 0, found = 0;
    for (let i = 0; i < 80; i++) {
      for (const soul of [`doc/${i}`, `doc/${COUNT - 1 - i}`]) {
        const v = items.get(soul);
        const vector = v ?? set.rows[Number(soul.slice(4))];
        const exact = await db.search({ vector, k: 5, exact: true });
        const approx = await db.search({ vector, k: 5, ef: 200 });
        for (const got of [exact, approx]) {
          assert.ok(got.every((r) => items.has(r.soul)), `a deleted soul is found near ${soul}`);
        }
        if (v === undefined) continue;
        assert.ok(exact.some((r) => r.soul === soul && r.score === 0), `${soul} at its latest vector`);
        asked++;
        if (approx.some((r) => r.soul === soul)) found++;
      }
    }
    // The graph's search finds the moved vectors (at its recall: not every one is promised).
    assert.ok(found >= 0.9 * asked, `the graph found ${found} of ${asked} moved vectors`);
    assert.ok(await graphAnswers(db), "the graph answers once ready");
    await db.close();
  });

  it("closing mid-build stops the build and saves nothing half-built; the next open is correct", async () => {
    const { store, items } = await storeWithoutSave();
    const gate = new Gate();
    const first = await Database.create({ store, kernels, world: gate.world });
    gate.slice();
    await first.put("late", { v: queries[0] });
    items.set("late", queries[0]);
    await first.delete("doc/7");
    items.delete("doc/7");
    await first.close();
    assert.equal(gate.slice(), false, "no slice left after close");
    assert.equal(store.aux.size, 0, "no half-built graph saved");

    const second = await Database.create({ store, kernels });
    assert.equal(second.indexes()[0].state, "building");
    await assertExact(second, items, "exact after reopen");
    while (second.indexes()[0].state !== "ready") {
      await new Promise<void>((resolve) => systemWorld.setTimer(resolve, 5));
    }
    assert.equal(second.indexes()[0].count, items.size);
    for (const vector of queries.slice(0, 12)) {
      const truth = bruteForce(items, vector, 10);
      assert.deepEqual((await second.search({ vector, k: 10, exact: true })).map((r) => r.soul), truth);
    }
    await second.close();
    assert.deepEqual([...store.aux.keys()], ["vector-index-0"], "the complete graph saved at close");
    const third = await Database.create({ store, kernels });
    assert.equal(third.indexes()[0].state, "ready", "restored, nothing to build");
    assert.deepEqual((await third.search({ vector: queries[0], k: 1 })).map((r) => r.soul), ["late"]);
    await third.close();
  });

  it("createIndex over stored data resolves with exact answers, then the graph takes over", async () => {
    const gate = new Gate();
    const db = await Database.create({ store: new MemoryStore(), kernels, world: gate.world });
    const items = new Map(set.rows.slice(0, 2000).map((v, i) => [`doc/${i}`, v]));
    await putAll(db, items);
    const info = await db.createIndex(SPEC);
    assert.equal(info.state, "building");
    assert.deepEqual(info.building, { done: 0, total: 2000 });
    await assertExact(db, items, "exact while building");
    await db.delete("doc/0");
    items.delete("doc/0");
    while (gate.slice());
    assert.equal(db.indexes()[0].state, "ready");
    assert.equal(db.indexes()[0].count, 1999);
    assert.ok(await graphAnswers(db), "the graph answers once ready");
    await db.close();
  });
});
