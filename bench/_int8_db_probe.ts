/**
 * A probe (not a mitata suite) of `db.search` on a quantized index: the same
 * data in two in-memory databases, one with an f32 index and one with
 * `quantize: "int8"`, then per query, alternating: the default (approximate)
 * search and the exact one, their time, recall@10 against f32 brute force,
 * and how many stored vectors the re-scoring of an exact search reads.
 *
 *   deno run -A bench/_int8_db_probe.ts [count=10000] [rounds=3] [memory|sqlite]
 *
 * With `sqlite` the databases live in temporary directories (keys read are not counted then).
 */
import { Database, loadKernels, open } from "../mod.ts";
import { MemoryStore } from "../storage/memory.ts";
import type { FieldKey } from "../core/store.ts";
import { clustered } from "../tests/_vectors.ts";

const count = Number(Deno.args[0] ?? 10_000), rounds = Number(Deno.args[1] ?? 3);
const sqlite = Deno.args[2] === "sqlite";
const dirs: string[] = [];
const DIM = 384, K = 10, QUERIES = 100, SEED = 20261207;
const kernels = await loadKernels();

/** A memory store that counts the keys read by `readFields`. */
class CountingStore extends MemoryStore {
  keys = 0;
  override readFields(keys: readonly FieldKey[]) {
    this.keys += keys.length;
    return super.readFields(keys);
  }
}

const set = clustered(SEED, count + QUERIES, DIM);
const rows = set.rows.slice(0, count), queries = set.rows.slice(count);
const truth = queries.map((q) => {
  const s = rows.map((v, i) => ({ i, s: kernels.cosine(q, v) }));
  s.sort((a, b) => b.s - a.s || a.i - b.i);
  return new Set(s.slice(0, K).map((x) => `doc/${x.i}`));
});
console.log(
  `${kernels.name}, db.search on ${count} × ${DIM} clustered, cosine, defaults (ef 50), ${
    sqlite ? "SQLite" : "memory"
  }, seed ${SEED}`,
);

async function fill(quantize?: "int8"): Promise<{ db: Database; store: CountingStore }> {
  const store = new CountingStore();
  let db: Database;
  if (sqlite) {
    const path = await Deno.makeTempDir({ prefix: "lattice-int8-probe-" });
    dirs.push(path);
    db = await open({ path });
  } else db = await Database.create({ store, kernels });
  await db.createIndex({ field: "v", dim: DIM, quantize });
  for (let at = 0; at < count; at += 500) {
    await Promise.all(rows.slice(at, at + 500).map((v, i) => db.put(`doc/${at + i}`, { v })));
  }
  return { db, store };
}

const dbs = { f32: await fill(), int8: await fill("int8") };
for (let round = 0; round < rounds; round++) {
  const line: string[] = [];
  for (const [name, { db, store }] of Object.entries(dbs)) {
    for (const exact of [false, true]) {
      store.keys = 0;
      let hits = 0;
      const t = performance.now();
      for (let i = 0; i < QUERIES; i++) {
        for (const r of await db.search({ vector: queries[i], k: K, exact })) {
          if (truth[i].has(r.soul)) hits++;
        }
      }
      const ms = (performance.now() - t) / QUERIES;
      // Each result reads its node (one readFields of its fields): the rest is re-scoring.
      const reads = store.keys / QUERIES;
      line.push(
        `${name} ${exact ? "exact" : "approx"}: ${ms.toFixed(2)} ms/q, recall ${
          (hits / (K * QUERIES)).toFixed(3)
        }, ${reads.toFixed(0)} keys read/q`,
      );
    }
  }
  console.log(`round ${round + 1}\n  ${line.join("\n  ")}`);
}
for (const { db } of Object.values(dbs)) await db.close();
for (const path of dirs) await Deno.remove(path, { recursive: true });
