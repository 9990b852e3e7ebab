/**
 * A probe (not a mitata suite) of int8 quantization in the HNSW kernel:
 * for f32 and `quantize: "int8"` on clustered 384-dimensional data, bytes per
 * vector (`byteLength / size`), build time, and recall@10 and queries per
 * second at a given ef, the int8 index with its candidates re-scored in f32
 * (as core/db/rescore.ts does, here from vectors in memory) for several
 * over-fetch factors. The lead folds the figures into `deno task bench vector`.
 *
 *   deno run -A bench/_int8_probe.ts [count=10000] [ef=50, or a list: 50,160] [rounds=3]
 */
import { loadKernels } from "../mod.ts";
import type { HnswIndex, Kernels } from "../core/kernels/types.ts";
import { clustered } from "../tests/_vectors.ts";

const count = Number(Deno.args[0] ?? 10_000), rounds = Number(Deno.args[2] ?? 3);
const efs = (Deno.args[1] ?? "50").split(",").map(Number);
let ef = efs[0];
const DIM = 384, K = 10, QUERIES = 200, SEED = 20261207;
const kernels: Kernels = await loadKernels();
const set = clustered(SEED, count + QUERIES, DIM);
const rows = set.rows.slice(0, count), queries = set.rows.slice(count);
console.log(`${kernels.name}, ${count} × ${DIM} clustered, cosine, m 16, efConstruction 200, seed ${SEED}`);

function build(quantize?: "int8"): { index: HnswIndex; ms: number } {
  const t = performance.now();
  const index = kernels.createHnsw({ dim: DIM, metric: "cosine", ef, quantize });
  for (let i = 0; i < count; i++) index.insert(i, rows[i]);
  return { index, ms: performance.now() - t };
}

/** The f32 top k of the ids `ids` (by cosine, ties by id). */
function rescore(q: Float32Array, ids: Uint32Array, k: number): number[] {
  const scored = Array.from(ids, (id) => ({ id, s: kernels.cosine(q, rows[id]) }));
  scored.sort((a, b) => b.s - a.s || a.id - b.id);
  return scored.slice(0, k).map((x) => x.id);
}

const truth = queries.map((q) => rescore(q, Uint32Array.from(rows.keys()), K));

function measure(what: string, index: HnswIndex, factor: number | undefined): void {
  let hits = 0;
  const t = performance.now();
  for (let i = 0; i < QUERIES; i++) {
    const q = queries[i];
    const n = factor === undefined ? K : K * factor;
    const found = index.search(q, n, Math.max(ef, n)).ids;
    const top = factor === undefined ? [...found] : rescore(q, found, K);
    const want = new Set(truth[i]);
    for (const id of top) if (want.has(id)) hits++;
  }
  const ms = performance.now() - t;
  const qps = Math.round(QUERIES / (ms / 1000));
  console.log(`  ${what}: recall@10 ${(hits / (K * QUERIES)).toFixed(3)}, ${qps} QPS`);
}

for (let round = 0; round < rounds; round++) {
  console.log(`round ${round + 1}`);
  const f32 = build();
  const int8 = build("int8");
  const bytes = (x: HnswIndex) => (x.byteLength / x.size).toFixed(0);
  console.log(
    `  bytes/vector f32 ${bytes(f32.index)}, int8 ${bytes(int8.index)} (ratio ${
      (int8.index.byteLength / f32.index.byteLength).toFixed(3)
    }); build f32 ${(f32.ms / 1000).toFixed(2)} s, int8 ${(int8.ms / 1000).toFixed(2)} s (ratio ${
      (int8.ms / f32.ms).toFixed(2)
    })`,
  );
  for (ef of efs) {
    console.log(`  ef ${ef}`);
    measure("f32", f32.index, undefined);
    measure("int8 raw", int8.index, undefined);
    for (const factor of [1, 2, 3, 4]) measure(`int8 re-scored, ${factor}k candidates`, int8.index, factor);
  }
  f32.index.dispose();
  int8.index.dispose();
}
