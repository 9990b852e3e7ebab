/**
 * `db.search` limited by a graph walk (`from`, `path`): "nodes like this one
 * among alice's friends". A small reached set is scored directly from the
 * store, a large one filters the index's rankings; both must return exactly
 * the true top k of the reached set (with `where` on top), and nothing
 * outside it. Data come from the printed seed (`LATTICE_SEED` replays a run).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Database, type Metric, open, QueryTooLargeError } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { prng, SEED } from "./_seed.ts";

console.log(`vectors_graph.test.ts seed ${SEED}`);
const kernels = await selectKernels({ kernels: "auto" });

const COUNT = 3000;
const DIM = 16;

interface Doc {
  readonly soul: string;
  readonly v: Float32Array;
  readonly tag: number;
}

/** The true top k of `docs` for `query`, best first, ties by soul. */
function bruteForce(docs: readonly Doc[], query: Float32Array, k: number, metric: Metric): string[] {
  const scored = docs.map(({ soul, v }) => ({ soul, score: kernels[metric](v, query) }));
  const sign = metric === "l2" ? 1 : -1;
  scored.sort((a, b) => sign * (a.score - b.score) || (a.soul < b.soul ? -1 : a.soul > b.soul ? 1 : 0));
  return scored.slice(0, k).map((s) => s.soul);
}

/** A set node linking to `members` (GunDB's way: one field per member, each a link). */
function setOf(members: readonly Doc[]): Record<string, { "#": string }> {
  return Object.fromEntries(members.map((d) => [d.soul.replace("/", "_"), { "#": d.soul }]));
}

describe(`vector search within a graph walk (seed ${SEED})`, () => {
  const rand = prng(SEED);
  const vector = () => Float32Array.from({ length: DIM }, () => Math.fround(rand() * 2 - 1));
  const docs: Doc[] = Array.from(
    { length: COUNT },
    (_, i) => ({ soul: `doc/${i}`, v: vector(), tag: i % 4 }),
  );
  // alice likes 40 docs (a small set: scored directly); bob likes half of them (a large one: a filter)
  const liked = docs.filter((_, i) => i % 75 === 3);
  const half = docs.filter((_, i) => i % 2 === 1);
  const queries = Array.from({ length: 8 }, vector);

  async function fill(metric: Metric): Promise<Database> {
    const db = await open({ storage: "memory" });
    await db.createIndex({ field: "v", dim: DIM, metric });
    for (let at = 0; at < docs.length; at += 500) {
      await Promise.all(docs.slice(at, at + 500).map(({ soul, v, tag }) => db.put(soul, { v, tag })));
    }
    await db.put("alice/likes", setOf(liked));
    await db.put("bob/likes", setOf(half));
    await db.put("alice", { name: "Alice", likes: { "#": "alice/likes" }, best: { "#": liked[5].soul } });
    await db.put("bob", { name: "Bob", likes: { "#": "bob/likes" } });
    return db;
  }

  for (const metric of ["cosine", "l2"] as Metric[]) {
    it(`returns exactly the top k of a small and of a large reached set (${metric})`, async () => {
      const db = await fill(metric);
      try {
        for (const query of queries) {
          const small = await db.search({ vector: query, k: 10, from: "alice", path: ["likes", "*"] });
          assert.deepEqual(small.map((r) => r.soul), bruteForce(liked, query, 10, metric));
          const large = await db.search({
            vector: query,
            k: 10,
            from: "bob",
            path: ["likes", "*"],
            exact: true,
          });
          assert.deepEqual(large.map((r) => r.soul), bruteForce(half, query, 10, metric));
          const approximate = await db.search({ vector: query, k: 10, from: "bob", path: ["likes", "*"] });
          const members = new Set(half.map((d) => d.soul));
          assert.equal(approximate.length, 10);
          assert.ok(approximate.every((r) => members.has(r.soul)), "only members of bob's set");
        }
      } finally {
        await db.close();
      }
    });
  }

  it("combines the walk with where, follows single links, and answers fewer than k when fewer are reached", async () => {
    const db = await fill("cosine");
    try {
      const query = queries[0];
      const tagged = await db.search({
        vector: query,
        k: 5,
        from: "alice",
        path: ["likes", "*"],
        where: { tag: 2 },
      });
      assert.deepEqual(
        tagged.map((r) => r.soul),
        bruteForce(liked.filter((d) => d.tag === 2), query, 5, "cosine"),
      );
      assert.ok(tagged.every((r) => r.node.tag === 2));
      const best = await db.search({ vector: query, k: 3, from: "alice", path: ["best"] });
      assert.deepEqual(best.map((r) => r.soul), [liked[5].soul]);
      // the start souls themselves, without a path: two docs
      const two = await db.search({ vector: query, k: 10, from: ["doc/1", "doc/2", "nowhere"] });
      assert.deepEqual(two.map((r) => r.soul).sort(), ["doc/1", "doc/2"]);
      // a node reached that has no vector (alice's set node) is never a result
      const none = await db.search({ vector: query, k: 4, from: "alice", path: ["likes"] });
      assert.deepEqual(none, []);
      // a member deleted after the walk's set was written is left out
      await db.put(liked[0].soul, { v: null });
      const after = await db.search({ vector: liked[0].v, k: 40, from: "alice", path: ["likes", "*"] });
      assert.equal(after.length, liked.length - 1);
      assert.ok(!after.some((r) => r.soul === liked[0].soul));
    } finally {
      await db.close();
    }
  });

  it("checks from and path, and holds the walk to the query budget", async () => {
    const db = await open({ storage: "memory", queryBudget: { maxPathLength: 2 } });
    try {
      await db.createIndex({ field: "v", dim: 2 });
      await db.put("a", { v: [1, 0], next: { "#": "a" } });
      const q = { vector: [1, 0], k: 1 };
      await assert.rejects(db.search({ ...q, path: ["next"] }), {
        name: "TypeError",
        message: /path needs from/,
      });
      await assert.rejects(db.search({ ...q, from: [] }), { name: "TypeError", message: /search\.from/ });
      await assert.rejects(db.search({ ...q, from: 3 as unknown as string }), { name: "TypeError" });
      await assert.rejects(db.search({ ...q, from: "a", path: "next" as unknown as string[] }), {
        name: "TypeError",
        message: /search\.path/,
      });
      await assert.rejects(
        db.search({ ...q, from: "a", path: ["next", "next", "next"] }),
        QueryTooLargeError,
      );
      assert.deepEqual((await db.search({ ...q, from: "a", path: ["next", "next"] })).map((r) => r.soul), [
        "a",
      ]);
    } finally {
      await db.close();
    }
  });
});
