/**
 * Distances of the JS HNSW engine over quantized records (`quantize:
 * "int8"`, `_hnsw_int8.ts`), and the exact scan over them — asm/hnsw_int8.ts
 * line for line. The codes' dot product is an exact integer (below 2^31), so
 * its order does not matter; the rest is the same f64 expressions in the
 * same order, rounded once to f32, so both twins agree bit for bit.
 *
 * Offsets are in bytes (records are 16-aligned, so their f32/u32 words are
 * at `offset >>> 2`).
 *
 * @module
 */
import type { HnswMemory, RecordShape } from "../_hnsw_layout.ts";
import { before } from "./hnsw_heap.ts";

/** Dot product of the `n` int8 codes at byte offsets `a` and `b`. */
export function idot(i8: Int8Array, a: number, b: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let i = 0; i < n; i += 4) {
    s0 += i8[a + i] * i8[b + i];
    s1 += i8[a + i + 1] * i8[b + i + 1];
    s2 += i8[a + i + 2] * i8[b + i + 2];
    s3 += i8[a + i + 3] * i8[b + i + 3];
  }
  return s0 + s1 + s2 + s3;
}

/**
 * Graph distance between the quantized records at `a` and `b` (`n` codes,
 * code sum of squares at `meta`): -dot, -cosine or squared l2 (metric 0, 1,
 * 2) of the dequantized vectors, in f64 and rounded once to f32; -0 → +0.
 */
export function qdistance(
  mem: HnswMemory,
  i8: Int8Array,
  a: number,
  b: number,
  n: number,
  meta: number,
  metric: number,
): number {
  const dp = idot(i8, a, b, n);
  let d: number;
  if (metric === 1) {
    const { u32 } = mem;
    const ia = u32[(a + meta) >>> 2], ib = u32[(b + meta) >>> 2];
    d = ia === 0 || ib === 0 ? 0 : -Math.fround(dp / Math.sqrt(ia * ib));
  } else {
    const { f32 } = mem;
    const sa = f32[(a + n) >>> 2], sb = f32[(b + n) >>> 2];
    if (metric === 2) {
      const { u32 } = mem;
      const ia = u32[(a + meta) >>> 2], ib = u32[(b + meta) >>> 2];
      const t = sa * sa * ia + sb * sb * ib - 2 * sa * sb * dp;
      d = t > 0 ? Math.fround(t) : 0;
    } else d = -Math.fround(dp * sa * sb);
  }
  return d === 0 ? 0 : d === d ? d : Infinity;
}

/**
 * Exact top-k of the live quantized records among the first `high`, for the
 * query record at byte `query`: by (distance, node), best first. Writes nodes
 * and scores (similarity, or l2 distance) at `outNodes`/`outScores` (byte
 * offsets); returns the count.
 */
export function exactTopKInt8(
  mem: HnswMemory,
  i8: Int8Array,
  records: number,
  shape: RecordShape,
  metric: number,
  high: number,
  query: number,
  k: number,
  outNodes: number,
  outScores: number,
): number {
  const { u32, f32 } = mem;
  const { dimPad, meta, stride } = shape;
  const nodes: number[] = [];
  const ds = new Float64Array(high);
  for (let node = 0, rec = records; node < high; node++, rec += stride) {
    if (u32[(rec + meta + 4) >>> 2] === 0) continue;
    nodes.push(node);
    ds[node] = qdistance(mem, i8, query, rec, dimPad, meta, metric);
  }
  nodes.sort((x, y) => before(ds[x], x, ds[y], y) ? -1 : 1);
  const count = Math.min(k, nodes.length);
  for (let i = 0; i < count; i++) {
    const d = ds[nodes[i]];
    u32[(outNodes >>> 2) + i] = nodes[i];
    f32[(outScores >>> 2) + i] = metric === 2 ? Math.fround(Math.sqrt(d)) : -d;
  }
  return count;
}

/** Sum of the squared codes of the record at byte `a` (`n` codes). */
export function qsum(i8: Int8Array, a: number, n: number): number {
  return idot(i8, a, a, n);
}
