/**
 * Text in vector indexes (`open({ embed })`, core/db/embedding.ts): a text
 * put to an indexed field is embedded before its commit (a failing embedder
 * or a wrong dimension rejects the put with nothing stored), found by
 * `search({ text })` at once; texts that arrive by sync or are read on open
 * are embedded in the background, and a soul whose text changed meanwhile
 * never gets its old text's vector; a replica without an embedder stores the
 * text but does not index it. The embedder is a small deterministic one
 * written here (letter trigrams hashed into 32 buckets): no model download.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Database, type Embedder, type Op, open } from "../mod.ts";
import { selectKernels } from "../core/kernels/mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import { eventually } from "./_eventually.ts";

const kernels = await selectKernels({ kernels: "auto" });
const DIM = 32;

/** Counts of the text's letter trigrams, hashed (FNV-1a) into {@link DIM} buckets; never all zero. */
function trigrams(text: string): Float32Array {
  const v = new Float32Array(DIM);
  v[0] = 0.01;
  const t = ` ${text.toLowerCase()} `;
  for (let i = 0; i + 3 <= t.length; i++) {
    let h = 0x811c9dc5;
    for (let j = i; j < i + 3; j++) h = Math.imul(h ^ t.charCodeAt(j), 0x01000193);
    v[(h >>> 0) % DIM] += 1;
  }
  return v;
}

/** An async embedder whose answers wait until the test lets them go, counting the calls. */
class Gated {
  readonly held: { text: string; go: () => void }[] = [];
  calls = 0;
  open = false;
  readonly embed: Embedder = (text) => {
    this.calls++;
    if (this.open) return Promise.resolve(trigrams(text));
    return new Promise((resolve) => this.held.push({ text, go: () => resolve(trigrams(text)) }));
  };
  /** Lets the held call for `text` answer. */
  release(text: string): void {
    const i = this.held.findIndex((h) => h.text === text);
    assert.ok(i >= 0, `a held embedding of ${JSON.stringify(text)}`);
    this.held.splice(i, 1)[0].go();
  }
}

/** Every op of `db`, as sync would send them. */
async function allOps(db: Database): Promise<Op[]> {
  const ops: Op[] = [];
  for (let cursor: number | undefined, page;; cursor = page.cursor) {
    page = await db.exportOps({ cursor });
    ops.push(...page.ops);
    if (page.cursor === undefined) break;
  }
  return ops;
}

const TITLES = [
  "the quick brown fox",
  "a lazy dog sleeps",
  "graph databases sync peers",
  "vector search over embeddings",
  "peer to peer replication",
];

describe("text in vector indexes (embed)", () => {
  it("embeds texts of local puts before they commit; search by text finds them at once (f32 and int8)", async () => {
    const embedders = [(t: string) => trigrams(t), async (t: string) => [...trigrams(t)]] as Embedder[];
    for (
      const [embed, quantize] of [[embedders[0], undefined], [embedders[1], undefined], [
        embedders[0],
        "int8",
      ]] as const
    ) {
      const db = await open({ storage: "memory", embed });
      try {
        await db.createIndex({ field: "title", dim: DIM, quantize });
        for (const [i, title] of TITLES.entries()) await db.put(`doc/${i}`, { title, n: i });
        assert.equal((await db.get("doc/2"))?.title, TITLES[2], "the stored value is the text");
        const [best] = await db.search({ text: "vector search", k: 1 });
        assert.equal(best.soul, "doc/3");
        assert.equal(best.node.title, TITLES[3]);
        const byVector = await db.search({ vector: trigrams("vector search"), k: 1 });
        assert.deepEqual(byVector, [best], "the same as searching by the text's vector");
        // Overwritten and deleted texts are never found by their old vector.
        await db.put("doc/3", { title: "something else entirely" });
        await db.delete("doc/1");
        const exact = await db.search({ text: "vector search over embeddings", k: 5, exact: true });
        assert.ok(exact.every((r) => r.soul !== "doc/1"));
        assert.notEqual(exact[0].soul, "doc/3");
        // Within a graph walk (a small reached set is scored from the index's own vectors).
        await db.put("shelf", { a: { "#": "doc/0" }, b: { "#": "doc/4" } });
        const walked = await db.search({ text: "peer replication", k: 2, from: "shelf", path: ["*"] });
        assert.deepEqual(walked.map((r) => r.soul), ["doc/4", "doc/0"]);
      } finally {
        await db.close();
      }
    }
  });

  it("refuses a put whose embedding fails or has the wrong dimension, storing nothing of it", async () => {
    const embed: Embedder = (text) => {
      if (text === "boom") throw new Error("model unavailable");
      if (text === "later boom") return Promise.reject(new Error("timeout"));
      return text === "short" ? [1, 2] : trigrams(text);
    };
    const db = await open({ storage: "memory", embed });
    try {
      await db.createIndex({ field: "title", dim: DIM });
      await assert.rejects(db.put("a", { title: "boom", other: 1 }), {
        name: "Error",
        message: /The embedding of the text of "title" of "a" failed: model unavailable/,
      });
      await assert.rejects(db.put("b", { title: "later boom" }), /"title" of "b" failed: timeout/);
      await assert.rejects(db.put("c", { title: "short" }), (e: Error) => {
        assert.equal(e.name, "RangeError");
        assert.match(e.message, /"title" of "c".*32 components, got 2/);
        return true;
      });
      for (const soul of ["a", "b", "c"]) assert.equal(await db.get(soul), undefined, `nothing of ${soul}`);
      await assert.rejects(db.search({ text: "boom", k: 1 }), /model unavailable/);
      await assert.rejects(db.search({ text: "x", vector: trigrams("x"), k: 1 }), TypeError);
      await assert.rejects(db.search({ k: 1 }), /a vector or a text/);
    } finally {
      await db.close();
    }
    const plain = await open({ storage: "memory" });
    try {
      await plain.createIndex({ field: "title", dim: DIM });
      await assert.rejects(plain.put("a", { title: "text" }), {
        name: "TypeError",
        message: /"title" of "a" holds text: indexing text needs the database's embed function/,
      });
      await assert.rejects(plain.search({ text: "x", k: 1 }), /needs the database's embed function/);
    } finally {
      await plain.close();
    }
  });

  it("embeds texts that arrive by sync in the background; a text replaced meanwhile never lands", async () => {
    const source = await open({ storage: "memory", embed: trigrams });
    await source.createIndex({ field: "title", dim: DIM });
    for (const [i, title] of TITLES.entries()) await source.put(`doc/${i}`, { title });
    const gate = new Gated();
    const replica = await open({ storage: "memory", embed: gate.embed });
    // A replica without an embedder stores the texts and leaves them out of its index.
    const bare = await open({ storage: "memory" });
    try {
      await replica.createIndex({ field: "title", dim: DIM });
      await bare.createIndex({ field: "title", dim: DIM });
      const ops = await allOps(source);
      await replica.applyOps(ops);
      await bare.applyOps(ops);
      assert.equal((await bare.get("doc/0"))?.title, TITLES[0]);
      assert.deepEqual(await bare.search({ vector: trigrams(TITLES[0]), k: 5 }), []);
      assert.equal(replica.indexes()[0].embedding, 5, "five texts wait for their vectors");
      assert.deepEqual(await replica.search({ vector: trigrams(TITLES[0]), k: 5 }), [], "none indexed yet");
      // doc/0 changes while its first text is being embedded: the old answer must not land.
      await source.put("doc/0", { title: "replaced title" });
      const newer = (await allOps(source)).filter((op) => op.soul === "doc/0");
      await replica.applyOps(newer);
      // The new text is embedded and lands while the old one is still being embedded; then the old answers.
      gate.open = true;
      for (const h of gate.held.filter((h) => h.text !== TITLES[0])) gate.release(h.text);
      await eventually("the other texts embedded", () => replica.indexes()[0].count === 5);
      assert.equal(replica.indexes()[0].embedding, undefined, "the old text no longer counts");
      gate.release(TITLES[0]);
      await new Promise((r) => setTimeout(r, 10));
      const found = await replica.search({ vector: trigrams(TITLES[0]), k: 5, exact: true });
      const zero = found.find((r) => r.soul === "doc/0")!;
      assert.equal(zero.node.title, "replaced title");
      assert.equal(
        zero.score,
        kernels.cosine(trigrams(TITLES[0]), trigrams("replaced title")),
        "the new text's vector",
      );
      const [own] = await replica.search({ text: "replaced title", k: 1 });
      assert.equal(own.soul, "doc/0");
      assert.equal(own.score, (await source.search({ text: "replaced title", k: 1 }))[0].score);
    } finally {
      for (const db of [source, replica, bare]) await db.close();
    }
  });

  it("re-embeds stored texts when an index is rebuilt on open", async () => {
    class KeptStore extends MemoryStore {
      override close(): Promise<void> {
        return Promise.resolve();
      }
    }
    const store = new KeptStore();
    const first = await Database.create({ store, kernels, embed: trigrams });
    await first.createIndex({ field: "title", dim: DIM });
    for (const [i, title] of TITLES.entries()) await first.put(`doc/${i}`, { title });
    await first.close();
    let calls = 0;
    const second = await Database.create({ store, kernels, embed: (t) => (calls++, trigrams(t)) });
    try {
      await eventually(
        "the texts re-embedded",
        () => second.indexes()[0].embedding === undefined && calls === 5,
      );
      const [best] = await second.search({ text: "the brown fox", k: 1 });
      assert.equal(best.soul, "doc/0");
    } finally {
      await second.close();
    }
  });
});
