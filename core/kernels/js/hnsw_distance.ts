/**
 * Distances of the JS HNSW engine over its memory (float offsets), in the
 * f32 arithmetic of `types.ts` (four lanes by `i & 3`, `Math.fround` on every
 * product and sum), and the exact top-k scan over its records — bit for bit
 * what asm/vector.ts computes.
 *
 * @module
 */
import type { HnswMemory, RecordShape } from "../_hnsw_layout.ts";
import { drainSlots, offerSlot } from "./topk_heap.ts";

/** Dot product of the `n` floats (a multiple of four) at `a` and `b`. */
export function dotAt(f: Float32Array, a: number, b: number, n: number): number {
  let l0 = 0, l1 = 0, l2 = 0, l3 = 0;
  for (let i = 0; i < n; i += 4) {
    l0 = Math.fround(l0 + Math.fround(f[a + i] * f[b + i]));
    l1 = Math.fround(l1 + Math.fround(f[a + i + 1] * f[b + i + 1]));
    l2 = Math.fround(l2 + Math.fround(f[a + i + 2] * f[b + i + 2]));
    l3 = Math.fround(l3 + Math.fround(f[a + i + 3] * f[b + i + 3]));
  }
  return Math.fround(Math.fround(l0 + l1) + Math.fround(l2 + l3));
}

/** Squared Euclidean distance of the `n` floats (a multiple of four) at `a` and `b`. */
export function sqDistAt(f: Float32Array, a: number, b: number, n: number): number {
  let l0 = 0, l1 = 0, l2 = 0, l3 = 0;
  for (let i = 0; i < n; i += 4) {
    const d0 = Math.fround(f[a + i] - f[b + i]);
    const d1 = Math.fround(f[a + i + 1] - f[b + i + 1]);
    const d2 = Math.fround(f[a + i + 2] - f[b + i + 2]);
    const d3 = Math.fround(f[a + i + 3] - f[b + i + 3]);
    l0 = Math.fround(l0 + Math.fround(d0 * d0));
    l1 = Math.fround(l1 + Math.fround(d1 * d1));
    l2 = Math.fround(l2 + Math.fround(d2 * d2));
    l3 = Math.fround(l3 + Math.fround(d3 * d3));
  }
  return Math.fround(Math.fround(l0 + l1) + Math.fround(l2 + l3));
}

/** Cosine from a dot product and two squared norms (f32 values), as `types.ts` specifies. */
export function cosineOf(dot: number, aa: number, bb: number): number {
  if (aa === 0 || bb === 0) return 0;
  return Math.fround(dot / Math.sqrt(aa * bb));
}

/**
 * The graph's distance (smaller is nearer) from `q` (squared norm `qq`) to
 * `v` (squared norm `vv`): -dot, -cosine or the squared l2 distance (metric
 * 0, 1, 2); NaN becomes +Infinity and -0 becomes +0, so distances are totally ordered.
 */
export function distance(
  f: Float32Array,
  q: number,
  v: number,
  n: number,
  metric: number,
  qq: number,
  vv: number,
): number {
  const d = metric === 2
    ? sqDistAt(f, q, v, n)
    : metric === 1
    ? -cosineOf(dotAt(f, q, v, n), qq, vv)
    : -dotAt(f, q, v, n);
  return d === 0 ? 0 : d === d ? d : Infinity;
}

/**
 * Exact top-k of the live records among the first `high`, as the exact
 * kernel ranks them: score (similarity, or l2 distance), best first, NaN
 * last, ties by node. Writes nodes and scores at `outNodes`/`outScores`
 * (byte offsets); returns the count. One pass in node order with a bounded
 * heap of the k best, as asm/vector_topk.ts runs it: a node touches the heap
 * only when it beats the worst kept.
 */
export function exactTopK(
  mem: HnswMemory,
  records: number,
  shape: RecordShape,
  metric: number,
  high: number,
  query: number,
  k: number,
  outNodes: number,
  outScores: number,
): number {
  const { f32, u32 } = mem;
  const q = query >>> 2, n = shape.dimPad, step = shape.stride >>> 2;
  const qq = dotAt(f32, q, q, n);
  const asc = metric === 2;
  const scores = new Float64Array(high);
  const heap = new Uint32Array(k);
  let count = 0;
  for (let node = 0, v = records >>> 2; node < high; node++, v += step) {
    if (u32[v + n + 1] === 0) continue;
    scores[node] = metric === 2
      ? Math.fround(Math.sqrt(sqDistAt(f32, q, v, n)))
      : metric === 1
      ? cosineOf(dotAt(f32, q, v, n), qq, f32[v + n])
      : dotAt(f32, q, v, n);
    count = offerSlot(heap, scores, count, k, node, asc);
  }
  const nodes = u32.subarray(outNodes >>> 2, (outNodes >>> 2) + count);
  drainSlots(heap, scores, count, asc, nodes);
  for (let i = 0; i < count; i++) f32[(outScores >>> 2) + i] = scores[nodes[i]];
  return count;
}
