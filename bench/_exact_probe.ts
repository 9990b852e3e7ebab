/**
 * Probe for the exact top-k scan (issue 14): times cosine top-10 over
 * 10k × 384 on this build's SIMD module against an older build of the same
 * kernels, alternating rounds in one process so that both see the same
 * machine load, and checks that both return the same slots and scores.
 *
 * Two scans: the resident matrix (`VectorIndex.topK`: `vecTopK`, with the
 * int8 codes on the new side) and the HNSW records (`vecTopKRows`, what
 * `searchExact` and `db.search({ exact: true })` run), both as raw exports.
 *
 * Run: `git show <commit>:core/kernels/_wasm_bytes.ts > /tmp/old_wasm_bytes.ts`,
 * then `deno run -A bench/_exact_probe.ts /tmp/old_wasm_bytes.ts [batches]`.
 * The old build must have the `vecTopK(h, dim, dimPad, high, q, k, metric,
 * scores, heap, outSlots, outScores)` and `vecCommit(rec, dim, dimPad)` of
 * main 40a9eb7.
 *
 * @module
 */
import { WASM_SIMD_BASE64 } from "../core/kernels/_wasm_bytes.ts";
import { prng } from "./_prng.ts";

const N = 10_000, DIM = 384, K = 10, QUERIES = 64, BATCH = 16;
const COSINE = 1;
/** HNSW record stride at 384 dimensions and M = 16 (_hnsw_layout.ts). */
const HNSW_STRIDE = 1696;

// deno-lint-ignore no-explicit-any
type Exports = any;

function instantiate(base64: string | readonly string[]): Exports {
  const b64 = typeof base64 === "string" ? base64 : base64.join("");
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports;
}

function gaussianRows(next: () => number, count: number): Float32Array {
  const out = new Float32Array(count * DIM);
  const u = () => (next() + 1) / 4294967297;
  for (let r = 0; r < count; r++) {
    let norm = 0;
    for (let i = 0; i < DIM; i++) {
      const g = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
      out[r * DIM + i] = g;
      norm += g * g;
    }
    for (let i = 0; i < DIM; i++) out[r * DIM + i] /= Math.sqrt(norm);
  }
  return out;
}

/** One module with the matrix laid out as the resident index and as HNSW records; `topK` and `rows` run one query. */
function setup(ex: Exports, isNew: boolean, rows: Float32Array) {
  const mem: WebAssembly.Memory = ex.memory;
  const dimPad = DIM, stride = dimPad * 4 + 16, codeStride = dimPad + 32;
  const H = Math.ceil(ex.heapBase() / 64) * 64;
  const C = H + N * stride;
  const R = C + N * codeStride;
  const q = R + N * HNSW_STRIDE;
  const qc = q + dimPad * 4;
  const scores = qc + dimPad * 2;
  const keys = scores + 4 * N;
  const outSlots = keys + 8 * K + 16;
  const outScores = outSlots + 4 * K;
  const end = outScores + 4 * K;
  mem.grow(Math.ceil((end - mem.buffer.byteLength) / 65536) + 1);
  const f32 = new Float32Array(mem.buffer), u32 = new Uint32Array(mem.buffer);
  for (let r = 0; r < N; r++) {
    f32.set(rows.subarray(r * DIM, (r + 1) * DIM), (H + r * stride) >>> 2);
    if (isNew) ex.vecCommit(H + r * stride, DIM, dimPad, C + r * codeStride);
    else ex.vecCommit(H + r * stride, DIM, dimPad);
    // HNSW records: the same row record, then links (left zero).
    f32.set(rows.subarray(r * DIM, (r + 1) * DIM), (R + r * HNSW_STRIDE) >>> 2);
    ex.vecCommit(R + r * HNSW_STRIDE, DIM, dimPad, 0);
  }
  const out = () => [
    ...u32.subarray(outSlots >>> 2, (outSlots >>> 2) + K),
    ...f32.subarray(outScores >>> 2, (outScores >>> 2) + K),
  ];
  return {
    topK(query: Float32Array): number[] {
      f32.set(query, q >>> 2);
      if (isNew) ex.vecTopK(H, C, DIM, dimPad, N, q, qc, K, COSINE, scores, keys, outSlots, outScores);
      else ex.vecTopK(H, DIM, dimPad, N, q, K, COSINE, scores, keys, outSlots, outScores);
      return out();
    },
    rows(query: Float32Array): number[] {
      f32.set(query, q >>> 2);
      ex.vecTopKRows(R, HNSW_STRIDE, DIM, dimPad, N, q, K, COSINE, scores, keys, outSlots, outScores);
      return out();
    },
  };
}

const oldPath = Deno.args[0];
if (!oldPath) throw new Error("usage: deno run -A bench/_exact_probe.ts OLD_WASM_BYTES_TS [rounds]");
const rounds = Number(Deno.args[1] ?? 60);
const old = await import(new URL(oldPath, `file://${Deno.cwd()}/`).href);
const next = prng(0x1a77_1ce5);
const rows = gaussianRows(next, N);
const queries = Array.from({ length: QUERIES }, () => gaussianRows(next, 1));
const sides = {
  old: setup(instantiate(old.WASM_SIMD_BASE64), false, rows),
  new: setup(instantiate(WASM_SIMD_BASE64), true, rows),
};
for (const q of queries) {
  const a = JSON.stringify(sides.old.topK(q)), b = JSON.stringify(sides.new.topK(q));
  const c = JSON.stringify(sides.old.rows(q)), d = JSON.stringify(sides.new.rows(q));
  if (a !== b || a !== c || c !== d) throw new Error("old and new builds disagree");
}

/** Mean µs per query over a batch of `BATCH` queries. */
function time(run: (q: Float32Array) => unknown, from: number): number {
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) run(queries[(from + i) % QUERIES]);
  return (performance.now() - t0) / BATCH * 1000;
}

// Short batches, the four scans interleaved batch by batch: on a shared machine the minimum and the median
// over many batches are what stays comparable.
const names = ["old topK", "new topK", "old rows", "new rows"] as const;
const runs = [sides.old.topK, sides.new.topK, sides.old.rows, sides.new.rows];
const results: number[][] = names.map(() => []);
for (const run of runs) for (let i = 0; i < 100; i++) run(queries[i % QUERIES]);
for (let r = 0; r < rounds; r++) runs.forEach((run, j) => results[j].push(time(run, r * BATCH)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
names.forEach((name, j) => {
  const xs = results[j];
  console.log(`${name.padEnd(9)} min ${Math.min(...xs).toFixed(0)} µs, median ${median(xs).toFixed(0)} µs`);
});
const ratio = (a: number, b: number) =>
  `min ${(Math.min(...results[a]) / Math.min(...results[b])).toFixed(2)}×, median ${
    (median(results[a]) / median(results[b])).toFixed(2)
  }×`;
console.log(`old/new topK: ${ratio(0, 1)}; old/new rows: ${ratio(2, 3)} (${rounds} batches of ${BATCH})`);
