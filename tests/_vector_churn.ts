/**
 * Deleted and overwritten vectors, as the vector search tests check them
 * (tests/vectors_hnsw.test.ts, tests/vectors_int8.test.ts). Not a test file
 * (no `.test.` in its name).
 */
import assert from "node:assert/strict";
import type { Database, SearchOptions } from "../mod.ts";

/** A soul of the data and its vector (in field `v`). */
export interface ChurnItem {
  readonly soul: string;
  readonly v: Float32Array;
}

/**
 * Of `count` souls (every 7th of `items`), deletes every other one and moves
 * the rest to one vector unlike the data (-1 on the first axis); then, for
 * every `sample`-th of them, each of `searches` for its old vector returns
 * `k` = 10 results, no deleted soul and no moved one by its old vector; and a
 * moved soul is found at the new place, with ef 200 and exactly. (Found there
 * through the graph at the default ef is not asked: the copies hang off the
 * graph through the few nodes nearest to them, and a beam of 50 may miss
 * those for a query unlike any of the data, as with seed 2072878857.)
 * Returns the souls deleted and moved.
 */
export async function deleteAndMove(
  db: Database,
  items: readonly ChurnItem[],
  count: number,
  sample: number,
  searches: readonly Omit<SearchOptions, "vector" | "k">[],
): Promise<{ gone: Set<string>; moved: Set<string> }> {
  const far = new Float32Array(items[0].v.length).fill(0);
  far[0] = -1;
  const gone = new Set<string>(), moved = new Set<string>();
  for (let i = 0; i < count; i++) {
    const soul = items[i * 7].soul;
    if (i % 2 === 0) {
      await db.delete(soul);
      gone.add(soul);
    } else {
      await db.put(soul, { v: far });
      moved.add(soul);
    }
  }
  for (let i = 0; i < count; i += sample) {
    const vector = items[i * 7].v; // the old vector: its soul would rank first
    for (const options of searches) {
      const got = await db.search({ vector, k: 10, ...options });
      assert.equal(got.length, 10, "k results, none of them a deleted one left out late");
      for (const r of got) {
        assert.ok(!gone.has(r.soul), `${r.soul} was deleted`);
        if (moved.has(r.soul)) assert.ok(r.score < 0.5, `${r.soul} comes back with its old vector`);
      }
    }
  }
  for (const options of [{ ef: 200 }, { exact: true }]) {
    const [best] = await db.search({ vector: far, k: 1, ...options });
    assert.ok(moved.has(best.soul), "an overwritten vector is found at its new place");
  }
  return { gone, moved };
}
